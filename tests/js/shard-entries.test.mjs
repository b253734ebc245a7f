// The compact shard entries of a partitioned manifest (web/src/shard-entries.js): every moved
// entry reads back exactly as listed, and whatever does not fit the compact form stays in
// manifest.files untouched. readManifest's use of it is tested in bundle.test.mjs.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { manifestEntry } from "../../web/src/bundle.js";
import { ShardEntries } from "../../web/src/shard-entries.js";

const sha = (text) => createHash("sha256").update(text).digest("hex");
const SHARDS = { ivf: "index/ivf/{}.bin", codes: "index/code/{}.bin", lexical: "index/lex/{}.bin", fragments: "index/frag/{}.json" };

function manifest(extra = {}) {
  const files = { "model/model.onnx": { sha256: sha("m"), size: 9 }, "index/part/table.json": { sha256: sha("t"), size: 3 } };
  for (const [kind, t] of Object.entries(SHARDS)) {
    for (let i = 0; i < 40; i++) files[t.replace("{}", String(i))] = { sha256: sha(`${kind}${i}`), size: 100 * i + kind.length };
  }
  return { index: { layout: "partitioned", shards: { ...SHARDS } }, files: { ...files, ...extra } };
}

test("shard entries move to the compact table and read back exactly as listed", () => {
  const m = manifest();
  const listed = structuredClone(m.files);
  const table = ShardEntries.take(m);
  assert.equal(table.count, 160);
  assert.deepEqual(Object.keys(m.files).sort(), ["index/part/table.json", "model/model.onnx"]);
  for (const [path, entry] of Object.entries(listed)) assert.deepEqual(manifestEntry(m, path), entry, path);
  assert.equal(table.heldBytes, 4 * 40 * (8 + 32));
  // Not listed: refused as before, naming the file.
  for (const path of ["index/ivf/40.bin", "index/ivf/-1.bin", "index/ivf/1.json", "index/ivf/.bin", "index/ivf/01.bin"]) {
    assert.equal(table.get(path), undefined, path);
    assert.throws(() => manifestEntry(m, path), (e) => e.message.startsWith("websem:") && e.message.includes(JSON.stringify(path)));
  }
  // Left out of JSON and structured clones (the manifest sent to the Python worker).
  assert.equal(JSON.parse(JSON.stringify(m)).shardEntries, undefined);
  assert.equal(structuredClone(m).shardEntries, undefined);
  assert.equal(Object.keys(structuredClone(m).files).length, 2);
});

test("a missing shard number in the middle is not listed", () => {
  const m = manifest();
  delete m.files["index/lex/7.bin"];
  ShardEntries.take(m);
  assert.equal(m.shardEntries.get("index/lex/7.bin"), undefined);
  assert.deepEqual(m.shardEntries.get("index/lex/8.bin"), { sha256: sha("lexical8"), size: 807 });
});

test("entries that do not fit the compact form stay in manifest.files unchanged", () => {
  const odd = {
    "index/ivf/40.bin": { sha256: sha("x").toUpperCase(), size: 5 }, // not lowercase hex
    "index/ivf/41.bin": { sha256: sha("y"), size: 5, note: "extra field" },
    "index/ivf/42.bin": { sha256: sha("z"), size: 5.5 },
    "index/ivf/43.bin": { sha256: 7, size: 5 },
    "index/ivf/007.bin": { sha256: sha("w"), size: 5 }, // not a plain shard number
    "index/ivf/44.bin": null,
  };
  const m = manifest(odd);
  ShardEntries.take(m);
  for (const [path, entry] of Object.entries(odd)) {
    assert.deepEqual(m.files[path], entry, path);
    if (entry) assert.deepEqual(manifestEntry(m, path), entry);
  }
  assert.equal(m.files["index/ivf/3.bin"], undefined);
});

test("a template with sparse shard numbers keeps its entries in manifest.files", () => {
  const m = manifest({ "index/frag/100000000.json": { sha256: sha("far"), size: 1 } });
  ShardEntries.take(m);
  assert.deepEqual(m.files["index/frag/100000000.json"], { sha256: sha("far"), size: 1 });
  assert.deepEqual(m.files["index/frag/3.json"], { sha256: sha("fragments3"), size: 309 });
  assert.equal(m.files["index/ivf/3.bin"], undefined); // the other templates are compact
  assert.deepEqual(manifestEntry(m, "index/ivf/3.bin"), { sha256: sha("ivf3"), size: 303 });
});

test("a manifest without shard templates is left alone", () => {
  const m = manifest();
  delete m.index.shards;
  const before = structuredClone(m);
  assert.equal(ShardEntries.take(m), null);
  assert.deepEqual(m, before);
  assert.equal(m.shardEntries, undefined);
});
