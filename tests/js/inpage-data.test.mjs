// web/src/inpage-data.js under Node: the pieces between the in-page engine and Pyodide/ORT
// (inputs as inpage_prepare takes them, the model's inputs for a chunk, the vectors inpage_add
// takes, the rows laid out as index/vectors.bin, the index search.js scores, made from
// inpage_search()'s files). Whole indexing runs in Chromium (tests/browser/test_browser_inpage.py),
// against `websem build`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { halfTable } from "../../web/src/bundle.js";
import { FILE_TYPES, layoutVectors, modelInputs, packVectors, searchIndex, toPrepareInput } from "../../web/src/inpage-data.js";

test("records go to inpage_prepare as the JSONL record, without bytes", async () => {
  const record = { id: "a", title: "T", text: "body", url: "/a", meta: { tags: ["x"] } };
  const [item, data] = await toPrepareInput(record);
  assert.deepEqual(JSON.parse(JSON.stringify(item)), record);
  assert.equal(data, null);
});

test("files go as {name, id?} and their bytes: File, Blob-with-name, {name, data}", async () => {
  const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69, 0xff]); // BOM, "hi", an invalid byte: passed through untouched
  const file = new File([bytes], "notes.md");
  const [item, data] = await toPrepareInput(file);
  assert.deepEqual(item, { name: "notes.md" });
  assert.deepEqual(data, bytes);
  const [item2, data2] = await toPrepareInput({ name: "a.html", id: 7, data: "<p>é</p>" });
  assert.deepEqual(item2, { name: "a.html", id: "7" });
  assert.deepEqual(data2, new TextEncoder().encode("<p>é</p>"));
  const [, data3] = await toPrepareInput({ name: "b.txt", data: bytes.buffer });
  assert.deepEqual(data3, bytes);
  assert.ok(FILE_TYPES.includes(".txt") && FILE_TYPES.includes(".md") && FILE_TYPES.includes(".html"));
});

test("inputs add() cannot read are refused with a websem: error naming them", async () => {
  await assert.rejects(toPrepareInput("text"), /^WebsemError: websem: add\(\) takes documents .* got string "text"$/);
  await assert.rejects(toPrepareInput(null), /got null/);
  await assert.rejects(toPrepareInput(new Blob(["x"])), /needs a name ending in \.txt, \.md or \.html/);
  await assert.rejects(toPrepareInput({ name: "a.txt", data: 5 }), /file "a.txt": data must be a Uint8Array, ArrayBuffer or string, got number 5/);
});

test("a chunk's ids become the int64 tensors of a batch-1 query", () => {
  const [ids, mask, types] = modelInputs([101, 7592, 102]);
  assert.deepEqual(ids, BigInt64Array.from([101n, 7592n, 102n]));
  assert.deepEqual(mask, BigInt64Array.from([1n, 1n, 1n]));
  assert.deepEqual(types, new BigInt64Array(3));
});

test("vectors go to inpage_add as little-endian float32 rows in chunk order", () => {
  const rows = [Float32Array.from([1, -0.5, 0.25]), Float32Array.from([0.1, 0.2, 0.3])];
  const bytes = packVectors(rows, 3);
  assert.equal(bytes.byteLength, 2 * 3 * 4);
  const dv = new DataView(bytes.buffer);
  assert.equal(dv.getFloat32(0, true), 1);
  assert.equal(dv.getFloat32(4, true), -0.5);
  assert.equal(dv.getFloat32(12, true), Math.fround(0.1));
  assert.throws(() => packVectors([new Float32Array(2)], 3), /the model returned 2 dimensions, the bundle says 3/);
});

test("searchIndex keeps inpage_search()'s float16 vectors as bits and reads chunk documents", () => {
  // Two chunks of 2 dims in float16 (1, -2, 0.5, 65504), chunk 0 in document 0, chunk 1 in document 1.
  const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]).buffer);
  const chunkDoc = new Uint8Array(new Int32Array([0, 1]).buffer);
  // An odd offset, as a Uint8Array view can have: the rows are still read right.
  const shifted = new Uint8Array(half.length + 1);
  shifted.set(half, 1);
  for (const vec of [half, shifted.subarray(1)]) {
    const ix = searchIndex({ "index/vectors.bin": vec, "chunk_doc.bin": chunkDoc }, { dims: 2, chunks: 2, docs: 2, vector_dtype: "float16" });
    // Kept as float16 bits (no float32 copy), widened by loadIndex's table when scored.
    assert.ok(ix.vectors instanceof Uint16Array);
    assert.equal(ix.half, halfTable());
    assert.deepEqual(Array.from(ix.vectors, (h) => ix.half[h]), [1, -2, 0.5, 65504]);
    assert.deepEqual(Array.from(ix.chunkDoc), [0, 1]);
    assert.equal(ix.docs.length, 2);
    assert.equal(ix.n, 2);
    assert.equal(ix.scales, null);
  }
  const f32 = new Uint8Array(Float32Array.from([0.1, 0.2, 0.3, 0.4]).buffer);
  const ix = searchIndex({ "index/vectors.bin": f32, "chunk_doc.bin": chunkDoc }, { dims: 2, chunks: 2, docs: 2, vector_dtype: "float32" });
  assert.deepEqual(Array.from(ix.vectors), Array.from(Float32Array.from([0.1, 0.2, 0.3, 0.4])));
  assert.equal(ix.half, null);
  assert.throws(() => searchIndex({ "index/vectors.bin": f32, "chunk_doc.bin": chunkDoc }, { dims: 2, chunks: 3, docs: 2, vector_dtype: "float32" }),
    /the in-page index has 2 vectors and 2 chunk rows for 3 chunks/);
  assert.throws(() => searchIndex({ "index/vectors.bin": f32 }, { dims: 2, chunks: 2, docs: 2, vector_dtype: "float32" }), /the in-page index has no chunk_doc.bin/);
});

test("layoutVectors lays the held rows out in the index's order, once", () => {
  const rows = new Map([
    ["a", new Uint8Array([1, 1, 2, 2])],
    ["b", new Uint8Array([3, 3])],
    ["c", new Uint8Array([4, 4])],
  ]);
  const first = layoutVectors(["c", "a"], rows, 2); // "b" left out (a page without the body mark)
  assert.deepEqual([...first], [4, 4, 1, 1, 2, 2]);
  assert.equal(rows.get("a").buffer, first.buffer); // views of the one buffer: no second copy
  assert.equal(rows.get("c").buffer, first.buffer);
  assert.deepEqual([...rows.get("a")], [1, 1, 2, 2]);
  rows.delete("c");
  const second = layoutVectors(["a", "b"], rows, 2);
  assert.deepEqual([...second], [1, 1, 2, 2, 3, 3]);
  assert.equal(rows.get("a").buffer, second.buffer); // nothing keeps the first buffer alive
  assert.throws(() => layoutVectors(["z"], rows, 2), /websem: .*"z", whose vectors this worker does not hold/);
  assert.throws(() => layoutVectors(["b"], new Map([["b", new Uint8Array(3)]]), 2), /not whole rows of 2/);
});
