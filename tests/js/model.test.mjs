// web/src/model.js under Node: the ORT session of a real model package (WEBSEM_MODEL_DIR, set by
// tests/test_js_units.py from the `model_package` fixture) embeds the golden token ids like CPU
// onnxruntime did when tests/fixtures/golden_vectors.json was made, with and without the weights
// as external data; a model ORT cannot read is refused with a websem: message.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { VerifiedFiles } from "../../web/src/bundle.js";
import { embedder, loadSession } from "../../web/src/model.js";
import { REPO } from "./pyodide_env.mjs";

const MODEL_DIR = process.env.WEBSEM_MODEL_DIR;
const GOLDEN = JSON.parse(readFileSync(join(REPO, "tests", "fixtures", "golden_vectors.json"), "utf8"));
const ORT = { module: "vendor/ort/ort.wasm.min.mjs", glue: "vendor/ort/ort-wasm-simd-threaded.mjs", wasm: "vendor/ort/ort-wasm-simd-threaded.wasm" };
const dir = mkdtempSync(join(tmpdir(), "websem-model-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function bundle(modelBytes) {
  mkdirSync(join(dir, "vendor", "ort"), { recursive: true });
  mkdirSync(join(dir, "model"), { recursive: true });
  for (const rel of Object.values(ORT)) {
    try {
      symlinkSync(join(REPO, "web", "node_modules", "onnxruntime-web", "dist", rel.split("/").pop()), join(dir, rel));
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
  }
  writeFileSync(join(dir, "model", "model.onnx"), modelBytes);
  const files = {};
  for (const rel of [...Object.values(ORT), "model/model.onnx"]) {
    const bytes = readFileSync(join(dir, rel));
    files[rel] = { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
  }
  return { model: { output: "sentence_embedding" }, runtime: { vendor: { ort: ORT } }, files };
}

async function session(manifest, opts = {}) {
  const base = pathToFileURL(`${dir}/`).href;
  const files = new VerifiedFiles(base, manifest, async (url) => new Response(readFileSync(fileURLToPath(url))));
  return loadSession(files, manifest, opts, () => {});
}

function cosine(a, b) {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

test("the golden token ids embed like CPU onnxruntime (cosine >= 0.9999), weights external or not", async () => {
  assert.ok(MODEL_DIR, "set WEBSEM_MODEL_DIR to a model package (tests/test_js_units.py does)");
  const model = readFileSync(join(MODEL_DIR, "model.onnx"));
  const manifest = bundle(model);
  assert.equal(manifest.files["model/model.onnx"].sha256, GOLDEN.model_sha256, "the golden vectors are for another model");
  const items = GOLDEN.items.slice(0, 6);
  const results = [];
  for (const externalWeights of [true, false]) {
    const s = await session(manifest, { externalWeights });
    const embed = embedder(s);
    const vectors = [];
    for (const item of items) {
      const ids = BigInt64Array.from(item.ids, BigInt);
      const vec = await embed(ids, ids.map(() => 1n), ids.map(() => 0n));
      assert.equal(vec.length, GOLDEN.dims);
      assert.ok(cosine(vec, item.vector) >= 0.9999, `${item.name}: cosine ${cosine(vec, item.vector)}`);
      vectors.push(Array.from(vec));
    }
    results.push(vectors);
    await s.session.release();
  }
  assert.deepEqual(results[0], results[1], "external weights change nothing");
});

test("a model ORT cannot read is refused with a websem: message", async () => {
  await assert.rejects(session(bundle(new TextEncoder().encode("not an onnx model at all"))),
    /websem: onnxruntime-web could not load model\/model.onnx .*; rebuild the bundle with a model package from `websem export`/);
});
