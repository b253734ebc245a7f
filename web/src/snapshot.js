// websem snapshot container: packs and unpacks the build-time Pyodide memory snapshot.
//
// Sparse container: "WSPS", u32 version 2, u32 full size, u32 segment count, u32 base offset,
// u32 base length, 32 bytes sha256 of pyodide.asm.wasm, then (u32 offset, u32 length) per
// segment, then the segments' bytes. All integers little-endian. Two things shrink the download:
//   - The wasm heap holds long runs of zeros (the build also zeroes malloc's free chunks before
//     taking the snapshot, web/tools/make_snapshot.mjs); the container drops them.
//   - The heap's first megabytes are mostly the wasm's own data segments, which the visitor
//     downloads anyway in pyodide.asm.wasm. The container stores that region XORed with those
//     segments (the "base", rebuilt from the verified wasm bytes by wasmDataImage), so what did
//     not change since instantiation is zeros too: 1.2 MB less brotli for the default bundle.
// Version 1 (no base) still unpacks. Made by web/tools/make_snapshot.mjs, restored by python.js.

/**
 * Bundle path of the optional Pyodide memory snapshot (listed with its sha256 in manifest.json
 * like every file). It holds the Python heap right after `websem_text.bridge.setup` ran, so the
 * browser skips interpreter start-up, the stdlib imports and building the vocabulary.
 */
export const SNAPSHOT_PATH = "runtime/pyodide-snapshot.bin";

/**
 * Bundle path of the standard-library zip a snapshot restore mounts instead of
 * manifest.runtime.vendor.pyodide.stdlib: that zip without the members whose modules the
 * snapshot already holds (plus a few codecs). web/tools/make_snapshot.mjs writes both files, and
 * the snapshot's zipimport table (each member's offset) describes this zip, so the two only go
 * together. The manifest names it in runtime.snapshot_stdlib.
 */
export const SNAPSHOT_STDLIB_PATH = "runtime/pyodide-snapshot.stdlib.zip";

/**
 * The bundle path of the stdlib zip a restore of the manifest's snapshot mounts
 * (manifest.runtime.snapshot_stdlib), or null: a snapshot made before that key existed holds the
 * table of the full zip (manifest.runtime.vendor.pyodide.stdlib).
 */
export function snapshotStdlib(manifest) {
  const rel = manifest?.runtime?.snapshot_stdlib;
  return typeof rel === "string" ? rel : null;
}

const SPARSE_MAGIC = 0x53505357; // "WSPS"
const SPARSE_MIN_ZERO_RUN = 1 << 16;
const V2_HEADER = 56;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function leb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    if (b === undefined) throw new Error("the wasm ends inside a number");
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, at];
  }
}

/**
 * The initial linear memory a wasm module's active data segments make (index 0 up to the end of
 * the last segment): what Pyodide's heap holds before Python starts. Throws on a segment whose
 * offset is not a constant (a relocatable module), which this container cannot use as a base.
 */
export function wasmDataImage(wasm) {
  const bytes = wasm instanceof Uint8Array ? wasm : new Uint8Array(wasm);
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error("not a wasm module");
  }
  let at = 8;
  const segments = [];
  while (at < bytes.length) {
    const id = bytes[at++];
    let size;
    [size, at] = leb(bytes, at);
    const end = at + size;
    if (id === 11) {
      let count;
      let p;
      [count, p] = leb(bytes, at);
      for (let k = 0; k < count; k++) {
        let flag;
        [flag, p] = leb(bytes, p);
        if (flag === 1) {
          // Passive: copied by memory.init when the code asks, not at instantiation.
          let len;
          [len, p] = leb(bytes, p);
          p += len;
          continue;
        }
        if (flag === 2) [, p] = leb(bytes, p); // memory index
        else if (flag !== 0) throw new Error(`data segment kind ${flag}`);
        if (bytes[p] !== 0x41) throw new Error("a data segment offset that is not i32.const");
        // Signed LEB128 i32; offsets are below 2^31 here, a negative one is refused.
        let offset = 0;
        let shift = 0;
        let b;
        p++;
        do {
          b = bytes[p++];
          offset += (b & 0x7f) * 2 ** shift;
          shift += 7;
        } while (b & 0x80);
        if (b & 0x40) throw new Error("a negative data segment offset");
        if (bytes[p++] !== 0x0b) throw new Error("a data segment offset expression longer than one constant");
        let len;
        [len, p] = leb(bytes, p);
        segments.push([offset, p, len]);
        p += len;
      }
    }
    at = end;
  }
  const image = new Uint8Array(segments.reduce((m, [off, , len]) => Math.max(m, off + len), 0));
  for (const [off, from, len] of segments) image.set(bytes.subarray(from, from + len), off);
  return image;
}

