// websem bundle: the verified files of one bundle, its manifest checks and index loading.
//
// Every file is fetched once and checked against manifest.json (sha256 + size) before anyone
// uses it. The manifest checks here and in `websem query` (web/query.py verify_bundle) are the
// same list, pinned by tests/fixtures/bad_bundles.json (tests/js/bundle.test.mjs).
import { WebsemError } from "./errors.js";

/** Bundle format versions this runtime reads. */
export const FORMAT_VERSIONS = [2];

const REBUILD = "rebuild the bundle with `websem build`";
const VENDOR_KEYS = { ort: ["module", "glue", "wasm"], pyodide: ["module", "asm", "wasm", "stdlib", "lock"] };
const VECTOR_DTYPES = ["int8", "float16", "float32"];

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
  return response.arrayBuffer();
}

/**
 * Fetches bundle files and checks each against manifest.json (sha256 + size) before anyone uses it.
 * Every file is fetched at most once; callers share the promise.
 */
export class VerifiedFiles {
  constructor(base, manifest, fetchFn, onProgress = () => {}) {
    this.base = base;
    this.manifest = manifest;
    this.fetch = fetchFn;
    this.onProgress = onProgress;
    this.cache = new Map();
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
   * Drops the cache and detaches every cached buffer except those in `keep` (paths whose bytes
   * are still viewed, e.g. the int8 index). Call only once every consumer has copied its bytes.
   */
  release(keep = new Set()) {
    for (const [path, p] of this.cache) {
      if (!keep.has(path)) p.then(detach, () => {});
    }
    this.cache.clear();
  }

  async text(path) {
    return new TextDecoder().decode(await this.bytes(path));
  }

  async json(path) {
    const text = await this.text(path);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new WebsemError(`${this.url(path)} is not valid JSON (${e.message}); ${REBUILD}`);
    }
  }

  async #load(path) {
    const entry = manifestEntry(this.manifest, path, this.url("manifest.json"));
    const url = this.url(path);
    const buf = await fetchBytes(this.fetch, url);
    await checkBytes(path, buf, entry, url);
    this.onProgress({ stage: "verified", file: path, bytes: buf.byteLength });
    return new Uint8Array(buf);
  }
}

