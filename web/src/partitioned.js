// websem partitioned index: a bundle whose index the runtime fetches piece by piece
// (manifest.index.layout "partitioned", docs/architecture.md "Bundle").
//
// Always loaded (verified at load): index/part/table.json (list sizes, the lexical term table,
// fragment starts, facet values), centroids.bin (float16 [nlist, dims]) and docmap.bin (uint32
// first chunk of each document). Per query, through the verified shard cache (shards.js):
//   dense:   the `nprobe` lists whose centroids score highest. With manifest.index.ivf.code
//            "binary" (the default) each list's codes shard is scored (ivf.js codeScores), the
//            best max(ivf.rerank, limit) rows (score descending, chunk ascending) are rescored
//            exactly from the row BLOCKS holding them (ivf.block_rows rows each, read as byte
//            ranges of the lists' rows shards and verified against the codes shards' sha256
//            tables, shards.js getBlocks), and only those exact scores rank; with code "rows"
//            every probed list's whole rows shard is scored exactly like the flat index's
//            (dense.js scoreRows);
//   lexical: the term-range shard of each query term, postings with the chunk's length (dl), so
//            BM25 equals the flat index's bit for bit (lexical.js decoder and arithmetic);
//   rows:    the document fragments holding the result page (titles, urls, chunk text).
// The file formats are parsed in ivf.js and lexshards.js.
import { halfTable } from "./bundle.js";
import { scoreHalfRows, scoreRows, topDocs } from "./dense.js";
import { WebsemError } from "./errors.js";
import { blockRange, checkIvf, codeLut, codeScores, parseCodes, parseIvf, parseRecords } from "./ivf.js";
import { compareCodePoints, parseLexShard } from "./lexshards.js";
import { addPosting, aggregateDocs, bm25Norm, eachPosting, queryTermCounts } from "./lexical.js";
import { ShardCache } from "./shards.js";

const REBUILD = "rebuild the bundle with `websem build`";
const TABLE_FORMAT = "websem-partitioned";
const TABLE_FORMAT_VERSION = 2;

function bad(path, what) {
  return new WebsemError(`${path} ${what}; ${REBUILD}`);
}

/** A typed-array view of verified bytes, copied only when they are not aligned for `Type`. */
function view(bytes, Type, path) {
  if (bytes.byteLength % Type.BYTES_PER_ELEMENT) {
    throw bad(path, `has ${bytes.byteLength} bytes, not a multiple of ${Type.BYTES_PER_ELEMENT}`);
  }
  const src = bytes.byteOffset % Type.BYTES_PER_ELEMENT ? bytes.slice() : bytes;
  return new Type(src.buffer, src.byteOffset, src.byteLength / Type.BYTES_PER_ELEMENT);
}

/** The always-loaded paths whose verified bytes the loaded index keeps viewing. */
export function partitionedPaths(manifest) {
  const f = manifest.index.files;
  return new Set([f.centroids, f.docmap]);
}

/**
 * Load the always-loaded files of a partitioned bundle (verified by `files`, bundle.js
 * VerifiedFiles) and set up its shard cache.
 *
 * @param {object} files VerifiedFiles of the bundle
 * @param {object} manifest the checked manifest (layout "partitioned")
 * @param {{cacheBytes?: number}} [opts]
 * @returns {Promise<PartitionedIndex>}
 */
export async function openPartitioned(files, manifest, { cacheBytes } = {}) {
  const cache = new ShardCache(files.base, manifest, files.fetch, { cacheBytes });
  const paths = manifest.index.files;
  const [table, centroids, docmap] = await Promise.all([
    files.json(paths.table),
    files.bytes(paths.centroids),
    files.bytes(paths.docmap),
  ]);
  return new PartitionedIndex(manifest, table, view(centroids, Uint16Array, paths.centroids),
    view(docmap, Uint32Array, paths.docmap), cache);
}

