// websem Web Worker: runs engine.js off the main thread (module worker). index.js talks to it
// through rpc.js: init(bundleUrl, options) -> info (progress arrives as events), then search,
// searchFull, memory, debug.tokenize, debug.embed, debug.shardStats, close.
import { createEngine } from "./engine.js";
import { serve } from "./rpc.js";

let engine = null;

function loaded() {
  if (!engine) throw new Error("websem: the engine is not loaded yet; await load() first");
  return engine;
}

const emit = serve(self, {
  async init(bundleUrl, options) {
    engine = await createEngine(bundleUrl, { ...options, onProgress: emit });
    return engine.info;
  },
  search: (query, options) => loaded().search(query, options),
  searchFull: (query, options) => loaded().searchFull(query, options),
  memory: () => loaded().memory(),
  "debug.tokenize": (text) => loaded().debug.tokenize(text),
  "debug.embed": (text) => loaded().debug.embed(text),
  "debug.shardStats": () => loaded().debug.shardStats(),
  close: () => engine?.close(),
});
