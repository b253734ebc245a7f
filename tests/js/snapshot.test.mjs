// web/src/snapshot.js: the sparse snapshot container round-trips (with and without a wasm data
// base) and refuses damaged input.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH, packSnapshot, restorePlan, snapshotBase, snapshotStdlib, unpackSnapshot, wasmDataImage,
} from "../../web/src/snapshot.js";

// A valid module: one memory page, an active segment [1, 2, 3] at 16 and a passive one.
const TINY_WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x05, 0x03, 0x01, 0x00, 0x01,
  0x0b, 0x0d, 0x02, 0x00, 0x41, 0x10, 0x0b, 0x03, 0x01, 0x02, 0x03, 0x01, 0x02, 0x09, 0x09,
]);
const SHA = "ab".repeat(32);

function heap() {
  // Data, a long zero run (dropped), data, a short zero run (kept), data, trailing zeros.
  const raw = new Uint8Array(300_000);
  for (let i = 0; i < 1000; i++) raw[i] = (i % 251) + 1;
  for (let i = 200_000; i < 200_100; i++) raw[i] = 7;
  raw[200_150] = 9; // 49 zeros between: too short to drop
  return raw;
}

test("pack drops long zero runs and unpack restores the exact bytes", () => {
  const raw = heap();
  const packed = packSnapshot(raw);
  assert.ok(packed.length < 2000, `packed ${packed.length} bytes`);
  assert.deepEqual(unpackSnapshot(packed), raw);
});

test("a raw snapshot (no container magic) passes through unchanged", () => {
  const raw = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
  assert.equal(unpackSnapshot(raw), raw);
});

test("a truncated or padded container is refused", () => {
  const packed = packSnapshot(heap());
  assert.throws(() => unpackSnapshot(packed.subarray(0, packed.length - 1)), /truncated/);
  const padded = new Uint8Array(packed.length + 1);
  padded.set(packed);
  assert.throws(() => unpackSnapshot(padded), /trailing bytes/);
  const future = packed.slice();
  new DataView(future.buffer).setUint32(4, 3, true);
  assert.throws(() => unpackSnapshot(future), /unknown snapshot container version 3/);
});

test("wasmDataImage places active segments at their offsets and skips passive ones", () => {
  assert.ok(WebAssembly.validate(TINY_WASM));
  assert.deepEqual(wasmDataImage(TINY_WASM), new Uint8Array([...new Array(16).fill(0), 1, 2, 3]));
  assert.throws(() => wasmDataImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), /not a wasm module/);
});

test("wasmDataImage reads Pyodide's wasm: its first segment is at 1024", () => {
  const wasm = readFileSync(new URL("../../web/node_modules/pyodide/pyodide.asm.wasm", import.meta.url));
  const image = wasmDataImage(wasm);
  assert.ok(image.length > 1_000_000, `image ${image.length} bytes`);
  assert.ok(image.subarray(0, 1024).every((b) => b === 0));
  assert.ok(image.subarray(1024, 2048).some((b) => b !== 0));
});

test("a snapshot packed against a data image stores the unchanged region as zeros", () => {
  const image = new Uint8Array(200_000);
  for (let i = 0; i < image.length; i++) image[i] = (i * 7) % 251;
  const raw = new Uint8Array(400_160);
  raw.set([9, 9, 9, 9], 0); // Pyodide's header, not part of the base
  raw.set(image, 160);
  raw[160 + 5000] ^= 0xff; // one byte changed since instantiation
  const base = { image, offset: 160, wasmSha256: SHA };
  const packed = packSnapshot(raw, base);
  // Kept: the header up to the changed byte (a zero run under 64 KB is not dropped); the rest is zeros.
  assert.ok(packed.length < 6000 && packSnapshot(raw).length > 200_000, `packed ${packed.length} bytes`);
  assert.deepEqual(snapshotBase(packed), { offset: 160, length: 200_000, wasmSha256: SHA });
  assert.deepEqual(unpackSnapshot(packed, image), raw);
  assert.throws(() => unpackSnapshot(packed), /pass its wasmDataImage/);
  assert.throws(() => unpackSnapshot(packed, image.subarray(0, 10)), /base is 200000 bytes/);
  assert.equal(snapshotBase(packSnapshot(raw)), null);
});

test("restorePlan writes into a dirty heap exactly what unpackSnapshot restores", () => {
  // Pyodide's layout: a 160-byte header (its length in the second u32), then the heap.
  const image = new Uint8Array(200_000);
  for (let i = 70_000; i < image.length; i++) image[i] = (i * 13) % 256;
  const raw = new Uint8Array(160 + 500_000);
  new DataView(raw.buffer).setUint32(4, 160, true);
  raw[0] = 0x61;
  raw[100] = 0x62; // the header's JSON; zeros after it are dropped with the heap's first run
  raw.set(image, 160);
  for (let i = 100_000; i < 100_100; i++) raw[160 + i] = 0; // zeroed since instantiation, inside the base
  raw[160 + 150_000] ^= 1;
  for (let i = 300_000; i < 300_500; i++) raw[160 + i] = i % 7; // past the base, between zero runs
  raw[raw.length - 1] = 5;
  const packed = packSnapshot(raw, { image, offset: 160, wasmSha256: SHA });
  const plan = restorePlan(packed, image);
  assert.ok(new DataView(packed.buffer).getUint32(60, true) < 160, "the first segment ends inside the header");
  assert.equal(plan.heapStart, 160);
  assert.equal(plan.head.length, raw.length);
  assert.deepEqual(plan.head.subarray(0, 160), raw.subarray(0, 160));
  assert.ok(plan.head.subarray(160).every((b) => b === 0));
  // What instantiation and start-up left in memory: the data segments and some garbage.
  const heap = new Uint8Array(raw.length);
  heap.set(image);
  for (let i = 0; i < heap.length; i += 997) heap[i] = 0xee;
  plan.writeHeap(heap);
  assert.deepEqual(heap.subarray(0, raw.length - 160), unpackSnapshot(packed, image).subarray(160));
  // Without the image, or from a version 1 container, there is no plan: unpack whole.
  assert.equal(restorePlan(packed, null), null);
  assert.equal(restorePlan(packSnapshot(raw)) === null, false);
  const v1 = packSnapshot(raw).slice();
  new DataView(v1.buffer).setUint32(4, 1, true);
  assert.equal(restorePlan(v1), null);
});

test("the snapshot lives under runtime/", () => {
  assert.equal(SNAPSHOT_PATH, "runtime/pyodide-snapshot.bin");
});

test("the stdlib zip a restore mounts is the one manifest.runtime.snapshot_stdlib names, if any", () => {
  assert.equal(SNAPSHOT_STDLIB_PATH, "runtime/pyodide-snapshot.stdlib.zip");
  assert.equal(snapshotStdlib({ runtime: { snapshot_stdlib: SNAPSHOT_STDLIB_PATH } }), SNAPSHOT_STDLIB_PATH);
  // A bundle built before the key existed: its snapshot was made with the whole zip.
  assert.equal(snapshotStdlib({ runtime: {} }), null);
  assert.equal(snapshotStdlib({ runtime: { snapshot_stdlib: 1 } }), null);
});
