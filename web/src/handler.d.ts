// Types of the edge handler (runtime/handler.js in a bundle; docs/edge.md). Shared types come from
// the public module's declarations, "../websem.js" in the bundle's layout (web/src/index.d.ts).
//
//   import { createHandler } from "./bundle/runtime/handler.js";
//   const handler = createHandler(bundleUrl, { engineOptions: { fetch } });  // once per isolate
//   export default { fetch: handler };                                       // or Deno.serve(handler)

import type { Engine, EngineInfo, EngineOptions, Facets, Hit, MemoryUsage, SearchMode } from "../websem.js";

/** Options of {@link createHandler}. */
export interface HandlerOptions {
  /** Passed to the engine (fetch, threads, ortModule, ...; see EngineOptions). */
  engineOptions?: EngineOptions;
  /** The engine factory (default: the runtime's own). */
  createEngine?: (bundleUrl: string, options: EngineOptions) => Promise<Engine>;
  /** `k` when the request names none (default: the bundle's `manifest.search.k`). */
  k?: number;
  /** Largest `k` accepted (default 100). */
  maxK?: number;
  /** Longest `q` accepted, in UTF-16 code units (default 2048). */
  maxQueryChars?: number;
  /** Searches allowed to wait at once; beyond, 503 `overloaded` (default 512). */
  maxPending?: number;
  /** Path prefix the routes live under, e.g. "/api" (default ""). */
  prefix?: string;
  /** `Access-Control-Allow-Origin` value, `null` for none (default "*"). */
  cors?: string | null;
  /** After a failed start, answer 503 from the cached error for this long before loading again (ms, default 5000). */
  retryAfterMs?: number;
}

/** Workers' third `fetch` argument: keeps an engine start begun by `/healthz` alive. */
export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** The handler's own counters (also part of the `/healthz` body). */
export interface HandlerState {
  status: "ok" | "starting" | "error";
  ready: boolean;
  pending: number;
  served: number;
  starts: number;
  uptime_ms: number;
}

/** `(Request) => Promise<Response>`, plus lifecycle helpers. */
export interface Handler {
  (request: Request, env?: unknown, ctx?: ExecutionContext): Promise<Response>;
  /** Start the engine now (the first request does it otherwise); concurrent calls share one start. */
  warmup(): Promise<Engine>;
  state(): HandlerState;
  /** Release the engine (tests, graceful shutdown). */
  close(): Promise<void>;
}

/** 200 body of `GET /search?q=&k=&mode=&filter.<field>=value`. */
export interface SearchResponse {
  query: string;
  k: number;
  mode: SearchMode;
  /** The `filter.<field>` parameters as `{field: [values]}`, `null` without any. */
  filters: Record<string, string[]> | null;
  hits: Hit[];
  facets: Facets;
  took_ms: number;
}

/** 200 body of `GET /healthz` once the engine is ready. */
export interface HealthResponse extends HandlerState {
  status: "ok";
  modes: [SearchMode, ...SearchMode[]];
  default_mode: SearchMode;
  info: EngineInfo;
  memory: MemoryUsage;
}

/** `code` of an error body (`request_too_large` and `bad_request` come from the Node adapter). */
export type ErrorCode =
  | "missing_query"
  | "empty_query"
  | "bad_query"
  | "query_too_long"
  | "bad_k"
  | "bad_mode"
  | "bad_filter"
  | "bad_url"
  | "not_found"
  | "method_not_allowed"
  | "request_too_large"
  | "bad_request"
  | "engine_failed"
  | "overloaded"
  | "internal";

/** Every 4xx/5xx body. */
export interface ErrorResponse {
  error: { code: ErrorCode; message: string };
}

/**
 * The fetch handler of one bundle. The engine starts on the first request (or `warmup()`), once.
 *
 * @param bundle the bundle folder's URL, or `{url, ...engineOptions}`.
 */
export function createHandler(
  bundle: string | URL | ({ url: string | URL } & EngineOptions),
  options?: HandlerOptions,
): Handler;
