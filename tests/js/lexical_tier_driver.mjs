// Driver for tests/test_lexical_tier.py: a bundle's lexical tier (web/src/lexical-tier.js, the
// module the engine answers with before Pyodide and the model) over the bundle's own files: a
// flat bundle's chunks, docs and lexical.bin, or a partitioned one's table and shards.
//
//   node tests/js/lexical_tier_driver.mjs BUNDLE_DIR REQUESTS_JSON
//
// REQUESTS_JSON: [{query, k, filters}] (filters: {field: [values]} or null). Prints one JSON
// list: per request {hits, facets} or {error: message}.
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { VerifiedFiles } from "../../web/src/bundle.js";
import { openLexical } from "../../web/src/lexical.js";
import { createLexicalTier, createPartitionedLexicalTier, lexicalTierTable } from "../../web/src/lexical-tier.js";
import { fileFetch } from "../../web/src/node.js";
import { openPartitioned } from "../../web/src/partitioned.js";

const [bundle, requestsPath] = process.argv.slice(2);
const manifest = JSON.parse(await readFile(join(bundle, "manifest.json"), "utf-8"));
const table = lexicalTierTable(manifest);
if (!table) throw new Error(`${bundle}: manifest.search is not readable by the lexical tier`);
let tier;
if (manifest.index.layout === "partitioned") {
  // The shards and fragments each query needs, verified, as in the browser.
  const files = new VerifiedFiles(pathToFileURL(`${resolve(bundle)}/`).href, manifest, fileFetch, () => {}, { plan: false });
  tier = createPartitionedLexicalTier({ index: await openPartitioned(files, manifest), search: table });
} else {
  const paths = manifest.index.files;
  const chunks = JSON.parse(await readFile(join(bundle, paths.chunks), "utf-8"));
  const docs = JSON.parse(await readFile(join(bundle, paths.docs), "utf-8"));
  const lexical = openLexical(new Uint8Array(await readFile(join(bundle, paths.lexical))), manifest.index.chunks);
  tier = createLexicalTier({ chunks, docs, lexical, chunkDoc: chunks.map((c) => c.doc), search: table });
}
const out = [];
for (const { query, k, filters } of JSON.parse(await readFile(requestsPath, "utf-8"))) {
  try {
    out.push(await tier.search(query, { k, filters }));
  } catch (e) {
    out.push({ error: e.message });
  }
}
process.stdout.write(JSON.stringify(out));
