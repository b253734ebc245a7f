// websem bundle: the verified files of one bundle, reading its manifest and index loading.
//
// Every file is fetched once and checked against manifest.json (sha256 + size) before anyone
// uses it, read as a stream so load() can report bytes loaded / total (progress.js), and the big
// files are kept in the browser's Cache Storage for repeat visits (cache.js), verified again
// whenever they are read from there. readManifest checks the manifest with manifest.js.
import { isBrowser, isCached, openFileCache } from "./cache.js";
import { WebsemError } from "./errors.js";
import { ByteProgress, loadPlan, readBody } from "./progress.js";
import { REBUILD, checkManifest } from "./manifest.js";
import { ShardEntries } from "./shard-entries.js";

// The manifest checks live in manifest.js; these names stay importable from here.
export { FORMAT_VERSIONS, LAYOUTS, checkManifest } from "./manifest.js";

function hex(buffer) {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}

/** The bundle folder URL, with a trailing slash. */
export function asBundleBase(bundleUrl) {
  let href;
  try {
    href = new URL(String(bundleUrl), globalThis.location?.href).href;
  } catch {
    throw new WebsemError(
      `bundle URL ${JSON.stringify(String(bundleUrl))} is not a URL; pass an absolute URL or ` +
        "new URL('./', import.meta.url)",
    );
  }
  return href.endsWith("/") ? href : `${href}/`;
}

/** Frees an ArrayBuffer's memory at once by detaching it (where ArrayBuffer.transfer exists). */
export function detach(view) {
  try {
    view?.buffer?.transfer?.(0);
  } catch {
    // Not transferable (e.g. a wasm memory): leave it to the GC.
  }
}

export async function fetchBytes(fetchFn, url) {
  return (await fetchResponse(fetchFn, url)).arrayBuffer();
}

/** The response for `url` (status 2xx), or the WebsemError saying why there is none. */
export async function fetchResponse(fetchFn, url) {
  let response;
  try {
    response = await fetchFn(url);
  } catch (e) {
    throw new WebsemError(`could not fetch ${url} (${e.message}); check that the bundle is served and reachable`);
  }
  if (!response.ok) {
    throw new WebsemError(
      `could not fetch ${url} (HTTP ${response.status}); upload the complete bundle folder ` +
        "(`websem build` output) and serve it as static files, e.g. `websem serve BUNDLE`",
    );
  }
  return response;
}

/** WebAssembly.compileStreaming of `response` (resolves to the module, or to the error). */
function compileStreaming(response) {
  return WebAssembly.compileStreaming(response).then(
    (module) => module,
    (e) => e,
  );
}

/**
 * Fetches bundle files and checks each against manifest.json (sha256 + size) before anyone uses it.
 * Every file is fetched at most once; callers share the promise.
 *
 * Options: `cache` (false: never use Cache Storage, cache.js), `plan` (false: report each file's
 * byte count as an internal "file-bytes" event, which has no stage and never reaches a user, for
 * another thread's ByteProgress instead of adding them up here), and the engine options that
 * decide which files load() fetches (progress.js loadPlan).
 */
export class VerifiedFiles {
  constructor(base, manifest, fetchFn, onProgress = () => {}, options = {}) {
    checkCacheOption(options.cache);
    this.base = base;
    this.manifest = manifest;
    this.fetch = fetchFn;
    this.onProgress = onProgress;
    this.cache = new Map();
    this.modules = new Map();
    // Parsed JSON by path: readers of the same file (the lexical tier and the flat index both read
    // chunks.json and docs.json) share one parse.
    this.parsed = new Map();
    this.pruned = false;
    // Opened on first use: most small files never ask.
    this.cacheOption = options.cache;
    this.store = null;
    this.progress = options.plan === false ? null : new ByteProgress(loadPlan(manifest, options), onProgress);
    // Browsers compile the two wasm binaries while they stream in, from the Response itself, so
    // the browser's compiled-code cache applies on the next visit (wasmModule).
    this.streamsWasm = isBrowser() && typeof WebAssembly.compileStreaming === "function";
  }

