// Unit tests of web/src/manifest.js beyond the bad-bundle fixture (tests/js/bundle.test.mjs runs
// every case of tests/fixtures/bad_bundles.json through readManifest and checkManifest).
import assert from "node:assert/strict";
import { test } from "node:test";
import { FORMAT_VERSIONS, LAYOUTS, checkManifest } from "../../web/src/manifest.js";
import * as bundle from "../../web/src/bundle.js";

test("bundle.js re-exports the manifest checks it used to hold", () => {
  assert.equal(bundle.checkManifest, checkManifest);
  assert.equal(bundle.FORMAT_VERSIONS, FORMAT_VERSIONS);
  assert.deepEqual(LAYOUTS, ["flat", "partitioned"]);
});

// A split model's manifest.model.word_rows (build/model_split.py), on a manifest of the shape
// `websem build` writes: the same checks as web/verify.py _check_word_rows (tests/test_model_split.py).
const SHA = (c) => c.repeat(64);
const vendor = {
  ort: { module: "vendor/ort/a.mjs", glue: "vendor/ort/b.mjs", wasm: "vendor/ort/c.wasm" },
  pyodide: { module: "p/a.mjs", asm: "p/b.mjs", wasm: "p/c.wasm", stdlib: "p/d.zip", lock: "p/e.json" },
};

function wordRowsManifest({ split = true } = {}) {
  const files = {
    "model/model.onnx": { sha256: split ? SHA("b") : SHA("a"), size: 10 },
    "model/tokenizer.json": { sha256: SHA("c"), size: 10 },
  };
  for (const rel of ["index/vectors.bin", "index/chunks.json", "index/docs.json", "index/lexical.bin"]) {
    files[rel] = { sha256: SHA("d"), size: 10 };
  }
  const model = { sha256: SHA("a"), dims: 384 };
  if (split) {
    model.body_sha256 = SHA("b");
    model.word_rows = {
      input: "/embeddings/word_embeddings/Gather_output_0", ids_input: "input_ids", rows: 30522, dims: 384,
      row_bytes: 388, block_rows: 8, hash_bytes: 16, file: "model/word_rows.bin", hashes: "model/word_rows.sha256",
      preload_ids: [101, 102],
    };
    files["model/word_rows.bin"] = { sha256: SHA("e"), size: 30522 * 388 };
    files["model/word_rows.sha256"] = { sha256: SHA("f"), size: 16 * 3816 };
  }
  return {
    format: "websem-bundle",
    format_version: FORMAT_VERSIONS[0],
    model,
    index: {
      model_sha256: SHA("a"), dims: 384, vector_dtype: "float16",
      files: { vectors: "index/vectors.bin", chunks: "index/chunks.json", docs: "index/docs.json", lexical: "index/lexical.bin" },
    },
    runtime: { vendor, python_files: ["py/websem_text/__init__.py"] },
    files,
  };
}

test("checkManifest: a split model's manifest and a whole model's both pass", () => {
  checkManifest(wordRowsManifest());
  checkManifest(wordRowsManifest({ split: false }));
});

test("checkManifest: a hash list of whole 32-byte digests, hash_bytes 32 or absent (bundles before the key), passes", () => {
  for (const legacy of [true, false]) {
    const m = wordRowsManifest();
    if (legacy) delete m.model.word_rows.hash_bytes;
    else m.model.word_rows.hash_bytes = 32;
    m.files["model/word_rows.sha256"].size = 32 * 3816;
    checkManifest(m);
  }
});

const WORD_ROWS_CASES = [
  ["the body is not model/model.onnx", (m) => (m.model.body_sha256 = SHA("0")), /manifest\.model\.body_sha256 0{64} is not the sha256 of model\/model\.onnx/],
  ["the index names another model", (m) => (m.index.model_sha256 = SHA("0")), /index built with model 0{64} but bundle ships model a{64}/],
  ["a split model without its section", (m) => delete m.model.word_rows, /index built with model a{64} but bundle ships model b{64}/],
  ["block_rows is not a positive integer", (m) => (m.model.word_rows.block_rows = 0), /word_rows\.block_rows is 0 but must be an integer >= 1/],
  ["no input name", (m) => delete m.model.word_rows.input, /word_rows\.input is missing/],
  ["rows of another width", (m) => (m.model.word_rows.row_bytes = 384), /dims 384 and row_bytes 384/],
  ["a preload id past the table", (m) => (m.model.word_rows.preload_ids = [30522]), /preload_ids must be a list of token ids below 30522/],
  ["the rows file unlisted", (m) => delete m.files["model/word_rows.bin"], /lists no file "model\/word_rows\.bin" \(manifest\.model\.word_rows\.file\)/],
  ["a hash list of the wrong size", (m) => (m.model.word_rows.block_rows = 16), /model\/word_rows\.sha256 is listed with 61056 bytes but manifest\.model\.word_rows makes it 30528/],
  ["16-byte hashes read as 32-byte ones", (m) => delete m.model.word_rows.hash_bytes, /model\/word_rows\.sha256 is listed with 61056 bytes but manifest\.model\.word_rows makes it 122112/],
  ["hash_bytes 24", (m) => (m.model.word_rows.hash_bytes = 24), /manifest\.model\.word_rows\.hash_bytes is 24 but must be 16 or 32; rebuild the bundle/],
  ["hash_bytes null", (m) => (m.model.word_rows.hash_bytes = null), /manifest\.model\.word_rows\.hash_bytes is null but must be 16 or 32/],
  ["hash_bytes a string", (m) => (m.model.word_rows.hash_bytes = "16"), /manifest\.model\.word_rows\.hash_bytes is "16" but must be 16 or 32/],
];

for (const [name, edit, message] of WORD_ROWS_CASES) {
  test(`checkManifest refuses a split model manifest: ${name}`, () => {
    const m = wordRowsManifest();
    edit(m);
    assert.throws(() => checkManifest(m), (e) => e.name === "WebsemError" && e.message.startsWith("websem: ") && message.test(e.message));
  });
}
