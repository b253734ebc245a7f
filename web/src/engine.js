// websem engine: the platform-neutral core of the runtime: wiring, option checks, the query queue.
//
// Runs wherever ES modules, WebAssembly, fetch and crypto.subtle exist: a Web Worker (worker.js),
// the main thread, Node 20, Deno, Cloudflare Workers. It loads one bundle (bundle.js: every file
// verified against manifest.json before use; a flat index whole, a partitioned one's shards on
// demand, partitioned.js + shards.js), tokenizes queries in Pyodide with the shipped stdlib
// package `websem_text` (python.js), embeds them with onnxruntime-web (model.js) and ranks
// exactly like the CPU reference `websem query` (search.js; docs/architecture.md "Search
// semantics"): a flat bundle in JS (lexical-tier.js createFlatRanker, fusion.js), so Pyodide's
// part in its queries is the WordPiece tokenization; a partitioned bundle with Pyodide's ranker
// (websem_text.bridge plan/rank/render).
//
// Two tiers (docs/architecture.md, "Tiers"): the lexical tier (lexical-tier.js: the analyzer's
// JS twin, BM25, filters, facets and snippets in plain JS over chunks.json, docs.json and
// lexical.bin, or a partitioned bundle's always-loaded files and per-query shards) answers as
// soon as those files are verified, so `load()` resolves long before Pyodide and the model; the
// full tier (Pyodide + onnxruntime-web) starts downloading right after and `engine.ready`
// resolves when it is up. A flat bundle's full tier ranks with the lexical tier's ranker (the
// same parsed files, analyzer and filter values, held once). Until then a hybrid query answers
// with the lexical ranking (`tier: "lexical"`), a lexical one with its own full answer, a
// semantic one waits for the model. `progressive: false` loads everything before `load()`
// resolves.
import { VerifiedFiles, asBundleBase, indexPaths, loadIndex, readManifest } from "./bundle.js";
import { denseDocs } from "./dense.js";
import { WebsemError, cspError } from "./errors.js";
import { openLexical } from "./lexical.js";
import { createLexicalTier, createPartitionedLexicalTier, fullTierTable, lexicalTierTable } from "./lexical-tier.js";
import { embedder, loadSession } from "./model.js";
import { openPartitioned, partitionedPaths } from "./partitioned.js";
import { preparePython } from "./python.js";
import { createSearch, normalizeFilters, resolveMode, setupRanker } from "./search.js";
import { checkCacheBytes } from "./shards.js";

export { WebsemError };

const WORD_ROWS = ["fill", "on-demand"];
// How many queries asked while the full tier loads are prepared ahead of it (createEngine `early`):
// the component asks one per keystroke; the last few are the ones it re-runs.
const EARLY_QUERIES = 4;

