// web/src/partitioned.js over a small partitioned bundle written from the contract
// (partitioned_env.mjs), against references computed in Python (Pyodide): the probe and the
// dense scores by plain float64 loops over the float16/int8 rows (decoded by `struct`), BM25 by
// websem_text's own LexicalIndex, whole queries by websem_text's Ranker.results. Scores must be
// equal bit for bit; a query fetches only the shards it needs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { VerifiedFiles } from "../../web/src/bundle.js";
import { openPartitioned } from "../../web/src/partitioned.js";
import { createSearch, setupRanker } from "../../web/src/search.js";
import { BASE, memoryFetch, partitionedCorpus, sha } from "./partitioned_env.mjs";

const MODES = ["hybrid", "semantic", "lexical"];

async function open(opts = {}, cacheBytes = undefined) {
  const c = await partitionedCorpus(opts);
  const served = memoryFetch(c.files, c.manifest);
  const files = new VerifiedFiles(BASE, c.manifest, served.fetchFn);
  const index = await openPartitioned(files, c.manifest, { cacheBytes });
  return { c, index, served, ...served };
}

function queryVector(dims, seed) {
  return Float32Array.from({ length: dims }, (_, j) => Math.fround(Math.sin(seed * 3.1 + j * 1.7)));
}

/**
 * The dense definition in Python: probe (float64 centroid scores), then every probed row (code
 * "rows") or, with `rerank` (code "binary"), the best max(rerank, limit) probed rows by sign-code
 * score (the query's dot product with the row's signs, summed byte by byte from a table of byte
 * values), rescored exactly.
 */
function pythonDense(c, nlist, nprobe, q, limit, allowed, rerank = null) {
  c.pyodide.globals.set("dense_json", JSON.stringify({
    nlist, nprobe, q: Array.from(q), limit, allowed, dims: c.dims, dtype: c.manifest.index.vector_dtype, rerank,
    assign: Array.from(c.assign), scales: Array.from(c.scales), chunk_doc: c.chunks.map((ch) => ch.doc),
  }));
  c.pyodide.globals.set("rows16", new Uint8Array(c.rows16.buffer));
  c.pyodide.globals.set("rows8", new Uint8Array(c.rows8.buffer));
  c.pyodide.globals.set("cents", new Uint8Array(c.centroids.buffer));
  return JSON.parse(c.pyodide.runPython(`
import json, struct
from array import array
from websem_text.bm25 import aggregate_docs
_j = json.loads(dense_json)
_d = _j["dims"]
_q = [float(x) for x in _j["q"]]
_cent = struct.unpack(f"<{len(cents.to_py()) // 2}e", bytes(cents.to_py()))
_cs = []
for _l in range(_j["nlist"]):
    _s = 0.0
    for _i in range(_d):
        _s += _q[_i] * _cent[_l * _d + _i]
    _cs.append(_s)
_probed = set(sorted(range(_j["nlist"]), key=lambda l: (-_cs[l], l))[:_j["nprobe"]])
if _j["dtype"] == "int8":
    _raw = array("b", bytes(rows8.to_py()))
    _vals = [float(array("f", [_raw[i] * _j["scales"][i // _d]])[0]) for i in range(len(_raw))]
else:
    _vals = struct.unpack(f"<{len(rows16.to_py()) // 2}e", bytes(rows16.to_py()))
_allowed = None if _j["allowed"] is None else frozenset(_j["allowed"])
_cands = [_c for _c, _l in enumerate(_j["assign"]) if _l in _probed]
if _j["rerank"] is not None:
    _w = (_d + 7) // 8
    _qp = _q + [0.0] * (8 * _w - _d)
    _lut = [[0.0] * 256 for _ in range(_w)]
    for _k in range(_w):
        for _v in range(256):
            _s = 0.0
            for _i in range(8):
                _s += _qp[8 * _k + _i] if (_v >> _i) & 1 else -_qp[8 * _k + _i]
            _lut[_k][_v] = _s
    def _code_score(_c):
        _s = 0.0
        for _k in range(_w):
            _byte = sum(1 << _i for _i in range(8) if 8 * _k + _i < _d and _vals[_c * _d + 8 * _k + _i] > 0)
            _s += _lut[_k][_byte]
        return _s
    _cands = [_c for _c in _cands if _allowed is None or _j["chunk_doc"][_c] in _allowed]
    _cands = sorted(_cands, key=lambda _c: (-_code_score(_c), _c))[:max(_j["rerank"], _j["limit"])]
_scores = {}
for _c in _cands:
    _s = 0.0
    for _i in range(_d):
        _s += _q[_i] * _vals[_c * _d + _i]
    _scores[_c] = _s
_hits = aggregate_docs(_scores, _j["chunk_doc"], allowed=_allowed, k=_j["limit"])
json.dumps({"probed": sorted(_probed), "cands": _cands, "docs": [[h.doc, h.score, h.chunk] for h in _hits]})
`));
}