export class PartitionedIndex {
  constructor(manifest, table, centroids, docmap, cache) {
    const ix = manifest.index;
    const tpath = ix.files.table;
    if (table?.format !== TABLE_FORMAT || table.format_version !== TABLE_FORMAT_VERSION) {
      throw bad(tpath, `is not ${TABLE_FORMAT} version ${TABLE_FORMAT_VERSION} (format ${JSON.stringify(table?.format)}, ` +
        `version ${JSON.stringify(table?.format_version)})`);
    }
    for (const key of ["chunks", "docs", "dims"]) {
      if (table[key] !== ix[key]) throw bad(tpath, `says ${key} ${table[key]} but manifest.index says ${ix[key]}`);
    }
    this.layout = "partitioned";
    this.n = table.chunks;
    this.nDocs = table.docs;
    this.dims = table.dims;
    this.vectorDtype = ix.vector_dtype;
    this.nlist = ix.ivf.nlist;
    this.nprobe = ix.ivf.nprobe;
    this.code = ix.ivf.code ?? "rows"; // bundle.js checkPartitioned: "binary" has shards.codes and rerank
    this.rerank = ix.ivf.rerank ?? 0;
    this.blockRows = ix.ivf.block_rows;
    if (!Number.isInteger(this.blockRows) || this.blockRows < 1) {
      throw new WebsemError(`manifest.index.ivf.block_rows is ${JSON.stringify(this.blockRows)} but must be an ` +
        `integer >= 1 (rows a block of an IVF list); ${REBUILD}`);
    }
    if (table.ivf?.nlist !== this.nlist || table.ivf.sizes?.length !== this.nlist) {
      throw bad(tpath, `has ${table.ivf?.sizes?.length} IVF list sizes but manifest.index.ivf.nlist is ${this.nlist}`);
    }
    this.sizes = Int32Array.from(table.ivf.sizes);
    if (centroids.length !== this.nlist * this.dims) {
      throw bad(ix.files.centroids, `holds ${centroids.length / this.dims} centroids but nlist is ${this.nlist}`);
    }
    this.centroids = centroids;
    if (docmap.length !== this.nDocs + 1 || docmap[this.nDocs] !== this.n) {
      throw bad(ix.files.docmap, `holds ${docmap.length} entries ending at ${docmap.at(-1)}, not ${this.nDocs + 1} ending at ${this.n}`);
    }
    this.docmap = docmap;
    const lex = table.lexical ?? {};
    this.lexical = { k1: lex.k1, b: lex.b, avgdl: lex.avgdl, analyzer: lex.analyzer ?? null };
    this.lexFirst = (lex.shards ?? []).map((s) => s[0]);
    this.lexTerms = (lex.shards ?? []).map((s) => s[1]);
    this.fragments = Int32Array.from(table.fragments ?? []);
    if (this.nDocs > 0 && this.fragments[0] !== 0) throw bad(tpath, "has no fragment table starting at document 0");
    this.facets = table.facets ?? {};
    this.shards = ix.shards;
    this.cache = cache;
    this.allLists = new Int32Array(this.nlist); // every list may be probed (topDocs skips < 0)
  }

  /** The shard file of `kind` ("ivf", "lexical", "fragments") number `i`. */
  shardPath(kind, i) {
    return this.shards[kind].replace("{}", String(i));
  }

