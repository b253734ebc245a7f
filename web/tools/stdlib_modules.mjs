// The Python standard library modules a websem bundle's Pyodide loads (called by build/stdlib.py).
//
//   node web/tools/stdlib_modules.mjs BUNDLE_DIR MAX_LENGTH PYODIDE_MODULE PYODIDE_LOCK MODULES_JSON
//
// Boots the bundle's own Pyodide with its full python_stdlib.zip, runs the runtime's set-up
// (runtime/python.js: websem_text.bridge.setup), imports every module of the shipped packages
// (py/*/), then every stdlib module named in MODULES_JSON (the stdlib imports found anywhere in
// the shipped Python, function bodies included: build/stdlib.py reads them statically), encodes a
// query and formats a Python exception the way the runtime does. Prints, as JSON, the members of
// python_stdlib.zip that the loaded modules came from: what a trimmed zip must keep.
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { LOADED_MEMBERS_PY } from "./stdlib_zip.mjs";

const [bundleArg, maxLengthArg, moduleArg, lockArg, modulesArg] = process.argv.slice(2);
if (!bundleArg || !maxLengthArg || !moduleArg || !lockArg || !modulesArg) {
  process.stderr.write("usage: node stdlib_modules.mjs BUNDLE_DIR MAX_LENGTH PYODIDE_MODULE PYODIDE_LOCK MODULES_JSON\n");
  process.exit(2);
}
const bundle = bundleArg;
const extra = JSON.parse(modulesArg);

async function walk(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p)));
    else if (entry.name.endsWith(".py")) out.push(p);
  }
  return out.sort();
}

const { setupPython, writePythonFiles } = await import(pathToFileURL(join(bundle, "runtime", "python.js")).href);
const { pythonErrorMessage } = await import(pathToFileURL(join(bundle, "runtime", "errors.js")).href);
const { loadPyodide } = await import(pathToFileURL(join(bundle, ...moduleArg.split("/"))).href);
const indexURL = dirname(join(bundle, ...moduleArg.split("/"))) + sep;
const pyodide = await loadPyodide({
  indexURL,
  packageBaseUrl: indexURL,
  lockFileContents: await readFile(join(bundle, ...lockArg.split("/")), "utf-8"),
  stdout: () => {},
  stderr: () => {},
});
const entries = [];
for (const p of await walk(join(bundle, "py"))) {
  entries.push([relative(bundle, p).split(sep).join("/"), new Uint8Array(await readFile(p))]);
}
writePythonFiles(pyodide, entries, new Uint8Array(await readFile(join(bundle, "model", "tokenizer.json"))));
setupPython(pyodide, Number.parseInt(maxLengthArg, 10));
// Top-level names under py/: packages (folders) and single-file modules.
const packages = [...new Set(entries.map(([p]) => p.split("/")[1].replace(/\.py$/, "")))];
pyodide.globals.set("websem_packages", pyodide.toPy(packages));
pyodide.globals.set("websem_extra", pyodide.toPy(extra));
pyodide.runPython(`
import importlib, pkgutil, sys
for name in websem_packages:
    try:
        pkg = importlib.import_module(name)
    except Exception:
        continue
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", []), name + "."):
        try:
            importlib.import_module(info.name)
        except Exception:
            pass  # e.g. a module whose optional third-party dependency is absent
for name in websem_extra:
    try:
        importlib.import_module(name)
    except Exception:
        pass
from websem_text import bridge
bridge.encode("stdlib check: naïve café, 東京 and 3.14")
`);
try {
  pyodide.runPython("import json; json.loads('{not json')");
} catch (e) {
  pythonErrorMessage(e); // the runtime's formatting of a Python error
}
// Frozen modules count as loaded (their __file__ points into the zip, where tracebacks read
// source lines from): the trimmed zip keeps those members too.
pyodide.runPython(LOADED_MEMBERS_PY);
const members = pyodide.runPython("import json; json.dumps(_websem_loaded_members())");
process.stdout.write(`${members}\n`);
