// Memory of the edge runtime pieces in Node 20: Pyodide (tokenizer) + an onnxruntime-web wasm
// session (model), measured one configuration per fresh process so RSS figures do not leak into
// each other.
//
//   node bench/edge_memory.mjs [--model-dyn DYN.onnx --model-wo PKG/model.onnx [--model-fp32 F.onnx]
//        [--model-packed PACKED/model.onnx]]
//        [--bundle BUNDLE [--bundle-dyn BUNDLE2] [--bundle-packed BUNDLE3] [--engine-patched engine.js]]
// (2026-11-28, issue #7: the weight-int8-packed comparison with wasm heap sizes and medians is
// bench/lean_model.py; the --*-packed rows here only add it to this RSS table.)
//        [--queries 1000] [--out bench/results/edge_memory]
// Component rows (Pyodide alone, ORT sessions alone) need the --model-* files; engine rows run
// web/src/engine.js (the real runtime) on a bundle and serve --queries searches.
//   node bench/edge_memory.mjs --child '<json config>'      (one measurement, prints JSON)
//
// Why per-process: a wasm Memory can grow but never shrink, and V8 keeps freed pages mapped,
// so the only honest "what does option X cost" number is the peak RSS (VmHWM) of a process that
// did exactly X and nothing else.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..");
const NM = join(REPO, "web", "node_modules");
const MB = 1024 * 1024;

/** Current RSS and peak RSS (VmHWM) of this process, in MB. */
function mem() {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)[1]);
  const mu = process.memoryUsage();
  return {
    rss: +(kb("VmRSS") / 1024).toFixed(1),
    peak: +(kb("VmHWM") / 1024).toFixed(1),
    heapUsed: +(mu.heapUsed / MB).toFixed(1),
    external: +(mu.external / MB).toFixed(1),
    arrayBuffers: +(mu.arrayBuffers / MB).toFixed(1),
  };
}

/** Short realistic queries (Cranfield-like) so token lengths are typical. */
const QUERIES = [
  "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
  "what are the structural and aeroelastic problems associated with flight of high speed aircraft",
  "how can the aerodynamic performance of channel flow ground effect machines be calculated",
  "boundary layer transition at supersonic speeds",
  "heat transfer in laminar flow",
  "what theoretical and experimental guides do we have as to turbulent couette flow behaviour",
  "is it possible to relate the available pressure distributions for an ogive forebody at zero angle of attack",
  "shock wave interaction with a boundary layer",
];

/** The real runtime: engine.js (or a patched copy, --engine) on a bundle, serving queries. */
async function engineChild(cfg, stages) {
  const engineUrl = pathToFileURL(cfg.engine).href;
  const { createEngine } = await import(engineUrl);
  const { fileFetch } = await import(pathToFileURL(join(REPO, "web", "src", "node.js")).href);
  const engine = await createEngine(pathToFileURL(resolve(cfg.bundle) + "/").href, {
    fetch: fileFetch,
    ...(cfg.engineOptions ?? {}),
  });
  stages.ready = mem();
  const t0 = performance.now();
  for (let i = 0; i < cfg.queries; i++) {
    await engine.search(QUERIES[i % QUERIES.length] + (i % 3 ? ` ${i}` : ""), { k: 10 });
  }
  stages.queries = mem();
  stages.queries.ms_per_query = +((performance.now() - t0) / Math.max(1, cfg.queries)).toFixed(2);
  await engine.close();
  stages.end = mem();
  return stages;
}