  url(path) {
    return new URL(path, this.base).href;
  }

  /** @returns {Promise<Uint8Array>} the verified bytes of `path` (relative to the bundle). */
  bytes(path) {
    let p = this.cache.get(path);
    if (!p) {
      p = this.#load(path);
      this.cache.set(path, p);
    }
    return p;
  }

  /**
   * The compiled WebAssembly.Module of the wasm file `path`, verified: compiled by
   * WebAssembly.compileStreaming from the response while its bytes are hashed (so the browser's
   * code cache for that URL applies on a repeat visit), and returned only once the sha256 and
   * size match manifest.json. Falls back to WebAssembly.compile of the verified bytes where
   * streaming compilation fails (e.g. a server that does not send `application/wasm`).
   * `onBytes(bytes)`, if this call starts the load, sees the verified bytes once before they are
   * dropped (python.js reads pyodide.asm.wasm's data segments from them).
   */
  wasmModule(path, onBytes = null) {
    let p = this.modules.get(path);
    if (!p) {
      p = this.#compile(path, onBytes);
      this.modules.set(path, p);
    }
    return p;
  }

  /**
   * Drops the cache and detaches every cached buffer except those in `keep` (paths whose bytes
   * are still viewed, e.g. the int8 index). Call only once every consumer has copied its bytes.
   */
  release(keep = new Set()) {
    for (const [path, p] of this.cache) {
      if (!keep.has(path)) p.then(detach, () => {});
    }
    this.cache.clear();
    this.modules.clear();
    this.parsed.clear();
  }

  async text(path) {
    return new TextDecoder().decode(await this.bytes(path));
  }

  /** The parsed JSON of `path`, parsed once (callers share the value: read it, do not change it). */
  json(path) {
    let p = this.parsed.get(path);
    if (!p) {
      p = this.#parse(path);
      this.parsed.set(path, p);
    }
    return p;
  }

