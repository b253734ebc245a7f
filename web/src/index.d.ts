// Types of websem's public JS API: `load()` and the engine it returns. The declaration files
// assume the bundle's layout: this one as websem.d.ts next to websem.js (web/src/index.js), and
// handler.d.ts, component.d.ts and node.d.ts next to their modules in runtime/, importing the
// shared types from "../websem.js". tests/test_types.py lays them out so and checks them:
// `tsc --strict` over tests/js/types/consumer.ts (must compile) and wrong.ts (an error on every
// marked line), the exported names against each module, the members against a real engine.
//
//   import { load } from "/_websem/websem.js";
//   const engine = await load("/_websem/");
//   const { hits, facets, mode } = await engine.searchFull("parse json", { k: 10, filters: { section: "library" } });

/** The three ways to rank. The bundle's `manifest.search.modes` lists them, default first. */
export type SearchMode = "hybrid" | "semantic" | "lexical";

/**
 * Filters: `{field: value | [values]}`. A document matches when it has any of a field's values,
 * for every field given. Fields are the bundle's facet fields (`manifest.search.facets`, a subset
 * of `tags`, `section`, `language`); any other field is refused with a `websem:` error.
 */
export type Filters = Record<string, string | string[]>;

/** Options of `search` and `searchFull`. */
export interface SearchOptions {
  /** Number of hits, a positive integer (default `manifest.search.k`, 10). */
  k?: number;
  /** Ranking (default `info.modes[0]`, the bundle's first mode: hybrid). */
  mode?: SearchMode;
  /** Keep only documents that match (see {@link Filters}). */
  filters?: Filters;
  /**
   * Wait for the full tier (`engine.ready`) before answering. Default: true for `semantic` (it
   * needs the model; `false` then rejects with a `websem:` error until the model is up), false
   * for `hybrid` (answers with the lexical ranking meanwhile, `tier: "lexical"`). Lexical mode
   * never waits: its answer is the same from either tier.
   */
  wait?: boolean;
}

/** A `[start, end)` range of UTF-16 code units into a snippet: `snippet.slice(start, end)`. */
export type Range = [start: number, end: number];

/** One result: a document, with the best passage of it. */
export interface Hit {
  /** The document's id (the page's path for a site, `_id` for a BEIR corpus). */
  id: string;
  /** BM25 in lexical mode, cosine in semantic mode, the fused score in hybrid mode. */
  score: number;
  /** The document's title (plain text). */
  title: string;
  /** The document's URL plus the best passage's anchor (`#id`), if it has one. */
  url: string;
  /** Plain text (never HTML): a window of the best passage around the query terms. */
  snippet: string;
  /** Sorted, disjoint ranges of the query terms in `snippet`; render them as text, never as HTML. */
  highlights: Range[];
}

/** Per facet field, `[value, count]` pairs, count descending then value, over the filtered candidates. */
export type Facets = Record<string, Array<[value: string, count: number]>>;

/** What `searchFull` returns. */
export interface SearchResult {
  hits: Hit[];
  facets: Facets;
  /** The mode that was asked for (the default when none was given). */
  mode: SearchMode;
  /**
   * "full": the mode's own ranking. "lexical": the model is still loading, so a hybrid query was
   * answered with the lexical ranking (the same hits, scores and facets as mode `lexical`).
   */
  tier: Tier;
}

/** Which part of the runtime answered: see {@link Engine.ready}. */
export type Tier = "lexical" | "full";

/** `manifest.model`: the model the bundle ships. */
export interface ModelInfo {
  id: string;
  /** sha256 of model/model.onnx. */
  sha256: string;
  dims: number;
  max_seq_length: number;
  pooling: string;
  normalize: boolean;
  /** Whether the tokenizer lower-cases (uncased models). */
  do_lower_case: boolean;
  /** `{mode, ...settings}` as written by `websem export`. */
  quantization: { mode: string; [setting: string]: unknown };
  [key: string]: unknown;
}

