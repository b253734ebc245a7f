// websem fetch handler: one `(Request) => Promise<Response>` for serverless and edge runtimes
// (Node's http server via node.js, Deno.serve, Cloudflare Workers, Vercel Edge, ...).
//
// Web-standard APIs only (Request, Response, URL, JSON): no Node, Deno or Workers globals here.
// Routes:
//   GET /search?q=...&k=10&mode=hybrid&filter.tags=a&filter.tags=b&filter.section=x
//                                     -> 200 {query, k, mode, filters, hits: [{id, score, title, url, snippet,
//                                        highlights}], facets, took_ms}
//   GET /healthz                      -> 200 {status: "ok", ...} once the engine is ready,
//                                        503 {status: "starting"|"error"} before that
// Every failure is a JSON body {error: {code, message}} with a 4xx/5xx status, never a crash.
//
// The search rules are the bundle's (manifest.search, as the engine's info.search and info.modes):
// the modes and the default mode, the default k. The handler adds only HTTP limits (maxK, query
// length, queue depth) and checks a mode with the engine's own check (search.js resolveMode).

import { createEngine as defaultCreateEngine } from "./engine.js";
import { errorMessage } from "./errors.js";
import { resolveMode } from "./search.js";

/** Query parameters of the form `filter.<field>=value` (repeatable: any value within a field). */
const FILTER_PREFIX = "filter.";
const MAX_FILTER_VALUES = 64;
/** Longer than any mode name: a longer `mode=` is cut to this in the error message. */
const MAX_MODE_CHARS = 40;

const DEFAULTS = {
  // k: when set, the default k instead of the bundle's manifest.search.k
  k: null,
  maxK: 100,
  // The model sees at most 256 wordpieces (~1-2 KB of text); anything far longer only costs
  // tokenizer time in Pyodide, so it is refused instead of silently truncated.
  maxQueryChars: 2048,
  // Searches are serialised on one ORT session; beyond this many waiting requests, shed load
  // with 503 + Retry-After instead of growing memory and latency without bound.
  maxPending: 512,
  prefix: "",
  cors: "*",
  // After a failed start, answer 503 from the cached error for this long before loading again:
  // a broken bundle must not make every request pay (and allocate) a full engine load.
  retryAfterMs: 5000,
};

/** A JSON response with the headers every route shares. */
function json(status, body, extra = {}, cors = DEFAULTS.cors) {
  const headers = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...extra };
  if (cors) headers["access-control-allow-origin"] = cors;
  return new Response(JSON.stringify(body), { status, headers });
}

function fail(status, code, message, extra, cors) {
  return json(status, { error: { code, message: errorMessage(message) } }, extra, cors);
}

/** Thrown by the parameter parsers; turned into a 4xx by the handler. */
class BadRequest extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function parseQuery(params, maxQueryChars) {
  const values = params.getAll("q");
  if (values.length > 1) {
    throw new BadRequest(400, "bad_query", `q was given ${values.length} times; pass it once: /search?q=...`);
  }
  const q = values[0];
  if (q === undefined) {
    throw new BadRequest(400, "missing_query", "q is missing; pass the search text as /search?q=...");
  }
  if (!q.trim()) {
    throw new BadRequest(400, "empty_query", "q is empty; pass some search text as /search?q=...");
  }
  if (q.length > maxQueryChars) {
    throw new BadRequest(
      400,
      "query_too_long",
      `q has ${q.length} characters, more than the limit of ${maxQueryChars} ` +
        "(the model reads at most 256 wordpieces); send a shorter query",
    );
  }
  return q;
}

