// web/src/shards.js: the verified shard cache of a partitioned bundle, over a fetch that serves
// files from memory, counts requests and fails on demand: verification, one retry of transient
// failures only, de-duplicated concurrent requests, the LRU byte budget, failures not cached.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError } from "../../web/src/errors.js";
import { DEFAULT_CACHE_BYTES, ShardCache, checkCacheBytes } from "../../web/src/shards.js";
import { BASE, fileTable, memoryFetch } from "./partitioned_env.mjs";

function setup(budget, sizes = { a: 100, b: 200, c: 300, d: 50 }) {
  const files = new Map(Object.entries(sizes).map(([name, n]) => [`s/${name}.bin`, Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 255)]));
  const manifest = { files: fileTable(files) };
  const served = memoryFetch(files, manifest);
  const cache = new ShardCache(BASE, manifest, served.fetchFn, { cacheBytes: budget });
  return { files, manifest, cache, ...served };
}

const count = (log, path) => log.filter((p) => p === path).length;

test("a shard is fetched once, verified, and then served from the cache", async () => {
  const { cache, log, files } = setup(1000);
  const bytes = await cache.get("s/a.bin");
  assert.deepEqual(bytes, files.get("s/a.bin"));
  assert.equal(await cache.get("s/a.bin"), bytes);
  assert.deepEqual(log, ["s/a.bin"]);
  assert.deepEqual(cache.stats(), { bytes: 100, files: 1, hits: 1, misses: 1, fetched_bytes: 100 });
});

test("concurrent requests for one shard share one fetch", async () => {
  const { cache, log } = setup(1000);
  const [x, y, z] = await Promise.all([cache.get("s/b.bin"), cache.get("s/b.bin"), cache.get("s/b.bin")]);
  assert.equal(x, y);
  assert.equal(y, z);
  assert.equal(count(log, "s/b.bin"), 1);
});

test("the cache holds at most cacheBytes, least recently used out first", async () => {
  const { cache, log } = setup(350);
  await cache.get("s/a.bin"); // 100
  await cache.get("s/b.bin"); // 300 held
  await cache.get("s/a.bin"); // a is now the most recent
  await cache.get("s/d.bin"); // 350 held
  assert.deepEqual(cache.stats().bytes, 350);
  await cache.get("s/c.bin"); // 650: b, then a go (least recently used first)
  assert.ok(cache.stats().bytes <= 350, JSON.stringify(cache.stats()));
  assert.deepEqual([...cache.held.keys()], ["s/d.bin", "s/c.bin"]);
  await cache.get("s/a.bin"); // evicted: fetched again
  assert.equal(count(log, "s/a.bin"), 2);
  assert.ok(cache.stats().bytes <= 350);
});

test("a shard bigger than the budget is returned but not kept; budget 0 keeps nothing", async () => {
  const { cache, files } = setup(150);
  assert.deepEqual(await cache.get("s/c.bin"), files.get("s/c.bin"));
  assert.deepEqual(cache.stats().bytes, 0);
  const none = setup(0);
  await none.cache.get("s/a.bin");
  await none.cache.get("s/a.bin");
  assert.equal(count(none.log, "s/a.bin"), 2);
  assert.equal(none.cache.stats().files, 0);
});

test("parse runs once per fetch and its value's heldBytes is what the cache charges", async () => {
  const { cache } = setup(1000);
  let parsed = 0;
  const parse = (bytes) => {
    parsed++;
    return { first: bytes[0], heldBytes: 7 };
  };
  const v = await cache.get("s/a.bin", parse);
  assert.equal(await cache.get("s/a.bin", parse), v);
  assert.equal(parsed, 1);
  assert.equal(cache.stats().bytes, 7);
});

for (const [what, mutate, pattern] of [
  ["tampered (same size)", (b) => { b[b.length - 1] ^= 1; }, /s\/a\.bin failed its integrity check \(sha256 [0-9a-f]{64}, 100 bytes/],
  ["truncated", null, /s\/a\.bin failed its integrity check \(sha256 not computed, 99 bytes; manifest\.json expects [0-9a-f]{64}, 100 bytes\)/],
]) {
  test(`a ${what} shard fails with a websem: error naming it, is not retried, and is not cached`, async () => {
    const { cache, files, log } = setup(1000);
    const good = files.get("s/a.bin");
    if (mutate) {
      const bad = good.slice();
      mutate(bad);
      files.set("s/a.bin", bad);
    } else {
      files.set("s/a.bin", good.subarray(0, 99));
    }
    await assert.rejects(cache.get("s/a.bin"), (e) => e instanceof WebsemError && pattern.test(e.message) && e.message.startsWith("websem:"));
    assert.equal(count(log, "s/a.bin"), 1);
    // Other shards still work, and once the file is right the same cache loads it.
    assert.equal((await cache.get("s/b.bin")).length, 200);
    files.set("s/a.bin", good);
    assert.deepEqual(await cache.get("s/a.bin"), good);
    assert.equal(count(log, "s/a.bin"), 2);
  });
}

test("a missing shard (404) fails at once, naming it", async () => {
  const { cache, files, log } = setup(1000);
  files.delete("s/d.bin");
  await assert.rejects(cache.get("s/d.bin"), /^WebsemError: websem: could not fetch https:\/\/bundle\.test\/_websem\/s\/d\.bin \(HTTP 404\)/);
  assert.equal(count(log, "s/d.bin"), 1);
});

test("a shard the manifest does not list is refused without a request", async () => {
  const { cache, log } = setup(1000);
  await assert.rejects(cache.get("s/zz.bin"), /lists no file "s\/zz\.bin"/);
  assert.deepEqual(log, []);
});

for (const fault of ["reject-once", "503-once"]) {
  test(`a transient failure (${fault}) is retried once and succeeds`, async () => {
    const { cache, faults, log, files } = setup(1000);
    faults.set("s/b.bin", fault);
    assert.deepEqual(await cache.get("s/b.bin"), files.get("s/b.bin"));
    assert.equal(count(log, "s/b.bin"), 2);
  });
}

for (const fault of ["reject", "500"]) {
  test(`a failure that persists (${fault}) fails after exactly one retry, naming the file`, async () => {
    const { cache, faults, log } = setup(1000);
    faults.set("s/b.bin", fault);
    await assert.rejects(cache.get("s/b.bin"), (e) => e instanceof WebsemError && e.message.includes("s/b.bin") && e.message.includes("twice"));
    assert.equal(count(log, "s/b.bin"), 2);
    faults.delete("s/b.bin");
    assert.equal((await cache.get("s/b.bin")).length, 200);
  });
}

test("checkCacheBytes: the default, or a non-negative integer", () => {
  assert.equal(checkCacheBytes(undefined), DEFAULT_CACHE_BYTES);
  assert.equal(DEFAULT_CACHE_BYTES, 64 * 1024 * 1024);
  assert.equal(checkCacheBytes(0), 0);
  for (const bad of [-1, 1.5, "64MB", Infinity, NaN]) {
    assert.throws(() => checkCacheBytes(bad), /^WebsemError: websem: cacheBytes must be a non-negative integer number of bytes \(default 67108864\), got /);
  }
});
