// Micro-benchmark of the runtime's dense ranking (web/src/dense.js `denseDocs`, the dense side of
// every semantic and hybrid search in web/src/search.js) against the implementation it replaced, in Node.
//
//   node bench/rank_micro.mjs [--quick] [--bundle DIR ...] [--sizes 1000,10000,100000]
//
// Each --bundle is a websem bundle (any vector_dtype, read from its manifest; default: bench's cached
// Cranfield bundle .cache/bench/bundles/cranfield). Pass one int8 and one float16 bundle to cover
// both storages the runtime scores (float32 bundles are scored like float16). Its real chunk vectors
// are truncated or REPEATED to each size, as bench/scale.py does (copy c of document d is a new
// document), so repeated chunks tie exactly and the tie-break by document index is exercised.
// Queries are real Cranfield chunk vectors (float32) and normalized means of two of them.
//
// Before timing, every query/size/storage is checked for bit-identical output against the old
// code (`referenceDenseDocs`, a verbatim copy of the first denseDocs): same documents,
// same best chunks, scores equal with Object.is, for limits 10, 100 and "all documents", with and
// without a filter. Any difference aborts the run. Timings alternate old/new per query; medians.
// Also timed: bench/peer/vectors.js `topK` (the transformers.js peer's brute-force top-10 over
// a pre-dequantized Float32Array) and two storage variants the runtime does not use, to price the
// memory/speed trade-off: int8 pre-dequantized to float32 at load, float16 kept raw + a 65536-entry
// lookup table. Writes bench/results/rank.json and rank.md.

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { halfTable } from "../web/src/bundle.js";
import { chunkDocs, denseDocs, topDocs } from "../web/src/dense.js";
import { topK as peerTopK } from "./peer/vectors.js";

const BENCH = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH, "..");
const RESULTS = join(BENCH, "results");

// ------------------------------------------------------------------------------------------------
// The first denseDocs implementation, verbatim: the reference the unrolled loops are checked against.

function referenceDenseDocs(index, query, limit, allowed = null) {
  const { dims, n, vectors, scales, chunks, docs } = index;
  const q = Float64Array.from(query);
  const best = new Float64Array(docs.length).fill(-Infinity);
  const bestChunk = new Int32Array(docs.length).fill(-1);
  for (let c = 0; c < n; c++) {
    const d = chunks[c].doc;
    if (allowed && !allowed[d]) continue;
    const off = c * dims;
    let s = 0;
    if (scales) {
      const scale = scales[c];
      for (let j = 0; j < dims; j++) s += q[j] * Math.fround(vectors[off + j] * scale);
    } else {
      for (let j = 0; j < dims; j++) s += q[j] * vectors[off + j];
    }
    if (s > best[d]) {
      best[d] = s;
      bestChunk[d] = c;
    }
  }
  const order = [];
  for (let d = 0; d < docs.length; d++) if (bestChunk[d] >= 0) order.push(d);
  order.sort((a, b) => best[b] - best[a] || a - b);
  const m = Math.min(order.length, limit);
  const out = { docs: new Int32Array(m), scores: new Float64Array(m), chunks: new Int32Array(m) };
  for (let i = 0; i < m; i++) {
    out.docs[i] = order[i];
    out.scores[i] = best[order[i]];
    out.chunks[i] = bestChunk[order[i]];
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Storage variants the runtime does not ship (priced here only).

/** denseDocs over raw float16 (Uint16Array) through the lookup table; same maths, same 4-chunk interleave. */
function halfTableDocs(index, raw, query, limit) {
  const { dims, docs } = index;
  const chunkDoc = chunkDocs(index);
  const table = halfTable();
  const q = Float64Array.from(query);
  const best = new Float64Array(docs.length).fill(-Infinity);
  const bestChunk = new Int32Array(docs.length).fill(-1);
  const n = chunkDoc.length;
  const put = (c, s) => {
    const d = chunkDoc[c];
    if (s > best[d]) {
      best[d] = s;
      bestChunk[d] = c;
    }
  };
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
      s0 += qj * table[raw[o0 + j]];
      s1 += qj * table[raw[o1 + j]];
      s2 += qj * table[raw[o2 + j]];
      s3 += qj * table[raw[o3 + j]];
    }
    put(c, s0);
    put(c + 1, s1);
    put(c + 2, s2);
    put(c + 3, s3);
  }
  for (; c < n; c++) {
    const off = c * dims;
    let s = 0;
    for (let j = 0; j < dims; j++) s += q[j] * table[raw[off + j]];
    put(c, s);
  }
  const order = topDocs(best, bestChunk, limit);
  return { docs: order, scores: Float64Array.from(order, (d) => best[d]), chunks: Int32Array.from(order, (d) => bestChunk[d]) };
}

