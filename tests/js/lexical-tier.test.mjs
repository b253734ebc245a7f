// web/src/lexical-tier.js: the lexical tier (JS analyzer twin, BM25, filters, facets, top k,
// snippets) against websem_text's Ranker.results(mode="lexical", utf16=True) in Pyodide over the
// same chunks, documents and lexical.bin; its refusals and the manifest.search rule it reads.
// The whole-bundle comparison with `websem query --mode lexical --json` is
// tests/test_lexical_tier.py (driver: tests/js/lexical_tier_driver.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError } from "../../web/src/errors.js";
import { openLexical } from "../../web/src/lexical.js";
import { allowedDocs, createLexicalTier, facetCounts, lexicalTierTable } from "../../web/src/lexical-tier.js";
import { bootPython } from "./pyodide_env.mjs";

const FILLER = "Padding words about nothing in particular, repeated to push the terms past the window. ";
const TEXTS = [
  ["install", "How to install the package with pip and configure the cache folder."],
  ["install", "Installing on Windows needs the cache path set before the first run."],
  ["search", "Hybrid search fuses BM25 keyword scores with dense vector scores."],
  ["search", "The lexical index stores postings; BM25 weights rare terms higher."],
  ["deploy", "Deploy the bundle to any static host; the runtime verifies every file."],
  ["edge", "Edge functions serve search from Cloudflare Workers or Deno Deploy. 𝐀𝐁 cache 😀 cache."],
  ["misc", `${FILLER.repeat(4)}The cache is finally mentioned 😀 past the snippet limit, with getElementById.`],
  ["empty", "Nothing relevant here at all."],
];
const META = {
  install: { section: "guide", tags: ["setup", "cache"] },
  search: { section: "reference", tags: ["ranking"] },
  deploy: { section: "guide", tags: ["setup", "hosting"] },
  edge: { section: "howto", tags: "hosting" },
  misc: { tags: ["cache"], language: "en" },
  empty: {},
};
const QUERIES = ["cache", "install the package", "BM25 scores", "deploy edge hosting", "getElementById 😀 cache", "zzz nothing", ""];
const FILTERS = [null, { section: ["guide"] }, { tags: ["cache", "hosting"] }, { section: ["guide"], tags: ["hosting"] }, { section: ["nope"] }];

async function setup() {
  const { pyodide } = await bootPython();
  const ids = [...new Set(TEXTS.map(([d]) => d))];
  const docs = ids.map((id) => ({ id, title: id.toUpperCase(), url: `${id}.html`, meta: META[id] }));
  const chunks = TEXTS.map(([id, text], c) => ({ doc: ids.indexOf(id), text, anchor: c % 2 ? `#c${c}` : "" }));
  const search = {
    modes: ["hybrid", "semantic", "lexical"], k: 3, n: 5, snippet_chars: 60,
    facets: ["tags", "section", "language"], fusion: { method: "convex", norm: "max", alpha: 0.6 },
  };
  pyodide.globals.set("chunks_json", JSON.stringify(chunks));
  pyodide.globals.set("docs_json", JSON.stringify(docs));
  pyodide.globals.set("search_json", JSON.stringify(search));
  const bytes = new Uint8Array(pyodide.runPython(`
import json
from websem_text.analyze import Analyzer
from websem_text.bm25 import LexicalIndex
from websem_text.ranker import Ranker
_a = Analyzer()
_bytes = LexicalIndex.build([_a.terms(c["text"]) for c in json.loads(chunks_json)], analyzer=_a.config()).to_bytes()
_ranker = Ranker(_bytes, json.loads(chunks_json), json.loads(docs_json), search=json.loads(search_json))
_bytes
`).toJs());
  const lexical = openLexical(bytes, chunks.length);
  const tier = createLexicalTier({ chunks, docs, lexical, chunkDoc: chunks.map((c) => c.doc), search: lexicalTierTable({ search }) });
  const python = (query, filters, k) => {
    pyodide.globals.set("q", query);
    pyodide.globals.set("f", filters ? JSON.stringify(filters) : "");
    pyodide.globals.set("k", k);
    return JSON.parse(pyodide.runPython(
      "json.dumps(_ranker.results(q, mode='lexical', filters=json.loads(f) if f else None, k=k, utf16=True))",
    ));
  };
  return { tier, python, docs, pyodide };
}

