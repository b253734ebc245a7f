// web/src/node.js fileFetch: the fetch the Node adapter hands the engine to read a bundle from disk.
// A GET with one byte Range reads only those bytes (206 + Content-Range; 416 when unsatisfiable),
// with the same rules as `websem serve` (web/serve.py byte_range, tests/test_serve.py); anything
// else is the whole file. And the partitioned shard cache (shards.js) over it reads row blocks as
// byte ranges, never falling back to whole rows files. The server side of node.js runs whole in
// tests/test_edge.py.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { byteRange, fileFetch } from "../../web/src/node.js";
import { ShardCache } from "../../web/src/shards.js";
import { fileTable } from "./partitioned_env.mjs";

const dir = mkdtempSync(join(tmpdir(), "websem-node-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const DATA = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 31 + 7) & 255);
writeFileSync(join(dir, "data.bin"), DATA);
mkdirSync(join(dir, "folder"));
const url = pathToFileURL(join(dir, "data.bin")).href;
const N = DATA.length;

const get = async (range, input = url, init = undefined) => {
  const response = await fileFetch(input, init ?? (range === undefined ? undefined : { headers: { Range: range } }));
  return { response, body: new Uint8Array(await response.arrayBuffer()) };
};

test("a single range is 206 with those bytes, Content-Range, Content-Length and Accept-Ranges", async () => {
  for (const [header, first, last] of [["bytes=0-0", 0, 0], ["bytes=100-199", 100, 199], ["bytes=17000-", 17000, N - 1],
    ["bytes=-10", N - 10, N - 1], ["bytes=5-999999999", 5, N - 1], [" bytes=3-4 ", 3, 4], ["bytes=-99999", 0, N - 1]]) {
    const { response, body } = await get(header);
    assert.equal(response.status, 206, header);
    assert.deepEqual(body, DATA.subarray(first, last + 1), header);
    assert.equal(response.headers.get("content-range"), `bytes ${first}-${last}/${N}`, header);
    assert.equal(response.headers.get("content-length"), String(last - first + 1), header);
    assert.equal(response.headers.get("accept-ranges"), "bytes", header);
  }
});

test("an unsatisfiable range is 416 with Content-Range bytes */SIZE and no body", async () => {
  for (const header of [`bytes=${N}-`, `bytes=${N + 5}-${N + 9}`, "bytes=-0"]) {
    const { response, body } = await get(header);
    assert.equal(response.status, 416, header);
    assert.equal(body.length, 0, header);
    assert.equal(response.headers.get("content-range"), `bytes */${N}`, header);
  }
  writeFileSync(join(dir, "empty.bin"), new Uint8Array(0));
  const empty = pathToFileURL(join(dir, "empty.bin")).href;
  assert.equal((await get("bytes=-5", empty)).response.status, 416);
  assert.equal((await get("bytes=0-", empty)).response.status, 416);
  assert.equal((await get(undefined, empty)).response.status, 200);
});

test("no, several or malformed ranges, and HEAD, get the whole file (200)", async () => {
  for (const header of [undefined, "bytes=0-1,5-9", "bytes=9-3", "items=0-5", "bytes=x-y", "bytes=-", ""]) {
    const { response, body } = await get(header);
    assert.equal(response.status, 200, header);
    assert.deepEqual(body, DATA, header);
    assert.equal(response.headers.get("content-range"), null, header);
    assert.equal(response.headers.get("content-length"), String(N), header);
  }
  const head = await fileFetch(url, { method: "HEAD", headers: { Range: "bytes=0-9" } });
  assert.equal(head.status, 200);
});

test("the Range of a Request object is honoured, as is a URL object", async () => {
  const { response, body } = await get(undefined, new Request(url, { headers: { Range: "bytes=10-19" } }));
  assert.equal(response.status, 206);
  assert.deepEqual(body, DATA.subarray(10, 20));
  const whole = await get(undefined, new URL(url));
  assert.deepEqual([whole.response.status, whole.body.length], [200, N]);
});

test("a missing file or a folder is 404, with or without a range", async () => {
  for (const path of ["missing.bin", "folder"]) {
    for (const range of [undefined, "bytes=0-9"]) {
      const { response } = await get(range, pathToFileURL(join(dir, path)).href);
      assert.equal(response.status, 404, `${path} ${range}`);
    }
  }
});

test("byteRange follows websem serve's rules", () => {
  assert.deepEqual(byteRange("bytes=2-5", 10), [2, 5]);
  assert.deepEqual(byteRange("bytes=2-50", 10), [2, 9]);
  assert.deepEqual(byteRange("bytes=-3", 10), [7, 9]);
  assert.equal(byteRange("bytes=10-", 10), "unsatisfiable");
  assert.equal(byteRange("bytes=-0", 10), "unsatisfiable");
  for (const ignored of [null, "", "bytes=5-2", "bytes=0-1,3-4", "bytes=-", "bits=0-1"]) assert.equal(byteRange(ignored, 10), null);
});

test("the shard cache over fileFetch reads row blocks from disk as byte ranges, one per run", async () => {
  // A rows file whose bytes 16.. are blocks of 4 KiB, their sha256 digests as a codes shard holds them.
  const bundle = join(dir, "bundle");
  mkdirSync(join(bundle, "index"), { recursive: true });
  writeFileSync(join(bundle, "index", "rows.bin"), DATA);
  const range = (k) => [16 + 4096 * k, Math.min(16 + 4096 * (k + 1), N)];
  const count = 5;
  const hashes = new Uint8Array(32 * count);
  for (let k = 0; k < count; k++) hashes.set(createHash("sha256").update(DATA.subarray(...range(k))).digest(), 32 * k);
  const manifest = { files: fileTable(new Map([["index/rows.bin", DATA]])) };
  const asked = [];
  const logged = async (input, init) => {
    const response = await fileFetch(input, init);
    asked.push([new Headers(init?.headers).get("range"), response.status]);
    return response;
  };
  const cache = new ShardCache(pathToFileURL(`${bundle}/`).href, manifest, logged, {});
  const spec = { blocks: [0, 2, 3], count, range, hashes, hashPath: "index/codes.bin", parse: (bytes, k) => ({ k, bytes, heldBytes: bytes.length }) };
  const got = await cache.getBlocks("index/rows.bin", spec);
  assert.deepEqual(got.map((b) => b.k), [0, 2, 3]);
  for (const b of got) assert.deepEqual(b.bytes, DATA.subarray(...range(b.k)));
  assert.deepEqual(asked.sort(), [[`bytes=16-${range(0)[1] - 1}`, 206], [`bytes=${range(2)[0]}-${range(3)[1] - 1}`, 206]]);
  assert.equal(cache.rangesIgnored, false);
  const stats = cache.stats();
  assert.equal(stats.range_requests, 2);
  assert.equal(stats.fetched_bytes, 3 * 4096);
});
