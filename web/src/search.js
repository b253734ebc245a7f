// websem search: one query, split so the runtime ranks exactly like `websem query` (which calls
// the same `Ranker`):
//   1. plan   (Pyodide, websem_text.bridge.plan): query terms from the shipped analyzer,
//             documents passing the filters;
//   2. BM25 and dense scores in JS: over index/lexical.bin and the vectors (lexical.js,
//      dense.js) in a flat bundle, over the shards a query needs in a partitioned one
//      (partitioned.js);
//   3. flat:        finish (Pyodide, bridge.finish): fusion, facets, snippets with highlight
//                   ranges in UTF-16 code units (so `snippet.slice(s, e)` is exact in JS);
//      partitioned: rank (bridge.rank: fusion, facets, the top k), then the document fragments
//                   of those k (partitioned.js rows), then render (bridge.render: snippets).
// The rules (modes, n, snippet length, facets, fusion) come from manifest.search only.
import { denseDocs } from "./dense.js";
import { WebsemError } from "./errors.js";
import { lexicalDocs, openLexical } from "./lexical.js";

/** THE unknown-mode message (handler.js uses it too); `modes` = the bundle's manifest.search.modes. */
export function modeError(mode, modes) {
  return `websem: unknown search mode ${JSON.stringify(mode)}; use one of ${modes.join(", ")}`;
}

/** `mode`, or the bundle's default (modes[0]) when it is null/undefined; throws for an unknown one. */
export function resolveMode(mode, modes) {
  if (mode == null) return modes[0];
  if (!modes.includes(mode)) throw new WebsemError(modeError(mode, modes));
  return mode;
}

/** Filters as `{field: [values]}` JSON (string values become one-element lists), or "" for none. */
export function filtersJson(filters) {
  if (filters == null) return "";
  if (typeof filters !== "object" || Array.isArray(filters)) {
    throw new WebsemError(`filters must be an object like {section: "x"} or {tags: ["a", "b"]}, got ${JSON.stringify(filters)}`);
  }
  const out = {};
  for (const [field, v] of Object.entries(filters)) {
    if (v == null) continue;
    out[field] = Array.isArray(v) ? v.map(String) : [String(v)];
  }
  return Object.keys(out).length ? JSON.stringify(out) : "";
}

/**
 * Load the lexical side while the rest loads: index/lexical.bin (verified) and Pyodide's ranker
 * over chunks.json, docs.json and manifest.search (validated there by websem_text.rules); for a
 * partitioned bundle, the ranker over table.json's facets (bridge.ranker_init_partitioned).
 *
 * @param {Promise<object>} pythonP python.js loadPython()/loadPythonWorker() result
 * @param {object} files bundle.js VerifiedFiles
 * @param {object} manifest the bundle manifest (checked)
 * @param {(event: object) => void} [onProgress] gets {stage: "ranker-ready"}
 * @param {Promise<object>|null} [indexP] the partitioned index (openPartitioned), whose
 *   table.json gives a partitioned bundle's ranker its facets and analyzer
 * @param {Promise<object>|null} [lexicalP] index/lexical.bin already opened (openLexical), e.g.
 *   by the lexical tier, so the postings are parsed once
 * @returns {Promise<object|null>} openLexical() result (null for a partitioned bundle)
 */
export async function setupRanker(pythonP, files, manifest, onProgress = () => {}, indexP = null, lexicalP = null) {
  if (manifest.index.layout === "partitioned") {
    // Documents and chunks are fetched per result page: the ranker gets the facet values of
    // every document (table.json) instead, and the analyzer the build used.
    const [python, index] = await Promise.all([pythonP, indexP]);
    await python.ranker("initPartitioned", [
      index.nDocs,
      JSON.stringify(index.facets),
      JSON.stringify(index.lexical.analyzer),
      JSON.stringify(manifest.search ?? null),
    ]);
    onProgress({ stage: "ranker-ready" });
    return null;
  }
  const paths = manifest.index.files;
  const [python, chunksBytes, docsBytes, lexical] = await Promise.all([
    pythonP,
    files.bytes(paths.chunks),
    files.bytes(paths.docs),
    lexicalP ?? files.bytes(paths.lexical).then((bytes) => openLexical(bytes, manifest.index.chunks)),
  ]);
  await python.ranker("init", [
    chunksBytes,
    docsBytes,
    JSON.stringify(lexical.analyzer),
    // null when absent: check_search then says the table is missing.
    JSON.stringify(manifest.search ?? null),
  ]);
  onProgress({ stage: "ranker-ready" });
  return lexical;
}

