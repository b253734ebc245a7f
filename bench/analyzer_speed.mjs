// Query analysis speed for bench/bench_analyzer.py: the analyzer's JS twin (web/src/analyze.js)
// and the Python analyzer in Pyodide (the shipped web/text files, tests/js/pyodide_env.mjs), in
// one Node process, on the same queries and documents.
//
//   node bench/analyzer_speed.mjs JOB.json     JOB: {"queries": [...], "docs": [...], "rounds": 3}
//   stdout: {"js": {...}, "pyodide": {...}, "same_terms": bool, "pyodide_boot_ms"}
import { readFileSync } from "node:fs";
import { createAnalyzer } from "../web/src/analyze.js";
import { bootPython } from "../tests/js/pyodide_env.mjs";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const t0 = performance.now();
const { pyodide } = await bootPython();
const bootMs = performance.now() - t0;
pyodide.globals.set("job_json", JSON.stringify(job));
pyodide.runPython(`
import json, time
from websem_text.analyze import Analyzer
_job = json.loads(job_json)
def _py_round():
    a = Analyzer()  # fresh: every query is first-seen, as in a page
    per_query = []
    terms = []
    for q in _job["queries"]:
        t = time.perf_counter()
        terms.append(a.terms(q))
        per_query.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    b = Analyzer()
    n = sum(len(b.terms(d)) for d in _job["docs"])
    return json.dumps({"per_query_ms": per_query, "terms": terms, "docs_s": time.perf_counter() - t, "doc_terms": n})
`);
const config = JSON.parse(pyodide.runPython("json.dumps(Analyzer().config())"));

function jsRound() {
  const a = createAnalyzer(config); // fresh: every query is first-seen
  const perQuery = [];
  const terms = [];
  for (const q of job.queries) {
    const t = performance.now();
    terms.push(a.terms(q));
    perQuery.push(performance.now() - t);
  }
  const t = performance.now();
  let n = 0;
  const b = createAnalyzer(config);
  for (const d of job.docs) n += b.terms(d).length;
  return { per_query_ms: perQuery, terms, docs_s: (performance.now() - t) / 1000, doc_terms: n };
}

const out = { js: [], pyodide: [], pyodide_boot_ms: bootMs };
for (let r = 0; r < job.rounds; r++) {
  // Alternate A B A B so that load on a shared box hits both alike.
  out.js.push(jsRound());
  out.pyodide.push(JSON.parse(pyodide.runPython("_py_round()")));
}
out.same_terms = out.js.every((r, i) => JSON.stringify(r.terms) === JSON.stringify(out.pyodide[i].terms));
for (const side of [out.js, out.pyodide]) for (const r of side) delete r.terms;
process.stdout.write(JSON.stringify(out));
