// A partitioned bundle read from disk under Node through the adapter's fileFetch (web/src/node.js),
// as `node web/src/node.js BUNDLE` reads it: the engine in-process, every query in every mode
// asked for, and a log of each rows-file request (the Range asked, the status, the bytes that
// came). Prints {results: {MODE: [{hits, ...} per query]}, stats, rows} as JSON; used by
// tests/test_edge.py to check that row blocks are read as byte ranges and results equal
// `websem query`.
//   node node_partitioned.mjs BUNDLE_DIR QUERIES_JSON MODES_JSON
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createEngine } from "../../web/src/engine.js";
import { fileFetch } from "../../web/src/node.js";

const [bundleDir, queriesJson, modesJson] = process.argv.slice(2);
const base = pathToFileURL(`${resolve(bundleDir)}/`).href;
const rows = [];

/** fileFetch, logging the requests of the rows files (index/ivf/). */
async function logged(input, init) {
  const response = await fileFetch(input, init);
  const path = String(input).slice(base.length);
  if (path.startsWith("index/ivf/")) {
    const bytes = Number(response.headers.get("content-length"));
    rows.push([path, new Headers(init?.headers).get("range"), response.status, bytes]);
  }
  return response;
}

const engine = await createEngine(base, { fetch: logged });
await engine.ready; // the full tier: every mode ranks as `websem query`
const results = {};
for (const mode of JSON.parse(modesJson)) {
  results[mode] = [];
  for (const q of JSON.parse(queriesJson)) results[mode].push(await engine.searchFull(q, { k: 10, mode }));
}
const stats = engine.debug.shardStats();
await engine.close();
process.stdout.write(JSON.stringify({ results, stats, rows }));
