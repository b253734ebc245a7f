// web/src/search.js: the mode rule and filters, and one whole query against websem_text's Ranker
// doing all of it in Python (its own BM25, dense scores from the same vectors): same hits,
// scores, snippets, highlights and facets in every mode, both ways a flat bundle ranks: in JS
// (setupRanker's JS ranker: no Pyodide at all) and with Pyodide's ranker (plan and finish, as
// the in-page index and a table the JS cannot read do). Which one setupRanker picks, and that it
// reuses the lexical tier's ranker.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError } from "../../web/src/errors.js";
import { openLexical } from "../../web/src/lexical.js";
import { createLexicalTier, fullTierTable } from "../../web/src/lexical-tier.js";
import { createSearch, filtersJson, modeError, normalizeFilters, resolveMode, setupRanker } from "../../web/src/search.js";
import { bootPython } from "./pyodide_env.mjs";

const MODES = ["hybrid", "semantic", "lexical"];

test("resolveMode: the bundle's first mode by default, its own list in the error", () => {
  assert.equal(resolveMode(undefined, MODES), "hybrid");
  assert.equal(resolveMode(null, ["lexical", "hybrid"]), "lexical");
  assert.equal(resolveMode("semantic", MODES), "semantic");
  assert.throws(() => resolveMode("fuzzy", MODES), (e) => e instanceof WebsemError && e.message === modeError("fuzzy", MODES));
  assert.equal(modeError("fuzzy", MODES), 'websem: unknown search mode "fuzzy"; use one of hybrid, semantic, lexical');
  assert.throws(() => resolveMode("semantic", ["lexical"]), /use one of lexical$/);
});

test("filtersJson: strings become one-element lists, empty filters none", () => {
  assert.equal(filtersJson(undefined), "");
  assert.equal(filtersJson({}), "");
  assert.equal(filtersJson({ section: null }), "");
  assert.equal(filtersJson({ section: "guide", tags: ["a", 2] }), '{"section":["guide"],"tags":["a","2"]}');
  assert.throws(() => filtersJson(["section"]), /websem: filters must be an object like/);
  assert.throws(() => filtersJson("section=x"), /websem: filters must be an object like/);
  assert.equal(normalizeFilters({ section: null }), null);
  assert.deepEqual(normalizeFilters({ tags: ["a", 2] }), { tags: ["a", "2"] });
});

const TEXTS = [
  ["install", "guide", "How to install the package with pip and configure the cache folder."],
  ["install", "guide", "Installing on Windows needs the cache path set before the first run."],
  ["search", "reference", "Hybrid search fuses BM25 keyword scores with dense vector scores."],
  ["search", "reference", "The lexical index stores postings; BM25 weights rare terms higher."],
  ["deploy", "guide", "Deploy the bundle to any static host; the runtime verifies every file."],
  ["deploy", "howto", "Edge functions serve search from Cloudflare Workers or Deno Deploy."],
  ["misc", "howto", `${"Padding words about nothing in particular. ".repeat(8)}The cache is finally mentioned past the snippet limit.`],
];

