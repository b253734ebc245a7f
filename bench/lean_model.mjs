// Issue #7 "edge memory": one onnxruntime-web (wasm, 1 thread) measurement in a fresh Node
// process. Driven by bench/lean_model.py, which alternates models across rounds and takes medians.
//
//   node --expose-gc bench/lean_model.mjs '<json config>'     prints one JSON line
//
// config: {model: "model.onnx", ids: "ids.json" ({short: [...], long: [...]}), warmup, short, long,
//          external: true = weights as ORT external data, as web/src/model.js loads them}
//         or {engine: "web/src/engine.js", bundle: "BUNDLE", queries: 1000}
//
// What it reports (MB = 2^20 bytes):
// - wasm_mb: byteLength of every WebAssembly.Memory in the process (ORT's linear memory; in engine
//   rows also Pyodide's). A wasm Memory only grows, so after the runs this is its peak. Cloudflare
//   counts this plus the JS heap against the 128 MB isolate limit.
// - js_heap_mb / js_heap_total_mb: V8 heap used after a full GC / reserved.
// - peak_rss_mb: VmHWM, the process peak (Node itself is ~43 MB of it).
// - create_ms, short_ms / long_ms: session creation and per-run medians after a warm-up (V8 tiers
//   up ORT's 14 MB wasm over the first runs).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..");
const DIST = join(REPO, "web", "node_modules", "onnxruntime-web", "dist");
const MB = 1024 * 1024;

// Record every wasm Memory: ORT's glue constructs a shared one; Pyodide's module exports its own.
const memories = new Set();
const OrigMemory = WebAssembly.Memory;
WebAssembly.Memory = function Memory(desc) {
  const m = new OrigMemory(desc);
  memories.add(m);
  return m;
};
WebAssembly.Memory.prototype = OrigMemory.prototype;
for (const fn of ["instantiate", "instantiateStreaming"]) {
  const orig = WebAssembly[fn];
  WebAssembly[fn] = async function (...args) {
    const res = await orig.apply(this, args);
    const instance = res instanceof WebAssembly.Instance ? res : res.instance;
    for (const v of Object.values(instance?.exports ?? {})) if (v instanceof OrigMemory) memories.add(v);
    return res;
  };
}

function mem() {
  // Live JS heap, not garbage that V8 has not collected yet (the runner passes --expose-gc).
  globalThis.gc?.();
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)[1]);
  const mu = process.memoryUsage();
  const wasm = [...memories].map((m) => m.buffer.byteLength).filter((n) => n > 0);
  return {
    rss_mb: +(kb("VmRSS") / 1024).toFixed(1),
    peak_rss_mb: +(kb("VmHWM") / 1024).toFixed(1),
    wasm_mb: +(wasm.reduce((a, b) => a + b, 0) / MB).toFixed(1),
    wasm_each_mb: wasm.map((n) => +(n / MB).toFixed(1)),
    js_heap_mb: +(mu.heapUsed / MB).toFixed(1),
    js_heap_total_mb: +(mu.heapTotal / MB).toFixed(1),
    array_buffers_mb: +(mu.arrayBuffers / MB).toFixed(1),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};

async function ortChild(cfg) {
  const ort = await import(pathToFileURL(join(DIST, "ort.wasm.min.mjs")).href);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = pathToFileURL(DIST + "/").href;
  ort.env.logLevel = "error";
  const start = mem();
  const buf = readFileSync(cfg.model);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let graph = bytes;
  let externalData;
  if (cfg.external) {
    // How the runtime loads a model (web/src/model.js with web/src/weights.js): the
    // weights handed over as external data, so the wasm heap holds them once.
    const { WEIGHTS_FILE, externalizeWeights } = await import(pathToFileURL(join(REPO, "web", "src", "weights.js")).href);
    graph = externalizeWeights(bytes).graph;
    externalData = [{ path: WEIGHTS_FILE, data: bytes }];
  }
  const t0 = performance.now();
  // The session options web/src/model.js uses (loadSession), so this is what the runtime gets.
  const session = await ort.InferenceSession.create(graph, {
    externalData,
    executionProviders: ["wasm"],
    graphOptimizationLevel: "basic",
    extra: { session: { disable_quant_qdq: "1" } },
    logSeverityLevel: 3,
    ...(cfg.session ?? {}),
  });
  const createMs = performance.now() - t0;
  const created = mem();
  const ids = JSON.parse(readFileSync(cfg.ids, "utf8"));
  const run = async (seq) => {
    const n = seq.length;
    const feeds = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(seq, BigInt), [1, n]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
      token_type_ids: new ort.Tensor("int64", new BigInt64Array(n), [1, n]),
    };
    const t = performance.now();
    const out = await session.run(feeds, ["sentence_embedding"]);
    const ms = performance.now() - t;
    out.sentence_embedding.dispose?.();
    return ms;
  };
  for (let i = 0; i < (cfg.warmup ?? 30); i++) await run(i % 10 === 9 ? ids.long : ids.short);
  const shortMs = [];
  const longMs = [];
  for (let i = 0; i < (cfg.short ?? 40); i++) shortMs.push(await run(ids.short));
  for (let i = 0; i < (cfg.long ?? 8); i++) longMs.push(await run(ids.long));
  const end = mem();
  await session.release();
  return {
    create_ms: +createMs.toFixed(1),
    short_tokens: ids.short.length,
    long_tokens: ids.long.length,
    short_ms: +median(shortMs).toFixed(2),
    long_ms: +median(longMs).toFixed(2),
    start,
    created,
    end,
  };
}

const QUERIES = [
  "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
  "how can the aerodynamic performance of channel flow ground effect machines be calculated",
  "boundary layer transition at supersonic speeds",
  "heat transfer in laminar flow",
  "shock wave interaction with a boundary layer",
];

/** The real runtime (web/src/engine.js) on a bundle, serving `queries` hybrid searches. */
async function engineChild(cfg) {
  const { createEngine } = await import(pathToFileURL(resolve(cfg.engine)).href);
  const { fileFetch } = await import(pathToFileURL(join(REPO, "web", "src", "node.js")).href);
  const t0 = performance.now();
  const engine = await createEngine(pathToFileURL(resolve(cfg.bundle) + "/").href, {
    fetch: fileFetch,
    threads: 1,
    ...(cfg.engineOptions ?? {}),
  });
  const readyMs = performance.now() - t0;
  const ready = mem();
  const times = [];
  for (let i = 0; i < cfg.queries; i++) {
    const t = performance.now();
    await engine.search(QUERIES[i % QUERIES.length] + (i % 3 ? ` ${i}` : ""), { k: 10 });
    times.push(performance.now() - t);
  }
  const end = mem();
  await engine.close();
  return {
    ready_ms: +readyMs.toFixed(1),
    queries: cfg.queries,
    ms_per_query_median: +median(times).toFixed(2),
    ms_per_query_median_last_half: +median(times.slice(times.length >> 1)).toFixed(2),
    ready,
    end,
  };
}

const cfg = JSON.parse(process.argv[2] ?? "{}");
const out = cfg.engine ? await engineChild(cfg) : await ortChild(cfg);
process.stdout.write(JSON.stringify(out) + "\n");
