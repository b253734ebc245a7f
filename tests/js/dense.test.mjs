// web/src/dense.js against the definition in docs/architecture.md "Search semantics", computed
// the slow obvious way here: every chunk's float64 dot product, document = max over its chunks
// (first chunk reaching it wins), full sort by score descending then document ascending.
import assert from "node:assert/strict";
import { test } from "node:test";
import { halfTable } from "../../web/src/bundle.js";
import { chunkDocs, denseDocs, scoreHalfRows, scoreRows, topDocs } from "../../web/src/dense.js";

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

function makeIndex({ docs, chunks, dims, int8 = false, seed = 1 }) {
  const r = rng(seed);
  const chunkList = Array.from({ length: chunks }, (_, c) => ({ doc: Math.min(docs - 1, Math.floor((c * docs) / chunks)) }));
  let vectors;
  let scales = null;
  if (int8) {
    vectors = Int8Array.from({ length: chunks * dims }, () => Math.round(r() * 127));
    scales = Float32Array.from({ length: chunks }, () => Math.abs(r()) / 127);
  } else {
    vectors = Float32Array.from({ length: chunks * dims }, r);
  }
  // Exact ties: chunk 5 repeats chunk 2 (another document), so order falls back to the index.
  for (let j = 0; j < dims; j++) vectors[5 * dims + j] = vectors[2 * dims + j];
  if (scales) scales[5] = scales[2];
  return { dims, n: chunks, vectors, scales, chunks: chunkList, docs: Array.from({ length: docs }, (_, i) => ({ id: `d${i}` })) };
}

function reference(index, query, limit, allowed = null) {
  const { dims, vectors, scales } = index;
  const best = new Map();
  for (let c = 0; c < index.n; c++) {
    const d = index.chunks[c].doc;
    if (allowed && !allowed[d]) continue;
    let s = 0;
    for (let j = 0; j < dims; j++) {
      const v = scales ? Math.fround(vectors[c * dims + j] * scales[c]) : vectors[c * dims + j];
      s += query[j] * v;
    }
    if (!best.has(d) || s > best.get(d)[0]) best.set(d, [s, c]);
  }
  const order = [...best.entries()].sort((a, b) => b[1][0] - a[1][0] || a[0] - b[0]).slice(0, limit);
  return { docs: order.map(([d]) => d), scores: order.map(([, [s]]) => s), chunks: order.map(([, [, c]]) => c) };
}

function plain(out) {
  return { docs: Array.from(out.docs), scores: Array.from(out.scores), chunks: Array.from(out.chunks) };
}

for (const int8 of [false, true]) {
  test(`denseDocs equals the definition (${int8 ? "int8 + scales" : "float32"}), bit for bit`, () => {
    const index = makeIndex({ docs: 40, chunks: 103, dims: 17, int8, seed: int8 ? 7 : 3 });
    const query = Float32Array.from({ length: 17 }, rng(11));
    for (const limit of [1, 5, 40, 1000]) {
      assert.deepEqual(plain(denseDocs(index, query, limit)), reference(index, query, limit));
    }
  });
}

test("denseDocs scores float16 bits through the table like the float32 rows loadIndex decodes, bit for bit", () => {
  const dims = 19;
  const r = rng(41);
  const index = makeIndex({ docs: 37, chunks: 101, dims, seed: 43 });
  // Every half class: normals over a range of exponents, subnormals, signed zeros.
  const bits = Uint16Array.from({ length: 101 * dims }, (_, i) =>
    i % 97 === 0 ? 0x8000 : i % 89 === 0 ? 0x0003 : (r() < 0 ? 0x8000 : 0) | ((8 + Math.floor(Math.abs(r()) * 14)) << 10) | Math.floor(Math.abs(r()) * 1023));
  for (let j = 0; j < dims; j++) bits[5 * dims + j] = bits[2 * dims + j]; // the exact tie again
  const widened = { ...index, vectors: Float32Array.from(bits, (h) => halfTable()[h]) };
  const halfIndex = { ...index, vectors: bits, half: halfTable(), chunkDoc: undefined };
  const query = Float32Array.from({ length: dims }, rng(47));
  const allowed = Uint8Array.from({ length: 37 }, (_, d) => (d % 4 === 1 ? 0 : 1));
  for (const limit of [1, 6, 37, 500]) {
    assert.deepEqual(plain(denseDocs(halfIndex, query, limit)), reference(widened, query, limit));
    assert.deepEqual(plain(denseDocs(halfIndex, query, limit, allowed)), reference(widened, query, limit, allowed));
  }
});