async function corpus() {
  const { pyodide } = await bootPython();
  const dims = 6;
  const vectors = new Float32Array(TEXTS.length * dims);
  for (let c = 0; c < TEXTS.length; c++) for (let j = 0; j < dims; j++) vectors[c * dims + j] = Math.fround(Math.sin(c * 7 + j * 3));
  const docs = ["install", "search", "deploy", "misc"].map((id) => ({ id, title: id.toUpperCase(), url: `${id}.html`, meta: {} }));
  const chunks = TEXTS.map(([doc, , text], c) => ({ doc: docs.findIndex((d) => d.id === doc), text, anchor: `#c${c}` }));
  for (const [c, [, section]] of TEXTS.entries()) docs[chunks[c].doc].meta.section = section;
  pyodide.globals.set("chunks_json", JSON.stringify(chunks));
  const lexBytes = pyodide.runPython(`
import json
from websem_text.analyze import Analyzer
from websem_text.bm25 import LexicalIndex
_a = Analyzer()
LexicalIndex.build([_a.terms(c["text"]) for c in json.loads(chunks_json)], analyzer=_a.config()).to_bytes()
`).toJs();
  const search = JSON.parse(pyodide.runPython("import json; from websem_text.rules import search_table; json.dumps(search_table(facets=['section']))"));
  search.n = 3; // smaller than the corpus, so hybrid fuses cut lists
  const enc = new TextEncoder();
  const manifest = { index: { chunks: chunks.length, files: { chunks: "c", docs: "d", lexical: "l" } }, search };
  const fileBytes = { c: enc.encode(JSON.stringify(chunks)), d: enc.encode(JSON.stringify(docs)), l: new Uint8Array(lexBytes) };
  const files = { bytes: async (p) => fileBytes[p] };
  const index = { dims, n: chunks.length, vectors, scales: null, chunks, docs, chunkDoc: Int32Array.from(chunks, (c) => c.doc) };
  return { pyodide, manifest, files, index, search, chunks, docs, lexBytes };
}

/** The same query done by Python alone: Ranker with its own LexicalIndex, dense by numpy-free loops. */
function pythonResults(pyodide, { chunks, docs, lexBytes, search, index }, query, queryVec, mode, k, filters) {
  pyodide.globals.set("args_json", JSON.stringify({ chunks, docs, search, query, mode, k, filters, q: Array.from(queryVec),
    vectors: Array.from(index.vectors), dims: index.dims }));
  pyodide.globals.set("lex_bytes", lexBytes);
  return JSON.parse(pyodide.runPython(`
import json
from array import array
from websem_text.bm25 import Ranker, aggregate_docs
_j = json.loads(args_json)
_r = Ranker(bytes(lex_bytes.to_py()), _j["chunks"], _j["docs"], search=_j["search"])
_allowed = _r.allowed(_j["filters"])
_d, _q = _j["dims"], array("f", _j["q"])
_v = array("f", _j["vectors"])
_scores = {c: sum(float(_q[i]) * float(_v[c * _d + i]) for i in range(_d)) for c in range(len(_j["chunks"]))}
_sem = aggregate_docs(_scores, _r.chunk_doc, allowed=_allowed)
json.dumps(_r.results(_j["query"], mode=_j["mode"], semantic=_sem, filters=_j["filters"], k=_j["k"], utf16=True))
`));
}

/** Pyodide must not be needed: a promise that never settles. */
const NEVER = new Promise(() => {});

/** The two ways a flat bundle ranks: `[name, run]`. */
async function searchers(c, embed) {
  const { bridge } = await bootPython();
  const python = { ranker: (method, args) => bridge.ranker[method](...args) };
  const js = await setupRanker(NEVER, c.files, c.manifest, () => {}, Promise.resolve(c.index));
  assert.ok(js.ranker, "a readable table gets the JS ranker");
  assert.deepEqual(js.lexical.analyzer, openLexical(new Uint8Array(c.lexBytes)).analyzer);
  const jsRun = createSearch({ python: null, index: c.index, lexical: js.lexical, ranker: js.ranker, embed, search: c.search });
  // Pyodide's ranker, as bridge.inpage_search or a table only Python reads sets it up.
  await python.ranker("init", [await c.files.bytes("c"), await c.files.bytes("d"), JSON.stringify(js.lexical.analyzer), JSON.stringify(c.search)]);
  const pyRun = createSearch({ python, index: c.index, lexical: js.lexical, embed, search: c.search });
  return [["js", jsRun], ["pyodide", pyRun]];
}

