// websem engine: the platform-neutral core of the runtime.
//
// Over 500 lines for now: it still holds verified fetching, Pyodide boot, the ORT session and the
// public API together. Its split along those seams is tracked as the runtime-restructure issue (#17).
//
// Runs wherever ES modules, WebAssembly, fetch and crypto.subtle exist: a Web Worker (worker.js),
// the main thread, Node 20, Deno, Cloudflare Workers. It loads one bundle (docs/architecture.md,
// "Bundle"), verifies every file against manifest.json before use, tokenizes queries in Pyodide
// with the shipped stdlib package `websem_text`, embeds them with onnxruntime-web (wasm backend,
// batch 1) and scores them exactly like the CPU reference `websem query` ("Search semantics").

import { MODES, createHybrid, denseDocs, setupRanker } from "./hybrid.js";
import { WEIGHTS_FILE, externalizeWeights } from "./weights.js";

/** Bundle format versions this runtime understands. */
export const FORMAT_VERSIONS = [1];

const ORT_FILES = {
  module: "vendor/ort/ort.wasm.min.mjs",
  glue: "vendor/ort/ort-wasm-simd-threaded.mjs",
  wasm: "vendor/ort/ort-wasm-simd-threaded.wasm",
};
const PYODIDE_FILES = {
  module: "vendor/pyodide/pyodide.mjs",
  asm: "vendor/pyodide/pyodide.asm.mjs",
  wasm: "vendor/pyodide/pyodide.asm.wasm",
  stdlib: "vendor/pyodide/python_stdlib.zip",
  lock: "vendor/pyodide/pyodide-lock.json",
};
const MODEL_FILES = { onnx: "model/model.onnx", tokenizer: "model/tokenizer.json" };
const SNIPPET_CHARS = 240;

/** Error type of the runtime; its message starts with `websem:` and says what to do. */
export class WebsemError extends Error {
  constructor(message) {
    super(message.startsWith("websem:") ? message : `websem: ${message}`);
    this.name = "WebsemError";
  }
}

function hex(buffer) {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}

function asBundleBase(bundleUrl) {
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

/**
 * Fetches bundle files and checks each against manifest.json (sha256 + size) before anyone uses it.
 * Every file is fetched at most once; callers share the promise.
 */
export class VerifiedFiles {
  constructor(base, manifest, fetchFn, onProgress) {
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
      if (!keep.has(path)) p.then(release, () => {});
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
      throw new WebsemError(`${this.url(path)} is not valid JSON (${e.message}); rebuild the bundle with \`websem build\``);
    }
  }

  async #load(path) {
    const entry = this.manifest.files?.[path];
    if (!entry) {
      throw new WebsemError(
        `manifest.json at ${this.url("manifest.json")} lists no file ${JSON.stringify(path)}; ` +
          "the bundle is incomplete, rebuild it with `websem build`",
      );
    }
    const url = this.url(path);
    const buf = await fetchBytes(this.fetch, url);
    const got = hex(await crypto.subtle.digest("SHA-256", buf));
    if (buf.byteLength !== entry.size || got !== entry.sha256) {
      throw new WebsemError(
        `${path} failed its integrity check (sha256 ${got}, ${buf.byteLength} bytes; manifest.json ` +
          `expects ${entry.sha256}, ${entry.size} bytes) at ${url}; the file is corrupt, tampered with ` +
          "or from another build: re-upload the whole bundle folder or rebuild it with `websem build`",
      );
    }
    this.onProgress({ stage: "verified", file: path, bytes: buf.byteLength });
    return new Uint8Array(buf);
  }
}

