// Run a websem model.onnx in onnxruntime-web's WASM backend under Node 20 (numThreads = 1),
// batch 1, one ORT run per id sequence, exactly like the browser runtime does.
//
// usage: node run_ort_web.mjs MODEL_ONNX IDS_JSON [OUTPUT_NAME]
//   IDS_JSON: [[101, 7592, 102], ...] (token ids with [CLS]/[SEP])
// prints JSON: {"output": name, "embeddings": [[...], ...], "ms_per_run": x}
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "..", "web", "node_modules", "onnxruntime-web", "dist");
// The plain wasm build only (the one websem bundles): not the jsep/jspi/asyncify variants.
const ort = await import(pathToFileURL(join(dist, "ort.wasm.min.mjs")).href);

const [modelPath, idsPath, outputName = "sentence_embedding"] = process.argv.slice(2);
if (!modelPath || !idsPath) {
  console.error("usage: node run_ort_web.mjs MODEL_ONNX IDS_JSON [OUTPUT_NAME]");
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = dist + "/";
ort.env.logLevel = "error";

const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(modelPath)), {
  executionProviders: ["wasm"],
});
const allIds = JSON.parse(readFileSync(idsPath, "utf8"));
const embeddings = [];
const t0 = performance.now();
for (const ids of allIds) {
  const n = ids.length;
  const inputIds = BigInt64Array.from(ids, (x) => BigInt(x));
  const feeds = {
    input_ids: new ort.Tensor("int64", inputIds, [1, n]),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
    token_type_ids: new ort.Tensor("int64", new BigInt64Array(n), [1, n]),
  };
  const out = await session.run(feeds, [outputName]);
  embeddings.push(Array.from(out[outputName].data));
}
const ms = (performance.now() - t0) / Math.max(1, allIds.length);
await session.release();
process.stdout.write(JSON.stringify({ output: outputName, embeddings, ms_per_run: ms }));
