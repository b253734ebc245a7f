// websem model: the onnxruntime-web session that embeds queries (wasm backend, batch 1).
//
// Loads the bundle's verified ORT module and wasm (or the precompiled ones an edge runtime hands
// in), gives ORT the model's weights as external data (weights.js), and checks the model's
// output. `embedder` turns token ids into the query embedding.
//
// A split model (manifest.model.word_rows, build/model_split.py) ships without its int8
// word-embedding table: before each run the embedder reads the rows of the query's token ids
// (WordRows: blocks of the rows file by HTTP byte range, each checked against its sha256, cut to
// the section's hash_bytes, in the manifest-verified hash list, kept for later queries; in browsers
// cut from the whole file in Cache Storage once a visit has read all of it) and feeds
// them as the graph input the cut nodes used to compute, each value Math.fround(int8 * scale):
// exactly ORT's Cast + Mul in float32, so the embedding is bit-identical to the whole model's.
import { WebsemError } from "./errors.js";
import { wordRowsHashBytes } from "./manifest.js";
import { ShardCache } from "./shards.js";
import { WEIGHTS_FILE, externalizeWeights } from "./weights.js";

const MODEL_ONNX = "model/model.onnx";
// Blocks a background fill request reads (WordRows.fill): 128 x 8 rows x 388 B = ~400 KB.
const FILL_BLOCKS = 128;

/**
 * The ORT session of a bundle's model. `onRows`, if given, gets at once the promise of the split
 * model's WordRows (null for a whole model), which resolves as soon as the block hash list is in,
 * long before the session exists: the engine reads the rows of queries asked while loading.
 * `skipWarmUp`, if given, is asked once the session exists: true when a real query will run at
 * once (asked while loading, Pyodide up), which then pays ORT's first-run cost instead of
 * warmUp's stand-in run (that run would only delay it).
 * @returns {Promise<{ort: object, session: object, output: string, memory: WebAssembly.Memory|null}>}
 */
