// web/src/shards.js: the verified shard cache of a partitioned bundle, over a fetch that serves
// files from memory (answering Range with 206, or ignoring it), counts requests and fails on
// demand: verification of files and of row blocks read as byte ranges, one request per run of
// consecutive blocks, the whole-file fallback, one retry of transient failures only,
// de-duplicated concurrent requests, the LRU byte budget, failures not cached.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
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
  assert.deepEqual(cache.stats(), { bytes: 100, files: 1, hits: 1, misses: 1, fetched_bytes: 100, range_requests: 0 });
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
  assert.equal(DEFAULT_CACHE_BYTES, 16 * 1024 * 1024);
  assert.equal(checkCacheBytes(0), 0);
  for (const bad of [-1, 1.5, "64MB", Infinity, NaN]) {
    assert.throws(() => checkCacheBytes(bad), /^WebsemError: websem: cacheBytes must be a non-negative integer number of bytes \(default 16777216\), got /);
  }
});

// Row blocks: a 100-byte file whose bytes 10.. are 6 blocks of 16 bytes (the last one 10), with
// their sha256 digests as a codes shard carries them.
const RANGE = (k) => [10 + 16 * k, Math.min(10 + 16 * (k + 1), 100)];

function blockSetup(budget = 1000) {
  const files = new Map([["s/r.bin", Uint8Array.from({ length: 100 }, (_, i) => (i * 13 + 5) & 255)],
    ["s/q.bin", Uint8Array.from({ length: 100 }, (_, i) => (i * 3 + 1) & 255)]]);
  const manifest = { files: fileTable(files) };
  const served = memoryFetch(files, manifest);
  const cache = new ShardCache(BASE, manifest, served.fetchFn, { cacheBytes: budget });
  const hashes = (path) => {
    const out = new Uint8Array(6 * 32);
    for (let k = 0; k < 6; k++) out.set(createHash("sha256").update(files.get(path).subarray(...RANGE(k))).digest(), 32 * k);
    return out;
  };
  let parsed = 0;
  const spec = (path, blocks) => ({
    blocks, count: 6, range: RANGE, hashes: hashes(path), hashPath: "s/codes.bin",
    parse: (bytes, k) => {
      parsed++;
      return { k, bytes: Array.from(bytes), heldBytes: bytes.length };
    },
  });
  const get = (blocks, path = "s/r.bin") => cache.getBlocks(path, spec(path, blocks));
  const want = (blocks, path = "s/r.bin") => blocks.map((k) => ({ k, bytes: Array.from(files.get(path).subarray(...RANGE(k))), heldBytes: RANGE(k)[1] - RANGE(k)[0] }));
  return { files, cache, get, want, parsed: () => parsed, served, ...served };
}

test("blocks: one Range request per run of consecutive blocks, each block verified and cached as path#k", async () => {
  const { cache, get, want, ranges } = blockSetup();
  assert.deepEqual(await get([0, 1, 3, 5]), want([0, 1, 3, 5]));
  assert.deepEqual(ranges, [["s/r.bin", "bytes=10-41"], ["s/r.bin", "bytes=58-73"], ["s/r.bin", "bytes=90-99"]]);
  assert.deepEqual(cache.stats(), { bytes: 58, files: 4, hits: 0, misses: 4, fetched_bytes: 58, range_requests: 3 });
  assert.deepEqual([...cache.held.keys()].sort(), ["s/r.bin#0", "s/r.bin#1", "s/r.bin#3", "s/r.bin#5"]);
  ranges.length = 0;
  assert.deepEqual(await get([1, 2, 3, 4]), want([1, 2, 3, 4]));
  assert.deepEqual(ranges, [["s/r.bin", "bytes=42-57"], ["s/r.bin", "bytes=74-89"]]);
  const stats = cache.stats();
  assert.deepEqual([stats.hits, stats.misses, stats.fetched_bytes, stats.bytes], [2, 6, 90, 90]);
});

test("blocks: concurrent reads of one block share one request; the LRU bounds blocks too", async () => {
  const { cache, get, want, ranges, parsed } = blockSetup(40);
  const [x, y] = await Promise.all([get([2]), get([2, 3])]);
  assert.deepEqual([x, y], [want([2]), want([2, 3])]);
  assert.equal(x[0], y[0]);
  assert.deepEqual(ranges, [["s/r.bin", "bytes=42-57"], ["s/r.bin", "bytes=58-73"]]);
  assert.equal(parsed(), 2);
  // The two reads' blocks are kept as their sha256 checks finish, in either order (WebCrypto runs
  // off the main thread): a hit on block 3 makes block 2 the least recently used for certain.
  await get([3]);
  await get([0]); // 48 bytes > 40: block 2 (least recently used) goes
  assert.deepEqual([...cache.held.keys()], ["s/r.bin#3", "s/r.bin#0"]);
  assert.ok(cache.stats().bytes <= 40);
});

