// Build-time Pyodide memory snapshot for a websem bundle (called by build/snapshot.py).
//
//   node web/tools/make_snapshot.mjs BUNDLE_DIR MAX_LENGTH PYODIDE_MODULE PYODIDE_LOCK PYODIDE_STDLIB KEEP_JSON
//
// PYODIDE_MODULE / PYODIDE_LOCK / PYODIDE_STDLIB: bundle paths of pyodide.mjs, pyodide-lock.json
// and python_stdlib.zip (the build's manifest.runtime.vendor.pyodide; the manifest itself is
// written after the snapshot). KEEP_JSON: zip members the restore's zip keeps even when the
// snapshot has loaded them (build/stdlib.py KEEP, a JSON list).
// Boots the bundle's own Pyodide with
// `_makeSnapshot`, writes the bundle's py/ files and model/tokenizer.json into its file system,
// runs the runtime's own set-up (runtime/python.js setupPython: websem_text.bridge.setup, the very
// code a normal boot runs), then saves the wasm heap to BUNDLE_DIR/<SNAPSHOT_PATH>. The browser
// restores it instead of starting the interpreter (docs/architecture.md "Runtime").
//
// Before saving, it writes BUNDLE_DIR/<SNAPSHOT_STDLIB_PATH>: PYODIDE_STDLIB without the members
// whose modules the snapshot already holds (plus KEEP_JSON's), mounts it as Pyodide's stdlib zip
// and re-reads zipimport's table of it, so that the saved heap describes the zip a restore mounts
// (zipimport keeps each member's offset in that table). Prints the snapshot's bundle-relative
// path, then the zip's.
//
// `_makeSnapshot` / `_loadSnapshot` / `makeMemorySnapshot()` are Pyodide 314's private (@ignore /
// @private) snapshot API; the runtime falls back to a normal boot if a snapshot does not restore,
// so a change there costs speed, not correctness.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { LOADED_MEMBERS_PY, zipSubset } from "./stdlib_zip.mjs";

const [bundleArg, maxLengthArg, moduleArg, lockArg, stdlibArg, keepArg] = process.argv.slice(2);
if (!bundleArg || !maxLengthArg || !moduleArg || !lockArg || !stdlibArg || !keepArg) {
  process.stderr.write("usage: node make_snapshot.mjs BUNDLE_DIR MAX_LENGTH PYODIDE_MODULE PYODIDE_LOCK PYODIDE_STDLIB KEEP_JSON\n");
  process.exit(2);
}
const bundle = resolve(bundleArg);
const maxLength = Number.parseInt(maxLengthArg, 10);
const keep = new Set(JSON.parse(keepArg));

// Python for mountRestZip. zipimport's importers (in sys.path_importer_cache) hold only the
// archive path and a prefix; the member table lives in zipimport._zip_directory_cache, so dropping
// the archive's entry and constructing an importer re-reads it. importlib.invalidate_caches() is
// not used: it would import importlib.metadata, which the trimmed zip may lack.
const MOUNT_PY = `
def _websem_zips():
    import sys
    return [p for p in sys.path if p.endswith(".zip")]

def _websem_remount(archive, names):
    import sys
    before = set(sys.modules)
    zipimport = sys.modules["zipimport"]
    names = set(names)
    zipimport._zip_directory_cache.pop(archive, None)
    zipimport.zipimporter(archive)
    table = zipimport._zip_directory_cache[archive]
    members = {k for k, v in table.items() if v is not None}
    if members != names:
        raise RuntimeError(f"zipimport reads {len(members)} members from the new zip, expected {len(names)}")
    for name in sorted(names):
        if not name.endswith(".py"):
            continue
        parts = name[:-3].split("/")
        if parts[-1] == "__init__":
            parts.pop()
        # Not find_spec: it compiles the module (the garbage grows the heap the snapshot saves).
        importer = zipimport.zipimporter("/".join([archive, *parts[:-1]]))
        module = ".".join(parts)
        if importer.is_package(module) != (name.endswith("/__init__.py")):
            raise RuntimeError(f"zipimport finds {name} as the wrong kind of module in the new zip")
        # Stored members only: reading a deflated one would import zlib into the snapshot.
        if table[name][1] == 0 and len(importer.get_source(module).encode()) != table[name][3]:
            raise RuntimeError(f"zipimport reads {name} wrong from the new zip")
    linecache = sys.modules.get("linecache")
    if linecache is not None:
        linecache.clearcache()  # source lines read from the old zip
    if set(sys.modules) != before:
        raise RuntimeError(f"the zip checks imported {sorted(set(sys.modules) - before)}")
`;

async function walk(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p)));
    else if (entry.name.endsWith(".py")) out.push(p);
  }
  return out.sort();
}