async function child(cfg) {
  const stages = { start: mem() };
  if (cfg.engine) return engineChild(cfg, stages);
  let pyodide = null;
  let tokenize = null;
  if (cfg.pyodide) {
    const { loadPyodide } = await import(pathToFileURL(join(NM, "pyodide", "pyodide.mjs")).href);
    const opts = { indexURL: join(NM, "pyodide") + "/" };
    if (cfg.snapshotLoad) opts._loadSnapshot = readFileSync(cfg.snapshotLoad);
    if (cfg.snapshotMake) opts._makeSnapshot = true;
    pyodide = await loadPyodide(opts);
    stages.pyodide = mem();
    stages.pyodide.wasmHeap = +(pyodide._module.HEAP8.buffer.byteLength / MB).toFixed(1);
    const textDir = join(REPO, "web", "text");
    const tokJson = cfg.tokenizer && existsSync(cfg.tokenizer) ? readFileSync(cfg.tokenizer, "utf8") : null;
    if (tokJson && existsSync(join(textDir, "wordpiece.py"))) {
      // The real shipped tokenizer (websem_text), exactly as the runtime imports it.
      pyodide.FS.mkdirTree("/home/pyodide/websem_text");
      for (const f of (await import("node:fs")).readdirSync(textDir)) {
        if (f.endsWith(".py")) {
          pyodide.FS.writeFile(`/home/pyodide/websem_text/${f}`, readFileSync(join(textDir, f)));
        }
      }
      pyodide.globals.set("TOK_JSON", tokJson);
      pyodide.runPython(`
import sys, array
sys.path.insert(0, "/home/pyodide")
from websem_text.wordpiece import WordPieceTokenizer
_tok = WordPieceTokenizer.from_json(TOK_JSON, max_length=256)
del TOK_JSON
def _ids(text):
    return array.array("q", _tok.encode(text).ids)
`);
      const fn = pyodide.globals.get("_ids");
      tokenize = (q) => {
        const proxy = fn(q);
        const out = proxy.toJs();
        proxy.destroy();
        return BigInt64Array.from(out);
      };
      stages.tokenizer = mem();
    }
    if (cfg.snapshotMake) {
      writeFileSync(cfg.snapshotMake, pyodide.makeMemorySnapshot());
      stages.snapshot = mem();
    }
  }
  if (!tokenize) {
    // Without the Python tokenizer (ORT-only configs): deterministic fake ids of real lengths.
    tokenize = (q) => {
      const words = q.split(" ");
      const ids = new BigInt64Array(words.length + 2);
      ids[0] = 101n;
      words.forEach((w, i) => (ids[i + 1] = BigInt(1000 + ((w.length * 7919 + i) % 28000))));
      ids[words.length + 1] = 102n;
      return ids;
    };
  }
  let session = null;
  let ort = null;
  if (cfg.model) {
    ort = await import(pathToFileURL(join(NM, "onnxruntime-web", "dist", "ort.wasm.min.mjs")).href);
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = pathToFileURL(join(NM, "onnxruntime-web", "dist") + "/").href;
    // A Buffer already is a Uint8Array: wrapping it with new Uint8Array() would copy 23+ MB.
    const buf = readFileSync(cfg.model);
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    stages.modelBytes = mem();
    session = await ort.InferenceSession.create(bytes, cfg.session || {});
    stages.session = mem();
  }
  if (session && cfg.queries) {
    const t0 = performance.now();
    for (let i = 0; i < cfg.queries; i++) {
      const ids = tokenize(QUERIES[i % QUERIES.length] + (i % 3 ? " " + i : ""));
      const n = ids.length;
      const feeds = {};
      const names = session.inputNames;
      if (names.includes("input_ids")) feeds.input_ids = new ort.Tensor("int64", ids, [1, n]);
      if (names.includes("attention_mask")) feeds.attention_mask = new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]);
      if (names.includes("token_type_ids")) feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(n), [1, n]);
      const out = await session.run(feeds);
      for (const t of Object.values(out)) t.dispose?.();
    }
    stages.queries = mem();
    stages.queries.ms_per_query = +((performance.now() - t0) / cfg.queries).toFixed(2);
  }
  if (session) await session.release();
  stages.end = mem();
  return stages;
}

