// web/src/weights.js on a hand-built ONNX protobuf: large initializers' raw_data become
// external-data references into the original bytes; everything else is copied byte for byte.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WEIGHTS_FILE, externalizeWeights } from "../../web/src/weights.js";

const utf8 = new TextEncoder();

function varint(v) {
  const out = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const field = (n, bytes) => [...varint(n * 8 + 2), ...varint(bytes.length), ...bytes];
const int = (n, v) => [...varint(n * 8), ...varint(v)];

function tensor(name, raw) {
  return [...int(1, 2), ...int(2, 1), ...field(8, utf8.encode(name)), ...field(9, raw)]; // dims, data_type, name, raw_data
}

/** Decodes length-delimited / varint fields of one message: [{field, wire, value}] (value: bytes or number). */
function decode(b) {
  const out = [];
  let pos = 0;
  const read = () => {
    let v = 0;
    let mul = 1;
    let byte;
    do {
      byte = b[pos++];
      v += (byte & 0x7f) * mul;
      mul *= 128;
    } while (byte & 0x80);
    return v;
  };
  while (pos < b.length) {
    const tag = read();
    const wire = tag & 7;
    if (wire === 0) out.push({ field: Math.floor(tag / 8), wire, value: read() });
    else {
      const len = read();
      out.push({ field: Math.floor(tag / 8), wire, value: b.subarray(pos, pos + len) });
      pos += len;
    }
  }
  return out;
}

test("large raw_data moves out by reference, small stays, other fields are copied", () => {
  const big = Uint8Array.from({ length: 4096 }, (_, i) => (i * 31) & 0xff);
  const small = Uint8Array.from([1, 2, 3, 4]);
  const node = field(1, utf8.encode("MatMul")); // a GraphProto.node (1) stand-in
  const graph = [...node, ...field(5, tensor("big", big)), ...field(5, tensor("small", small)), ...field(2, utf8.encode("g"))];
  const model = Uint8Array.from([...int(1, 8), ...field(7, graph), ...field(8, [...int(2, 17)])]); // ir_version, graph, opset
  const { graph: out, moved } = externalizeWeights(model);
  assert.equal(moved, big.length);
  const top = decode(out);
  assert.deepEqual(top.map((f) => f.field), [1, 7, 8]);
  const g = decode(top[1].value);
  assert.deepEqual(g.map((f) => f.field), [1, 5, 5, 2]);
  assert.deepEqual(g[0].value, Uint8Array.from(node.slice(2)));
  const moved0 = decode(g[1].value);
  assert.ok(!moved0.some((f) => f.field === 9), "raw_data removed");
  const ext = Object.fromEntries(
    moved0.filter((f) => f.field === 13).map((f) => {
      const [k, v] = decode(f.value);
      return [new TextDecoder().decode(k.value), new TextDecoder().decode(v.value)];
    }),
  );
  assert.equal(ext.location, WEIGHTS_FILE);
  const offset = Number(ext.offset);
  assert.deepEqual(model.subarray(offset, offset + Number(ext.length)), big);
  assert.deepEqual(moved0.find((f) => f.field === 14), { field: 14, wire: 0, value: 1 });
  const kept = decode(g[2].value);
  assert.deepEqual(kept.find((f) => f.field === 9).value, small);
});

test("a truncated model is refused (the engine then loads it the ordinary way)", () => {
  const model = Uint8Array.from(field(7, field(5, tensor("w", new Uint8Array(2000)))));
  assert.throws(() => externalizeWeights(model.subarray(0, model.length - 10)), /truncated/);
});
