// websem weights: load an ONNX model into onnxruntime-web with its weights as "external data".
//
// InferenceSession.create(bytes) copies the whole model (23 MB) into ORT's wasm heap
// and parses it there, so the weights sit in the heap twice while the session is built; a wasm
// heap never shrinks, so that transient copy stays in its size for good. Given the weights as
// external data instead (a JS-side buffer ORT reads each tensor from once), the heap holds them
// once. Measured in Node, same wasm, identical outputs: weight-int8 model 133 -> 100 MB heap,
// weight-int8-packed 78 -> 37 MB (docs/edge.md "Memory"). No file format changes: the model is
// rewritten in memory, each large initializer's raw_data replaced by an external_data reference
// (location, offset, length) into the original bytes, which are passed as the external file.
//
// Only the protobuf path ModelProto.graph (7) -> GraphProto.initializer (5) -> TensorProto
// raw_data (9) is rewritten; every other field is copied byte for byte.

/** The virtual file name the rewritten model refers to (ORT's externalData `path`). */
export const WEIGHTS_FILE = "websem-weights.bin";

function readVarint(b, pos) {
  let value = 0;
  let mul = 1;
  let byte;
  do {
    if (pos >= b.length) throw new Error("truncated varint");
    byte = b[pos++];
    value += (byte & 0x7f) * mul;
    mul *= 128;
  } while (byte & 0x80);
  return [value, pos];
}

function varint(value) {
  const out = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Uint8Array.from(out);
}

/** Fields of the message in b[start, end): {field, wire, tagStart, valStart, valEnd} (valEnd = field end). */
function* fields(b, start, end) {
  let pos = start;
  while (pos < end) {
    const tagStart = pos;
    let tag;
    [tag, pos] = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let valStart = pos;
    if (wire === 0) [, pos] = readVarint(b, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len;
      [len, valStart] = readVarint(b, pos);
      pos = valStart + len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (pos > end) throw new Error("truncated protobuf field");
    yield { field, wire, tagStart, valStart, valEnd: pos };
  }
}

const utf8 = new TextEncoder();

/** A length-delimited field made of `parts`. */
function delimited(field, parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  return [varint(field * 8 + 2), varint(len), ...parts];
}

function entry(key, value) {
  // TensorProto.external_data (13): StringStringEntryProto {key: 1, value: 2}
  return delimited(13, [...delimited(1, [utf8.encode(key)]), ...delimited(2, [utf8.encode(value)])]);
}

/**
 * Rewrite `model` (ONNX bytes) so that every initializer with at least `minBytes` of raw_data
 * refers to those bytes inside `model` itself, read as the external file WEIGHTS_FILE.
 *
 * @param {Uint8Array} model
 * @returns {{graph: Uint8Array, moved: number}} the rewritten model and how many bytes moved out
 */
export function externalizeWeights(model, minBytes = 1024) {
  let moved = 0;
  const tensor = (start, end) => {
    const out = [];
    let raw = null;
    for (const f of fields(model, start, end)) {
      if (f.field === 9 && f.wire === 2 && f.valEnd - f.valStart >= minBytes) raw = f;
      else out.push(model.subarray(f.tagStart, f.valEnd));
    }
    if (!raw) return null;
    moved += raw.valEnd - raw.valStart;
    out.push(
      ...entry("location", WEIGHTS_FILE),
      ...entry("offset", String(raw.valStart)), // an index into the `model` view
      ...entry("length", String(raw.valEnd - raw.valStart)),
      varint(14 * 8), // data_location (14) = EXTERNAL (1)
      varint(1),
    );
    return out;
  };
  const graph = (start, end) => {
    const out = [];
    for (const f of fields(model, start, end)) {
      const t = f.field === 5 && f.wire === 2 ? tensor(f.valStart, f.valEnd) : null;
      out.push(...(t ? delimited(5, t) : [model.subarray(f.tagStart, f.valEnd)]));
    }
    return out;
  };
  const parts = [];
  for (const f of fields(model, 0, model.length)) {
    parts.push(...(f.field === 7 && f.wire === 2 ? delimited(7, graph(f.valStart, f.valEnd)) : [model.subarray(f.tagStart, f.valEnd)]));
  }
  const graphBytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    graphBytes.set(p, at);
    at += p.length;
  }
  return { graph: graphBytes, moved };
}
