// websem hybrid retrieval in the runtime (issue #6, docs/hybrid.md "Integration plan").
//
// Split of the work per query, so the browser ranks exactly like the CPU reference
// (`websem.web.query`, which calls the same `Ranker.results`):
//   1. plan   (Pyodide): query terms from the shipped analyzer, documents passing the filters;
//   2. BM25   (JS, lexical.js) over index/lexical.bin, and dense scores (JS, `denseDocs`);
//   3. finish (Pyodide): `Ranker(...).results(..., utf16=True)`: fusion, facets, snippets with
//      highlight ranges in UTF-16 code units (so `snippet.slice(s, e)` is exact in JS).
// Pyodide runs in-process (Node, edge) or in the tokenizer worker (browser); both call
// `rankerCall(pyodide, method, args)`.
import { lexicalDocs, openLexical } from "./lexical.js";

/** Search modes (web/text/bm25.py MODES); the first is the default when the bundle allows it. */
export const MODES = ["hybrid", "semantic", "lexical"];
export const DEFAULT_FACETS = ["tags", "section", "language"];
export const DEFAULT_N = 100;
export const DEFAULT_RRF_K = 60;

// Defines websem_ranker_init / websem_plan / websem_finish in Pyodide's globals. JS values
// arrive as JsProxy (typed arrays: `.to_py()` gives a memoryview; float64 keeps scores exact).
const RANKER_PY = `
import json
from websem_text.bm25 import DocHit, Ranker

_websem_ranker = None

def _websem_bytes(x):
    return bytes(x.to_py()) if hasattr(x, "to_py") else bytes(x)

def _websem_absent(x):
    # 2026-11-28: Pyodide 314 passes JS null as a JsNull object, not None.
    return x is None or not hasattr(x, "to_py")

def _websem_list(x):
    return [] if _websem_absent(x) else x.to_py().tolist()

def websem_ranker_init(chunks_json, docs_json, analyzer_json, facets_json, fusion_json=None):
    global _websem_ranker
    # manifest.index.fusion; bundles without it (and their older Ranker) keep RRF.
    fusion = json.loads(fusion_json) if isinstance(fusion_json, str) and fusion_json else None
    _websem_ranker = Ranker(None, json.loads(_websem_bytes(chunks_json)),
                            json.loads(_websem_bytes(docs_json)),
                            analyzer=json.loads(analyzer_json) if analyzer_json else None,
                            facet_fields=json.loads(facets_json),
                            **({} if fusion is None else {"fusion": fusion}))
    return len(_websem_ranker.docs)

def websem_plan(query, filters_json):
    filters = json.loads(filters_json) if filters_json else None
    allowed = _websem_ranker.allowed(filters)
    return json.dumps({"terms": _websem_ranker.analyzer.terms(query),
                       "allowed": None if allowed is None else sorted(allowed)})

def _websem_hits(d, s, c):
    return [DocHit(a, b, e) for a, b, e in zip(_websem_list(d), _websem_list(s), _websem_list(c), strict=True)]

def websem_finish(query, mode, sem_d, sem_s, sem_c, lex_d, lex_s, lex_c, filters_json, k, n, rrf_k):
    lex = None if _websem_absent(lex_d) else _websem_hits(lex_d, lex_s, lex_c)
    res = _websem_ranker.results(query, mode=mode, semantic=_websem_hits(sem_d, sem_s, sem_c),
                                 lexical=lex, filters=json.loads(filters_json) if filters_json else None,
                                 k=k, n=n, rrf_k=rrf_k, utf16=True)
    return json.dumps(res)
`;

const pyState = new WeakMap();

/**
 * Run one ranker step in a Pyodide instance: "init" | "plan" | "finish" (args as in RANKER_PY).
 * Python's `websem:` errors come back as Error messages starting with `websem:`.
 */
export function rankerCall(pyodide, method, args) {
  if (!pyState.has(pyodide)) {
    pyodide.runPython(RANKER_PY);
    pyState.set(pyodide, true);
  }
  const name = { init: "websem_ranker_init", plan: "websem_plan", finish: "websem_finish" }[method];
  if (!name) throw new Error(`websem: unknown ranker method ${JSON.stringify(method)}`);
  const fn = pyodide.globals.get(name);
  try {
    return fn(...args);
  } catch (e) {
    throw new Error(pythonError(e));
  } finally {
    fn.destroy();
  }
}

function pythonError(e) {
  // A PythonError's message is the whole traceback; the user needs its last line.
  const text = String(e?.message ?? e);
  const m = text.match(/websem:[^\n]*/g);
  if (m) return m[m.length - 1];
  return `websem: search failed in Pyodide: ${text.trim().split("\n").pop()}`;
}

/** Filters as `{field: [values]}` JSON (string values become one-element lists), or "" for none. */
export function filtersJson(filters) {
  if (filters == null) return "";
  if (typeof filters !== "object" || Array.isArray(filters)) {
    throw new Error(`websem: filters must be an object like {section: "x"} or {tags: ["a", "b"]}, got ${JSON.stringify(filters)}`);
  }
  const out = {};
  for (const [field, v] of Object.entries(filters)) {
    if (v == null) continue;
    out[field] = Array.isArray(v) ? v.map(String) : [String(v)];
  }
  return Object.keys(out).length ? JSON.stringify(out) : "";
}

/**
 * Document index of every chunk as an Int32Array, cached on the index object. engine.js loadIndex
 * sets it at load; indexes built by hand (tests, bench) get it on first use.
 */
export function chunkDocs(index) {
  if (!(index.chunkDoc instanceof Int32Array) || index.chunkDoc.length !== index.n) {
    index.chunkDoc = Int32Array.from(index.chunks, (c) => c.doc);
  }
  return index.chunkDoc;
}

