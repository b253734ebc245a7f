// websem lexical side in plain JS: BM25 over the bundle's index/lexical.bin.
//
// A port of `LexicalIndex.scores` + `aggregate_docs` in web/text/bm25.py (reference port:
// tests/js/pyodide_lexical.mjs). Query terms come from the shipped Python analyzer (Pyodide), so
// JS only scores. Scores are bit-identical to CPython/Pyodide: idf is stored as float32 (no `log`
// at query time), avgdl is a JSON float, and everything below is + - * / on float64 in the same
// order as Python (docs/hybrid.md, "Bit-identical scores"). Measured ~70x faster than Pyodide.
// A partitioned bundle's lexical shards (partitioned.js) use the same posting decoder, BM25
// arithmetic and document aggregation, exported below, so their scores are the same bits.

import { WebsemError } from "./errors.js";

const MAGIC = [0x57, 0x53, 0x42, 0x4d, 0x32, 0x35, 0x00, 0x01]; // b"WSBM25\x00\x01"
export const LEXICAL_FORMAT = "websem-bm25";
export const LEXICAL_FORMAT_VERSION = 1;

function fail(message) {
  return new WebsemError(message);
}

/**
 * Parse a serialized index (verified bytes of index/lexical.bin). Nothing is decoded up front:
 * postings are decoded per query term, straight from the bytes.
 *
 * @param {Uint8Array} bytes
 * @param {number} [nChunks] chunks in chunks.json (checked against the index)
 */
export function openLexical(bytes, nChunks) {
  if (bytes.length < 12 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw fail("index/lexical.bin is not a websem lexical index (bad magic bytes); rebuild with `websem build`");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = dv.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hlen)));
  if (header.format !== LEXICAL_FORMAT || header.format_version !== LEXICAL_FORMAT_VERSION) {
    throw fail(
      `index/lexical.bin format ${JSON.stringify(header.format)} version ${JSON.stringify(header.format_version)} ` +
        `is not ${LEXICAL_FORMAT} version ${LEXICAL_FORMAT_VERSION}; rebuild the bundle with \`websem build\``,
    );
  }
  if (nChunks != null && header.n_chunks !== nChunks) {
    throw fail(
      `index/lexical.bin has ${header.n_chunks} chunks but index/chunks.json has ${nChunks}; rebuild with \`websem build\``,
    );
  }
  // Typed-array views need aligned offsets; copy once (sections are 4-byte aligned in the file).
  const body = bytes.slice(12 + hlen);
  const section = (name) => header.sections[name];
  const [to, tl] = section("terms");
  const termText = tl ? new TextDecoder().decode(body.subarray(to, to + tl)) : "";
  const terms = termText ? termText.split("\n") : [];
  const termIds = new Map();
  for (let i = 0; i < terms.length; i++) termIds.set(terms[i], i);
  const idf = new Float32Array(body.buffer, section("idf")[0], header.n_terms);
  const offsets = new Uint32Array(body.buffer, section("offsets")[0], header.n_terms + 1);
  const lengths = new Uint32Array(body.buffer, section("lengths")[0], header.n_chunks);
  const [po, pl] = section("postings");
  const postings = body.subarray(po, po + pl);
  if (terms.length !== header.n_terms) throw fail("index/lexical.bin is truncated; rebuild with `websem build`");
  const { k1, b, avgdl } = header;
  // Same expression and order as LexicalIndex.__init__: k1 * (1 - b + b * dl / avgdl).
  const norm = new Float64Array(header.n_chunks);
  for (let c = 0; c < norm.length; c++) norm[c] = bm25Norm(k1, b, avgdl, lengths[c]);
  return { header, analyzer: header.analyzer ?? null, termIds, idf, offsets, postings, norm, nChunks: header.n_chunks };
}

/** One varint at `state.pos` of `p` (advancing it). */
function varint(p, state) {
  let byte = p[state.pos++];
  let v = byte & 0x7f;
  let mul = 128;
  while (byte & 0x80) {
    byte = p[state.pos++];
    v += (byte & 0x7f) * mul; // multiply, not <<: values may exceed 31 bits
    mul *= 128;
  }
  return v;
}

