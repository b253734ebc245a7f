// websem in-page index engine: indexes documents and files inside the page (in the Web Worker of
// inpage.js, or in-process) with the same code as `websem build`, and searches them with the same
// code as a bundle.
//
// Per document: websem_text.bridge.inpage_prepare (Pyodide: the build's decoding rules,
// extraction, chunking and tokenization; in Pyodide's own worker, so the next document is prepared
// while this one's chunks are embedded) -> each chunk embedded by onnxruntime-web at batch 1,
// exactly as a query is (model.js) -> bridge.inpage_add, which returns the rows in the index's
// dtype (float16 rounded like numpy). This worker holds those rows, once: per document until the
// next reload, then as views of the one index/vectors.bin dense.js scores; Pyodide keeps no copy
// and reads them back a slice at a time for the files and the export (bridge.inpage_files /
// inpage_export). After a batch, bridge.inpage_search() gives the BM25 index `websem build` would
// write for these documents and the documents' order, and sets the ranker up over the rows Pyodide
// holds; the flat-index code every bundle uses (lexical.js, dense.js, search.js) searches them: the
// ranking is the bundle's. Each document's text is held once, in Pyodide (zlib-compressed). The
// index's export archive is saved to this browser's storage (inpage-store.js) after every change
// and restored on open. Nothing is sent anywhere: the only requests are the bundle's runtime and
// model files.
import { VerifiedFiles, asBundleBase, readManifest } from "./bundle.js";
import { WebsemError, cspError, errorMessage } from "./errors.js";
import { asBytes, layoutVectors, modelInputs, packVectors, searchIndex, toPrepareInput } from "./inpage-data.js";
import { checkName, chooseBackend, openStore } from "./inpage-store.js";
import { openLexical } from "./lexical.js";
import { embedder, loadSession } from "./model.js";
import { startPython } from "./python.js";
import { createSearch, resolveMode } from "./search.js";

export { WebsemError };

/** Rows of index/chunks.json per bridge call when the export is assembled (~250 KB of text). */
const EXPORT_ROWS = 256;

/**
 * Open an in-page index over a bundle's model and runtime (see inpage.js createIndex for the
 * options; here also `fetch` and the in-process options of engine.js createEngine).
 */