const triples = (r) => Array.from(r.docs, (d, i) => [d, r.scores[i], r.chunks[i]]);

for (const dtype of ["float16", "int8"]) {
  test(`dense: probe and document ranking equal the definition bit for bit (${dtype})`, async () => {
    for (const nprobe of [1, 2, 5]) {
      const { c, index, log } = await open({ nlist: 5, nprobe, dtype, seed: 11 });
      for (const [seed, limit, allowed] of [[1, 3, null], [2, 100, null], [3, 4, [0, 2, 4, 6, 8, 10, 12]], [4, 1, [5]]]) {
        const q = queryVector(c.dims, seed);
        const want = pythonDense(c, 5, nprobe, q, limit, allowed);
        assert.deepEqual(Array.from(index.probe(Float64Array.from(q))).sort(), want.probed, `probe, nprobe ${nprobe}`);
        let mask = null;
        if (allowed) {
          mask = new Uint8Array(index.nDocs);
          for (const d of allowed) mask[d] = 1;
        }
        log.length = 0;
        const got = await index.denseDocs(q, limit, mask);
        assert.deepEqual(triples(got), want.docs, `nprobe ${nprobe}, seed ${seed}`);
        // Only the probed lists' shards were requested (each at most once).
        const lists = log.map((p) => Number(p.match(/^index\/ivf\/(\d+)\.bin$/)?.[1]));
        assert.ok(lists.every((l) => want.probed.includes(l)), `${log}`);
        assert.equal(new Set(lists).size, lists.length);
      }
    }
  });
}

for (const dtype of ["float16", "int8"]) {
  test(`dense, binary codes: candidates by code score, rescored exactly, equal the definition bit for bit (${dtype})`, async () => {
    for (const [nprobe, rerank] of [[2, 1], [5, 3], [5, 40]]) {
      const { c, index, log, ranges } = await open({ nlist: 5, nprobe, dtype, seed: 11, code: "binary", rerank, dims: 13 });
      assert.equal(index.code, "binary");
      for (const [seed, limit, allowed] of [[1, 3, null], [2, 1, null], [3, 4, [0, 2, 4, 6, 8, 10, 12]], [4, 1, [5]]]) {
        const q = queryVector(c.dims, seed);
        const want = pythonDense(c, 5, nprobe, q, limit, allowed, rerank);
        let mask = null;
        if (allowed) {
          mask = new Uint8Array(index.nDocs);
          for (const d of allowed) mask[d] = 1;
        }
        const heldBefore = new Set(index.cache.held.keys());
        log.length = 0;
        ranges.length = 0;
        const got = await index.denseDocs(q, limit, mask);
        assert.deepEqual(triples(got), want.docs, `nprobe ${nprobe}, rerank ${rerank}, seed ${seed}`);
        // Every probed list's codes shard (whole); of the rows shards, exactly the byte ranges of
        // the blocks holding the candidates (not held already), one request per run of blocks.
        const codes = log.filter((p) => p.startsWith("index/code/")).map((p) => Number(p.match(/(\d+)\.bin$/)[1]));
        assert.ok(codes.every((l) => want.probed.includes(l)), `${log}`);
        assert.deepEqual(ranges.filter(([p]) => p.startsWith("index/ivf/")).sort(),
          expectedRanges(c, want.cands, heldBefore).sort(), `nprobe ${nprobe}, rerank ${rerank}, seed ${seed}`);
      }
    }
  });
}

