// websem lexical tier: a flat bundle's lexical results in plain JS, before Pyodide and the model
// have arrived (docs/architecture.md, "Tiers").
//
// What `websem query --mode lexical` does after BM25 (web/text/ranker.py `Ranker.results`), over
// the same files: filters (`bm25.allowed_docs`), every matching document ranked by BM25
// (lexical.js, already proven equal to Python), facet counts over all of them
// (`bm25.facet_counts`), the top k, and snippets with highlights in UTF-16 code units
// (snippet.js). Query terms come from the analyzer's JS twin (analyze.js) built from the index
// header's analyzer config. Only the lexical mode is twinned: fusion and the dense side stay in
// Pyodide and onnxruntime-web. Proven equal to `websem query --mode lexical --json` (ids, scores,
// titles, urls, snippets, highlights, facets, with filters) by tests/test_lexical_tier.py under
// Node and tests/browser/test_progressive.py in Chromium. A partitioned bundle's tier does the
// same over the lexical shards and document fragments a query needs (partitioned.js).
import { createAnalyzer } from "./analyze.js";
import { WebsemError } from "./errors.js";
import { lexicalDocs } from "./lexical.js";
import { compareCodePoints } from "./lexshards.js";
import { snippet } from "./snippet.js";

/** `rules.FACETS`: the filter fields a document may carry. */
const FACETS = ["tags", "section", "language"];

const isCount = (v) => Number.isInteger(v) && v >= 1;

/**
 * The rules the lexical tier reads from `manifest.search` (`k`, `snippet_chars`, `facets`), or
 * null when the table is missing or malformed. Then the engine does not answer early: the
 * Python ranker (`rules.check_search`, the one definition of the table) refuses it with its own
 * message when the full tier loads, so this check never needs to word an error.
 *
 * @param {object} manifest a checked bundle manifest (bundle.js checkManifest)
 * @returns {{k: number, snippet_chars: number, facets: string[]}|null}
 */
export function lexicalTierTable(manifest) {
  const s = manifest?.search;
  if (s === null || typeof s !== "object" || Array.isArray(s)) return null;
  if (!isCount(s.k) || !isCount(s.n) || !isCount(s.snippet_chars)) return null;
  if (!Array.isArray(s.modes) || !s.modes.length || !Array.isArray(s.facets)) return null;
  if (!s.facets.every((f) => FACETS.includes(f)) || new Set(s.facets).size !== s.facets.length) return null;
  return { k: s.k, snippet_chars: s.snippet_chars, facets: s.facets.slice() };
}

/** Python's `repr()` of a str, for messages worded like Python's (`{field!r}`). */
function pyRepr(s) {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s
    .replace(/\\/g, "\\\\")
    .replace(/\n/g, "\\n")
    .replace(/\r/g, "\\r")
    .replace(/\t/g, "\\t");
  return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
}

/** Python `str(v)` for the JSON values a document's meta holds. */
function pyStr(v) {
  if (v === true) return "True";
  if (v === false) return "False";
  if (v === null || v === undefined) return "None";
  return String(v);
}

/** `bm25._values`: a document's values of one field, as strings. */
function values(meta, field) {
  const v = meta?.[field];
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v.map(pyStr) : [pyStr(v)];
}

/**
 * `bm25.allowed_docs`: the documents passing `filters` (`{field: [values]}`, as search.js
 * `filtersJson` normalizes them) as a Uint8Array (1 = passes), or null for no filter. Unknown
 * fields are refused with Python's message.
 */
export function allowedDocs(metas, filters, fields) {
  if (!filters || !Object.keys(filters).length) return null;
  for (const field of Object.keys(filters)) {
    if (!fields.includes(field)) {
      throw new WebsemError(
        `websem: unknown filter field ${pyRepr(field)}; this bundle has filters for ${fields.join(", ") || "no fields"}`,
      );
    }
  }
  const wanted = Object.entries(filters).map(([f, vs]) => [f, new Set(vs)]);
  const allowed = new Uint8Array(metas.length);
  for (let d = 0; d < metas.length; d++) {
    if (wanted.every(([f, vs]) => values(metas[d], f).some((v) => vs.has(v)))) allowed[d] = 1;
  }
  return allowed;
}

/**
 * `bm25.facet_counts`: `{field: [[value, count], ...]}` over `docs` (each document's distinct
 * values), count descending, then value in code-point order.
 */
