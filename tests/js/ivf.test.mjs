// web/src/ivf.js: IVF rows shards and codes shards (v2, written from the contract by
// partitioned_env.mjs, or byte by byte here) parse to the chunk ids, scales, rows, codes and block
// hashes they hold (float16 widened exactly, as Python's struct "e" reads them); block byte ranges
// follow the contract; a shard that is not the one the index expects is refused with a websem:
// message naming it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { blockRange, codeLut, codeScores, parseCodes, parseIvf, parseRecords, recordBytes } from "../../web/src/ivf.js";
import { blockHashes, codesBytes, ivfBytes, signCodes } from "./partitioned_env.mjs";

const PATH = "index/ivf/3.bin";
const expect = (over = {}) => ({ list: 3, dims: 2, dtype: "float16", size: 3, chunks: 10, blockRows: 2, ...over });

test("float16 rows are widened exactly; chunk ids as written (any order)", () => {
  // 1.0, -2.0, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0
  const rows = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000]);
  const got = parseIvf(ivfBytes(3, [9, 1, 4], 2, rows), PATH, expect());
  assert.equal(got.count, 3);
  assert.deepEqual(Array.from(got.chunks), [9, 1, 4]);
  assert.equal(got.scales, null);
  assert.deepEqual(Array.from(got.rows), [1, -2, 0.5, 65504, 2 ** -24, -0]);
  assert.ok(got.rows instanceof Float32Array);
  assert.equal(got.heldBytes, 3 * 4 + 6 * 4);
});

test("the v2 rows layout byte by byte: 28-byte header, ids, then int8 records (f32 scale + row)", () => {
  const bytes = ivfBytes(3, [0, 2, 3], 2, Int8Array.from([127, -127, 0, 5, -1, 2]), [0.5, 0.25, 0.125], 2);
  const want = [..."WSIVF"].map((ch) => ch.charCodeAt(0)).concat([0, 0, 2], [3, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0],
    [1, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0],
    [0, 0, 0, 0x3f, 127, 129], [0, 0, 0x80, 0x3e, 0, 5], [0, 0, 0, 0x3e, 255, 2]);
  assert.deepEqual(Array.from(bytes), want);
  const got = parseIvf(bytes, PATH, expect({ dtype: "int8" }));
  assert.deepEqual(Array.from(got.rows), [127, -127, 0, 5, -1, 2]);
  assert.deepEqual(Array.from(got.scales), [0.5, 0.25, 0.125]);
  assert.equal(got.heldBytes, 3 * 4 + 3 * 4 + 6);
});

test("block byte ranges follow the contract, and a block's bytes parse to its rows", () => {
  assert.equal(recordBytes(384, "int8"), 388);
  assert.equal(recordBytes(384, "float16"), 768);
  // 5 rows of 2 int8 dims (6-byte records), 2 a block: blocks [0,2) [2,4) [4,5) after 28 + 20 bytes.
  assert.deepEqual([0, 1, 2].map((k) => blockRange(5, 2, "int8", 2, k)), [[48, 60], [60, 72], [72, 78]]);
  assert.deepEqual(blockRange(5, 3, "float16", 4, 1), [48 + 24, 48 + 30]);
  const rows = Int8Array.from({ length: 10 }, (_, i) => i - 5);
  const scales = [1, 2, 3, 4, 5].map((x) => x / 8);
  const file = ivfBytes(3, [5, 0, 7, 1, 2], 2, rows, scales, 2);
  const [a, b] = blockRange(5, 2, "int8", 2, 2);
  const last = parseRecords(file.subarray(a, b), 2, "int8", 1);
  assert.deepEqual([Array.from(last.rows), Array.from(last.scales)], [[3, 4], [5 / 8]]);
  const half = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000]);
  const f16 = ivfBytes(3, [1, 4, 9], 2, half, null, 2);
  const [c, d] = blockRange(3, 2, "float16", 2, 0);
  // an odd byte offset (a block inside a bigger response) is read too
  const odd = new Uint8Array(d - c + 1);
  odd.set(f16.subarray(c, d), 1);
  assert.deepEqual(Array.from(parseRecords(odd.subarray(1), 2, "float16", 2).rows), [1, -2, 0.5, 65504]);
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
  const v1 = good.slice();
  v1[7] = 1;
  assert.throws(() => parseIvf(v1, PATH, expect()), /^WebsemError: websem: index\/ivf\/3\.bin is IVF list format version 1, not 2; rebuild the bundle with `websem build`/);
  assert.throws(() => parseIvf(good, PATH, expect({ list: 4 })),
    /index\/ivf\/3\.bin holds list 3 \(3 rows, 2 dims, dtype float16, 2 rows a block\) but the index expects list 4/);
  assert.throws(() => parseIvf(good, PATH, expect({ dtype: "int8" })), /expects list 3 \(3 rows, 2 dims, int8, 2 rows a block\)/);
  assert.throws(() => parseIvf(good, PATH, expect({ blockRows: 8 })), /expects list 3 \(3 rows, 2 dims, float16, 8 rows a block\)/);
  assert.throws(() => parseIvf(good, PATH, expect({ size: 4 })), /expects list 3 \(4 rows/);
  assert.throws(() => parseIvf(good.subarray(0, good.length - 2), PATH, expect()), /index\/ivf\/3\.bin has 50 bytes, not 52/);
  assert.throws(() => parseIvf(ivfBytes(3, [1, 9, 1], 2, new Uint16Array(6)), PATH, expect()), /index\/ivf\/3\.bin lists chunk 1 twice/);
  assert.throws(() => parseIvf(ivfBytes(3, [1, 4, 10], 2, new Uint16Array(6)), PATH, expect()), /lists chunk 10, past the index's 10 chunks/);
});