/**
 * The Range requests a query with candidate chunks `cands` must send, from the contract: per
 * list, the blocks (block_rows rows) holding them and not in `held`, consecutive blocks as one
 * range `bytes=a-b` (b inclusive) of records after the 28-byte header and the ids.
 */
function expectedRanges(c, cands, held = new Set()) {
  const { block_rows: B } = c.manifest.index.ivf;
  const rec = c.manifest.index.vector_dtype === "int8" ? 4 + c.dims : 2 * c.dims;
  const need = new Map();
  for (const ch of cands) {
    const l = c.assign[ch];
    const k = Math.floor(c.order[l].indexOf(ch) / B);
    if (held.has(`index/ivf/${l}.bin#${k}`)) continue;
    if (!need.has(l)) need.set(l, new Set());
    need.get(l).add(k);
  }
  const out = [];
  for (const [l, set] of need) {
    const ks = [...set].sort((a, b) => a - b);
    const count = c.order[l].length;
    const at = 28 + 4 * count;
    for (let i = 0; i < ks.length;) {
      let j = i;
      while (j + 1 < ks.length && ks[j + 1] === ks[j] + 1) j++;
      const end = at + Math.min((ks[j] + 1) * B, count) * rec;
      out.push([`index/ivf/${l}.bin`, `bytes=${at + ks[i] * B * rec}-${end - 1}`]);
      i = j + 1;
    }
  }
  return out;
}

test("dense: with nprobe == nlist every chunk is scored (the flat ranking)", async () => {
  const { c, index } = await open({ nlist: 4, nprobe: 4 });
  const q = queryVector(c.dims, 9);
  const got = await index.denseDocs(q, 100, null);
  assert.equal(got.docs.length, index.nDocs);
  assert.deepEqual(triples(got), pythonDense(c, 4, 4, q, 100, null).docs);
});

/** BM25 by websem_text's LexicalIndex over the flat lexical.bin the shards were cut from. */
function pythonLexical(c, terms, allowed, limit) {
  c.pyodide.globals.set("lex_json", JSON.stringify({ terms, allowed, limit, chunk_doc: c.chunks.map((ch) => ch.doc) }));
  c.pyodide.globals.set("lex_bytes", c.lexBytes);
  return JSON.parse(c.pyodide.runPython(`
import json
from websem_text.bm25 import LexicalIndex, aggregate_docs
_j = json.loads(lex_json)
_lx = LexicalIndex.from_bytes(bytes(lex_bytes.to_py()))
_allowed = None if _j["allowed"] is None else frozenset(_j["allowed"])
json.dumps([[h.doc, h.score, h.chunk] for h in aggregate_docs(_lx.scores(_j["terms"]), _j["chunk_doc"], allowed=_allowed, k=_j["limit"])])
`));
}

