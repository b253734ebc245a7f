// web/src/progress.js and bundle.js VerifiedFiles' byte counting: which files load() fetches
// (loadPlan), and "bytes" events that only grow and end at the manifest totals, from response
// bodies that stream in chunks, with a second thread's counts relayed (python.js does that for
// the Python worker) and a file read twice counted once.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { VerifiedFiles } from "../../web/src/bundle.js";
import { ByteProgress, GROUPS, loadPlan } from "../../web/src/progress.js";
import { SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH } from "../../web/src/snapshot.js";

const BASE = "https://bundle.test/_websem/";
const VENDOR = {
  ort: { module: "vendor/ort/ort.wasm.min.mjs", glue: "vendor/ort/ort-wasm-simd-threaded.mjs", wasm: "vendor/ort/ort-wasm-simd-threaded.wasm" },
  pyodide: {
    module: "vendor/pyodide/pyodide.mjs", asm: "vendor/pyodide/pyodide.asm.mjs", wasm: "vendor/pyodide/pyodide.asm.wasm",
    stdlib: "vendor/pyodide/python_stdlib.zip", lock: "vendor/pyodide/pyodide-lock.json",
  },
};

/** A bundle's files (deterministic pseudo-random bytes of assorted sizes) and its manifest. */
function bundle(layout = "flat") {
  const paths = [
    "model/model.onnx", "model/tokenizer.json", ...Object.values(VENDOR.ort), ...Object.values(VENDOR.pyodide),
    SNAPSHOT_PATH, "py/websem_text/__init__.py", "py/websem_text/bridge.py", "websem.js", "runtime/engine.js",
    ...(layout === "flat"
      ? ["index/vectors.bin", "index/chunks.json", "index/docs.json", "index/lexical.bin"]
      : ["index/part/table.json", "index/part/centroids.bin", "index/part/docmap.bin", "index/ivf/0.bin"]),
  ];
  const files = new Map();
  let seed = 7;
  paths.forEach((p, i) => {
    const bytes = new Uint8Array(1000 + ((i * 7919) % 5) * 150_000 + i);
    for (let j = 0; j < bytes.length; j++) bytes[j] = seed = (seed * 1103515245 + 12345) & 0xff;
    files.set(p, bytes);
  });
  const listed = Object.fromEntries([...files].map(([p, b]) => [p, { sha256: createHash("sha256").update(b).digest("hex"), size: b.length }]));
  const index = layout === "flat"
    ? { layout, files: { vectors: "index/vectors.bin", chunks: "index/chunks.json", docs: "index/docs.json", lexical: "index/lexical.bin" } }
    : { layout, files: { table: "index/part/table.json", centroids: "index/part/centroids.bin", docmap: "index/part/docmap.bin" } };
  const manifest = {
    files: listed, index,
    runtime: { vendor: VENDOR, python_files: ["py/websem_text/__init__.py", "py/websem_text/bridge.py"] },
  };
  return { files, manifest };
}

/** Serves `files` with bodies that arrive in `chunk`-byte pieces (as a network response does). */
function streamingFetch(files, chunk = 40_000) {
  return async (url) => {
    const bytes = files.get(url.slice(BASE.length));
    if (!bytes) return new Response(null, { status: 404 });
    let at = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
    });
    return new Response(body);
  };
}

function checkMonotone(events, plan) {
  const bytes = events.filter((e) => e.stage === "bytes");
  assert.ok(bytes.length > plan.length, "a file larger than the report step reports more than once");
  const total = plan.reduce((a, f) => a + f.size, 0);
  let last = 0;
  const groupLast = new Map();
  for (const e of bytes) {
    assert.equal(e.overall.total, total);
    assert.ok(e.overall.loaded > last, "overall.loaded grows with every event");
    last = e.overall.loaded;
    assert.ok(e.loaded > (groupLast.get(e.group) ?? 0) && e.loaded <= e.total);
    groupLast.set(e.group, e.loaded);
    assert.equal(e.total, plan.filter((f) => f.group === e.group).reduce((a, f) => a + f.size, 0));
    assert.ok(GROUPS.includes(e.group) && e.from === "network");
  }
  assert.equal(last, total, "the last event reports every byte");
  for (const [group, loaded] of groupLast) assert.equal(loaded, bytes.findLast((e) => e.group === group).total);
}

test("loadPlan lists what load() fetches, per group, and leaves out what the options skip", () => {
  const { manifest } = bundle();
  const plan = loadPlan(manifest);
  const byGroup = (g) => plan.filter((f) => f.group === g).map((f) => f.path);
  // The snapshot holds the vocabulary: tokenizer.json is read only by a boot without one.
  assert.deepEqual(byGroup("model"), ["model/model.onnx"]);
  assert.deepEqual(byGroup("onnxruntime"), Object.values(VENDOR.ort));
  assert.deepEqual(byGroup("pyodide"), [...Object.values(VENDOR.pyodide), SNAPSHOT_PATH, ...manifest.runtime.python_files]);
  assert.deepEqual(byGroup("index"), Object.values(manifest.index.files));
  assert.ok(plan.every((f) => f.size === manifest.files[f.path].size));
  // Runtime modules (imported, not verified downloads) are not part of it.
  assert.ok(!plan.some((f) => f.path === "websem.js" || f.path === "runtime/engine.js"));
  const edge = loadPlan(manifest, { snapshot: false, ortModule: {}, ortWasmModule: {}, pyodideWasmModule: {} });
  for (const p of [SNAPSHOT_PATH, VENDOR.ort.module, VENDOR.ort.glue, VENDOR.ort.wasm, VENDOR.pyodide.wasm]) {
    assert.ok(!edge.some((f) => f.path === p), p);
  }
  assert.ok(edge.some((f) => f.path === "model/tokenizer.json"));
  // Partitioned: the three always-loaded files, never the shards.
  const part = bundle("partitioned").manifest;
  assert.deepEqual(loadPlan(part).filter((f) => f.group === "index").map((f) => f.path),
    ["index/part/table.json", "index/part/centroids.bin", "index/part/docmap.bin"]);
});

