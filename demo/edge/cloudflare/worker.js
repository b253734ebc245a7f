// websem search API on Cloudflare Workers.
//
// Tested under workerd, the open-source Workers runtime, from npm (tests/test_edge_runtimes.py,
// with workerd.capnp next to this file); deploy with wrangler.toml. See docs/edge.md.
//
// Workers forbid compiling wasm from bytes at run time (`WebAssembly.instantiate(buffer)` and
// `WebAssembly.compile` throw "Wasm code generation disallowed by embedder") and `import(url)` of
// code outside the Worker. So both wasm binaries are *module imports*: the runtime compiles them
// when the Worker is deployed and hands it a ready `WebAssembly.Module`; the JS glue modules are
// static imports. Everything else (model, tokenizer, index, stdlib zip, Pyodide snapshot) comes
// from the static assets binding, sha256-checked against manifest.json like in the browser; each
// asset must stay under 25 MiB (model.onnx is 23 MB with int8 weights).
import { env } from "cloudflare:workers";
import * as ort from "./bundle/vendor/ort/ort.wasm.min.mjs";
import ortWasm from "./bundle/vendor/ort/ort-wasm-simd-threaded.wasm";
import * as pyodide from "./bundle/vendor/pyodide/pyodide.mjs";
import * as pyodideAsm from "./bundle/vendor/pyodide/pyodide.asm.mjs";
import pyodideWasm from "./bundle/vendor/pyodide/pyodide.asm.wasm";
import { createHandler } from "./bundle/runtime/handler.js";

// Module scope = once per isolate; createHandler itself only starts the engine on the first
// request, and concurrent first requests share that start.
const handler = createHandler("https://bundle.invalid/", {
  engineOptions: {
    // Bundle files are static assets of this Worker: read through the binding, no network.
    // `init` carries the Range header of a partitioned index's row-block reads (answered 206).
    fetch: (url, init) => env.ASSETS.fetch(new Request(url, init)),
    ortModule: ort,
    ortWasmModule: ortWasm,
    // ORT imports its glue by specifier; this one resolves next to ort.wasm.min.mjs among the
    // Worker's modules (no bundler rewrites it: wrangler.toml uploads *.mjs as they are).
    ortWasmPaths: { mjs: "./ort-wasm-simd-threaded.mjs" },
    pyodideModule: pyodide,
    pyodideAsmModule: pyodideAsm,
    pyodideWasmModule: pyodideWasm,
    threads: 1,
  },
});

export default {
  fetch(request, workerEnv, ctx) {
    const { pathname } = new URL(request.url);
    // ctx: a start begun by /healthz must outlive that request (ctx.waitUntil).
    if (pathname === "/search" || pathname === "/healthz") return handler(request, workerEnv, ctx);
    return env.ASSETS.fetch(request); // the bundle's own index.html etc.
  },
};