test("lexical: BM25 over the shards equals LexicalIndex bit for bit, fetching only the terms' shards", async () => {
  const { c, index, log } = await open({ termsPerShard: 4 });
  const table = JSON.parse(new TextDecoder().decode(c.files.get("index/part/table.json")));
  const allTerms = table.lexical.shards.length;
  assert.ok(allTerms >= 10, `${allTerms} shards`);
  for (const [terms, allowed, limit] of [
    [["heat", "transfer"], null, null],
    [["boundari", "layer", "heat", "heat"], null, 3],
    [["shock", "nosuchterm", "zzzz", "a", "wing"], [1, 3, 5, 7, 9], null],
    [["subroutin"], null, null],
    [["nosuchterm"], null, null],
  ]) {
    const analyzed = terms.map((t) => t); // already analyzer terms (stems)
    log.length = 0;
    const got = await index.lexicalDocs(analyzed, allowed ? Uint8Array.from({ length: index.nDocs }, (_, d) => (allowed.includes(d) ? 1 : 0)) : null, limit ?? Infinity);
    assert.deepEqual(triples(got), pythonLexical(c, analyzed, allowed, limit), terms.join(" "));
    // The shards of the query's terms, no other: fetched now or held from an earlier query.
    const want = new Set(terms.map((t) => index.lexShardOf(t)).filter((j) => j >= 0).map((j) => `index/lex/${j}.bin`));
    assert.ok(log.every((p) => want.has(p)), `${log} not within ${[...want]}`);
    assert.ok([...want].every((p) => log.includes(p) || index.cache.held.has(p)), `${[...want]}`);
  }
  // A repeated query fetches nothing new.
  log.length = 0;
  await index.lexicalDocs(["heat", "transfer"], null);
  assert.deepEqual(log, []);
});

test("rows: each fragment of the result page fetched once, rows from the right document and chunk", async () => {
  const { c, index, log } = await open({ docsPerFragment: 3 });
  log.length = 0;
  const hits = [[4, 8, 0.5], [3, 6, 0.4], [0, 1, 0.3], [5, 9, 0.2]];
  const rows = await index.rows(hits);
  assert.deepEqual(rows.map((r) => [r.id, r.title, r.url, r.anchor, r.text, r.score]),
    hits.map(([d, ch, s]) => [c.docs[d].id, c.docs[d].title, c.docs[d].url, c.chunks[ch].anchor, c.chunks[ch].text, s]));
  assert.deepEqual(log.sort(), ["index/frag/0.json", "index/frag/1.json"]);
});

test("a fragment that passes its sha256 but does not hold its documents fails the page, naming the file and the build", async () => {
  const { c, index } = await open({ docsPerFragment: 3 });
  const text = JSON.parse(new TextDecoder().decode(c.files.get("index/frag/1.json")));
  text.docs.pop(); // one document short: the build wrote it wrong, fetching it again would not help
  const bytes = new TextEncoder().encode(JSON.stringify(text));
  c.files.set("index/frag/1.json", bytes);
  c.manifest.files["index/frag/1.json"] = { sha256: sha(bytes), size: bytes.length };
  await assert.rejects(index.rows([[0, index.docmap[0], 0.5], [4, index.docmap[4], 0.4]]),
    /^WebsemError: websem: index\/frag\/1\.json does not hold documents 3 to 5; rebuild the bundle with `websem build`/);
  // Other fragments still give their rows.
  const [row] = await index.rows([[0, index.docmap[0], 0.5]]);
  assert.equal(row.id, c.docs[0].id);
});

test("a whole query (plan, shards, rank, fragments, render) equals Ranker.results, every mode, with filters", async () => {
  const { c, index, log } = await open({ nlist: 4, nprobe: 2 });
  const { bridge } = await import("./pyodide_env.mjs").then((m) => m.bootPython());
  const python = { ranker: (method, args) => bridge.ranker[method](...args) };
  assert.deepEqual(await setupRanker(Promise.resolve(python), null, c.manifest, () => {}, Promise.resolve(index)), { lexical: null, ranker: null });
  let qv = null;
  const run = createSearch({ python, index, lexical: null, embed: async () => qv, search: c.search });
  let compared = 0;
  for (const [i, query] of ["heat transfer", "boundary layer shock", "wing flutter", "nothing"].entries()) {
    qv = queryVector(c.dims, i + 20);
    for (const mode of MODES) {
      for (const filters of [undefined, { section: "guide" }, { tags: ["heat", "code"], section: ["howto", "reference"] }]) {
        log.length = 0;
        const got = await run(query, { k: 4, mode, filters });
        const want = pythonRanker(c, query, qv, mode, 4, filters ?? null);
        assert.equal(got.mode, mode);
        assert.deepEqual(got.hits, want.hits, `${query} / ${mode} / ${JSON.stringify(filters)}`);
        assert.deepEqual(got.facets, want.facets);
        compared += got.hits.length;
        if (mode === "lexical") assert.ok(!log.some((p) => p.startsWith("index/ivf/")), `${log}`);
        if (mode === "semantic") assert.ok(!log.some((p) => p.startsWith("index/lex/")), `${log}`);
      }
    }
  }
  assert.ok(compared > 60, `${compared} hits compared`);
  // The snippet of a match past snippet_chars shows the match, from the fragment's chunk text.
  const far = await run("finally mentioned", { k: 1, mode: "lexical" });
  const [s, e] = far.hits[0].highlights[0];
  assert.equal(far.hits[0].snippet.slice(s, e).toLowerCase(), "finally");
});