async function fetchBytes(fetchFn, url) {
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

function checkManifest(manifest, manifestUrl) {
  if (manifest?.format !== "websem-bundle") {
    throw new WebsemError(
      `${manifestUrl} is not a websem bundle manifest (format ${JSON.stringify(manifest?.format)}, ` +
        'expected "websem-bundle"); point load() at the folder written by `websem build`',
    );
  }
  if (!FORMAT_VERSIONS.includes(manifest.format_version)) {
    throw new WebsemError(
      `bundle format_version ${JSON.stringify(manifest.format_version)} is not supported by this runtime ` +
        `(supported: ${FORMAT_VERSIONS.join(", ")}); rebuild the bundle with the websem version that ships this runtime`,
    );
  }
  const model = manifest.model ?? {};
  const index = manifest.index ?? {};
  if (!model.sha256 || index.model_sha256 !== model.sha256) {
    throw new WebsemError(
      `index built with model ${index.model_sha256} but bundle ships model ${model.sha256}; ` +
        "rebuild with `websem build`",
    );
  }
  if (index.dims !== model.dims) {
    throw new WebsemError(
      `index dims ${index.dims} differ from model dims ${model.dims}; rebuild with \`websem build\``,
    );
  }
  if (!["int8", "float16", "float32"].includes(index.vector_dtype)) {
    throw new WebsemError(
      `index vector_dtype ${JSON.stringify(index.vector_dtype)} is unknown (allowed: int8, float16, float32); ` +
        "rebuild with `websem build`",
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Index

let HALF_TABLE = null;
export function halfTable() {
  // All 65536 float16 values, decoded once: a lookup is faster than bit twiddling per element.
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

async function loadIndex(files, manifest) {
  const index = manifest.index;
  const paths = index.files ?? {};
  const [vecBytes, scaleBytes, chunks, docs] = await Promise.all([
    files.bytes(paths.vectors ?? "index/vectors.bin"),
    index.vector_dtype === "int8" ? files.bytes(paths.scales ?? "index/scales.bin") : null,
    files.json(paths.chunks ?? "index/chunks.json"),
    files.json(paths.docs ?? "index/docs.json"),
  ]);
  const dims = index.dims;
  const n = chunks.length;
  let vectors;
  let scales = null;
  if (index.vector_dtype === "int8") {
    vectors = new Int8Array(vecBytes.buffer, vecBytes.byteOffset, vecBytes.byteLength);
    scales = littleEndianView(scaleBytes, Float32Array);
    if (scales.length !== n) throw mismatch("index/scales.bin", scales.length, n);
  } else if (index.vector_dtype === "float16") {
    const raw = littleEndianView(vecBytes, Uint16Array);
    const table = halfTable();
    vectors = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) vectors[i] = table[raw[i]];
  } else {
    vectors = littleEndianView(vecBytes, Float32Array);
  }
  if (vectors.length !== n * dims) throw mismatch("index/vectors.bin", vectors.length / dims, n);
  if (index.chunks != null && index.chunks !== n) throw mismatch("index/chunks.json", n, index.chunks);
  // Chunk -> document as a typed array: the scoring loop reads it once per chunk (hybrid.js).
  const chunkDoc = new Int32Array(n);
  for (let c = 0; c < n; c++) {
    const d = chunks[c].doc;
    if (!Number.isInteger(d) || d < 0 || d >= docs.length) {
      throw new WebsemError(
        `index/chunks.json chunk ${c} names document ${JSON.stringify(d)} but docs.json holds ` +
          `${docs.length} documents; rebuild with \`websem build\``,
      );
    }
    chunkDoc[c] = d;
  }
  return { dims, n, vectors, scales, chunks, docs, chunkDoc };
}

function mismatch(file, got, want) {
  return new WebsemError(`${file} holds ${got} rows but the index has ${want} chunks; rebuild with \`websem build\``);
}

/**
 * Exact scoring per docs/architecture.md "Search semantics": chunk score = dot(query, dequantized
 * chunk vector) accumulated in float64 in index order; document score = max over its chunks (the
 * first chunk reaching it wins); order by score descending, then document index ascending.
 */
export function rank(index, query, k) {
  // 2026-11-28: scoring + partial top-k selection live in hybrid.js `denseDocs` (shared with the
  // hybrid dense side); results are bit-identical to the former full sort (bench/rank_micro.mjs).
  const { docs, chunks } = index;
  const top = denseDocs(index, query, k);
  return Array.from(top.docs, (d, i) => hit(docs[d], chunks[top.chunks[i]], top.scores[i]));
}

function hit(doc, chunk, score) {
  const anchor = chunk.anchor ?? "";
  const url = doc.url ? doc.url + anchor : anchor;
  return { id: doc.id, score, title: doc.title ?? "", url, snippet: snippet(chunk.text ?? "") };
}

// Python's str.isspace() set, so snippets equal `websem query`'s `" ".join(text.split())`.
const PY_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;

function snippet(text) {
  const flat = text.replace(PY_WHITESPACE, " ").replace(/^ | $/g, "");
  const chars = Array.from(flat); // code points, like Python string indices
  if (chars.length <= SNIPPET_CHARS) return flat;
  const cut = chars.lastIndexOf(" ", SNIPPET_CHARS);
  return `${chars.slice(0, cut > SNIPPET_CHARS / 2 ? cut : SNIPPET_CHARS).join("")}…`;
}

// ---------------------------------------------------------------------------------------------
// Pyodide tokenizer

/**
 * Bundle path of the optional Pyodide memory snapshot (made at build time by
 * web/tools/make_snapshot.mjs, listed with its sha256 in manifest.json like every file). It holds
 * the Python heap right after TOKENIZER_SETUP_PY ran, so the browser skips interpreter start-up,
 * the stdlib imports and building the vocabulary.
 */
export const SNAPSHOT_PATH = "runtime/pyodide-snapshot.bin";

/**
 * Python that builds the tokenizer and defines `websem_encode`; run at boot, or once at build time
 * before the memory snapshot is taken. It must leave no JS object referenced from Python (a
 * snapshot cannot hold them), hence `to_js` is looked up per call.
 */
export function tokenizerSetupPy(maxLength) {
  return `
import array, sys
sys.path.insert(0, "/websem/py")
from pyodide.ffi import to_js
from websem_text.wordpiece import WordPieceTokenizer

with open("/websem/model/tokenizer.json", encoding="utf-8") as f:
    _tok = WordPieceTokenizer.from_json(f.read(), max_length=${Number(maxLength)})
websem_max_length = ${Number(maxLength)}

def websem_encode(text):
    enc = _tok.encode(text)
    # array('q') arrives in JS as a BigInt64Array: what ORT int64 tensors take directly.
    return to_js([array.array("q", enc.ids), array.array("q", enc.attention_mask),
                  array.array("q", enc.type_ids)])
`;
}

// Sparse snapshot container: "WSPS", u32 version 1, u32 full size, u32 segment count, then
// (u32 offset, u32 length) per segment, then the segments' bytes. The wasm heap holds long runs
// of zeros (~13 of 31 MB for the default model); dropping them shrinks the download and the
// sha256 work. All integers little-endian.
const SPARSE_MAGIC = 0x53505357; // "WSPS"
const SPARSE_MIN_ZERO_RUN = 1 << 16;

/** Packs a Pyodide memory snapshot into the sparse container (build time). */
export function packSnapshot(raw) {
  const segments = [];
  let start = 0;
  let i = 0;
  const n = raw.length;
  while (i < n) {
    if (raw[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && raw[j] === 0) j++;
    if (j - i >= SPARSE_MIN_ZERO_RUN) {
      if (i > start) segments.push([start, i - start]);
      start = j;
    }
    i = j;
  }
  if (n > start) segments.push([start, n - start]);
  const headerSize = 16 + 8 * segments.length;
  const out = new Uint8Array(headerSize + segments.reduce((a, [, len]) => a + len, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, SPARSE_MAGIC, true);
  view.setUint32(4, 1, true);
  view.setUint32(8, n, true);
  view.setUint32(12, segments.length, true);
  let at = headerSize;
  segments.forEach(([off, len], k) => {
    view.setUint32(16 + 8 * k, off, true);
    view.setUint32(20 + 8 * k, len, true);
    out.set(raw.subarray(off, off + len), at);
    at += len;
  });
  return out;
}

/** The Pyodide memory snapshot inside `packed` (a raw snapshot passes through unchanged). */
export function unpackSnapshot(packed) {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  if (packed.byteLength < 16 || view.getUint32(0, true) !== SPARSE_MAGIC) return packed;
  if (view.getUint32(4, true) !== 1) throw new Error(`unknown snapshot container version ${view.getUint32(4, true)}`);
  const raw = new Uint8Array(view.getUint32(8, true));
  const count = view.getUint32(12, true);
  let at = 16 + 8 * count;
  for (let k = 0; k < count; k++) {
    const off = view.getUint32(16 + 8 * k, true);
    const len = view.getUint32(20 + 8 * k, true);
    raw.set(packed.subarray(at, at + len), off);
    at += len;
  }
  if (at !== packed.byteLength) throw new Error("the snapshot container is truncated or has trailing bytes");
  return raw;
}

/** Frees an ArrayBuffer's memory at once by detaching it (where ArrayBuffer.transfer exists). */
function release(view) {
  try {
    view?.buffer?.transfer?.(0);
  } catch {
    // Not transferable (e.g. a wasm memory): leave it to the GC.
  }
}

/** Writes runtime.python_files and the tokenizer vocabulary to /websem/... in Pyodide's FS. */
export function writePythonFiles(pyodide, entries, tokenizerJson) {
  pyodide.FS.mkdirTree("/websem/model");
  for (const [path, bytes] of entries) {
    const target = `/websem/${path}`;
    pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
    pyodide.FS.writeFile(target, bytes);
  }
  pyodide.FS.writeFile("/websem/model/tokenizer.json", tokenizerJson);
}

function isWorkerd() {
  return globalThis.navigator?.userAgent === "Cloudflare-Workers";
}

function isNodeRuntime() {
  return typeof process !== "undefined" && process.versions?.node && !globalThis.window && !isWorkerd();
}

/**
 * Boots Pyodide from the bundle's verified files. `snapshot` (verified bytes or null) restores a
 * build-time memory snapshot instead of starting the interpreter from scratch. `modules` holds
 * what an edge runtime that forbids run-time wasm compilation and dynamic import passes in (see
 * createEngine: pyodideModule, pyodideAsmModule, pyodideWasmModule).
 */
async function bootPyodide(files, base, { wasm, stdlib, lock, snapshot }, modules = {}) {
  if (isWorkerd() && typeof process !== "undefined" && typeof process.versions?.node === "string") {
    // Pyodide decides at import time that a global process.versions.node means Node, then reads
    // node:fs paths and fails with an unrelated-looking error; say what to change instead.
    throw new WebsemError(
      `this Worker defines process.versions.node (${process.versions.node}), which makes Pyodide take it for ` +
        'Node.js; add compatibility flag "disable_nodejs_process_v2" (and no "nodejs_compat") to the Worker, ' +
        "as in demo/edge/cloudflare/wrangler.toml",
    );
  }
  // Imported by URL once its bytes are verified (loadTokenizer): served with a validator (ETag,
  // `websem serve`), the import is a bodiless 304 answered from the HTTP cache, i.e. the verified
  // bytes, with no `blob:` in the page's CSP (docs/architecture.md, "Runtime").
  const { loadPyodide } = modules.pyodide ?? (await import(files.url(PYODIDE_FILES.module)));
  const indexURL = files.url("vendor/pyodide/");
  const options = { indexURL, lockFileContents: lock, packageBaseUrl: indexURL, stdout: () => {}, stderr: () => {} };
  if (snapshot) options._loadSnapshot = snapshot;
  if (modules.pyodideAsm || modules.pyodideWasm) options.createPyodideModule = precompiledPyodide(modules);
  if (isNodeRuntime()) {
    // Node: Pyodide reads indexURL from the file system itself; it needs a path, not a file: URL.
    options.indexURL = new URL(indexURL).pathname;
    options.packageBaseUrl = options.indexURL;
    return loadPyodide(options);
  }
  // Pyodide fetches pyodide.asm.wasm and python_stdlib.zip through the global fetch. Serve it
  // the bytes already verified above, so nothing unverified runs and nothing is fetched twice.
  // With a precompiled pyodideWasm module the wasm is never read: an empty answer stops Pyodide
  // from fetching it (its loader starts that fetch before it would call our instantiateWasm).
  const verified = new Map([
    [files.url(PYODIDE_FILES.wasm), [wasm ?? new Uint8Array(0), "application/wasm"]],
    [files.url(PYODIDE_FILES.stdlib), [stdlib, "application/zip"]],
  ]);
  const realFetch = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const key = typeof input === "string" ? input : input?.url ?? String(input);
    const hitBytes = verified.get(new URL(key, base).href);
    if (hitBytes) {
      return Promise.resolve(new Response(hitBytes[0], { headers: { "content-type": hitBytes[1] } }));
    }
    return realFetch.call(globalThis, input, init);
  };
  // 2026-11-28: Pyodide 314's browser path resolves URLs against the global `location`, which
  // Cloudflare Workers (workerd) do not define: it would throw a ReferenceError. Every URL we
  // hand it is absolute, so the base only has to exist; it is removed again after the boot.
  const fakeLocation = !("location" in globalThis);
  if (fakeLocation) globalThis.location = new URL(base);
  try {
    return await loadPyodide(options);
  } finally {
    globalThis.fetch = realFetch;
    if (fakeLocation) delete globalThis.location;
  }
}

/**
 * A `createPyodideModule` for loadPyodide that uses a statically imported pyodide.asm.mjs
 * (`modules.pyodideAsm`) and/or a precompiled pyodide.asm.wasm (`modules.pyodideWasm`, a
 * WebAssembly.Module). Cloudflare Workers need both: they forbid `import(url)` of code outside
 * the Worker and compiling wasm from bytes ("Wasm code generation disallowed by embedder").
 */
function precompiledPyodide({ pyodideAsm, pyodideWasm }) {
  return async (settings) => {
    const create = pyodideAsm
      ? (pyodideAsm.default ?? pyodideAsm)
      : (await import(settings.locateFile("pyodide.asm.mjs"))).default;
    if (!pyodideWasm) return create(settings);
    let failed;
    const failure = new Promise((_, reject) => {
      failed = reject;
    });
    // Emscripten's hook: instantiate the module ourselves, then hand the instance back.
    settings.instantiateWasm = (imports, done) => {
      // Pyodide's own hook compiles a 60-byte helper module for its JS-error marker and falls
      // back to these two JS functions where wasm cannot be compiled (iOS, Workers): same
      // semantics, so use the fallback directly.
      const marker = Symbol("error marker");
      imports.env.Jsv_GetError_import = () => marker;
      imports.env.JsvError_Check = (value) => value === marker;
      WebAssembly.instantiate(pyodideWasm, imports).then((instance) => done(instance, pyodideWasm), failed);
      return {};
    };
    return Promise.race([create(settings), failure]);
  };
}

/**
 * Pyodide + websem_text. Uses the bundle's memory snapshot when manifest.json lists one (and
 * `useSnapshot` is not false); if restoring it fails, boots normally (same results, slower).
 */
export async function loadTokenizer(files, manifest, base, onProgress, { useSnapshot = true, modules = {} } = {}) {
  const pythonFiles = manifest.runtime?.python_files ?? [];
  if (!pythonFiles.length) {
    throw new WebsemError("manifest.json lists no runtime.python_files (the websem_text tokenizer); rebuild with `websem build`");
  }
  const wantSnapshot = useSnapshot !== false && Boolean(manifest.files?.[SNAPSHOT_PATH]);
  // Start every download now; Pyodide boots while they arrive.
  const pyFiles = Promise.all(pythonFiles.map((p) => files.bytes(p).then((b) => [p, b])));
  const tokenizerJson = files.bytes(MODEL_FILES.tokenizer);
  const snapshotP = wantSnapshot ? files.bytes(SNAPSHOT_PATH) : null;
  snapshotP?.catch(() => {});
  // JS and wasm handed in as modules (edge runtimes) are part of the deployed code, not bundle
  // downloads: nothing to fetch or verify for them.
  const [, , wasm, stdlib, lock] = await Promise.all([
    modules.pyodide ? null : files.bytes(PYODIDE_FILES.module),
    modules.pyodideAsm ? null : files.bytes(PYODIDE_FILES.asm),
    modules.pyodideWasm ? null : files.bytes(PYODIDE_FILES.wasm),
    files.bytes(PYODIDE_FILES.stdlib),
    files.text(PYODIDE_FILES.lock),
  ]);
  onProgress({ stage: "pyodide-boot", snapshot: wantSnapshot });
  const maxLength = manifest.model?.max_seq_length ?? 256;
  let pyodide = null;
  let encode = null;
  let fromSnapshot = false;
  if (snapshotP) {
    try {
      // The promise, not the bytes: Pyodide imports pyodide.asm.mjs while the snapshot arrives.
      let packed = null;
      let unpacked = null;
      const snapshot = snapshotP.then((bytes) => {
        packed = bytes;
        unpacked = unpackSnapshot(bytes);
        return unpacked;
      });
      try {
        pyodide = await bootPyodide(files, base, { wasm, stdlib, lock, snapshot }, modules);
      } finally {
        // 2026-11-28: Pyodide copied the image into its heap. Detaching the two copies frees ~50 MB
        // now; left to the GC, an idle worker kept them (renderer RSS +74 MB, measured).
        release(unpacked);
        if (unpacked !== packed) release(packed);
      }
      const madeFor = pyodide.globals.get("websem_max_length");
      if (madeFor !== maxLength) {
        throw new Error(`the snapshot was made for max_length ${madeFor}, the manifest says ${maxLength}`);
      }
      encode = pyodide.globals.get("websem_encode");
      if (typeof encode !== "function") throw new Error("the snapshot defines no websem_encode");
      fromSnapshot = true;
      // Pyodide keeps its options, so the 31 MB unpacked heap image would stay reachable.
      if (pyodide._api?.config) delete pyodide._api.config._loadSnapshot;
    } catch (e) {
      // A snapshot that fails its sha256 check is refused like any other bundle file.
      if (e instanceof WebsemError) throw e;
      // 2026-11-28: otherwise the snapshot is an optimisation only; one from another Pyodide
      // build (or a browser that refuses it) must not break search: boot the interpreter normally.
      onProgress({ stage: "snapshot-fallback", reason: String(e?.message ?? e) });
      pyodide = null;
      encode = null;
    }
  }
  if (!pyodide) pyodide = await bootPyodide(files, base, { wasm, stdlib, lock, snapshot: null }, modules);
  onProgress({ stage: "pyodide-ready", snapshot: fromSnapshot });
  // Also after a snapshot: its Python state is restored, the (JS-side) file system is not, and
  // websem_text may import a module lazily.
  writePythonFiles(pyodide, await pyFiles, await tokenizerJson);
  if (!encode) {
    pyodide.runPython(tokenizerSetupPy(maxLength));
    encode = pyodide.globals.get("websem_encode");
  }
  onProgress({ stage: "tokenizer-ready", snapshot: fromSnapshot });
  return {
    pyodide,
    snapshot: fromSnapshot,
    /** @returns {Promise<BigInt64Array[]>} [ids, attention mask, type ids]. */
    async encode(text) {
      return encode(String(text));
    },
    /** Size of Pyodide's wasm heap (linear memory) in bytes. */
    memoryBytes() {
      return pyodide._module?.HEAP8?.byteLength ?? null;
    },
    close() {
      encode.destroy();
    },
  };
}

function useTokenizerWorker(opts) {
  // Pyodide's boot and ORT's session creation are both mostly synchronous wasm work; in one thread
  // they run one after the other. A nested module worker for Pyodide lets them overlap on two
  // cores (cold start). Node has no global Worker: it tokenizes in-process.
  if (opts.tokenizerWorker === false) return false;
  // Modules handed in by the caller live in this thread (namespaces cannot be posted).
  if (opts.pyodideModule || opts.pyodideAsmModule || opts.pyodideWasmModule) return false;
  return typeof globalThis.Worker === "function";
}

/** Pyodide + websem_text in runtime/tokenizer-worker.js; same interface as loadTokenizer(). */
function loadTokenizerWorker(base, manifest, onProgress, useSnapshot) {
  const url = new URL("./tokenizer-worker.js", import.meta.url).href;
  const worker = new Worker(url, { type: "module", name: "websem-tokenizer" });
  const pending = new Map();
  let nextId = 1;
  return new Promise((resolve, reject) => {
    worker.onerror = (event) => {
      event.preventDefault?.();
      const err = new WebsemError(
        `the tokenizer worker ${url} failed to start (${event.message || "load error"}); serve the ` +
          "complete bundle folder (runtime/ included), e.g. with `websem serve BUNDLE`",
      );
      for (const p of pending.values()) p.reject(err);
      reject(err);
    };
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") onProgress(data.event);
      else if (data.type === "error" && data.id == null) {
        worker.terminate();
        reject(new WebsemError(data.message));
      } else if (data.type === "ready") {
        resolve({
          snapshot: data.snapshot === true,
          encode(text) {
            const id = nextId++;
            return new Promise((res, rej) => {
              pending.set(id, { resolve: res, reject: rej });
              worker.postMessage({ type: "encode", id, text: String(text) });
            });
          },
          /** Size of the worker's Pyodide wasm heap in bytes. */
          memoryBytes() {
            const id = nextId++;
            return new Promise((res, rej) => {
              pending.set(id, { resolve: res, reject: rej });
              worker.postMessage({ type: "memory", id });
            });
          },
          /** A ranker step ("init" | "plan" | "finish", hybrid.js) run in the worker's Pyodide. */
          call(method, args) {
            const id = nextId++;
            return new Promise((res, rej) => {
              pending.set(id, { resolve: res, reject: rej });
              worker.postMessage({ type: "call", id, method, args });
            });
          },
          close() {
            worker.terminate();
          },
        });
      } else {
        const p = pending.get(data.id);
        pending.delete(data.id);
        if (data.type === "encoded" || data.type === "result") p?.resolve(data.value);
        else p?.reject(new WebsemError(data.message));
      }
    };
    worker.postMessage({ type: "init", base, manifest, useSnapshot });
  });
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-web session

async function loadSession(files, manifest, opts, onProgress) {
  const precompiled = opts.ortWasmModule instanceof WebAssembly.Module;
  // JS and wasm handed in as modules are deployed code: nothing to fetch or verify for them.
  const [, , wasm, model] = await Promise.all([
    opts.ortModule ? null : files.bytes(ORT_FILES.module),
    opts.ortModule ? null : files.bytes(ORT_FILES.glue),
    precompiled || opts.ortWasmModule ? null : files.bytes(ORT_FILES.wasm),
    files.bytes(MODEL_FILES.onnx),
  ]);
  // Verified above; the import is answered from the HTTP cache (see bootPyodide).
  const ort = opts.ortModule ?? (await import(files.url(ORT_FILES.module)));
  // ORT imports its glue (ort-wasm-simd-threaded.mjs) from wasmPaths. Where `import(url)` is
  // forbidden (Cloudflare Workers) pass ortWasmPaths: {mjs: "./ort-wasm-simd-threaded.mjs"}, a
  // specifier resolved next to ort.wasm.min.mjs among the Worker's own modules.
  ort.env.wasm.wasmPaths = opts.ortWasmPaths ?? files.url("vendor/ort/");
  // What ORT's glue will instantiate, as an ArrayBuffer: the glue wraps it in a Uint8Array view
  // (a typed array it would copy), so watchInstantiate can recognise ORT's call by its buffer.
  // The verified bytes, so ORT does not fetch (and trust) the file a second time; a stand-in
  // buffer when the wasm comes precompiled.
  const binary = precompiled ? new ArrayBuffer(8) : wholeBuffer(opts.ortWasmModule ?? wasm);
  ort.env.wasm.wasmBinary = binary;
  ort.env.wasm.numThreads = threadCount(opts.threads);
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  // 2026-11-28: onnxruntime-web 1.30 can only take the wasm as bytes (env.wasm.wasmBinary, which
  // its Emscripten glue passes to WebAssembly.instantiate) or a URL; neither works on Workers,
  // which hand out precompiled WebAssembly.Modules only. So while the session is created, a
  // WebAssembly.instantiate that sees the glue's view of `binary` instantiates the precompiled
  // module instead, answering in the {instance, module} shape the glue expects. It also notes
  // ORT's wasm memory (only from that call: Pyodide may instantiate meanwhile), for engine.memory().
  let memory = null;
  const restore = watchInstantiate({
    binary,
    module: precompiled ? opts.ortWasmModule : null,
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
      // 2026-11-28: "basic" + disable_quant_qdq. Measured in Node (same wasm, 16-token query,
      // busy 2-core box, alternated runs): "disabled" leaves every DequantizeLinear of the
      // weight-int8 model to run on each query (p50 ~280 ms); "basic" constant-folds them once at
      // load, but only when QDQ handling is off (ORT keeps DQ nodes for QDQ fusion otherwise), and
      // then runs fp32 MatMuls (p50 60-120 ms) for about the same session-create time as
      // "disabled". "all" adds fusions that did not pay off here. The CPU reference
      // (websem.export.embed.OnnxEmbedder) sets the same disable_quant_qdq, so both sides compute
      // the graph's fp32 semantics.
      graphOptimizationLevel: "basic",
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
  if (!session.outputNames.includes(output)) {
    throw new WebsemError(
      `model/model.onnx has no output ${JSON.stringify(output)} (outputs: ${session.outputNames.join(", ")}); ` +
        "re-export it with `websem export`",
    );
  }
  // ORT copied the wasm into its module at init; keeping the bytes referenced would pin 14 MB.
  ort.env.wasm.wasmBinary = undefined;
  onProgress({ stage: "ort-ready" });
  return { ort, session, output, memory };
}

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
  // one thread measured faster (2026-11-28), hence the default of 1.
  const isolated = globalThis.crossOriginIsolated === true;
  const n = Number.isInteger(requested) && requested > 0 ? requested : 1;
  return isolated ? n : 1;
}

// ---------------------------------------------------------------------------------------------
// Engine

/**
 * Load a bundle and return a search engine.
 *
 * @param {string|URL} bundleUrl URL of the bundle folder (the one holding manifest.json).
 * @param {object} [opts]
 * @param {typeof fetch} [opts.fetch] fetch implementation (Node: one that reads file: URLs).
 * @param {number} [opts.threads] ORT threads; used only when crossOriginIsolated. Default 1.
 * @param {(event: object) => void} [opts.onProgress] progress events ({stage, ...}).
 * @param {object} [opts.ortModule] the namespace of vendor/ort/ort.wasm.min.mjs, statically
 *   imported, for runtimes that forbid `import(url)` (Cloudflare Workers).
 * @param {WebAssembly.Module|ArrayBuffer|Uint8Array} [opts.ortWasmModule] ORT's wasm, precompiled
 *   (a module import on Workers) or as bytes, instead of the bundle's
 *   vendor/ort/ort-wasm-simd-threaded.wasm.
 * @param {string|object} [opts.ortWasmPaths] onnxruntime-web `env.wasm.wasmPaths` (default: the
 *   bundle's vendor/ort/); on Workers `{mjs: "./ort-wasm-simd-threaded.mjs"}`.
 * @param {object} [opts.pyodideModule] the namespace of vendor/pyodide/pyodide.mjs, statically
 *   imported (Workers).
 * @param {object|Function} [opts.pyodideAsmModule] vendor/pyodide/pyodide.asm.mjs (its namespace
 *   or default export), statically imported (Workers).
 * @param {WebAssembly.Module} [opts.pyodideWasmModule] vendor/pyodide/pyodide.asm.wasm,
 *   precompiled (Workers). With any pyodide* option the tokenizer runs in this thread.
 * @param {object} [opts.sessionOptions] extra onnxruntime-web InferenceSession options (override ours).
 * @param {boolean} [opts.externalWeights] hand ORT the model's weights as external data, so its
 *   wasm heap holds them once (default true; false loads the model bytes as they are, more memory).
 * @param {boolean} [opts.dropBytes] free the verified download buffers once loaded (default true).
 * @param {boolean} [opts.snapshot] restore the bundle's Pyodide memory snapshot when it has one
 *   (default true; false boots Pyodide from scratch, same results, slower).
 * @param {boolean} [opts.tokenizerWorker] run Pyodide in a nested module worker (default: whenever
 *   `Worker` exists), so it boots in parallel with the ORT session.
 * @returns {Promise<{search: Function, info: object, close: Function}>}
 */
export async function createEngine(bundleUrl, opts = {}) {
  const started = now();
  const base = asBundleBase(bundleUrl);
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const timings = {};
  const onProgress = (event) => {
    // Events from the tokenizer worker carry their own wall-clock time (`at`): this thread may be
    // busy (ORT session creation) when they arrive.
    const ms = (event.at != null && globalThis.performance ? event.at - performance.timeOrigin : now()) - started;
    // info.timings: when each milestone and each verified file arrived (ms since load started).
    timings[event.stage === "verified" ? `verified ${event.file}` : event.stage] = Math.round(ms);
    try {
      opts.onProgress?.({ ...event, ms });
    } catch {
      // A throwing progress callback must not break loading.
    }
  };
  const manifestUrl = new URL("manifest.json", base).href;
  const manifestBytes = await fetchBytes(fetchFn, manifestUrl);
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch (e) {
    throw new WebsemError(`${manifestUrl} is not valid JSON (${e.message}); rebuild the bundle with \`websem build\``);
  }
  checkManifest(manifest, manifestUrl);
  onProgress({ stage: "manifest" });
  const files = new VerifiedFiles(base, manifest, fetchFn, onProgress);

  // Everything at once: the three loaders share the verified-file cache, and each awaits only what
  // it needs, so Pyodide boots while the model and index download and ORT compiles.
  const tokenizerP = useTokenizerWorker(opts)
    ? loadTokenizerWorker(base, manifest, onProgress, opts.snapshot !== false)
    : loadTokenizer(files, manifest, base, onProgress, {
        useSnapshot: opts.snapshot !== false,
        modules: { pyodide: opts.pyodideModule, pyodideAsm: opts.pyodideAsmModule, pyodideWasm: opts.pyodideWasmModule },
      });
  const sessionP = loadSession(files, manifest, opts, onProgress);
  const indexP = loadIndex(files, manifest);
  // Avoid unhandled-rejection noise from the losers when one part fails first.
  // Hybrid retrieval (issue #6, hybrid.js): index/lexical.bin + Pyodide's Ranker, set up while ORT compiles.
  const rankerP = setupRanker(tokenizerP, files, manifest, onProgress);
  for (const p of [tokenizerP, sessionP, indexP, rankerP]) p.catch(() => {});
  const [tokenizer, { ort, session, output, memory: ortMemory }, index, ranker] = await Promise.all([
    tokenizerP, sessionP, indexP, rankerP,
  ]);
  if (opts.dropBytes !== false) {
    // Everything is loaded (ORT and Pyodide copied what they need into their wasm heaps), so free
    // the verified downloads, ~40 MB on the default model. Detached rather than merely dropped:
    // after a snapshot boot little garbage is made, so the GC may not run for a long time
    // (2026-11-28: renderer RSS stayed ~70 MB higher). The index files stay: int8 vectors are
    // views of the downloaded bytes.
    const keep = new Set(Object.values(manifest.index.files ?? {}));
    for (const f of ["vectors.bin", "scales.bin", "chunks.json", "docs.json"]) keep.add(`index/${f}`);
    files.release(keep);
  }
  onProgress({ stage: "ready" });

  const useTypeIds = session.inputNames.includes("token_type_ids");
  let queue = Promise.resolve();

  async function embedNow(text) {
    const [ids, mask, types] = await tokenizer.encode(text);
    const dims = [1, ids.length];
    const feeds = {
      input_ids: new ort.Tensor("int64", ids, dims),
      attention_mask: new ort.Tensor("int64", mask, dims),
    };
    if (useTypeIds) feeds.token_type_ids = new ort.Tensor("int64", types, dims);
    const result = await session.run(feeds, [output]);
    const data = Float32Array.from(result[output].data);
    for (const t of Object.values(result)) t.dispose?.();
    return { ids, data };
  }

  // One ORT run at a time: a session must not run concurrently with itself.
  function serial(fn) {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  }

  // Hybrid retrieval (issue #6, hybrid.js); null for bundles without index/lexical.bin, which
  // keep the semantic-only path (`rank`).
  const hybrid = ranker.lexical
    ? createHybrid({ py: ranker.py, index, lexical: ranker.lexical, settings: ranker.settings,
        embed: async (text) => (await embedNow(text)).data })
    : null;

  /** Hits and facet counts of one query (search options as in `search`). */
  function searchFull(query, options = {}) {
    const k = options?.k ?? 10;
    const mode = options?.mode ?? info.modes[0];
    if (typeof query !== "string") {
      return Promise.reject(new WebsemError(`query must be a string, got ${typeof query}`));
    }
    if (!Number.isInteger(k) || k < 1) {
      return Promise.reject(new WebsemError(`k must be a positive integer, got ${JSON.stringify(k)}`));
    }
    if (!MODES.includes(mode)) {
      return Promise.reject(new WebsemError(`unknown search mode ${JSON.stringify(mode)}; use one of ${MODES.join(", ")}`));
    }
    if (!hybrid) {
      if (mode !== "semantic") {
        return Promise.reject(new WebsemError(
          `mode ${JSON.stringify(mode)} needs a lexical index but this bundle has none (no index/lexical.bin); ` +
            "use mode 'semantic' or rebuild the bundle with `websem build`",
        ));
      }
      if (options?.filters) {
        return Promise.reject(new WebsemError(
          "filters need a bundle built with hybrid retrieval (this one has no index/lexical.bin); " +
            "search without filters or rebuild the bundle with `websem build`",
        ));
      }
      return serial(async () => ({ hits: rank(index, (await embedNow(query)).data, k), facets: {}, mode }));
    }
    return serial(async () => {
      try {
        return await hybrid.search(query, { k, mode, filters: options?.filters });
      } catch (e) {
        throw new WebsemError(String(e?.message ?? e));
      }
    });
  }

  const info = {
    bundle: base,
    format_version: manifest.format_version,
    model: manifest.model,
    index: { docs: index.docs.length, chunks: index.n, dims: index.dims, vector_dtype: manifest.index.vector_dtype },
    threads: ort.env.wasm.numThreads,
    // Whether Pyodide was restored from the bundle's memory snapshot (false: booted from scratch).
    pyodide_snapshot: tokenizer.snapshot === true,
    // Search modes this bundle supports (issue #6): the first is the default.
    modes: hybrid ? hybrid.modes : ["semantic"],
    load_ms: now() - started,
    timings,
  };

  return {
    info,
    /**
     * @param {string} query
     * @param {{k?: number, mode?: "hybrid"|"semantic"|"lexical", filters?: Object<string, string|string[]>}} [options]
     *   mode defaults to info.modes[0] (hybrid when the bundle has index/lexical.bin).
     * @returns {Promise<Array<{id: string, score: number, title: string, url: string, snippet: string,
     *   highlights?: number[][]}>>} highlights: [start, end) UTF-16 ranges into snippet
     */
    search(query, options = {}) {
      return searchFull(query, options).then((r) => r.hits);
    },
    /** Like search, plus facet counts: `{hits, facets: {field: [[value, count], ...]}, mode}`. */
    searchFull,
    /**
     * Sizes of the two wasm linear memories now, and of this thread's JS heap where the runtime
     * tells (Node, Deno, Chromium; not Workers), in bytes, null where unknown. An edge isolate's
     * memory limit counts the JS heap plus wasm memory; a wasm memory never shrinks.
     * @returns {Promise<{pyodide_wasm_bytes: number|null, ort_wasm_bytes: number|null, js_heap_bytes: number|null}>}
     */
    async memory() {
      return {
        pyodide_wasm_bytes: (await tokenizer.memoryBytes?.()) ?? null,
        ort_wasm_bytes: ortMemory?.buffer.byteLength ?? null,
        js_heap_bytes: jsHeapBytes(),
      };
    },
    /**
     * Test hook, NOT public API (may change without notice): raw token ids and query embeddings.
     * @internal
     */
    debug: {
      tokenize: async (text) => Array.from((await tokenizer.encode(text))[0], Number),
      embed: (text) => serial(async () => Array.from((await embedNow(text)).data)),
    },
    async close() {
      await queue;
      tokenizer.close();
      await session.release();
    },
  };
}

function jsHeapBytes() {
  try {
    const usage = globalThis.Deno?.memoryUsage?.() ?? globalThis.process?.memoryUsage?.();
    return usage?.heapTotal ?? globalThis.performance?.memory?.totalJSHeapSize ?? null;
  } catch {
    return null; // e.g. Deno without --allow-sys, or a Workers process stub
  }
}

function now() {
  return globalThis.performance?.now() ?? Date.now();
}
