// websem search: one query, ranked exactly like `websem query` (docs/architecture.md, "Search
// semantics"). What runs where:
//
//   flat bundle (the default): everything in JS. The ranker (lexical-tier.js createFlatRanker,
//     the twin of web/text/ranker.py over the chunks.json, docs.json and lexical.bin the lexical
//     tier already parsed) gives the query terms (analyze.js) and the documents passing the
//     filters; BM25 (lexical.js) and dense scores (dense.js, over the query embedding) rank each
//     side; the ranker fuses them (fusion.js), counts facets and cuts snippets with highlights in
//     UTF-16 code units. Pyodide's one part in a query is the WordPiece tokenization that feeds
//     the model (engine.js embed).
//   partitioned bundle: Pyodide's ranker (websem_text.bridge): plan (query terms, filters), BM25
//     and dense scores in JS over the shards a query needs (partitioned.js), rank (fusion,
//     facets, the top k), the document fragments of those k, render (snippets).
//   a flat bundle whose manifest.search the JS cannot read whole (fullTierTable is null), or an
//     index whose rows Pyodide holds (the in-page index, inpage-engine.js): Pyodide's ranker as
//     for a partitioned bundle, plan then finish (fusion, facets, snippets) in one step; so a
//     malformed table is refused by rules.check_search, with its own message.
// The rules (modes, n, snippet length, facets, fusion) come from manifest.search only.
import { denseDocs } from "./dense.js";
import { WebsemError } from "./errors.js";
import { createFlatRanker, fullTierTable } from "./lexical-tier.js";
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

/**
 * Filters as `{field: [values]}` (string values become one-element lists; null values dropped),
 * or null for none; anything but a plain object is refused.
 */
export function normalizeFilters(filters) {
  if (filters == null) return null;
  if (typeof filters !== "object" || Array.isArray(filters)) {
    throw new WebsemError(`filters must be an object like {section: "x"} or {tags: ["a", "b"]}, got ${JSON.stringify(filters)}`);
  }
  const out = {};
  for (const [field, v] of Object.entries(filters)) {
    if (v == null) continue;
    out[field] = Array.isArray(v) ? v.map(String) : [String(v)];
  }
  return Object.keys(out).length ? out : null;
}

/** `normalizeFilters` as JSON (what the Python ranker takes), or "" for none. */
export function filtersJson(filters) {
  const f = normalizeFilters(filters);
  return f ? JSON.stringify(f) : "";
}

/**
 * Set up the ranking side while the rest loads. A flat bundle whose manifest.search the JS reads
 * whole (lexical-tier.js fullTierTable) gets the JS ranker (createFlatRanker: the lexical tier's
 * own when given, else one over the index's chunks and docs), and Pyodide is not involved.
 * Otherwise Pyodide's ranker: over chunks.json, docs.json and manifest.search (validated there by
 * websem_text.rules, whose error a malformed table gets), or for a partitioned bundle over
 * table.json's facets (bridge.ranker_init_partitioned).
 *
 * @param {Promise<object>} pythonP python.js loadPython() result (or its worker twin) (awaited
 *   only when Pyodide ranks)
 * @param {object} files bundle.js VerifiedFiles
 * @param {object} manifest the bundle manifest (checked)
 * @param {(event: object) => void} [onProgress] gets {stage: "ranker-ready"}
 * @param {Promise<object>|null} [indexP] the index: bundle.js loadIndex() (flat: its chunks,
 *   docs and validated chunk -> document map) or partitioned.js openPartitioned() (table.json's
 *   facets and analyzer); null: a flat bundle's chunks.json and docs.json are read from `files`
 * @param {Promise<object>|null} [lexicalP] index/lexical.bin already opened (openLexical), e.g.
 *   by the lexical tier, so the postings are parsed once
 * @param {object|null} [tierRanker] the lexical tier's createFlatRanker(), reused (so the
 *   analyzer and the documents' filter values are made once) when it was made with the whole
 *   table over the index's own chunks and docs
 * @returns {Promise<{lexical: object|null, ranker: object|null}>} openLexical() result (null for
 *   a partitioned bundle) and the JS ranker (null when Pyodide ranks)
 */
export async function setupRanker(pythonP, files, manifest, onProgress = () => {}, indexP = null, lexicalP = null,
  tierRanker = null) {
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
    return { lexical: null, ranker: null };
  }
  const paths = manifest.index.files;
  lexicalP ??= files.bytes(paths.lexical).then((bytes) => openLexical(bytes, manifest.index.chunks));
  const table = fullTierTable(manifest);
  if (table) {
    const [index, lexical] = await Promise.all([indexP, lexicalP]);
    const source = index ?? await readChunksDocs(files, paths);
    const ranker = reuseRanker(tierRanker, source) ?? newRanker(table, source, lexical);
    if (ranker) {
      onProgress({ stage: "ranker-ready" });
      return { lexical, ranker };
    }
  }
  const [python, chunksBytes, docsBytes, lexical] = await Promise.all([
    pythonP,
    files.bytes(paths.chunks),
    files.bytes(paths.docs),
    lexicalP,
  ]);
  await python.ranker("init", [
    chunksBytes,
    docsBytes,
    JSON.stringify(lexical.analyzer),
    // null when absent: check_search then says the table is missing.
    JSON.stringify(manifest.search ?? null),
  ]);
  onProgress({ stage: "ranker-ready" });
  return { lexical, ranker: null };
}