test("loadPlan: a snapshot restore reads the snapshot's stdlib zip instead of the whole one", () => {
  const { manifest } = bundle();
  manifest.runtime.snapshot_stdlib = SNAPSHOT_STDLIB_PATH;
  manifest.files[SNAPSHOT_STDLIB_PATH] = { sha256: "ab".repeat(32), size: 81_000 };
  const pyodide = (opts) => loadPlan(manifest, opts).filter((f) => f.group === "pyodide").map((f) => f.path);
  const restore = pyodide({});
  assert.ok(restore.includes(SNAPSHOT_STDLIB_PATH) && !restore.includes(VENDOR.pyodide.stdlib), restore.join(", "));
  const plain = pyodide({ snapshot: false });
  assert.ok(plain.includes(VENDOR.pyodide.stdlib) && !plain.includes(SNAPSHOT_STDLIB_PATH), plain.join(", "));
});

test("ByteProgress: counts only grow, are capped at each file's size, unknown files are ignored", () => {
  const events = [];
  const p = new ByteProgress([{ path: "a", group: "model", size: 10 }, { path: "b", group: "index", size: 5 }], (e) => events.push(e));
  p.update("a", 4);
  p.update("a", 4); // no growth: nothing
  p.update("a", 2); // a second reader behind the first: nothing
  p.update("zzz", 100); // not in the plan
  p.update("b", 50, "cache"); // capped at 5
  p.update("a", 10);
  assert.deepEqual(events.map((e) => [e.group, e.file, e.loaded, e.total, e.overall.loaded, e.overall.total, e.from]), [
    ["model", "a", 4, 10, 4, 15, "network"],
    ["index", "b", 5, 5, 9, 15, "cache"],
    ["model", "a", 10, 10, 15, 15, "network"],
  ]);
});

test("VerifiedFiles reports streamed bytes: monotone, ending at the manifest total", async () => {
  const { files, manifest } = bundle();
  const events = [];
  const verified = new VerifiedFiles(BASE, manifest, streamingFetch(files), (e) => events.push(e));
  const plan = loadPlan(manifest);
  // Every planned file, some twice (two loaders sharing a file), plus one outside the plan.
  await Promise.all([...plan.map((f) => verified.bytes(f.path)), verified.bytes(plan[0].path), verified.bytes("websem.js")]);
  for (const f of plan) assert.deepEqual(await verified.bytes(f.path), files.get(f.path));
  checkMonotone(events, plan);
  assert.equal(events.filter((e) => e.stage === "verified").length, plan.length + 1);
});

test("a second thread's per-file counts (the Python worker) join the same overall count", async () => {
  const { files, manifest } = bundle();
  const plan = loadPlan(manifest);
  const events = [];
  const main = new VerifiedFiles(BASE, manifest, streamingFetch(files), (e) => events.push(e));
  // The worker's VerifiedFiles adds nothing up: it emits "file-bytes", which python.js relays.
  const relayed = [];
  const worker = new VerifiedFiles(BASE, manifest, streamingFetch(files, 70_000), (e) => {
    relayed.push(e.internal ?? e.stage);
    main.relay(e);
  }, { plan: false });
  const pyodide = new Set(plan.filter((f) => f.group === "pyodide").map((f) => f.path));
  await Promise.all(plan.map((f) => (pyodide.has(f.path) ? worker : main).bytes(f.path)));
  assert.ok(relayed.includes("file-bytes") && relayed.includes("verified"));
  assert.ok(!events.some((e) => e.internal || e.stage === undefined), "file-bytes events stay internal");
  checkMonotone(events, plan);
});

test("a body longer or shorter than the manifest says is refused, and the cache option is checked", async () => {
  const { files, manifest } = bundle();
  const grown = new Map(files);
  grown.set("model/tokenizer.json", new Uint8Array(files.get("model/tokenizer.json").length + 3));
  const v = new VerifiedFiles(BASE, manifest, streamingFetch(grown, 100));
  await assert.rejects(v.bytes("model/tokenizer.json"), /websem: model\/tokenizer.json failed its integrity check .* expects/);
  const shrunk = new Map(files);
  shrunk.set("model/tokenizer.json", files.get("model/tokenizer.json").slice(1));
  await assert.rejects(new VerifiedFiles(BASE, manifest, streamingFetch(shrunk)).bytes("model/tokenizer.json"), /integrity check/);
  assert.throws(() => new VerifiedFiles(BASE, manifest, streamingFetch(files), () => {}, { cache: "yes" }),
    /^WebsemError: websem: option cache must be true or false, got "yes"/);
});
