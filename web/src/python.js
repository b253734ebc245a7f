// websem python: Pyodide with the bundle's websem_text package, in this thread or in a nested
// worker (python-worker.js). Boots from the bundle's verified files, restores the build-time
// memory snapshot when there is one, writes the Python files into Pyodide's file system, and
// exposes the Python side of a query (websem_text.bridge: encode; the ranker's steps: init/plan/
// finish for a flat bundle, initPartitioned/plan/rank/render for a partitioned one).
import { detach } from "./bundle.js";
import { WebsemError, pythonErrorMessage } from "./errors.js";
import { connect } from "./rpc.js";
import { SNAPSHOT_PATH, restorePlan, snapshotBase, snapshotStdlib, unpackSnapshot, wasmDataImage } from "./snapshot.js";

/** Where the bundle's py/ folder lives in Pyodide's file system (on sys.path). */
const PY_ROOT = "/websem";

/**
 * The Python that makes websem_text.bridge importable and builds the tokenizer: run once at
 * boot, or at build time before the memory snapshot is taken (web/tools/make_snapshot.mjs).
 */
export function setupPython(pyodide, maxLength) {
  pyodide.runPython(
    `import sys; sys.path.insert(0, "${PY_ROOT}/py"); from websem_text import bridge; bridge.setup(${Number(maxLength)})`,
  );
}

/**
 * Writes runtime.python_files and, when given (a boot without a snapshot builds the vocabulary
 * from it), the tokenizer vocabulary to /websem/... in Pyodide's FS.
 */
export function writePythonFiles(pyodide, entries, tokenizerJson = null) {
  pyodide.FS.mkdirTree(`${PY_ROOT}/model`);
  for (const [path, bytes] of entries) {
    const target = `${PY_ROOT}/${path}`;
    pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
    pyodide.FS.writeFile(target, bytes);
  }
  if (tokenizerJson) pyodide.FS.writeFile(`${PY_ROOT}/model/tokenizer.json`, tokenizerJson);
}

function isWorkerd() {
  return globalThis.navigator?.userAgent === "Cloudflare-Workers";
}

function isNodeRuntime() {
  return typeof process !== "undefined" && process.versions?.node && !globalThis.window && !isWorkerd();
}

/**
 * Boots Pyodide from the bundle's verified files. `snapshot` (verified bytes, a promise of them,
 * or null) restores a build-time memory snapshot instead of starting the interpreter from
 * scratch. `stdlib` is the standard-library zip Pyodide mounts, the verified bytes of the bundle
 * file `stdlibPath`. `modules` holds what an edge runtime that forbids run-time wasm compilation
 * and dynamic import passes in (createEngine: pyodideModule, pyodideAsmModule, pyodideWasmModule).
 */