  async #parse(path) {
    const text = await this.text(path);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new WebsemError(`${this.url(path)} is not valid JSON (${e.message}); ${REBUILD}`);
    }
  }

  /**
   * An event of the Python worker's VerifiedFiles (python.js): its per-file byte counts go into
   * this one's ByteProgress, everything else on to onProgress.
   */
  relay(event) {
    if (event?.internal === "file-bytes") this.#count(event.file, event.loaded, event.from);
    else this.onProgress(event);
  }

  #count(path, loaded, from) {
    if (this.progress) this.progress.update(path, loaded, from);
    else this.onProgress({ internal: "file-bytes", file: path, loaded, from });
  }

  async #load(path) {
    const { buf } = await this.#obtain(path, null);
    return new Uint8Array(buf);
  }

  async #compile(path, onBytes) {
    let started = 0;
    const streaming = this.streamsWasm
      ? (response) => {
          started = performance.now();
          return compileStreaming(response);
        }
      : null;
    const { buf, side } = await this.#obtain(path, streaming);
    onBytes?.(new Uint8Array(buf));
    let module = side ? await side : null;
    const streamed = module instanceof WebAssembly.Module;
    if (!streamed) {
      started = performance.now();
      module = await WebAssembly.compile(buf);
    }
    // How long compiling took (streaming: from the first byte, overlapping the download): on a
    // repeat visit the browser's code cache makes this a fraction of the cold time (bench/browser.py).
    this.onProgress({ stage: "compiled", file: path, compile_ms: performance.now() - started, streaming: streamed });
    return module;
  }

  /**
   * The Cache Storage store (cache.js FileCache) that keeps `path` (manifest entry `entry`), or
   * null: files too small to keep, JS and wasm, `cache: false`, outside browsers. Opened once, on
   * first use; model.js WordRows keeps the word rows file in it too.
   */
  storeFor(path, entry) {
    if (!isCached(entry, path)) return Promise.resolve(null);
    this.store ??= openFileCache(this.cacheOption, this.base);
    return this.store;
  }

  /**
   * The verified bytes of `path`: from Cache Storage when it holds a good copy (a bad one is
   * deleted and reported as "cache-refused"), else from the network (then stored). `onResponse`
   * sees each response before its body is read; what it returns comes back as `side`.
   */
  async #obtain(path, onResponse) {
    const entry = manifestEntry(this.manifest, path, this.url("manifest.json"));
    const url = this.url(path);
    const store = await this.storeFor(path, entry);
    if (store) {
      const hit = await store.match(path, entry.sha256);
      if (hit) {
        const side = onResponse?.(hit.clone()) ?? null;
        try {
          // Counted once verified: a copy that fails its check must not count as loaded.
          const buf = await readBody(hit, entry.size, url, () => {});
          await checkBytes(path, buf, entry, `${url} (browser Cache Storage)`);
          this.#count(path, buf.byteLength, "cache");
          this.onProgress({ stage: "verified", file: path, bytes: buf.byteLength, from: "cache" });
          return { buf, side };
        } catch (e) {
          await store.remove(path, entry.sha256);
          this.onProgress({ stage: "cache-refused", file: path, reason: String(e?.message ?? e) });
        }
      }
    }
    const response = await fetchResponse(this.fetch, url);
    const side = onResponse?.(response.clone()) ?? null;
    const buf = await readBody(response, entry.size, url, (n) => this.#count(path, n, "network"));
    await checkBytes(path, buf, entry, url);
    this.onProgress({ stage: "verified", file: path, bytes: buf.byteLength });
    if (store) {
      const type = path.endsWith(".wasm") ? "application/wasm" : "application/octet-stream";
      // Not awaited: loading goes on while the browser writes the copy. An older build's
      // entries of this bundle are dropped once, when the first new file is stored.
      store.put(path, entry.sha256, buf, type).then((stored) => {
        if (stored && !this.pruned) {
          this.pruned = true;
          return store.prune(this.manifest);
        }
        return 0;
      });
    }
    return { buf, side };
  }
}

/** Throws the `websem:` error for a `cache` option that is not a boolean (or undefined). */
export function checkCacheOption(value) {
  if (value !== undefined && typeof value !== "boolean") {
    throw new WebsemError(`option cache must be true or false, got ${JSON.stringify(value)}; false keeps bundle files out of the browser's Cache Storage`);
  }
}

/**
 * `manifest.files[path]` (or, for a partitioned bundle's shard, its entry in the compact
 * manifest.shardEntries that readManifest moved it to), or a WebsemError saying the bundle is
 * incomplete.
 */
export function manifestEntry(manifest, path, manifestUrl = "manifest.json") {
  const entry = manifest.files?.[path] ?? manifest.shardEntries?.get(path);
  if (!entry) {
    throw new WebsemError(
      `manifest.json at ${manifestUrl} lists no file ${JSON.stringify(path)}; ` +
        "the bundle is incomplete, rebuild it with `websem build`",
    );
  }
  return entry;
}

/** Throws the integrity error naming `path` unless `buf` (ArrayBuffer) has the size and sha256 of `entry`. */
export async function checkBytes(path, buf, entry, url) {
  const got = buf.byteLength === entry.size ? hex(await crypto.subtle.digest("SHA-256", buf)) : "not computed";
  if (buf.byteLength !== entry.size || got !== entry.sha256) {
    throw new WebsemError(
      `${path} failed its integrity check (sha256 ${got}, ${buf.byteLength} bytes; manifest.json ` +
        `expects ${entry.sha256}, ${entry.size} bytes) at ${url}; the file is corrupt, tampered with ` +
        "or from another build: re-upload the whole bundle folder or rebuild it with `websem build`",
    );
  }
}

