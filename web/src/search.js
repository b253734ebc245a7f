// websem search: one query, split so the runtime ranks exactly like `websem query` (which calls
// the same `Ranker.results`):
//   1. plan   (Pyodide, websem_text.bridge.plan): query terms from the shipped analyzer,
//             documents passing the filters;
//   2. BM25   (JS, lexical.js) over index/lexical.bin, and dense scores (JS, dense.js);
//   3. finish (Pyodide, bridge.finish): fusion, facets, snippets with highlight ranges in UTF-16
//             code units (so `snippet.slice(s, e)` is exact in JS).
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
 * over chunks.json, docs.json and manifest.search (validated there by websem_text.rules).
 *
 * @param {Promise<object>} pythonP python.js loadPython()/loadPythonWorker() result
 * @param {object} files bundle.js VerifiedFiles
 * @param {object} manifest the bundle manifest (checked)
 * @param {(event: object) => void} [onProgress] gets {stage: "ranker-ready"}
 * @returns {Promise<object>} openLexical() result
 */
export async function setupRanker(pythonP, files, manifest, onProgress = () => {}) {
  const paths = manifest.index.files;
  const [python, chunksBytes, docsBytes, lexBytes] = await Promise.all([
    pythonP,
    files.bytes(paths.chunks),
    files.bytes(paths.docs),
    files.bytes(paths.lexical),
  ]);
  const lexical = openLexical(lexBytes, manifest.index.chunks);
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

/**
 * The searcher of one loaded bundle.
 *
 * @param {object} p
 * @param {object} p.python python.js loadPython() result (its `ranker` steps)
 * @param {object} p.index bundle.js loadIndex() result
 * @param {object} p.lexical openLexical() result
 * @param {(text: string) => Promise<Float32Array>} p.embed query embedding (serialized ORT run)
 * @param {object} p.search manifest.search
 * @returns {(query: string, opts: {k: number, mode: string, filters?: object}) => Promise<{hits: object[], facets: object, mode: string}>}
 *   mode must already be resolved (resolveMode)
 */
export function createSearch({ python, index, lexical, embed, search }) {
  const n = search.n;
  const chunkDoc = index.chunkDoc;
  return async function run(query, { k, mode, filters }) {
    const fj = filtersJson(filters);
    const plan = JSON.parse(await python.ranker("plan", [query, fj]));
    let allowed = null;
    if (plan.allowed) {
      allowed = new Uint8Array(index.docs.length);
      for (const d of plan.allowed) allowed[d] = 1;
    }
    // Lexical: every matching document in lexical mode (facets count them all), the top n in
    // hybrid (all that fusion and facets use there); none in semantic mode.
    let lex = null;
    if (mode !== "semantic") lex = lexicalDocs(lexical, plan.terms, chunkDoc, allowed, mode === "lexical" ? Infinity : n);
    let sem = { docs: new Int32Array(0), scores: new Float64Array(0), chunks: new Int32Array(0) };
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