  /** Document of chunk `c`: the last d with docmap[d] <= c. */
  docOf(c) {
    const m = this.docmap;
    let lo = 0;
    let hi = this.nDocs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (m[mid] <= c) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * The lists to probe for `q` (Float64Array): centroid scores in float64, index order, over the
   * float16 centroids; the top `nprobe` by score descending, then list ascending.
   * @returns {Int32Array}
   */
  probe(q) {
    const scores = new Float64Array(this.nlist);
    scoreHalfRows(this.centroids, halfTable(), q, this.dims, this.nlist, scores);
    return topDocs(scores, this.allLists, this.nprobe);
  }

  /**
   * Dense document ranking over the probed lists: document = max over its scored chunks (lowest
   * chunk on ties), documents not in `allowed` dropped before the cut, best `limit` first.
   * @returns {Promise<{docs: Int32Array, scores: Float64Array, chunks: Int32Array}>}
   */
  async denseDocs(query, limit, allowed = null) {
    const q = Float64Array.from(query);
    const lists = this.probe(q);
    if (this.code === "binary") {
      return this.#rank([await this.#reranked(q, lists, Math.max(this.rerank, limit), allowed)], limit, null);
    }
    const shards = await Promise.all(Array.from(lists, (l) => this.ivf(l)));
    let out = new Float64Array(0);
    const parts = shards.map((sh) => {
      if (out.length < sh.count) out = new Float64Array(sh.count);
      scoreRows(sh.rows, sh.scales, q, this.dims, sh.count, out);
      return { count: sh.count, chunks: sh.chunks, docs: sh.docs, scores: out.slice(0, sh.count) };
    });
    return this.#rank(parts, limit, allowed);
  }

  /**
   * Code "binary": the best `want` probed rows by code score (score descending, chunk ascending;
   * rows of documents outside `allowed` dropped first), rescored exactly from the row blocks
   * holding them. Returns one part `{count, chunks, docs, scores}` (exact scores).
   */
  async #reranked(q, lists, want, allowed) {
    const coded = await Promise.all(Array.from(lists, (l) => this.codes(l)));
    let total = 0;
    for (const sh of coded) total += sh.count;
    // Per-query arrays over the probed rows (~8,000 at 1M chunks) are views of buffers kept
    // across queries: allocated per query they were a few hundred KB of typed-array garbage, which
    // the renderer held until the next GC (V8 collects by external-memory growth).
    const chunks = this.#scratch("chunks", Int32Array, total);
    const approx = this.#scratch("approx", Float64Array, total);
    const from = this.#scratch("from", Int32Array, total); // the probed list's place in `lists`
    const starts = new Int32Array(coded.length); // where each probed list's rows start
    const width = (this.dims + 7) >> 3;
    const lut = codeLut(q, width, this.#scratch("lut", Float64Array, width * 256));
    let at = 0;
    coded.forEach((sh, p) => {
      codeScores(sh.codes, width, sh.count, lut, approx.subarray(at, at + sh.count));
      chunks.set(sh.chunks, at);
      from.fill(p, at, at + sh.count);
      starts[p] = at;
      at += sh.count;
    });
    // topDocs ranks by score, ties to the lower index: put the rows in chunk order first, and
    // mark rows of documents outside `allowed` with -1 (skipped).
    const order = this.#scratch("order", Int32Array, total);
    for (let i = 0; i < total; i++) order[i] = i;
    order.sort((a, b) => chunks[a] - chunks[b]);
    const s = this.#scratch("s", Float64Array, total);
    const keep = this.#scratch("keep", Int32Array, total);
    for (let i = 0; i < total; i++) {
      const r = order[i];
      s[i] = approx[r];
      keep[i] = allowed !== null && !allowed[this.docOf(chunks[r])] ? -1 : chunks[r];
    }
    // Each candidate as [probed list's place, position in its list, chunk]: taken now, since the
    // scratch buffers belong to whichever query runs next once this one awaits its blocks.
    const top = Array.from(topDocs(s, keep, want), (i) => {
      const r = order[i];
      return [from[r], r - starts[from[r]], chunks[r]];
    });
    // Rescore: per list, the blocks holding its candidates (a row at position `pos` of its list
    // is in block floor(pos / block_rows)), read in probe order.
    const B = this.blockRows;
    const need = new Map(); // p -> Set of block numbers
    for (const [p, pos] of top) {
      if (!need.has(p)) need.set(p, new Set());
      need.get(p).add(Math.floor(pos / B));
    }
    const blocks = new Map(await Promise.all([...need].sort((a, b) => a[0] - b[0]).map(async ([p, ks]) => {
      const sorted = [...ks].sort((a, b) => a - b);
      const got = await this.rowBlocks(lists[p], coded[p], sorted);
      return [p, new Map(sorted.map((k, i) => [k, got[i]]))];
    })));
    const n = top.length;
    const part = { count: n, chunks: new Int32Array(n), docs: new Int32Array(n), scores: new Float64Array(n) };
    const one = new Float64Array(1);
    top.forEach(([p, pos, c], i) => {
      const block = blocks.get(p).get(Math.floor(pos / B));
      const o = pos % B;
      const rowAt = block.rows.subarray(o * this.dims, (o + 1) * this.dims);
      scoreRows(rowAt, block.scales ? block.scales.subarray(o, o + 1) : null, q, this.dims, 1, one);
      part.chunks[i] = c;
      part.docs[i] = this.docOf(c);
      part.scores[i] = one[0];
    });
    return part;
  }

  /** A `Type` view of length `n` over the grow-only buffer `name` (contents unspecified). */
  #scratch(name, Type, n) {
    const bufs = (this.scratchBufs ??= new Map());
    let b = bufs.get(name);
    if (!b || b.length < n) {
      b = new Type(Math.max(n, b ? 2 * b.length : 0));
      bufs.set(name, b);
    }
    return b.subarray(0, n);
  }