// ------------------------------------------------------------------------------------------------
// Bundles → synthetic indexes

function readBundle(dir) {
  const man = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const idx = man.index;
  const files = idx.files;
  const buf = readFileSync(join(dir, files.vectors));
  const bytes = new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const dtype = idx.vector_dtype;
  let vectors;
  if (dtype === "int8") vectors = new Int8Array(bytes.buffer);
  else if (dtype === "float16") vectors = new Uint16Array(bytes.buffer);
  else vectors = new Float32Array(bytes.buffer);
  let scales = null;
  if (files.scales) {
    const s = readFileSync(join(dir, files.scales));
    scales = new Float32Array(s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength));
  }
  const chunks = JSON.parse(readFileSync(join(dir, files.chunks), "utf8"));
  const docs = JSON.parse(readFileSync(join(dir, files.docs), "utf8"));
  return { dir, dtype, dims: idx.dims, n: chunks.length, vectors, scales, chunks, docs };
}

/** The base bundle's chunks truncated/repeated to `n` (bench/scale.py scaled_bundle layout). */
function scaledIndex(base, n) {
  const { dims, n: n0 } = base;
  const Type = base.vectors.constructor;
  const raw = new Type(n * dims);
  const scales = base.scales ? new Float32Array(n) : null;
  const chunks = new Array(n);
  const docs = [];
  const docMap = new Map();
  for (let c = 0; c < n; c++) {
    const r = c % n0;
    const copy = Math.floor(c / n0);
    raw.set(base.vectors.subarray(r * dims, (r + 1) * dims), c * dims);
    if (scales) scales[c] = base.scales[r];
    const key = `${copy}:${base.chunks[r].doc}`;
    let d = docMap.get(key);
    if (d === undefined) {
      d = docs.length;
      docMap.set(key, d);
      const src = base.docs[base.chunks[r].doc];
      docs.push({ ...src, id: copy ? `${src.id}~${copy + 1}` : src.id });
    }
    chunks[c] = { ...base.chunks[r], doc: d };
  }
  // What bundle.js loadIndex holds: int8 as is (+ scales), float16 widened to float32 at load.
  let vectors = raw;
  if (base.dtype === "float16") {
    const t = halfTable();
    vectors = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) vectors[i] = t[raw[i]];
  }
  const index = { dims, n, vectors, scales, chunks, docs };
  chunkDocs(index);
  return { index, raw };
}

/** Float32 dequantized vectors (the peer's and the "int8 pre-dequantized" variant's storage). */
function dequantized(index) {
  if (!index.scales) return index.vectors;
  const { n, dims, vectors, scales } = index;
  const out = new Float32Array(n * dims);
  for (let c = 0; c < n; c++) {
    const s = scales[c];
    for (let j = 0; j < dims; j++) out[c * dims + j] = Math.fround(vectors[c * dims + j] * s);
  }
  return out;
}

