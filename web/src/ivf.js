// websem IVF list shards of a partitioned index (index/ivf/{l}.bin, docs/architecture.md
// "Bundle"), little-endian:
//   b"WSIVF\x00\x00\x01" | u32 count | u32 dims | u32 list | u32 dtype (0 float16, 1 int8)
//   | u32 chunk[count] (ascending) | int8 only: f32 scale[count] | rows[count, dims]
// The rows are the flat index's stored rows of those chunks. Float16 rows are widened to
// float32 once, here (what the flat index does at load), so scoring runs the same loop on the
// same values (dense.js scoreRows) and a cached list costs no decoding per query.
import { halfTable } from "./bundle.js";
import { WebsemError } from "./errors.js";

export const IVF_MAGIC = [0x57, 0x53, 0x49, 0x56, 0x46, 0x00, 0x00, 0x01]; // b"WSIVF\x00\x00\x01"
export const IVF_DTYPES = ["float16", "int8"];
const HEADER = 24;

function bad(path, what) {
  return new WebsemError(`${path} ${what}; rebuild the bundle with \`websem build\``);
}

/**
 * Parse the verified bytes of IVF list `expect.list`.
 *
 * @param {Uint8Array} bytes
 * @param {string} path the shard's bundle path (for messages)
 * @param {{list: number, dims: number, dtype: string, size: number, chunks: number}} expect
 *   what the manifest and table.json say: list number, dims, vector dtype, row count, and the
 *   index's chunk count (every chunk id must be below it)
 * @returns {{count: number, chunks: Uint32Array, scales: Float32Array|null,
 *   rows: Float32Array|Int8Array, heldBytes: number}}
 */
export function parseIvf(bytes, path, expect) {
  if (bytes.length < HEADER || IVF_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw bad(path, "is not a websem IVF list (bad magic bytes)");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [count, dims, list, code] = [8, 12, 16, 20].map((o) => dv.getUint32(o, true));
  const dtype = IVF_DTYPES[code];
  if (list !== expect.list || dims !== expect.dims || dtype !== expect.dtype || count !== expect.size) {
    throw bad(path, `holds list ${list} (${count} rows, ${dims} dims, dtype ${dtype ?? code}) but the ` +
      `index expects list ${expect.list} (${expect.size} rows, ${expect.dims} dims, ${expect.dtype})`);
  }
  const int8 = dtype === "int8";
  const rowsAt = HEADER + 4 * count + (int8 ? 4 * count : 0);
  const want = rowsAt + count * dims * (int8 ? 1 : 2);
  if (bytes.length !== want) throw bad(path, `has ${bytes.length} bytes, not ${want}`);
  // Copies: small next to the rows, and they let the float16 bytes go once widened.
  const chunks = new Uint32Array(count);
  for (let i = 0; i < count; i++) chunks[i] = dv.getUint32(HEADER + 4 * i, true);
  for (let i = 0; i < count; i++) {
    if (chunks[i] >= expect.chunks || (i > 0 && chunks[i] <= chunks[i - 1])) {
      throw bad(path, `lists chunk ${chunks[i]} out of order or past the index's ${expect.chunks} chunks`);
    }
  }
  if (int8) {
    const scales = new Float32Array(count);
    for (let i = 0; i < count; i++) scales[i] = dv.getFloat32(HEADER + 4 * count + 4 * i, true);
    const rows = bytes.slice(rowsAt);
    return { count, chunks, scales, rows: new Int8Array(rows.buffer), heldBytes: 8 * count + rows.length };
  }
  const half = halfTable();
  const at = bytes.byteOffset + rowsAt;
  const raw = at % 2 ? new Uint16Array(bytes.slice(rowsAt).buffer) : new Uint16Array(bytes.buffer, at, count * dims);
  const rows = new Float32Array(count * dims);
  for (let i = 0; i < rows.length; i++) rows[i] = half[raw[i]];
  return { count, chunks, scales: null, rows, heldBytes: 4 * count + 4 * rows.length };
}

// Binary codes shards (index/code/{l}.bin, manifest.index.ivf.code "binary"), little-endian:
//   b"WSCOD\x00\x00\x01" | u32 count | u32 dims | u32 list | u32 chunk[count] (ascending)
//   | u8 code[count, ceil(dims / 8)]: bit j (byte j >> 3, bit j & 7) = stored component j > 0
// A probed row's code score is the query's dot product with the row's signs (+-1), through a
// per-query table of byte values (codeLut): 48 additions a row at 384 dims. The same float64
// additions in the same order as web/partitioned.py code_lut / code_scores, so both readers pick
// the same rerank candidates.
export const CODE_MAGIC = [0x57, 0x53, 0x43, 0x4f, 0x44, 0x00, 0x00, 0x01]; // b"WSCOD\x00\x00\x01"
const CODE_HEADER = 20;

/**
 * Parse the verified bytes of codes shard `expect.list`.
 *
 * @param {Uint8Array} bytes
 * @param {string} path the shard's bundle path (for messages)
 * @param {{list: number, dims: number, size: number, chunks: number}} expect as parseIvf
 * @returns {{count: number, width: number, chunks: Uint32Array, codes: Uint8Array, heldBytes: number}}
 */
export function parseCodes(bytes, path, expect) {
  if (bytes.length < CODE_HEADER || CODE_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw bad(path, "is not a websem codes shard (bad magic bytes)");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [count, dims, list] = [8, 12, 16].map((o) => dv.getUint32(o, true));
  if (list !== expect.list || dims !== expect.dims || count !== expect.size) {
    throw bad(path, `holds list ${list} (${count} rows, ${dims} dims) but the index expects list ` +
      `${expect.list} (${expect.size} rows, ${expect.dims} dims)`);
  }
  const width = (dims + 7) >> 3;
  const want = CODE_HEADER + 4 * count + count * width;
  if (bytes.length !== want) throw bad(path, `has ${bytes.length} bytes, not ${want}`);
  const chunks = new Uint32Array(count);
  for (let i = 0; i < count; i++) chunks[i] = dv.getUint32(CODE_HEADER + 4 * i, true);
  for (let i = 0; i < count; i++) {
    if (chunks[i] >= expect.chunks || (i > 0 && chunks[i] <= chunks[i - 1])) {
      throw bad(path, `lists chunk ${chunks[i]} out of order or past the index's ${expect.chunks} chunks`);
    }
  }
  const codes = bytes.slice(CODE_HEADER + 4 * count);
  return { count, width, chunks, codes, heldBytes: 4 * count + codes.length };
}

/**
 * The query's code table: Float64Array [width * 256], entry [k * 256 + v] = the sum over bits
 * i = 0..7 of byte value v of +q[8k+i] (bit set) or -q[8k+i] (clear), in i order from 0
 * (components past q's length count as 0).
 */
export function codeLut(q, width) {
  const lut = new Float64Array(width * 256);
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
