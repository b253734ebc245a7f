// Build-time Pyodide memory snapshot for a websem bundle (called by build/snapshot.py).
//
//   node web/tools/make_snapshot.mjs BUNDLE_DIR MAX_LENGTH
//
// Boots the bundle's own Pyodide (vendor/pyodide) with `_makeSnapshot`, writes the bundle's
// py/websem_text files and model/tokenizer.json into its file system, runs the runtime's own
// tokenizer set-up (runtime/engine.js tokenizerSetupPy, the very code a normal boot runs), then
// saves the wasm heap to BUNDLE_DIR/<SNAPSHOT_PATH>. The browser restores it instead of starting
// the interpreter (docs/architecture.md "Runtime"). Prints the snapshot's bundle-relative path.
//
// 2026-11-28: `_makeSnapshot` / `_loadSnapshot` / `makeMemorySnapshot()` are Pyodide 314's
// private (@ignore / @private) snapshot API; the runtime falls back to a normal boot if a
// snapshot does not restore, so a change there costs speed, not correctness.
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

const [bundleArg, maxLengthArg] = process.argv.slice(2);
if (!bundleArg || !maxLengthArg) {
  process.stderr.write("usage: node make_snapshot.mjs BUNDLE_DIR MAX_LENGTH\n");
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

const engine = await import(pathToFileURL(join(bundle, "runtime", "engine.js")).href);
const { loadPyodide } = await import(pathToFileURL(join(bundle, "vendor", "pyodide", "pyodide.mjs")).href);
const indexURL = join(bundle, "vendor", "pyodide") + sep;
const pyodide = await loadPyodide({
  indexURL,
  packageBaseUrl: indexURL,
  lockFileContents: await readFile(join(indexURL, "pyodide-lock.json"), "utf-8"),
  // Same (empty) environment and streams as the browser boot: the snapshot carries os.environ.
  stdout: () => {},
  stderr: () => {},
  _makeSnapshot: true,
});
const entries = [];
for (const p of await walk(join(bundle, "py"))) {
  entries.push([relative(bundle, p).split(sep).join("/"), new Uint8Array(await readFile(p))]);
}
engine.writePythonFiles(pyodide, entries, new Uint8Array(await readFile(join(bundle, "model", "tokenizer.json"))));
pyodide.runPython(engine.tokenizerSetupPy(maxLength));
// The hybrid ranker (hybrid.js) imports these right after boot; importing them here puts them in
// the snapshot (~0.5 s of imports on a loaded box, measured 2026-11-28). No JS objects involved.
pyodide.runPython(`
for _m in ("websem_text.bm25", "websem_text.analyze"):
    try:
        __import__(_m)
    except ImportError:
        pass
del _m
`);
// Sanity check before saving: the tokenizer works.
const probe = pyodide.globals.get("websem_encode")("snapshot check");
if (!(probe[0] instanceof BigInt64Array) || probe[0].length < 3) throw new Error("tokenizer probe failed");
// The sparse container (engine.js packSnapshot) drops the heap's long zero runs; check the
// round trip before shipping it.
const raw = pyodide.makeMemorySnapshot();
const snapshot = engine.packSnapshot(raw);
const back = engine.unpackSnapshot(snapshot);
if (back.length !== raw.length || Buffer.compare(Buffer.from(back), Buffer.from(raw)) !== 0) {
  throw new Error("sparse snapshot round trip failed");
}
const target = join(bundle, ...engine.SNAPSHOT_PATH.split("/"));
await mkdir(dirname(target), { recursive: true });
await writeFile(target, snapshot);
process.stdout.write(`${engine.SNAPSHOT_PATH}\n`);