async function readChunksDocs(files, paths) {
  const [chunks, docs] = await Promise.all([files.json(paths.chunks), files.json(paths.docs)]);
  return { chunks, docs, chunkDoc: Int32Array.from(chunks, (c) => c.doc) };
}

/**
 * The lexical tier's ranker when it holds `source`'s chunks and docs ({chunks, docs, chunkDoc}:
 * the index) and the whole table, now on the index's validated chunk -> document map; else null.
 */
function reuseRanker(ranker, source) {
  if (!ranker?.search.fusion || ranker.chunks !== source.chunks || ranker.docs !== source.docs) return null;
  ranker.chunkDoc = source.chunkDoc; // the same values: the tier's own copy is dropped
  return ranker;
}

/** A JS ranker over `source`, or null when the analyzer twin refuses the index's analyzer config
 * (then Pyodide's analyzer ranks, and refuses it with its own message if it must). */
function newRanker(table, source, lexical) {
  try {
    return createFlatRanker({ chunks: source.chunks, docs: source.docs, lexical, chunkDoc: source.chunkDoc, search: table });
  } catch {
    return null;
  }
}

const NO_DOCS = { docs: new Int32Array(0), scores: new Float64Array(0), chunks: new Int32Array(0) };

/** The documents of a Python plan passing the filters as a Uint8Array (1 = passes), or null for all. */
function planAllowed(plan, nDocs) {
  if (!plan.allowed) return null;
  const allowed = new Uint8Array(nDocs);
  for (const d of plan.allowed) allowed[d] = 1;
  return allowed;
}

/**
 * The searcher of one loaded bundle.
 *
 * @param {object} p
 * @param {object} p.python python.js loadPython() result (its `ranker` steps; unused with `ranker`)
 * @param {object} p.index bundle.js loadIndex() result, or partitioned.js openPartitioned()'s
 * @param {object|null} p.lexical openLexical() result (null for a partitioned bundle)
 * @param {object|null} [p.ranker] setupRanker()'s JS ranker: a flat bundle ranks in JS; null:
 *   Pyodide's ranker (set up by setupRanker or bridge.inpage_search) ranks
 * @param {(text: string) => Promise<Float32Array>} p.embed query embedding (serialized ORT run)
 * @param {object} p.search manifest.search
 * @returns {(query: string, opts: {k: number, mode: string, filters?: object}) => Promise<{hits: object[], facets: object, mode: string}>}
 *   mode must already be resolved (resolveMode)
 */
export function createSearch({ python, index, lexical, ranker = null, embed, search }) {
  const n = search.n;
  if (index.layout === "partitioned") return partitionedSearch({ python, index, embed, n });
  if (ranker) return jsSearch({ index, ranker, embed, search });
  const chunkDoc = index.chunkDoc;
  return async function run(query, { k, mode, filters }) {
    const fj = filtersJson(filters);
    const plan = JSON.parse(await python.ranker("plan", [query, fj]));
    const allowed = planAllowed(plan, index.docs.length);
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

/** createSearch for a flat bundle ranked in JS: the same steps, no Pyodide. */
function jsSearch({ index, ranker, embed, search }) {
  const n = search.n;
  return async function run(query, { k, mode, filters }) {
    mode = resolveMode(mode, search.modes);
    const terms = ranker.terms(query);
    const allowed = ranker.allowed(normalizeFilters(filters));
    // As the Python path: every match in lexical mode, the top n in hybrid, none in semantic.
    const lex = mode === "semantic" ? null : ranker.lexicalDocs(terms, allowed, mode === "lexical" ? Infinity : n);
    const sem = mode === "lexical" ? null : denseDocs(index, await embed(query), Math.max(k, n), allowed);
    const res = ranker.finish(terms, { mode, k, lexical: lex, semantic: sem });
    return { hits: res.hits, facets: res.facets, mode };
  };
}

/** createSearch for a partitioned index: the same steps, over the shards each query needs. */
function partitionedSearch({ python, index, embed, n }) {
  return async function run(query, { k, mode, filters }) {
    const fj = filtersJson(filters);
    const plan = JSON.parse(await python.ranker("plan", [query, fj]));
    const allowed = planAllowed(plan, index.nDocs);
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
