// The peer's half of "the same job": brute-force cosine top-10 over the very vectors websem ships.
// Reads the websem bundle's index files (layout: docs/architecture.md), dequantizes them once into a
// Float32Array, then scores chunks with a float64 dot product, document score = max over its chunks,
// order score desc then document index asc (the websem search semantics).

function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export async function loadIndex(bundleUrl) {
  const get = (p) => fetch(new URL(p, bundleUrl));
  const manifest = await (await get("manifest.json")).json();
  const idx = manifest.index;
  const files = idx.files;
  const [vecBuf, scaleBuf, chunks, docs] = await Promise.all([
    get(files.vectors).then((r) => r.arrayBuffer()),
    files.scales ? get(files.scales).then((r) => r.arrayBuffer()) : Promise.resolve(null),
    get(files.chunks).then((r) => r.json()),
    get(files.docs).then((r) => r.json()),
  ]);
  const n = idx.chunks;
  const dims = idx.dims;
  const vectors = new Float32Array(n * dims);
  if (idx.vector_dtype === "int8") {
    const q = new Int8Array(vecBuf);
    const scales = new Float32Array(scaleBuf);
    for (let i = 0; i < n; i++) {
      const s = scales[i];
      for (let j = 0; j < dims; j++) vectors[i * dims + j] = q[i * dims + j] * s;
    }
  } else if (idx.vector_dtype === "float16") {
    const h = new Uint16Array(vecBuf);
    for (let i = 0; i < h.length; i++) vectors[i] = f16ToF32(h[i]);
  } else if (idx.vector_dtype === "float32") {
    vectors.set(new Float32Array(vecBuf));
  } else {
    throw new Error(`bench peer: unknown vector_dtype ${idx.vector_dtype}`);
  }
  const chunkDoc = Int32Array.from(chunks, (c) => c.doc);
  return { n, dims, vectors, chunkDoc, docs, nDocs: docs.length };
}

export function topK(index, query, k) {
  const { n, dims, vectors, chunkDoc, docs, nDocs } = index;
  const best = new Float64Array(nDocs).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * dims;
    for (let j = 0; j < dims; j++) s += query[j] * vectors[o + j];
    const d = chunkDoc[i];
    if (s > best[d]) best[d] = s;
  }
  // Partial selection: keep a sorted list of the k best (k is small).
  const top = [];
  for (let d = 0; d < nDocs; d++) {
    const s = best[d];
    if (s === -Infinity) continue;
    if (top.length < k || s > top[top.length - 1].score) {
      let at = top.length;
      while (at > 0 && top[at - 1].score < s) at--;
      top.splice(at, 0, { doc: d, score: s });
      if (top.length > k) top.pop();
    }
  }
  return top.map((t) => ({ id: docs[t.doc].id, score: t.score }));
}