  /**
   * Blocks `ks` (ascending) of IVF list `l`'s rows shard, verified against the sha256 table of
   * its parsed codes shard `coded`: `[{count, scales, rows, heldBytes}]` in `ks` order.
   */
  rowBlocks(l, coded, ks) {
    const path = this.shardPath("ivf", l);
    const { dims, vectorDtype: dtype } = this;
    const B = this.blockRows;
    const count = coded.count;
    return this.cache.getBlocks(path, {
      blocks: ks,
      count: Math.ceil(count / B),
      range: (k) => blockRange(count, dims, dtype, B, k),
      hashes: coded.hashes,
      hashPath: this.shardPath("codes", l),
      parse: (bytes, k) => parseRecords(bytes, dims, dtype, Math.min(B, count - k * B)),
      // The whole file (a server that ignores Range): its header and chunk order must be the
      // codes shard's.
      check: (bytes) => {
        const whole = checkIvf(bytes, path, this.#expect(l));
        if (whole.chunks.some((c, i) => c !== coded.chunks[i])) {
          throw bad(path, `lists its chunks in another order than ${this.shardPath("codes", l)}`);
        }
      },
    });
  }

  #expect(l) {
    return { list: l, dims: this.dims, dtype: this.vectorDtype, size: this.sizes[l], chunks: this.n, blockRows: this.blockRows };
  }

