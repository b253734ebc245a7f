// websem shards: the verified, byte-bounded cache of a partitioned bundle's shard files (IVF
// lists, codes, lexical term ranges, document fragments) and of the row BLOCKS of IVF lists,
// fetched on demand by the queries that need them (partitioned.js).
//
// Every shard is checked against manifest.json (size + sha256, bundle.js checkBytes) before it
// is parsed or used, like every other bundle file. A row block is read as an HTTP byte range of
// its (manifest-listed) rows file and checked against the block's sha256 in the list's codes
// shard (itself checked against the manifest); a server that ignores Range (answers 200 with the
// whole file) gets the whole file checked against the manifest, then cut into blocks.
// A transient failure (fetch rejects, the body breaks off, HTTP 5xx) is retried once; a 404, a
// short range or a file or block that fails its check is not (it will not get better), and fails
// the query with a WebsemError naming the file (and block). A failure is not cached, so a later
// query that needs the file fetches it again; the cache stays usable.
//
// Held shards and blocks live in one LRU bounded by `cacheBytes` (what each parsed value holds,
// see `get`), blocks under the key `path#k`: memory stays bounded however many queries run.
// Shards are not reported as progress events: the engine's load timings must not grow per query.
import { checkBytes, detach, manifestEntry } from "./bundle.js";
import { WebsemError } from "./errors.js";

