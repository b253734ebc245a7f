// websem tokenizer worker: Pyodide + the shipped websem_text package in a nested module worker,
// so that Pyodide boots on one core while onnxruntime-web creates its session on the other.
//
// Protocol: {type: "init", base, manifest, useSnapshot} -> {type: "progress", event}* -> {type: "ready", snapshot} |
// {type: "error", message}; {type: "encode", id, text} -> {type: "encoded", id, value: [ids,
// mask, type_ids] as BigInt64Array} | {type: "error", id, message}; {type: "call", id, method, args}
// (hybrid.js rankerCall) -> {type: "result", id, value} | {type: "error", id, message};
// {type: "memory", id} -> {type: "result", id, value: Pyodide's wasm heap size in bytes}.
import { VerifiedFiles, loadTokenizer } from "./engine.js";
import { rankerCall } from "./hybrid.js";

let tokenizer = null;

function errorMessage(e) {
  const message = e?.message ?? String(e);
  return message.startsWith("websem:") ? message : `websem: ${message}`;
}

self.onmessage = async ({ data }) => {
  if (data?.type === "init") {
    try {
      const onProgress = (event) =>
        self.postMessage({ type: "progress", event: { ...event, at: performance.timeOrigin + performance.now() } });
      // The manifest was already fetched and checked by the engine; every file is verified here.
      const files = new VerifiedFiles(data.base, data.manifest, globalThis.fetch.bind(globalThis), onProgress);
      tokenizer = await loadTokenizer(files, data.manifest, data.base, onProgress, {
        useSnapshot: data.useSnapshot !== false,
      });
      // Pyodide copied what it needs into its heap and FS: free the verified downloads (~15 MB)
      // now rather than whenever the GC of this mostly idle worker gets to them.
      files.release();
      self.postMessage({ type: "ready", snapshot: tokenizer.snapshot });
    } catch (e) {
      self.postMessage({ type: "error", message: errorMessage(e) });
    }
  } else if (data?.type === "call") {
    // Hybrid retrieval steps (issue #6, hybrid.js): {type: "call", id, method, args} -> {type: "result", id, value}.
    try {
      const value = rankerCall(tokenizer.pyodide, data.method, data.args ?? []);
      self.postMessage({ type: "result", id: data.id, value });
    } catch (e) {
      self.postMessage({ type: "error", id: data.id, message: errorMessage(e) });
    }
  } else if (data?.type === "memory") {
    self.postMessage({ type: "result", id: data.id, value: tokenizer?.memoryBytes() ?? null });
  } else if (data?.type === "encode") {
    try {
      const value = await tokenizer.encode(data.text);
      self.postMessage({ type: "encoded", id: data.id, value }, value.map((a) => a.buffer));
    } catch (e) {
      self.postMessage({ type: "error", id: data.id, message: errorMessage(e) });
    }
  }
};