  /** Document ranking of scored parts ({count, chunks, docs, scores}): max per document. */
  #rank(parts, limit, allowed) {
    // slot: each scored document's place in the per-query arrays. A Map over the documents this
    // query touched (at most the rerank candidates, or the probed lists' rows): a buffer of one
    // int32 a document would hold 4 MB for the engine's life at 1M documents.
    const slot = new Map();
    const best = [];
    const bestChunk = [];
    for (const sh of parts) {
      const { chunks, docs, scores: out } = sh;
      for (let i = 0; i < sh.count; i++) {
        const d = docs[i];
        if (allowed !== null && !allowed[d]) continue;
        const s = out[i];
        const c = chunks[i];
        const at = slot.get(d);
        if (at === undefined) {
          slot.set(d, best.length);
          best.push(s);
          bestChunk.push(c);
        } else if (s > best[at] || (s === best[at] && c < bestChunk[at])) {
          best[at] = s;
          bestChunk[at] = c;
        }
      }
    }
    // Documents ascending, so topDocs' tie rule (lower index first) is the document's.
    const docs = Int32Array.from(slot.keys()).sort();
    const bs = new Float64Array(docs.length);
    const bc = new Int32Array(docs.length);
    for (let i = 0; i < docs.length; i++) {
      const at = slot.get(docs[i]);
      bs[i] = best[at];
      bc[i] = bestChunk[at];
    }
    const order = topDocs(bs, bc, limit);
    const res = { docs: new Int32Array(order.length), scores: new Float64Array(order.length), chunks: new Int32Array(order.length) };
    for (let i = 0; i < order.length; i++) {
      res.docs[i] = docs[order[i]];
      res.scores[i] = bs[order[i]];
      res.chunks[i] = bc[order[i]];
    }
    return res;
  }

  /** IVF list `l`, parsed, with each row's document (`docs`, found once per fetch). */
  ivf(l) {
    return this.cache.get(this.shardPath("ivf", l), (bytes) => {
      const sh = parseIvf(bytes, this.shardPath("ivf", l), this.#expect(l));
      sh.docs = Int32Array.from(sh.chunks, (c) => this.docOf(c));
      sh.heldBytes += 4 * sh.count;
      return sh;
    });
  }

  /** Codes shard of IVF list `l` (code "binary"), parsed. */
  codes(l) {
    const path = this.shardPath("codes", l);
    return this.cache.get(path, (bytes) =>
      parseCodes(bytes, path, this.#expect(l)));
  }

  /** The lexical shard holding `term` (the last whose first term <= term, code point order), or -1. */
  lexShardOf(term) {
    const first = this.lexFirst;
    let lo = 0;
    let hi = first.length - 1;
    if (hi < 0 || compareCodePoints(first[0], term) > 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (compareCodePoints(first[mid], term) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  lexShard(j) {
    return this.cache.get(this.shardPath("lexical", j), (bytes) =>
      parseLexShard(bytes, this.shardPath("lexical", j), { shard: j, terms: this.lexTerms[j] }));
  }

  /**
   * BM25 document ranking of the analyzed query `terms` (lexical.js lexicalDocs over the shards
   * holding them): every matching document, or the best `limit`.
   */
  async lexicalDocs(terms, allowed = null, limit = Infinity) {
    const counts = queryTermCounts(terms);
    const need = new Map(); // shard -> promise, each fetched once
    const where = new Map(); // term -> shard
    for (const t of counts.keys()) {
      const j = this.lexShardOf(t);
      where.set(t, j);
      if (j >= 0 && !need.has(j)) need.set(j, this.lexShard(j));
    }
    const shards = new Map();
    await Promise.all([...need].map(async ([j, p]) => shards.set(j, await p)));
    const { k1, b, avgdl } = this.lexical;
    const acc = new Map();
    for (const [t, qtf] of counts) {
      const sh = shards.get(where.get(t));
      const tid = sh?.termIds.get(t);
      if (tid === undefined) continue;
      const idf = sh.idf[tid];
      eachPosting(sh.postings, sh.offsets[tid], sh.offsets[tid + 1], true, (c, tf, dl) =>
        addPosting(acc, c, qtf, idf, tf, bm25Norm(k1, b, avgdl, dl)));
    }
    return aggregateDocs(acc, (c) => this.docOf(c), allowed, limit);
  }

  /** Fragment holding document `d`: the last f with fragments[f] <= d. */
  fragmentOf(d) {
    const f = this.fragments;
    let lo = 0;
    let hi = f.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f[mid] <= d) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Fragment `f`'s bytes parsed and checked: `{first, docs}`. The shard cache holds fragments as
   * their verified bytes, not parsed: a fragment holds ~50 documents of which a result page reads
   * one, and the bytes are exactly what the cache charges, outside the JS heap (parsed, each
   * cached fragment cost about twice its bytes in strings and objects). Parsing the ~10
   * fragments of a result page takes about a millisecond. Bytes that fail here passed their
   * sha256, so fetching them again would not help: the error names the build as the remedy.
   */
  #parseFragment(f, bytes) {
    const path = this.shardPath("fragments", f);
    const first = this.fragments[f];
    const end = f + 1 < this.fragments.length ? this.fragments[f + 1] : this.nDocs;
    let value;
    try {
      value = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw bad(path, `is not valid JSON (${e.message})`);
    }
    if (value?.first !== first || !Array.isArray(value.docs) || value.docs.length !== end - first) {
      throw bad(path, `does not hold documents ${first} to ${end - 1}`);
    }
    return value;
  }

  /**
   * The rows of `hits` ([[doc, chunk, score], ...], bridge.rank) for bridge.render, from the
   * fragments holding them (each fetched once): `{id, title, url, anchor, text, score}`.
   * All fragments' bytes arrive first, then each is parsed, read and dropped in turn: parsed
   * documents held across the fetches' waits would outlive the young-generation collections that
   * run meanwhile, and a heap whose young objects keep surviving grows its young generation.
   */
  async rows(hits) {
    const need = new Map();
    for (const [d] of hits) {
      const f = this.fragmentOf(d);
      if (!need.has(f)) need.set(f, this.cache.get(this.shardPath("fragments", f)));
    }
    const bytes = new Map();
    await Promise.all([...need].map(async ([f, p]) => bytes.set(f, await p)));
    const out = new Array(hits.length);
    for (const [f, b] of bytes) {
      const frag = this.#parseFragment(f, b);
      hits.forEach(([d, c, score], i) => {
        if (this.fragmentOf(d) !== f) return;
        const doc = frag.docs[d - frag.first];
        const chunk = doc.chunks?.[c - this.docmap[d]];
        if (!chunk) throw bad(this.shardPath("fragments", f), `has no chunk ${c} for document ${d}`);
        out[i] = { id: doc.id ?? null, title: doc.title ?? null, url: doc.url ?? null, anchor: chunk.anchor ?? null, text: chunk.text ?? null, score };
      });
    }
    return out;
  }
}