async function bootPyodide(files, base, vendor, { wasm, stdlib, stdlibPath, lock, snapshot }, modules = {}) {
  if (isWorkerd() && typeof process !== "undefined" && typeof process.versions?.node === "string") {
    // Pyodide decides at import time that a global process.versions.node means Node, then reads
    // node:fs paths and fails with an unrelated-looking error; say what to change instead.
    throw new WebsemError(
      `this Worker defines process.versions.node (${process.versions.node}), which makes Pyodide take it for ` +
        'Node.js; add compatibility flag "disable_nodejs_process_v2" (and no "nodejs_compat") to the Worker, ' +
        "as in demo/edge/cloudflare/wrangler.toml",
    );
  }
  // Imported by URL once its bytes are verified (loadPython): served with a validator (ETag,
  // `websem serve`), the import is a bodiless 304 answered from the HTTP cache, i.e. the verified
  // bytes, with no `blob:` in the page's CSP (docs/architecture.md, "Runtime").
  const { loadPyodide } = modules.pyodide ?? (await import(files.url(vendor.module)));
  const indexURL = new URL("./", files.url(vendor.module)).href;
  const stdLibURL = files.url(stdlibPath);
  const options = { indexURL, stdLibURL, lockFileContents: lock, packageBaseUrl: indexURL, stdout: () => {}, stderr: () => {} };
  const precompiled = modules.pyodideAsm || modules.pyodideWasm;
  if (precompiled) options.createPyodideModule = precompiledPyodide(modules);
  if (snapshot) {
    // `snapshot` resolves to the whole heap image, or to a snapshot.js restorePlan: Pyodide then
    // gets only its header and the plan writes the heap itself (sparseRestore).
    let plan = null;
    options._loadSnapshot = Promise.resolve(snapshot).then((s) => {
      if (typeof s?.writeHeap !== "function") return s;
      plan = s;
      return s.head;
    });
    // Pyodide awaits this only once pyodide.asm.mjs is loaded: as for `snapshot` (loadPython).
    options._loadSnapshot.catch(() => {});
    const create = precompiled
      ? options.createPyodideModule
      : async (settings) => (await import(files.url(vendor.asm))).default(settings);
    options.createPyodideModule = sparseRestore(create, () => plan);
  }
  if (isNodeRuntime()) {
    // Node: Pyodide reads indexURL from the file system itself; it needs a path, not a file: URL.
    options.indexURL = new URL(indexURL).pathname;
    options.packageBaseUrl = options.indexURL;
    options.stdLibURL = new URL(stdLibURL).pathname;
    return loadPyodide(options);
  }
  // Pyodide fetches pyodide.asm.wasm and the stdlib zip (stdLibURL) through the global fetch.
  // Serve it the bytes already verified above, so nothing unverified runs and nothing is fetched
  // twice.
  // With a precompiled pyodideWasm module the wasm is never read: an empty answer stops Pyodide
  // from fetching it (its loader starts that fetch before it would call our instantiateWasm).
  const verified = new Map([
    [files.url(vendor.wasm), [wasm ?? new Uint8Array(0), "application/wasm"]],
    [stdLibURL, [stdlib, "application/zip"]],
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
  // Pyodide 314's browser path resolves URLs against the global `location`, which Cloudflare
  // Workers (workerd) do not define: it would throw a ReferenceError. Every URL we hand it is
  // absolute, so the base only has to exist; it is removed again after the boot.
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
 * Wraps a `createPyodideModule` so that, when `getPlan()` gives a snapshot.js restorePlan, the
 * module's snapshot restore reads only the header Pyodide was handed and the plan writes the
 * heap: the heap's zero runs are never written (those wasm pages stay unbacked) and no full-size
 * image is built. A Pyodide without the hook this relies on fails here, and loadPython boots
 * without the snapshot.
 */
function sparseRestore(create, getPlan) {
  return async (settings) => {
    const module = await create(settings);
    const plan = getPlan();
    if (!plan) return module;
    const api = module.API;
    if (typeof api?.restoreSnapshot !== "function" || !module.HEAPU8) {
      throw new Error("this Pyodide has no API.restoreSnapshot to restore a sparse snapshot through");
    }
    const restore = api.restoreSnapshot;
    api.restoreSnapshot = (snapshot) => {
      const state = restore.call(api, snapshot.subarray(0, plan.heapStart));
      plan.writeHeap(module.HEAPU8);
      return state;
    };
    return module;
  };
}

/**
 * websem_text.bridge's functions as JS functions (after setupPython or a snapshot restore);
 * Python's `websem:` errors become WebsemErrors.
 */
export function importBridge(pyodide) {
  // The module proxy stays alive with the engine: the function proxies are borrowed from it.
  const bridge = pyodide.pyimport("websem_text.bridge");
  const wrap = (name) => {
    const fn = bridge[name];
    return (...args) => {
      try {
        return fn(...args);
      } catch (e) {
        throw new WebsemError(pythonErrorMessage(e));
      }
    };
  };
  return {
    max_length: wrap("max_length"),
    encode: wrap("encode"),
    ranker: {
      init: wrap("ranker_init"),
      initPartitioned: wrap("ranker_init_partitioned"),
      plan: wrap("plan"),
      finish: wrap("finish"),
      rank: wrap("rank"),
      render: wrap("render"),
    },
  };
}

/**
 * In-page indexing (inpage-engine.js): calls websem_text.bridge.NAME, one of its inpage_*
 * functions, looked up per call. Python values come back as plain JS (dict -> object, bytes ->
 * Uint8Array, str and int as they are); `websem:` errors become WebsemErrors.
 */
function callInpage(pyodide, name, args) {
  if (!/^inpage_[a-z_]+$/.test(String(name))) {
    throw new WebsemError(`unknown in-page step ${JSON.stringify(name)}; use a websem_text.bridge inpage_* function`);
  }
  const bridge = pyodide.pyimport("websem_text.bridge");
  let result;
  try {
    if (typeof bridge[name] !== "function") {
      throw new WebsemError(`this bundle's websem_text has no bridge.${name}; rebuild the bundle with this websem`);
    }
    result = bridge[name](...args);
  } catch (e) {
    throw e instanceof WebsemError ? e : new WebsemError(pythonErrorMessage(e));
  } finally {
    bridge.destroy();
  }
  if (typeof result?.toJs !== "function") return result;
  try {
    return result.toJs({ dict_converter: Object.fromEntries });
  } finally {
    result.destroy();
  }
}

/**
 * Pyodide + websem_text in this thread. Uses the bundle's memory snapshot when manifest.json
 * lists one (and `useSnapshot` is not false), with the stdlib zip made for it
 * (manifest.runtime.snapshot_stdlib); if restoring it fails, boots normally with the bundle's
 * whole stdlib zip (same results, slower).
 *
 * @returns {Promise<{snapshot: boolean, encode: Function, ranker: Function, memoryBytes: Function, close: Function}>}
 */
export async function loadPython(files, manifest, base, onProgress, { useSnapshot = true, modules = {} } = {}) {
  const vendor = manifest.runtime.vendor.pyodide;
  const wantSnapshot = useSnapshot !== false && Boolean(manifest.files?.[SNAPSHOT_PATH]);
  // A snapshot restore mounts the stdlib zip made with the snapshot (the members its modules did
  // not already load: ~80 KB brotli instead of ~630 KB), a normal boot the bundle's whole trimmed
  // zip; a restore that fails fetches that one for its fallback boot.
  const stdlibPath = (wantSnapshot && snapshotStdlib(manifest)) || vendor.stdlib;
  // A restored snapshot holds the vocabulary: tokenizer.json is read only for a normal boot.
  let tokenizerJson = wantSnapshot ? null : files.bytes("model/tokenizer.json");
  const snapshotP = wantSnapshot ? files.bytes(SNAPSHOT_PATH) : null;
  snapshotP?.catch(() => {});
  // JS and wasm handed in as modules (edge runtimes) are part of the deployed code, not bundle
  // downloads: nothing to fetch or verify for them.
  // Browsers: pyodide.asm.wasm compiled while it streams in (bundle.js wasmModule: verified,
  // and on a repeat visit the browser's compiled-code cache applies), then handed to Pyodide as
  // a precompiled module, the path edge runtimes take with pyodideWasmModule.
  // The snapshot is stored against pyodide.asm.wasm's data segments (snapshot.js): their image
  // comes from the wasm bytes this load reads anyway, or, where the wasm was handed in
  // precompiled (edge), from one read of the file, made only if the snapshot asks for it.
  let image = null;
  const keepImage = (bytes) => {
    if (!wantSnapshot) return;
    try {
      image = wasmDataImage(bytes);
    } catch (e) {
      image = e;
    }
  };
  if (!modules.pyodideWasm && files.streamsWasm) {
    modules = { ...modules, pyodideWasm: files.wasmModule(vendor.wasm, keepImage) };
  }
  const [, , wasm, stdlib, lock, compiled] = await Promise.all([
    modules.pyodide ? null : files.bytes(vendor.module),
    modules.pyodideAsm ? null : files.bytes(vendor.asm),
    modules.pyodideWasm ? null : files.bytes(vendor.wasm),
    files.bytes(stdlibPath),
    files.text(vendor.lock),
    modules.pyodideWasm,
  ]);
  if (wasm) keepImage(wasm);
  if (compiled) modules = { ...modules, pyodideWasm: compiled };
  // The ~20 small py/ files are asked for only now, while Pyodide boots: requested first, they
  // took the browser's connections (6 per host over HTTP/1.1) ahead of pyodide.asm.wasm and
  // the snapshot. A restored snapshot has websem_text imported already; they are written into
  // the file system before the tokenizer is reported ready, for modules imported later.
  const pyFiles = Promise.all(manifest.runtime.python_files.map((p) => files.bytes(p).then((b) => [p, b])));
  pyFiles.catch(() => {});
  const dataImage = async () => {
    if (image === null) keepImage(await files.bytes(vendor.wasm));
    if (image instanceof Error) throw image;
    return image;
  };
  onProgress({ stage: "pyodide-boot", snapshot: wantSnapshot });
  const maxLength = manifest.model?.max_seq_length ?? 256;
  let pyodide = null;
  let bridge = null;
  if (snapshotP) {
    try {
      // The promise, not the bytes: Pyodide imports pyodide.asm.mjs while the snapshot arrives.
      let packed = null;
      let unpacked = null;
      const snapshot = snapshotP.then(async (bytes) => {
        packed = bytes;
        const base = snapshotBase(bytes);
        const wasmSha = manifest.files?.[vendor.wasm]?.sha256;
        if (base && base.wasmSha256 !== wasmSha) {
          throw new Error(`the snapshot was packed against pyodide.asm.wasm ${base.wasmSha256.slice(0, 12)}, the bundle ships ${wasmSha}`);
        }
        const dataImageBytes = base ? await dataImage() : null;
        image = null;
        const plan = restorePlan(bytes, dataImageBytes);
        if (plan) {
          unpacked = plan.head;
          return plan;
        }
        unpacked = unpackSnapshot(bytes, dataImageBytes);
        return unpacked;
      });
      // Handled where Pyodide awaits it (bootPyodide); until then Node would end the process
      // over a refused snapshot's unhandled rejection instead of falling back.
      snapshot.catch(() => {});
      try {
        pyodide = await bootPyodide(files, base, vendor, { wasm, stdlib, stdlibPath, lock, snapshot }, modules);
      } finally {
        // Pyodide's heap holds the snapshot now. Detaching what held it here frees it at once;
        // left to the GC, an idle worker kept it (renderer RSS +74 MB, measured).
        detach(unpacked);
        if (unpacked !== packed) detach(packed);
      }
      bridge = importBridge(pyodide);
      const madeFor = bridge.max_length();
      if (madeFor !== maxLength) {
        throw new Error(`the snapshot was made for max_length ${madeFor}, the manifest says ${maxLength}`);
      }
      // Pyodide keeps its options, so the 31 MB unpacked heap image would stay reachable.
      if (pyodide._api?.config) delete pyodide._api.config._loadSnapshot;
    } catch (e) {
      // A snapshot that fails its sha256 check is refused like any other bundle file.
      if (e instanceof WebsemError && !bridge) throw e;
      // Otherwise the snapshot is an optimisation only: one from another Pyodide build (or a
      // browser that refuses it) must not break search, so boot the interpreter normally.
      onProgress({ stage: "snapshot-fallback", reason: String(e?.message ?? e) });
      pyodide = null;
      bridge = null;
    }
  }
  const fromSnapshot = bridge !== null;
  if (!pyodide) {
    const full = stdlibPath === vendor.stdlib ? stdlib : await files.bytes(vendor.stdlib);
    pyodide = await bootPyodide(files, base, vendor, { wasm, stdlib: full, stdlibPath: vendor.stdlib, lock, snapshot: null }, modules);
  }
  onProgress({ stage: "pyodide-ready", snapshot: fromSnapshot });
  // Also after a snapshot: its Python state is restored, the (JS-side) file system is not, and
  // websem_text may import a module lazily.
  if (!bridge) tokenizerJson ??= files.bytes("model/tokenizer.json");
  writePythonFiles(pyodide, await pyFiles, await tokenizerJson);
  if (!bridge) {
    try {
      setupPython(pyodide, maxLength);
    } catch (e) {
      throw new WebsemError(pythonErrorMessage(e));
    }
    bridge = importBridge(pyodide);
  }
  onProgress({ stage: "tokenizer-ready", snapshot: fromSnapshot });
  return {
    snapshot: fromSnapshot,
    /** @returns {BigInt64Array[]} [ids, attention mask, type ids] (synchronous here). */
    encode: (text) => bridge.encode(String(text)),
    /** One ranker step (websem_text.bridge, synchronous here): see importBridge's `ranker`. */
    ranker: (method, args) => {
      const fn = Object.hasOwn(bridge.ranker, method) ? bridge.ranker[method] : null;
      if (!fn) {
        throw new WebsemError(`unknown ranker step ${JSON.stringify(method)}; use one of ${Object.keys(bridge.ranker).join(", ")}`);
      }
      return fn(...args);
    },
    /** One in-page indexing step (websem_text.bridge.inpage_*, synchronous here): see callInpage. */
    inpage: (name, args) => callInpage(pyodide, name, args ?? []),
    /** Writes more verified py/ files (manifest.runtime.extract_python_files) under /websem/. */
    addFiles(entries) {
      for (const [path, bytes] of entries) {
        const target = `${PY_ROOT}/${path}`;
        pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
        pyodide.FS.writeFile(target, bytes);
      }
      // Packages that appeared after start-up: drop the import system's cached directory
      // listings (importlib.invalidate_caches() would import importlib.metadata, which the
      // bundle's trimmed stdlib may lack).
      pyodide.runPython("import sys; sys.path_importer_cache.clear()");
    },
    /** Size of Pyodide's wasm heap (linear memory) in bytes. */
    memoryBytes: () => pyodide._module?.HEAP8?.byteLength ?? null,
    close() {},
  };
}

/**
 * Whether Pyodide runs in a nested worker: its boot and ORT's session creation are both mostly
 * synchronous wasm work; in one thread they run one after the other, in two they overlap on two
 * cores (cold start). Node has no global Worker; modules handed in by the caller (edge) live in
 * this thread (namespaces cannot be posted).
 */
export function usePythonWorker(opts) {
  if ((opts.pythonWorker ?? opts.tokenizerWorker) === false) return false;
  if (opts.pyodideModule || opts.pyodideAsmModule || opts.pyodideWasmModule) return false;
  return typeof globalThis.Worker === "function";
}

/**
 * Starts runtime/python-worker.js: its thread, and its module fetched and evaluated, while the
 * engine still reads the lexical tier's files (one small request; Pyodide's downloads wait for
 * `init`). Connected at once, so a worker that fails to load is reported to the first call.
 */
function spawnPythonWorker(onProgress) {
  const url = new URL("./python-worker.js", import.meta.url).href;
  const worker = new Worker(url, { type: "module", name: "websem-python" });
  const rpc = connect(worker, {
    onEvent: onProgress,
    onError: (event) =>
      new WebsemError(
        `the Python worker ${url} failed to start (${event?.message || "load error"}); serve the ` +
          "complete bundle folder (runtime/ included), e.g. with `websem serve BUNDLE`",
      ),
  });
  return rpc;
}

/** Pyodide + websem_text in a spawnPythonWorker worker; same interface as loadPython() (async). */
async function initPythonWorker(rpc, base, manifest, useSnapshot, cache) {
  let ready;
  try {
    ready = await rpc.call("init", base, manifest, useSnapshot, cache);
  } catch (e) {
    rpc.close(e);
    throw e;
  }
  return {
    snapshot: ready.snapshot === true,
    encode: (text) => rpc.call("encode", String(text)),
    ranker: (method, args) => rpc.call("ranker", method, args),
    inpage: (name, args) => rpc.call("inpage", name, args),
    addFiles: (entries) => rpc.call("addFiles", entries),
    memoryBytes: () => rpc.call("memory"),
    close: () => rpc.close(),
  };
}

/**
 * Prepares Pyodide where `opts` says (see usePythonWorker) and returns `start()`, which boots it
 * and resolves to the python object (loadPython's interface). A nested worker is spawned here,
 * so its thread and module load overlap whatever the caller does before `start()`; call
 * `start()` exactly once (the engine: when the full tier's loading begins).
 */
export function preparePython(files, manifest, base, onProgress, opts) {
  const useSnapshot = opts.snapshot !== false;
  if (usePythonWorker(opts)) {
    // The worker's byte counts go into `files`' ByteProgress (one overall count for both threads).
    const relay = typeof files.relay === "function" ? (event) => files.relay(event) : onProgress;
    const rpc = spawnPythonWorker(relay);
    return () => initPythonWorker(rpc, base, manifest, useSnapshot, opts.cache);
  }
  return () =>
    loadPython(files, manifest, base, onProgress, {
      useSnapshot,
      modules: { pyodide: opts.pyodideModule, pyodideAsm: opts.pyodideAsmModule, pyodideWasm: opts.pyodideWasmModule },
    });
}

/** Boots Pyodide where `opts` says (see usePythonWorker): preparePython, started at once. */
export function startPython(files, manifest, base, onProgress, opts) {
  return preparePython(files, manifest, base, onProgress, opts)();
}
