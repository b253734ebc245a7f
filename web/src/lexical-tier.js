// websem flat ranking in plain JS: a flat bundle's whole query pipeline after scoring, in both
// tiers (docs/architecture.md, "Tiers").
//
// `createFlatRanker` is the JS twin of web/text/ranker.py `Ranker.results` over a flat bundle's
// chunks.json, docs.json and lexical.bin: query terms from the analyzer's twin (analyze.js, built
// from the index header's analyzer config), filters (`bm25.allowed_docs`), BM25 (lexical.js,
// proven equal to Python), fusion (fusion.js, the twin of fusion.py), facet counts over each
// mode's candidates (`bm25.facet_counts`), the top k, and snippets with highlights in UTF-16 code
// units (snippet.js). The dense side is the caller's (dense.js, with the query embedding).
//
// The lexical tier (`createLexicalTier`) answers with it in mode lexical as soon as those three
// files are verified, before Pyodide and the model; the full tier (search.js) reuses the same
// ranker, so the files are parsed and held once, and ranks every mode with it: Pyodide only
// tokenizes the query for the model. Proven equal to `websem query --json` (ids, scores to the
// bit, titles, urls, snippets, highlights, facets, with filters, every fusion setting) by
// tests/test_lexical_tier.py (mode lexical) and tests/test_full_tier.py (every mode, under Node),
// and in Chromium by tests/browser (test_progressive.py, test_browser_hybrid.py). A partitioned
// bundle's lexical tier does the same over the lexical shards and document fragments a query
// needs (partitioned.js); its full tier ranks in Pyodide (search.js).
import { createAnalyzer } from "./analyze.js";
import { WebsemError } from "./errors.js";
import { MODES, checkFusion, fuse } from "./fusion.js";
import { lexicalDocs } from "./lexical.js";
import { compareCodePoints } from "./lexshards.js";
import { snippet } from "./snippet.js";

/** `rules.FACETS`: the filter fields a document may carry. */
const FACETS = ["tags", "section", "language"];

const isCount = (v) => Number.isInteger(v) && v >= 1;

/**
 * The rules the lexical tier reads from `manifest.search` (`k`, `n`, `snippet_chars`, `facets`),
 * or null when the table is missing or malformed. Then the engine does not answer early: the
 * Python ranker (`rules.check_search`, the one definition of the table) refuses it with its own
 * message when the full tier loads, so this check never needs to word an error.
 *
 * @param {object} manifest a checked bundle manifest (bundle.js checkManifest)
 * @returns {{k: number, n: number, snippet_chars: number, facets: string[]}|null}
 */
export function lexicalTierTable(manifest) {
  const s = manifest?.search;
  if (s === null || typeof s !== "object" || Array.isArray(s)) return null;
  if (!isCount(s.k) || !isCount(s.n) || !isCount(s.snippet_chars)) return null;
  if (!Array.isArray(s.modes) || !s.modes.length || !Array.isArray(s.facets)) return null;
  if (!s.facets.every((f) => FACETS.includes(f)) || new Set(s.facets).size !== s.facets.length) return null;
  return { k: s.k, n: s.n, snippet_chars: s.snippet_chars, facets: s.facets.slice() };
}

/** `rules._KEYS`: the entries of a `manifest.search` table, every one required. */
const SEARCH_KEYS = ["modes", "k", "n", "snippet_chars", "facets", "fusion"];

/** `rules._names`: a list of distinct names from `allowed` (at least one unless `empty`). */
function isNames(v, allowed, empty) {
  return Array.isArray(v) && (empty || v.length > 0) && new Set(v.map(String)).size === v.length &&
    v.every((x) => allowed.includes(x));
}

/**
 * The whole `manifest.search` table as `rules.check_search` accepts it (modes, k, n,
 * snippet_chars, facets and the fusion settings, `fusion.js` checkFusion), for the full tier to
 * rank every mode in JS; null when check_search would refuse it. Then the full tier sets up the
 * Python ranker instead, whose check_search error is what the user sees, worded once, in Python.
 *
 * @param {object} manifest a checked bundle manifest
 * @returns {{modes: string[], k: number, n: number, snippet_chars: number, facets: string[],
 *   fusion: object}|null}
 */
export function fullTierTable(manifest) {
  const s = manifest?.search;
  if (s === null || typeof s !== "object" || Array.isArray(s)) return null;
  const keys = Object.keys(s);
  if (SEARCH_KEYS.some((key) => !keys.includes(key)) || keys.some((key) => !SEARCH_KEYS.includes(key))) return null;
  if (!isCount(s.k) || !isCount(s.n) || !isCount(s.snippet_chars)) return null;
  if (!isNames(s.modes, MODES, false) || !isNames(s.facets, FACETS, true)) return null;
  let fusion;
  try {
    fusion = checkFusion(s.fusion);
  } catch {
    return null;
  }
  return { modes: s.modes.slice(), k: s.k, n: s.n, snippet_chars: s.snippet_chars, facets: s.facets.slice(), fusion };
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
 * `normalizeFilters` makes them) as a Uint8Array (1 = passes), or null for no filter. Unknown
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

