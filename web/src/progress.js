// websem progress: bytes loaded / total while load() runs, per group of files and overall.
//
// The totals come from manifest.json (`files[path].size`, the decoded size: the counts are of
// decoded bytes whichever Content-Encoding the server sent), the counts from the response
// bodies as they stream in (bundle.js VerifiedFiles). One ByteProgress lives in the engine's
// thread; a Python worker's VerifiedFiles reports its files' counts to it (python.js relays
// them), so the overall count covers both threads. Each event:
//   {stage: "bytes", group, file, loaded, total, overall: {loaded, total}, from}
// where `loaded` / `total` are the group's, `file` is the file that advanced, and `from` is
// "network" or "cache" (Cache Storage, cache.js). Counts only grow, and once every file of the
// plan is read, `overall.loaded === overall.total`.

import { WebsemError } from "./errors.js";
import { SNAPSHOT_PATH, snapshotStdlib } from "./snapshot.js";

/** The groups of files `load()` fetches, in the order they are listed. */
export const GROUPS = ["model", "onnxruntime", "pyodide", "index"];

/** The always-loaded files of a partitioned index (bundle.js checks them). */
const PARTITIONED_FILES = ["table", "centroids", "docmap"];

/**
 * The files `load()` fetches with `opts` (the engine's options), each with its group and size:
 * what the engine's loaders (model.js, python.js, search.js, partitioned.js) read at load.
 * Files handed in as modules (edge runtimes) and a skipped snapshot are left out; shards of a
 * partitioned index are fetched per query and are not part of loading.
 *
 * @returns {Array<{path: string, group: string, size: number}>}
 */
export function loadPlan(manifest, opts = {}) {
  const files = manifest.files ?? {};
  const plan = [];
  const seen = new Set();
  const add = (group, path, wanted = true) => {
    if (!wanted || typeof path !== "string" || seen.has(path) || !files[path]) return;
    seen.add(path);
    plan.push({ path, group, size: files[path].size });
  };
  const vendor = manifest.runtime?.vendor ?? {};
  add("model", "model/model.onnx");
  // The vocabulary is in a restored snapshot's heap: tokenizer.json is read only without one.
  const snapshot = opts.snapshot !== false && Boolean(files[SNAPSHOT_PATH]);
  add("model", "model/tokenizer.json", !snapshot);
  // A split model's hash list is read at load; its word rows are read per query (model.js
  // WordRows), like a partitioned index's shards, so they are not part of loading.
  add("model", manifest.model?.word_rows?.hashes);
  const ort = vendor.ort ?? {};
  add("onnxruntime", ort.module, !opts.ortModule);
  add("onnxruntime", ort.glue, !opts.ortModule);
  add("onnxruntime", ort.wasm, !opts.ortWasmModule);
  const py = vendor.pyodide ?? {};
  add("pyodide", py.module, !opts.pyodideModule);
  add("pyodide", py.asm, !opts.pyodideAsmModule);
  add("pyodide", py.wasm, !opts.pyodideWasmModule);
  // A snapshot restore mounts the stdlib zip made with the snapshot instead of the whole one
  // (python.js; a failed restore's fallback reads the whole one outside this plan).
  add("pyodide", (snapshot && snapshotStdlib(manifest)) || py.stdlib);
  add("pyodide", py.lock);
  add("pyodide", SNAPSHOT_PATH, snapshot);
  for (const path of manifest.runtime?.python_files ?? []) add("pyodide", path);
  const index = manifest.index ?? {};
  const paths = index.files ?? {};
  const keys = index.layout === "partitioned" ? PARTITIONED_FILES : Object.keys(paths);
  for (const key of keys) add("index", paths[key]);
  return plan;
}

/** Adds up the bytes read per file into per-group and overall counts, and emits "bytes" events. */
export class ByteProgress {
  /**
   * @param {Array<{path: string, group: string, size: number}>} plan loadPlan()
   * @param {(event: object) => void} emit gets each "bytes" event
   */
  constructor(plan, emit) {
    this.emit = emit;
    this.files = new Map();
    this.groups = new Map();
    this.overall = { loaded: 0, total: 0 };
    for (const { path, group, size } of plan) {
      this.files.set(path, { group, size, loaded: 0 });
      const g = this.groups.get(group) ?? { loaded: 0, total: 0 };
      g.total += size;
      this.groups.set(group, g);
      this.overall.total += size;
    }
  }

  /**
   * `loaded` bytes of `path` are read now (a running count for that file). Files outside the
   * plan, and counts that do not grow (a second reader of the same file), emit nothing; a count
   * is capped at the file's size, so the totals are never passed.
   */
  update(path, loaded, from = "network") {
    const file = this.files.get(path);
    if (!file) return;
    const now = Math.min(Number(loaded) || 0, file.size);
    if (now <= file.loaded) return;
    const delta = now - file.loaded;
    file.loaded = now;
    const group = this.groups.get(file.group);
    group.loaded += delta;
    this.overall.loaded += delta;
    this.emit({
      stage: "bytes",
      group: file.group,
      file: path,
      loaded: group.loaded,
      total: group.total,
      overall: { loaded: this.overall.loaded, total: this.overall.total },
      from,
    });
  }
}

// A file's byte count is reported at most once per this many bytes (and at its end): events
// cross a thread boundary, and one per network chunk (~64 KB) would be thousands per load.
const REPORT_EVERY = 256 * 1024;

/**
 * The body of `response` as one ArrayBuffer, read as a stream; `onBytes(n)` gets the running
 * count of decoded bytes. `size` (the manifest's) sizes the buffer up front, so the body is not
 * copied again at the end; a longer body still arrives whole (and fails its size check).
 */
export async function readBody(response, size, url, onBytes) {
  const reader = response.body?.getReader?.();
  if (!reader) {
    const buf = await response.arrayBuffer();
    onBytes(buf.byteLength);
    return buf;
  }
  let out = new Uint8Array(size);
  let at = 0;
  let reported = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.byteLength > out.length) {
        const grown = new Uint8Array(Math.max(out.length * 2, at + value.byteLength));
        grown.set(out.subarray(0, at));
        out = grown;
      }
      out.set(value, at);
      at += value.byteLength;
      if (at - reported >= REPORT_EVERY) {
        reported = at;
        onBytes(at);
      }
    }
  } catch (e) {
    throw new WebsemError(`could not fetch ${url} (the download broke off: ${e.message}); check that the bundle is served and reachable`);
  }
  if (at !== reported) onBytes(at);
  return at === out.length ? out.buffer : out.slice(0, at).buffer;
}