const runtime = (name) => import(pathToFileURL(join(bundle, "runtime", name)).href);
const { setupPython, writePythonFiles } = await runtime("python.js");
const { SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH, packSnapshot, snapshotBase, unpackSnapshot, wasmDataImage } =
  await runtime("snapshot.js");
const vendor = { module: moduleArg, lock: lockArg, stdlib: stdlibArg };
const { loadPyodide } = await import(pathToFileURL(join(bundle, ...vendor.module.split("/"))).href);
const indexURL = dirname(join(bundle, ...vendor.module.split("/"))) + sep;
const pyodide = await loadPyodide({
  indexURL,
  packageBaseUrl: indexURL,
  lockFileContents: await readFile(join(bundle, ...vendor.lock.split("/")), "utf-8"),
  // The zip mountRestZip cuts down (Pyodide's default is indexURL's python_stdlib.zip).
  stdLibURL: join(bundle, ...vendor.stdlib.split("/")),
  // Same (empty) environment and streams as the browser boot: the snapshot carries os.environ.
  stdout: () => {},
  stderr: () => {},
  _makeSnapshot: true,
});
const entries = [];
for (const p of await walk(join(bundle, "py"))) {
  entries.push([relative(bundle, p).split(sep).join("/"), new Uint8Array(await readFile(p))]);
}
writePythonFiles(pyodide, entries, new Uint8Array(await readFile(join(bundle, "model", "tokenizer.json"))));
setupPython(pyodide, maxLength);
// Sanity check before saving: the tokenizer works (the proxy is released before the snapshot).
const bridge = pyodide.pyimport("websem_text.bridge");
const probe = bridge.encode("snapshot check");
// The vocab dict held as one string in the snapshot (~0.5 MB less brotli); the first encode
// after the restore rebuilds it (~10 ms), as the check below does after the snapshot is taken.
const packed = bridge.pack_for_snapshot();
bridge.destroy();
if (!(probe[0] instanceof BigInt64Array) || probe[0].length < 3) throw new Error("tokenizer probe failed");
const restZip = await mountRestZip(pyodide);
// Free malloc chunks still hold what the set-up read and dropped (tokenizer.json's parse, module
// sources): zeroed, they cost the download nothing (snapshot.js drops and compresses zeros).
// Pyodide's CPython is built without pymalloc (sys.getallocatedblocks() is 0), so every freed
// Python object is such a chunk too.
pyodide.runPython("import gc; gc.collect()");
const zeroed = zeroFreeChunks(pyodide._module);
const stackZeroed = zeroDeadStack(pyodide._module);
const raw = pyodide.makeMemorySnapshot();
// The snapshot restores in this very state: the tokenizer must still work after the zeroing.
const after = pyodide.pyimport("websem_text.bridge");
const again = after.encode("snapshot check");
after.destroy();
if (again[0].length !== probe[0].length || again[0].some((v, i) => v !== probe[0][i])) {
  throw new Error("tokenizer probe changed after zeroing free memory");
}
// A lazy import from the mounted zip, now that the snapshot is taken (it may load modules): a
// codec the snapshot has not loaded, looked up by name as a str/bytes conversion does.
if (restZip.names.includes("encodings/utf_16.py") && !restZip.loaded.has("encodings/utf_16.py")) {
  pyodide.runPython("assert 'snapshot check'.encode('utf-16').decode('utf-16') == 'snapshot check'");
}
// Pyodide's snapshot: a header (its length in the second u32), then the wasm heap.
const heapOffset = new DataView(raw.buffer, raw.byteOffset).getUint32(4, true);
const wasmPath = join(dirname(join(bundle, ...vendor.module.split("/"))), "pyodide.asm.wasm");
const wasm = await readFile(wasmPath);
const base = {
  image: wasmDataImage(wasm),
  offset: heapOffset,
  wasmSha256: createHash("sha256").update(wasm).digest("hex"),
};
const snapshot = packSnapshot(raw, base);
const back = unpackSnapshot(snapshot, snapshotBase(snapshot) ? base.image : null);
if (back.length !== raw.length || Buffer.compare(Buffer.from(back), Buffer.from(raw)) !== 0) {
  throw new Error("sparse snapshot round trip failed");
}
process.stderr.write(
  `websem snapshot: zeroed ${(zeroed / 1e6).toFixed(1)} MB of free memory and ${(stackZeroed / 1e6).toFixed(1)} MB ` +
    `of dead stack, vocab ${packed ? "packed" : "kept as a dict"}, ${snapshot.length} bytes packed\n`,
);
const target = join(bundle, ...SNAPSHOT_PATH.split("/"));
await mkdir(dirname(target), { recursive: true });
await writeFile(target, snapshot);
process.stdout.write(`${SNAPSHOT_PATH}\n${SNAPSHOT_STDLIB_PATH}\n`);

