// websem Python worker: Pyodide + the shipped websem_text package in a nested module worker, so
// that Pyodide boots on one core while onnxruntime-web creates its session on the other.
// Methods (rpc.js): init(base, manifest, useSnapshot, cache) -> {snapshot}; encode(text) -> [ids, mask,
// type_ids] (BigInt64Arrays, transferred); ranker(step, args) and inpage(name, args)
// (websem_text.bridge); addFiles([[path, bytes]]) (more py/ files); memory().
import { VerifiedFiles } from "./bundle.js";
import { loadPython } from "./python.js";
import { Transfer, serve } from "./rpc.js";

let python = null;

function ready() {
  if (!python) throw new Error("websem: the Python worker is not initialised; call init first");
  return python;
}

const emit = serve(self, {
  async init(base, manifest, useSnapshot, cache) {
    // Events carry their own wall-clock time (`at`): the engine's thread may be busy (ORT
    // session creation) when they arrive.
    const onProgress = (event) => emit({ ...event, at: performance.timeOrigin + performance.now() });
    // The manifest was already fetched and checked by the engine; every file is verified here.
    // Byte counts go to the engine's thread as "file-bytes" events (python.js preparePython), which
    // adds them into the one overall count (progress.js).
    const files = new VerifiedFiles(base, manifest, globalThis.fetch.bind(globalThis), onProgress, { cache, plan: false });
    python = await loadPython(files, manifest, base, onProgress, { useSnapshot: useSnapshot !== false });
    // Pyodide copied what it needs into its heap and FS: free the verified downloads (~15 MB)
    // now rather than whenever the GC of this mostly idle worker gets to them.
    files.release();
    // The first encode after a snapshot restore rebuilds the vocabulary's dict (~10 ms, the
    // snapshot holds it packed) and runs the tokenizer's Python for the first time: done here,
    // from a task of its own once `init` has answered, it is over before (or while) the first
    // query's encode arrives instead of inside it. Its result is dropped; a failure shows again
    // in that query, with its message.
    setTimeout(() => {
      try {
        python.encode("Warm-up: the tokenizer's first encode, e.g. WordPiece.");
      } catch {
        // reported by the first real encode
      }
    }, 0);
    return { snapshot: python.snapshot };
  },
  encode(text) {
    const value = ready().encode(text);
    return new Transfer(value, value.map((a) => a.buffer));
  },
  ranker: (method, args) => ready().ranker(method, args ?? []),
  inpage(name, args) {
    // Bytes (an export, the index files) move to the caller instead of being copied.
    const value = ready().inpage(name, args ?? []);
    const views = value instanceof Uint8Array ? [value] : Object.values(value ?? {}).filter((v) => v instanceof Uint8Array);
    return new Transfer(value, [...new Set(views.map((v) => v.buffer))]);
  },
  addFiles: (entries) => ready().addFiles(entries),
  memory: () => python?.memoryBytes() ?? null,
});
