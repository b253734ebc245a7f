// websem manifest: the checks a bundle's manifest.json must pass before any file is used.
//
// The same list as `websem query`'s (web/verify.py), pinned by tests/fixtures/bad_bundles.json
// (tests/js/bundle.test.mjs) and, for a split model's word rows, tests/js/manifest.test.mjs.
import { WebsemError } from "./errors.js";

/** Bundle format versions this runtime reads. */
export const FORMAT_VERSIONS = [2];

export const REBUILD = "rebuild the bundle with `websem build`";
const VENDOR_KEYS = { ort: ["module", "glue", "wasm"], pyodide: ["module", "asm", "wasm", "stdlib", "lock"] };
const VECTOR_DTYPES = ["int8", "float16", "float32"];

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * manifest.model.word_rows.hash_bytes this runtime reads: bytes of each block's sha256 the hash
 * list keeps (a prefix; build/model_split.py writes 16). Absent means 32, the whole digest, what
 * bundles written before the key carry (web/verify.py WORD_ROW_HASH_BYTES).
 */
export const WORD_ROW_HASH_BYTES = [16, 32];

/** A split model's hash_bytes (`spec`: manifest.model.word_rows), refused unless 16 or 32. */
export function wordRowsHashBytes(spec) {
  const hashBytes = spec.hash_bytes === undefined ? 32 : spec.hash_bytes;
  if (!WORD_ROW_HASH_BYTES.includes(hashBytes)) {
    throw new WebsemError(
      `manifest.model.word_rows.hash_bytes is ${JSON.stringify(hashBytes)} but must be ${WORD_ROW_HASH_BYTES.join(" or ")}; ${REBUILD}`,
    );
  }
  return hashBytes;
}

/** Index layouts this runtime reads (manifest.index.layout; absent = flat). */
export const LAYOUTS = ["flat", "partitioned"];
/** A partitioned index's always-loaded files (manifest.index.files), fetched by load(). */
const PARTITIONED_FILES = ["table", "centroids", "docmap"];

/**
 * A split model (manifest.model.word_rows, build/model_split.py): model/model.onnx is its body
 * (model.body_sha256) and the section names the rows and hash-list files with consistent sizes
 * (web/verify.py _check_word_rows makes the same checks).
 */
function checkWordRows(model, files, manifestUrl) {
  const body = files["model/model.onnx"].sha256;
  if (model.body_sha256 !== body) {
    throw new WebsemError(
      `manifest.model.body_sha256 ${model.body_sha256} is not the sha256 of model/model.onnx (${body}) in ${manifestUrl}; ${REBUILD}`,
    );
  }
  const spec = model.word_rows;
  if (!isObject(spec)) throw new WebsemError(`manifest.model.word_rows must be an object; ${REBUILD}`);
  for (const key of ["rows", "dims", "row_bytes", "block_rows"]) {
    if (!Number.isInteger(spec[key]) || spec[key] < 1) {
      throw new WebsemError(`manifest.model.word_rows.${key} is ${JSON.stringify(spec[key])} but must be an integer >= 1; ${REBUILD}`);
    }
  }
  for (const key of ["file", "hashes", "input"]) {
    if (typeof spec[key] !== "string") throw new WebsemError(`manifest.model.word_rows.${key} is missing (a string); ${REBUILD}`);
  }
  if (spec.dims !== model.dims || spec.row_bytes !== spec.dims + 4) {
    throw new WebsemError(
      `manifest.model.word_rows has dims ${spec.dims} and row_bytes ${spec.row_bytes}, but the model makes ` +
        `${model.dims}-d vectors (rows of dims int8 + a float32 scale); ${REBUILD}`,
    );
  }
  const preload = spec.preload_ids ?? [];
  if (!Array.isArray(preload) || !preload.every((i) => Number.isInteger(i) && i >= 0 && i < spec.rows)) {
    throw new WebsemError(
      `manifest.model.word_rows.preload_ids must be a list of token ids below ${spec.rows}, got ${JSON.stringify(preload)}; ${REBUILD}`,
    );
  }
  const sizes = { file: spec.rows * spec.row_bytes, hashes: wordRowsHashBytes(spec) * Math.ceil(spec.rows / spec.block_rows) };
  for (const [key, size] of Object.entries(sizes)) {
    const entry = files[spec[key]];
    if (!isObject(entry) || typeof entry.sha256 !== "string") {
      throw new WebsemError(
        `${manifestUrl} lists no file ${JSON.stringify(spec[key])} (manifest.model.word_rows.${key}); the bundle is incomplete, ${REBUILD}`,
      );
    }
    if (entry.size !== size) {
      throw new WebsemError(`${spec[key]} is listed with ${entry.size} bytes but manifest.model.word_rows makes it ${size}; ${REBUILD}`);
    }
  }
}

