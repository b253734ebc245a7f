// web/src/ivf.js: an IVF list shard (written from the contract by partitioned_env.mjs) parses to
// the chunk ids, scales and rows it holds (float16 widened exactly, as Python's struct "e" reads
// them), and a shard that is not the one the index expects is refused with a websem: message.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseIvf } from "../../web/src/ivf.js";
import { ivfBytes } from "./partitioned_env.mjs";

const PATH = "index/ivf/3.bin";
const expect = (over = {}) => ({ list: 3, dims: 2, dtype: "float16", size: 3, chunks: 10, ...over });

test("float16 rows are widened exactly; chunk ids as written", () => {
  // 1.0, -2.0, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0
  const rows = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000]);
  const got = parseIvf(ivfBytes(3, [1, 4, 9], 2, rows), PATH, expect());
  assert.equal(got.count, 3);
  assert.deepEqual(Array.from(got.chunks), [1, 4, 9]);
  assert.equal(got.scales, null);
  assert.deepEqual(Array.from(got.rows), [1, -2, 0.5, 65504, 2 ** -24, -0]);
  assert.ok(got.rows instanceof Float32Array);
  assert.equal(got.heldBytes, 3 * 4 + 6 * 4);
});

test("int8 rows keep their bytes, with float32 scales", () => {
  const rows = Int8Array.from([127, -127, 0, 5, -1, 2]);
  const got = parseIvf(ivfBytes(3, [0, 2, 3], 2, rows, [0.5, 0.25, 0.125]), PATH, expect({ dtype: "int8" }));
  assert.deepEqual(Array.from(got.rows), [127, -127, 0, 5, -1, 2]);
  assert.deepEqual(Array.from(got.scales), [0.5, 0.25, 0.125]);
});

test("an empty list parses to no rows", () => {
  const got = parseIvf(ivfBytes(3, [], 2, new Uint16Array(0)), PATH, expect({ size: 0 }));
  assert.equal(got.count, 0);
  assert.equal(got.rows.length, 0);
});

test("a list that is not the expected one is refused, naming the file", () => {
  const good = ivfBytes(3, [1, 4, 9], 2, new Uint16Array(6));
  const bad = good.slice();
  bad[0] ^= 1;
  assert.throws(() => parseIvf(bad, PATH, expect()), /^WebsemError: websem: index\/ivf\/3\.bin is not a websem IVF list \(bad magic bytes\); rebuild/);
  assert.throws(() => parseIvf(good, PATH, expect({ list: 4 })), /index\/ivf\/3\.bin holds list 3 \(3 rows, 2 dims, dtype float16\) but the index expects list 4/);
  assert.throws(() => parseIvf(good, PATH, expect({ dtype: "int8" })), /expects list 3 \(3 rows, 2 dims, int8\)/);
  assert.throws(() => parseIvf(good.subarray(0, good.length - 2), PATH, expect()), /index\/ivf\/3\.bin has 46 bytes, not 48/);
  assert.throws(() => parseIvf(ivfBytes(3, [1, 9, 4], 2, new Uint16Array(6)), PATH, expect()), /lists chunk 4 out of order/);
  assert.throws(() => parseIvf(ivfBytes(3, [1, 4, 10], 2, new Uint16Array(6)), PATH, expect()), /past the index's 10 chunks/);
});
