// websem dense scoring: query . chunk vector for every chunk, document = its best chunk, top-k.
//
// The exact maths of docs/architecture.md "Search semantics", which `websem query` computes with
// numpy: chunk score = dot(query, dequantized chunk vector) accumulated in float64 in index
// order; document score = max over its chunks (the first chunk reaching it wins); order by score
// descending, then document index ascending.

/**
 * Document index of every chunk as an Int32Array, cached on the index object. bundle.js loadIndex
 * sets it at load; indexes built by hand (tests, bench) get it on first use.
 */
export function chunkDocs(index) {
  if (!(index.chunkDoc instanceof Int32Array) || index.chunkDoc.length !== index.n) {
    index.chunkDoc = Int32Array.from(index.chunks, (c) => c.doc);
  }
  return index.chunkDoc;
}

// Each chunk's score is one float64 sum accumulated in index order (docs/architecture.md
// "Search semantics"), a chain of dependent additions that runs at the FPU's add latency, not its
// throughput. The loops below score FOUR chunks at a time, each with its own accumulator: every
// chunk still adds the same products in the same order (bit-identical scores), but the four
// chains overlap. Documents are updated in chunk order afterwards, so "the first chunk reaching
// the maximum wins" holds. Separate functions per storage keep each loop monomorphic for the JIT.
// Measured: bench/results/rank.md.
function update(c, s, chunkDoc, allowed, best, bestChunk) {
  const d = chunkDoc[c];
  if (allowed !== null && !allowed[d]) return;
  if (s > best[d]) {
    best[d] = s;
    bestChunk[d] = c;
  }
}

function scoreFloat(vectors, q, dims, chunkDoc, allowed, best, bestChunk) {
  const n = chunkDoc.length;
  let c = 0;
  for (; c + 4 <= n; c += 4) {
    const o0 = c * dims;
    const o1 = o0 + dims;
    const o2 = o1 + dims;
    const o3 = o2 + dims;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < dims; j++) {
      const qj = q[j];
      s0 += qj * vectors[o0 + j];
      s1 += qj * vectors[o1 + j];
      s2 += qj * vectors[o2 + j];
      s3 += qj * vectors[o3 + j];
    }
    update(c, s0, chunkDoc, allowed, best, bestChunk);
    update(c + 1, s1, chunkDoc, allowed, best, bestChunk);
    update(c + 2, s2, chunkDoc, allowed, best, bestChunk);
    update(c + 3, s3, chunkDoc, allowed, best, bestChunk);
  }
  for (; c < n; c++) {
    const off = c * dims;
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * vectors[off + j];
    update(c, s, chunkDoc, allowed, best, bestChunk);
  }
}

function scoreHalf(bits, half, q, dims, chunkDoc, allowed, best, bestChunk) {
  // float16 rows kept as their bits (2 bytes a value in memory, the in-page index's), widened by
  // the lookup table to the float32 value index/vectors.bin decodes to: the same products.
  const n = chunkDoc.length;
  let c = 0;
  for (; c + 4 <= n; c += 4) {
    const o0 = c * dims;
    const o1 = o0 + dims;
    const o2 = o1 + dims;
    const o3 = o2 + dims;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < dims; j++) {
      const qj = q[j];
      s0 += qj * half[bits[o0 + j]];
      s1 += qj * half[bits[o1 + j]];
      s2 += qj * half[bits[o2 + j]];
      s3 += qj * half[bits[o3 + j]];
    }
    update(c, s0, chunkDoc, allowed, best, bestChunk);
    update(c + 1, s1, chunkDoc, allowed, best, bestChunk);
    update(c + 2, s2, chunkDoc, allowed, best, bestChunk);
    update(c + 3, s3, chunkDoc, allowed, best, bestChunk);
  }
  for (; c < n; c++) {
    const off = c * dims;
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * half[bits[off + j]];
    update(c, s, chunkDoc, allowed, best, bestChunk);
  }
}