/** The partitioned layout's shard templates and IVF settings (web/query.py check_manifest's wording). */
function checkPartitioned(index) {
  const shards = isObject(index.shards) ? index.shards : {};
  for (const key of ["ivf", "lexical", "fragments"]) {
    if (typeof shards[key] !== "string" || !shards[key].includes("{}")) {
      throw new WebsemError(`manifest.index.shards.${key} is missing (a path template with {} for the shard number); ${REBUILD}`);
    }
  }
  const { nlist, nprobe } = isObject(index.ivf) ? index.ivf : {};
  if (nlist == null) throw new WebsemError(`manifest.index.ivf.nlist is missing (a positive integer); ${REBUILD}`);
  if (!Number.isInteger(nlist) || nlist < 1) {
    throw new WebsemError(`manifest.index.ivf.nlist is ${JSON.stringify(nlist)} but must be an integer >= 1; ${REBUILD}`);
  }
  if (nprobe == null) throw new WebsemError(`manifest.index.ivf.nprobe is missing (an integer from 1 to nlist); ${REBUILD}`);
  if (!Number.isInteger(nprobe) || nprobe < 1 || nprobe > nlist) {
    throw new WebsemError(
      `manifest.index.ivf.nprobe is ${JSON.stringify(nprobe)} but must be an integer from 1 to nlist (${nlist}); ${REBUILD}`,
    );
  }
  const code = index.ivf.code ?? "rows";
  if (code !== "binary" && code !== "rows") {
    throw new WebsemError(`manifest.index.ivf.code ${JSON.stringify(code)} is unknown; allowed: binary, rows; ${REBUILD}`);
  }
  if (code === "binary") {
    if (typeof shards.codes !== "string" || !shards.codes.includes("{}")) {
      throw new WebsemError(
        `manifest.index.shards.codes is missing (a path template with {} for the list number; ivf.code is binary); ${REBUILD}`,
      );
    }
    const { rerank } = index.ivf;
    if (rerank == null) throw new WebsemError(`manifest.index.ivf.rerank is missing (an integer >= 1; ivf.code is binary); ${REBUILD}`);
    if (!Number.isInteger(rerank) || rerank < 1) {
      throw new WebsemError(
        `manifest.index.ivf.rerank is ${JSON.stringify(rerank)} but must be an integer >= 1 (ivf.code is binary); ${REBUILD}`,
      );
    }
  }
}

/**
 * Throws a WebsemError naming the first thing wrong with `manifest` (format 2). The query-time
 * rules (manifest.search) are not checked here: websem_text.rules.check_search, the one
 * definition of them, validates the table in Pyodide when the ranker is set up (search.js), before
 * the engine is ready.
 */
export function checkManifest(manifest, manifestUrl = "manifest.json") {
  if (!isObject(manifest) || manifest.format !== "websem-bundle") {
    throw new WebsemError(
      `${manifestUrl} is not a websem bundle manifest (format ${JSON.stringify(manifest?.format)}, ` +
        'expected "websem-bundle"); point load() at the folder written by `websem build`',
    );
  }
  if (!FORMAT_VERSIONS.includes(manifest.format_version)) {
    throw new WebsemError(
      `bundle format_version ${JSON.stringify(manifest.format_version)} is not supported by this runtime ` +
        `(supported: ${FORMAT_VERSIONS.join(", ")}); ${REBUILD}`,
    );
  }
  const files = isObject(manifest.files) ? manifest.files : {};
  const model = isObject(manifest.model) ? manifest.model : {};
  const index = isObject(manifest.index) ? manifest.index : {};
  const paths = isObject(index.files) ? index.files : {};
  const layout = index.layout ?? "flat"; // bundles built before layouts existed are flat
  if (!LAYOUTS.includes(layout)) {
    throw new WebsemError(`index.layout ${JSON.stringify(layout)} is unknown; allowed: ${LAYOUTS.join(", ")}; ${REBUILD}`);
  }
  const needed = layout === "flat"
    ? ["vectors", "chunks", "docs", "lexical", ...(index.vector_dtype === "int8" ? ["scales"] : [])]
    : PARTITIONED_FILES;
  for (const key of needed) {
    if (typeof paths[key] !== "string") {
      const why = layout === "flat" ? "" : " (a partitioned index loads it at start)";
      throw new WebsemError(`manifest.index.files.${key} is missing${why}; ${REBUILD}`);
    }
  }
  if (layout === "partitioned") checkPartitioned(index);
  for (const rel of ["model/model.onnx", "model/tokenizer.json", ...needed.map((key) => paths[key])]) {
    if (!isObject(files[rel])) {
      throw new WebsemError(`${manifestUrl} lists no file ${JSON.stringify(rel)}; the bundle is incomplete, ${REBUILD}`);
    }
  }
  // The index records the model its vectors came from (the package's model.onnx); the bundle
  // ships that model whole, or its body plus word rows (manifest.model.word_rows).
  const shipped = model.word_rows == null ? files["model/model.onnx"].sha256 : model.sha256;
  if (!model.sha256 || index.model_sha256 !== model.sha256 || model.sha256 !== shipped) {
    throw new WebsemError(`index built with model ${index.model_sha256} but bundle ships model ${shipped}; rebuild with \`websem build\``);
  }
  if (model.word_rows != null) checkWordRows(model, files, manifestUrl);
  if (index.dims !== model.dims) {
    throw new WebsemError(`index dims ${index.dims} differ from model dims ${model.dims}; rebuild with \`websem build\``);
  }
  if (!VECTOR_DTYPES.includes(index.vector_dtype)) {
    throw new WebsemError(
      `index vector_dtype ${JSON.stringify(index.vector_dtype)} is unknown (allowed: ${VECTOR_DTYPES.join(", ")}); rebuild with \`websem build\``,
    );
  }
  const vendor = manifest.runtime?.vendor;
  for (const [pkg, keys] of Object.entries(VENDOR_KEYS)) {
    for (const key of keys) {
      if (typeof vendor?.[pkg]?.[key] !== "string") {
        throw new WebsemError(`manifest.runtime.vendor.${pkg}.${key} is missing; ${REBUILD}`);
      }
    }
  }
  if (!Array.isArray(manifest.runtime.python_files) || !manifest.runtime.python_files.length) {
    throw new WebsemError(`manifest.json lists no runtime.python_files (the websem_text package); ${REBUILD}`);
  }
}