function runChild(cfg) {
  const flags = cfg.nodeFlags ?? [];
  const r = spawnSync(process.execPath, [...flags, fileURLToPath(import.meta.url), "--child", JSON.stringify(cfg)], {
    encoding: "utf8",
    env: { ...process.env, ...(cfg.env ?? {}) },
    maxBuffer: 64 * MB,
  });
  if (r.status !== 0) throw new Error(`child ${cfg.name} failed: ${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop();
  return JSON.parse(line);
}

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

async function main() {
  if (process.argv[2] === "--child") {
    const out = await child(JSON.parse(process.argv[3]));
    process.stdout.write(JSON.stringify(out) + "\n");
    return;
  }
  const dyn = arg("--model-dyn", arg("--model"));
  const wo = arg("--model-wo");
  const fp32 = arg("--model-fp32");
  const packed = arg("--model-packed");
  const tokenizer = arg("--tokenizer", wo ? join(dirname(wo), "tokenizer.json") : null);
  const queries = Number(arg("--queries", "1000"));
  const out = arg("--out", join(REPO, "bench", "results", "edge_memory"));
  const lean = { enableCpuMemArena: false, enableMemPattern: false };
  const liftoff = ["--liftoff-only"];
  const componentConfigs = !dyn ? [] : [
    { name: "node baseline" },
    { name: "pyodide only", pyodide: true },
    { name: "pyodide + websem_text tokenizer", pyodide: true, tokenizer },
    { name: "pyodide + tokenizer, --liftoff-only", pyodide: true, tokenizer, nodeFlags: liftoff },
    fp32 && { name: "ort fp32 model, defaults", model: fp32, queries },
    wo && { name: "ort weight-only int8 (DequantizeLinear), defaults", model: wo, queries },
    packed && { name: "ort weight-int8-packed (MatMulNBits), defaults", model: packed, queries },
    { name: "ort dynamic int8 (MatMulInteger), defaults", model: dyn, queries },
    { name: "ort dynamic int8, arena+pattern off", model: dyn, queries, session: lean },
    { name: "ort dynamic int8, arena+pattern off, opt=basic", model: dyn, queries, session: { ...lean, graphOptimizationLevel: "basic" } },
    { name: "ort dynamic int8, arena+pattern off, opt=disabled", model: dyn, queries, session: { ...lean, graphOptimizationLevel: "disabled" } },
    wo && { name: "ort weight-only int8, --liftoff-only", model: wo, queries, nodeFlags: liftoff },
    { name: "ort dynamic int8, --liftoff-only", model: dyn, queries, nodeFlags: liftoff },
  ].filter(Boolean);
  // The real engine on a real bundle; a patched engine copy (--engine-patched) may take the
  // proposed options `dropBytes` (free verified download buffers once loaded) and `sessionOptions`.
  const engine = join(REPO, "web", "src", "engine.js");
  const patched = arg("--engine-patched");
  const bundle = arg("--bundle");
  const bundleDyn = arg("--bundle-dyn");
  const bundlePacked = arg("--bundle-packed");
  const leanEngine = { dropBytes: true, sessionOptions: lean };
  const arena = { MALLOC_ARENA_MAX: "1" };
  const eq = Number(arg("--engine-queries", String(queries)));
  const engineConfigs = !bundle ? [] : [
    { name: "engine.js on bundle, defaults", engine, bundle, queries: eq },
    { name: "engine.js, MALLOC_ARENA_MAX=1", engine, bundle, queries: eq, env: arena },
    { name: "engine.js, MALLOC_ARENA_MAX=1, --liftoff-only", engine, bundle, queries: eq, env: arena, nodeFlags: liftoff },
    patched && { name: "patched engine: + drop verified bytes", engine: patched, bundle, queries: eq, env: arena, engineOptions: { dropBytes: true } },
    patched && { name: "patched engine: + drop bytes + arena/pattern off", engine: patched, bundle, queries: eq, env: arena, engineOptions: leanEngine },
    patched && { name: "patched engine: + drop bytes + arena/pattern off, --liftoff-only", engine: patched, bundle, queries: eq, env: arena, engineOptions: leanEngine, nodeFlags: liftoff },
    bundleDyn && { name: "engine.js on dynamic-int8 bundle, MALLOC_ARENA_MAX=1", engine, bundle: bundleDyn, queries: eq, env: arena },
    bundlePacked && { name: "engine.js on weight-int8-packed bundle, MALLOC_ARENA_MAX=1", engine, bundle: bundlePacked, queries: eq, env: arena },
    bundleDyn && patched && { name: "patched engine on dynamic-int8 bundle, all cuts, --liftoff-only", engine: patched, bundle: bundleDyn, queries: eq, env: arena, engineOptions: leanEngine, nodeFlags: liftoff },
  ].filter(Boolean);
  const configs = [...componentConfigs, ...engineConfigs];
  const results = [];
  for (const cfg of configs) {
    const stages = runChild(cfg);
    const row = { name: cfg.name, config: cfg, peak_rss_mb: stages.end.peak, stages };
    if (stages.ready) row.ready_rss_mb = stages.ready.rss;
    results.push(row);
    console.log(`${cfg.name.padEnd(66)} peak ${String(stages.end.peak).padStart(7)} MB` +
      (stages.queries ? `  ${stages.queries.ms_per_query} ms/query` : ""));
  }
  mkdirSync(dirname(out), { recursive: true });
  const doc = { node: process.version, queries, date: new Date().toISOString(), results };
  writeFileSync(out + ".json", JSON.stringify(doc, null, 2) + "\n");
  const md = [
    `# Edge runtime memory in Node ${process.version}`,
    "",
    `Peak RSS (VmHWM) of one fresh process per row; rows with a model served ${queries} queries (batch 1, single thread).`,
    "",
    "| configuration | RSS when ready MB | peak RSS MB | ms/query |",
    "|---|---:|---:|---:|",
    ...results.map((r) => `| ${r.name} | ${r.ready_rss_mb ?? (r.stages.session ?? r.stages.pyodide ?? r.stages.start).rss} | ${r.peak_rss_mb} | ${r.stages.queries ? r.stages.queries.ms_per_query : ""} |`),
    "",
  ];
  writeFileSync(out + ".md", md.join("\n"));
}

await main();
