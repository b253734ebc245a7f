// web/src/lexical-tier.js: the lexical tier (JS analyzer twin, BM25, filters, facets, top k,
// snippets) against websem_text's Ranker.results(mode="lexical", utf16=True) in Pyodide over the
// same chunks, documents and lexical.bin; the flat ranker the full tier uses (createFlatRanker)
// against Ranker.results in every mode and with every fusion setting, given the same dense
// ranking; its refusals and the manifest.search rules it reads (lexicalTierTable, fullTierTable
// against rules.check_search). The whole-bundle comparisons with `websem query --json` are
// tests/test_lexical_tier.py and tests/test_full_tier.py (drivers: tests/js/lexical_tier_driver.mjs,
// tests/js/full_tier_driver.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError } from "../../web/src/errors.js";
import { openLexical } from "../../web/src/lexical.js";
import { aggregateDocs } from "../../web/src/lexical.js";
import { allowedDocs, createFlatRanker, createLexicalTier, facetCounts, fullTierTable, lexicalTierTable } from "../../web/src/lexical-tier.js";
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
  return { tier, python, docs, chunks, lexical, search, pyodide };
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
  assert.deepEqual(lexicalTierTable({ search }), { k: 10, n: 100, snippet_chars: 240, facets: ["section"] });
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

const FUSIONS = [
  { method: "convex", norm: "max", alpha: 0.6 },
  { method: "convex", norm: "minmax", alpha: 0.3 },
  { method: "convex", norm: "zscore", alpha: 0.5 },
  { method: "rrf", rrf_k: 60 },
  { method: "rrf", rrf_k: 2, alpha: 0.7 },
];

test("createFlatRanker: every mode and fusion setting equals Ranker.results given the same dense scores", async () => {
  const { docs, chunks, lexical, search, pyodide } = await setup();
  const chunkDoc = chunks.map((c) => c.doc);
  let compared = 0;
  for (const fusion of FUSIONS) {
    const table = { ...search, fusion };
    const ranker = createFlatRanker({ chunks, docs, lexical, chunkDoc, search: fullTierTable({ search: table }) });
    pyodide.globals.set("search_json", JSON.stringify(table));
    pyodide.runPython("_full = Ranker(_bytes, json.loads(chunks_json), json.loads(docs_json), search=json.loads(search_json))");
    for (const [qi, query] of QUERIES.entries()) {
      // Dense chunk scores: distinct for some queries, tied (one decimal) for others.
      const dense = new Map(chunks.map((_, c) => {
        const s = Math.sin(c * 7 + qi * 3);
        return [c, qi % 2 ? Math.round(s * 10) / 10 : s];
      }));
      pyodide.globals.set("dense_json", JSON.stringify([...dense]));
      for (const filters of FILTERS) {
        const terms = ranker.terms(query);
        const allowed = ranker.allowed(filters);
        for (const mode of ["hybrid", "semantic", "lexical"]) {
          for (const k of [1, 3, 10]) {
            const n = table.n;
            const lex = mode === "semantic" ? null : ranker.lexicalDocs(terms, allowed, mode === "lexical" ? Infinity : n);
            const sem = mode === "lexical" ? null : aggregateDocs(dense, (c) => chunkDoc[c], allowed, Math.max(k, n));
            const got = ranker.finish(terms, { mode, k, lexical: lex, semantic: sem });
            pyodide.globals.set("q", query);
            pyodide.globals.set("f", filters ? JSON.stringify(filters) : "");
            pyodide.globals.set("mode", mode);
            pyodide.globals.set("k", k);
            const want = JSON.parse(pyodide.runPython(`
from websem_text.bm25 import aggregate_docs
_filters = json.loads(f) if f else None
_sem = aggregate_docs(dict(json.loads(dense_json)), _full.chunk_doc, allowed=_full.allowed(_filters), k=max(k, _full.search["n"]))
json.dumps(_full.results(q, mode=mode, semantic=[] if mode == "lexical" else _sem, filters=_filters, k=k, utf16=True))
`));
            assert.deepEqual(got, want, `${JSON.stringify(fusion)} / ${mode} / ${JSON.stringify(query)} / ${JSON.stringify(filters)} / k ${k}`);
            compared += got.hits.length;
          }
        }
      }
    }
  }
  assert.ok(compared > 2000, `only ${compared} hits compared`);
});

test("fullTierTable: the table rules.check_search accepts, as it returns it, or null where it refuses", async () => {
  const { pyodide } = await bootPython();
  const base = { modes: ["hybrid", "semantic", "lexical"], k: 10, n: 100, snippet_chars: 240, facets: ["tags", "section"],
    fusion: { method: "convex", norm: "max", alpha: 0.6 } };
  const { fusion: _, ...noFusion } = base;
  const tables = [
    base, { ...base, modes: ["lexical"] }, { ...base, facets: [] }, { ...base, fusion: { method: "rrf" } },
    { ...base, fusion: { method: "rrf", rrf_k: 0, alpha: 1 } }, { ...base, fusion: { method: "convex", alpha: 0 } },
    { ...base, fusion: { method: "convex", alpha: 0.5, norm: "zscore", note: "ignored" } },
    null, [], "table", {}, noFusion, { ...base, extra: 1 }, { ...base, k: 0 }, { ...base, n: true }, { ...base, snippet_chars: "240" },
    { ...base, modes: [] }, { ...base, modes: ["hybrid", "hybrid"] }, { ...base, modes: ["fuzzy"] }, { ...base, modes: "hybrid" },
    { ...base, facets: ["colour"] }, { ...base, facets: ["tags", "tags"] }, { ...base, fusion: null },
    { ...base, fusion: { method: "borda" } }, { ...base, fusion: { method: "convex", alpha: 2 } },
    { ...base, fusion: { method: "convex", alpha: 0.5, norm: "l2" } }, { ...base, fusion: { method: "rrf", rrf_k: -1 } },
  ];
  pyodide.globals.set("tables_json", JSON.stringify(tables));
  const want = JSON.parse(pyodide.runPython(`
import json
from websem_text.errors import WebsemError
from websem_text.rules import check_search
def _check(t):
    try:
        return check_search(t)
    except WebsemError:
        return None
json.dumps([_check(t) for t in json.loads(tables_json)])
`));
  assert.deepEqual(tables.map((search) => fullTierTable({ search })), want);
  assert.equal(want.filter((w) => w !== null).length, 7);
});

test("a ranker with the lexical tier's rules only refuses the other modes", async () => {
  const { docs, chunks, lexical, search } = await setup();
  const ranker = createFlatRanker({ chunks, docs, lexical, chunkDoc: chunks.map((c) => c.doc), search: lexicalTierTable({ search }) });
  assert.throws(() => ranker.finish(["cache"], { mode: "hybrid", k: 3 }), /websem: this ranker has the lexical tier's rules only/);
  const terms = ranker.terms("cache");
  assert.equal(ranker.finish(terms, { mode: "lexical", k: 3, lexical: ranker.lexicalDocs(terms, null) }).hits.length, 3);
});