/** Hybrid fusion (`manifest.search.fusion`): convex, or reciprocal-rank fusion (docs/hybrid.md). */
export type Fusion =
  | { method: "convex"; norm: "max" | "minmax" | "zscore"; alpha: number }
  | { method: "rrf"; rrf_k: number; alpha?: number };

/** `manifest.search`: the bundle's query-time rules, read by every runtime (docs/architecture.md). */
export interface SearchTable {
  /** The modes the bundle offers, the default first. */
  modes: [SearchMode, ...SearchMode[]];
  /** Hits per query when `k` is not given. */
  k: number;
  /** Candidates per side fused in hybrid mode. */
  n: number;
  /** The longest snippet, in code points. */
  snippet_chars: number;
  /** The filter fields the bundle's documents carry (a subset of tags, section, language). */
  facets: string[];
  fusion: Fusion;
}

/** How the bundle's index is laid out (`manifest.index.layout`, docs/architecture.md "Bundle"). */
export type IndexLayout = "flat" | "partitioned";

/** About the loaded bundle and runtime. */
export interface EngineInfo {
  /** The bundle's URL, ending with "/". */
  bundle: string;
  format_version: number;
  model: ModelInfo;
  index: {
    docs: number;
    chunks: number;
    dims: number;
    vector_dtype: "float16" | "int8" | "float32";
    /** "flat": the whole index loads with the bundle; "partitioned": shards load per query. */
    layout: IndexLayout;
    /** Partitioned only: the IVF lists, and how many of them a query probes. */
    ivf?: { nlist: number; nprobe: number; code: "binary" | "rows"; rerank: number };
  };
  /** "lexical" until the full tier (Pyodide + the model) is up, then "full" (updated in place). */
  tier: Tier;
  /** onnxruntime-web's thread count (1 unless the page is cross-origin isolated); null until the full tier. */
  threads: number | null;
  /** Whether Pyodide was restored from the bundle's memory snapshot (false: booted from scratch);
   * null until the full tier. */
  pyodide_snapshot: boolean | null;
  /** The bundle's query-time rules (`manifest.search`). */
  search: SearchTable;
  /** Search modes (`manifest.search.modes`), the default first. */
  modes: [SearchMode, ...SearchMode[]];
  /** Milliseconds from the start of `load()` until it resolved. */
  load_ms: number;
  /** Milliseconds from the start of `load()` until the full tier was up; null until then. */
  ready_ms: number | null;
  /** Milliseconds since the start of `load()` at each progress stage ("verified FILE" per file). */
  timings: Record<string, number>;
}

/** Loading stages reported to `onProgress`, in about this order (some run in parallel). */
export type ProgressStage =
  | "manifest"
  | "verified"
  | "lexical-ready"
  | "bytes"
  | "cache-refused"
  | "compiled"
  | "pyodide-boot"
  | "snapshot-fallback"
  | "pyodide-ready"
  | "tokenizer-ready"
  | "ort-session"
  | "external-weights-fallback"
  | "ort-ready"
  | "ranker-ready"
  | "ready";

/** One loading step. */
export interface ProgressEvent {
  stage: ProgressStage;
  /** Milliseconds since `load()` started. */
  ms: number;
  /** "verified": the bundle file (relative path) whose sha256 and size were just checked. */
  file?: string;
  /** "verified": its size in bytes. */
  bytes?: number;
  /** "bytes": the group of files `file` belongs to (model, onnxruntime, pyodide, index). */
  group?: "model" | "onnxruntime" | "pyodide" | "index";
  /** "bytes": bytes of the group read so far (decoded; only grows). */
  loaded?: number;
  /** "bytes": bytes of the group in all (manifest.json sizes of the files load() fetches). */
  total?: number;
  /** "bytes": the same over every group; `loaded === total` once every file is read. */
  overall?: { loaded: number; total: number };
  /** "bytes" / "verified": where the bytes came from: the network or the browser's Cache Storage. */
  from?: "network" | "cache";
  /** "compiled" (browsers, per wasm file): milliseconds to compile it (streaming: from its first byte). */
  compile_ms?: number;
  /** "compiled": whether it was compiled while streaming in (WebAssembly.compileStreaming). */
  streaming?: boolean;
  /** "pyodide-boot" / "pyodide-ready" / "tokenizer-ready": whether the memory snapshot is used. */
  snapshot?: boolean;
  /** "snapshot-fallback" / "external-weights-fallback": why the faster path was not taken;
   * "cache-refused": why a Cache Storage copy of `file` was deleted (it is fetched again). */
  reason?: string;
}

