// Run websem's stdlib tokenizer (web/text/*.py) inside Pyodide under Node, offline.
//
// Usage:
//   node tests/js/pyodide_tokenize.mjs tokenize TOKENIZER_JSON STRINGS_JSON [MAX_LENGTH]
//       -> stdout: {"unidata_version", "python", "items": [{"name", "ids", "offsets"}]}
//   node tests/js/pyodide_tokenize.mjs unicode-dump bench/unicode_props.py
//       -> stdout: the runtime's unicodedata properties (see bench/unicode_scan.py)
//   node tests/js/pyodide_tokenize.mjs components
//       -> stdout: the tokenizer's per-code-point Unicode decisions (tests/js/unicode_components.py)
//   node tests/js/pyodide_tokenize.mjs bench TOKENIZER_JSON CORPUS_JSONL [MAX_DOCS]
//       -> stdout: {"tokens", "seconds", "query_ms_median", ...}
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
  const [tokPath, corpusPath, maxDocs = "0"] = args;
  pyodide.globals.set("tok_json", readFileSync(tokPath, "utf8"));
  pyodide.globals.set("corpus", readFileSync(corpusPath, "utf8"));
  pyodide.globals.set("max_docs", Number(maxDocs));
  out = pyodide.runPython(`
import json, sys, time, unicodedata
from websem_text.wordpiece import WordPieceTokenizer
t0 = time.perf_counter()
tok = WordPieceTokenizer.from_json(tok_json, max_length=256)
load_s = time.perf_counter() - t0
docs = [json.loads(l) for l in corpus.splitlines() if l.strip()]
if max_docs:
    docs = docs[:max_docs]
texts = [d["title"] + " " + d["text"] for d in docs]
# Cold pass (empty word cache), then a warm pass: both reported.
t0 = time.perf_counter(); n_tokens = sum(tok.count_tokens(t) for t in texts); cold = time.perf_counter() - t0
t0 = time.perf_counter(); n2 = sum(len(tok.encode(t).ids) for t in texts); warm_encode = time.perf_counter() - t0
# 20-word queries: the first 20 words of each title+abstract, unseen by the cache.
tok2 = WordPieceTokenizer.from_json(tok_json, max_length=256)
queries = [" ".join(t.split()[:20]) for t in texts[:400]]
for q in queries[:50]:
    tok2.encode(q)
times = []
for q in queries[50:]:
    t0 = time.perf_counter(); tok2.encode(q); times.append(time.perf_counter() - t0)
times.sort()
warm_times = []
for q in queries[50:]:
    t0 = time.perf_counter(); tok2.encode(q); warm_times.append(time.perf_counter() - t0)
warm_times.sort()
json.dumps({"runtime": "pyodide", "python": sys.version.split()[0], "unidata_version": unicodedata.unidata_version,
            "docs": len(texts), "tokens": n_tokens, "load_s": load_s, "count_tokens_cold_s": cold,
            "encode_warm_s": warm_encode,
            "query20_ms_median_first_seen": 1000 * times[len(times) // 2],
            "query20_ms_p90_first_seen": 1000 * times[int(len(times) * 0.9)],
            "query20_ms_median_repeat": 1000 * warm_times[len(warm_times) // 2],
            "n_queries": len(times)})
`);
} else {
  console.error("usage: pyodide_tokenize.mjs tokenize|unicode-dump|bench ...");
  process.exit(2);
}
process.stdout.write(out + "\n");