/** The `k` parameter, or null when absent (the default is applied once the engine is known). */
function parseK(params, maxK) {
  const raw = params.get("k");
  if (raw === null || raw === "") return null;
  // Digits only: "-1", "1e9", "1.5", "0x10" and " 3" are all refused with the same clear message.
  if (!/^[0-9]{1,9}$/.test(raw) || Number(raw) < 1 || Number(raw) > maxK) {
    throw new BadRequest(
      400,
      "bad_k",
      `k=${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}...` : raw)} is not allowed; ` +
        `k must be an integer from 1 to ${maxK}`,
    );
  }
  return Number(raw);
}

/** The `mode` parameter, or null when absent; checked against the bundle's modes in `search`. */
function parseMode(params) {
  const raw = params.get("mode");
  return raw === null || raw === "" ? null : raw.slice(0, MAX_MODE_CHARS);
}

/**
 * `filter.<field>=value` parameters as `{field: [values]}` (the engine's / `allowed_docs`
 * form: any value within a field, every field must match), or null when there are none.
 */
function parseFilters(params) {
  const filters = {};
  let n = 0;
  for (const [key, value] of params) {
    if (!key.startsWith(FILTER_PREFIX)) continue;
    const field = key.slice(FILTER_PREFIX.length);
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(field)) {
      throw new BadRequest(
        400,
        "bad_filter",
        `filter field ${JSON.stringify(field.slice(0, 40))} is invalid; pass filters as filter.<field>=value, e.g. filter.tags=python`,
      );
    }
    if (!value.trim()) {
      throw new BadRequest(400, "bad_filter", `filter.${field} is empty; give it a value or leave it out`);
    }
    if (++n > MAX_FILTER_VALUES) {
      throw new BadRequest(400, "bad_filter", `more than ${MAX_FILTER_VALUES} filter values; send fewer`);
    }
    (filters[field] ??= []).push(value);
  }
  return n ? filters : null;
}

/**
 * Build the fetch handler for one bundle.
 *
 * The engine is started lazily, once: the first request (or `warmup()`) starts it and every
 * request that arrives meanwhile awaits the same promise. If loading fails, those requests get
 * a 503 with the `websem:` error, and the first request after `retryAfterMs` tries again.
 *
 * @param {string|URL|object} bundle bundle folder URL, or `{url, ...engineOptions}`
 * @param {object} [options]
 * @param {object} [options.engineOptions] passed to createEngine (fetch, threads, ortWasmModule, ...)
 * @param {Function} [options.createEngine] engine factory (default: engine.js createEngine)
 * @param {number} [options.k] default k (the bundle's manifest.search.k)
 * @param {number} [options.maxK] largest k accepted (100)
 * @param {number} [options.maxQueryChars] longest q accepted (2048)
 * @param {number} [options.maxPending] searches allowed to wait at once before 503 (512)
 * @param {string} [options.prefix] path prefix the routes live under, e.g. "/api"
 * @param {string|null} [options.cors] Access-Control-Allow-Origin value, null for none ("*")
 * @returns {((request: Request, env?: object, ctx?: {waitUntil: Function}) => Promise<Response>) &
 *   {warmup: () => Promise<object>, state: () => object}} (Workers: pass `fetch`'s env and ctx through)
 */
export function createHandler(bundle, options = {}) {
  const cfg = { ...DEFAULTS, ...options };
  const { url: bundleUrl, engineOptions } = normalizeBundle(bundle, options.engineOptions);
  const create = options.createEngine ?? defaultCreateEngine;
  const cors = cfg.cors;
  const prefix = cfg.prefix.replace(/\/+$/, "");

  let enginePromise = null;
  let engine = null;
  let lastError = null;
  let pending = 0;
  let served = 0;
  let starts = 0;
  let failedAt = 0;
  // Set on the first request: Cloudflare Workers freeze the clock at 0 (1970) in global scope,
  // where a Worker typically calls createHandler.
  let startedAt = null;

  /** The single shared start: concurrent callers get the same promise. */
  function start() {
    startedAt ??= Date.now();
    if (engine) return Promise.resolve(engine);
    if (!enginePromise && lastError && Date.now() - failedAt < cfg.retryAfterMs) {
      return Promise.reject(lastError);
    }
    if (!enginePromise) {
      lastError = null;
      starts++;
      enginePromise = Promise.resolve()
        // An API answers in the mode asked for: no lexical tier standing in for hybrid, the
        // engine starts whole (docs/architecture.md, "Tiers").
        .then(() => create(bundleUrl, { progressive: false, ...engineOptions }))
        .then(
          (e) => {
            engine = e;
            return e;
          },
          (err) => {
            lastError = err;
            failedAt = Date.now();
            // Let a later request retry (a transient fetch error must not brick the isolate).
            enginePromise = null;
            throw err;
          },
        );
    }
    return enginePromise;
  }

  function state() {
    return {
      status: engine ? "ok" : lastError && !enginePromise ? "error" : "starting",
      ready: Boolean(engine),
      pending,
      served,
      starts,
      uptime_ms: startedAt == null ? 0 : Date.now() - startedAt,
    };
  }

  async function healthz(ctx) {
    if (!engine && !enginePromise) {
      const started = start().catch(() => {}); // within retryAfterMs: the cached error
      // 2026-11-28: Workers (workerd) stop a request's pending I/O once its response is sent, so
      // a start kicked off by a 503 /healthz would hang forever; waitUntil keeps it running.
      ctx?.waitUntil(started);
    }
    const s = state();
    if (engine) {
      const modes = engine.info.modes;
      // memory: the engine's wasm heaps (bytes), what an edge isolate's memory limit counts.
      const memory = await engine.memory();
      return json(200, { ...s, modes, default_mode: modes[0], info: engine.info, memory }, {}, cors);
    }
    if (lastError && !enginePromise) {
      return json(503, { ...s, error: { code: "engine_failed", message: errorMessage(lastError) } }, {}, cors);
    }
    return json(503, s, { "retry-after": "1" }, cors);
  }

  async function search(url) {
    const params = url.searchParams;
    const q = parseQuery(params, cfg.maxQueryChars);
    const askedK = parseK(params, cfg.maxK);
    const askedMode = parseMode(params);
    const filters = parseFilters(params);
    if (pending >= cfg.maxPending) {
      return fail(503, "overloaded", `${pending} searches are already waiting; retry shortly`, { "retry-after": "1" }, cors);
    }
    pending++;
    try {
      let e;
      try {
        e = await start();
      } catch (err) {
        return fail(503, "engine_failed", errorMessage(err), { "retry-after": "5" }, cors);
      }
      let mode;
      try {
        mode = resolveMode(askedMode, e.info.modes);
      } catch (err) {
        throw new BadRequest(400, "bad_mode", errorMessage(err));
      }
      const k = askedK ?? cfg.k ?? e.info.search.k;
      const t0 = now();
      let result;
      try {
        result = await e.searchFull(q, { k, mode, ...(filters ? { filters } : {}) });
      } catch (err) {
        // The request was validated above; a filter field this bundle lacks is the client's to
        // fix: 400 with the one `websem:` line. Anything else stays a 5xx.
        const line = /websem: unknown filter field[^\n]*/.exec(err?.message ?? "");
        if (line) throw new BadRequest(400, "bad_filter", line[0]);
        throw err;
      }
      served++;
      const body = { query: q, k, mode, filters, hits: result.hits, facets: result.facets, took_ms: round(now() - t0) };
      return json(200, body, {}, cors);
    } finally {
      pending--;
    }
  }

  async function handler(request, ...rest) {
    // Workers call fetch(request, env, ctx): ctx.waitUntil lets a start outlive its request.
    const ctx = rest.find((arg) => typeof arg?.waitUntil === "function");
    try {
      let url;
      try {
        url = new URL(request.url);
      } catch {
        return fail(400, "bad_url", `request URL ${JSON.stringify(String(request.url).slice(0, 80))} is invalid`, {}, cors);
      }
      let path = url.pathname;
      if (prefix) {
        if (path !== prefix && !path.startsWith(`${prefix}/`)) {
          return fail(404, "not_found", `no route ${path}; routes: ${prefix}/search, ${prefix}/healthz`, {}, cors);
        }
        path = path.slice(prefix.length) || "/";
      }
      const route = path.replace(/\/+$/, "") || "/";
      if (route !== "/search" && route !== "/healthz") {
        return fail(404, "not_found", `no route ${JSON.stringify(url.pathname.slice(0, 80))}; routes: GET ${prefix}/search?q=..., GET ${prefix}/healthz`, {}, cors);
      }
      if (request.method === "OPTIONS") {
        return new Response(null, {
          status: 204,
          headers: cors
            ? { "access-control-allow-origin": cors, "access-control-allow-methods": "GET, HEAD, OPTIONS", allow: "GET, HEAD, OPTIONS" }
            : { allow: "GET, HEAD, OPTIONS" },
        });
      }
      if (request.method !== "GET" && request.method !== "HEAD") {
        return fail(405, "method_not_allowed", `method ${request.method} is not allowed on ${route}; use GET`, { allow: "GET, HEAD, OPTIONS" }, cors);
      }
      const response = route === "/healthz" ? await healthz(ctx) : await search(url);
      return request.method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
    } catch (err) {
      if (err instanceof BadRequest) return fail(err.status, err.code, err.message, {}, cors);
      return fail(500, "internal", errorMessage(err), {}, cors);
    }
  }

  handler.warmup = start;
  handler.state = state;
  /** Release the engine (tests, graceful shutdown). */
  handler.close = async () => {
    const e = engine ?? (enginePromise ? await enginePromise.catch(() => null) : null);
    engine = null;
    enginePromise = null;
    if (e) await e.close();
  };
  return handler;
}

function normalizeBundle(bundle, engineOptions = {}) {
  // A split model's word rows are read on demand here, not filled in the background: an edge
  // isolate has a tight memory limit, serves few queries, and reads its bundle files locally.
  const defaults = { wordRows: "on-demand" };
  if (bundle && typeof bundle === "object" && !(bundle instanceof URL) && "url" in bundle) {
    const { url, ...rest } = bundle;
    return { url: String(url), engineOptions: { ...defaults, ...rest, ...engineOptions } };
  }
  return { url: String(bundle), engineOptions: { ...defaults, ...engineOptions } };
}

function round(ms) {
  return Math.round(ms * 100) / 100;
}

function now() {
  return globalThis.performance?.now() ?? Date.now();
}