/** Sizes in bytes, `null` where the runtime does not tell. */
export interface MemoryUsage {
  /** Pyodide's wasm linear memory. */
  pyodide_wasm_bytes: number | null;
  /** onnxruntime-web's wasm linear memory. */
  ort_wasm_bytes: number | null;
  /** This thread's JS heap (Node, Deno, Chromium; not Workers). */
  js_heap_bytes: number | null;
  /** What a partitioned bundle's shard cache holds now (0 for a flat bundle), at most `cacheBytes`. */
  shard_cache_bytes: number;
}

/**
 * Options of the engine itself. With `load(url, {worker: false})` (and wherever `Worker` does not
 * exist: Node, Deno without a worker, edge runtimes) every option applies; in a Web Worker only
 * `threads`, `onProgress`, `sessionOptions`, `snapshot`, `dropBytes`, `cacheBytes`, `cache`,
 * `wordRows` and `progressive` cross over.
 */
export interface EngineOptions {
  /**
   * Resolve `load()` as soon as the lexical tier can answer (a flat bundle's chunks, documents
   * and postings, a partitioned one's always-loaded files, verified: plain JS, no Pyodide, no
   * model), with Pyodide and the model loading on behind it until `engine.ready` (default true).
   * false: `load()` resolves when everything is up.
   */
  progressive?: boolean;
  /** onnxruntime-web threads, used only when the page is cross-origin isolated (default 1). */
  threads?: number;
  /** Called at each loading stage; an exception it throws is ignored. */
  onProgress?: (event: ProgressEvent) => void;
  /** Extra onnxruntime-web `InferenceSession` options; they override the engine's. */
  sessionOptions?: Record<string, unknown>;
  /** Restore the bundle's Pyodide memory snapshot when it has one (default true; false boots
   * Pyodide from scratch: same results, slower start). */
  snapshot?: boolean;
  /** Free the verified download buffers once loaded (default true). */
  dropBytes?: boolean;
  /** Browsers: keep the model, the Pyodide snapshot, the wasm binaries and every other bundle file
   * of 1 MiB or more in Cache Storage (keyed by their sha256, verified again when read back), so a
   * repeat visit does not download them (default true; false: HTTP cache only). */
  cache?: boolean;
  /** Partitioned bundles: the byte budget of the verified shard cache, a least-recently-used
   * cache of the index shards queries fetched (default 16 MiB; 0 keeps none). */
  cacheBytes?: number;
  /** A bundle whose model ships without its word-embedding table (docs/architecture.md "Model
   * files"): "fill" (default) reads the rest of the rows in the background, ~400 KB a request,
   * after the first semantic or hybrid answer, so later queries never wait on the network for
   * them; "on-demand" reads only the blocks queries use (fewer bytes, a few ms more per query
   * with new words). */
  wordRows?: "fill" | "on-demand";
  /** In-process only: the fetch to read bundle files with (Node: `fileFetch` from runtime/node.js). */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  /** Hand ORT the model's weights as external data, so its wasm heap holds them once (default true). */
  externalWeights?: boolean;
  /** Run Pyodide in a nested worker, in parallel with ORT's start (default: whenever `Worker` exists). */
  pythonWorker?: boolean;
  /** Edge runtimes without `import(url)`: vendor/ort/ort.wasm.min.mjs, statically imported. */
  ortModule?: object;
  /** ORT's wasm, precompiled (a Workers module import) or as bytes. */
  ortWasmModule?: WebAssembly.Module | ArrayBuffer | Uint8Array;
  /** onnxruntime-web `env.wasm.wasmPaths` (default: the bundle's vendor/ort/). */
  ortWasmPaths?: string | Record<string, string>;
  /** vendor/pyodide/pyodide.mjs, statically imported (Workers). */
  pyodideModule?: object;
  /** vendor/pyodide/pyodide.asm.mjs (its namespace or default export), statically imported (Workers). */
  pyodideAsmModule?: object | ((...args: unknown[]) => unknown);
  /** vendor/pyodide/pyodide.asm.wasm, precompiled (Workers). */
  pyodideWasmModule?: WebAssembly.Module;
}

