// web/src/cache.js outside a browser: no Cache Storage is used (Node has none, and the runtime
// never uses one outside a window or Web Worker), the keys carry the sha256, and only files from
// CACHE_MIN_BYTES on are kept (no JS modules, no wasm). Cache Storage itself (hits, a tampered entry refused and fetched
// again, a second visit without network requests) is tested in Chromium:
// tests/browser/test_cache.py.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CACHE_MIN_BYTES, FileCache, isBrowser, isCached, openFileCache } from "../../web/src/cache.js";

const BASE = "https://example.test/site/_websem/";

test("Node is not a browser: openFileCache gives null whatever the option", async () => {
  assert.equal(isBrowser(), false);
  for (const option of [undefined, true, false]) assert.equal(await openFileCache(option, BASE), null);
});

test("keys are the file's URL plus its sha256, so a rebuilt file never matches an old entry", () => {
  const store = new FileCache(null, BASE);
  const a = store.key("model/model.onnx", "ab".repeat(32));
  assert.equal(a, `${BASE}model/model.onnx?websem-sha256=${"ab".repeat(32)}`);
  assert.notEqual(a, store.key("model/model.onnx", "cd".repeat(32)));
  assert.equal(store.key("vendor/a b.wasm", "00"), `${BASE}vendor/a%20b.wasm?websem-sha256=00`);
});

test("only files from CACHE_MIN_BYTES on are cached, never JS modules (imported by URL) nor wasm (code cache)", () => {
  assert.equal(isCached({ size: CACHE_MIN_BYTES }, "model/model.onnx"), true);
  assert.equal(isCached({ size: 10 * CACHE_MIN_BYTES }, "runtime/pyodide-snapshot.bin"), true);
  assert.equal(isCached({ size: CACHE_MIN_BYTES - 1 }, "index/vectors.bin"), false);
  assert.equal(isCached({ size: 10 * CACHE_MIN_BYTES }, "vendor/pyodide/pyodide.asm.mjs"), false);
  assert.equal(isCached({ size: 10 * CACHE_MIN_BYTES }, "runtime/big.js"), false);
  // Chromium keeps V8's compiled code with the HTTP cache entry only (tests/browser/test_cache.py).
  assert.equal(isCached({ size: 10 * CACHE_MIN_BYTES }, "vendor/pyodide/pyodide.asm.wasm"), false);
  assert.equal(isCached({ size: 10 * CACHE_MIN_BYTES }, "vendor/ort/ort-wasm-simd-threaded.wasm"), false);
  assert.equal(isCached(undefined, "model/model.onnx"), false);
});

test("a store whose Cache Storage fails answers like an empty one (never throws)", async () => {
  const broken = new Proxy({}, { get: () => () => Promise.reject(new DOMException("quota", "QuotaExceededError")) });
  const store = new FileCache(broken, BASE);
  assert.equal(await store.match("model/model.onnx", "00"), null);
  assert.equal(await store.put("model/model.onnx", "00", new Uint8Array(4)), false);
  assert.equal(await store.remove("model/model.onnx", "00"), false);
  assert.equal(await store.prune({ files: {} }), 0);
});