test("a whole query ranks like websem_text's Ranker alone, in every mode, with filters, both ways", async () => {
  const c = await corpus();
  const queryVec = Float32Array.from({ length: c.index.dims }, (_, j) => Math.cos(j));
  for (const [name, run] of await searchers(c, async () => queryVec)) {
    let compared = 0;
    for (const query of ["install cache", "bm25 search", "cache"]) {
      for (const mode of MODES) {
        for (const filters of [undefined, { section: "guide" }, { section: ["howto", "reference"] }]) {
          const got = await run(query, { k: 3, mode, filters });
          const want = pythonResults(c.pyodide, c, query, queryVec, mode, 3, filters ?? null);
          assert.equal(got.mode, mode);
          assert.deepEqual(got.hits, want.hits, `${name}: ${query} / ${mode} / ${JSON.stringify(filters)}`);
          assert.deepEqual(got.facets, want.facets);
          compared += got.hits.length;
        }
      }
    }
    assert.ok(compared > 40, `${name}: ${compared} hits compared`);
    // The snippet of a match past snippet_chars shows the match (not the text's start).
    const far = await run("finally mentioned", { k: 1, mode: "lexical" });
    assert.equal(far.hits[0].id, "misc");
    const [s, e] = far.hits[0].highlights[0];
    assert.equal(far.hits[0].snippet.slice(s, e).toLowerCase(), "finally");
  }
});

test("an unknown filter field is refused with the websem: message, both ways", async () => {
  const c = await corpus();
  const messages = [];
  for (const [, run] of await searchers(c, async () => new Float32Array(c.index.dims))) {
    const err = await run("cache", { k: 3, mode: "hybrid", filters: { colour: "red" } }).catch((e) => e);
    assert.ok(err instanceof WebsemError, String(err));
    messages.push(err.message);
  }
  assert.match(messages[0], /^websem: unknown filter field 'colour'; this bundle has filters for section$/);
  assert.equal(messages[0], messages[1]);
});

test("setupRanker: the lexical tier's ranker is reused; a table the JS cannot read gets Pyodide's ranker and its error", async () => {
  const c = await corpus();
  // The tier's ranker over the same chunks and docs, on the index's validated chunk map from now on.
  const tier = createLexicalTier({ chunks: c.chunks, docs: c.docs, lexical: openLexical(new Uint8Array(c.lexBytes)),
    chunkDoc: c.chunks.map((x) => x.doc), search: fullTierTable(c.manifest) });
  const reused = await setupRanker(NEVER, c.files, c.manifest, () => {}, Promise.resolve(c.index), null, tier.ranker);
  assert.equal(reused.ranker, tier.ranker);
  assert.equal(reused.ranker.chunkDoc, c.index.chunkDoc);
  // Other chunks (a copy): a new ranker, not the tier's.
  const other = await setupRanker(NEVER, c.files, c.manifest, () => {}, Promise.resolve({ ...c.index, chunks: [...c.chunks] }), null, tier.ranker);
  assert.ok(other.ranker && other.ranker !== tier.ranker);
  // A fusion Python refuses: Pyodide's ranker is set up, and rules.check_search's message is the error.
  const { bridge } = await bootPython();
  const python = { ranker: (method, args) => bridge.ranker[method](...args) };
  const bad = { ...c.manifest, search: { ...c.search, fusion: { method: "convex", alpha: 2 } } };
  assert.equal(fullTierTable(bad), null);
  await assert.rejects(setupRanker(Promise.resolve(python), c.files, bad, () => {}, Promise.resolve(c.index)),
    /^WebsemError: websem: convex fusion needs a weight 0 <= alpha <= 1 \(dense side\), got alpha=2$/);
  // An analyzer config the JS twin refuses: Pyodide's ranker ranks (Python knows a default analyzer).
  const noAnalyzer = { ...openLexical(new Uint8Array(c.lexBytes)), analyzer: null };
  const py = await setupRanker(Promise.resolve(python), c.files, c.manifest, () => {}, Promise.resolve(c.index), Promise.resolve(noAnalyzer));
  assert.equal(py.ranker, null);
});
