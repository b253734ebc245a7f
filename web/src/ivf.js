// websem IVF list shards of a partitioned index (docs/architecture.md "Bundle"), little-endian.
//
// Rows shard index/ivf/{l}.bin:
//   b"WSIVF\x00\x00\x02" | u32 count | u32 dims | u32 list | u32 dtype (0 float16, 1 int8)
//   | u32 block_rows | u32 chunk[count] | count fixed-size RECORDS in list order:
//   int8 record = f32 scale + int8[dims]; float16 record = f16[dims].
// Block k = records [k*B, min((k+1)*B, count)) (B = block_rows): the unit a query fetches as an
// HTTP byte range (shards.js getBlocks) and verifies against the sha256 table of the list's codes
// shard. Chunk ids are a permutation of the list's chunks (rows near each other in vector space
// share blocks), in the same order as in the codes shard.
// Rows are the flat index's stored rows of those chunks. Float16 rows are widened to float32
// once, here (what the flat index does at load), so scoring runs the same loop on the same values
// (dense.js scoreRows) and a cached list or block costs no decoding per query.
import { halfTable } from "./bundle.js";
import { WebsemError } from "./errors.js";

export const IVF_MAGIC = [0x57, 0x53, 0x49, 0x56, 0x46, 0x00, 0x00, 0x02]; // b"WSIVF\x00\x00\x02"
export const IVF_DTYPES = ["float16", "int8"];
export const IVF_HEADER = 28;

function bad(path, what) {
  return new WebsemError(`${path} ${what}; rebuild the bundle with \`websem build\``);
}

/** Bytes of one record of `dims` components of `dtype` ("int8": f32 scale + int8 row). */
export function recordBytes(dims, dtype) {
  return dtype === "int8" ? 4 + dims : 2 * dims;
}

/**
 * Byte range [start, end) of block `k` in the rows shard of a list of `count` rows, `blockRows`
 * rows a block.
 */
export function blockRange(count, dims, dtype, blockRows, k) {
  const rec = recordBytes(dims, dtype);
  const at = IVF_HEADER + 4 * count;
  return [at + k * blockRows * rec, at + Math.min((k + 1) * blockRows, count) * rec];
}

/** Chunk ids at `at`, each below `chunks` and none twice (else a WebsemError naming `path`). */
function readIds(dv, at, count, chunks, path) {
  const ids = new Uint32Array(count);
  const seen = new Set();
  for (let i = 0; i < count; i++) {
    const c = dv.getUint32(at + 4 * i, true);
    if (c >= chunks) throw bad(path, `lists chunk ${c}, past the index's ${chunks} chunks`);
    if (seen.has(c)) throw bad(path, `lists chunk ${c} twice`);
    seen.add(c);
    ids[i] = c;
  }
  return ids;
}

/**
 * Decode `n` records (verified bytes of one block, or of a whole list) into
 * `{count, scales: Float32Array|null, rows: Float32Array|Int8Array, heldBytes}`.
 */
export function parseRecords(bytes, dims, dtype, n) {
  if (dtype === "int8") {
    const rec = 4 + dims;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const scales = new Float32Array(n);
    const rows = new Int8Array(n * dims);
    for (let r = 0; r < n; r++) {
      scales[r] = dv.getFloat32(r * rec, true);
      rows.set(new Int8Array(bytes.buffer, bytes.byteOffset + r * rec + 4, dims), r * dims);
    }
    return { count: n, scales, rows, heldBytes: 4 * n + rows.length };
  }
  const half = halfTable();
  const raw = bytes.byteOffset % 2
    ? new Uint16Array(bytes.slice(0, 2 * n * dims).buffer)
    : new Uint16Array(bytes.buffer, bytes.byteOffset, n * dims);
  const rows = new Float32Array(n * dims);
  for (let i = 0; i < rows.length; i++) rows[i] = half[raw[i]];
  return { count: n, scales: null, rows, heldBytes: 4 * rows.length };
}

/**
 * Check the header, size and chunk ids of the verified bytes of a whole IVF list `expect.list`
 * (what a server that ignores Range sends for a block read): `{count, chunks, at}`, `at` where
 * the records start.
 *
 * @param {Uint8Array} bytes
 * @param {string} path the shard's bundle path (for messages)
 * @param {{list: number, dims: number, dtype: string, size: number, chunks: number,
 *   blockRows: number}} expect what the manifest and table.json say: list number, dims, vector
 *   dtype, row count, the index's chunk count (every chunk id must be below it) and block_rows
 * @returns {{count: number, chunks: Uint32Array, at: number}}
 */
