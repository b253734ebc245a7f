// websem shards: the verified, byte-bounded cache of a partitioned bundle's shard files (IVF
// lists, lexical term ranges, document fragments), fetched on demand by the queries that need
// them (partitioned.js).
//
// Every shard is checked against manifest.json (size + sha256, bundle.js checkBytes) before it
// is parsed or used, like every other bundle file. A transient failure (fetch rejects, the body
// breaks off, HTTP 5xx) is retried once; a 404 or a file that fails its check is not (it will
// not get better), and fails the query with a WebsemError naming the file. A failure is not
// cached, so a later query that needs the file fetches it again; the cache stays usable.
//
// Held shards live in an LRU bounded by `cacheBytes` (what each parsed shard holds, see `get`):
// memory stays bounded however many queries run. Shards are not reported as progress events:
// the engine's load timings must not grow per query.
import { checkBytes, manifestEntry } from "./bundle.js";
import { WebsemError } from "./errors.js";

/** The default shard cache budget (load(url, {cacheBytes})). */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/** `cacheBytes` as given (undefined/null: the default), or a WebsemError naming the bad value. */
export function checkCacheBytes(cacheBytes) {
  if (cacheBytes == null) return DEFAULT_CACHE_BYTES;
  if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
    throw new WebsemError(
      `cacheBytes must be a non-negative integer number of bytes (default ${DEFAULT_CACHE_BYTES}), ` +
        `got ${JSON.stringify(cacheBytes)}`,
    );
  }
  return cacheBytes;
}

class Transient extends Error {}

export class ShardCache {
  /**
   * @param {string} base the bundle folder URL (ending with "/")
   * @param {object} manifest the checked manifest (its `files` table)
   * @param {typeof fetch} fetchFn
   * @param {{cacheBytes?: number}} [opts]
   */
  constructor(base, manifest, fetchFn, { cacheBytes } = {}) {
    this.base = base;
    this.manifest = manifest;
    this.fetch = fetchFn;
    this.budget = checkCacheBytes(cacheBytes);
    this.held = new Map(); // path -> {value, size}, least recently used first
    this.pending = new Map(); // path -> Promise of the parsed value
    this.heldBytes = 0;
    this.counts = { hits: 0, misses: 0, fetched_bytes: 0 };
  }

  /**
   * The parsed shard at `path` (relative to the bundle): from the cache, from a fetch already
   * under way for it, or fetched, verified and parsed now. `parse(bytes: Uint8Array)` turns the
   * verified bytes into what callers use; the cache charges `value.heldBytes` when the value
   * says how much it holds (e.g. float16 rows widened to float32), else the file's size.
   *
   * @template T
   * @param {string} path
   * @param {(bytes: Uint8Array) => T} [parse]
   * @returns {Promise<T>}
   */
  get(path, parse = (bytes) => bytes) {
    const entry = this.held.get(path);
    if (entry) {
      this.counts.hits++;
      this.held.delete(path); // most recently used goes last
      this.held.set(path, entry);
      return Promise.resolve(entry.value);
    }
    let p = this.pending.get(path);
    if (p) {
      this.counts.hits++;
      return p;
    }
    this.counts.misses++;
    p = this.#load(path, parse).finally(() => this.pending.delete(path));
    this.pending.set(path, p);
    return p;
  }

  /** `{bytes, files, hits, misses, fetched_bytes}`: held now, and counted since load. */
  stats() {
    return { bytes: this.heldBytes, files: this.held.size, ...this.counts };
  }

  async #load(path, parse) {
    const entry = manifestEntry(this.manifest, path, new URL("manifest.json", this.base).href);
    const url = new URL(path, this.base).href;
    let buf;
    try {
      buf = await this.#fetch(url);
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      buf = await this.#fetch(url).catch((again) => {
        throw again instanceof Transient ? new WebsemError(again.message) : again;
      });
    }
    await checkBytes(path, buf, entry, url);
    this.counts.fetched_bytes += buf.byteLength;
    const value = parse(new Uint8Array(buf));
    const size = typeof value?.heldBytes === "number" ? value.heldBytes : buf.byteLength;
    this.#keep(path, value, size);
    return value;
  }

  /** One attempt: the body's bytes, or a Transient (worth one retry) or a WebsemError (not). */
  async #fetch(url) {
    let response;
    try {
      response = await this.fetch(url);
    } catch (e) {
      throw new Transient(`could not fetch ${url} (${e?.message ?? e}), twice; check that the bundle is served and reachable`);
    }
    if (response.status >= 500) {
      throw new Transient(
        `could not fetch ${url} (HTTP ${response.status}), twice; the server failed, try again later or ` +
          "check the host serving the bundle",
      );
    }
    if (!response.ok) {
      throw new WebsemError(
        `could not fetch ${url} (HTTP ${response.status}); upload the complete bundle folder ` +
          "(`websem build` output) and serve it as static files, e.g. `websem serve BUNDLE`",
      );
    }
    try {
      return await response.arrayBuffer();
    } catch (e) {
      throw new Transient(`could not read ${url} (${e?.message ?? e}), twice; check the connection to the bundle's host`);
    }
  }

  #keep(path, value, size) {
    this.held.set(path, { value, size });
    this.heldBytes += size;
    // Evict least recently used first; a shard bigger than the whole budget is used by the query
    // that fetched it and not kept.
    for (const [old, e] of this.held) {
      if (this.heldBytes <= this.budget) break;
      this.held.delete(old);
      this.heldBytes -= e.size;
    }
  }
}