export async function loadSession(files, manifest, opts, onProgress, { onRows, skipWarmUp } = {}) {
  const vendor = manifest.runtime.vendor.ort;
  // Browsers: the wasm compiled while it streams in (bundle.js wasmModule: verified, and on a
  // repeat visit the browser's compiled-code cache applies), then used like a precompiled module.
  const streamed = !opts.ortWasmModule && files.streamsWasm ? files.wasmModule(vendor.wasm) : null;
  // JS and wasm handed in as modules are deployed code: nothing to fetch or verify for them.
  const spec = manifest.model?.word_rows ?? null;
  // A copy of the hashes: the engine detaches the verified downloads once loaded (VerifiedFiles.release).
  const rowsP = spec ? files.bytes(spec.hashes).then((hashes) => new WordRows(files, manifest, spec, hashes.slice())) : Promise.resolve(null);
  onRows?.(rowsP);
  const [, , wasm, model, compiled, rows] = await Promise.all([
    opts.ortModule ? null : files.bytes(vendor.module),
    opts.ortModule ? null : files.bytes(vendor.glue),
    opts.ortWasmModule || streamed ? null : files.bytes(vendor.wasm),
    files.bytes(MODEL_ONNX),
    streamed,
    rowsP,
  ]);
  // The rows every query needs ([CLS], [SEP]) while the session is created: the first query
  // then learns nothing new about the server (a server that ignores Range has sent the whole
  // file once, here, instead of once per range the first query would ask for in parallel).
  const preloaded = rows ? rows.embeddings(spec.preload_ids ?? []) : null;
  preloaded?.catch(() => {});
  const wasmModule = compiled ?? (opts.ortWasmModule instanceof WebAssembly.Module ? opts.ortWasmModule : null);
  const precompiled = wasmModule !== null;
  // Verified above; the import is answered from the HTTP cache (see python.js bootPyodide).
  const ort = opts.ortModule ?? (await import(files.url(vendor.module)));
  // ORT imports its glue (ort-wasm-simd-threaded.mjs) from wasmPaths. Where `import(url)` is
  // forbidden (Cloudflare Workers) pass ortWasmPaths: {mjs: "./ort-wasm-simd-threaded.mjs"}, a
  // specifier resolved next to ort.wasm.min.mjs among the Worker's own modules.
  ort.env.wasm.wasmPaths = opts.ortWasmPaths ?? new URL("./", files.url(vendor.glue)).href;
  // What ORT's glue will instantiate, as an ArrayBuffer: the glue wraps it in a Uint8Array view
  // (a typed array it would copy), so watchInstantiate can recognise ORT's call by its buffer.
  // The verified bytes, so ORT does not fetch (and trust) the file a second time; a stand-in
  // buffer when the wasm comes precompiled.
  const binary = precompiled ? new ArrayBuffer(8) : wholeBuffer(opts.ortWasmModule ?? wasm);
  ort.env.wasm.wasmBinary = binary;
  ort.env.wasm.numThreads = threadCount(opts.threads);
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  // onnxruntime-web 1.30 can only take the wasm as bytes (env.wasm.wasmBinary, which
  // its Emscripten glue passes to WebAssembly.instantiate) or a URL; neither works on Workers,
  // which hand out precompiled WebAssembly.Modules only. So while the session is created, a
  // WebAssembly.instantiate that sees the glue's view of `binary` instantiates the precompiled
  // module instead, answering in the {instance, module} shape the glue expects. It also notes
  // ORT's wasm memory (only from that call: Pyodide may instantiate meanwhile), for engine.memory().
  let memory = null;
  const restore = watchInstantiate({
    binary,
    module: wasmModule,
    onMemory: (m) => (memory ??= m),
  });
  onProgress({ stage: "ort-session" });
  // The weights as external data: the wasm heap then holds them once, not twice (weights.js).
  let graph = model;
  let externalData;
  if (opts.externalWeights !== false) {
    try {
      graph = externalizeWeights(model).graph;
      // The verified bytes themselves, no copy: offsets in `graph` index into this view.
      externalData = [{ path: WEIGHTS_FILE, data: model }];
    } catch (e) {
      // A model this reader does not understand still loads the ordinary way.
      onProgress({ stage: "external-weights-fallback", reason: String(e?.message ?? e) });
      graph = model;
    }
  }
  let session;
  try {
    session = await ort.InferenceSession.create(graph, {
      externalData,
      executionProviders: ["wasm"],
      // "basic" + disable_quant_qdq. Measured in Node (same wasm, 16-token query,
      // busy 2-core box, alternated runs): "disabled" leaves every DequantizeLinear of a
      // weight-int8 body to run on each query (p50 ~280 ms); "basic" constant-folds them once at
      // load, but only when QDQ handling is off (ORT keeps DQ nodes for QDQ fusion otherwise), and
      // then runs fp32 MatMuls (p50 60-120 ms). "all" adds fusions that did not pay off here. The
      // CPU reference (websem.export.embed.OnnxEmbedder) sets the same disable_quant_qdq, so both
      // sides compute the graph's fp32 semantics. A body the build saved already optimized at
      // "basic" (manifest.model.graph_optimization, build/model_optimize.py) is not optimized
      // again: in a cold visit those passes ran in freshly compiled wasm on the critical path.
      graphOptimizationLevel: manifest.model?.graph_optimization === "basic" ? "disabled" : "basic",
      extra: { session: { disable_quant_qdq: "1" } },
      // Warnings from graph optimisation would otherwise land in the page console as errors.
      logSeverityLevel: 3,
      // Caller overrides, e.g. {enableCpuMemArena: false, enableMemPattern: false} on edge
      // runtimes with tight memory limits (bench/edge_memory.mjs measures them).
      ...opts.sessionOptions,
    });
  } catch (e) {
    throw new WebsemError(
      `onnxruntime-web could not load model/model.onnx (${e.message}); rebuild the bundle with a model ` +
        "package from `websem export`",
    );
  } finally {
    restore();
  }
  const output = manifest.model?.output ?? "sentence_embedding";
  if (rows && !session.inputNames.includes(spec.input)) {
    await session.release();
    throw new WebsemError(
      `model/model.onnx has no input ${JSON.stringify(spec.input)} although manifest.model.word_rows names it; ` +
        "rebuild the bundle with `websem build`",
    );
  }
  if (!session.outputNames.includes(output)) {
    throw new WebsemError(
      `model/model.onnx has no output ${JSON.stringify(output)} (outputs: ${session.outputNames.join(", ")}); ` +
        "re-export it with `websem export`",
    );
  }
  if (preloaded) {
    try {
      await preloaded;
    } catch (e) {
      await session.release();
      throw e;
    }
  }
  // ORT copied the wasm into its module at init; keeping the bytes referenced would pin 14 MB.
  ort.env.wasm.wasmBinary = undefined;
  onProgress({ stage: "ort-ready" });
  // runs: how many model runs started (engine.debug.modelRuns: the warm-up's included).
  const loaded = { ort, session, output, memory, rows, runs: 0 };
  // Creating the session held this thread (synchronous wasm): what arrived meanwhile (Pyodide's
  // "ready" from its worker) is handled first, so skipWarmUp answers from the current state.
  if (skipWarmUp) await new Promise((resolve) => setTimeout(resolve, 0));
  loaded.warm = skipWarmUp?.() ? Promise.resolve() : warmUp(loaded);
  return loaded;
}