/** Ranker.results with the semantic side from pythonDense and its own LexicalIndex. */
function pythonRanker(c, query, qv, mode, k, filters) {
  const nlist = c.manifest.index.ivf.nlist;
  c.pyodide.globals.set("rk_json", JSON.stringify({ chunks: c.chunks, docs: c.docs, search: c.search, query, mode, k, filters }));
  c.pyodide.globals.set("lex_bytes", c.lexBytes);
  const allowed = JSON.parse(c.pyodide.runPython(`
import json
from websem_text.bm25 import Ranker
_rj = json.loads(rk_json)
_r = Ranker(bytes(lex_bytes.to_py()), _rj["chunks"], _rj["docs"], search=_rj["search"])
_a = _r.allowed(_rj["filters"])
json.dumps(None if _a is None else sorted(_a))
`));
  const sem = pythonDense(c, nlist, c.manifest.index.ivf.nprobe, qv, 1000, allowed).docs;
  c.pyodide.globals.set("sem_json", JSON.stringify(sem));
  return JSON.parse(c.pyodide.runPython(`
from websem_text.bm25 import DocHit
_sem = [DocHit(d, s, ch) for d, s, ch in json.loads(sem_json)]
json.dumps(_r.results(_rj["query"], mode=_rj["mode"], semantic=_sem, filters=_rj["filters"], k=_rj["k"], utf16=True))
`));
}

test("a shard that fails its check fails that query with a websem: error naming it; other queries still work", async () => {
  const { c, index } = await open({ nlist: 4, nprobe: 1 });
  const q = queryVector(c.dims, 3);
  const [list] = index.probe(Float64Array.from(q));
  const path = `index/ivf/${list}.bin`;
  const good = c.files.get(path);
  const bad = good.slice();
  bad[bad.length - 1] ^= 1;
  c.files.set(path, bad);
  await assert.rejects(index.denseDocs(q, 3), new RegExp(`^WebsemError: websem: ${path.replace(/\./g, "\\.")} failed its integrity check`));
  // Another list still works; the repaired file loads on the next query.
  const other = [0, 1, 2, 3].find((l) => l !== list);
  assert.ok((await index.ivf(other)).count >= 0);
  c.files.set(path, good);
  assert.ok((await index.denseDocs(q, 3)).docs.length > 0);
});

test("the shard cache bounds what a partitioned index holds", async () => {
  const { c, index } = await open({ nlist: 5, nprobe: 3 }, 600);
  for (let i = 0; i < 20; i++) {
    await index.denseDocs(queryVector(c.dims, 100 + i), 5);
    await index.lexicalDocs(["heat", "wing", "shock"].slice(i % 3), null);
    await index.rows([[i % index.nDocs, index.docmap[i % index.nDocs], 1]]);
    assert.ok(index.cache.stats().bytes <= 600, JSON.stringify(index.cache.stats()));
  }
  assert.ok(index.cache.stats().misses > index.cache.stats().files);
});

test("table.json that disagrees with the manifest is refused with a websem: error", async () => {
  const c = await partitionedCorpus({});
  const manifest = structuredClone(c.manifest);
  manifest.index.chunks += 1;
  const { fetchFn } = memoryFetch(c.files, manifest);
  await assert.rejects(openPartitioned(new VerifiedFiles(BASE, manifest, fetchFn), manifest),
    /^WebsemError: websem: index\/part\/table\.json says chunks 25 but manifest\.index says 26; rebuild the bundle/);
});

