// websem engine: the platform-neutral core of the runtime: wiring, option checks, the query queue.
//
// Runs wherever ES modules, WebAssembly, fetch and crypto.subtle exist: a Web Worker (worker.js),
// the main thread, Node 20, Deno, Cloudflare Workers. It loads one bundle (bundle.js: every file
// verified against manifest.json before use; a flat index whole, a partitioned one's shards on
// demand, partitioned.js + shards.js), tokenizes queries in Pyodide with the shipped
// stdlib package `websem_text` (python.js), embeds them with onnxruntime-web (model.js) and ranks
// exactly like the CPU reference `websem query` (search.js; docs/architecture.md "Search
// semantics").
import { VerifiedFiles, asBundleBase, indexPaths, loadIndex, readManifest } from "./bundle.js";
import { WebsemError, cspError } from "./errors.js";
import { embedder, loadSession } from "./model.js";
import { openPartitioned, partitionedPaths } from "./partitioned.js";
import { startPython } from "./python.js";
import { createSearch, resolveMode, setupRanker } from "./search.js";
import { checkCacheBytes } from "./shards.js";

export { WebsemError };

/**
 * Load a bundle and return a search engine.
 *
 * @param {string|URL} bundleUrl URL of the bundle folder (the one holding manifest.json).
 * @param {object} [opts]
 * @param {typeof fetch} [opts.fetch] fetch implementation (Node: one that reads file: URLs).
 * @param {number} [opts.threads] ORT threads; used only when crossOriginIsolated. Default 1.
 * @param {(event: object) => void} [opts.onProgress] progress events ({stage, ...}).
 * @param {object} [opts.ortModule] the namespace of the bundle's ORT module
 *   (manifest.runtime.vendor.ort.module), statically imported, for runtimes that forbid
 *   `import(url)` (Cloudflare Workers).
 * @param {WebAssembly.Module|ArrayBuffer|Uint8Array} [opts.ortWasmModule] ORT's wasm, precompiled
 *   (a module import on Workers) or as bytes, instead of the bundle's.
 * @param {string|object} [opts.ortWasmPaths] onnxruntime-web `env.wasm.wasmPaths` (default: the
 *   bundle's ORT folder); on Workers `{mjs: "./ort-wasm-simd-threaded.mjs"}`.
 * @param {object} [opts.pyodideModule] the namespace of pyodide.mjs, statically imported (Workers).
 * @param {object|Function} [opts.pyodideAsmModule] pyodide.asm.mjs (its namespace or default
 *   export), statically imported (Workers).
 * @param {WebAssembly.Module} [opts.pyodideWasmModule] pyodide.asm.wasm, precompiled (Workers).
 *   With any pyodide* option Pyodide runs in this thread.
 * @param {object} [opts.sessionOptions] extra onnxruntime-web InferenceSession options (override ours).
 * @param {boolean} [opts.externalWeights] hand ORT the model's weights as external data, so its
 *   wasm heap holds them once (default true; false loads the model bytes as they are, more memory).
 * @param {boolean} [opts.dropBytes] free the verified download buffers once loaded (default true).
 * @param {boolean} [opts.snapshot] restore the bundle's Pyodide memory snapshot when it has one
 *   (default true; false boots Pyodide from scratch, same results, slower).
 * @param {boolean} [opts.pythonWorker] run Pyodide in a nested module worker (default: whenever
 *   `Worker` exists), so it boots in parallel with the ORT session.
 * @param {number} [opts.cacheBytes] partitioned bundles: the byte budget of the shard cache
 *   (default 64 MiB; shards.js).
 * @returns {Promise<{search: Function, searchFull: Function, info: object, memory: Function, close: Function}>}
 */