// 2026-11-28: each chunk's score is one float64 sum accumulated in index order (docs/architecture.md
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
  // Same comparator as before the heap (2026-11-28): score descending, then index ascending.
  out.sort((a, b) => best[b] - best[a] || a - b);
  return out;
}

/**
 * Dense document ranking with a filter: the exact maths of docs/architecture.md "Search
 * semantics" (engine.js `rank` is this with no filter), documents not in `allowed` dropped
 * before the cut.
 * @returns {{docs: Int32Array, scores: Float64Array, chunks: Int32Array}} best first, at most `limit`.
 */
export function denseDocs(index, query, limit, allowed = null) {
  const { dims, vectors, scales, docs } = index;
  const chunkDoc = chunkDocs(index);
  const q = Float64Array.from(query);
  const best = new Float64Array(docs.length).fill(-Infinity);
  const bestChunk = new Int32Array(docs.length).fill(-1);
  if (scales) scoreInt8(vectors, scales, q, dims, chunkDoc, allowed ?? null, best, bestChunk);
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

/**
 * The hybrid searcher of one loaded bundle.
 *
 * @param {object} p
 * @param {(method: string, args: any[]) => Promise<any>} p.py ranker steps in Pyodide (rankerCall)
 * @param {object} p.index engine.js loadIndex() result (vectors, chunks, docs)
 * @param {object|null} p.lexical openLexical() result, or null (bundle without index/lexical.bin)
 * @param {(text: string) => Promise<Float32Array>} p.embed query embedding (serialized ORT run)
 * @param {object} p.settings manifest.index.lexical ({n, rrf_k})
 */
export function createHybrid({ py, index, lexical, embed, settings = {} }) {
  const modes = lexical ? MODES.slice() : ["semantic"];
  const n = Number.isInteger(settings?.n) && settings.n > 0 ? settings.n : DEFAULT_N;
  const rrfK = Number.isInteger(settings?.rrf_k) && settings.rrf_k >= 0 ? settings.rrf_k : DEFAULT_RRF_K;
  const chunkDoc = chunkDocs(index);

  /** @returns {Promise<{hits: object[], facets: object, mode: string}>} */
  async function search(query, { k = 10, mode, filters } = {}) {
    mode = mode ?? modes[0];
    if (!MODES.includes(mode)) {
      throw new Error(`websem: unknown search mode ${JSON.stringify(mode)}; use one of ${MODES.join(", ")}`);
    }
    if (!modes.includes(mode)) {
      throw new Error(
        `websem: mode ${JSON.stringify(mode)} needs a lexical index but this bundle has none (no index/lexical.bin); ` +
          "use mode 'semantic' or rebuild the bundle with `websem build`",
      );
    }
    const fj = filtersJson(filters);
    const plan = JSON.parse(await py("plan", [query, fj]));
    let allowed = null;
    if (plan.allowed) {
      allowed = new Uint8Array(index.docs.length);
      for (const d of plan.allowed) allowed[d] = 1;
    }
    // Lexical: every matching document in lexical mode (facets count them all), the top n in
    // hybrid (all that fusion and facets use there); none in semantic mode.
    let lex = null;
    if (mode !== "semantic") lex = lexicalDocs(lexical, plan.terms, chunkDoc, allowed, mode === "lexical" ? Infinity : n);
    let sem = { docs: new Int32Array(0), scores: new Float64Array(0), chunks: new Int32Array(0) };
    if (mode !== "lexical") sem = denseDocs(index, await embed(query), Math.max(k, n), allowed);
    const res = JSON.parse(
      await py("finish", [
        query, mode, sem.docs, sem.scores, sem.chunks,
        lex?.docs ?? null, lex?.scores ?? null, lex?.chunks ?? null,
        fj, k, n, rrfK,
      ]),
    );
    return { hits: res.hits, facets: res.facets, mode };
  }

  return { modes, search };
}

/**
 * Load the lexical side of a bundle while the rest loads: index/lexical.bin (sha256-verified,
 * only when manifest.index.files.lexical lists it) and Pyodide's Ranker over chunks.json and
 * docs.json. Bundles without a lexical index get `{lexical: null}` (semantic search only).
 *
 * @param {Promise<object>} tokenizerP engine.js tokenizer: `{pyodide}` in-process or `{call}` (worker)
 * @param {object} files engine.js VerifiedFiles
 * @param {object} manifest the bundle manifest
 * @param {(event: object) => void} [onProgress] gets {stage: "ranker-ready"}
 */
export async function setupRanker(tokenizerP, files, manifest, onProgress = () => {}) {
  const idx = manifest.index ?? {};
  const paths = idx.files ?? {};
  if (!paths.lexical) return { py: null, lexical: null, settings: {} };
  const [tokenizer, chunksBytes, docsBytes, lexBytes] = await Promise.all([
    tokenizerP,
    files.bytes(paths.chunks ?? "index/chunks.json"),
    files.bytes(paths.docs ?? "index/docs.json"),
    files.bytes(paths.lexical),
  ]);
  const lexical = openLexical(lexBytes, idx.chunks);
  const py = tokenizer.call
    ? (method, args) => tokenizer.call(method, args)
    : async (method, args) => rankerCall(tokenizer.pyodide, method, args);
  await py("init", [
    chunksBytes,
    docsBytes,
    JSON.stringify(lexical.analyzer),
    JSON.stringify(idx.facets ?? DEFAULT_FACETS),
    JSON.stringify(idx.fusion ?? null),
  ]);
  onProgress({ stage: "ranker-ready" });
  return { py, lexical, settings: idx.lexical ?? {} };
}