test("binary codes over a server that ignores Range: whole rows files, checked, cut into blocks, same ranking", async () => {
  const { c, index, served, ranges } = await open({ nlist: 5, nprobe: 3, seed: 11, code: "binary", rerank: 6, dims: 13 });
  served.honourRanges = false;
  for (const [seed, limit] of [[1, 3], [2, 5], [3, 2]]) {
    const q = queryVector(c.dims, seed);
    ranges.length = 0;
    const got = await index.denseDocs(q, limit, null);
    assert.deepEqual(triples(got), pythonDense(c, 5, 3, q, limit, null, 6).docs, `seed ${seed}`);
    const rows = ranges.filter(([p]) => p.startsWith("index/ivf/"));
    // After the first 200 answer no Range is asked, and each rows file comes once a query (the
    // first query's runs were all asked before the first answer came).
    if (seed > 1) {
      assert.ok(rows.every(([, r]) => r === null), `${rows}`);
      assert.equal(new Set(rows.map(([p]) => p)).size, rows.length, `${rows}`);
    }
  }
  assert.equal(index.cache.rangesIgnored, true);
  // The whole files' blocks were kept: a query whose candidates they hold fetches no rows.
  ranges.length = 0;
  await index.denseDocs(queryVector(c.dims, 1), 3, null);
  assert.deepEqual(ranges.filter(([p]) => p.startsWith("index/ivf/")), []);
});

test("a whole rows file the server sends instead of a range must match the manifest and the codes shard", async () => {
  const { c, index, served } = await open({ nlist: 4, nprobe: 1, seed: 11, code: "binary", rerank: 3, dims: 13 });
  served.honourRanges = false;
  const q = queryVector(c.dims, 2);
  const [list] = index.probe(Float64Array.from(q));
  const path = `index/ivf/${list}.bin`;
  const good = c.files.get(path);
  const bad = good.slice();
  bad[bad.length - 1] ^= 1;
  c.files.set(path, bad);
  await assert.rejects(index.denseDocs(q, 3), new RegExp(`^WebsemError: websem: ${path.replace(/\./g, "\\.")} failed its integrity check`));
  c.files.set(path, good);
  assert.deepEqual(triples(await index.denseDocs(q, 3)), pythonDense(c, 4, 1, q, 3, null, 3).docs);
});

for (const [fault, pattern] of [
  ["tamper", (path, list) => new RegExp(`^WebsemError: websem: ${path.replace(/\./g, "\\.")} block \\d+ \\(bytes \\d+-\\d+\\) ` +
    `does not match the sha256 in index/code/${list}\\.bin \\(got [0-9a-f]{64}, expected [0-9a-f]{64}\\); .*rebuild it with \`websem build\``)],
  ["short", (path) => new RegExp(`^WebsemError: websem: ${path.replace(/\./g, "\\.")} bytes \\d+-\\d+ \\(blocks \\d+-\\d+\\) came back as \\d+ bytes, not \\d+`)],
]) {
  test(`a ${fault === "tamper" ? "tampered" : "short"} row block fails that query, naming the file and the ${fault === "tamper" ? "block" : "range"}, without a retry; the index stays usable`, async () => {
    const { c, index, faults, log } = await open({ nlist: 4, nprobe: 1, seed: 11, code: "binary", rerank: 3, dims: 13 }, 0);
    const q = queryVector(c.dims, 3);
    const [list] = index.probe(Float64Array.from(q));
    const path = `index/ivf/${list}.bin`;
    faults.set(path, fault);
    log.length = 0;
    await assert.rejects(index.denseDocs(q, 3), pattern(path, list));
    const runs = expectedRanges(c, pythonDense(c, 4, 1, q, 3, null, 3).cands).length;
    assert.equal(log.filter((p) => p === path).length, runs, `${log}`); // no retry
    // Another list still works; the repaired file serves the same query.
    const other = [0, 1, 2, 3].map((s) => queryVector(c.dims, 40 + s)).find((v) => index.probe(Float64Array.from(v))[0] !== list);
    assert.ok((await index.denseDocs(other, 3)).docs.length > 0);
    faults.delete(path);
    assert.deepEqual(triples(await index.denseDocs(q, 3)), pythonDense(c, 4, 1, q, 3, null, 3).docs);
  });
}