export async function createEngine(bundleUrl, opts = {}) {
  const started = now();
  const base = asBundleBase(bundleUrl);
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const cacheBytes = checkCacheBytes(opts.cacheBytes);
  const timings = {};
  const onProgress = (event) => {
    // Events from the Python worker carry their own wall-clock time (`at`): this thread may be
    // busy (ORT session creation) when they arrive.
    const ms = (event.at != null && globalThis.performance ? event.at - performance.timeOrigin : now()) - started;
    // info.timings: when each milestone and each verified file arrived (ms since load started).
    timings[event.stage === "verified" ? `verified ${event.file}` : event.stage] = Math.round(ms);
    try {
      opts.onProgress?.({ ...event, ms });
    } catch {
      // A throwing progress callback must not break loading.
    }
  };
  const manifest = await readManifest(fetchFn, base);
  onProgress({ stage: "manifest" });
  const files = new VerifiedFiles(base, manifest, fetchFn, onProgress);

  // Everything at once: the loaders share the verified-file cache, and each awaits only what it
  // needs, so Pyodide boots while the model and index download and ORT compiles.
  const pythonP = startPython(files, manifest, base, onProgress, opts);
  const sessionP = loadSession(files, manifest, opts, onProgress);
  const partitioned = manifest.index.layout === "partitioned";
  const indexP = partitioned ? openPartitioned(files, manifest, { cacheBytes }) : loadIndex(files, manifest);
  const lexicalP = setupRanker(pythonP, files, manifest, onProgress, indexP);
  // Avoid unhandled-rejection noise from the losers when one part fails first.
  for (const p of [pythonP, sessionP, indexP, lexicalP]) p.catch(() => {});
  let python;
  let model;
  let index;
  let lexical;
  try {
    [python, model, index, lexical] = await Promise.all([pythonP, sessionP, indexP, lexicalP]);
  } catch (e) {
    // Stop what did start (a nested worker would otherwise live on).
    pythonP.then((p) => p.close(), () => {});
    sessionP.then((s) => s.session.release(), () => {});
    throw cspError(e) ?? e;
  }
  if (opts.dropBytes !== false) {
    // Everything is loaded (ORT and Pyodide copied what they need into their wasm heaps), so free
    // the verified downloads, ~40 MB on the default model. Detached rather than merely dropped:
    // after a snapshot boot little garbage is made, so the GC may not run for a long time
    // (renderer RSS stayed ~70 MB higher). The index files stay: int8 vectors and the lexical
    // postings (flat), the centroids and the document map (partitioned) are views of the
    // downloaded bytes.
    files.release(partitioned ? partitionedPaths(manifest) : indexPaths(manifest));
  }
  onProgress({ stage: "ready" });

  const { session, memory: ortMemory } = model;
  const runModel = embedder(model);
  const embed = async (text) => {
    const [ids, mask, types] = await python.encode(text);
    return runModel(ids, mask, types);
  };
  const run = createSearch({ python, index, lexical, embed, search: manifest.search });
  const modes = manifest.search.modes.slice();
  let queue = Promise.resolve();

  // One query at a time: an ORT session must not run concurrently with itself, and Pyodide's
  // ranker holds one query's state.
  function serial(fn) {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  }

  /** Hits and facet counts of one query (search options as in `search`). */
  function searchFull(query, options = {}) {
    const k = options?.k ?? manifest.search.k;
    if (typeof query !== "string") {
      return Promise.reject(new WebsemError(`query must be a string, got ${typeof query}`));
    }
    if (!Number.isInteger(k) || k < 1) {
      return Promise.reject(new WebsemError(`k must be a positive integer, got ${JSON.stringify(k)}`));
    }
    let mode;
    try {
      mode = resolveMode(options?.mode, modes);
    } catch (e) {
      return Promise.reject(e);
    }
    return serial(() => run(query, { k, mode, filters: options?.filters }));
  }

  const info = {
    bundle: base,
    format_version: manifest.format_version,
    model: manifest.model,
    index: {
      docs: partitioned ? index.nDocs : index.docs.length,
      chunks: index.n,
      dims: index.dims,
      vector_dtype: manifest.index.vector_dtype,
      layout: partitioned ? "partitioned" : "flat",
      // Partitioned: the IVF lists and how many a query probes.
      ...(partitioned ? { ivf: { nlist: index.nlist, nprobe: index.nprobe } } : {}),
    },
    // The bundle's query-time rules (modes, k, n, snippet_chars, facets, fusion).
    search: manifest.search,
    // Search modes this bundle supports: the first is the default.
    modes,
    threads: model.ort.env.wasm.numThreads,
    // Whether Pyodide was restored from the bundle's memory snapshot (false: booted from scratch).
    pyodide_snapshot: python.snapshot === true,
    load_ms: now() - started,
    timings,
  };

  return {
    info,
    /**
     * @param {string} query
     * @param {{k?: number, mode?: string, filters?: Object<string, string|string[]>}} [options]
     *   k defaults to manifest.search.k, mode to info.modes[0].
     * @returns {Promise<Array<{id: string, score: number, title: string, url: string, snippet: string,
     *   highlights: number[][]}>>} highlights: [start, end) UTF-16 ranges into snippet
     */
    search(query, options = {}) {
      return searchFull(query, options).then((r) => r.hits);
    },
    /** Like search, plus facet counts: `{hits, facets: {field: [[value, count], ...]}, mode}`. */
    searchFull,
    /**
     * Sizes of the two wasm linear memories now, and of this thread's JS heap where the runtime
     * tells (Node, Deno, Chromium; not Workers), in bytes, null where unknown. An edge isolate's
     * memory limit counts the JS heap plus wasm memory; a wasm memory never shrinks. Also what
     * a partitioned bundle's shard cache holds (part of the JS heap; 0 for a flat bundle).
     * @returns {Promise<{pyodide_wasm_bytes: number|null, ort_wasm_bytes: number|null, js_heap_bytes: number|null,
     *   shard_cache_bytes: number}>}
     */
    async memory() {
      return {
        pyodide_wasm_bytes: (await python.memoryBytes()) ?? null,
        ort_wasm_bytes: ortMemory?.buffer.byteLength ?? null,
        js_heap_bytes: jsHeapBytes(),
        shard_cache_bytes: partitioned ? index.cache.stats().bytes : 0,
      };
    },
    /**
     * Test hook, NOT public API (may change without notice): raw token ids and query embeddings.
     * @internal
     */
    debug: {
      tokenize: async (text) => Array.from((await python.encode(text))[0], Number),
      embed: (text) => serial(async () => Array.from(await embed(text))),
      // Partitioned bundles: the shard cache's {bytes, files, hits, misses, fetched_bytes}.
      shardStats: () => (partitioned ? index.cache.stats() : null),
    },
    async close() {
      await queue;
      python.close();
      await session.release();
    },
  };
}

function jsHeapBytes() {
  try {
    const usage = globalThis.Deno?.memoryUsage?.() ?? globalThis.process?.memoryUsage?.();
    return usage?.heapTotal ?? globalThis.performance?.memory?.totalJSHeapSize ?? null;
  } catch {
    return null; // e.g. Deno without --allow-sys, or a Workers process stub
  }
}

function now() {
  return globalThis.performance?.now() ?? Date.now();
}