const NO_DOCS = Object.freeze({ docs: [], scores: [], chunks: [] });

/**
 * The ranker of one flat bundle, in JS: `Ranker.results` (web/text/ranker.py) split into the
 * steps the caller interleaves with dense scoring (search.js): `terms` and `allowed` (the plan),
 * `lexicalDocs` (BM25), then `finish` (fusion, facets, the top k, snippets).
 *
 * @param {object} p
 * @param {object[]} p.chunks index/chunks.json ({doc, text, anchor})
 * @param {object[]} p.docs index/docs.json ({id, title, url, meta})
 * @param {object} p.lexical lexical.js openLexical() result (its header's analyzer config)
 * @param {Int32Array|number[]} p.chunkDoc document of each chunk
 * @param {{n: number, snippet_chars: number, facets: string[], fusion?: object}} p.search
 *   fullTierTable() (every mode), or lexicalTierTable() (mode lexical only: no fusion)
 * @returns {object} `{nDocs, chunks, docs, chunkDoc, search, terms, allowed, lexicalDocs, finish}`;
 *   `chunkDoc` is writable (the full tier hands it the index's validated Int32Array, the same
 *   values, so one copy is held)
 */
export function createFlatRanker({ chunks, docs, lexical, chunkDoc, search }) {
  const analyzer = tierAnalyzer(lexical.analyzer);
  const metas = docs.map((d) => d?.meta ?? {});
  const fields = search.facets;
  const ranker = {
    nDocs: docs.length,
    chunks,
    docs,
    chunkDoc,
    search,
    /** `Analyzer.terms`: the query's index terms. */
    terms: (query) => analyzer.terms(String(query)),
    /** `Ranker.allowed`: the documents passing `filters` ({field: [values]} or null) as a
     * Uint8Array (1 = passes), or null for all; an unknown field is refused with Python's words. */
    allowed: (filters) => allowedDocs(metas, filters, fields),
    /** BM25 document ranking (`Ranker.lexical_docs`), the best `limit` documents. */
    lexicalDocs: (terms, allowed, limit = Infinity) => lexicalDocs(lexical, terms, ranker.chunkDoc, allowed, limit),
    /**
     * `Ranker.results` after scoring: `{hits, facets}` of one query from each side's ranking
     * (`{docs, scores, chunks}`, filtered, best first): `lexical` every match in mode lexical,
     * at least the top n in hybrid, null in semantic mode; `semantic` the top max(k, n), null in
     * lexical mode. Facets count the candidates: lexical = every match, semantic = its top n,
     * hybrid = the union of both top n.
     */
    finish(terms, { mode, k, lexical: lex = null, semantic: sem = null }) {
      if (mode !== "lexical" && !search.fusion) {
        throw new WebsemError(`websem: this ranker has the lexical tier's rules only; mode ${JSON.stringify(mode)} needs ` +
          "manifest.search read whole (lexical-tier.js fullTierTable)");
      }
      lex ??= NO_DOCS;
      sem ??= NO_DOCS;
      const n = search.n;
      const hits = fuse(mode, { lexical: lex, semantic: sem, k, n, fusion: search.fusion ?? null });
      let candidates;
      if (mode === "lexical") candidates = lex.docs;
      else if (mode === "semantic") candidates = sem.docs.slice(0, n);
      else candidates = new Set([...lex.docs.slice(0, n), ...sem.docs.slice(0, n)]);
      const facets = facetCounts(candidates, metas, fields);
      const out = hits.map((h) => {
        const doc = docs[h.doc];
        const chunk = chunks[h.chunk];
        const row = { id: doc.id, title: doc.title, url: doc.url, anchor: chunk.anchor, text: chunk.text };
        return renderHit(row, h.score, analyzer, terms, search.snippet_chars);
      });
      return { hits: out, facets };
    },
  };
  return ranker;
}

/**
 * The lexical tier of one flat bundle: `createFlatRanker` answering in mode lexical.
 *
 * @param {object} p as createFlatRanker; `search`: lexicalTierTable(), or fullTierTable() when
 *   the full tier is to reuse this tier's ranker (`ranker`)
 * @returns {{nDocs: number, ranker: object, terms: (query: string) => string[],
 *   search: (query: string, opts: {k: number, filters?: object|null}) => {hits: object[], facets: object}}}
 *   `filters` as `{field: [values]}` (search.js normalizeFilters, or null for none)
 */
export function createLexicalTier(p) {
  const ranker = createFlatRanker(p);
  return {
    nDocs: ranker.nDocs,
    ranker,
    terms: ranker.terms,
    search(query, { k, filters = null }) {
      const terms = ranker.terms(query);
      const allowed = ranker.allowed(filters);
      // Lexical mode: every matching document (facets count them all), then the top k.
      return ranker.finish(terms, { mode: "lexical", k, lexical: ranker.lexicalDocs(terms, allowed, Infinity) });
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