test("a transient failure of a range request is retried once", async () => {
  const { c, index, faults, log } = await open({ nlist: 4, nprobe: 1, seed: 11, code: "binary", rerank: 2, dims: 13 });
  const q = queryVector(c.dims, 5);
  const [list] = index.probe(Float64Array.from(q));
  const path = `index/ivf/${list}.bin`;
  const want = pythonDense(c, 4, 1, q, 2, null, 2);
  const runs = expectedRanges(c, want.cands).length;
  faults.set(path, "reject-once");
  assert.deepEqual(triples(await index.denseDocs(q, 2)), want.docs);
  assert.equal(log.filter((p) => p === path).length, runs + 1); // one request a run, one retry
  faults.set(`index/ivf/${(list + 1) % 4}.bin`, "503");
  const q2 = [0, 1, 2, 3, 4, 5].map((s) => queryVector(c.dims, 60 + s)).find((v) => index.probe(Float64Array.from(v))[0] === (list + 1) % 4);
  await assert.rejects(index.denseDocs(q2, 2), /could not fetch .*HTTP 503\), twice/);
});

test("a v1 partitioned bundle, or one without ivf.block_rows, is refused with the rebuild fix", async () => {
  const c = await partitionedCorpus({});
  const table = JSON.parse(new TextDecoder().decode(c.files.get("index/part/table.json")));
  table.format_version = 1;
  const files = new Map(c.files);
  files.set("index/part/table.json", new TextEncoder().encode(JSON.stringify(table)));
  const { fileTable } = await import("./partitioned_env.mjs");
  const v1 = { ...c.manifest, files: fileTable(files) };
  await assert.rejects(openPartitioned(new VerifiedFiles(BASE, v1, memoryFetch(files, v1).fetchFn), v1),
    /^WebsemError: websem: index\/part\/table\.json is not websem-partitioned version 2 \(format "websem-partitioned", version 1\); rebuild the bundle with `websem build`/);
  for (const value of [undefined, 0, 1.5]) {
    const m = structuredClone(c.manifest);
    m.index.ivf.block_rows = value;
    await assert.rejects(openPartitioned(new VerifiedFiles(BASE, m, memoryFetch(c.files, m).fetchFn), m),
      /^WebsemError: websem: manifest\.index\.ivf\.block_rows is .* but must be an integer >= 1 .*rebuild the bundle/);
  }
});

test("a whole rows file (no Range) whose chunk order is not its codes shard's is refused, naming both", async () => {
  const c = await partitionedCorpus({ nlist: 4, nprobe: 4, seed: 11, code: "binary", rerank: 30, dims: 13 });
  const l = c.order.findIndex((m) => m.length >= 2);
  const path = `index/ivf/${l}.bin`;
  const swapped = c.files.get(path).slice();
  const dv = new DataView(swapped.buffer);
  const [a, b] = [dv.getUint32(28, true), dv.getUint32(32, true)];
  dv.setUint32(28, b, true);
  dv.setUint32(32, a, true);
  const files = new Map(c.files).set(path, swapped);
  const { fileTable } = await import("./partitioned_env.mjs");
  const manifest = { ...c.manifest, files: fileTable(files) }; // the manifest agrees: only the order is off
  const served = memoryFetch(files, manifest);
  served.honourRanges = false;
  const index = await openPartitioned(new VerifiedFiles(BASE, manifest, served.fetchFn), manifest);
  await assert.rejects(index.denseDocs(queryVector(c.dims, 1), 10),
    new RegExp(`^WebsemError: websem: index/ivf/${l}\\.bin lists its chunks in another order than index/code/${l}\\.bin; rebuild`));
});