function queriesFrom(base, count) {
  const { dims, n } = base;
  const row = (r) => {
    const v = new Float32Array(dims);
    for (let j = 0; j < dims; j++) {
      v[j] = base.scales ? Math.fround(base.vectors[r * dims + j] * base.scales[r])
        : base.dtype === "float16" ? halfTable()[base.vectors[r * dims + j]] : base.vectors[r * dims + j];
    }
    return v;
  };
  const out = [];
  for (let i = 0; i < count; i++) {
    const a = row((i * 7919) % n);
    if (i % 2 === 0) {
      out.push(a);
      continue;
    }
    const b = row((i * 104729 + 13) % n);
    const m = new Float32Array(dims);
    let norm = 0;
    for (let j = 0; j < dims; j++) norm += (a[j] + b[j]) ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < dims; j++) m[j] = (a[j] + b[j]) / norm;
    out.push(m);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Checks and timing

function sameResult(a, b) {
  if (a.docs.length !== b.docs.length) return `length ${a.docs.length} vs ${b.docs.length}`;
  for (let i = 0; i < a.docs.length; i++) {
    if (a.docs[i] !== b.docs[i]) return `rank ${i}: doc ${a.docs[i]} vs ${b.docs[i]}`;
    if (a.chunks[i] !== b.chunks[i]) return `rank ${i}: chunk ${a.chunks[i]} vs ${b.chunks[i]}`;
    if (!Object.is(a.scores[i], b.scores[i])) return `rank ${i}: score ${a.scores[i]} vs ${b.scores[i]}`;
  }
  return null;
}

function verify(label, index, raw, queries) {
  let compared = 0;
  const nd = index.docs.length;
  // A filter passing about a third of the documents (deterministic).
  const allowed = new Uint8Array(nd);
  for (let d = 0; d < nd; d++) allowed[d] = (d * 2654435761) % 3 === 0 ? 1 : 0;
  for (const [qi, q] of queries.entries()) {
    for (const limit of [10, 100, Infinity]) {
      for (const filter of [null, allowed]) {
        const want = referenceDenseDocs(index, q, limit, filter);
        const diff = sameResult(denseDocs(index, q, limit, filter), want);
        if (diff) throw new Error(`${label} query ${qi} limit ${limit} filter ${!!filter}: ${diff}`);
        compared += want.docs.length;
      }
    }
    if (raw instanceof Uint16Array) {
      const diff = sameResult(halfTableDocs(index, raw, q, 100), referenceDenseDocs(index, q, 100));
      if (diff) throw new Error(`${label} query ${qi} float16 table variant: ${diff}`);
    }
  }
  return compared;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  const pos = ((s.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

function time(fn) {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

function measure(impls, queries, warmup) {
  const times = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
  const names = Object.keys(impls);
  for (let i = 0; i < warmup + queries.length; i++) {
    const q = queries[i % queries.length];
    // Alternate the order per query so neither side always runs first.
    const order = i % 2 ? names : [...names].reverse();
    for (const name of order) {
      const ms = time(() => impls[name](q));
      if (i >= warmup) times[name].push(ms);
    }
  }
  return Object.fromEntries(names.map((k) => [k, { p50_ms: median(times[k]), p95_ms: pct(times[k], 95), runs: times[k].length }]));
}

// ------------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const args = { quick: false, bundles: [], sizes: [1000, 10000, 100000] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--quick") args.quick = true;
    else if (argv[i] === "--bundle") args.bundles.push(resolve(argv[++i]));
    else if (argv[i] === "--sizes") args.sizes = argv[++i].split(",").map(Number);
    else throw new Error(`bench/rank_micro.mjs: unknown argument ${argv[i]} (use --quick, --bundle DIR, --sizes a,b,c)`);
  }
  if (!args.bundles.length) {
    const cached = join(REPO, ".cache", "bench", "bundles", "cranfield");
    if (existsSync(join(cached, "manifest.json"))) args.bundles.push(cached);
  }
  if (!args.bundles.length) {
    throw new Error("bench/rank_micro.mjs: no bundle; pass --bundle DIR (a `websem build` output)");
  }
  return args;
}

function gitCommit() {
  try {
    return execFileSync("git", ["-C", REPO, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const nQueries = args.quick ? 10 : 30;
  const warmup = args.quick ? 3 : 5;
  const rows = [];
  const checks = [];
  for (const dir of args.bundles) {
    const base = readBundle(dir);
    const queries = queriesFrom(base, nQueries);
    for (const size of args.sizes) {
      const { index, raw } = scaledIndex(base, size);
      const label = `${base.dtype} ${size}`;
      const compared = verify(label, index, raw, queries);
      checks.push({ storage: base.dtype, chunks: size, queries: queries.length, ranked_docs_compared: compared, identical: true });
      console.error(`${label}: identical on ${queries.length} queries (${compared} ranked documents compared)`);
      const f32 = dequantized(index);
      const peerIndex = { n: size, dims: index.dims, vectors: f32, chunkDoc: index.chunkDoc, docs: index.docs, nDocs: index.docs.length };
      const f32Index = { ...index, vectors: f32, scales: null };
      chunkDocs(f32Index);
      const impls = {
        before: (q) => referenceDenseDocs(index, q, 10),
        after: (q) => denseDocs(index, q, 10),
        before_top100: (q) => referenceDenseDocs(index, q, 100),
        after_top100: (q) => denseDocs(index, q, 100),
        peer_topk: (q) => peerTopK(peerIndex, q, 10),
      };
      if (base.dtype === "int8") impls.variant_int8_predequantized = (q) => denseDocs(f32Index, q, 10);
      if (base.dtype === "float16") impls.variant_f16_raw_table = (q) => halfTableDocs(index, raw, q, 10);
      const timing = measure(impls, queries, warmup);
      const vecBytes = index.vectors.byteLength + (index.scales?.byteLength ?? 0);
      const row = {
        storage: base.dtype,
        chunks: size,
        docs: index.docs.length,
        dims: index.dims,
        timing,
        speedup_top10: timing.before.p50_ms / timing.after.p50_ms,
        speedup_top100: timing.before_top100.p50_ms / timing.after_top100.p50_ms,
        after_vs_peer: timing.after.p50_ms / timing.peer_topk.p50_ms,
        runtime_vector_bytes: vecBytes,
        variant_vector_bytes: base.dtype === "int8" ? f32.byteLength : raw.byteLength + halfTable().byteLength,
      };
      rows.push(row);
      console.error(`${label}: before ${timing.before.p50_ms.toFixed(1)} ms, after ${timing.after.p50_ms.toFixed(1)} ms, peer ${timing.peer_topk.p50_ms.toFixed(1)} ms`);
    }
  }
  const result = {
    name: "rank",
    date: new Date().toISOString(),
    mode: args.quick ? "quick" : "full",
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadavg: os.loadavg(), node: process.version },
    git_commit: gitCommit(),
    bundles: args.bundles,
    queries: nQueries,
    warmup,
    checks,
    rows,
  };
  writeFileSync(join(RESULTS, "rank.json"), `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(join(RESULTS, "rank.md"), markdown(result));
  console.error(`wrote ${join(RESULTS, "rank.json")} and rank.md`);
}

function markdown(r) {
  const f = (x) => x.toFixed(1);
  const mb = (b) => (b / 1e6).toFixed(1);
  const lines = [
    "# Dense ranking micro-benchmark (Node)",
    "",
    `${r.date} · mode \`${r.mode}\` · ${r.machine.node} · ${r.machine.cores} cores, load ${r.machine.loadavg.map((x) => x.toFixed(1)).join(" ")} · ` +
      `${r.queries} queries after ${r.warmup} warm-up, runs alternated, medians. Chunks above the base bundle's ` +
      "are REPEATED real Cranfield chunk vectors (bench/rank_micro.mjs); queries are real chunk vectors and means of two.",
    "",
    "`before` = denseDocs as of commit a4f9f02 (object read per chunk, full sort of every document); `after` = " +
      "web/src/dense.js now (Int32Array chunk→doc; four chunks scored at once, each with its own float64 " +
      "accumulator in index order, so the dependent-add chains overlap; bounded-heap top-k). `peer` = bench/peer/vectors.js topK (the transformers.js stack's brute-force top-10 over a " +
      "pre-dequantized Float32Array).",
    "",
    "| storage | chunks | docs | before p50 ms | after p50 ms | speed-up | top-100 before → after ms | peer p50 ms | after / peer | variant p50 ms | runtime vectors MB | variant MB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of r.rows) {
    const t = row.timing;
    const v = t.variant_int8_predequantized ?? t.variant_f16_raw_table;
    lines.push(
      `| ${row.storage} | ${row.chunks.toLocaleString("en")} | ${row.docs.toLocaleString("en")} | ${f(t.before.p50_ms)} | ${f(t.after.p50_ms)} | ` +
        `${row.speedup_top10.toFixed(2)}× | ${f(t.before_top100.p50_ms)} → ${f(t.after_top100.p50_ms)} | ${f(t.peer_topk.p50_ms)} | ` +
        `${row.after_vs_peer.toFixed(2)} | ${v ? f(v.p50_ms) : "–"} | ${mb(row.runtime_vector_bytes)} | ${mb(row.variant_vector_bytes)} |`,
    );
  }
  lines.push(
    "",
    "Variant column: int8 rows = int8 dequantized to a float32 array at load (4× the memory); float16 rows = " +
      "float16 kept raw and decoded through a 65536-entry Float32Array table per element (half the memory of the " +
      "runtime's float32 widening). Neither is what the runtime does; they price the trade-off.",
    "",
    "**Identical results, checked before timing:** for every storage, size and query, `denseDocs` (limits 10, 100 " +
      "and all documents; no filter and a filter passing a third of the documents) returns the same documents, best " +
      "chunks and scores (`Object.is`, i.e. bit-identical float64) as the old implementation; the float16 table variant is checked the same way. Any difference aborts the run.",
    "",
    "| storage | chunks | queries | ranked documents compared | identical |",
    "|---|---|---|---|---|",
    ...r.checks.map((c) => `| ${c.storage} | ${c.chunks.toLocaleString("en")} | ${c.queries} | ${c.ranked_docs_compared.toLocaleString("en")} | ${c.identical ? "yes" : "NO"} |`),
    "",
  );
  return lines.join("\n");
}

main();