export function checkIvf(bytes, path, expect) {
  if (bytes.length < IVF_HEADER || IVF_MAGIC.some((b, i) => bytes[i] !== b)) {
    const v1 = bytes.length >= 8 && IVF_MAGIC.slice(0, 7).every((b, i) => bytes[i] === b);
    throw bad(path, v1 ? `is IVF list format version ${bytes[7]}, not 2` : "is not a websem IVF list (bad magic bytes)");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [count, dims, list, code, blockRows] = [8, 12, 16, 20, 24].map((o) => dv.getUint32(o, true));
  const dtype = IVF_DTYPES[code];
  if (list !== expect.list || dims !== expect.dims || dtype !== expect.dtype || count !== expect.size ||
      blockRows !== expect.blockRows) {
    throw bad(path, `holds list ${list} (${count} rows, ${dims} dims, dtype ${dtype ?? code}, ${blockRows} rows a block) ` +
      `but the index expects list ${expect.list} (${expect.size} rows, ${expect.dims} dims, ${expect.dtype}, ` +
      `${expect.blockRows} rows a block)`);
  }
  const at = IVF_HEADER + 4 * count;
  const want = at + count * recordBytes(dims, dtype);
  if (bytes.length !== want) throw bad(path, `has ${bytes.length} bytes, not ${want}`);
  return { count, chunks: readIds(dv, IVF_HEADER, count, expect.chunks, path), at };
}

/**
 * Parse the verified bytes of a whole IVF list `expect.list` (checkIvf, then its records).
 *
 * @param {Uint8Array} bytes
 * @param {string} path the shard's bundle path (for messages)
 * @param {object} expect as checkIvf
 * @returns {{count: number, chunks: Uint32Array, scales: Float32Array|null,
 *   rows: Float32Array|Int8Array, heldBytes: number}}
 */
export function parseIvf(bytes, path, expect) {
  const { count, chunks, at } = checkIvf(bytes, path, expect);
  const parsed = parseRecords(bytes.subarray(at), expect.dims, expect.dtype, count);
  return { ...parsed, chunks, heldBytes: parsed.heldBytes + 4 * count };
}

// Binary codes shards (index/code/{l}.bin, manifest.index.ivf.code "binary"), little-endian:
//   b"WSCOD\x00\x00\x02" | u32 count | u32 dims | u32 list | u32 block_rows | u32 chunk[count]
//   | u8 code[count, ceil(dims / 8)]: bit j (byte j >> 3, bit j & 7) = stored component j > 0
//   | sha256[ceil(count / block_rows)][32]: raw digest of each block of the rows shard
// A probed row's code score is the query's dot product with the row's signs (+-1), through a
// per-query table of byte values (codeLut): 48 additions a row at 384 dims. The same float64
// additions in the same order as web/partitioned.py code_lut / code_scores, so both readers pick
// the same rerank candidates.
export const CODE_MAGIC = [0x57, 0x53, 0x43, 0x4f, 0x44, 0x00, 0x00, 0x02]; // b"WSCOD\x00\x00\x02"
const CODE_HEADER = 24;

/**
 * Parse the verified bytes of codes shard `expect.list`.
 *
 * @param {Uint8Array} bytes
 * @param {string} path the shard's bundle path (for messages)
 * @param {{list: number, dims: number, size: number, chunks: number, blockRows: number}} expect as parseIvf
 * @returns {{count: number, width: number, blockRows: number, chunks: Uint32Array, codes: Uint8Array,
 *   hashes: Uint8Array, heldBytes: number}} hashes: 32 bytes a block of the rows shard
 */
export function parseCodes(bytes, path, expect) {
  if (bytes.length < CODE_HEADER || CODE_MAGIC.some((b, i) => bytes[i] !== b)) {
    const v1 = bytes.length >= 8 && CODE_MAGIC.slice(0, 7).every((b, i) => bytes[i] === b);
    throw bad(path, v1 ? `is codes shard format version ${bytes[7]}, not 2` : "is not a websem codes shard (bad magic bytes)");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [count, dims, list, blockRows] = [8, 12, 16, 20].map((o) => dv.getUint32(o, true));
  if (list !== expect.list || dims !== expect.dims || count !== expect.size || blockRows !== expect.blockRows) {
    throw bad(path, `holds list ${list} (${count} rows, ${dims} dims, ${blockRows} rows a block) but the index ` +
      `expects list ${expect.list} (${expect.size} rows, ${expect.dims} dims, ${expect.blockRows} rows a block)`);
  }
  const width = (dims + 7) >> 3;
  const blocks = Math.ceil(count / blockRows);
  const codesAt = CODE_HEADER + 4 * count;
  const hashesAt = codesAt + count * width;
  const want = hashesAt + 32 * blocks;
  if (bytes.length !== want) throw bad(path, `has ${bytes.length} bytes, not ${want}`);
  const chunks = readIds(dv, CODE_HEADER, count, expect.chunks, path);
  // Views of the verified bytes, not copies: a copy would leave the fetched buffer as garbage
  // each cold query (at 1M chunks ~32 codes shards a query), and the cache charges what is kept.
  const codes = bytes.subarray(codesAt, hashesAt);
  const hashes = bytes.subarray(hashesAt);
  return { count, width, blockRows, chunks, codes, hashes, heldBytes: 4 * count + bytes.buffer.byteLength };
}

/**
 * The query's code table: Float64Array [width * 256], entry [k * 256 + v] = the sum over bits
 * i = 0..7 of byte value v of +q[8k+i] (bit set) or -q[8k+i] (clear), in i order from 0
 * (components past q's length count as 0).
 */
export function codeLut(q, width, out = null) {
  // `out` (at least width * 256 long): a table kept by the caller across queries, so a query
  // allocates no ~100 KB buffer for the GC to collect.
  const lut = out ?? new Float64Array(width * 256);
  for (let k = 0; k < width; k++) {
    for (let v = 0; v < 256; v++) {
      let s = 0;
      for (let i = 0; i < 8; i++) {
        const j = 8 * k + i;
        const qj = j < q.length ? q[j] : 0;
        s += (v >> i) & 1 ? qj : -qj;
      }
      lut[k * 256 + v] = s;
    }
  }
  return lut;
}

/** Code scores of `count` rows of `width` bytes into `out`: sum_k lut[k][code_k], k in order. */
export function codeScores(codes, width, count, lut, out) {
  for (let r = 0; r < count; r++) {
    const o = r * width;
    let s = 0;
    for (let k = 0; k < width; k++) s += lut[(k << 8) | codes[o + k]];
    out[r] = s;
  }
  return out;
}