/**
 * The word-embedding rows of a split model, read by block as queries need them. Blocks live in
 * their own ShardCache (shards.js: Range reads, a 200 answer verified whole and cut into blocks,
 * one retry of a transient failure, errors naming the file and block) whose budget is the whole
 * rows file: a long session never holds more than the whole model's table did, and a server that
 * ignores Range costs one download of the file, not one per query.
 *
 * Browsers also keep the whole file in the bundle files' Cache Storage cache (cache.js), stored
 * once a fill has read and verified every block: Chromium's HTTP cache does not serve the 206
 * answers of Range reads, so without it every visit reads its first query's blocks over the
 * network again. A later visit looks the copy up at construction and cuts blocks from it, each
 * checked against the hash list like a block read by range when first used; a copy of the wrong
 * size or with a block that fails its check is deleted ("cache-refused") and every block is read
 * from the network again. No copy where VerifiedFiles.storeFor gives no store (`cache: false`,
 * Node, workerd, a file too small to be kept).
 */
export class WordRows {
  #files;
  #manifest;
  #entry;
  // Promise of the Cache Storage copy in use ({bytes, checks, refused}) or null; #held: the same,
  // once the lookup is over.
  #copy;
  #held = null;
  // Blocks cut from the copy (stats: hits that read nothing).
  #copyHits = 0;

  constructor(files, manifest, spec, hashes) {
    this.spec = spec;
    this.hashes = hashes;
    this.hashBytes = wordRowsHashBytes(spec);
    this.size = spec.rows * spec.row_bytes;
    this.count = Math.ceil(spec.rows / spec.block_rows);
    this.cache = new ShardCache(files.base, manifest, files.fetch, { cacheBytes: this.size });
    this.#files = files;
    this.#manifest = manifest;
    this.#entry = manifest.files?.[spec.file] ?? null;
    // Started now: the lookup reads the copy (local, ~12 MB) while the ORT session is created.
    this.#copy = this.#lookup().catch(() => null);
  }