/** Options of {@link load}. */
export interface LoadOptions extends EngineOptions {
  /** Run the engine in a module Web Worker (default: whenever `Worker` exists). */
  worker?: boolean;
}

/** A loaded bundle. Searches run one at a time, in call order (one waiting for the model joins
 * the queue once the model is up). */
export interface Engine {
  readonly info: EngineInfo;
  /**
   * Resolves when the full tier (Pyodide + the model) is up: from then on every mode answers
   * with its own ranking (`tier: "full"`) and `info` says so. Rejects with the `websem:` error
   * that stopped it (then lexical and hybrid searches keep answering lexically, semantic ones
   * reject with that error). Already resolved when `load()` waited for everything.
   */
  readonly ready: Promise<void>;
  /** The top hits for `query` (see {@link SearchOptions}). Rejects with a `websem:` error on a bad option. */
  search(query: string, options?: SearchOptions): Promise<Hit[]>;
  /** Hits plus facet counts and the mode that ran. */
  searchFull(query: string, options?: SearchOptions): Promise<SearchResult>;
  /** Wasm and JS heap sizes now. */
  memory(): Promise<MemoryUsage>;
  /** Release the worker and the wasm runtimes; later calls reject. */
  close(): Promise<void>;
}

/**
 * The error `load()` and the engine reject with (also across the worker boundary). Its message
 * starts with `websem:`, names the bad value and says what to do.
 */
export class WebsemError extends Error {
  constructor(message: string);
  readonly name: "WebsemError";
}

/**
 * Load a bundle: fetch every file, check its sha256 and size against manifest.json, start Pyodide
 * and onnxruntime-web. Resolves as soon as the bundle's lexical tier can answer (see
 * {@link EngineOptions.progressive} and {@link Engine.ready}). Rejects with an error whose message
 * starts with `websem:` and says what to do (a missing or tampered file, an unknown bundle
 * format, a bundle that cannot be served): a {@link WebsemError}; a failure of the full tier
 * after that rejects `engine.ready`.
 *
 * @param bundleUrl the bundle folder (the one holding manifest.json), absolute or relative to the
 *   page (default "./").
 */
export function load(bundleUrl?: string | URL, options?: LoadOptions): Promise<Engine>;

// --------------------------------------------------------------------------- in-page indexing

/** One document for {@link InpageIndex.add}: the record shape `websem build` reads from JSONL. */
export interface InpageDocument {
  /** Unique within the index (a duplicate is refused like `websem build` refuses it). */
  id?: string;
  title?: string;
  text?: string;
  url?: string;
  meta?: Record<string, unknown>;
}

/** A file for {@link InpageIndex.add} without a `File` object: its name gives the type (.txt, .md, .html). */
export interface InpageFile {
  name: string;
  data: Uint8Array | ArrayBuffer | string;
  id?: string;
}

/** What {@link InpageIndex.add} takes: documents, `File`/`Blob` objects (e.g. a FileList), or named bytes. */
export type InpageInput = InpageDocument | InpageFile | Blob;

