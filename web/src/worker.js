// websem Web Worker: runs engine.js off the main thread (module worker). index.js talks to it
// through rpc.js: init(bundleUrl, options) -> info (progress arrives as events), then ready,
// search, searchFull, memory, the debug.* test hooks (engine.js debug), close; with init option
// `inpage` an in-page index (inpage-engine.js) and its inpage.add/abort/remove/export/import/clear.
import { createEngine } from "./engine.js";
import { Transfer, serve } from "./rpc.js";

let engine = null;

function loaded() {
  if (!engine) throw new Error("websem: the engine is not loaded yet; await load() first");
  return engine;
}

const emit = serve(self, {
  async init(bundleUrl, options) {
    // createIndex (inpage.js) runs its in-page index here too: `inpage.*` below.
    const create = options?.inpage ? (await import("./inpage-engine.js")).createInpageEngine : createEngine;
    engine = await create(bundleUrl, { ...options, onProgress: emit });
    return engine.info;
  },
  // The full tier's info once it is up (engine.ready; an engine without tiers is ready at once).
  ready: async () => {
    await loaded().ready;
    return engine.info;
  },
  search: (query, options) => loaded().search(query, options),
  searchFull: (query, options) => loaded().searchFull(query, options),
  memory: () => loaded().memory(),
  "debug.tokenize": (text) => loaded().debug.tokenize(text),
  "debug.embed": (text) => loaded().debug.embed(text),
  "debug.shardStats": () => loaded().debug.shardStats(),
  "debug.wordRowsStats": () => loaded().debug.wordRowsStats?.() ?? null,
  "debug.modelRuns": () => loaded().debug.modelRuns?.() ?? null,
  "debug.wordRowsFilled": async () => {
    await loaded().debug.wordRowsFilled?.();
    return null;
  },
  "debug.files": () => loaded().debug.files(),
  "debug.kept": () => loaded().debug.kept(),
  "debug.sizes": () => loaded().debug.sizes(),
  "inpage.add": (inputs, options) => loaded().add(inputs, { id: options?.id, onProgress: emit }),
  "inpage.abort": (id) => loaded().abort(id),
  "inpage.remove": (ids) => loaded().remove(ids),
  "inpage.export": async () => {
    const bytes = await loaded().export();
    return new Transfer(bytes, [bytes.buffer]);
  },
  "inpage.import": (bytes) => loaded().import(bytes),
  "inpage.clear": () => loaded().clear(),
  close: () => engine?.close(),
});
