// websem in-page index data: the pieces between the in-page engine (inpage-engine.js) and
// Pyodide/onnxruntime-web that hold no state. What add() takes, as bridge.inpage_prepare takes
// it; a chunk's token ids as the model's inputs; a document's vectors as bridge.inpage_add takes
// them; the documents' rows laid out as index/vectors.bin; and the flat index search.js scores,
// made from bridge.inpage_search()'s files. Plain functions, unit-tested under Node
// (tests/js/inpage-data.test.mjs).
import { halfTable } from "./bundle.js";
import { WebsemError } from "./errors.js";

/** File name endings add() reads as files (the types `websem build` reads from a folder). */
export const FILE_TYPES = [".txt", ".md", ".markdown", ".html", ".htm"];

/**
 * One add() input as `[item, data]` for bridge.inpage_prepare: a record `{id?, title, text, url?,
 * meta?}` (websem_text.reader's record rules, as `websem build` applies them to corpus.jsonl) with
 * data null, or a file (a File/Blob with a name,
 * or `{name, data}` with data a Uint8Array, ArrayBuffer or string) as `{name, id?}` and its bytes.
 */
export async function toPrepareInput(input) {
  if (input == null || typeof input !== "object") {
    throw new WebsemError(`add() takes documents {id, title, text, url?, meta?} or files (.txt, .md, .html), got ${describe(input)}`);
  }
  const isBlob = typeof input.arrayBuffer === "function" && typeof input.size === "number";
  if (isBlob || "data" in input) {
    const name = input.name;
    if (typeof name !== "string" || !name) {
      throw new WebsemError("a file given to add() needs a name ending in .txt, .md or .html (its type); got none");
    }
    const item = { name };
    if (input.id != null) item.id = String(input.id);
    return [item, isBlob ? new Uint8Array(await input.arrayBuffer()) : asBytes(input.data, name)];
  }
  // The record as it is: the Python reader applies the JSONL rules to its fields (and refuses
  // what `websem build` refuses).
  return [input, null];
}

/** A file's data (Uint8Array, ArrayBuffer, a typed array view or a string) as a Uint8Array. */
export function asBytes(data, name) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === "string") return new TextEncoder().encode(data);
  throw new WebsemError(`file ${JSON.stringify(name)}: data must be a Uint8Array, ArrayBuffer or string, got ${describe(data)}`);
}

function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? `an object (${Object.prototype.toString.call(v)})` : `${typeof v} ${JSON.stringify(v)}`;
}

/** A document's chunk vectors, in chunk order, as the little-endian float32 bytes inpage_add takes. */
export function packVectors(vectors, dims) {
  const out = new Float32Array(vectors.length * dims);
  vectors.forEach((v, i) => {
    if (v.length !== dims) throw new WebsemError(`the model returned ${v.length} dimensions, the bundle says ${dims}`);
    out.set(v, i * dims);
  });
  // Float32Array is platform-endian; every browser and Node platform websem runs on is little-endian.
  return new Uint8Array(out.buffer);
}

/** The token arrays onnxruntime-web takes for one chunk's ids: what python.encode gives a query. */
export function modelInputs(inputIds) {
  const ids = BigInt64Array.from(inputIds, (x) => BigInt(x));
  const mask = new BigInt64Array(ids.length).fill(1n);
  const types = new BigInt64Array(ids.length);
  return [ids, mask, types];
}

/** `bytes` as a `Type` array: a view when aligned, else an aligned copy. */
function typedView(bytes, Type, what) {
  if (!(bytes instanceof Uint8Array)) throw new WebsemError(`the in-page index has no ${what}`);
  if (bytes.byteLength % Type.BYTES_PER_ELEMENT) {
    throw new WebsemError(`the in-page index's ${what} has ${bytes.byteLength} bytes, not a multiple of ${Type.BYTES_PER_ELEMENT}`);
  }
  const aligned = bytes.byteOffset % Type.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new Type(aligned.buffer, aligned.byteOffset, aligned.byteLength / Type.BYTES_PER_ELEMENT);
}

/**
 * The documents' rows as index/vectors.bin lays them out: `ids` (bridge.inpage_search()'s
 * doc_ids.json) in order, each one's rows from `rows` (id -> Uint8Array), copied into one
 * buffer. Afterwards every listed entry of `rows` is a view of that buffer, so the rows are held
 * once; an entry left out (a page without the body mark while others have it) gets its own copy,
 * so that no earlier buffer stays alive through it.
 */
export function layoutVectors(ids, rows, rowBytes) {
  let size = 0;
  for (const id of ids) {
    const r = rows.get(id);
    if (!r) throw new WebsemError(`the in-page index lists document ${JSON.stringify(id)}, whose vectors this worker does not hold`);
    size += r.byteLength;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const id of ids) {
    const r = rows.get(id);
    out.set(r, at);
    rows.set(id, out.subarray(at, at + r.byteLength));
    at += r.byteLength;
  }
  const listed = new Set(ids);
  for (const [id, r] of rows) {
    if (!listed.has(id) && r.byteLength !== r.buffer.byteLength) rows.set(id, r.slice());
  }
  if (rowBytes && size % rowBytes) throw new WebsemError(`the in-page index's vectors are ${size} bytes, not whole rows of ${rowBytes}`);
  return out;
}

/**
 * The flat index search.js scores, in bundle.js loadIndex's shape, from bridge.inpage_search()'s
 * files and index/vectors.bin as this worker lays it out (layoutVectors). float16 vectors stay
 * as they arrive, 2 bytes a value (dense.js widens each through `half`, the table loadIndex
 * decodes index/vectors.bin with: the same scores, half the memory
 * of a float32 copy); each chunk's document comes from chunk_doc.bin. The rows (chunk texts,
 * titles, urls) are not copied here: they stay in Pyodide, where the ranker renders hits from
 * them (search.js's flat path asks it for every hit's text).
 */
export function searchIndex(files, section) {
  const { dims, chunks: n, docs: nDocs } = section;
  const half = section.vector_dtype === "float16";
  const vectors = half
    ? typedView(files["index/vectors.bin"], Uint16Array, "index/vectors.bin")
    : typedView(files["index/vectors.bin"], Float32Array, "index/vectors.bin");
  const chunkDoc = typedView(files["chunk_doc.bin"], Int32Array, "chunk_doc.bin");
  if (vectors.length !== n * dims || chunkDoc.length !== n) {
    throw new WebsemError(`the in-page index has ${vectors.length / dims} vectors and ${chunkDoc.length} chunk rows for ${n} chunks`);
  }
  // search.js reads only the document count from `docs` (the rows are the ranker's).
  return { dims, n, vectors, scales: null, half: half ? halfTable() : null, chunks: null, docs: new Array(nDocs), chunkDoc };
}
