// websem in-page indexing, the public side: createIndex() (re-exported by websem.js).
//
//   import { createIndex } from "./websem.js";
//   const index = await createIndex(new URL("./", import.meta.url));   // a bundle: its model + runtime
//   await index.add(fileInput.files, { onProgress: (e) => console.log(e.index + 1, "/", e.total, e.id, e.status) });
//   const hits = await index.search("what did I write about tides");
//
// In a browser the index lives in a module Web Worker (worker.js running inpage-engine.js), so
// indexing never blocks the page; files are handed to the worker as File objects and read there.
// Elsewhere (Node, Deno) the engine runs in-process.
import { WebsemError } from "./errors.js";
import { connect } from "./rpc.js";

/**
 * Open an in-page index: documents and files indexed inside the page with the same code as
 * `websem build`, searched with the same code as a bundle, stored in this browser (OPFS, else
 * IndexedDB) and restored on the next createIndex.
 *
 * @param {string|URL} bundleUrl a bundle folder (its model, tokenizer and runtime are used; its
 *   own index is not).
 * @param {object} [options]
 * @param {boolean|"auto"|"opfs"|"indexeddb"} [options.persist] where to store the index (default
 *   "auto" in browsers: OPFS, else IndexedDB; none elsewhere); false keeps it in memory only.
 * @param {string} [options.name] which stored index (default "default"): one per name and origin.
 * @param {boolean} [options.worker] run in a Web Worker (default: whenever `Worker` exists).
 * @param {(event: object) => void} [options.onProgress] loading progress (as load()'s).
 * @param {number} [options.threads] onnxruntime threads (used only when crossOriginIsolated).
 * @param {boolean} [options.snapshot] restore the bundle's Pyodide memory snapshot (default true).
 * @param {typeof fetch} [options.fetch] in-process only: the fetch to read bundle files with.
 */
export async function createIndex(bundleUrl, options = {}) {
  const base = new URL(String(bundleUrl ?? "./"), globalThis.location?.href ?? import.meta.url).href;
  const useWorker = options.worker ?? typeof globalThis.Worker === "function";
  if (!useWorker) {
    const { createInpageEngine } = await import("./inpage-engine.js");
    return createInpageEngine(base, options);
  }
  return createInWorker(base, options);
}

/** The search options that cross to the worker (plain data only). */
function searchOptions(opts) {
  const out = {};
  if (opts?.k != null) out.k = opts.k;
  if (opts?.mode != null) out.mode = opts.mode;
  if (opts?.filters != null) out.filters = opts.filters;
  return out;
}

/** What add() takes, as data a worker can receive: arrays of records and File/Blob objects clone as they are. */
function addInputs(inputs) {
  if (inputs != null && typeof inputs === "object" && typeof inputs[Symbol.iterator] === "function") return [...inputs];
  return [inputs];
}

async function createInWorker(bundleUrl, options) {
  const workerUrl = new URL("./worker.js", import.meta.url).href;
  const worker = new Worker(workerUrl, { type: "module", name: "websem-inpage" });
  const adds = new Map(); // add id -> onProgress
  let nextAdd = 1;
  const rpc = connect(worker, {
    onEvent: (event) => {
      if (event?.add != null) {
        const { add, ...rest } = event;
        adds.get(add)?.(rest);
      } else {
        options.onProgress?.(event);
      }
    },
    onError: (event) =>
      new WebsemError(
        `the in-page index worker ${workerUrl} failed to start (${event?.message || "load error"}); ` +
          "serve the complete bundle folder (runtime/ included), e.g. with `websem serve BUNDLE`",
      ),
  });
  const { threads, sessionOptions, snapshot, persist, name, debugKeep } = options;
  let info;
  try {
    info = await rpc.call("init", bundleUrl, { inpage: true, threads, sessionOptions, snapshot, persist, name, debugKeep });
  } catch (e) {
    rpc.close(e);
    throw e;
  }
  // `info` stays the same object; each change updates it in place.
  const update = (result) => {
    if (result?.info) Object.assign(info, result.info);
    return result;
  };
  let closed = false;
  return {
    info,
    search: (query, opts = {}) => rpc.call("search", query, searchOptions(opts)),
    searchFull: (query, opts = {}) => rpc.call("searchFull", query, searchOptions(opts)),
    async add(inputs, { onProgress, signal } = {}) {
      const id = nextAdd++;
      const progress = (event) => {
        try {
          onProgress?.(event);
        } catch {
          // A throwing progress callback must not break the protocol.
        }
      };
      adds.set(id, progress);
      const onAbort = () => rpc.call("inpage.abort", id).catch(() => {});
      signal?.addEventListener?.("abort", onAbort);
      try {
        // An already aborted signal still reaches the worker before its first document.
        const p = rpc.call("inpage.add", addInputs(inputs), { id });
        if (signal?.aborted) onAbort();
        return update(await p);
      } finally {
        signal?.removeEventListener?.("abort", onAbort);
        adds.delete(id);
      }
    },
    remove: async (ids) => update(await rpc.call("inpage.remove", ids)),
    export: () => rpc.call("inpage.export"),
    import: async (bytes) => update(await rpc.call("inpage.import", bytes)),
    clear: async () => update(await rpc.call("inpage.clear")),
    memory: () => rpc.call("memory"),
    /** Test hook, NOT public API (may change without notice). @internal */
    debug: {
      tokenize: (text) => rpc.call("debug.tokenize", text),
      embed: (text) => rpc.call("debug.embed", text),
      files: () => rpc.call("debug.files"),
      kept: () => rpc.call("debug.kept"),
      sizes: () => rpc.call("debug.sizes"),
    },
    async close() {
      if (closed) return;
      closed = true;
      await rpc.call("close").catch(() => {});
      rpc.close();
    },
  };
}
