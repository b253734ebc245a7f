// The benchmark peer: transformers.js fully offline, same Chromium, same model file as websem.
// The page's import map decides which transformers.js bundle this is (peer-default.html / peer-tuned.html).
import { pipeline, env } from "@huggingface/transformers";
import { loadIndex, topK } from "/peer/vectors.js";
import { installHarness, firstQuery, reportError } from "/pages/harness.js";

const variant = document.body.dataset.variant;
const K = 10;

// Offline: local model folder only. localModelPath must be a PATH ('/models/'), not an http URL:
// with a URL its file-exists check skips local files (verified-recipes.md).
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = "/models/";
// On import transformers.js points ORT at a public CDN; self-host the same files instead: the
// asyncify build for the default bundle (what it would fetch from the CDN), the plain build for tuned.
const suffix = variant === "tuned" ? "" : ".asyncify";
env.backends.onnx.wasm.wasmPaths = {
  mjs: new URL(`/peer/ort/ort-wasm-simd-threaded${suffix}.mjs`, location.href).href,
  wasm: new URL(`/peer/ort/ort-wasm-simd-threaded${suffix}.wasm`, location.href).href,
};

try {
  const [extractor, index] = await Promise.all([
    pipeline("feature-extraction", "Xenova/all-MiniLM-L6-v2", { dtype: "q8", device: "wasm" }),
    loadIndex(new URL("/websem/", location.href)),
  ]);
  window.__bench = window.__bench || {};
  window.__bench.readyMs = performance.now();
  const search = async (q) => {
    const out = await extractor(q, { pooling: "mean", normalize: true });
    return topK(index, out.data, K);
  };
  installHarness(search, {
    stack: `transformers.js-${variant}`,
    numThreads: env.backends.onnx.wasm.numThreads ?? null,
    ortVersion: env.backends.onnx.versions?.web ?? null,
    chunks: index.n,
  });
  await firstQuery(search);
} catch (err) {
  reportError(err);
}
