// Runs the bundle's own runtime/engine.js under Node (no browser, no Worker) and prints
// {info, results: [[{id, score}...] per query]} as JSON. Used by test_node_engine.py.
//   node node_engine.mjs BUNDLE_DIR QUERIES_JSON
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";

const [bundleDir, queriesJson] = process.argv.slice(2);
const bundle = pathToFileURL(bundleDir.endsWith("/") ? bundleDir : `${bundleDir}/`);
const queries = JSON.parse(queriesJson);

// Node's fetch has no file: support; the engine takes any fetch.
async function fileFetch(url) {
  try {
    return new Response(await readFile(fileURLToPath(url)));
  } catch {
    return new Response(null, { status: 404, statusText: "Not Found" });
  }
}

const { createEngine } = await import(new URL("runtime/engine.js", bundle).href);
const engine = await createEngine(bundle, { fetch: fileFetch });
const results = [];
for (const q of queries) results.push((await engine.search(q, { k: 10 })).map(({ id, score }) => ({ id, score })));
await engine.close();
process.stdout.write(JSON.stringify({ info: engine.info, results }));
