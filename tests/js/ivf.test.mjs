// web/src/ivf.js: an IVF list shard (written from the contract by partitioned_env.mjs) parses to
// the chunk ids, scales and rows it holds (float16 widened exactly, as Python's struct "e" reads
// them), and a shard that is not the one the index expects is refused with a websem: message.
import assert from "node:assert/strict";
import { test } from "node:test";
import { codeLut, codeScores, parseCodes, parseIvf } from "../../web/src/ivf.js";
import { codesBytes, ivfBytes, signCodes } from "./partitioned_env.mjs";

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

test("codes shards parse to chunk ids and sign bits; a wrong one is refused, naming the file", () => {
  const path = "index/code/3.bin";
  const rows = Int8Array.from([5, -1, 0, 7, 7, 7, 7, 7, 7, 7, 1, /* row 2 */ -3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
  const bytes = codesBytes(3, [2, 5], 11, signCodes(rows, 11, 2));
  const got = parseCodes(bytes, path, { list: 3, dims: 11, size: 2, chunks: 10 });
  assert.deepEqual(Array.from(got.chunks), [2, 5]);
  assert.equal(got.width, 2);
  // row 1: components 0, 3..10 positive -> 0b11111001, 0b111; row 2: only component 10
  assert.deepEqual(Array.from(got.codes), [0b11111001, 0b111, 0, 0b100]);
  assert.throws(() => parseCodes(bytes, path, { list: 4, dims: 11, size: 2, chunks: 10 }), /index\/code\/3\.bin holds list 3 \(2 rows, 11 dims\) but the index expects list 4/);
  assert.throws(() => parseCodes(bytes.subarray(1), path, { list: 3, dims: 11, size: 2, chunks: 10 }), /is not a websem codes shard \(bad magic bytes\)/);
  assert.throws(() => parseCodes(bytes.subarray(0, bytes.length - 1), path, { list: 3, dims: 11, size: 2, chunks: 10 }), /has 31 bytes, not 32/);
  assert.throws(() => parseCodes(codesBytes(3, [5, 2], 11, new Uint8Array(4)), path, { list: 3, dims: 11, size: 2, chunks: 10 }), /lists chunk 2 out of order/);
});

test("code scores are the query's dot product with the rows' signs (components past dims count 0)", () => {
  const dims = 11;
  const q = Float64Array.from({ length: dims }, (_, j) => Math.sin(j + 0.5));
  const rows = Int8Array.from({ length: 3 * dims }, (_, i) => ((i * 7) % 5) - 2);
  const codes = signCodes(rows, dims, 3);
  const out = codeScores(codes, 2, 3, codeLut(q, 2), new Float64Array(3));
  for (let r = 0; r < 3; r++) {
    let want = 0;
    for (let j = 0; j < dims; j++) want += rows[r * dims + j] > 0 ? q[j] : -q[j];
    assert.ok(Math.abs(out[r] - want) < 1e-12, `${out[r]} vs ${want}`);
  }
});