test("blocks from a server that ignores Range: the whole file, checked against the manifest, then cut", async () => {
  const { cache, get, want, ranges, served, files } = blockSetup();
  served.honourRanges = false;
  assert.deepEqual(await get([1, 2]), want([1, 2]));
  assert.deepEqual(ranges, [["s/r.bin", "bytes=26-57"]]); // asked a range, got the whole file
  assert.equal(cache.rangesIgnored, true);
  // Every block of the file is kept (they fit), the asked ones most recently used.
  assert.deepEqual([...cache.held.keys()], [0, 3, 4, 5, 1, 2].map((k) => `s/r.bin#${k}`));
  assert.deepEqual(cache.stats().fetched_bytes, 100);
  ranges.length = 0;
  assert.deepEqual(await get([0, 5]), want([0, 5]));
  assert.deepEqual(ranges, []);
  // Known to ignore Range: one plain request for all the blocks of another file.
  assert.deepEqual(await get([0, 2, 5], "s/q.bin"), want([0, 2, 5], "s/q.bin"));
  assert.deepEqual(ranges, [["s/q.bin", null]]);
  // A whole file that fails the manifest's check names the file; nothing of it is kept.
  const bad = blockSetup();
  bad.served.honourRanges = false;
  const tampered = bad.files.get("s/r.bin").slice();
  tampered[3] ^= 1; // in the header: no block covers it, the manifest does
  bad.files.set("s/r.bin", tampered);
  await assert.rejects(bad.get([0]), /^WebsemError: websem: s\/r\.bin failed its integrity check \(sha256 [0-9a-f]{64}, 100 bytes/);
  assert.equal(bad.cache.stats().files, 0);
  assert.ok(files.get("s/r.bin"));
});

test("blocks: with a small budget the unasked blocks of a whole file are kept only where they fit", async () => {
  const { cache, get, served } = blockSetup(40);
  served.honourRanges = false;
  await get([4]);
  // Unasked blocks first, while they fit: 0 (16), 1 (16); 2 and 5 would overflow. Then the
  // asked block 4 (16) goes in, and the least recently used (0) out.
  assert.deepEqual([...cache.held.keys()], ["s/r.bin#1", "s/r.bin#4"]);
  assert.equal(cache.stats().bytes, 32);
});

test("a tampered block fails with a websem: error naming the file, the block and the codes shard; not retried, not cached", async () => {
  const { cache, get, want, faults, log } = blockSetup();
  faults.set("s/r.bin", "tamper");
  await assert.rejects(get([1, 2]), (e) => e instanceof WebsemError &&
    /^websem: s\/r\.bin block 2 \(bytes 42-57\) does not match the sha256 in s\/codes\.bin \(got [0-9a-f]{64}, expected [0-9a-f]{64}\); .*rebuild it with `websem build`$/.test(e.message));
  assert.equal(log.length, 1);
  assert.equal(cache.stats().files, 1); // block 1 verified before block 2 failed
  faults.delete("s/r.bin");
  assert.deepEqual(await get([1, 2]), want([1, 2]));
  assert.equal(log.length, 2);
});

test("blocks against a list of 16-byte sha256 prefixes (hashBytes 16, a split model's word rows)", async () => {
  const { files, cache, faults } = blockSetup();
  const prefixes = new Uint8Array(6 * 16);
  for (let k = 0; k < 6; k++) prefixes.set(createHash("sha256").update(files.get("s/r.bin").subarray(...RANGE(k))).digest().subarray(0, 16), 16 * k);
  const spec = (blocks, hashes = prefixes) => ({ blocks, count: 6, range: RANGE, hashes, hashBytes: 16, hashPath: "model/h.sha256", parse: (b) => Array.from(b) });
  assert.deepEqual(await cache.getBlocks("s/r.bin", spec([0, 5])), [0, 5].map((k) => Array.from(files.get("s/r.bin").subarray(...RANGE(k)))));
  // Read with the 32-byte stride, the same list names the wrong digests: refused.
  await assert.rejects(cache.getBlocks("s/r.bin", { ...spec([2]), hashBytes: undefined }), /block 2 .*does not match/);
  faults.set("s/r.bin", "tamper");
  await assert.rejects(cache.getBlocks("s/r.bin", spec([3])), (e) => e instanceof WebsemError &&
    /^websem: s\/r\.bin block 3 \(bytes 58-73\) does not match the sha256 in model\/h\.sha256 \(got [0-9a-f]{32}, expected [0-9a-f]{32}\); .*rebuild it with `websem build`$/.test(e.message));
  faults.delete("s/r.bin");
  // A list one prefix short: the last block has none.
  await assert.rejects(cache.getBlocks("s/r.bin", spec([4], prefixes.subarray(0, 4 * 16))), /block 4 .*expected none\)/);
});

test("a short range answer fails with a websem: error naming the file and the range; not retried", async () => {
  const { get, faults, log, want } = blockSetup();
  faults.set("s/r.bin", "short");
  await assert.rejects(get([3]), /^WebsemError: websem: s\/r\.bin bytes 58-73 \(blocks 3-3\) came back as 15 bytes, not 16, from https:\/\/bundle\.test\/_websem\/s\/r\.bin; the file is truncated/);
  assert.equal(log.length, 1);
  faults.delete("s/r.bin");
  assert.deepEqual(await get([3]), want([3]));
});

test("a range request that fails once is retried once; one that keeps failing fails after one retry", async () => {
  const { get, faults, ranges, want } = blockSetup();
  faults.set("s/r.bin", "reject-once");
  assert.deepEqual(await get([4]), want([4]));
  assert.deepEqual(ranges, [["s/r.bin", "bytes=74-89"], ["s/r.bin", "bytes=74-89"]]);
  faults.set("s/r.bin", "503");
  await assert.rejects(get([5]), (e) => e instanceof WebsemError && /could not fetch .*s\/r\.bin \(HTTP 503\), twice/.test(e.message));
  assert.equal(ranges.length, 4);
  faults.set("s/r.bin", 404);
  await assert.rejects(get([5]), /HTTP 404/);
  assert.equal(ranges.length, 5);
});

test("blocks of a file the manifest does not list are refused without a request", async () => {
  const { cache, log } = blockSetup();
  await assert.rejects(cache.getBlocks("s/zz.bin", { blocks: [0], count: 1, range: RANGE, hashes: new Uint8Array(32), hashPath: "x", parse: (b) => b }),
    /lists no file "s\/zz\.bin"/);
  assert.deepEqual(log, []);
});
