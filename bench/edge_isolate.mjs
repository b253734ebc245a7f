// What a Workers-style isolate limit counts, per bundle and engine option: the two wasm linear
// memories (Pyodide's, ORT's) plus the V8 heap, after the engine loaded and served N queries; and
// the process's peak RSS for comparison. One fresh Node process per row (a wasm memory never
// shrinks, so rows must not share a process), rows alternated over --rounds, medians reported.
//
//   node bench/edge_isolate.mjs --bundle NAME=DIR [--bundle NAME2=DIR2] [--queries 1000] [--rounds 3]
//        [--out bench/results/edge_isolate]
//   node bench/edge_isolate.mjs --child '<json>'            (one measurement, prints JSON)
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MB = 2 ** 20;
// ../shared/data beside the checkout (or $WEBSEM_SHARED_DATA), like bench/common.py.
const SHARED_DATA = process.env.WEBSEM_SHARED_DATA ?? join(REPO, "..", "shared", "data");
const QUERIES = readFileSync(join(SHARED_DATA, "cranfield", "queries.jsonl"), "utf8")
  .split("\n").filter(Boolean).map((l) => JSON.parse(l).text);

async function child(cfg) {
  const { createEngine } = await import(pathToFileURL(join(REPO, "web/src/engine.js")).href);
  const { fileFetch } = await import(pathToFileURL(join(REPO, "web/src/node.js")).href);
  const engine = await createEngine(pathToFileURL(`${resolve(cfg.bundle)}/`).href, {
    fetch: fileFetch, externalWeights: cfg.externalWeights,
  });
  const ready = await engine.memory();
  const times = [];
  for (let i = 0; i < cfg.queries; i++) {
    const t0 = performance.now();
    await engine.search(QUERIES[i % QUERIES.length], { k: 10, mode: "hybrid" });
    times.push(performance.now() - t0);
  }
  globalThis.gc?.();
  const end = await engine.memory();
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024;
  times.sort((a, b) => a - b);
  return {
    load_ms: Math.round(engine.info.load_ms),
    ready_mb: { pyodide: ready.pyodide_wasm_bytes / MB, ort: ready.ort_wasm_bytes / MB },
    end_mb: {
      pyodide: end.pyodide_wasm_bytes / MB,
      ort: end.ort_wasm_bytes / MB,
      js_heap_total: process.memoryUsage().heapTotal / MB,
      js_heap_used: process.memoryUsage().heapUsed / MB,
    },
    peak_rss_mb: hwm,
    query_p50_ms: times[times.length >> 1],
  };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === "--child") {
    console.log(JSON.stringify(await child(JSON.parse(args[1]))));
    return;
  }
  const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const bundles = args.flatMap((a, i) => (a === "--bundle" ? [args[i + 1].split("=")] : []));
  const queries = Number(opt("--queries", 1000));
  const rounds = Number(opt("--rounds", 3));
  const out = opt("--out", join(REPO, "bench/results/edge_isolate"));
  const configs = bundles.flatMap(([name, dir]) =>
    [false, true].map((ext) => ({ name: `${name}, ${ext ? "external weights" : "weights inline"}`, bundle: dir, externalWeights: ext, queries })));
  const runs = new Map(configs.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of r % 2 ? [...configs].reverse() : configs) {
      const res = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--child", JSON.stringify(c)], {
        encoding: "utf8", env: { ...process.env, MALLOC_ARENA_MAX: "1" }, maxBuffer: 1 << 24,
      });
      if (res.status !== 0) throw new Error(`${c.name}: ${res.stderr}`);
      const row = JSON.parse(res.stdout.trim().split("\n").pop());
      runs.get(c.name).push(row);
      console.error(c.name, JSON.stringify(row));
    }
  }
  const rows = configs.map((c) => {
    const rs = runs.get(c.name);
    const m = (f) => +median(rs.map(f)).toFixed(1);
    const e = { pyodide: m((r) => r.end_mb.pyodide), ort: m((r) => r.end_mb.ort), js: m((r) => r.end_mb.js_heap_total),
      js_used: m((r) => r.end_mb.js_heap_used) };
    return { name: c.name, bundle: c.bundle, external_weights: c.externalWeights, runs: rs,
      median: { ...e, isolate: +(e.pyodide + e.ort + e.js).toFixed(1), isolate_used: +(e.pyodide + e.ort + e.js_used).toFixed(1),
        peak_rss: m((r) => r.peak_rss_mb),
        load_ms: m((r) => r.load_ms), query_p50_ms: m((r) => r.query_p50_ms) } };
  });
  const doc = { benchmark: "edge isolate memory (Node, engine.js)", date: new Date().toISOString(), node: process.version,
    queries, rounds, note: "isolate = Pyodide wasm + ORT wasm + V8 heapTotal: what a Workers-style 128 MB isolate limit counts; peak RSS adds compiled code and Node itself", rows };
  writeFileSync(`${out}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  const md = [
    "# Edge isolate memory: what a 128 MB Workers isolate counts",
    "",
    `${doc.date}, Node ${process.version}, engine.js on each bundle, ${queries} hybrid queries, one fresh process per row, ${rounds} alternated rounds, medians. ` +
      "isolate = Pyodide wasm memory + ORT wasm memory + V8 heap (total, i.e. committed; and used) after the queries and a full GC (Cloudflare counts JS heap + wasm memory per isolate). " +
      "Peak RSS also holds V8's compiled wasm code and Node itself. Produced by `node bench/edge_isolate.mjs`.",
    "",
    "| bundle, engine | Pyodide wasm MB | ORT wasm MB | JS heap used / total MB | **isolate MB** (heap total) | isolate MB (heap used) | ≤ 128 MB | peak RSS MB | load ms | hybrid query p50 ms |",
    "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ...rows.map((r) => `| ${r.name} | ${r.median.pyodide} | ${r.median.ort} | ${r.median.js_used} / ${r.median.js} | **${r.median.isolate}** | ${r.median.isolate_used} | ${r.median.isolate <= 128 ? "yes" : r.median.isolate_used <= 128 ? "used only" : "no"} | ${r.median.peak_rss} | ${r.median.load_ms} | ${r.median.query_p50_ms} |`),
  ];
  writeFileSync(`${out}.md`, `${md.join("\n")}\n`);
  console.log(md.join("\n"));
}

await main();