export function facetCounts(docs, metas, fields) {
  const out = {};
  for (const f of fields) {
    const counts = new Map();
    for (const d of docs) {
      for (const v of new Set(values(metas[d], f))) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    out[f] = [...counts].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  }
  return out;
}

/** One hit's result dict (`Ranker.render`): `row` = its document's id/title/url and its best
 * chunk's anchor/text, the snippet cut around `terms` with UTF-16 highlights. */
function renderHit(row, score, analyzer, terms, snippetChars) {
  const sn = snippet(row.text || "", analyzer, terms, { maxChars: snippetChars });
  return {
    id: row.id ?? null,
    score,
    title: row.title || "",
    url: (row.url || "") + (row.anchor || ""),
    snippet: sn.text,
    highlights: sn.highlights,
  };
}

function tierAnalyzer(config) {
  if (!config) {
    throw new WebsemError("websem: the lexical index header has no analyzer config; rebuild the bundle with `websem build`");
  }
  return createAnalyzer(config);
}

/**
 * The lexical tier of one flat bundle.
 *
 * @param {object} p
 * @param {object[]} p.chunks index/chunks.json ({doc, text, anchor})
 * @param {object[]} p.docs index/docs.json ({id, title, url, meta})
 * @param {object} p.lexical lexical.js openLexical() result (its header's analyzer config)
 * @param {Int32Array|number[]} p.chunkDoc document of each chunk
 * @param {{k: number, snippet_chars: number, facets: string[]}} p.search lexicalTierTable()
 * @returns {{nDocs: number, terms: (query: string) => string[],
 *   search: (query: string, opts: {k: number, filters?: object|null}) => {hits: object[], facets: object}}}
 *   `filters` as `{field: [values]}` (search.js filtersJson's object, or null for none)
 */
export function createLexicalTier({ chunks, docs, lexical, chunkDoc, search }) {
  const analyzer = tierAnalyzer(lexical.analyzer);
  const metas = docs.map((d) => d?.meta ?? {});
  const fields = search.facets;
  return {
    nDocs: docs.length,
    terms: (query) => analyzer.terms(String(query)),
    search(query, { k, filters = null }) {
      const terms = analyzer.terms(String(query));
      const allowed = allowedDocs(metas, filters, fields);
      // Lexical mode: every matching document (facets count them all), then the top k.
      const lex = lexicalDocs(lexical, terms, chunkDoc, allowed, Infinity);
      const facets = facetCounts(lex.docs, metas, fields);
      const hits = [];
      for (let i = 0; i < Math.min(k, lex.docs.length); i++) {
        const doc = docs[lex.docs[i]];
        const chunk = chunks[lex.chunks[i]];
        const row = { id: doc.id, title: doc.title, url: doc.url, anchor: chunk.anchor, text: chunk.text };
        hits.push(renderHit(row, lex.scores[i], analyzer, terms, search.snippet_chars));
      }
      return { hits, facets };
    },
  };
}

const NO_META = Object.freeze({});

/**
 * `bm25.meta_from_facets`: each document's filter values from a partitioned bundle's table.json
 * `facets` (`{field: {value: [doc indices]}}`); documents without any share one empty object.
 */
export function metaFromFacets(facets, nDocs) {
  const metas = new Array(nDocs).fill(NO_META);
  for (const [field, byValue] of Object.entries(facets ?? {})) {
    for (const [value, docs] of Object.entries(byValue)) {
      for (const d of docs) {
        if (!(Number.isInteger(d) && d >= 0 && d < nDocs)) {
          throw new WebsemError(`websem: facet ${field}=${pyRepr(value)} lists document ${JSON.stringify(d)}, not one ` +
            `of the bundle's ${nDocs}; rebuild the bundle with \`websem build\``);
        }
        if (metas[d] === NO_META) metas[d] = {};
        (metas[d][field] ??= []).push(value);
      }
    }
  }
  return metas;
}

/**
 * The lexical tier of a partitioned bundle: the same steps over the lexical shards of the query's
 * terms, and the fragments of the top k (partitioned.js, the shards the full tier uses too).
 *
 * @param {object} p
 * @param {object} p.index partitioned.js openPartitioned() result
 * @param {{k: number, snippet_chars: number, facets: string[]}} p.search lexicalTierTable()
 * @returns {{nDocs: number, terms: (query: string) => string[],
 *   search: (query: string, opts: {k: number, filters?: object|null}) => Promise<{hits: object[], facets: object}>}}
 */
export function createPartitionedLexicalTier({ index, search }) {
  const analyzer = tierAnalyzer(index.lexical.analyzer);
  const metas = metaFromFacets(index.facets, index.nDocs);
  const fields = search.facets;
  return {
    nDocs: index.nDocs,
    terms: (query) => analyzer.terms(String(query)),
    async search(query, { k, filters = null }) {
      const terms = analyzer.terms(String(query));
      const allowed = allowedDocs(metas, filters, fields);
      const lex = await index.lexicalDocs(terms, allowed, Infinity);
      const facets = facetCounts(lex.docs, metas, fields);
      const top = [];
      for (let i = 0; i < Math.min(k, lex.docs.length); i++) top.push([lex.docs[i], lex.chunks[i], lex.scores[i]]);
      const rows = await index.rows(top);
      return { hits: rows.map((row) => renderHit(row, row.score, analyzer, terms, search.snippet_chars)), facets };
    },
  };
}
