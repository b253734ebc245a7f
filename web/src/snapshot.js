// websem snapshot container: packs and unpacks the build-time Pyodide memory snapshot.
//
// Sparse container: "WSPS", u32 version 1, u32 full size, u32 segment count, then
// (u32 offset, u32 length) per segment, then the segments' bytes. The wasm heap holds long runs
// of zeros (~13 of 31 MB for the default model); dropping them shrinks the download and the
// sha256 work. All integers little-endian. Made by web/tools/make_snapshot.mjs, restored by
// python.js.

/**
 * Bundle path of the optional Pyodide memory snapshot (listed with its sha256 in manifest.json
 * like every file). It holds the Python heap right after `websem_text.bridge.setup` ran, so the
 * browser skips interpreter start-up, the stdlib imports and building the vocabulary.
 */
export const SNAPSHOT_PATH = "runtime/pyodide-snapshot.bin";

const SPARSE_MAGIC = 0x53505357; // "WSPS"
const SPARSE_MIN_ZERO_RUN = 1 << 16;

/** Packs a Pyodide memory snapshot into the sparse container (build time). */
export function packSnapshot(raw) {
  const segments = [];
  let start = 0;
  let i = 0;
  const n = raw.length;
  while (i < n) {
    if (raw[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && raw[j] === 0) j++;
    if (j - i >= SPARSE_MIN_ZERO_RUN) {
      if (i > start) segments.push([start, i - start]);
      start = j;
    }
    i = j;
  }
  if (n > start) segments.push([start, n - start]);
  const headerSize = 16 + 8 * segments.length;
  const out = new Uint8Array(headerSize + segments.reduce((a, [, len]) => a + len, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, SPARSE_MAGIC, true);
  view.setUint32(4, 1, true);
  view.setUint32(8, n, true);
  view.setUint32(12, segments.length, true);
  let at = headerSize;
  segments.forEach(([off, len], k) => {
    view.setUint32(16 + 8 * k, off, true);
    view.setUint32(20 + 8 * k, len, true);
    out.set(raw.subarray(off, off + len), at);
    at += len;
  });
  return out;
}

/** The Pyodide memory snapshot inside `packed` (a raw snapshot passes through unchanged). */
export function unpackSnapshot(packed) {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  if (packed.byteLength < 16 || view.getUint32(0, true) !== SPARSE_MAGIC) return packed;
  if (view.getUint32(4, true) !== 1) throw new Error(`unknown snapshot container version ${view.getUint32(4, true)}`);
  const raw = new Uint8Array(view.getUint32(8, true));
  const count = view.getUint32(12, true);
  let at = 16 + 8 * count;
  for (let k = 0; k < count; k++) {
    const off = view.getUint32(16 + 8 * k, true);
    const len = view.getUint32(20 + 8 * k, true);
    if (off + len > raw.length || at + len > packed.byteLength) {
      throw new Error("the snapshot container is truncated or has a segment past its end");
    }
    raw.set(packed.subarray(at, at + len), off);
    at += len;
  }
  if (at !== packed.byteLength) throw new Error("the snapshot container is truncated or has trailing bytes");
  return raw;
}