/**
 * Packs a Pyodide memory snapshot into the sparse container (build time). `base`: {image (from
 * wasmDataImage), offset (where Pyodide's heap starts in `raw`), wasmSha256 (hex)}, or null.
 */
export function packSnapshot(raw, base = null) {
  let data = raw;
  const baseLength = base ? Math.min(base.image.length, raw.length - base.offset) : 0;
  if (baseLength > 0) {
    data = raw.slice();
    for (let i = 0; i < baseLength; i++) data[base.offset + i] ^= base.image[i];
  }
  const segments = [];
  let start = 0;
  let i = 0;
  const n = data.length;
  while (i < n) {
    if (data[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && data[j] === 0) j++;
    if (j - i >= SPARSE_MIN_ZERO_RUN) {
      if (i > start) segments.push([start, i - start]);
      start = j;
    }
    i = j;
  }
  if (n > start) segments.push([start, n - start]);
  const headerSize = V2_HEADER + 8 * segments.length;
  const out = new Uint8Array(headerSize + segments.reduce((a, [, len]) => a + len, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, SPARSE_MAGIC, true);
  view.setUint32(4, 2, true);
  view.setUint32(8, n, true);
  view.setUint32(12, segments.length, true);
  view.setUint32(16, baseLength > 0 ? base.offset : 0, true);
  view.setUint32(20, baseLength, true);
  if (baseLength > 0) {
    if (!/^[0-9a-f]{64}$/.test(base.wasmSha256 ?? "")) throw new Error("packSnapshot: base.wasmSha256 must be 64 hex digits");
    out.set(Uint8Array.from(base.wasmSha256.match(/../g), (h) => Number.parseInt(h, 16)), 24);
  }
  let at = headerSize;
  segments.forEach(([off, len], k) => {
    view.setUint32(V2_HEADER + 8 * k, off, true);
    view.setUint32(V2_HEADER + 4 + 8 * k, len, true);
    out.set(data.subarray(off, off + len), at);
    at += len;
  });
  return out;
}

function containerVersion(packed) {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  if (packed.byteLength < 16 || view.getUint32(0, true) !== SPARSE_MAGIC) return 0;
  const version = view.getUint32(4, true);
  if (version !== 1 && version !== 2) throw new Error(`unknown snapshot container version ${version}`);
  return version;
}

/**
 * What unpacking `packed` needs besides itself: {wasmSha256 (hex), offset, length} when it was
 * packed against a wasm's data segments (then pass unpackSnapshot that wasm's wasmDataImage),
 * else null.
 */
export function snapshotBase(packed) {
  if (containerVersion(packed) !== 2) return null;
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const length = view.getUint32(20, true);
  if (length === 0) return null;
  return { offset: view.getUint32(16, true), length, wasmSha256: hex(packed.subarray(24, 56)) };
}

/**
 * The Pyodide memory snapshot inside `packed` (a raw snapshot passes through unchanged).
 * `image`: the wasmDataImage of the pyodide.asm.wasm that snapshotBase(packed) names.
 */
export function unpackSnapshot(packed, image = null) {
  const version = containerVersion(packed);
  if (version === 0) return packed;
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const header = version === 1 ? 16 : V2_HEADER;
  const raw = new Uint8Array(view.getUint32(8, true));
  const count = view.getUint32(12, true);
  let at = header + 8 * count;
  if (at > packed.byteLength) throw new Error("the snapshot container is truncated");
  for (let k = 0; k < count; k++) {
    const off = view.getUint32(header + 8 * k, true);
    const len = view.getUint32(header + 4 + 8 * k, true);
    if (off + len > raw.length || at + len > packed.byteLength) {
      throw new Error("the snapshot container is truncated or has a segment past its end");
    }
    raw.set(packed.subarray(at, at + len), off);
    at += len;
  }
  if (at !== packed.byteLength) throw new Error("the snapshot container is truncated or has trailing bytes");
  const base = snapshotBase(packed);
  if (base) {
    if (!image) throw new Error("the snapshot was packed against pyodide.asm.wasm's data; pass its wasmDataImage");
    if (image.length < base.length || base.offset + base.length > raw.length) {
      throw new Error(`the snapshot's base is ${base.length} bytes, the wasm's data image ${image.length}`);
    }
    for (let i = 0; i < base.length; i++) raw[base.offset + i] ^= image[i];
  }
  return raw;
}

/**
 * Zeroes heap[a, b) where it is not zero already (reading a fresh page does not make it resident),
 * a 4 KiB page at a time; `words` (an Int32Array over the same bytes, or null) reads 4 at a time.
 */
function ensureZero(heap, words, a, b) {
  for (let p = a; p < b; ) {
    const end = Math.min((p & ~4095) + 4096, b);
    let dirty = false;
    const w0 = (p + 3) >> 2;
    const w1 = end >> 2;
    if (words && w0 < w1) {
      for (let i = p; i < w0 << 2 && !dirty; i++) dirty = heap[i] !== 0;
      for (let w = w0; w < w1 && !dirty; w++) dirty = words[w] !== 0;
      for (let i = w1 << 2; i < end && !dirty; i++) dirty = heap[i] !== 0;
    } else {
      for (let i = p; i < end && !dirty; i++) dirty = heap[i] !== 0;
    }
    if (dirty) heap.fill(0, p, end);
    p = end;
  }
}

/**
 * Restoring `packed` without building the full heap image: {head, heapStart, writeHeap(HEAPU8)}.
 * `head` is a full-size array holding only Pyodide's header (its length sizes the wasm memory;
 * the untouched rest costs no memory), for `loadPyodide({_loadSnapshot})`; `writeHeap` then
 * writes the kept segments (and the wasm data base) straight into the new heap and makes sure the
 * dropped runs read zero, so the ~19 MB of zeros are never written: those pages of the wasm
 * memory stay unbacked (renderer RSS) and nothing of the image is copied twice. Null when
 * `packed` cannot be restored this way (not a version 2 container whose base starts at the heap,
 * or a header outside the first segment): unpack it whole instead.
 */
export function restorePlan(packed, image = null) {
  if (containerVersion(packed) !== 2) return null;
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const size = view.getUint32(8, true);
  const count = view.getUint32(12, true);
  const segments = [];
  let at = V2_HEADER + 8 * count;
  for (let k = 0; k < count; k++) {
    const off = view.getUint32(V2_HEADER + 8 * k, true);
    const len = view.getUint32(V2_HEADER + 4 + 8 * k, true);
    if (off + len > size || at + len > packed.byteLength) throw new Error("the snapshot container is truncated or has a segment past its end");
    segments.push([off, at, len]);
    at += len;
  }
  if (at !== packed.byteLength) throw new Error("the snapshot container is truncated or has trailing bytes");
  // Pyodide's snapshot starts with its header, whose second u32 is the header's length.
  if (!segments.length || segments[0][0] !== 0 || segments[0][2] < 8) return null;
  const heapStart = new DataView(packed.buffer, packed.byteOffset + segments[0][1], 8).getUint32(4, true);
  if (heapStart > size || heapStart % 16 !== 0) return null;
  const base = snapshotBase(packed);
  if (base && (base.offset !== heapStart || !image || image.length < base.length)) return null;
  const baseLength = base ? base.length : 0;
  const head = new Uint8Array(size);
  for (const [off, from, len] of segments) {
    if (off >= heapStart) break;
    const n = Math.min(len, heapStart - off);
    head.set(packed.subarray(from, from + n), off);
  }
  return {
    head,
    heapStart,
    writeHeap(heap) {
      if (heap.length < size - heapStart) throw new Error(`the wasm heap is ${heap.length} bytes, the snapshot's ${size - heapStart}`);
      // The dropped zero runs past the base (in the base, a zero means "as in the wasm's data").
      const words = heap.byteOffset % 4 === 0 ? new Int32Array(heap.buffer, heap.byteOffset, heap.length >> 2) : null;
      let covered = Math.max(heapStart, heapStart + baseLength);
      for (const [off, , len] of segments) {
        if (off > covered) ensureZero(heap, words, covered - heapStart, off - heapStart);
        covered = Math.max(covered, off + len);
      }
      if (size > covered) ensureZero(heap, words, covered - heapStart, size - heapStart);
      if (baseLength) heap.set(image.subarray(0, baseLength), 0);
      for (const [off, from, len] of segments) {
        const start = Math.max(off, heapStart);
        if (start >= off + len) continue;
        let src = from + (start - off);
        let h = start - heapStart;
        const end = off + len - heapStart;
        // XORed into the base region, copied past it.
        for (; h < Math.min(end, baseLength); h++, src++) heap[h] ^= packed[src];
        if (h < end) heap.set(packed.subarray(src, src + (end - h)), h);
      }
    },
  };
}
