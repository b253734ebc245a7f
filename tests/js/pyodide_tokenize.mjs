// Run websem's stdlib tokenizer (web/text/*.py) inside Pyodide under Node, offline.
//
// Usage:
//   node tests/js/pyodide_tokenize.mjs tokenize TOKENIZER_JSON STRINGS_JSON [MAX_LENGTH]
//       -> stdout: {"unidata_version", "python", "items": [{"name", "ids", "offsets"}]}
//   node tests/js/pyodide_tokenize.mjs unicode-dump bench/unicode_props.py
//       -> stdout: the runtime's unicodedata properties (see bench/unicode_scan.py)
//   node tests/js/pyodide_tokenize.mjs components
//       -> stdout: the tokenizer's per-code-point Unicode decisions (tests/js/unicode_components.py)
//   node tests/js/pyodide_tokenize.mjs bench TOKENIZER_JSON CORPUS_JSONL [REPEATS]
//       -> stdout: bench/tokenizer_workload.py:run_workload() results (bench/bench_tokenizer.py)
//
// The Python files are written into Pyodide's FS as the package `websem_text`, exactly like
// the bundle does (py/websem_text/*.py), so the import path is the browser's.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const pyodideDir = join(repo, "web", "node_modules", "pyodide");
const { loadPyodide } = await import(join(pyodideDir, "pyodide.mjs"));

const pyodide = await loadPyodide({ indexURL: pyodideDir + "/", stdout: () => {}, stderr: (s) => process.stderr.write(s + "\n") });
const textDir = join(repo, "web", "text");
pyodide.FS.mkdirTree("/websem/websem_text");
for (const f of readdirSync(textDir)) {
  if (f.endsWith(".py")) pyodide.FS.writeFile(`/websem/websem_text/${f}`, readFileSync(join(textDir, f), "utf8"));
}
pyodide.runPython("import sys; sys.path.insert(0, '/websem')");

const [mode, ...args] = process.argv.slice(2);
let out;
if (mode === "tokenize") {
  const [tokPath, stringsPath, maxLength = "256"] = args;
  pyodide.globals.set("tok_json", readFileSync(tokPath, "utf8"));
  pyodide.globals.set("strings_json", readFileSync(stringsPath, "utf8"));
  pyodide.globals.set("max_length", Number(maxLength));
  out = pyodide.runPython(`
import json, sys, unicodedata
from websem_text.wordpiece import WordPieceTokenizer
tok = WordPieceTokenizer.from_json(tok_json, max_length=max_length)
items = []
for s in json.loads(strings_json):
    enc = tok.encode(s["text"])
    items.append({"name": s["name"], "ids": enc.ids, "offsets": [list(o) for o in enc.offsets]})
json.dumps({"unidata_version": unicodedata.unidata_version, "python": sys.version.split()[0], "items": items})
`);
} else if (mode === "unicode-dump") {
  // args[0]: a stdlib-only Python file defining dump() (bench/unicode_props.py)
  pyodide.runPython(readFileSync(args[0], "utf8"));
  out = pyodide.runPython("import json; json.dumps(dump())");
} else if (mode === "components") {
  // The tokenizer's per-code-point decisions in this runtime (tests/js/unicode_components.py).
  pyodide.runPython(readFileSync(join(here, "unicode_components.py"), "utf8"));
  out = pyodide.runPython(`
import json, unicodedata
import websem_text.wordpiece as w
r = components(w)
r["unidata_version"] = unicodedata.unidata_version
json.dumps(r)
`);
} else if (mode === "bench") {
  const [tokPath, corpusPath, repeats = "3"] = args;
  pyodide.globals.set("tok_json", readFileSync(tokPath, "utf8"));
  pyodide.globals.set("corpus", readFileSync(corpusPath, "utf8"));
  pyodide.globals.set("repeats", Number(repeats));
  pyodide.runPython(readFileSync(join(repo, "bench", "tokenizer_workload.py"), "utf8"));
  out = pyodide.runPython(`
import json
from websem_text.wordpiece import WordPieceTokenizer
r = run_workload(WordPieceTokenizer, tok_json, corpus, repeats)
r["runtime"] = "pyodide"
json.dumps(r)
`);
} else {
  console.error("usage: pyodide_tokenize.mjs tokenize|unicode-dump|bench ...");
  process.exit(2);
}
process.stdout.write(out + "\n");
