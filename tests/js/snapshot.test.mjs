// web/src/snapshot.js: the sparse snapshot container round-trips and refuses damaged input.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SNAPSHOT_PATH, packSnapshot, unpackSnapshot } from "../../web/src/snapshot.js";

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
  new DataView(future.buffer).setUint32(4, 2, true);
  assert.throws(() => unpackSnapshot(future), /unknown snapshot container version 2/);
});

test("the snapshot lives under runtime/", () => {
  assert.equal(SNAPSHOT_PATH, "runtime/pyodide-snapshot.bin");
});