function scoreInt8(vectors, scales, q, dims, chunkDoc, allowed, best, bestChunk) {
  // Dequantize to float32 first (as numpy does with float32 scales), then accumulate in float64.
  const n = chunkDoc.length;
  const fround = Math.fround;
  let c = 0;
  for (; c + 4 <= n; c += 4) {
    const o0 = c * dims;
    const o1 = o0 + dims;
    const o2 = o1 + dims;
    const o3 = o2 + dims;
    const k0 = scales[c];
    const k1 = scales[c + 1];
    const k2 = scales[c + 2];
    const k3 = scales[c + 3];
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < dims; j++) {
      const qj = q[j];
      s0 += qj * fround(vectors[o0 + j] * k0);
      s1 += qj * fround(vectors[o1 + j] * k1);
      s2 += qj * fround(vectors[o2 + j] * k2);
      s3 += qj * fround(vectors[o3 + j] * k3);
    }
    update(c, s0, chunkDoc, allowed, best, bestChunk);
    update(c + 1, s1, chunkDoc, allowed, best, bestChunk);
    update(c + 2, s2, chunkDoc, allowed, best, bestChunk);
    update(c + 3, s3, chunkDoc, allowed, best, bestChunk);
  }
  for (; c < n; c++) {
    const off = c * dims;
    const k = scales[c];
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * fround(vectors[off + j] * k);
    update(c, s, chunkDoc, allowed, best, bestChunk);
  }
}

/**
 * The best `limit` documents by `best` (score descending, then document index ascending), only
 * documents with `bestChunk[d] >= 0`. Partial selection with a bounded binary heap whose root is
 * the worst kept document, then a sort of the at most `limit` survivors: the same order as
 * sorting every document, for O(docs log limit) instead of O(docs log docs).
 * @returns {Int32Array} document indexes, best first
 */
export function topDocs(best, bestChunk, limit) {
  const nd = best.length;
  const cap = Math.max(0, Math.min(nd, limit));
  const heap = new Int32Array(cap);
  let size = 0;
  // worse(a, b): a ranks after b. Documents arrive in ascending index, so a newcomer that only
  // ties the root's score ranks after it and is skipped by the `>` test below.
  const worse = (a, b) => best[a] < best[b] || (best[a] === best[b] && a > b);
  const siftDown = (i) => {
    const x = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const w = r < size && worse(heap[r], heap[l]) ? r : l;
      if (!worse(heap[w], x)) break;
      heap[i] = heap[w];
      i = w;
    }
    heap[i] = x;
  };
  for (let d = 0; d < nd && cap > 0; d++) {
    if (bestChunk[d] < 0) continue;
    if (size < cap) {
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(d, heap[p])) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = d;
    } else if (best[d] > best[heap[0]]) {
      heap[0] = d;
      siftDown(0);
    }
  }
  const out = heap.slice(0, size);
  // Score descending, then index ascending: the order a full sort of every document gives.
  out.sort((a, b) => best[b] - best[a] || a - b);
  return out;
}

/**
 * Dense document ranking, documents not in `allowed` (Uint8Array, 1 = passes the filters, or
 * null for all) dropped before the cut. `index.vectors`: Float32Array rows, Int8Array rows with
 * `index.scales`, or float16 bits (Uint16Array) with `index.half`, the table widening them
 * (bundle.js halfTable).
 * @returns {{docs: Int32Array, scores: Float64Array, chunks: Int32Array}} best first, at most `limit`.
 */
export function denseDocs(index, query, limit, allowed = null) {
  const { dims, vectors, scales, half, docs } = index;
  const chunkDoc = chunkDocs(index);
  const q = Float64Array.from(query);
  const best = new Float64Array(docs.length).fill(-Infinity);
  const bestChunk = new Int32Array(docs.length).fill(-1);
  if (scales) scoreInt8(vectors, scales, q, dims, chunkDoc, allowed ?? null, best, bestChunk);
  else if (half) scoreHalf(vectors, half, q, dims, chunkDoc, allowed ?? null, best, bestChunk);
  else scoreFloat(vectors, q, dims, chunkDoc, allowed ?? null, best, bestChunk);
  const order = topDocs(best, bestChunk, limit);
  const m = order.length;
  const out = { docs: order, scores: new Float64Array(m), chunks: new Int32Array(m) };
  for (let i = 0; i < m; i++) {
    out.scores[i] = best[order[i]];
    out.chunks[i] = bestChunk[order[i]];
  }
  return out;
}


