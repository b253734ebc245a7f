// Runs a split-model bundle's own runtime under Node (in-process load(), the Node adapter's
// fileFetch: byte ranges honoured) and prints, as JSON, each query's embedding (debug.embed) or
// the websem: error it failed with, plus the word rows cache's counters. Used by
// tests/test_model_split.py.
//   node model_split_driver.mjs BUNDLE_DIR QUERIES_JSON SERVER [WORD_ROWS]
// SERVER: "ranges" (a server that answers Range), "whole" (one that ignores it: 200 with the
// whole file), "flaky" (the first request for the rows file fails with HTTP 503, then ranges).
// WORD_ROWS: load()'s wordRows option, "on-demand" (the default here) or "fill"; with "fill" the
// driver waits for the background fill after the first query, so later queries show its effect.
import { pathToFileURL } from "node:url";

const [bundleDir, queriesJson, server, wordRows = "on-demand"] = process.argv.slice(2);
const bundle = pathToFileURL(bundleDir.endsWith("/") ? bundleDir : `${bundleDir}/`);
const queries = JSON.parse(queriesJson);

const { fileFetch } = await import(new URL("runtime/node.js", bundle).href);
const requests = [];
let failed = false;
async function fetchFn(input, init) {
  const url = String(input?.url ?? input);
  const range = init?.headers?.Range ?? null;
  if (url.endsWith("/word_rows.bin")) {
    requests.push(range);
    if (server === "flaky" && !failed) {
      failed = true;
      return new Response("try again", { status: 503 });
    }
    if (server === "whole") return fileFetch(input);
  }
  return fileFetch(input, init);
}

const { load } = await import(new URL("websem.js", bundle).href);
const engine = await load(bundle, { fetch: fetchFn, worker: false, wordRows });
await engine.ready;
const results = [];
let afterFill = null; // the rows cache's counters when the fill was over
for (const q of queries) {
  try {
    results.push({ embedding: await engine.debug.embed(q) });
  } catch (e) {
    results.push({ error: String(e?.message ?? e) });
  }
  if (wordRows === "fill" && afterFill === null) {
    await engine.debug.wordRowsFilled();
    afterFill = { stats: engine.debug.wordRowsStats(), requests: requests.length };
  }
}
const out = { results, stats: engine.debug.wordRowsStats(), requests, progress: engine.info.timings, afterFill };
await engine.close();
process.stdout.write(JSON.stringify(out));
