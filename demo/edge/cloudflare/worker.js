// websem search API on Cloudflare Workers.
//
// STATUS (2026-11-28): written against engine options proposed for wave 2 (`pyodideModule`,
// `pyodideWasmModule`, see docs/edge.md "Cloudflare Workers"); not run in CI (no workerd here).
//
// Workers forbid compiling wasm from bytes at run time (`WebAssembly.instantiate(buffer)` and
// `WebAssembly.compile` throw "Wasm code generation disallowed by embedder"), so both wasm
// binaries are *module imports*: wrangler compiles them at upload time and hands the Worker a
// ready `WebAssembly.Module`. Dynamic `import(url)` is forbidden too, so the two JS glue modules
// are static imports. Everything else (model, tokenizer, index, stdlib zip) comes from the static
// assets binding; each asset must stay under 25 MiB (model.onnx is 23 MB with int8 weights).
import { env } from "cloudflare:workers";
import * as ort from "./bundle/vendor/ort/ort.wasm.min.mjs";
import ortWasm from "./bundle/vendor/ort/ort-wasm-simd-threaded.wasm";
import * as pyodide from "./bundle/vendor/pyodide/pyodide.mjs";
import pyodideWasm from "./bundle/vendor/pyodide/pyodide.asm.wasm";
import { createHandler } from "./bundle/runtime/handler.js";

// Module scope = once per isolate; createHandler itself only starts the engine on the first
// request, and concurrent first requests share that start.
const handler = createHandler("https://bundle.invalid/", {
  engineOptions: {
    // Bundle files are static assets of this Worker: fetch them through the binding, no network.
    fetch: (url) => env.ASSETS.fetch(new Request(url)),
    ortModule: ort,
    ortWasmModule: ortWasm,
    pyodideModule: pyodide,
    pyodideWasmModule: pyodideWasm,
    threads: 1,
  },
});

export default {
  fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/search" || pathname === "/healthz") return handler(request);
    return env.ASSETS.fetch(request); // the bundle's own index.html etc.
  },
};