/** One document handled by {@link InpageIndex.add}. */
export interface AddProgress {
  /** The document's id (null when a failed input had none). */
  id: string | null;
  /** "added": searchable once add() resolves; "skipped": `websem build` skips it too (`reason`);
   * "failed": refused with `error`, as `websem build` refuses it. */
  status: "added" | "skipped" | "failed";
  /** Chunks indexed for it. */
  chunks: number;
  reason?: string;
  error?: string;
  /** Its position in this add() call, from 0, and the call's input count. */
  index: number;
  total: number;
  /** Milliseconds its chunks took in the model (0 when none were embedded). */
  embed_ms?: number;
  /** Milliseconds this document took. */
  ms: number;
}

/** About an in-page index: its bundle's model and rules, and what it holds now. */
export interface InpageInfo {
  bundle: string;
  format_version: number;
  model: ModelInfo;
  index: { docs: number; chunks: number; dims: number; vector_dtype: "float16" | "int8" | "float32"; layout: "flat" };
  search: SearchTable;
  modes: [SearchMode, ...SearchMode[]];
  threads: number;
  pyodide_snapshot: boolean;
  load_ms: number;
  timings: Record<string, number>;
  /** Where the index is stored in this browser, or null (kept in memory only). */
  storage: "opfs" | "indexeddb" | null;
  /** The stored index's name. */
  name: string;
  /** Documents restored from storage when the index opened. */
  restored: number;
  /** The last storage failure (the index in memory is intact), or null. */
  storage_error: string | null;
}

/** What {@link InpageIndex.add} resolves with, once the new documents are searchable and stored. */
export interface AddResult {
  added: string[];
  skipped: Array<{ id: string; reason: string }>;
  failed: Array<{ id: string | null; error: string }>;
  /** Whether the signal stopped it (documents added before that stay). */
  aborted: boolean;
  info: InpageInfo;
}

/** Options of {@link createIndex}. */
export interface InpageOptions {
  /** Where to keep the index in this browser: "auto"/true (OPFS, else IndexedDB; the default where
   * either exists), "opfs", "indexeddb", or false (memory only). */
  persist?: boolean | "auto" | "opfs" | "indexeddb";
  /** Which stored index (default "default"): 1-64 letters, digits, ".", "_", "-". */
  name?: string;
  /** Run in a module Web Worker (default: whenever `Worker` exists). */
  worker?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  threads?: number;
  sessionOptions?: Record<string, unknown>;
  snapshot?: boolean;
  /** In-process only: the fetch to read bundle files with. */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
}

/** An index built in the page; searches and changes run one at a time, in call order. */
export interface InpageIndex {
  readonly info: InpageInfo;
  search(query: string, options?: SearchOptions): Promise<Hit[]>;
  searchFull(query: string, options?: SearchOptions): Promise<SearchResult>;
  /** Index documents or files, one at a time (searches interleave); `signal` stops it after the
   * current document. */
  add(
    inputs: InpageInput | Iterable<InpageInput>,
    options?: { onProgress?: (event: AddProgress) => void; signal?: AbortSignal },
  ): Promise<AddResult>;
  remove(ids: string | string[]): Promise<{ removed: number; info: InpageInfo }>;
  /** The index as an archive that `websem query` reads and {@link InpageIndex.import} restores. */
  export(): Promise<Uint8Array>;
  import(archive: Uint8Array | ArrayBuffer): Promise<{ docs: number; info: InpageInfo }>;
  /** Remove every document, here and in this browser's storage. */
  clear(): Promise<{ info: InpageInfo }>;
  memory(): Promise<MemoryUsage>;
  close(): Promise<void>;
}

/**
 * Open an in-page index over a bundle's model and runtime (its own index is not used): documents
 * and files are indexed in the page with the same code as `websem build` and searched with the
 * same code as a bundle. Nothing is uploaded; the index is stored in this browser and restored here.
 */
export function createIndex(bundleUrl?: string | URL, options?: InpageOptions): Promise<InpageIndex>;
