// websem Python worker: Pyodide + the shipped websem_text package in a nested module worker, so
// that Pyodide boots on one core while onnxruntime-web creates its session on the other.
// Methods (rpc.js): init(base, manifest, useSnapshot) -> {snapshot}; encode(text) -> [ids, mask,
// type_ids] (BigInt64Arrays, transferred); ranker(step, args) (websem_text.bridge); memory().
import { VerifiedFiles } from "./bundle.js";
import { loadPython } from "./python.js";
import { Transfer, serve } from "./rpc.js";

let python = null;

function ready() {
  if (!python) throw new Error("websem: the Python worker is not initialised; call init first");
  return python;
}

const emit = serve(self, {
  async init(base, manifest, useSnapshot) {
    // Events carry their own wall-clock time (`at`): the engine's thread may be busy (ORT
    // session creation) when they arrive.
    const onProgress = (event) => emit({ ...event, at: performance.timeOrigin + performance.now() });
    // The manifest was already fetched and checked by the engine; every file is verified here.
    const files = new VerifiedFiles(base, manifest, globalThis.fetch.bind(globalThis), onProgress);
    python = await loadPython(files, manifest, base, onProgress, { useSnapshot: useSnapshot !== false });
    // Pyodide copied what it needs into its heap and FS: free the verified downloads (~15 MB)
    // now rather than whenever the GC of this mostly idle worker gets to them.
    files.release();
    return { snapshot: python.snapshot };
  },
  encode(text) {
    const value = ready().encode(text);
    return new Transfer(value, value.map((a) => a.buffer));
  },
  ranker: (method, args) => ready().ranker(method, args ?? []),
  memory: () => python?.memoryBytes() ?? null,
});