/**
 * Visit the postings in `p[start, end)`, chunks ascending: fn(chunk, tf, dl). Each posting is
 * varint(((chunk - prev - 1) << 1) | (tf == 1)), then varint(tf - 2) when tf >= 2, then, with
 * `withDl` (the partitioned index's lexical shards), varint(dl), the chunk's length in terms;
 * dl is -1 without it. The one decoder of both layouts (docs/architecture.md "Bundle").
 */
export function eachPosting(p, start, end, withDl, fn) {
  const state = { pos: start };
  let c = -1;
  while (state.pos < end) {
    const v = varint(p, state);
    c += Math.floor(v / 2) + 1;
    const tf = v % 2 === 1 ? 1 : varint(p, state) + 2;
    fn(c, tf, withDl ? varint(p, state) : -1);
  }
}

/** BM25's length normalisation of a chunk of `dl` terms: LexicalIndex.__init__'s expression and order. */
export function bm25Norm(k1, b, avgdl, dl) {
  return avgdl > 0 ? k1 * (1 - b + (b * dl) / avgdl) : k1;
}

/** One posting's BM25 contribution, `qtf * (idf * tf / (tf + norm))`, as LexicalIndex.scores. */
export function addPosting(acc, c, qtf, idf, tf, norm) {
  acc.set(c, (acc.get(c) ?? 0) + qtf * ((idf * tf) / (tf + norm)));
}

/** Unique query terms in order of first occurrence, with their counts (LexicalIndex.query_plan). */
export function queryTermCounts(terms) {
  const counts = new Map();
  for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/**
 * BM25 score of every chunk containing a query term (`LexicalIndex.scores`): a Map chunk ->
 * score, accumulated per query term in order of first occurrence, repeats counting qtf times.
 *
 * @param {object} ix from openLexical
 * @param {string[]} terms analyzed query terms (Analyzer.terms in Pyodide)
 */
export function chunkScores(ix, terms) {
  const acc = new Map();
  const norm = ix.norm;
  for (const [t, qtf] of queryTermCounts(terms)) {
    const tid = ix.termIds.get(t);
    if (tid === undefined) continue;
    const idf = ix.idf[tid];
    eachPosting(ix.postings, ix.offsets[tid], ix.offsets[tid + 1], false, (c, tf) => addPosting(acc, c, qtf, idf, tf, norm[c]));
  }
  return acc;
}

/**
 * Documents matching at least one query term, best first (`aggregate_docs`): document score =
 * max over its chunks, best chunk = the lowest-index chunk reaching it; order score descending,
 * then document ascending. `allowed` (Uint8Array, 1 = passes the filters, or null) drops
 * documents before any cut.
 *
 * @param {object} ix from openLexical
 * @param {string[]} terms
 * @param {ArrayLike<number>} chunkDoc document index of each chunk
 * @param {Uint8Array|null} [allowed]
 * @param {number} [limit] keep only the best `limit` documents
 * @returns {{docs: Int32Array, scores: Float64Array, chunks: Int32Array}}
 */
export function lexicalDocs(ix, terms, chunkDoc, allowed = null, limit = Infinity) {
  return aggregateDocs(chunkScores(ix, terms), (c) => chunkDoc[c], allowed, limit);
}

/**
 * `aggregate_docs` over chunk scores (a Map chunk -> score): document score = max over its
 * chunks, best chunk = the lowest-index chunk reaching it; order score descending, then document
 * ascending; documents not in `allowed` dropped before the cut. `docOf(chunk)` -> document.
 * @returns {{docs: Int32Array, scores: Float64Array, chunks: Int32Array}}
 */
export function aggregateDocs(acc, docOf, allowed = null, limit = Infinity) {
  const best = new Map(); // doc -> [score, chunk]
  for (const [c, s] of acc) {
    const d = docOf(c);
    if (allowed && !allowed[d]) continue;
    const cur = best.get(d);
    if (cur === undefined || s > cur[0] || (s === cur[0] && c < cur[1])) best.set(d, [s, c]);
  }
  const order = [...best.keys()];
  order.sort((x, y) => best.get(y)[0] - best.get(x)[0] || x - y);
  const n = Math.min(order.length, limit);
  const out = { docs: new Int32Array(n), scores: new Float64Array(n), chunks: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const [s, c] = best.get(order[i]);
    out.docs[i] = order[i];
    out.scores[i] = s;
    out.chunks[i] = c;
  }
  return out;
}
