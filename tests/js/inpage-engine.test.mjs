// web/src/inpage-engine.js under Node: the pieces between add() and Pyodide/ORT (inputs as
// inpage_prepare takes them, the model's inputs for a chunk, the vectors inpage_add takes, the
// in-memory index files loadIndex reads) and the option checks before anything loads. Whole
// indexing runs in Chromium (tests/browser/test_browser_inpage.py), against `websem build`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FILE_TYPES, createInpageEngine, memoryFiles, modelInputs, packVectors, toPrepareInput } from "../../web/src/inpage-engine.js";

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

test("memoryFiles reads inpage_files() output the way VerifiedFiles reads a bundle", async () => {
  const files = { "index/docs.json": new TextEncoder().encode('[{"id": "a"}]'), "index/vectors.bin": new Uint8Array(4) };
  const mem = memoryFiles(files);
  assert.deepEqual(await mem.json("index/docs.json"), [{ id: "a" }]);
  assert.equal(await mem.text("index/docs.json"), '[{"id": "a"}]');
  assert.equal(await mem.bytes("index/vectors.bin"), files["index/vectors.bin"]);
  await assert.rejects(mem.bytes("index/lexical.bin"), /the in-page index has no file "index\/lexical.bin"/);
});

test("options are checked before anything is fetched", async () => {
  const url = new URL("file:///nonexistent-websem-bundle/");
  await assert.rejects(createInpageEngine(url, { persist: "opfs" }), /persist "opfs" is not available in this runtime/);
  await assert.rejects(createInpageEngine(url, { persist: false, name: "../up" }), /index name "..\/up" is not allowed/);
});