test("codes shards parse to chunk ids, sign bits and the rows shard's block hashes", () => {
  const path = "index/code/3.bin";
  const rows = Int8Array.from([5, -1, 0, 7, 7, 7, 7, 7, 7, 7, 1, /* row 2 */ -3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, /* row 3 */ ...new Array(11).fill(1)]);
  const rowsFile = ivfBytes(3, [5, 2, 0], 11, rows, [1, 1, 1], 2);
  const bytes = codesBytes(3, [5, 2, 0], 11, signCodes(rows, 11, 3), rowsFile);
  const ex = { list: 3, dims: 11, size: 3, chunks: 10, blockRows: 2 };
  const got = parseCodes(bytes, path, ex);
  assert.deepEqual(Array.from(got.chunks), [5, 2, 0]);
  assert.equal(got.width, 2);
  assert.equal(got.blockRows, 2);
  // row 1: components 0, 3..10 positive -> 0b11111001, 0b111; row 2: only component 10; row 3: all
  assert.deepEqual(Array.from(got.codes), [0b11111001, 0b111, 0, 0b100, 0xff, 0b111]);
  // Two blocks: the digests of records 0-1 and record 2 (15-byte records after 28 + 12 bytes).
  const digest = (a, b) => Array.from(createHash("sha256").update(rowsFile.subarray(a, b)).digest());
  assert.deepEqual(Array.from(got.hashes), [...digest(40, 70), ...digest(70, 85)]);
  assert.deepEqual(Array.from(blockHashes(rowsFile)), Array.from(got.hashes));
  assert.equal(bytes.length, 24 + 12 + 6 + 64);
  assert.throws(() => parseCodes(bytes, path, { ...ex, list: 4 }),
    /index\/code\/3\.bin holds list 3 \(3 rows, 11 dims, 2 rows a block\) but the index expects list 4/);
  assert.throws(() => parseCodes(bytes, path, { ...ex, blockRows: 3 }), /but the index expects list 3 \(3 rows, 11 dims, 3 rows a block\)/);
  assert.throws(() => parseCodes(bytes.subarray(1), path, ex), /is not a websem codes shard \(bad magic bytes\)/);
  const v1 = bytes.slice();
  v1[7] = 1;
  assert.throws(() => parseCodes(v1, path, ex), /index\/code\/3\.bin is codes shard format version 1, not 2; rebuild/);
  // a missing hash (the table is one block short) and a hash too many
  assert.throws(() => parseCodes(bytes.subarray(0, bytes.length - 32), path, ex), /has 74 bytes, not 106/);
  const extra = new Uint8Array(bytes.length + 32);
  extra.set(bytes);
  assert.throws(() => parseCodes(extra, path, ex), /has 138 bytes, not 106/);
  assert.throws(() => parseCodes(codesBytes(3, [5, 2, 5], 11, new Uint8Array(6), rowsFile), path, ex), /lists chunk 5 twice/);
  assert.throws(() => parseCodes(codesBytes(3, [5, 2, 11], 11, new Uint8Array(6), rowsFile), path, ex), /lists chunk 11, past the index's 10 chunks/);
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
