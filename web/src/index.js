// websem: public ES module of a search bundle (copied to BUNDLE/websem.js by `websem build`).
//
//   import { load } from "./websem.js";
//   const engine = await load(new URL("./", import.meta.url));
//   const hits = await engine.search("query text", { k: 10 });  // [{id, score, title, url, snippet, highlights}]
//   // mode: one of engine.info.modes (the first is the default); filters: {section: "x", tags: ["a", "b"]}
//   const { hits, facets } = await engine.searchFull("query", { mode: "lexical", filters: { section: "x" } });
//   // load() resolves once the bundle's lexical tier can answer; until `engine.ready` a hybrid
//   // query answers with the lexical ranking (`searchFull(...).tier === "lexical"`).
//
// In a browser the work runs in a module Web Worker (runtime/worker.js); elsewhere (Node, Deno,
// edge workers without `Worker`) the engine runs in-process (runtime/engine.js).
import { WebsemError } from "./runtime/errors.js";
import { connect } from "./runtime/rpc.js";

export { WebsemError };
// In-page indexing: your own documents indexed in the page, searched like a bundle (runtime/inpage.js).
export { createIndex } from "./runtime/inpage.js";

const RUNTIME = new URL("./runtime/", import.meta.url);

/**
 * Load a websem bundle.
 *
 * @param {string|URL} bundleUrl URL of the bundle folder (holding manifest.json).
 * @param {object} [options]
 * @param {number} [options.threads] onnxruntime threads, used only when crossOriginIsolated (default 1).
 * @param {(event: {stage: string, ms: number}) => void} [options.onProgress] loading progress.
 * @param {boolean} [options.worker] run in a Web Worker (default: whenever `Worker` exists).
 * @param {object} [options.sessionOptions] extra onnxruntime-web InferenceSession options.
 * @param {boolean} [options.snapshot] restore the bundle's Pyodide memory snapshot if it has one
 *   (default true; false boots Pyodide from scratch: same results, slower cold start).
 * @param {typeof fetch} [options.fetch] in-process only: the fetch to use (e.g. one reading files).
 * @param {number} [options.cacheBytes] partitioned bundles: the shard cache's byte budget (default 16 MiB).
 * @param {"fill"|"on-demand"} [options.wordRows] split model: read the rest of the word rows in the
 *   background after the first model answer ("fill", default) or only the rows queries use.
 * @param {boolean} [options.cache] keep the big bundle files in the browser's Cache Storage for
 *   repeat visits (default true; still verified when read back).
 * @param {boolean} [options.progressive] resolve as soon as the lexical tier can answer (default
 *   true; false waits for Pyodide and the model too, `engine.ready` is then already resolved).
 * @returns {Promise<{search(query: string, opts?: {k?: number, mode?: string, filters?: object, wait?: boolean}): Promise<object[]>,
 *   searchFull(query: string, opts?: object): Promise<{hits: object[], facets: object, mode: string, tier: string}>,
 *   memory(): Promise<object>, info: object, ready: Promise<void>, close(): Promise<void>}>}
 */
export async function load(bundleUrl, options = {}) {
  const base = new URL(String(bundleUrl ?? "./"), globalThis.location?.href ?? RUNTIME).href;
  const useWorker = options.worker ?? typeof globalThis.Worker === "function";
  if (!useWorker) {
    const { createEngine } = await import(new URL("engine.js", RUNTIME).href);
    return createEngine(base, options);
  }
  return loadInWorker(base, options);
}

/** The search options that cross to the worker (plain data only). */
function searchOptions(opts) {
  const out = {};
  if (opts?.k != null) out.k = opts.k;
  if (opts?.mode != null) out.mode = opts.mode;
  if (opts?.filters != null) out.filters = opts.filters;
  if (opts?.wait != null) out.wait = opts.wait;
  return out;
}

async function loadInWorker(bundleUrl, options) {
  const workerUrl = new URL("worker.js", RUNTIME).href;
  const worker = new Worker(workerUrl, { type: "module", name: "websem" });
  const rpc = connect(worker, {
    onEvent: (event) => options.onProgress?.(event),
    onError: (event) =>
      new WebsemError(
        `the search worker ${workerUrl} failed to start (${event?.message || "load error"}); ` +
          "serve the complete bundle folder (runtime/ included), e.g. with `websem serve BUNDLE`",
      ),
  });
  const { threads, sessionOptions, dropBytes, snapshot, cacheBytes, progressive, cache, wordRows } = options;
  let info;
  try {
    info = await rpc.call("init", bundleUrl, { threads, sessionOptions, dropBytes, snapshot, cacheBytes, progressive, cache, wordRows });
  } catch (e) {
    rpc.close(e);
    throw e;
  }
  // The full tier's info (tier, threads, pyodide_snapshot, ready_ms) replaces the lexical tier's
  // in place, so `engine.info` is current once `ready` resolves.
  const ready = info.tier === "full" ? Promise.resolve() : rpc.call("ready").then((full) => {
    Object.assign(info, full);
  });
  ready.catch(() => {}); // rejections surface where `ready` is awaited
  let closed = false;
  return {
    info,
    ready,
    search: (query, opts = {}) => rpc.call("search", query, searchOptions(opts)),
    searchFull: (query, opts = {}) => rpc.call("searchFull", query, searchOptions(opts)),
    memory: () => rpc.call("memory"),
    /** Test hook, NOT public API (may change without notice). @internal */
    debug: {
      tokenize: (text) => rpc.call("debug.tokenize", text),
      embed: (text) => rpc.call("debug.embed", text),
      shardStats: () => rpc.call("debug.shardStats"),
      wordRowsStats: () => rpc.call("debug.wordRowsStats"),
      wordRowsFilled: () => rpc.call("debug.wordRowsFilled"),
      modelRuns: () => rpc.call("debug.modelRuns"),
    },
    async close() {
      if (closed) return;
      closed = true;
      await rpc.call("close").catch(() => {});
      rpc.close();
    },
  };
}