/**
 * The default shard cache budget (load(url, {cacheBytes})): about ten cold queries' shards at 1M
 * chunks (a query reads ~1.4 MB), so a repeated or refined query fetches nothing. Chosen by
 * measurement (docs/partitioned.md, "Memory and speed in the browser"): 64 MiB put the 1M tab at
 * 1.4x the memory of a 1k one, 16 MiB within 1.2x, at a lower hit rate over 200 different queries.
 */
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;

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

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

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
    this.held = new Map(); // key (path, or path#k for a block) -> {value, size}, least recently used first
    this.pending = new Map(); // key -> Promise of the parsed value
    this.heldBytes = 0;
    // Set once the server answered a Range request with the whole file (200): from then on,
    // block reads ask for whole files (one request a file, not one a run).
    this.rangesIgnored = false;
    this.counts = { hits: 0, misses: 0, fetched_bytes: 0, range_requests: 0 };
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
    const cached = this.#cached(path);
    if (cached) {
      this.counts.hits++;
      return cached;
    }
    this.counts.misses++;
    const p = this.#load(path, parse);
    this.#pend(path, p);
    return p;
  }

  /**
   * Blocks `blocks` (block numbers, ascending, distinct) of the file at `path`, parsed, in that
   * order: each from the cache, from a read already under way, or read now. Missing blocks with
   * consecutive numbers are read as one byte range (one request a run); the first `hashBytes`
   * (n, 32 when not given) bytes of each block's sha256 must be `hashes[n k, n k + n)` (from
   * `hashPath`: the codes shard that carries them, or a split model's hash list of 16-byte ones).
   * When the server answers with the whole file (200) it is checked against the manifest and
   * `check(bytes)` (which throws when its header disagrees), and all its blocks are kept.
   *
   * @template T
   * @param {string} path
   * @param {{blocks: number[], count: number, range: (k: number) => [number, number],
   *   hashes: Uint8Array, hashBytes?: number, hashPath: string, parse: (bytes: Uint8Array, k: number) => T,
   *   check?: (bytes: Uint8Array) => void}} spec count: the file's number of blocks;
   *   range(k): block k's bytes [start, end) in the file; parse must copy what its value keeps:
   *   the bytes read are detached once every block is parsed (freed now, not at the next GC)
   * @returns {Promise<T[]>}
   */
  async getBlocks(path, spec) {
    const out = new Array(spec.blocks.length);
    const waits = [];
    let run = [];
    const runs = [run];
    spec.blocks.forEach((k, i) => {
      const cached = this.#cached(`${path}#${k}`);
      if (cached) {
        this.counts.hits++;
        waits.push(cached.then((v) => (out[i] = v)));
        return;
      }
      this.counts.misses++;
      // A server known to ignore Range sends whole files: one request for all of them.
      if (run.length && run.at(-1)[0] !== k - 1 && !this.rangesIgnored) runs.push((run = []));
      run.push([k, i]);
    });
    for (const r of runs) {
      if (!r.length) continue;
      const read = this.#loadRun(path, r.map(([k]) => k), spec);
      for (const [k, i] of r) {
        const p = read.then((values) => values.get(k));
        this.#pend(`${path}#${k}`, p);
        waits.push(p.then((v) => (out[i] = v)));
      }
    }
    await Promise.all(waits);
    return out;
  }

  /** `{bytes, files, hits, misses, fetched_bytes, range_requests}`: held now, and counted since load. */
  stats() {
    return { bytes: this.heldBytes, files: this.held.size, ...this.counts };
  }

  /** A promise of the value held or being read under `key` (most recently used now), or null. */
  #cached(key) {
    const entry = this.held.get(key);
    if (entry) {
      this.held.delete(key); // most recently used goes last
      this.held.set(key, entry);
      return Promise.resolve(entry.value);
    }
    return this.pending.get(key) ?? null;
  }

  #pend(key, p) {
    this.pending.set(key, p);
    const done = () => this.pending.delete(key);
    p.then(done, done);
  }

  async #load(path, parse) {
    const entry = manifestEntry(this.manifest, path, new URL("manifest.json", this.base).href);
    const url = new URL(path, this.base).href;
    const { buf } = await this.#retried(url);
    await checkBytes(path, buf, entry, url);
    const value = parse(new Uint8Array(buf));
    this.#keep(path, value);
    return value;
  }

  /** One run of consecutive blocks `ks` of `path`: Map k -> parsed value (all kept). */
  async #loadRun(path, ks, spec) {
    const entry = manifestEntry(this.manifest, path, new URL("manifest.json", this.base).href);
    const url = new URL(path, this.base).href;
    const start = spec.range(ks[0])[0];
    const end = spec.range(ks.at(-1))[1];
    const range = `bytes=${start}-${end - 1}`;
    const ask = !this.rangesIgnored;
    if (ask) this.counts.range_requests++;
    const { status, buf } = await this.#retried(url, ask ? { headers: { Range: range } } : undefined);
    const values = new Map();
    if (status === 206) {
      if (buf.byteLength !== end - start) {
        throw new WebsemError(
          `${path} bytes ${start}-${end - 1} (blocks ${ks[0]}-${ks.at(-1)}) came back as ${buf.byteLength} bytes, ` +
            `not ${end - start}, from ${url}; the file is truncated or the server or a proxy changed the response: ` +
            "re-upload the whole bundle folder and serve it as plain static files (e.g. `websem serve BUNDLE`)",
        );
      }
      const bytes = new Uint8Array(buf);
      for (const k of ks) {
        const [a, b] = spec.range(k);
        values.set(k, await this.#block(path, k, bytes.subarray(a - start, b - start), a, spec));
      }
      detach(bytes);
      return values;
    }
    // 200: the whole file (the server ignored Range, or none was asked).
    if (ask) this.rangesIgnored = true;
    await checkBytes(path, buf, entry, url);
    const bytes = new Uint8Array(buf);
    spec.check?.(bytes);
    // Blocks no query asked for are kept first (least recently used) and only while they fit
    // without evicting anything; blocks held or under way already stay as they are.
    const wanted = new Set(ks);
    const order = [...Array(spec.count).keys()].filter((k) => !wanted.has(k)).concat(ks);
    for (const k of order) {
      const key = `${path}#${k}`;
      if (!wanted.has(k) && (this.held.has(key) || this.pending.has(key))) continue;
      const [a, b] = spec.range(k);
      values.set(k, await this.#block(path, k, bytes.subarray(a, b), a, spec, wanted.has(k)));
    }
    detach(bytes);
    return values;
  }

  /** Block k's verified, parsed value, kept (`asked` false: only if it fits without evicting). */
  async #block(path, k, bytes, at, spec, asked = true) {
    const n = spec.hashBytes ?? 32;
    const got = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).subarray(0, n);
    const want = spec.hashes.subarray(n * k, n * k + n);
    if (want.length !== n || got.some((x, i) => x !== want[i])) {
      throw new WebsemError(
        `${path} block ${k} (bytes ${at}-${at + bytes.length - 1}) does not match the sha256 in ${spec.hashPath} ` +
          `(got ${hex(got)}, expected ${want.length === n ? hex(want) : "none"}); the file is corrupt, tampered ` +
          "with or from another build: re-upload the whole bundle folder or rebuild it with `websem build`",
      );
    }
    const value = spec.parse(bytes, k);
    const key = `${path}#${k}`;
    if (asked || this.#size(value, bytes.length) <= this.budget - this.heldBytes) this.#keep(key, value);
    return value;
  }

  /** Fetch `url` (with `init`), retrying a transient failure once: `{status, buf}`. */
  async #retried(url, init) {
    try {
      return await this.#fetch(url, init);
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      return this.#fetch(url, init).catch((again) => {
        throw again instanceof Transient ? new WebsemError(again.message) : again;
      });
    }
  }

  /** One attempt: status and body, or a Transient (worth one retry) or a WebsemError (not). */
  async #fetch(url, init) {
    let response;
    try {
      response = await (init ? this.fetch(url, init) : this.fetch(url));
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
    let buf;
    try {
      buf = await response.arrayBuffer();
    } catch (e) {
      throw new Transient(`could not read ${url} (${e?.message ?? e}), twice; check the connection to the bundle's host`);
    }
    this.counts.fetched_bytes += buf.byteLength; // what arrived, verified or not
    return { status: response.status, buf };
  }

  #size(value, fallback) {
    return typeof value?.heldBytes === "number" ? value.heldBytes : fallback;
  }

  #keep(key, value) {
    const size = this.#size(value, value?.byteLength ?? 0);
    this.held.set(key, { value, size });
    this.heldBytes += size;
    this.#evict();
  }

  #evict() {
    // Evict least recently used first; a value bigger than the whole budget is used by the query
    // that fetched it and not kept.
    for (const [old, e] of this.held) {
      if (this.heldBytes <= this.budget) break;
      this.held.delete(old);
      this.heldBytes -= e.size;
    }
  }
}