  /**
   * Reads every block not yet held, FILL_BLOCKS blocks (~400 KB) a request, one request at a time.
   * engine.js starts it after the first query the model answered: a query then fetches the
   * ~15 blocks of its new token ids (one Range request each, in parallel, each verified) only
   * until the fill is done; after it, no query waits on the network for rows (on loopback the
   * per-query reads made a warm hybrid query ~30 ms slower). Segments, not one request for the
   * whole file: a query needing a block waits at most for the segment holding it.
   * With a Cache Storage copy it reads nothing: it checks the copy's blocks not yet checked (the
   * hashing a network fill does anyway), so no later query can find a bad one. Once every block
   * came from the network, the whole file is stored for the next visit (not awaited).
   */
  async fill() {
    const copy = await this.#copy;
    if (copy && (await this.#checkAll(copy))) return;
    const parts = [];
    for (let first = 0; first < this.count; first += FILL_BLOCKS) {
      const blocks = [];
      for (let k = first; k < Math.min(first + FILL_BLOCKS, this.count); k++) blocks.push(k);
      parts.push(...(await this.#network(blocks)));
    }
    this.#store(parts).catch(() => {});
  }

  /** Whether every block of `copy` passes its check, FILL_BLOCKS blocks at a time. */
  async #checkAll(copy) {
    for (let first = 0; first < this.count; first += FILL_BLOCKS) {
      const checks = [];
      for (let k = first; k < Math.min(first + FILL_BLOCKS, this.count); k++) checks.push(this.#check(copy, k));
      if (!(await Promise.all(checks)).every(Boolean)) return false;
    }
    return true;
  }

  /** The verified bytes of blocks `blocks` (ascending): cut from the Cache Storage copy, else from the network. */
  async #blocks(blocks) {
    const copy = await this.#copy;
    if (copy) {
      const ok = await Promise.all(blocks.map((k) => this.#check(copy, k)));
      if (ok.every(Boolean)) {
        this.#copyHits += blocks.length;
        return blocks.map((k) => copy.bytes.subarray(...this.#range(k)));
      }
    }
    return this.#network(blocks);
  }

  /** Blocks `blocks` from the rows cache or by Range reads. */
  #network(blocks) {
    return this.cache.getBlocks(this.spec.file, {
      blocks,
      count: this.count,
      range: (k) => this.#range(k),
      hashes: this.hashes,
      hashBytes: this.hashBytes,
      hashPath: this.spec.hashes,
      parse: (bytes) => bytes.slice(),
    });
  }

  /** Block k's bytes [start, end) in the rows file. */
  #range(k) {
    const step = this.spec.block_rows * this.spec.row_bytes;
    return [k * step, Math.min((k + 1) * step, this.size)];
  }

  /** The FileCache the rows file is kept in (the bundle files' own, VerifiedFiles.storeFor), or null. */
  #storeFor() {
    return this.#files.storeFor(this.spec.file, this.#entry);
  }

  /** The Cache Storage copy of the rows file, or null (none, unreadable, or refused for its size). */
  async #lookup() {
    const store = await this.#storeFor();
    const hit = store ? await store.match(this.spec.file, this.#entry.sha256) : null;
    if (!hit) return null;
    let bytes;
    try {
      bytes = new Uint8Array(await hit.arrayBuffer());
    } catch {
      return null; // e.g. the entry was evicted meanwhile: read from the network
    }
    const copy = { bytes, checks: new Array(this.count), refused: false };
    if (bytes.byteLength !== this.size) {
      const reason = `${this.spec.file} in the browser's Cache Storage has ${bytes.byteLength} bytes, not ${this.size}`;
      await this.#refuse(copy, reason);
      return null;
    }
    this.#held = copy;
    return copy;
  }

  /** Whether block k of `copy` matches its hash, checked once (refusing the copy when it does not). */
  #check(copy, k) {
    copy.checks[k] ??= this.#verify(copy, k);
    return copy.checks[k];
  }

  async #verify(copy, k) {
    // As shards.js checks a block read by range: the first hashBytes bytes of its sha256.
    const [a, b] = this.#range(k);
    const n = this.hashBytes;
    const got = new Uint8Array(await crypto.subtle.digest("SHA-256", copy.bytes.subarray(a, b))).subarray(0, n);
    const want = this.hashes.subarray(n * k, n * k + n);
    if (want.length === n && got.every((x, i) => x === want[i])) return true;
    await this.#refuse(
      copy,
      `${this.spec.file} block ${k} (bytes ${a}-${b - 1}) in the browser's Cache Storage does not match the sha256 ` +
        `in ${this.spec.hashes} (got ${hex(got)}, expected ${want.length === n ? hex(want) : "none"}); ` +
        "the copy is deleted and the rows are read from the network",
    );
    return false;
  }

  /** Drops `copy` for good: deleted from Cache Storage, reported, every block read from the network. */
  async #refuse(copy, reason) {
    if (copy.refused) return;
    copy.refused = true;
    this.#copy = Promise.resolve(null);
    if (this.#held === copy) this.#held = null;
    const store = await this.#storeFor();
    await store?.remove(this.spec.file, this.#entry.sha256);
    this.#files.onProgress?.({ stage: "cache-refused", file: this.spec.file, reason: `websem: ${reason}` });
  }

  /**
   * Stores the rows file, assembled from all its verified blocks `parts` (in order), for the next
   * visit; like VerifiedFiles, the first file this load stores prunes an earlier build's entries.
   */
  async #store(parts) {
    const store = await this.#storeFor();
    if (!store) return;
    // A Blob, not one assembled 12 MB array: the browser moves its bytes out of the page's
    // heap (its blob store), so storing adds no lasting renderer memory.
    const whole = new Blob(parts);
    if (whole.size !== this.size) return; // cannot happen: every block was read
    const files = this.#files;
    if ((await store.put(this.spec.file, this.#entry.sha256, whole)) && !files.pruned) {
      files.pruned = true;
      await store.prune(this.#manifest);
    }
  }

  /** The float32 rows of `ids` (BigInt64Array or numbers), `ids.length * dims` values. */
  async embeddings(ids) {
    const { rows, dims, row_bytes: rowBytes, block_rows: blockRows } = this.spec;
    const list = Array.from(ids, Number);
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= rows) {
        throw new WebsemError(
          `token id ${id} is outside the model's ${rows} word rows; the tokenizer and model do not match, ` +
            "rebuild the bundle with `websem build`",
        );
      }
    }
    const blocks = [...new Set(list.map((id) => Math.floor(id / blockRows)))].sort((a, b) => a - b);
    const got = await this.#blocks(blocks);
    const byBlock = new Map(blocks.map((k, i) => [k, got[i]]));
    const out = new Float32Array(list.length * dims);
    list.forEach((id, j) => {
      const block = byBlock.get(Math.floor(id / blockRows));
      const at = (id % blockRows) * rowBytes;
      const scale = new DataView(block.buffer, block.byteOffset + at + dims, 4).getFloat32(0, true);
      const int8 = new Int8Array(block.buffer, block.byteOffset + at, dims);
      for (let d = 0; d < dims; d++) out[j * dims + d] = Math.fround(int8[d] * scale);
    });
    return out;
  }

  /**
   * The rows' counters: `{bytes, files, hits, misses, fetched_bytes, range_requests,
   * cache_storage_hits}`. A held Cache Storage copy counts as one file of the file's size, and
   * each block cut from it as a hit (also counted in cache_storage_hits): a visit served from it
   * shows no range requests and no fetched bytes.
   */
  stats() {
    const s = this.cache.stats();
    const held = this.#held !== null;
    return {
      ...s,
      bytes: s.bytes + (held ? this.size : 0),
      files: s.files + (held ? 1 : 0),
      hits: s.hits + this.#copyHits,
      cache_storage_hits: this.#copyHits,
    };
  }
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The bytes of `view` as a whole ArrayBuffer (the view's own buffer when it spans all of it). */
function wholeBuffer(view) {
  if (view instanceof ArrayBuffer) return view;
  const bytes = ArrayBuffer.isView(view) ? view : new Uint8Array(view);
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer
    : bytes.slice().buffer;
}

/**
 * Wraps WebAssembly.instantiate while ORT initialises. The call whose source is a view of
 * `binary` is ORT's: it is routed to the precompiled `module` when one is given, and its
 * instance's linear memory goes to `onMemory` (what an edge runtime's memory limit counts).
 * Every other call passes through untouched. Returns the undo function.
 */
function watchInstantiate({ binary, module = null, onMemory }) {
  const original = WebAssembly.instantiate;
  const remember = (instance, imports) => {
    const candidates = [...Object.values(instance?.exports ?? {})];
    for (const ns of Object.values(imports ?? {})) candidates.push(...Object.values(ns ?? {}));
    const memory = candidates.find((v) => v instanceof WebAssembly.Memory);
    if (memory) onMemory(memory);
  };
  WebAssembly.instantiate = function instantiate(source, imports) {
    const bytes = ArrayBuffer.isView(source) ? source.buffer : source;
    if (bytes !== binary) return original.call(WebAssembly, source, imports);
    if (module) {
      return original.call(WebAssembly, module, imports).then((instance) => {
        remember(instance, imports);
        return { instance, module };
      });
    }
    return original.call(WebAssembly, source, imports).then((result) => {
      remember(result.instance, imports);
      return result;
    });
  };
  return () => {
    WebAssembly.instantiate = original;
  };
}

function threadCount(requested) {
  // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP + COEP). On 2 cores
  // one thread measured faster, hence the default of 1.
  const isolated = globalThis.crossOriginIsolated === true;
  const n = Number.isInteger(requested) && requested > 0 ? requested : 1;
  return isolated ? n : 1;
}

/** One ORT run of the model on `ids` (int64 arrays): the sentence embedding. Counted in `model.runs`. */
async function runModel(model, ids, mask, types) {
  const { ort, session, output, rows } = model;
  model.runs += 1;
  const dims = [1, ids.length];
  // Split model: the rows first (a missing or bad block fails the query before ORT runs).
  const embeddings = rows ? await rows.embeddings(ids) : null;
  const feeds = {
    input_ids: new ort.Tensor("int64", ids, dims),
    attention_mask: new ort.Tensor("int64", mask, dims),
  };
  if (session.inputNames.includes("token_type_ids")) feeds.token_type_ids = new ort.Tensor("int64", types, dims);
  if (rows) feeds[rows.spec.input] = new ort.Tensor("float32", embeddings, [1, ids.length, rows.spec.dims]);
  const result = await session.run(feeds, [output]);
  const data = Float32Array.from(result[output].data);
  for (const t of Object.values(result)) t.dispose?.();
  return data;
}

/**
 * A first ORT run on the rows loadSession preloaded ([CLS] [SEP]), started as soon as the session
 * exists. ORT's first run pays for compiling the kernels it calls (wasm code compiles lazily) and
 * for growing its memory arena: ~200 ms of the first query in Chromium, which here overlaps the
 * rest of the load (Pyodide's boot, the Python ranker's set-up) instead. Skipped when a query
 * is ready to run (loadSession's skipWarmUp): there is nothing left to overlap. Settles, never
 * rejects: a failure shows again in the first real query, with its message.
 */
function warmUp(model) {
  const ids = model.rows?.spec.preload_ids ?? [];
  if (!ids.length) return Promise.resolve();
  const n = ids.length;
  const warm = runModel(model, BigInt64Array.from(ids, BigInt), new BigInt64Array(n).fill(1n), new BigInt64Array(n));
  return warm.then(() => {}, () => {});
}

/**
 * `embed(ids, mask, types)` -> Float32Array query embedding. Calls must not overlap (an ORT
 * session must not run concurrently with itself): engine.js serializes them, and the first
 * waits for loadSession's warm-up run.
 */
export function embedder(model) {
  let warm = model.warm ?? null;
  return async (ids, mask, types) => {
    if (warm) {
      await warm;
      warm = null;
    }
    return runModel(model, ids, mask, types);
  };
}
