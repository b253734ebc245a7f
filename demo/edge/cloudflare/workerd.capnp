# Runs worker.js under workerd, the open-source Cloudflare Workers runtime (npm `workerd`), the
# way wrangler.toml deploys it: wasm as precompiled module imports, the bundle as static assets.
#
#   websem build SITE --out demo/edge/cloudflare/bundle --quantization weight-int8-packed
#   cd demo/edge/cloudflare && ../node_modules/.bin/workerd serve workerd.capnp \
#       --directory-path assets=$PWD/bundle --socket-addr http=127.0.0.1:8787
#
# tests/test_edge_runtimes.py does exactly this on the Cranfield bundle.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .websem),
    # The ASSETS binding: the bundle folder, read-only (--directory-path assets=... sets the path).
    (name = "assets", disk = (path = "bundle", writable = false)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const websem :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    # handler.js and every runtime module it imports (statically: Workers forbid import(url)).
    (name = "bundle/runtime/handler.js", esModule = embed "bundle/runtime/handler.js"),
    (name = "bundle/runtime/engine.js", esModule = embed "bundle/runtime/engine.js"),
    (name = "bundle/runtime/bundle.js", esModule = embed "bundle/runtime/bundle.js"),
    (name = "bundle/runtime/manifest.js", esModule = embed "bundle/runtime/manifest.js"),
    (name = "bundle/runtime/cache.js", esModule = embed "bundle/runtime/cache.js"),
    (name = "bundle/runtime/progress.js", esModule = embed "bundle/runtime/progress.js"),
    (name = "bundle/runtime/lexical-tier.js", esModule = embed "bundle/runtime/lexical-tier.js"),
    (name = "bundle/runtime/fusion.js", esModule = embed "bundle/runtime/fusion.js"),
    (name = "bundle/runtime/analyze.js", esModule = embed "bundle/runtime/analyze.js"),
    (name = "bundle/runtime/analyze-tables.js", esModule = embed "bundle/runtime/analyze-tables.js"),
    (name = "bundle/runtime/stem-english.js", esModule = embed "bundle/runtime/stem-english.js"),
    (name = "bundle/runtime/snippet.js", esModule = embed "bundle/runtime/snippet.js"),
    (name = "bundle/runtime/dense.js", esModule = embed "bundle/runtime/dense.js"),
    (name = "bundle/runtime/errors.js", esModule = embed "bundle/runtime/errors.js"),
    (name = "bundle/runtime/lexical.js", esModule = embed "bundle/runtime/lexical.js"),
    (name = "bundle/runtime/ivf.js", esModule = embed "bundle/runtime/ivf.js"),
    (name = "bundle/runtime/lexshards.js", esModule = embed "bundle/runtime/lexshards.js"),
    (name = "bundle/runtime/model.js", esModule = embed "bundle/runtime/model.js"),
    (name = "bundle/runtime/partitioned.js", esModule = embed "bundle/runtime/partitioned.js"),
    (name = "bundle/runtime/python.js", esModule = embed "bundle/runtime/python.js"),
    (name = "bundle/runtime/rpc.js", esModule = embed "bundle/runtime/rpc.js"),
    (name = "bundle/runtime/search.js", esModule = embed "bundle/runtime/search.js"),
    (name = "bundle/runtime/shards.js", esModule = embed "bundle/runtime/shards.js"),
    (name = "bundle/runtime/shard-entries.js", esModule = embed "bundle/runtime/shard-entries.js"),
    (name = "bundle/runtime/snapshot.js", esModule = embed "bundle/runtime/snapshot.js"),
    (name = "bundle/runtime/weights.js", esModule = embed "bundle/runtime/weights.js"),
    (name = "bundle/vendor/ort/ort.wasm.min.mjs", esModule = embed "bundle/vendor/ort/ort.wasm.min.mjs"),
    (name = "bundle/vendor/ort/ort-wasm-simd-threaded.mjs", esModule = embed "bundle/vendor/ort/ort-wasm-simd-threaded.mjs"),
    (name = "bundle/vendor/ort/ort-wasm-simd-threaded.wasm", wasm = embed "bundle/vendor/ort/ort-wasm-simd-threaded.wasm"),
    (name = "bundle/vendor/pyodide/pyodide.mjs", esModule = embed "bundle/vendor/pyodide/pyodide.mjs"),
    (name = "bundle/vendor/pyodide/pyodide.asm.mjs", esModule = embed "bundle/vendor/pyodide/pyodide.asm.mjs"),
    (name = "bundle/vendor/pyodide/pyodide.asm.wasm", wasm = embed "bundle/vendor/pyodide/pyodide.asm.wasm"),
  ],
  bindings = [(name = "ASSETS", service = "assets")],
  compatibilityDate = "2026-11-01",
  # 2026-11-28: from this date workerd defines process.versions.node even without nodejs_compat;
  # Pyodide 314 then takes itself for Node (node:fs, file paths) and cannot boot. Keep the
  # Workers-shaped process object.
  compatibilityFlags = ["disable_nodejs_process_v2"],
);
