// websem Web Worker: runs engine.js off the main thread (module worker).
//
// Protocol (all messages are plain objects):
//   main -> worker  {type: "init", bundleUrl, options: {threads}}
//   worker -> main  {type: "progress", event} ... then {type: "ready", info} or {type: "error", message}
//   main -> worker  {type: "call", id, method: "search" | "searchFull" | "debug.tokenize" | "debug.embed" | "close", args}
//   worker -> main  {type: "result", id, value} or {type: "error", id, message}
import { createEngine } from "./engine.js";

let engine = null;

function errorMessage(e) {
  const message = e?.message ?? String(e);
  return message.startsWith("websem:") ? message : `websem: ${message}`;
}

const methods = {
  search: (query, options) => engine.search(query, options),
  searchFull: (query, options) => engine.searchFull(query, options),
  "debug.tokenize": (text) => engine.debug.tokenize(text),
  "debug.embed": (text) => engine.debug.embed(text),
  close: () => engine.close(),
};

self.onmessage = async ({ data }) => {
  if (data?.type === "init") {
    try {
      engine = await createEngine(data.bundleUrl, {
        ...data.options,
        onProgress: (event) => self.postMessage({ type: "progress", event }),
      });
      self.postMessage({ type: "ready", info: engine.info });
    } catch (e) {
      self.postMessage({ type: "error", message: errorMessage(e) });
    }
    return;
  }
  if (data?.type === "call") {
    const method = methods[data.method];
    try {
      if (!engine) throw new Error("websem: the engine is not loaded yet; await load() first");
      if (!method) throw new Error(`websem: unknown method ${JSON.stringify(data.method)}`);
      const value = await method(...(data.args ?? []));
      self.postMessage({ type: "result", id: data.id, value });
    } catch (e) {
      self.postMessage({ type: "error", id: data.id, message: errorMessage(e) });
    }
  }
};
