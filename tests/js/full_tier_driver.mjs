// Driver for tests/test_full_tier.py: a flat bundle's full tier ranking in JS, wired as engine.js
// wires it, minus the model: the bundle's files verified (bundle.js VerifiedFiles, chunks.json and
// docs.json parsed once), the lexical tier (lexical-tier.js createLexicalTier with the whole
// manifest.search), setupRanker reusing its ranker (Pyodide is a promise that never settles: the
// flat full tier must not need it), the dense index (bundle.js loadIndex) and createSearch. The
// query embedding is given with each request (the CPU reference's own), so equal results mean the
// JS ranking equals `websem query` to the bit.
//
//   node tests/js/full_tier_driver.mjs BUNDLE_DIR REQUESTS_JSON
//
// REQUESTS_JSON: [{query, k, mode, filters, vector}] (filters: {field: [values]} or null; vector:
// the query embedding as a list of float32 values, null in lexical mode). Prints one JSON list:
// per request {hits, facets, mode} or {error: message}.
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { VerifiedFiles, loadIndex } from "../../web/src/bundle.js";
import { createLexicalTier, fullTierTable, lexicalTierTable } from "../../web/src/lexical-tier.js";
import { openLexical } from "../../web/src/lexical.js";
import { fileFetch } from "../../web/src/node.js";
import { createSearch, setupRanker } from "../../web/src/search.js";

const [bundle, requestsPath] = process.argv.slice(2);
const manifest = JSON.parse(await readFile(join(bundle, "manifest.json"), "utf-8"));
const table = fullTierTable(manifest);
if (!table) throw new Error(`${bundle}: manifest.search is not readable by the JS full tier`);
const files = new VerifiedFiles(pathToFileURL(`${resolve(bundle)}/`).href, manifest, fileFetch, () => {}, { plan: false });
const paths = manifest.index.files;
const lexicalP = files.bytes(paths.lexical).then((b) => openLexical(b, manifest.index.chunks));
const [chunks, docs, lexical] = await Promise.all([files.json(paths.chunks), files.json(paths.docs), lexicalP]);
const tier = createLexicalTier({ chunks, docs, lexical, chunkDoc: chunks.map((c) => c.doc), search: table });
if (!lexicalTierTable(manifest)) throw new Error("lexicalTierTable refused a table fullTierTable read");
const indexP = loadIndex(files, manifest);
const never = new Promise(() => {});
const { ranker } = await setupRanker(never, files, manifest, () => {}, indexP, lexicalP, tier.ranker);
if (ranker !== tier.ranker) throw new Error("setupRanker did not reuse the lexical tier's ranker");
const index = await indexP;
let vector = null;
const run = createSearch({ python: null, index, lexical, ranker, embed: async () => vector, search: manifest.search });

const out = [];
for (const r of JSON.parse(await readFile(requestsPath, "utf-8"))) {
  vector = r.vector ? Float32Array.from(r.vector) : null;
  try {
    out.push(await run(r.query, { k: r.k, mode: r.mode, filters: r.filters }));
  } catch (e) {
    out.push({ error: e.message });
  }
}
process.stdout.write(JSON.stringify(out));
