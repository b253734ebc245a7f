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
  /** The mode that ran (the default when none was given). */
  mode: SearchMode;
}

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
    ivf?: { nlist: number; nprobe: number };
  };
  /** onnxruntime-web's thread count (1 unless the page is cross-origin isolated). */
  threads: number;
  /** Whether Pyodide was restored from the bundle's memory snapshot (false: booted from scratch). */
  pyodide_snapshot: boolean;
  /** The bundle's query-time rules (`manifest.search`). */
  search: SearchTable;
  /** Search modes (`manifest.search.modes`), the default first. */
  modes: [SearchMode, ...SearchMode[]];
  /** Milliseconds from the start of `load()` to ready. */
  load_ms: number;
  /** Milliseconds since the start of `load()` at each progress stage ("verified FILE" per file). */
  timings: Record<string, number>;
}

/** Loading stages reported to `onProgress`, in about this order (some run in parallel). */
export type ProgressStage =
  | "manifest"
  | "verified"
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
  /** "pyodide-boot" / "pyodide-ready" / "tokenizer-ready": whether the memory snapshot is used. */
  snapshot?: boolean;
  /** "snapshot-fallback" / "external-weights-fallback": why the faster path was not taken. */
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
 * `threads`, `onProgress`, `sessionOptions`, `snapshot`, `dropBytes` and `cacheBytes` cross over.
 */
export interface EngineOptions {
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
  /** Partitioned bundles: the byte budget of the verified shard cache, a least-recently-used
   * cache of the index shards queries fetched (default 64 MiB; 0 keeps none). */
  cacheBytes?: number;
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

/** A loaded bundle. Searches run one at a time, in call order. */
export interface Engine {
  readonly info: EngineInfo;
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
 * and onnxruntime-web. Rejects with an error whose message starts with `websem:` and says what
 * to do (a missing or tampered file, an unknown bundle format, a bundle that cannot be served):
 * a {@link WebsemError}.
 *
 * @param bundleUrl the bundle folder (the one holding manifest.json), absolute or relative to the
 *   page (default "./").
 */
export function load(bundleUrl?: string | URL, options?: LoadOptions): Promise<Engine>;
