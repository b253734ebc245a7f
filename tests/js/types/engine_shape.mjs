// Loads a built bundle in-process through its public `load()` (BUNDLE/websem.js) and prints, as
// JSON, the shape of what the engine really returns: its members, `info`, progress events, hits,
// `searchFull` results and `memory()`, in every mode the bundle offers. tests/test_types.py
// compares it with the interfaces of web/src/index.d.ts.
//
//   node engine_shape.mjs BUNDLE_DIR QUERY
//
// In-process only (Node has no Worker); the worker proxy in index.js forwards the same calls
// (rpc.js) and is exercised by the Chromium tests in tests/browser.

import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const [bundleDir, query] = process.argv.slice(2);
const base = pathToFileURL(`${resolve(bundleDir)}/`);
const { load } = await import(new URL("websem.js", base).href);
const { fileFetch } = await import(new URL("runtime/node.js", base).href);

const keys = (o) => Object.keys(o).sort();
const events = [];
const engine = await load(base, { worker: false, fetch: fileFetch, onProgress: (e) => events.push(e) });
// The full tier: every mode answers with its own ranking (search and searchFull alike).
await engine.ready;
const out = {
  engine: keys(engine),
  methods: keys(engine).filter((k) => typeof engine[k] === "function"),
  info: keys(engine.info),
  info_index: keys(engine.info.index),
  info_model: keys(engine.info.model),
  modes: engine.info.modes,
  progress: events.map((e) => ({ stage: e.stage, keys: keys(e) })),
  memory: keys(await engine.memory()),
  results: {},
};
for (const mode of engine.info.modes) {
  const full = await engine.searchFull(query, { k: 3, mode });
  const hits = await engine.search(query, { k: 3, mode });
  out.results[mode] = {
    full: keys(full),
    mode: full.mode,
    hit: full.hits.length ? keys(full.hits[0]) : null,
    search_equals_full: JSON.stringify(hits) === JSON.stringify(full.hits),
  };
}
await engine.close();
process.stdout.write(JSON.stringify(out));
