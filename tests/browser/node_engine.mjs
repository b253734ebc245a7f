// Runs a bundle's own runtime under Node (no browser, no Worker) through its public module:
// BUNDLE/websem.js load() in-process, then searchFull() for every query in every mode asked for.
// Prints {info, results: {MODE: [{mode, hits, facets} per query]}} as JSON. Used by test_node_engine.py.
//   node node_engine.mjs BUNDLE_DIR QUERIES_JSON MODES_JSON
// A mode the engine refuses makes this exit non-zero with the engine's message on stderr.
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";

const [bundleDir, queriesJson, modesJson] = process.argv.slice(2);
const bundle = pathToFileURL(bundleDir.endsWith("/") ? bundleDir : `${bundleDir}/`);
const queries = JSON.parse(queriesJson);
const modes = JSON.parse(modesJson);

// Node's fetch has no file: support; the engine takes any fetch.
async function fileFetch(url) {
  try {
    return new Response(await readFile(fileURLToPath(url)));
  } catch {
    return new Response(null, { status: 404, statusText: "Not Found" });
  }
}

const { load } = await import(new URL("websem.js", bundle).href);
const engine = await load(bundle, { fetch: fileFetch, worker: false });
await engine.ready; // the full tier: every mode ranks as `websem query`
const results = {};
for (const mode of modes) {
  results[mode] = [];
  for (const q of queries) results[mode].push(await engine.searchFull(q, { k: 10, mode }));
}
const info = engine.info;
await engine.close();
process.stdout.write(JSON.stringify({ info, results }));