const NO_DOCS = { docs: new Int32Array(0), scores: new Float64Array(0), chunks: new Int32Array(0) };

/** The documents passing the filters as a Uint8Array (1 = passes), or null for all. */
function allowedDocs(plan, nDocs) {
  if (!plan.allowed) return null;
  const allowed = new Uint8Array(nDocs);
  for (const d of plan.allowed) allowed[d] = 1;
  return allowed;
}

/**
 * The searcher of one loaded bundle.
 *
 * @param {object} p
 * @param {object} p.python python.js loadPython() result (its `ranker` steps)
 * @param {object} p.index bundle.js loadIndex() result, or partitioned.js openPartitioned()'s
 * @param {object|null} p.lexical openLexical() result (null for a partitioned bundle)
 * @param {(text: string) => Promise<Float32Array>} p.embed query embedding (serialized ORT run)
 * @param {object} p.search manifest.search
 * @returns {(query: string, opts: {k: number, mode: string, filters?: object}) => Promise<{hits: object[], facets: object, mode: string}>}
 *   mode must already be resolved (resolveMode)
 */
export function createSearch({ python, index, lexical, embed, search }) {
  const n = search.n;
  if (index.layout === "partitioned") return partitionedSearch({ python, index, embed, n });
  const chunkDoc = index.chunkDoc;
  return async function run(query, { k, mode, filters }) {
    const fj = filtersJson(filters);
    const plan = JSON.parse(await python.ranker("plan", [query, fj]));
    const allowed = allowedDocs(plan, index.docs.length);
    // Lexical: every matching document in lexical mode (facets count them all), the top n in
    // hybrid (all that fusion and facets use there); none in semantic mode.
    let lex = null;
    if (mode !== "semantic") lex = lexicalDocs(lexical, plan.terms, chunkDoc, allowed, mode === "lexical" ? Infinity : n);
    let sem = NO_DOCS;
    if (mode !== "lexical") sem = denseDocs(index, await embed(query), Math.max(k, n), allowed);
    const res = JSON.parse(
      await python.ranker("finish", [
        query, mode, k,
        [sem.docs, sem.scores, sem.chunks],
        lex ? [lex.docs, lex.scores, lex.chunks] : null,
        fj,
      ]),
    );
    return { hits: res.hits, facets: res.facets, mode };
  };
}

/** createSearch for a partitioned index: the same steps, over the shards each query needs. */
function partitionedSearch({ python, index, embed, n }) {
  return async function run(query, { k, mode, filters }) {
    const fj = filtersJson(filters);
    const plan = JSON.parse(await python.ranker("plan", [query, fj]));
    const allowed = allowedDocs(plan, index.nDocs);
    // The lexical shards download while the model embeds the query.
    const lexP = mode === "semantic" ? null : index.lexicalDocs(plan.terms, allowed, mode === "lexical" ? Infinity : n);
    lexP?.catch(() => {});
    const sem = mode === "lexical" ? NO_DOCS : await index.denseDocs(await embed(query), Math.max(k, n), allowed);
    const lex = lexP ? await lexP : null;
    const ranked = JSON.parse(
      await python.ranker("rank", [
        query, mode, k,
        [sem.docs, sem.scores, sem.chunks],
        lex ? [lex.docs, lex.scores, lex.chunks] : null,
        fj,
      ]),
    );
    const rows = await index.rows(ranked.hits);
    const res = JSON.parse(await python.ranker("render", [query, JSON.stringify(rows)]));
    return { hits: res.hits, facets: ranked.facets, mode };
  };
}
