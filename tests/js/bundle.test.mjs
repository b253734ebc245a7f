// web/src/bundle.js: manifest checks and file verification, pinned by the golden fixture
// tests/fixtures/bad_bundles.json that `websem query` (web/query.py) passes too. Each case mutates
// a good format-2 bundle (built here in memory, served by a fetch over a Map) and must be refused
// by the runtime's load path: bundle.js readManifest + VerifiedFiles for every listed file, the
// index (loadIndex, or openPartitioned for a case starting from the partitioned layout), then the
// ranker set-up in Pyodide (websem_text.bridge.ranker_init / ranker_init_partitioned, where
// websem_text.rules checks the manifest.search table).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FORMAT_VERSIONS, VerifiedFiles, loadIndex, readManifest } from "../../web/src/bundle.js";
import { openPartitioned } from "../../web/src/partitioned.js";
import { REPO, bootPython } from "./pyodide_env.mjs";

const FIXTURE = JSON.parse(readFileSync(join(REPO, "tests", "fixtures", "bad_bundles.json"), "utf8"));
const BASE = "https://bundle.test/site/_websem/";
const enc = new TextEncoder();
const sha = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** A good bundle of `layout` "flat" or "partitioned" (the fixture's `layout` field, default flat). */
async function goodBundle(layout = "flat") {
  const { pyodide } = await bootPython();
  const search = JSON.parse(pyodide.runPython("import json; from websem_text.rules import search_table; json.dumps(search_table())"));
  const dims = 384; // the fixture's "dims differ" case names the default model's 384
  const vectors = new Float32Array(2 * dims);
  vectors[0] = 1;
  vectors[dims + 1] = 1;
  const docs = [{ id: "a", title: "A", url: "a.html", meta: {} }, { id: "b", title: "B", url: "b.html", meta: {} }];
  const chunks = [{ doc: 0, text: "alpha beta" }, { doc: 1, text: "gamma delta" }];
  const flat = layout === "flat";
  const table = {
    format: "websem-partitioned", format_version: 2, chunks: 2, docs: 2, dims, vector_dtype: "float16",
    ivf: { nlist: 2, nprobe: 1, sizes: [1, 1] },
    lexical: { format: "websem-bm25", k1: 1.2, b: 0.75, avgdl: 2, n_chunks: 2, n_terms: 4, analyzer: null, fields: {}, shards: [["alpha", 4]] },
    fragments: [0],
    facets: {},
  };
  const centroids = new Uint16Array(2 * dims);
  centroids[0] = 0x3c00; // 1.0
  centroids[dims + 1] = 0x3c00;
  const files = new Map([
    ["model/model.onnx", enc.encode("not really onnx")],
    ["model/tokenizer.json", enc.encode("{}")],
    ...(flat
      ? [
          ["index/vectors.bin", new Uint8Array(vectors.buffer)],
          ["index/chunks.json", enc.encode(JSON.stringify(chunks))],
          ["index/docs.json", enc.encode(JSON.stringify(docs))],
          ["index/lexical.bin", enc.encode("WSBM25 stand-in: this test only verifies its bytes")],
        ]
      : [
          ["index/part/table.json", enc.encode(JSON.stringify(table))],
          ["index/part/centroids.bin", new Uint8Array(centroids.buffer)],
          ["index/part/docmap.bin", new Uint8Array(Uint32Array.from([0, 1, 2]).buffer)],
        ]),
    ["py/websem_text/__init__.py", enc.encode("")],
  ]);
  const listed = {};
  for (const [path, bytes] of files) listed[path] = { sha256: sha(bytes), size: bytes.length };
  const manifest = {
    format: "websem-bundle",
    format_version: FORMAT_VERSIONS[0],
    model: { sha256: listed["model/model.onnx"].sha256, dims, max_seq_length: 256 },
    index: flat
      ? {
          layout: "flat", docs: 2, chunks: 2, dims, vector_dtype: "float32", model_sha256: listed["model/model.onnx"].sha256,
          files: { vectors: "index/vectors.bin", chunks: "index/chunks.json", docs: "index/docs.json", lexical: "index/lexical.bin" },
        }
      : {
          layout: "partitioned", docs: 2, chunks: 2, dims, vector_dtype: "float16", model_sha256: listed["model/model.onnx"].sha256,
          files: { table: "index/part/table.json", centroids: "index/part/centroids.bin", docmap: "index/part/docmap.bin" },
          shards: { ivf: "index/ivf/{}.bin", lexical: "index/lex/{}.bin", fragments: "index/frag/{}.json", codes: "index/code/{}.bin" },
          ivf: { nlist: 2, nprobe: 1, metric: "ip", code: "binary", rerank: 100, block_rows: 8 },
          lexical: { k1: 1.2, b: 0.75, terms: 4, fields: {}, shards: 1 },
          fragments: 1,
        },
    search,
    runtime: {
      python_files: ["py/websem_text/__init__.py"],
      vendor: {
        ort: { module: "vendor/ort/ort.wasm.min.mjs", glue: "vendor/ort/ort-wasm-simd-threaded.mjs", wasm: "vendor/ort/ort-wasm-simd-threaded.wasm" },
        pyodide: {
          module: "vendor/pyodide/pyodide.mjs", asm: "vendor/pyodide/pyodide.asm.mjs", wasm: "vendor/pyodide/pyodide.asm.wasm",
          stdlib: "vendor/pyodide/python_stdlib.zip", lock: "vendor/pyodide/pyodide-lock.json",
        },
      },
    },
    files: listed,
  };
  return { manifest, files };
}

function mutate({ manifest, files }, testCase) {
  let manifestText = null;
  for (const edit of testCase.manifest ?? []) {
    const path = edit.set ?? edit.delete;
    let obj = manifest;
    for (const key of path.slice(0, -1)) obj = obj[key];
    if (edit.set) obj[path.at(-1)] = structuredClone(edit.value);
    else delete obj[path.at(-1)];
  }
  if (testCase.manifest_text != null) manifestText = testCase.manifest_text;
  if (testCase.file) {
    const { path, op } = testCase.file;
    const bytes = files.get(path);
    if (op === "flip") {
      const copy = bytes.slice();
      copy[copy.length - 1] ^= 1;
      files.set(path, copy);
    } else if (op === "append") {
      const copy = new Uint8Array(bytes.length + 1);
      copy.set(bytes);
      copy[bytes.length] = 10;
      files.set(path, copy);
    } else if (op === "remove") {
      files.delete(path);
    } else {
      throw new Error(`unknown file op ${op}`);
    }
  }
  return { manifestText: manifestText ?? JSON.stringify(manifest), files };
}

function fetchFrom({ manifestText, files }) {
  return async (url) => {
    const path = url.slice(BASE.length);
    if (path === "manifest.json") return new Response(manifestText);
    const bytes = files.get(path);
    return bytes ? new Response(bytes) : new Response(null, { status: 404 });
  };
}

/** The runtime's checks in load order; resolves with the loaded index when the bundle is good. */
async function verify(served) {
  const { bridge } = await bootPython();
  const fetchFn = fetchFrom(served);
  const manifest = await readManifest(fetchFn, BASE);
  const files = new VerifiedFiles(BASE, manifest, fetchFn);
  await Promise.all(Object.keys(manifest.files).map((p) => files.bytes(p)));
  if (manifest.index.layout === "partitioned") {
    const index = await openPartitioned(files, manifest);
    bridge.ranker.initPartitioned(index.nDocs, JSON.stringify(index.facets), JSON.stringify(index.lexical.analyzer),
      JSON.stringify(manifest.search ?? null));
    return index;
  }
  const index = await loadIndex(files, manifest);
  bridge.ranker.init(
    await files.bytes(manifest.index.files.chunks),
    await files.bytes(manifest.index.files.docs),
    null,
    JSON.stringify(manifest.search ?? null),
  );
  return index;
}

test("the good bundles load (so every refusal below is caused by its mutation)", async () => {
  const index = await verify(mutate(await goodBundle(), {}));
  assert.equal(index.n, 2);
  assert.deepEqual(Array.from(index.chunkDoc), [0, 1]);
  const part = await verify(mutate(await goodBundle("partitioned"), {}));
  assert.equal(part.layout, "partitioned");
  assert.deepEqual([part.n, part.nDocs, part.docOf(0), part.docOf(1)], [2, 2, 0, 1]);
  // A bundle from before layouts existed (no index.layout) is flat.
  const old = await goodBundle();
  delete old.manifest.index.layout;
  assert.equal((await verify(mutate(old, {}))).n, 2);
});

test("the fixture covers both layouts", () => {
  assert.ok(FIXTURE.cases.filter((c) => c.layout === "partitioned").length >= 8);
  assert.ok(FIXTURE.cases.every((c) => [undefined, "flat", "partitioned"].includes(c.layout)), "unknown case layout");
});

test("the fixture has cases", () => {
  assert.ok(FIXTURE.cases.length >= 20, `${FIXTURE.cases.length} cases`);
});

for (const testCase of FIXTURE.cases) {
  test(`refused: ${testCase.name}`, async () => {
    const served = mutate(await goodBundle(testCase.layout ?? "flat"), testCase);
    await assert.rejects(verify(served), (e) => {
      assert.ok(e.message.startsWith("websem:"), e.message);
      for (const want of testCase.errors) assert.ok(e.message.includes(want), `${JSON.stringify(want)} not in: ${e.message}`);
      return true;
    });
  });
}

test("readManifest keeps a partitioned bundle's shard entries compact; shards are still verified", async () => {
  const { ShardCache } = await import("../../web/src/shards.js");
  const good = await goodBundle("partitioned");
  const shard = enc.encode("fragment bytes");
  good.files.set("index/frag/0.json", shard);
  good.files.set("index/frag/1.json", enc.encode("tampered"));
  good.manifest.files["index/frag/0.json"] = { sha256: sha(shard), size: shard.length };
  good.manifest.files["index/frag/1.json"] = { sha256: sha(enc.encode("the listed bytes")), size: 8 };
  const fetchFn = fetchFrom(mutate(good, {}));
  const manifest = await readManifest(fetchFn, BASE);
  assert.equal(manifest.files["index/frag/0.json"], undefined);
  assert.equal(manifest.shardEntries.count, 2);
  assert.ok(manifest.files["index/part/table.json"], "the always-loaded files stay in manifest.files");
  const cache = new ShardCache(BASE, manifest, fetchFn);
  assert.deepEqual(await cache.get("index/frag/0.json"), shard);
  await assert.rejects(cache.get("index/frag/1.json"), (e) => e.message.startsWith("websem: index/frag/1.json failed its integrity check"));
  await assert.rejects(cache.get("index/frag/2.json"), (e) => e.message.includes('lists no file "index/frag/2.json"'));
});
