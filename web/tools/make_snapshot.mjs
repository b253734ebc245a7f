// Build-time Pyodide memory snapshot for a websem bundle (called by build/snapshot.py).
//
//   node web/tools/make_snapshot.mjs BUNDLE_DIR MAX_LENGTH PYODIDE_MODULE PYODIDE_LOCK
//
// PYODIDE_MODULE / PYODIDE_LOCK: bundle paths of pyodide.mjs and pyodide-lock.json (the build's
// manifest.runtime.vendor.pyodide; the manifest itself is written after the snapshot).
// Boots the bundle's own Pyodide with
// `_makeSnapshot`, writes the bundle's py/ files and model/tokenizer.json into its file system,
// runs the runtime's own set-up (runtime/python.js setupPython: websem_text.bridge.setup, the very
// code a normal boot runs), then saves the wasm heap to BUNDLE_DIR/<SNAPSHOT_PATH>. The browser
// restores it instead of starting the interpreter (docs/architecture.md "Runtime"). Prints the
// snapshot's bundle-relative path.
//
// `_makeSnapshot` / `_loadSnapshot` / `makeMemorySnapshot()` are Pyodide 314's private (@ignore /
// @private) snapshot API; the runtime falls back to a normal boot if a snapshot does not restore,
// so a change there costs speed, not correctness.
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

const [bundleArg, maxLengthArg, moduleArg, lockArg] = process.argv.slice(2);
if (!bundleArg || !maxLengthArg || !moduleArg || !lockArg) {
  process.stderr.write("usage: node make_snapshot.mjs BUNDLE_DIR MAX_LENGTH PYODIDE_MODULE PYODIDE_LOCK\n");
  process.exit(2);
}
const bundle = resolve(bundleArg);
const maxLength = Number.parseInt(maxLengthArg, 10);

async function walk(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p)));
    else if (entry.name.endsWith(".py")) out.push(p);
  }
  return out.sort();
}

const runtime = (name) => import(pathToFileURL(join(bundle, "runtime", name)).href);
const { setupPython, writePythonFiles } = await runtime("python.js");
const { SNAPSHOT_PATH, packSnapshot, unpackSnapshot } = await runtime("snapshot.js");
const vendor = { module: moduleArg, lock: lockArg };
const { loadPyodide } = await import(pathToFileURL(join(bundle, ...vendor.module.split("/"))).href);
const indexURL = dirname(join(bundle, ...vendor.module.split("/"))) + sep;
const pyodide = await loadPyodide({
  indexURL,
  packageBaseUrl: indexURL,
  lockFileContents: await readFile(join(bundle, ...vendor.lock.split("/")), "utf-8"),
  // Same (empty) environment and streams as the browser boot: the snapshot carries os.environ.
  stdout: () => {},
  stderr: () => {},
  _makeSnapshot: true,
});
const entries = [];
for (const p of await walk(join(bundle, "py"))) {
  entries.push([relative(bundle, p).split(sep).join("/"), new Uint8Array(await readFile(p))]);
}
writePythonFiles(pyodide, entries, new Uint8Array(await readFile(join(bundle, "model", "tokenizer.json"))));
setupPython(pyodide, maxLength);
// Sanity check before saving: the tokenizer works (the proxy is released before the snapshot).
const bridge = pyodide.pyimport("websem_text.bridge");
const probe = bridge.encode("snapshot check");
bridge.destroy();
if (!(probe[0] instanceof BigInt64Array) || probe[0].length < 3) throw new Error("tokenizer probe failed");
// The sparse container (snapshot.js) drops the heap's long zero runs; check the round trip
// before shipping it.
const raw = pyodide.makeMemorySnapshot();
const snapshot = packSnapshot(raw);
const back = unpackSnapshot(snapshot);
if (back.length !== raw.length || Buffer.compare(Buffer.from(back), Buffer.from(raw)) !== 0) {
  throw new Error("sparse snapshot round trip failed");
}
const target = join(bundle, ...SNAPSHOT_PATH.split("/"));
await mkdir(dirname(target), { recursive: true });
await writeFile(target, snapshot);
process.stdout.write(`${SNAPSHOT_PATH}\n`);
