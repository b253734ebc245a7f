// websem: public ES module of a search bundle (copied to BUNDLE/websem.js by `websem build`).
//
//   import { load } from "./websem.js";
//   const engine = await load(new URL("./", import.meta.url));
//   const hits = await engine.search("query text", { k: 10 });  // [{id, score, title, url, snippet, highlights}]
//   // mode: "hybrid" (default) | "semantic" | "lexical"; filters: {section: "x", tags: ["a", "b"]}
//   const { hits, facets } = await engine.searchFull("query", { mode: "lexical", filters: { section: "x" } });
//
// In a browser the work runs in a module Web Worker (runtime/worker.js); elsewhere (Node, Deno,
// edge workers without `Worker`) the engine runs in-process (runtime/engine.js).

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
 * @returns {Promise<{search(query: string, opts?: {k?: number, mode?: string, filters?: object}): Promise<object[]>,
 *   searchFull(query: string, opts?: object): Promise<{hits: object[], facets: object, mode: string}>,
 *   info: object, close(): Promise<void>}>}
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
  const out = { k: opts?.k ?? 10 };
  if (opts?.mode != null) out.mode = opts.mode;
  if (opts?.filters != null) out.filters = opts.filters;
  return out;
}

function loadInWorker(bundleUrl, options) {
  const workerUrl = new URL("worker.js", RUNTIME).href;
  const worker = new Worker(workerUrl, { type: "module", name: "websem" });
  const pending = new Map();
  let nextId = 1;
  let closed = false;

  function call(method, ...args) {
    if (closed) return Promise.reject(new Error("websem: this engine was closed; call load() again"));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ type: "call", id, method, args });
    });
  }

  return new Promise((resolve, reject) => {
    worker.onerror = (event) => {
      event.preventDefault?.();
      const err = new Error(
        `websem: the search worker ${workerUrl} failed to start (${event.message || "load error"}); ` +
          "serve the complete bundle folder (runtime/ included), e.g. with `websem serve BUNDLE`",
      );
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      reject(err);
    };
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") {
        try {
          options.onProgress?.(data.event);
        } catch {
          // A throwing progress callback must not break loading.
        }
      } else if (data.type === "ready") {
        resolve({
          info: data.info,
          search: (query, opts = {}) => call("search", query, searchOptions(opts)),
          searchFull: (query, opts = {}) => call("searchFull", query, searchOptions(opts)),
          /** Test hook, NOT public API (may change without notice). @internal */
          debug: {
            tokenize: (text) => call("debug.tokenize", text),
            embed: (text) => call("debug.embed", text),
          },
          async close() {
            if (closed) return;
            await call("close").catch(() => {});
            closed = true;
            worker.terminate();
          },
        });
      } else if (data.type === "result" || data.type === "error") {
        if (data.id == null) {
          worker.terminate();
          reject(new Error(data.message));
          return;
        }
        const p = pending.get(data.id);
        pending.delete(data.id);
        if (data.type === "result") p?.resolve(data.value);
        else p?.reject(new Error(data.message));
      }
    };
    const { threads, sessionOptions, dropBytes, snapshot } = options;
    worker.postMessage({ type: "init", bundleUrl, options: { threads, sessionOptions, dropBytes, snapshot } });
  });
}