/** `opts.wordRows` as given (undefined: "fill"), or a WebsemError naming the bad value. */
function checkWordRows(value) {
  if (value == null) return "fill";
  if (!WORD_ROWS.includes(value)) {
    throw new WebsemError(`wordRows must be one of ${WORD_ROWS.map((v) => JSON.stringify(v)).join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value;
}

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
 *   (default 16 MiB; shards.js).
 * @param {"fill"|"on-demand"} [opts.wordRows] split model: "fill" (default) reads the rest of the
 *   word-embedding rows in the background after the first semantic or hybrid answer, so later
 *   queries never wait on the network for them; "on-demand" reads only the rows queries use.
 * @returns {Promise<{search: Function, searchFull: Function, info: object, memory: Function, close: Function}>}
 */
export async function createEngine(bundleUrl, opts = {}) {
  const started = now();
  const base = asBundleBase(bundleUrl);
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const cacheBytes = checkCacheBytes(opts.cacheBytes);
  const wordRows = checkWordRows(opts.wordRows);
  const timings = {};
  const onProgress = (event) => {
    // Events from the Python worker carry their own wall-clock time (`at`): this thread may be
    // busy (ORT session creation) when they arrive.
    const ms = (event.at != null && globalThis.performance ? event.at - performance.timeOrigin : now()) - started;
    // info.timings: when each milestone and each verified file arrived (ms since load started).
    if (event.stage !== "bytes") timings[event.stage === "verified" ? `verified ${event.file}` : event.stage] = Math.round(ms);
    try {
      opts.onProgress?.({ ...event, ms });
    } catch {
      // A throwing progress callback must not break loading.
    }
  };
  const manifest = await readManifest(fetchFn, base);
  onProgress({ stage: "manifest" });
  const files = new VerifiedFiles(base, manifest, fetchFn, onProgress, opts);
  // Pyodide's nested worker starts now (its thread and one module), its downloads with loadFull.
  const startPython = preparePython(files, manifest, base, onProgress, opts);
  const partitioned = manifest.index.layout === "partitioned";
  const paths = manifest.index.files;
  const lexicalP = partitioned ? null : files.bytes(paths.lexical).then((b) => openLexical(b, manifest.index.chunks));
  // A partitioned index's always-loaded files: both tiers read the same index (and shard cache).
  const partitionedP = partitioned ? openPartitioned(files, manifest, { cacheBytes }) : null;
  for (const p of [lexicalP, partitionedP]) p?.catch(() => {});
  let pindex = null;
  partitionedP?.then((ix) => {
    pindex = ix;
  }, () => {});

  // The lexical tier first: its three files are fetched before anything else (on a slow link
  // they must not queue behind 40 MB of model and Pyodide), then the full tier's downloads start.
  // (A partitioned bundle: table.json, centroids and docmap; shards and fragments per query.)
  // Starting the full tier together with these files was measured on loopback: the first hybrid
  // result came sooner (cold start 0.84x and 0.97x of this order's in two alternated 5-round
  // runs), the first lexical result later (bench/progressive.py: 938 ms, against 538 ms in its
  // run with this order: the full tier's compiles and downloads compete with it), so the first
  // answer keeps the link and the cores to itself.
  const tierTable = opts.progressive === false ? null : lexicalTierTable(manifest);
  let tier = null;
  if (tierTable) {
    try {
      if (partitioned) {
        tier = createPartitionedLexicalTier({ index: await partitionedP, search: tierTable });
      } else {
        const [chunks, docs, lexical] = await Promise.all([files.json(paths.chunks), files.json(paths.docs), lexicalP]);
        // With the whole table (fusion included) the full tier ranks with this tier's ranker.
        const search = fullTierTable(manifest) ?? tierTable;
        tier = createLexicalTier({ chunks, docs, lexical, chunkDoc: chunks.map((c) => c.doc), search });
      }
      onProgress({ stage: "lexical-ready" });
    } catch {
      // Not answerable early (a file or the analyzer config refused): load() waits for the full
      // tier, whose loaders report the same file with their own error if it is really broken.
      tier = null;
    }
  }

  let full = null; // the full tier once up: {python, session, ortMemory, index, run, embed, ...}
  // Queries asked while the full tier loads (hybrid answered by the lexical tier, semantic
  // waiting): the latest EARLY_QUERIES texts -> their token ids, asked of Pyodide as soon as it is
  // up, their word rows read as soon as the ids and the rows' hash list are in. ORT may still be
  // creating its session (or Pyodide still booting while ORT is ready): the full tier's first
  // answer then starts at the model run, not with the tokenizer and ~15 byte-range reads
  // (~150 ms of a cold first query on loopback, more on a real link). What is never used is a
  // few small arrays and rows the query would have read anyway.
  // `pythonUp`: Pyodide is up. With a query waiting too, ORT's first run is that query's as soon
  // as the session exists, not a stand-in's (model.js skipWarmUp).
  const early = { texts: new Map(), python: null, pythonUp: false, rows: null, held: null };
  let fullError = null;
  let queue = Promise.resolve();
  let closed = false;
  const info = {
    bundle: base,
    format_version: manifest.format_version,
    model: manifest.model,
    index: {
      docs: tier ? tier.nDocs : null,
      chunks: manifest.index.chunks ?? null,
      dims: manifest.index.dims,
      vector_dtype: manifest.index.vector_dtype,
      layout: partitioned ? "partitioned" : "flat",
      // Partitioned: the IVF lists, how many a query probes, the code scored and the rows reranked.
      ...(pindex ? { ivf: { nlist: pindex.nlist, nprobe: pindex.nprobe, code: pindex.code, rerank: pindex.rerank } } : {}),
    },
    // The bundle's query-time rules (modes, k, n, snippet_chars, facets, fusion).
    search: manifest.search,
    // Search modes this bundle supports: the first is the default.
    modes: manifest.search.modes.slice(),
    // "lexical" until the full tier is up (engine.ready), then "full".
    tier: "lexical",
    // ORT's threads and whether Pyodide came from the memory snapshot: null until the full tier.
    threads: null,
    pyodide_snapshot: null,
    // Milliseconds from the start of load() until it resolved, and until the full tier was up.
    load_ms: null,
    ready_ms: null,
    timings,
  };
  const fullP = loadFull().then((f) => {
    full = f;
    tier = null; // the full tier answers every mode now (a flat bundle's with the tier's ranker)
    files.parsed.clear(); // the parsed JSON lives on in the full tier, not in the download cache
    Object.assign(info, { tier: "full", threads: f.threads, pyodide_snapshot: f.snapshot, ready_ms: now() - started });
    Object.assign(info.index, {
      docs: partitioned ? f.index.nDocs : f.index.docs.length,
      chunks: f.index.n,
      dims: f.index.dims,
      // Partitioned: the IVF lists, how many a query probes, the code scored and the rows reranked.
      ...(partitioned ? { ivf: { nlist: f.index.nlist, nprobe: f.index.nprobe, code: f.index.code, rerank: f.index.rerank } } : {}),
    });
    return f;
  });
  fullP.catch((e) => {
    fullError = e;
  });
  if (!tier) await fullP;
  info.load_ms = now() - started;

  /** Everything else: Pyodide (tokenizer; a partitioned bundle's ranker), the ORT session, the dense index. */
  async function loadFull() {
    // Everything at once: the loaders share the verified-file cache, and each awaits only what it
    // needs, so Pyodide boots while the model and index download and ORT compiles.
    const pythonP = startPython();
    const sessionP = loadSession(files, manifest, opts, onProgress, {
      onRows: (rowsP) => {
        early.rows = rowsP;
        rowsP.then((rows) => (early.held = rows), () => {});
      },
      skipWarmUp: () => early.pythonUp && early.texts.size > 0,
    });
    early.python = pythonP;
    pythonP.then(() => (early.pythonUp = true), () => {});
    const indexP = partitioned ? partitionedP : loadIndex(files, manifest);
    // A flat bundle's full tier reuses the lexical tier's ranker (parsed files, analyzer, filter values).
    const rankerP = setupRanker(pythonP, files, manifest, onProgress, indexP, lexicalP, tier?.ranker ?? null);
    // Avoid unhandled-rejection noise from the losers when one part fails first.
    for (const p of [pythonP, sessionP, indexP, rankerP]) p.catch(() => {});
    // The dense scorer's first call runs its loops unoptimised until V8 optimises them mid-loop
    // (~60 ms of the first query on Cranfield in Chromium). Scored once with a zero query after
    // ORT's warm-up run (model.js), while Pyodide still boots, the first real query finds
    // them optimised. The result is dropped; a flat index only (a partitioned one scores
    // the shards a query reads).
    if (!partitioned) {
      Promise.all([indexP, sessionP.then((m) => m.warm)])
        .then(([index]) => denseDocs(index, new Float32Array(index.dims), 1))
        .catch(() => {});
    }
    let python;
    let model;
    let index;
    let ranked;
    try {
      [python, model, index, ranked] = await Promise.all([pythonP, sessionP, indexP, rankerP]);
    } catch (e) {
      // Stop what did start (a nested worker would otherwise live on).
      pythonP.then((p) => p.close(), () => {});
      sessionP.then((s) => s.session.release(), () => {});
      throw cspError(e) ?? e;
    }
    if (closed) {
      python.close();
      await model.session.release();
      throw new WebsemError("this engine was closed; call load() again");
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
    const runModel = embedder(model);
    // The background read of a split model's remaining word rows (WordRows.fill), once started.
    let fill = model.rows === null || wordRows === "on-demand" ? Promise.resolve() : null;
    const embed = async (text) => {
      // A query asked while loading was tokenized then (prepareEarly).
      const prepared = early.texts.get(text);
      early.texts.delete(text);
      const [ids, mask, types] = await (prepared ?? python.encode(text));
      const vector = await runModel(ids, mask, types);
      if (fill === null) {
        // After the first answer, not before: the fill's 11.8 MB must not delay the first result.
        // Started from a task of its own, once the query that embedded has ranked and answered
        // (the rest of it runs in this task's microtasks): the first segment's request must not
        // race that answer. A block the fill fails to read is read again by the query that needs
        // it (and fails that query, naming the file and block), so its own failure ends the fill
        // quietly.
        fill = new Promise((resolve) => setTimeout(resolve, 0)).then(() => model.rows.fill()).catch(() => {});
      }
      return vector;
    };
    return {
      python,
      session: model.session,
      ortMemory: model.memory,
      // A split model's word rows (model.js WordRows), read per query; null for a whole model.
      rows: model.rows,
      // Settles when the background fill of the word rows is over (at once when there is none).
      rowsFilled: () => fill ?? Promise.resolve(),
      // Model runs started so far, the warm-up's included (engine.debug.modelRuns).
      runs: () => model.runs,
      index,
      embed,
      run: createSearch({ python, index, lexical: ranked.lexical, ranker: ranked.ranker, embed, search: manifest.search }),
      threads: model.ort.env.wasm.numThreads,
      snapshot: python.snapshot === true,
    };
  }

  const modes = info.modes;

  // One query at a time: an ORT session must not run concurrently with itself, and Pyodide's
  // ranker, where it ranks (partitioned bundles), holds one query's state.
  function serial(fn) {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  }

  /** Tokenize `text` (and read its word rows) ahead of the full tier: see `early`. */
  function prepareEarly(text) {
    // loadFull has started Pyodide by now: createEngine returns (and takes queries) only after.
    if (full || closed || !early.python || early.texts.has(text)) return;
    const encoded = early.python.then((python) => python.encode(text));
    encoded.catch(() => {}); // the query that uses it reports its error
    early.texts.set(text, encoded);
    while (early.texts.size > EARLY_QUERIES) early.texts.delete(early.texts.keys().next().value);
    Promise.all([encoded, early.rows])
      .then(([[ids], rows]) => rows?.embeddings(ids))
      .catch(() => {}); // a failing block fails the query that needs it, with its message
  }

  /** The full tier, or its load error / a closed engine's error. */
  function needFull() {
    if (closed) return Promise.reject(new WebsemError("this engine was closed; call load() again"));
    return fullP;
  }

  /** One query by the full tier, or the lexical tier before it is up (never semantic: runs inside `serial`). */
  async function runNow(query, k, mode, filters) {
    if (full) return { ...(await full.run(query, { k, mode, filters })), tier: "full" };
    const res = await tier.search(query, { k, filters: normalizeFilters(filters) });
    // Lexical mode: the full answer. Hybrid: the lexical ranking standing in for it.
    return { hits: res.hits, facets: res.facets, mode, tier: mode === "lexical" ? "full" : "lexical" };
  }

  /** Hits and facet counts of one query (search options as in `search`). */
  function searchFull(query, options = {}) {
    const k = options?.k ?? manifest.search.k;
    if (closed) return Promise.reject(new WebsemError("this engine was closed; call load() again"));
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
    const wait = options?.wait;
    if (wait != null && typeof wait !== "boolean") {
      return Promise.reject(new WebsemError(`wait must be true or false, got ${JSON.stringify(wait)}`));
    }
    if (!full && mode !== "lexical") {
      prepareEarly(query);
      // Semantic waits for the model unless told not to; hybrid answers lexically unless told to
      // wait. Waiting happens outside the queue, so lexical answers are not held up meanwhile.
      if (wait ?? mode === "semantic") return needFull().then(() => searchFull(query, { ...options, wait: undefined }));
      if (mode === "semantic") {
        return Promise.reject(fullError ?? new WebsemError(
          "semantic search needs the model, which is still loading; await engine.ready, search with " +
            '{wait: true} (the default for semantic), or use mode "lexical" or "hybrid"',
        ));
      }
    }
    return serial(() => runNow(query, k, mode, options?.filters));
  }

  // `ready` may never be awaited: its rejection is reported where it is used, not as unhandled.
  const ready = fullP.then(() => undefined);
  ready.catch(() => {});

  return {
    info,
    /** Resolves when the full tier (Pyodide + the model) is up; rejects with its load error. */
    ready,
    /**
     * @param {string} query
     * @param {{k?: number, mode?: string, filters?: Object<string, string|string[]>, wait?: boolean}} [options]
     *   k defaults to manifest.search.k, mode to info.modes[0]; wait: wait for the full tier
     *   (default true for semantic, false for hybrid, which answers lexically until then)
     * @returns {Promise<Array<{id: string, score: number, title: string, url: string, snippet: string,
     *   highlights: number[][]}>>} highlights: [start, end) UTF-16 ranges into snippet
     */
    search(query, options = {}) {
      return searchFull(query, options).then((r) => r.hits);
    },
    /** Like search, plus facet counts: `{hits, facets: {field: [[value, count], ...]}, mode, tier}`. */
    searchFull,
    /**
     * Sizes of the two wasm linear memories now, and of this thread's JS heap where the runtime
     * tells (Node, Deno, Chromium; not Workers), in bytes, null where unknown (a wasm runtime not
     * loaded yet). An edge isolate's memory limit counts the JS heap plus wasm memory; a wasm
     * memory never shrinks. Also what a partitioned bundle's shard cache holds (part of the JS
     * heap; 0 for a flat bundle).
     * @returns {Promise<{pyodide_wasm_bytes: number|null, ort_wasm_bytes: number|null, js_heap_bytes: number|null,
     *   shard_cache_bytes: number}>}
     */
    async memory() {
      return {
        pyodide_wasm_bytes: full ? (await full.python.memoryBytes()) ?? null : null,
        ort_wasm_bytes: full?.ortMemory?.buffer.byteLength ?? null,
        js_heap_bytes: jsHeapBytes(),
        shard_cache_bytes: pindex ? pindex.cache.stats().bytes : 0,
      };
    },
    /**
     * Test hook, NOT public API (may change without notice): raw token ids and query embeddings.
     * @internal
     */
    debug: {
      tokenize: async (text) => Array.from((await (await needFull()).python.encode(text))[0], Number),
      embed: async (text) => {
        const f = await needFull();
        return serial(async () => Array.from(await f.embed(text)));
      },
      // Partitioned bundles: the shard cache's {bytes, files, hits, misses, fetched_bytes}.
      shardStats: () => (pindex ? pindex.cache.stats() : null),
      // Split model: the word rows' cache {bytes, files, hits, misses, fetched_bytes, range_requests}.
      // (Readable as soon as the rows' hash list is in, while the rest still loads.)
      wordRowsStats: () => (full?.rows ?? early.held)?.stats() ?? null,
      // Split model: settles when the background fill of the word rows is over.
      wordRowsFilled: () => full?.rowsFilled() ?? Promise.resolve(),
      // Model runs started once the full tier is up (null before): 1 at `ready` means ORT's warm-up
      // ran, 0 that a query asked while loading runs first (model.js skipWarmUp).
      modelRuns: () => full?.runs() ?? null,
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      if (full) {
        full.python.close();
        await full.session.release();
      }
      // Still loading: loadFull stops the runtimes as soon as they are up.
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