/**
 * Writes BUNDLE_DIR/<SNAPSHOT_STDLIB_PATH> (the bundle's stdlib zip minus the members whose
 * modules are loaded now, plus `keep`), mounts it where Pyodide mounted the stdlib zip and makes
 * zipimport read its table of it: the table keeps each member's offset, and a restored snapshot
 * reads members through it from whatever zip the runtime mounts. Checks, without importing
 * anything, that every member is found and read through the new table. Returns {names, loaded}.
 */
async function mountRestZip(pyodide) {
  // A throwaway namespace: nothing of the checks stays in __main__, so nothing stays in the heap.
  const ns = pyodide.runPython("dict()");
  // Calls a function of `ns`; the proxies are released, so no reference keeps them in the heap.
  const call = (name, ...args) => {
    const fn = ns.get(name);
    const pyArgs = args.map((a) => pyodide.toPy(a));
    try {
      const result = fn(...pyArgs);
      const value = result?.toJs ? result.toJs() : result;
      result?.destroy?.();
      return value;
    } finally {
      for (const a of pyArgs) a?.destroy?.();
      fn.destroy();
    }
  };
  try {
    pyodide.runPython(LOADED_MEMBERS_PY + MOUNT_PY, { globals: ns });
    const zips = call("_websem_zips");
    if (zips.length !== 1) throw new Error(`expected one stdlib zip on sys.path, found ${JSON.stringify(zips)}`);
    const loaded = new Set(call("_websem_loaded_members"));
    const shipped = new Uint8Array(await readFile(join(bundle, ...vendor.stdlib.split("/"))));
    const { bytes, names } = zipSubset(shipped, (name) => !loaded.has(name) || keep.has(name));
    const out = join(bundle, ...SNAPSHOT_STDLIB_PATH.split("/"));
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, bytes);
    pyodide.FS.writeFile(zips[0], bytes);
    call("_websem_remount", zips[0], names);
    process.stderr.write(
      `websem snapshot: ${loaded.size} stdlib members already loaded; the restore mounts the other ` +
        `${names.length} (${bytes.length} bytes)\n`,
    );
    return { names, loaded };
  } finally {
    ns.destroy();
  }
}

/**
 * Zeroes the payload of every free chunk of Emscripten's dlmalloc heap (from __heap_base to the
 * sbrk break) and returns the bytes zeroed. The walk checks dlmalloc's invariants as it goes
 * (chunk sizes that tile the heap, each chunk's PINUSE bit equal to its predecessor's CINUSE bit,
 * a free chunk's footer equal to its size) and zeroes nothing unless the whole heap checks out:
 * a different allocator or layout then costs bytes, never correctness. The first 24 bytes of a
 * free chunk's payload (free-list and tree links) are kept.
 */
function zeroFreeChunks(M) {
  const U32 = M.HEAPU32;
  const heapBase = M.___heap_base >>> 0;
  const end = U32[M._emscripten_get_sbrk_ptr() >> 2] >>> 0;
  if (!heapBase || !end) return 0;
  for (const start of [heapBase, heapBase + 8]) {
    const plan = [];
    let p = start;
    let prevInUse = true;
    let ok = true;
    for (let n = 0; ; n++) {
      const head = U32[(p + 4) >> 2];
      const size = head & ~7;
      const inUse = (head & 2) !== 0;
      const next = p + size;
      if (size < 16 || next > end || (n > 0 && ((head & 1) !== 0) !== prevInUse)) {
        ok = false;
        break;
      }
      const last = next >= end - 64;
      if (!inUse && !last && U32[next >> 2] !== size) {
        ok = false;
        break;
      }
      if (!inUse && next > p + 32) plan.push([p + 32, next]);
      if (last) break;
      prevInUse = inUse;
      p = next;
    }
    if (!ok) continue;
    let zeroed = 0;
    for (const [a, b] of plan) {
      M.HEAPU8.fill(0, a, b);
      zeroed += b - a;
    }
    return zeroed;
  }
  return 0;
}

/**
 * Zeroes the wasm stack below the stack pointer and returns the bytes zeroed. Called from JS with
 * no wasm frame live, everything there is what the set-up's deepest calls left behind (the stack
 * grows down from its base to its end), and a frame writes its slots before reading them.
 * Zeroes nothing unless end < pointer <= base; the lowest 16 bytes are kept (where an Emscripten
 * build with stack-overflow checks keeps its cookie).
 */
function zeroDeadStack(M) {
  if (typeof M._emscripten_stack_get_current !== "function") return 0;
  const sp = M._emscripten_stack_get_current() >>> 0;
  const low = M._emscripten_stack_get_end() >>> 0;
  const high = M._emscripten_stack_get_base() >>> 0;
  if (!low || !(low + 16 < sp && sp <= high && high <= M.HEAPU8.length)) return 0;
  M.HEAPU8.fill(0, low + 16, sp);
  return sp - low - 16;
}