test("lexical results equal Ranker.results(mode='lexical') in Python: hits, scores, snippets, highlights, facets", async () => {
  const { tier, python } = await setup();
  let compared = 0;
  for (const query of QUERIES) {
    for (const filters of FILTERS) {
      for (const k of [1, 3, 10]) {
        const got = tier.search(query, { k, filters });
        assert.deepEqual(got, python(query, filters, k), `query ${JSON.stringify(query)} filters ${JSON.stringify(filters)} k ${k}`);
        compared += got.hits.length;
      }
    }
  }
  assert.ok(compared > 50, `only ${compared} hits compared: the corpus no longer exercises the tier`);
});

test("the tier highlights astral characters in UTF-16 units and cuts the snippet window like Python", async () => {
  const { tier } = await setup();
  const { hits } = tier.search("getElementById 😀 cache", { k: 10 });
  const misc = hits.find((h) => h.url === "misc.html");
  assert.ok(misc && !misc.snippet.startsWith("Padding"), "the misc snippet must start past the window");
  for (const h of hits) {
    for (const [s, e] of h.highlights) assert.ok(0 <= s && s < e && e <= h.snippet.length);
  }
  assert.ok(hits.some((h) => h.highlights.some(([s, e]) => /cache/i.test(h.snippet.slice(s, e)))));
});

test("unknown filter fields are refused with Python's message", async () => {
  const { tier, pyodide } = await setup();
  pyodide.globals.set("f", JSON.stringify({ "sect'ion": ["x"] }));
  const want = pyodide.runPython(`
try:
    _ranker.results("cache", mode="lexical", filters=json.loads(f))
    _msg = None
except Exception as e:
    _msg = str(e)
_msg
`);
  assert.throws(() => tier.search("cache", { k: 3, filters: { "sect'ion": ["x"] } }), (e) => e instanceof WebsemError && e.message === want);
  assert.throws(() => allowedDocs([{}], { section: ["x"] }, []), /this bundle has filters for no fields$/);
});

test("allowedDocs and facetCounts: any value within a field, every field; counts then code points", () => {
  const metas = [{ tags: ["a", "b"], section: "x" }, { tags: "b", section: "y" }, { tags: ["𝐀", "ｂ", "a", "a"] }, {}];
  assert.equal(allowedDocs(metas, null, ["tags"]), null);
  assert.equal(allowedDocs(metas, {}, ["tags"]), null);
  assert.deepEqual([...allowedDocs(metas, { tags: ["b"] }, ["tags", "section"])], [1, 1, 0, 0]);
  assert.deepEqual([...allowedDocs(metas, { tags: ["a", "b"], section: ["x"] }, ["tags", "section"])], [1, 0, 0, 0]);
  assert.deepEqual(facetCounts([0, 1, 2, 3], metas, ["tags", "section", "language"]), {
    tags: [["a", 2], ["b", 2], ["ｂ", 1], ["𝐀", 1]],
    section: [["x", 1], ["y", 1]],
    language: [],
  });
});

test("lexicalTierTable: the rules the tier reads, or null when the table is for Python to refuse", () => {
  const search = { modes: ["hybrid"], k: 10, n: 100, snippet_chars: 240, facets: ["section"], fusion: {} };
  assert.deepEqual(lexicalTierTable({ search }), { k: 10, snippet_chars: 240, facets: ["section"] });
  assert.equal(lexicalTierTable({}), null);
  assert.equal(lexicalTierTable({ search: { ...search, k: 0 } }), null);
  assert.equal(lexicalTierTable({ search: { ...search, snippet_chars: "240" } }), null);
  assert.equal(lexicalTierTable({ search: { ...search, facets: ["colour"] } }), null);
  assert.equal(lexicalTierTable({ search: { ...search, facets: ["section", "section"] } }), null);
  assert.equal(lexicalTierTable({ search: { ...search, modes: [] } }), null);
});

test("an index header without an analyzer config is refused", () => {
  assert.throws(
    () => createLexicalTier({ chunks: [], docs: [], lexical: { analyzer: null }, chunkDoc: [], search: { k: 1, snippet_chars: 10, facets: [] } }),
    /websem: the lexical index header has no analyzer config; rebuild the bundle/,
  );
});
