// Which stdlib zip a built bundle's runtime mounts, and that lazy imports from it work
// (tests/test_stdlib.py). Two modes:
//
//   node tests/js/snapshot_stdlib.mjs load BUNDLE
//     The bundle's own runtime (runtime/python.js loadPython, the engine's path under Node) boots
//     Pyodide from the bundle's verified files, restoring the snapshot when the manifest lists one.
//     Then it reads an HTML document for the in-page index (bs4 with the stdlib html.parser, a
//     module the snapshot has not loaded, imported lazily from the mounted zip) and formats a
//     Python error the way the runtime does.
//     stdout: {"snapshot", "stages", "fetched": [bundle paths the runtime read], "chunks", "error"}
//
//   node tests/js/snapshot_stdlib.mjs loaded BUNDLE
//     A normal boot (the bundle's Pyodide and stdlib zip) runs the runtime's set-up, the state a
//     snapshot is taken in, and prints the zip members the loaded modules came from (JSON list),
//     by web/tools/stdlib_zip.mjs's own test.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [mode, bundleArg] = process.argv.slice(2);
const bundle = resolve(bundleArg);
const manifestText = readFileSync(join(bundle, "manifest.json"), "utf8");
const manifest = JSON.parse(manifestText);
const runtime = (name) => import(pathToFileURL(join(bundle, "runtime", name)).href);
const read = (rel) => new Uint8Array(readFileSync(join(bundle, ...rel.split("/"))));

if (mode === "loaded") {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const { LOADED_MEMBERS_PY } = await import(pathToFileURL(join(repo, "web", "tools", "stdlib_zip.mjs")).href);
  const { setupPython, writePythonFiles } = await runtime("python.js");
  const vendor = manifest.runtime.vendor.pyodide;
  const { loadPyodide } = await import(pathToFileURL(join(bundle, vendor.module)).href);
  const indexURL = dirname(join(bundle, vendor.module)) + sep;
  const pyodide = await loadPyodide({
    indexURL,
    packageBaseUrl: indexURL,
    stdLibURL: join(bundle, vendor.stdlib),
    lockFileContents: readFileSync(join(bundle, vendor.lock), "utf8"),
    stdout: () => {},
    stderr: () => {},
  });
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".py") ? [join(dir, e.name)] : [],
    );
  const entries = walk(join(bundle, "py")).sort().map((p) => [relative(bundle, p).split(sep).join("/"), new Uint8Array(readFileSync(p))]);
  writePythonFiles(pyodide, entries, read("model/tokenizer.json"));
  setupPython(pyodide, manifest.model.max_seq_length);
  pyodide.runPython(LOADED_MEMBERS_PY);
  process.stdout.write(`${pyodide.runPython("import json; json.dumps(_websem_loaded_members())")}\n`);
} else if (mode === "load") {
  const { VerifiedFiles } = await runtime("bundle.js");
  const { loadPython } = await runtime("python.js");
  const base = pathToFileURL(`${bundle}/`).href;
  const fetched = [];
  const fetchFn = async (url) => {
    const path = fileURLToPath(url);
    fetched.push(relative(bundle, path).split(sep).join("/"));
    return new Response(readFileSync(path));
  };
  const stages = [];
  const files = new VerifiedFiles(base, manifest, fetchFn);
  const onProgress = (e) => {
    if (e.stage !== "bytes") stages.push(e.stage === "snapshot-fallback" ? `${e.stage}: ${e.reason}` : e.stage);
  };
  const python = await loadPython(files, manifest, base, onProgress);
  const extract = manifest.runtime.extract_python_files;
  python.addFiles(extract.map((p) => [p, read(p)]));
  python.inpage("inpage_reset", [manifestText]);
  const html = "<html><head><title>Flat plates</title></head><body><main><h1>Flat plates</h1>" +
    "<p>Boundary layer transition on a flat plate &amp; its heat transfer.</p></main></body></html>";
  const prepared = JSON.parse(python.inpage("inpage_prepare", [JSON.stringify({ name: "plates.html" }), new TextEncoder().encode(html)]));
  let error = null;
  try {
    python.ranker("init", ["{not json", "[]", null, "{}"]);
  } catch (e) {
    error = String(e?.message ?? e);
  }
  process.stdout.write(
    `${JSON.stringify({ snapshot: python.snapshot, stages, fetched, chunks: prepared.chunks?.map((c) => c.text) ?? null, skipped: prepared.skipped ?? null, error })}\n`,
  );
} else {
  process.stderr.write("usage: node tests/js/snapshot_stdlib.mjs load|loaded BUNDLE\n");
  process.exit(2);
}
