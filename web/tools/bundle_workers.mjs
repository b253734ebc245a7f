// Bundles the runtime's two Web Worker entry points, each into one ES module (esbuild):
//
//   node web/tools/bundle_workers.mjs SRC_DIR OUT_DIR
//
// writes OUT_DIR/worker.js (the engine's worker: engine.js and every module it imports, in-page
// indexing included) and OUT_DIR/python-worker.js (Pyodide's nested worker). `websem build` runs
// it on the bundle being assembled (build/jsbundle.py) and the bundled files replace the copied
// ones in runtime/.
//
// Why: a module worker fetches its import graph one level at a time (worker.js -> engine.js ->
// its ~12 imports -> theirs), each level a round trip before the next is known. Measured in
// Chromium on loopback, the engine worker's graph took ~250 ms of a cold start before it could
// ask for manifest.json, and the Python worker's ~100 ms more before Pyodide's downloads
// started; at 40 ms RTT each of the ~5 levels costs a round trip more. One file each: one
// request. The unbundled modules still ship beside them: the in-process engine (Node, Deno,
// edge handlers) imports runtime/engine.js and its graph as before.
//
// Deterministic (a rebuild must be byte-identical, docs/build.md): no timestamps, no absolute
// paths (esbuild's comments name sources relative to SRC_DIR's parent). Whitespace and syntax are
// minified; identifiers are kept, so stack traces still name the runtime's functions.
import { build } from "esbuild";
import { resolve } from "node:path";

const [src, out] = process.argv.slice(2);
if (!src || !out) {
  console.error("usage: node bundle_workers.mjs SRC_DIR OUT_DIR");
  process.exit(2);
}
const BANNER =
  "// websem runtime, bundled by `websem build` (esbuild) from the modules beside this file; " +
  "source: web/src in the websem repository.";

for (const name of ["worker.js", "python-worker.js"]) {
  await build({
    entryPoints: [resolve(src, name)],
    outfile: resolve(out, name),
    absWorkingDir: resolve(src, ".."),
    bundle: true,
    format: "esm",
    platform: "browser",
    // The runtime's own syntax level (module workers, top-level await are not used): no down-leveling.
    target: "es2022",
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    charset: "utf8",
    banner: { js: BANNER },
    logLevel: "warning",
  });
}
