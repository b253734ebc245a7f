// websem's lexical side (web/text/analyze.py + bm25.py) inside Pyodide under Node, offline,
// beside the runtime's own JS BM25 scorer (web/src/lexical.js) over the same serialized index:
// parity + speed.
//
// Usage: node tests/js/pyodide_lexical.mjs JOB_JSON
//   JOB_JSON: {"index": "path/to/lexical.bin", "queries": ["..."], "k": 10,
//              "snippets": [{"text": "...", "query": "..."}], "repeat": 1, "snowball_dir": "..."}
//   stdout:   {"python", "terms": [[...]], "pyodide": [[[chunk, score], ...]], "js": [...],
//              "snippets": [{...}], "timing_ms": {...}}
//
// Python files are written into Pyodide's FS as the package `websem_text` (as the bundle does),
// plus the pure-Python `snowballstemmer` package copied from the venv's site-packages.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { lexicalDocs, openLexical } from "../../web/src/lexical.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const pyodideDir = join(repo, "web", "node_modules", "pyodide");
const { loadPyodide } = await import(join(pyodideDir, "pyodide.mjs"));

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const t0 = performance.now();
const pyodide = await loadPyodide({ indexURL: pyodideDir + "/", stdout: () => {}, stderr: (s) => process.stderr.write(s + "\n") });
const tLoad = performance.now() - t0;

function copyPackage(srcDir, dest) {
  pyodide.FS.mkdirTree(dest);
  for (const f of readdirSync(srcDir)) {
    if (f.endsWith(".py")) pyodide.FS.writeFile(`${dest}/${f}`, readFileSync(join(srcDir, f), "utf8"));
  }
}
copyPackage(join(repo, "web", "text"), "/websem/websem_text");
const snowballDir = job.snowball_dir ?? execFileSync(join(repo, ".venv", "bin", "python"),
  ["-c", "import snowballstemmer, os; print(os.path.dirname(snowballstemmer.__file__))"]).toString().trim();
copyPackage(snowballDir, "/websem/snowballstemmer");
pyodide.runPython("import sys; sys.path.insert(0, '/websem')");

const indexBytes = new Uint8Array(readFileSync(job.index));
const k = job.k ?? 10;
const repeat = job.repeat ?? 1;

// ------------------------------------------------------------------ Pyodide
pyodide.globals.set("index_js", indexBytes);
pyodide.globals.set("job_json", JSON.stringify(job));
const t1 = performance.now();
pyodide.runPython(`
import json, sys, time
from websem_text.analyze import Analyzer
from websem_text.bm25 import LexicalIndex, snippet
job = json.loads(job_json)
t = time.perf_counter()
index = LexicalIndex.from_bytes(index_js.to_py())
analyzer = Analyzer.from_config(index.analyzer)
load_ms = 1000 * (time.perf_counter() - t)
`);
const tPyLoad = performance.now() - t1;
const pyOut = JSON.parse(pyodide.runPython(`
terms = [analyzer.terms(q) for q in job["queries"]]
hits = [index.search(ts, job.get("k", 10)) for ts in terms]
t = time.perf_counter()
for q in job["queries"]:
    analyzer.terms(q)
analyze_ms = 1000 * (time.perf_counter() - t) / max(1, len(terms))
snips = [snippet(s["text"], analyzer, analyzer.terms(s["query"])) for s in job.get("snippets", [])]
json.dumps({"python": sys.version.split()[0], "terms": terms, "hits": [[[c, s] for c, s in h] for h in hits],
            "snippets": snips, "load_ms": load_ms, "analyze_ms": analyze_ms})
`));
// Per-query scoring time, postings decoded from bytes every time on both sides (no cache).
const pyTime = pyodide.runPython(`
def _time_queries(k):
    out = []
    for ts in terms:
        index._cache.clear()
        t = time.perf_counter()
        index.search(ts, k)
        out.append(1000 * (time.perf_counter() - t))
    return json.dumps(out)
_time_queries
`);

// ------------------------------------------------------------------ the runtime's JS scorer (web/src/lexical.js)
// over the same bytes; chunk i is "document" i, so lexicalDocs ranks chunks like index.search.
function searchJs(ix, terms, k) {
  const r = lexicalDocs(ix, terms, identity, null, k);
  return Array.from(r.docs, (c, i) => [c, r.scores[i]]);
}

const t2 = performance.now();
const ix = openLexical(indexBytes);
const identity = Int32Array.from({ length: ix.nChunks }, (_, i) => i);
const jsLoad = performance.now() - t2;
const jsHits = pyOut.terms.map((ts) => searchJs(ix, ts, k));
// Alternate A B A B over `repeat` rounds (shared, noisy CPU); report medians of per-query times.
const pyTimes = [], jsTimes = [];
for (let r = 0; r < repeat; r++) {
  pyTimes.push(...JSON.parse(pyTime(k)));
  for (const ts of pyOut.terms) {
    const t = performance.now();
    searchJs(ix, ts, k);
    jsTimes.push(performance.now() - t);
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const pyScoreMedian = median(pyTimes), jsScoreMedian = median(jsTimes);
const pyScore = mean(pyTimes), jsScore = mean(jsTimes);

process.stdout.write(JSON.stringify({
  python: pyOut.python, terms: pyOut.terms, pyodide: pyOut.hits, js: jsHits, snippets: pyOut.snippets,
  timing_ms: { pyodide_start: tLoad, pyodide_index_load: pyOut.load_ms, pyodide_index_load_wall: tPyLoad,
               pyodide_analyze_per_query: pyOut.analyze_ms,
               pyodide_score_median: pyScoreMedian, pyodide_score_mean: pyScore,
               js_index_load: jsLoad, js_score_median: jsScoreMedian, js_score_mean: jsScore },
}) + "\n");