// ---------------------------------------------------------------------------------------------
// Rows of a partitioned index's IVF lists (partitioned.js): the same products in the same order
// as the flat loops above, so a chunk scores exactly as in the flat index; the score of row i
// goes to out[i] and the caller maps rows to chunks and documents.

function rowsFloat(vectors, q, dims, count, out) {
  let c = 0;
  for (; c + 4 <= count; c += 4) {
    const o0 = c * dims;
    const o1 = o0 + dims;
    const o2 = o1 + dims;
    const o3 = o2 + dims;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < dims; j++) {
      const qj = q[j];
      s0 += qj * vectors[o0 + j];
      s1 += qj * vectors[o1 + j];
      s2 += qj * vectors[o2 + j];
      s3 += qj * vectors[o3 + j];
    }
    out[c] = s0;
    out[c + 1] = s1;
    out[c + 2] = s2;
    out[c + 3] = s3;
  }
  for (; c < count; c++) {
    const off = c * dims;
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * vectors[off + j];
    out[c] = s;
  }
}

function rowsInt8(vectors, scales, q, dims, count, out) {
  const fround = Math.fround;
  let c = 0;
  for (; c + 4 <= count; c += 4) {
    const o0 = c * dims;
    const o1 = o0 + dims;
    const o2 = o1 + dims;
    const o3 = o2 + dims;
    const k0 = scales[c];
    const k1 = scales[c + 1];
    const k2 = scales[c + 2];
    const k3 = scales[c + 3];
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < dims; j++) {
      const qj = q[j];
      s0 += qj * fround(vectors[o0 + j] * k0);
      s1 += qj * fround(vectors[o1 + j] * k1);
      s2 += qj * fround(vectors[o2 + j] * k2);
      s3 += qj * fround(vectors[o3 + j] * k3);
    }
    out[c] = s0;
    out[c + 1] = s1;
    out[c + 2] = s2;
    out[c + 3] = s3;
  }
  for (; c < count; c++) {
    const off = c * dims;
    const k = scales[c];
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * fround(vectors[off + j] * k);
    out[c] = s;
  }
}

/**
 * Scores of `count` rows (Float32Array, or Int8Array with float32 `scales`) against `q`
 * (Float64Array), into `out` (Float64Array of at least `count`).
 */
export function scoreRows(vectors, scales, q, dims, count, out) {
  if (scales) rowsInt8(vectors, scales, q, dims, count, out);
  else rowsFloat(vectors, q, dims, count, out);
  return out;
}

/**
 * Scores of `count` rows stored as float16 bits (Uint16Array `cent`, widened by the lookup table
 * `half`, so they stay 2 bytes each in memory: a partitioned index's centroids) against `q`, into
 * `out`; the same float64 sums as scoreRows.
 */
export function scoreHalfRows(cent, half, q, dims, count, out) {
  let l = 0;
  for (; l + 4 <= count; l += 4) {
    const o0 = l * dims;
    const o1 = o0 + dims;
    const o2 = o1 + dims;
    const o3 = o2 + dims;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < dims; j++) {
      const qj = q[j];
      s0 += qj * half[cent[o0 + j]];
      s1 += qj * half[cent[o1 + j]];
      s2 += qj * half[cent[o2 + j]];
      s3 += qj * half[cent[o3 + j]];
    }
    out[l] = s0;
    out[l + 1] = s1;
    out[l + 2] = s2;
    out[l + 3] = s3;
  }
  for (; l < count; l++) {
    const o = l * dims;
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * half[cent[o + j]];
    out[l] = s;
  }
  return out;
}
