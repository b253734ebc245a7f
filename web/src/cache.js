// websem cache: the Cache API store that repeat visits read the big bundle files from.
//
// The model, the Pyodide snapshot and every other bundle file of at least CACHE_MIN_BYTES (except
// JS modules and wasm binaries) go into one Cache Storage cache, keyed by their URL plus their sha256
// (`FILE?websem-sha256=HEX`), so a rebuilt file gets a new key and a stale one is never served.
// A cached copy is still verified against manifest.json like a download (bundle.js
// VerifiedFiles): a corrupt or tampered entry is deleted and the file fetched again. The store
// exists only in a browser (window or worker) on an http(s) page whose origin may use Cache
// Storage; elsewhere (Node, Deno, Cloudflare Workers, opaque origins, `load(url, {cache: false})`)
// openFileCache returns null and every file comes from the network as before.

/** The Cache Storage cache that holds the bundle files (one per origin, shared by bundles). */
export const CACHE_NAME = "websem-files-v1";
/** Files from this size on are kept in the cache; smaller ones are left to the HTTP cache. */
export const CACHE_MIN_BYTES = 1 << 20;
/** The query parameter of a cache key that carries the file's sha256. */
const SHA_PARAM = "websem-sha256";

function isWorkerd() {
  return globalThis.navigator?.userAgent === "Cloudflare-Workers";
}

/** Whether this is a browser context: a window or a Web Worker (not Node, Deno or workerd). */
export function isBrowser() {
  if (isWorkerd()) return false;
  return typeof globalThis.document !== "undefined" || typeof globalThis.WorkerGlobalScope !== "undefined";
}

/**
 * Whether `path` (with manifest entry `entry`) is kept in the cache. JS modules are not: the
 * runtime imports them by URL after verifying them (no `blob:` in the page's CSP), so the HTTP
 * cache serves them anyway. Nor are wasm binaries: Chromium keeps V8's compiled code only with
 * the HTTP cache entry of a streamed response, never with a Cache Storage entry, so a wasm file
 * read from Cache Storage is compiled again on every visit (traced in Chromium: no code-cache hit,
 * ~5,300 functions compiled again) while one from the HTTP cache is not.
 */
export function isCached(entry, path = "") {
  return Boolean(entry) && entry.size >= CACHE_MIN_BYTES && !/\.(m?js|wasm)$/.test(path);
}

/**
 * A bundle's view of the Cache Storage cache: match / put / remove by (path, sha256), and prune
 * (drop the entries of this bundle whose sha256 the manifest no longer lists). Every operation
 * swallows Cache Storage failures (quota, eviction, a browser that refuses): the cache is an
 * optimisation only.
 */
export class FileCache {
  constructor(cache, base) {
    this.cache = cache;
    this.base = base;
  }

  key(path, sha256) {
    const url = new URL(path, this.base);
    url.searchParams.set(SHA_PARAM, sha256);
    return url.href;
  }

  /** @returns {Promise<Response|null>} the cached response of (path, sha256), or null. */
  async match(path, sha256) {
    try {
      return (await this.cache.match(this.key(path, sha256))) ?? null;
    } catch {
      return null;
    }
  }

  /** Stores `bytes` (verified; a Uint8Array or a Blob) as (path, sha256); resolves to whether the cache took it. */
  async put(path, sha256, bytes, contentType = "application/octet-stream") {
    const size = bytes instanceof Blob ? bytes.size : bytes.byteLength;
    try {
      // A Blob body goes to Cache Storage as a blob; a Response over the bytes themselves is
      // drained through this thread chunk by chunk (traced on a cold load: the put took half as
      // long on the engine's thread, where ORT's session creation waits behind it).
      const body = bytes instanceof Blob ? bytes : new Blob([bytes]);
      await this.cache.put(
        this.key(path, sha256),
        new Response(body, { headers: { "content-type": contentType, "content-length": String(size) } }),
      );
      return true;
    } catch {
      return false; // e.g. QuotaExceededError
    }
  }

  /** Deletes the entry of (path, sha256); resolves to whether there was one. */
  async remove(path, sha256) {
    try {
      return await this.cache.delete(this.key(path, sha256));
    } catch {
      return false;
    }
  }

  /**
   * Deletes this bundle's entries (keys under its base URL) whose sha256 is not the one the
   * manifest lists for that path, or whose file is no longer kept here (isCached, e.g. the wasm
   * binaries an earlier runtime stored): what an earlier build of the bundle left behind.
   * @returns {Promise<number>} the number of entries deleted
   */
  async prune(manifest) {
    let deleted = 0;
    try {
      for (const request of await this.cache.keys()) {
        const url = new URL(request.url);
        const sha = url.searchParams.get(SHA_PARAM);
        url.search = "";
        if (!sha || !url.href.startsWith(this.base)) continue;
        const path = decodeURIComponent(url.href.slice(this.base.length));
        const entry = manifest.files?.[path];
        const stale = entry?.sha256 !== sha || !isCached(entry, path);
        if (stale && (await this.cache.delete(request))) deleted++;
      }
    } catch {
      // Cache Storage unavailable meanwhile: nothing to prune.
    }
    return deleted;
  }
}

/**
 * The FileCache of the bundle at `base`, or null where there is none: `option` false, not a
 * browser, not an http(s) bundle, no Cache Storage (insecure context), or an origin that may not
 * use it (`caches.open` throws a SecurityError on opaque origins, e.g. sandboxed iframes).
 *
 * @param {boolean|undefined} option `load()`'s `cache` option (default true)
 * @param {string} base the bundle URL, ending with "/"
 * @returns {Promise<FileCache|null>}
 */
export async function openFileCache(option, base) {
  if (option === false || !isBrowser() || !/^https?:/.test(base)) return null;
  try {
    const storage = globalThis.caches;
    if (typeof storage?.open !== "function") return null;
    return new FileCache(await storage.open(CACHE_NAME), base);
  } catch {
    return null;
  }
}
