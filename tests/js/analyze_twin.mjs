// Runs the analyzer's JS twin (web/src/analyze.js) and the JS snippet cutter (web/src/snippet.js)
// over a batch of inputs, for tests/test_analyzer_twin.py, which compares them with Python.
//
//   node tests/js/analyze_twin.mjs IN.json OUT.json
//
// IN:  {"runs": [{"config": {...Analyzer.config()}, "strings": [text, ...]}, ...],
//       "snippets": {"config": {...}, "items": [{"text", "terms", "max_chars"}, ...]}}
// OUT: {"runs": [[[[term, start, end], ...] per string] per run],          (UTF-16 spans)
//       "snippets": [{"text", "start", "end", "highlights"}, ...],          (UTF-16)
//       "errors": [message, ...] for {"refuse": [config, ...]}}
import { readFileSync, writeFileSync } from "node:fs";
import { createAnalyzer } from "../../web/src/analyze.js";
import { snippet } from "../../web/src/snippet.js";

const [input, output] = process.argv.slice(2);
const job = JSON.parse(readFileSync(input, "utf8"));
const out = { runs: [], snippets: [], errors: [] };
for (const run of job.runs ?? []) {
  const analyzer = createAnalyzer(run.config);
  out.runs.push(run.strings.map((s) => analyzer.tokens(s).map((t) => [t.term, t.start, t.end])));
}
if (job.snippets) {
  const analyzer = createAnalyzer(job.snippets.config);
  for (const item of job.snippets.items) {
    out.snippets.push(snippet(item.text, analyzer, item.terms, { maxChars: item.max_chars }));
  }
}
for (const config of job.refuse ?? []) {
  try {
    createAnalyzer(config);
    out.errors.push(null);
  } catch (e) {
    out.errors.push(e.message);
  }
}
writeFileSync(output, JSON.stringify(out));