/**
 * Fetches and parses manifest.json (not verified: it is the root of trust), then checks it. A
 * partitioned bundle's shard entries move to a compact table (shard-entries.js), still looked up
 * by manifestEntry.
 */
export async function readManifest(fetchFn, base) {
  const manifestUrl = new URL("manifest.json", base).href;
  const bytes = await fetchBytes(fetchFn, manifestUrl);
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new WebsemError(`${manifestUrl} is not valid JSON (${e.message}); ${REBUILD}`);
  }
  checkManifest(manifest, manifestUrl);
  if (manifest.index.layout === "partitioned") ShardEntries.take(manifest);
  return manifest;
}

// ---------------------------------------------------------------------------------------------
// Index

let HALF_TABLE = null;
/** All 65536 float16 values, decoded once: a lookup is faster than bit twiddling per element. */
export function halfTable() {
  if (HALF_TABLE) return HALF_TABLE;
  HALF_TABLE = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    let v;
    if (e === 0) v = f * 2 ** -24;
    else if (e === 31) v = f ? NaN : Infinity;
    else v = (1 + f / 1024) * 2 ** (e - 15);
    HALF_TABLE[h] = s * v;
  }
  return HALF_TABLE;
}

function littleEndianView(bytes, Type) {
  // Copy into an aligned buffer (the verified bytes may sit at any offset).
  const copy = bytes.slice().buffer;
  if (copy.byteLength % Type.BYTES_PER_ELEMENT) {
    throw new WebsemError(`index file has ${copy.byteLength} bytes, not a multiple of ${Type.BYTES_PER_ELEMENT}; rebuild with \`websem build\``);
  }
  return new Type(copy);
}

function mismatch(file, got, want) {
  return new WebsemError(`${file} holds ${got} rows but the index has ${want} chunks; rebuild with \`websem build\``);
}

/** The bundle paths a loaded flat index keeps viewing (never released). */
export function indexPaths(manifest) {
  return new Set(Object.values(manifest.index.files));
}

/**
 * The dense index: vectors (Int8Array + float32 scales, or Float32Array), chunks, docs and the
 * chunk -> document map as an Int32Array (the scoring loop reads it once per chunk, dense.js).
 */
export async function loadIndex(files, manifest) {
  const index = manifest.index;
  const paths = index.files;
  const [vecBytes, scaleBytes, chunks, docs] = await Promise.all([
    files.bytes(paths.vectors),
    index.vector_dtype === "int8" ? files.bytes(paths.scales) : null,
    files.json(paths.chunks),
    files.json(paths.docs),
  ]);
  const dims = index.dims;
  const n = chunks.length;
  let vectors;
  let scales = null;
  if (index.vector_dtype === "int8") {
    vectors = new Int8Array(vecBytes.buffer, vecBytes.byteOffset, vecBytes.byteLength);
    scales = littleEndianView(scaleBytes, Float32Array);
    if (scales.length !== n) throw mismatch(paths.scales, scales.length, n);
  } else if (index.vector_dtype === "float16") {
    const raw = littleEndianView(vecBytes, Uint16Array);
    const table = halfTable();
    vectors = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) vectors[i] = table[raw[i]];
  } else {
    vectors = littleEndianView(vecBytes, Float32Array);
  }
  if (vectors.length !== n * dims) throw mismatch(paths.vectors, vectors.length / dims, n);
  if (index.chunks != null && index.chunks !== n) throw mismatch(paths.chunks, n, index.chunks);
  const chunkDoc = new Int32Array(n);
  for (let c = 0; c < n; c++) {
    const d = chunks[c].doc;
    if (!Number.isInteger(d) || d < 0 || d >= docs.length) {
      throw new WebsemError(
        `${paths.chunks} chunk ${c} names document ${JSON.stringify(d)} but ${paths.docs} holds ` +
          `${docs.length} documents; rebuild with \`websem build\``,
      );
    }
    chunkDoc[c] = d;
  }
  return { dims, n, vectors, scales, chunks, docs, chunkDoc };
}