export async function createInpageEngine(bundleUrl, opts = {}) {
  const started = now();
  const base = asBundleBase(bundleUrl);
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const backend = chooseBackend(opts.persist);
  const storeName = checkName(opts.name ?? "default");
  const timings = {};
  const onProgress = (event) => {
    const ms = (event.at != null && globalThis.performance ? event.at - performance.timeOrigin : now()) - started;
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
  const pythonP = startPython(files, manifest, base, onProgress, opts);
  const sessionP = loadSession(files, manifest, opts, onProgress);
  const storeP = openStore(backend, storeName);
  // The extraction packages (bs4, markdown-it, ...) the in-page reader imports for .html and .md
  // files, fetched and verified now, with the rest of the runtime: after ready nothing is fetched.
  const extractP = Promise.all((manifest.runtime.extract_python_files ?? []).map((p) => files.bytes(p).then((b) => [p, b])));
  // A split model's word rows, all of them, now: indexing embeds whole documents, whose ids
  // reach most of the table (read per document, 1,000 documents made ~2,200 range requests), and
  // after ready this page fetches nothing.
  const rowsP = sessionP.then((m) => m.rows?.fill());
  for (const p of [pythonP, sessionP, storeP, extractP, rowsP]) p.catch(() => {});
  let python;
  let model;
  let store;
  // Each committed document's rows (Uint8Array, the index's dtype), in the order Pyodide holds
  // the documents, and index/vectors.bin of the documents searched (views of it are the map's
  // values after each reload): the only copy of the vectors.
  const rows = new Map();
  let vectorsBin = new Uint8Array(0);
  let laidOut = true; // false from a change of the documents to the layout after it
  /** index/vectors.bin of the documents now committed (an export between the documents of a long add lays them out). */
  async function currentVectors() {
    if (!laidOut) {
      vectorsBin = layoutVectors(JSON.parse(await python.inpage("inpage_doc_ids", [])), rows, 0);
      laidOut = true;
    }
    return vectorsBin;
  }
  /**
   * The index's export archive (what bridge.inpage_export gives), assembled here: Pyodide gives
   * its headers and small files (inpage_export_parts) and index/chunks.json a few hundred rows
   * per call (inpage_chunks_json); the vectors are this worker's. So neither the archive nor
   * chunks.json nor the vectors are ever held whole in Pyodide's heap, which never shrinks.
   */
  async function exportArchive() {
    const vectors = await currentVectors();
    const plan = await python.inpage("inpage_export_parts", [vectors]);
    const out = new Uint8Array(plan.size);
    for (const [at, what, size] of plan.parts) {
      if (what instanceof Uint8Array) {
        out.set(what, at);
      } else if (what === "index/vectors.bin" && size === vectors.byteLength) {
        out.set(vectors, at);
      } else if (what === "index/chunks.json") {
        let written = 0;
        for (let row = 0; written < size; row += EXPORT_ROWS) {
          const piece = await python.inpage("inpage_chunks_json", [row, row + EXPORT_ROWS]);
          if (!piece.byteLength || written + piece.byteLength > size) break;
          out.set(piece, at + written);
          written += piece.byteLength;
        }
        if (written !== size) throw new WebsemError("index/chunks.json changed while the index was exported; export it again");
      } else {
        throw new WebsemError(`the in-page index's export has a part ${JSON.stringify(what)} of ${size} bytes this runtime cannot fill; rebuild the bundle with this websem`);
      }
    }
    return out;
  }
  const reset = async () => {
    await python.inpage("inpage_reset", [JSON.stringify(manifest), null]);
    rows.clear();
    laidOut = false;
  };
  try {
    let extract;
    [python, model, store, extract] = await Promise.all([pythonP, sessionP, storeP, extractP, rowsP]);
    if (extract.length) await python.addFiles(extract);
    await reset();
  } catch (e) {
    pythonP.then((p) => p.close(), () => {});
    sessionP.then((s) => s.session.release(), () => {});
    throw cspError(e) ?? e;
  }
  if (opts.dropBytes !== false) files.release();

  const dims = manifest.model.dims;
  const runModel = embedder(model);
  const embedQuery = async (text) => {
    const [ids, mask, types] = await python.encode(text);
    return runModel(ids, mask, types);
  };
  const modes = manifest.search.modes.slice();
  const state = { docs: 0, chunks: 0, run: null, search: manifest.search, restored: 0, storage_error: null };
  let queue = Promise.resolve();
  const aborts = new Map();
  const kept = opts.debugKeep ? [] : null;

  // One step at a time: an ORT session must not run concurrently with itself, and Pyodide holds
  // one index and one query's state. Indexing queues one document per step, so searches
  // interleave with a long import. The one call outside the steps is the next document's
  // inpage_prepare (prepareAhead), which touches only documents not yet added; Pyodide's worker
  // runs its calls in the order they are sent.
  function serial(fn) {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  }

  /**
   * Loads search over the current documents with the bundle's flat-index code: the dense and
   * BM25 scorers over the bytes inpage_search() gives (the ones inpage_files() writes), the
   * ranker set up by it in Pyodide over the rows the in-page index holds.
   */
  async function reload() {
    state.run = null; // the previous index's arrays are garbage before the new ones are made
    const out = await python.inpage("inpage_search", []);
    const indexSection = JSON.parse(new TextDecoder().decode(out["index.json"]));
    const search = JSON.parse(new TextDecoder().decode(out["search.json"]));
    const ids = JSON.parse(new TextDecoder().decode(out["doc_ids.json"]));
    const rowBytes = indexSection.dims * (indexSection.vector_dtype === "float16" ? 2 : 4);
    vectorsBin = layoutVectors(ids, rows, rowBytes);
    laidOut = true;
    state.docs = indexSection.docs ?? 0;
    state.chunks = indexSection.chunks ?? 0;
    state.search = search;
    if (!state.chunks) return;
    const index = searchIndex({ ...out, "index/vectors.bin": vectorsBin }, indexSection);
    const lexical = openLexical(out["index/lexical.bin"], state.chunks);
    state.run = createSearch({ python, index, lexical, embed: embedQuery, search });
  }

  async function persist() {
    if (!store) return;
    try {
      if (state.docs) await store.save(await exportArchive());
      else await store.clear();
      state.storage_error = null;
    } catch (e) {
      // The index in memory is intact; say so instead of failing the change that was made.
      state.storage_error = errorMessage(e);
    }
  }

  /** Replaces the index with an exported one (bridge.inpage_import): Pyodide keeps the rows, this worker the vectors. */
  async function importExport(bytes) {
    const out = await python.inpage("inpage_import", [bytes]);
    const counts = JSON.parse(out.docs);
    rows.clear();
    let at = 0;
    for (const [id, n] of counts) {
      rows.set(id, out.vectors.subarray(at, at + n * out.row_bytes));
      at += n * out.row_bytes;
    }
    laidOut = false;
    return counts.length;
  }

  // Restore what this browser stored for this index name.
  if (store) {
    try {
      const saved = await store.load();
      if (saved) state.restored = await importExport(saved);
    } catch (e) {
      // A stored index that no longer fits (another model, a damaged file) must not stop the
      // page: start empty, and report why in info.storage_error; the next change overwrites it.
      state.storage_error = errorMessage(e);
      await reset();
    }
  }
  await reload();
  onProgress({ stage: "ready" });

  const info = {
    bundle: base,
    format_version: manifest.format_version,
    model: manifest.model,
    index: { docs: 0, chunks: 0, dims, vector_dtype: manifest.index.vector_dtype, layout: "flat" },
    search: manifest.search,
    modes,
    threads: model.ort.env.wasm.numThreads,
    pyodide_snapshot: python.snapshot === true,
    load_ms: now() - started,
    timings,
    storage: store?.backend ?? null,
    name: storeName,
    restored: state.restored,
    storage_error: state.storage_error,
  };
  const current = () => {
    info.index = { ...info.index, docs: state.docs, chunks: state.chunks };
    info.search = state.search;
    info.storage_error = state.storage_error;
    return info;
  };
  current();

  function searchFull(query, options = {}) {
    const k = options?.k ?? state.search.k;
    if (typeof query !== "string") return Promise.reject(new WebsemError(`query must be a string, got ${typeof query}`));
    if (!Number.isInteger(k) || k < 1) {
      return Promise.reject(new WebsemError(`k must be a positive integer, got ${JSON.stringify(k)}`));
    }
    let mode;
    try {
      mode = resolveMode(options?.mode, modes);
    } catch (e) {
      return Promise.reject(e);
    }
    return serial(() => (state.run ? state.run(query, { k, mode, filters: options?.filters }) : { hits: [], facets: {}, mode }));
  }

  // Documents read and tokenized ahead (prepareAhead) and not yet added. Pyodide runs in a
  // worker of its own, so it prepares the next document of an add() while ORT embeds this one's
  // chunks here: on two cores the two overlap instead of taking turns.
  const aheads = new Set();

  /** bridge.inpage_prepare's result for one add() input (the document is then pending in Pyodide). */
  async function prepare(input) {
    const [item, data] = await toPrepareInput(input);
    return JSON.parse(await python.inpage("inpage_prepare", [JSON.stringify(item), data]));
  }

  function prepareAhead(input) {
    const ahead = { promise: prepare(input), stale: false };
    ahead.promise.catch(() => {}); // its error is the document's, reported when its turn comes
    aheads.add(ahead);
    return ahead;
  }

  /** Forgets documents prepared ahead (a change of the index comes first): Pyodide drops them, their add() prepares them again. */
  async function dropAhead(list = [...aheads]) {
    for (const ahead of list) {
      if (ahead.stale) continue; // dropped already: its id may be another add()'s document by now
      aheads.delete(ahead);
      ahead.stale = true;
      const prepared = await ahead.promise.catch(() => null);
      if (prepared && !prepared.skipped) await python.inpage("inpage_remove", [JSON.stringify([prepared.id])]);
    }
  }

  /**
   * One document: prepared (or taken from `ahead`), every chunk embedded at batch 1 while
   * `startNext` has the next one prepared, committed. Returns its report, with the milliseconds
   * its chunks took in the model (`embed_ms`).
   */
  async function addOne(input, ahead, startNext) {
    let prepared;
    if (ahead && !ahead.stale) {
      aheads.delete(ahead);
      prepared = await ahead.promise;
    } else {
      prepared = await prepare(input);
    }
    startNext();
    if (prepared.skipped) return { id: prepared.id, status: "skipped", reason: prepared.skipped, chunks: 0, embed_ms: 0 };
    let packed;
    let embedMs;
    const t0 = now();
    try {
      const vectors = [];
      for (const chunk of prepared.chunks) vectors.push(await runModel(...modelInputs(chunk.input_ids)));
      embedMs = now() - t0;
      packed = packVectors(vectors, dims);
      rows.set(prepared.id, await python.inpage("inpage_add", [prepared.id, packed]));
    } catch (e) {
      // Not committed: Pyodide forgets the document, so that adding it again is not a duplicate.
      await python.inpage("inpage_remove", [JSON.stringify([prepared.id])]).catch(() => {});
      throw e;
    }
    laidOut = false;
    // Test hook (opts.debugKeep): what was embedded, to compare with `websem build`.
    if (kept) kept.push({ id: prepared.id, input_ids: prepared.chunks.map((c) => c.input_ids), vectors: new Float32Array(packed.buffer) });
    return { id: prepared.id, status: "added", chunks: prepared.chunks.length, embed_ms: embedMs };
  }

  /**
   * Index documents or files; see inpage.js. Resolves with `{added, skipped, failed, aborted,
   * info}` once the batch is searchable and stored.
   */
  async function add(inputs, { onProgress: progress, signal, id } = {}) {
    const list = Array.isArray(inputs) ? inputs : inputs != null && typeof inputs[Symbol.iterator] === "function" && typeof inputs !== "string" ? [...inputs] : [inputs];
    const controller = new AbortController();
    if (id != null) aborts.set(id, controller);
    const onAbort = () => controller.abort();
    signal?.addEventListener?.("abort", onAbort);
    if (signal?.aborted) controller.abort();
    const report = { added: [], skipped: [], failed: [], aborted: false };
    let ahead = null; // the next document's prepare, started while this one is embedded
    try {
      for (let i = 0; i < list.length; i++) {
        if (controller.signal.aborted) {
          report.aborted = true;
          break;
        }
        const t0 = now();
        let event;
        try {
          const r = await serial(() => {
            const mine = ahead;
            ahead = null;
            const startNext = () => {
              if (i + 1 < list.length && !controller.signal.aborted) ahead = prepareAhead(list[i + 1]);
            };
            return addOne(list[i], mine, startNext);
          });
          event = r;
          if (r.status === "added") report.added.push(r.id);
          else report.skipped.push({ id: r.id, reason: r.reason });
        } catch (e) {
          const what = list[i]?.id ?? list[i]?.name ?? null;
          event = { id: what, status: "failed", error: errorMessage(e), chunks: 0, embed_ms: 0 };
          report.failed.push({ id: what, error: event.error });
        }
        try {
          progress?.({ ...event, add: id ?? null, index: i, total: list.length, ms: now() - t0 });
        } catch {
          // A throwing progress callback must not stop indexing.
        }
        // Let other messages in (search, abort) between documents.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      signal?.removeEventListener?.("abort", onAbort);
      if (id != null) aborts.delete(id);
      // Aborted after the next document was prepared: Pyodide forgets it.
      if (ahead) await serial(() => dropAhead([ahead]));
      if (report.added.length) {
        await serial(reload);
        await serial(persist);
      }
    }
    return { ...report, info: current() };
  }

  /** One change to the index (remove, import, clear), then search over it reloaded and stored. */
  function change(fn) {
    return serial(async () => {
      await dropAhead();
      const value = await fn();
      await reload();
      await persist();
      return value;
    });
  }

  return {
    info,
    search: (query, options = {}) => searchFull(query, options).then((r) => r.hits),
    searchFull,
    add,
    /** Stops the add() started with option `id` after its current document (inpage.js's worker side). */
    abort(id) {
      aborts.get(id)?.abort();
    },
    /** Removes documents by id; resolves with `{removed, info}`. */
    async remove(ids) {
      const list = Array.isArray(ids) ? ids.map(String) : [String(ids)];
      const removed = await change(async () => {
        const n = Number(await python.inpage("inpage_remove", [JSON.stringify(list)]));
        for (const id of list) rows.delete(id);
        laidOut = false;
        return n;
      });
      return { removed, info: current() };
    },
    /** The index as an archive `websem query --index` reads (Uint8Array). */
    export: () => serial(exportArchive),
    /** Replaces the index with an exported one; resolves with `{docs, info}`. */
    async import(bytes) {
      const data = asBytes(bytes, "import");
      const docs = await change(() => importExport(data));
      return { docs, info: current() };
    },
    /** Removes every document, here and in this browser's storage. */
    async clear() {
      await change(reset);
      return { info: current() };
    },
    async memory() {
      return {
        pyodide_wasm_bytes: (await python.memoryBytes()) ?? null,
        ort_wasm_bytes: model.memory?.buffer.byteLength ?? null,
        js_heap_bytes: globalThis.performance?.memory?.usedJSHeapSize ?? globalThis.process?.memoryUsage?.().heapUsed ?? null,
        shard_cache_bytes: 0,
        // A split model's word-embedding rows, fetched by block as chunks need them and kept.
        word_rows_bytes: model.rows?.stats().bytes ?? 0,
      };
    },
    /** Test hook, NOT public API: raw token ids, query embeddings, the current index files. @internal */
    debug: {
      tokenize: async (text) => Array.from((await python.encode(text))[0], Number),
      embed: (text) => serial(async () => Array.from(await embedQuery(text))),
      files: () => serial(async () => python.inpage("inpage_files", [await currentVectors()])),
      // With opts.debugKeep: per added document, its chunks' token ids and float32 vectors.
      kept: () => kept,
      // Python-side bytes of the in-page state and of the ranker (bench/bench_inpage.py).
      sizes: () => serial(async () => JSON.parse(await python.inpage("inpage_sizes", []))),
    },
    async close() {
      await queue;
      python.close();
      await model.session.release();
    },
  };
}

function now() {
  return globalThis.performance?.now() ?? Date.now();
}