test("denseDocs drops documents outside `allowed` before the cut", () => {
  const index = makeIndex({ docs: 30, chunks: 64, dims: 8 });
  const query = Float32Array.from({ length: 8 }, rng(5));
  const allowed = Uint8Array.from({ length: 30 }, (_, d) => (d % 3 === 0 ? 1 : 0));
  const got = plain(denseDocs(index, query, 4, allowed));
  assert.deepEqual(got, reference(index, query, 4, allowed));
  assert.ok(got.docs.every((d) => d % 3 === 0));
  assert.equal(got.docs.length, 4);
});

test("topDocs keeps the best `limit`, ties by document index, skips documents without chunks", () => {
  const best = Float64Array.from([0.5, 0.9, 0.5, -Infinity, 0.9, 0.1]);
  const bestChunk = Int32Array.from([0, 1, 2, -1, 4, 5]);
  assert.deepEqual(Array.from(topDocs(best, bestChunk, 3)), [1, 4, 0]);
  assert.deepEqual(Array.from(topDocs(best, bestChunk, 100)), [1, 4, 0, 2, 5]);
  assert.deepEqual(Array.from(topDocs(best, bestChunk, 0)), []);
});

test("chunkDocs builds the chunk -> document map once", () => {
  const index = makeIndex({ docs: 4, chunks: 9, dims: 2 });
  const map = chunkDocs(index);
  assert.deepEqual(Array.from(map), index.chunks.map((c) => c.doc));
  assert.equal(chunkDocs(index), map);
});

for (const int8 of [false, true]) {
  test(`scoreRows gives each row the definition's chunk score, bit for bit (${int8 ? "int8" : "float32"})`, () => {
    const dims = 13;
    for (const count of [0, 1, 3, 4, 9]) {
      const index = makeIndex({ docs: count || 1, chunks: Math.max(count, 6), dims, int8, seed: 17 + count });
      const query = Float64Array.from(Float32Array.from({ length: dims }, rng(23)));
      const out = scoreRows(index.vectors, index.scales, query, dims, count, new Float64Array(count + 2));
      for (let c = 0; c < count; c++) {
        let s = 0;
        for (let j = 0; j < dims; j++) s += query[j] * (int8 ? Math.fround(index.vectors[c * dims + j] * index.scales[c]) : index.vectors[c * dims + j]);
        assert.equal(out[c], s, `row ${c} of ${count}`);
      }
    }
  });
}

test("scoreHalfRows scores float16 rows like the widened float32 rows, bit for bit", () => {
  const dims = 11;
  const r = rng(31);
  for (const count of [0, 1, 4, 7]) {
    const bits = Uint16Array.from({ length: count * dims }, () => ((r() < 0 ? 0x8000 : 0) | ((12 + Math.floor(Math.abs(r()) * 4)) << 10) | Math.floor(Math.abs(r()) * 1023)));
    const widened = Float32Array.from(bits, (h) => halfTable()[h]);
    const query = Float64Array.from(Float32Array.from({ length: dims }, rng(37)));
    const got = scoreHalfRows(bits, halfTable(), query, dims, count, new Float64Array(count));
    assert.equal(got.length, count);
    assert.deepEqual(Array.from(got), Array.from(scoreRows(widened, null, query, dims, count, new Float64Array(count))));
  }
});