/** `manifest.files[path]`, or a WebsemError saying the bundle is incomplete. */
export function manifestEntry(manifest, path, manifestUrl = "manifest.json") {
  const entry = manifest.files?.[path];
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

/** Fetches and parses manifest.json (not verified: it is the root of trust), then checks it. */
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
  return manifest;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Index layouts this runtime reads (manifest.index.layout; absent = flat). */
export const LAYOUTS = ["flat", "partitioned"];
/** A partitioned index's always-loaded files (manifest.index.files), fetched by load(). */
const PARTITIONED_FILES = ["table", "centroids", "docmap"];

/** The partitioned layout's shard templates and IVF settings (web/query.py check_manifest's wording). */
function checkPartitioned(index) {
  const shards = isObject(index.shards) ? index.shards : {};
  for (const key of ["ivf", "lexical", "fragments"]) {
    if (typeof shards[key] !== "string" || !shards[key].includes("{}")) {
      throw new WebsemError(`manifest.index.shards.${key} is missing (a path template with {} for the shard number); ${REBUILD}`);
    }
  }
  const { nlist, nprobe } = isObject(index.ivf) ? index.ivf : {};
  if (nlist == null) throw new WebsemError(`manifest.index.ivf.nlist is missing (a positive integer); ${REBUILD}`);
  if (!Number.isInteger(nlist) || nlist < 1) {
    throw new WebsemError(`manifest.index.ivf.nlist is ${JSON.stringify(nlist)} but must be an integer >= 1; ${REBUILD}`);
  }
  if (nprobe == null) throw new WebsemError(`manifest.index.ivf.nprobe is missing (an integer from 1 to nlist); ${REBUILD}`);
  if (!Number.isInteger(nprobe) || nprobe < 1 || nprobe > nlist) {
    throw new WebsemError(
      `manifest.index.ivf.nprobe is ${JSON.stringify(nprobe)} but must be an integer from 1 to nlist (${nlist}); ${REBUILD}`,
    );
  }
}

/**
 * Throws a WebsemError naming the first thing wrong with `manifest` (format 2). The query-time
 * rules (manifest.search) are not checked here: websem_text.rules.check_search, the one
 * definition of them, validates the table in Pyodide when the ranker is set up (search.js), before
 * the engine is ready.
 */
export function checkManifest(manifest, manifestUrl = "manifest.json") {
  if (!isObject(manifest) || manifest.format !== "websem-bundle") {
    throw new WebsemError(
      `${manifestUrl} is not a websem bundle manifest (format ${JSON.stringify(manifest?.format)}, ` +
        'expected "websem-bundle"); point load() at the folder written by `websem build`',
    );
  }
  if (!FORMAT_VERSIONS.includes(manifest.format_version)) {
    throw new WebsemError(
      `bundle format_version ${JSON.stringify(manifest.format_version)} is not supported by this runtime ` +
        `(supported: ${FORMAT_VERSIONS.join(", ")}); ${REBUILD}`,
    );
  }
  const files = isObject(manifest.files) ? manifest.files : {};
  const model = isObject(manifest.model) ? manifest.model : {};
  const index = isObject(manifest.index) ? manifest.index : {};
  const paths = isObject(index.files) ? index.files : {};
  const layout = index.layout ?? "flat"; // bundles built before layouts existed are flat
  if (!LAYOUTS.includes(layout)) {
    throw new WebsemError(`index.layout ${JSON.stringify(layout)} is unknown; allowed: ${LAYOUTS.join(", ")}; ${REBUILD}`);
  }
  const needed = layout === "flat"
    ? ["vectors", "chunks", "docs", "lexical", ...(index.vector_dtype === "int8" ? ["scales"] : [])]
    : PARTITIONED_FILES;
  for (const key of needed) {
    if (typeof paths[key] !== "string") {
      const why = layout === "flat" ? "" : " (a partitioned index loads it at start)";
      throw new WebsemError(`manifest.index.files.${key} is missing${why}; ${REBUILD}`);
    }
  }
  if (layout === "partitioned") checkPartitioned(index);
  for (const rel of ["model/model.onnx", "model/tokenizer.json", ...needed.map((key) => paths[key])]) {
    if (!isObject(files[rel])) {
      throw new WebsemError(`${manifestUrl} lists no file ${JSON.stringify(rel)}; the bundle is incomplete, ${REBUILD}`);
    }
  }
  const shipped = files["model/model.onnx"].sha256;
  if (index.model_sha256 !== shipped || model.sha256 !== shipped) {
    throw new WebsemError(`index built with model ${index.model_sha256} but bundle ships model ${shipped}; rebuild with \`websem build\``);
  }
  if (index.dims !== model.dims) {
    throw new WebsemError(`index dims ${index.dims} differ from model dims ${model.dims}; rebuild with \`websem build\``);
  }
  if (!VECTOR_DTYPES.includes(index.vector_dtype)) {
    throw new WebsemError(
      `index vector_dtype ${JSON.stringify(index.vector_dtype)} is unknown (allowed: ${VECTOR_DTYPES.join(", ")}); rebuild with \`websem build\``,
    );
  }
  const vendor = manifest.runtime?.vendor;
  for (const [pkg, keys] of Object.entries(VENDOR_KEYS)) {
    for (const key of keys) {
      if (typeof vendor?.[pkg]?.[key] !== "string") {
        throw new WebsemError(`manifest.runtime.vendor.${pkg}.${key} is missing; ${REBUILD}`);
      }
    }
  }
  if (!Array.isArray(manifest.runtime.python_files) || !manifest.runtime.python_files.length) {
    throw new WebsemError(`manifest.json lists no runtime.python_files (the websem_text package); ${REBUILD}`);
  }
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
