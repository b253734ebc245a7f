"""A partitioned bundle in Chromium: the page fetches only the shards a query needs (of the rows
shards, only the row blocks holding its rerank candidates, as HTTP byte ranges that `websem serve`
answers 206), ranks exactly like `websem query --json` on the same bundle (ids, scores, snippets,
highlights, facets, in every mode, with filters), refuses a missing, truncated or tampered shard or
row block for that query only, retries a transient failure once, and keeps its shard cache within
`cacheBytes`.

The bundles are the session's `cranfield_partitioned` (the Cranfield bundle with 16 IVF lists, 4
probed, binary codes reranking 200 candidates) and `faceted_partitioned` (300 documents with
section and tags, 8 lists, 2 probed).
Shard faults are injected with Playwright routes on the browser context, which also see the
requests of the engine's Web Worker (and their Range headers); a route that answers a rows shard
with the whole file (200) stands for a host that ignores Range."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

N_QUERIES = 12
SEARCH_FULL_JS = """async ([xs, opts]) => {
    const out = [];
    for (const x of xs) out.push(await window.engine.searchFull(x, opts));
    return out;
}"""
# One query in the page: its result, or the error message it rejected with.
TRY_JS = """async ([q, opts]) => {
    try { const r = await window.engine.searchFull(q, opts); return {ok: true, hits: r.hits.length}; }
    catch (e) { return {ok: false, message: String(e.message)}; }
}"""
SHARD = re.compile(r"/index/(ivf|code|lex|frag)/(\d+)\.(?:bin|json)$")
INDEX_URL = re.compile(r".*/index/.*")
FLAT_INDEX = ("index/vectors.bin", "index/scales.bin", "index/chunks.json", "index/docs.json", "index/lexical.bin")


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def queries(shared_data: Path, bt) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:N_QUERIES]] + list(bt.LATE_QUERIES)


@pytest.fixture(scope="module")
def part_url(cranfield_partitioned: Path, serve) -> str:
    return serve(cranfield_partitioned)


@pytest.fixture(scope="module")
def part_page(browser_context, part_url: str, bt):
    page, log = bt.open_search_page(browser_context, part_url)
    yield page, log
    page.close()


class Shards:
    """A route on the browser context over the bundle's index files: logs every request (`requests`:
    paths; `ranges`: (path, Range header or None)) and every rows shard answer (`rows`: (path,
    Range, status, body bytes)), and can break a shard: `pending[kind] = (fault, exclude)` breaks
    the next requested shard of that kind ("ivf", "code", "lex", "frag") not in `exclude`, from then
    on, until removed from `broken`; "abort-once" fails its first request only (a connection
    reset). A truncated or tampered answer keeps the server's status and headers (a 206 range one
    byte short, or with its last byte flipped). `whole_rows = True` answers rows shards with the
    whole file (200), as a host that ignores Range."""

    def __init__(self, context) -> None:
        self.context = context
        self.requests: list[str] = []
        self.ranges: list[tuple[str, str | None]] = []
        self.rows: list[tuple[str, str | None, int, int]] = []
        self.broken: dict[str, str] = {}  # bundle path -> fault
        self.pending: dict[str, tuple[str, set[str]]] = {}
        self.aborted: list[tuple[str, str | None]] = []
        self.whole_rows = False
        context.route(INDEX_URL, self._handle)

    def close(self) -> None:
        self.context.unroute(INDEX_URL, self._handle)

    def _handle(self, route) -> None:
        url = route.request.url
        path = url.split("/", 3)[3]
        asked = route.request.headers.get("range")
        self.requests.append(path)
        self.ranges.append((path, asked))
        m = SHARD.search(url)
        kind = m.group(1) if m else None
        fault = self.broken.get(path)
        if fault is None and kind in self.pending and path not in self.pending[kind][1]:
            fault = self.broken[path] = self.pending.pop(kind)[0]
        if fault == "abort-once":
            del self.broken[path]
            self.aborted.append((path, asked))
            return route.abort("connectionreset")
        if fault == "missing":
            return route.fulfill(status=404, body="not found")
        if kind != "ivf" and fault is None:
            return route.continue_()
        headers = {k: v for k, v in route.request.headers.items() if not (self.whole_rows and k == "range")}
        response = route.fetch(headers=headers)
        body = response.body()
        if fault in ("truncated", "tampered"):
            body = body[:-1] if fault == "truncated" else body[:-1] + bytes([body[-1] ^ 1])
        if kind == "ivf":
            self.rows.append((path, asked, response.status, len(body)))
        # The body as decoded by the request client: its own length, no content coding.
        keep = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
        return route.fulfill(status=response.status, headers=keep, body=body)

    def shard_requests(self, kind: str | None = None) -> list[str]:
        return [p for p in self.requests if (m := SHARD.search("/" + p)) and kind in (None, m.group(1))]


def _fresh_page(context, url: str, bt, **load_options):
    """The bundle's page with a fresh engine (so its shard cache starts empty)."""
    if not load_options:
        return bt.open_search_page(context, url)[0]
    page = context.new_page()
    page.goto(url + "index.html")
    page.evaluate("""async (opts) => {
        const m = await import('./websem.js');
        window.engine = await m.load(new URL('./', location.href), opts);
        await window.engine.ready;
    }""", load_options)
    return page


def test_top10_equals_websem_query(part_page, cranfield_partitioned: Path, queries: list[str], bt,
                                   search_mode: str) -> None:
    page, log = part_page
    info = page.evaluate("() => window.engine.info.index")
    ivf = json.loads((cranfield_partitioned / "manifest.json").read_text())["index"]["ivf"]
    assert ivf["code"] == "binary" and ivf["rerank"] > 0, ivf  # the default code of a partitioned build
    want_ivf = {"nlist": 16, "nprobe": 4, "code": ivf["code"], "rerank": ivf["rerank"]}
    assert info["layout"] == "partitioned" and info["ivf"] == want_ivf, info
    got = page.evaluate(SEARCH_FULL_JS, [queries, {"k": 10, "mode": search_mode}])
    want = bt.websem_query_json(cranfield_partitioned, queries, search_mode)
    worst = bt.assert_same_results(cranfield_partitioned, search_mode, queries, got, want, engine="chromium")
    print(f"\npartitioned {search_mode}: top-10 of {len(queries)} queries identical; max score diff {worst:.3g}")
    assert not log.errors(), log.errors()
    assert not log.foreign_requests(), log.foreign_requests()


FILTER_CASES = [
    {},
    {"section": ["heat"]},
    {"tags": ["theory", "supersonic"]},
    {"section": ["aerodynamics", "structures"], "tags": ["wind-tunnel"]},
]


def test_filters_and_facets_equal_websem_query(browser_context, faceted_partitioned: Path, serve, bt,
                                               queries: list[str], search_mode: str) -> None:
    manifest = _manifest(faceted_partitioned)
    assert manifest["index"]["layout"] == "partitioned"
    assert manifest["search"]["facets"], "the faceted bundle must have facet fields"
    page, log = bt.open_search_page(browser_context, serve(faceted_partitioned))
    try:
        qs = queries[:6]
        for filters in FILTER_CASES:
            got = page.evaluate(SEARCH_FULL_JS, [qs, {"k": 10, "mode": search_mode, "filters": filters}])
            want = bt.websem_query_json(faceted_partitioned, qs, search_mode, filters=filters)
            bt.assert_same_results(faceted_partitioned, search_mode, qs, got, want,
                                   engine=f"chromium, filters {filters}")
            assert any(r["facets"] and any(r["facets"].values()) for r in got), filters
    finally:
        page.close()
    assert not log.errors(), log.errors()


def test_queries_fetch_only_the_shards_they_need(browser_context, part_url: str, cranfield_partitioned: Path,
                                                 queries: list[str], bt) -> None:
    index = _manifest(cranfield_partitioned)["index"]
    shards = Shards(browser_context)
    try:
        page = _fresh_page(browser_context, part_url, bt)
        loaded = set(shards.requests)
        # load() fetched the always-loaded files and no shard, and nothing of a flat index.
        assert set(index["files"].values()) <= loaded, loaded
        assert not shards.shard_requests(), shards.requests
        assert not loaded & set(FLAT_INDEX)
        q = queries[0]

        def run(mode: str) -> list[str]:
            before = len(shards.requests)
            res = page.evaluate(TRY_JS, [q, {"k": 10, "mode": mode}])
            assert res["ok"] and res["hits"] == 10, res
            return shards.requests[before:]

        semantic = run("semantic")
        assert index["ivf"]["code"] == "binary"
        codes = [p for p in semantic if p.startswith("index/code/")]
        assert len(codes) == len(set(codes)) == index["ivf"]["nprobe"] < index["ivf"]["nlist"], semantic
        # rows shards: only of probed lists that hold rerank candidates
        ivf = {p for p in semantic if p.startswith("index/ivf/")}
        assert 0 < len(ivf) <= index["ivf"]["nprobe"], semantic
        assert {p.replace("index/ivf/", "index/code/") for p in ivf} <= set(codes), semantic
        # ... and of those only the row blocks holding candidates: byte ranges, answered 206, fewer
        # bytes than the whole rows files the query touched, no byte twice.
        files = _manifest(cranfield_partitioned)["files"]
        assert shards.rows and all(asked and asked.startswith("bytes=") and status == 206
                                   for _, asked, status, _ in shards.rows), shards.rows
        got = sum(n for *_, n in shards.rows)
        whole = sum(files[p]["size"] for p in ivf)
        assert got < whole, (got, whole, shards.rows)
        spans = sorted((p, *map(int, asked[6:].split("-"))) for p, asked, _, _ in shards.rows)
        assert all(a[0] != b[0] or a[2] < b[1] for a, b in zip(spans, spans[1:], strict=False)), spans
        assert sum(b - a + 1 for _, a, b in spans) == got
        cold = page.evaluate("() => window.engine.debug.shardStats()")
        assert cold["range_requests"] == len(shards.rows), (cold, shards.rows)
        print(f"\ncold semantic query: {len(shards.rows)} range requests, {got} bytes of rows "
              f"(whole files touched: {whole} bytes)")
        assert not [p for p in semantic if p.startswith("index/lex/")], semantic
        frags = [p for p in semantic if p.startswith("index/frag/")]
        assert 0 < len(frags) <= 10 and len(set(frags)) == len(frags), semantic
        lexical = run("lexical")
        assert not [p for p in lexical if p.startswith(("index/ivf/", "index/code/"))], lexical
        assert 0 < len([p for p in lexical if p.startswith("index/lex/")]) <= len(q.split()), lexical
        hybrid = run("hybrid")  # both sides' shards are cached now: at most new fragments
        assert all(p.startswith("index/frag/") for p in hybrid), hybrid
        stats = page.evaluate("() => window.engine.debug.shardStats()")
        for mode in ("hybrid", "semantic", "lexical"):
            assert run(mode) == [], f"a repeated {mode} query fetched again"
        again = page.evaluate("() => window.engine.debug.shardStats()")
        assert again["misses"] == stats["misses"] and again["fetched_bytes"] == stats["fetched_bytes"], (stats, again)
        memory = page.evaluate("() => window.engine.memory()")
        assert memory["shard_cache_bytes"] == again["bytes"] > 0, (memory, again)
        assert not [p for p in shards.requests if p in FLAT_INDEX]
        page.close()
    finally:
        shards.close()


@pytest.mark.parametrize("fault", ["missing", "truncated", "tampered"])
def test_a_bad_shard_fails_that_query_only(browser_context, part_url: str, queries: list[str], bt,
                                           fault: str) -> None:
    """Each kind of shard in turn: the query that needs it fails with a `websem:` error naming the
    file, without a retry; another query (other shards) works; once the file is right, the first
    query works again (a failure is not cached). The engine caches no shard here (cacheBytes 0),
    so every query fetches every shard it needs."""
    shards = Shards(browser_context)
    try:
        page = _fresh_page(browser_context, part_url, bt, cacheBytes=0)
        steps = [("ivf", "semantic", queries[0], "lexical", queries[1]),
                 ("code", "semantic", queries[0], "lexical", queries[1]),
                 ("lex", "lexical", queries[1], "semantic", queries[0]),
                 ("frag", "semantic", queries[2], "semantic", queries[3])]
        for kind, mode, q, other_mode, other_q in steps:
            # What the other query needs, healthy: the shard to break is none of these.
            before = len(shards.requests)
            assert page.evaluate(TRY_JS, [other_q, {"k": 10, "mode": other_mode}])["ok"]
            shards.pending[kind] = (fault, set(shards.requests[before:]))
            before = len(shards.requests)
            res = page.evaluate(TRY_JS, [q, {"k": 10, "mode": mode}])
            (path,) = shards.broken
            assert not res["ok"], f"{kind} shard {path} {fault}, yet the query succeeded"
            assert res["message"].startswith("websem:") and path in res["message"], (path, res["message"])
            if fault == "missing":
                assert "HTTP 404" in res["message"], res["message"]
            elif kind != "ivf":
                assert "failed its integrity check" in res["message"], res["message"]
            elif fault == "truncated":  # a 206 range one byte short
                short = r" bytes \d+-\d+ \(blocks \d+-\d+\) came back as \d+ bytes"
                assert re.search(short, res["message"]), res["message"]
            else:  # a 206 range with a flipped byte: its last block fails the codes shard's sha256
                code = path.replace("index/ivf/", "index/code/")
                assert re.search(rf"{re.escape(path)} block \d+ \(bytes \d+-\d+\) does not match the sha256 in "
                                 rf"{re.escape(code)}", res["message"]), res["message"]
            asked = [r for r in shards.ranges[before:] if r[0] == path]
            assert asked and len(set(asked)) == len(asked), f"{path} was retried after a {fault} answer: {asked}"
            ok = page.evaluate(TRY_JS, [other_q, {"k": 10, "mode": other_mode}])
            assert ok["ok"] and ok["hits"] == 10, (kind, ok)
            del shards.broken[path]
            healed = page.evaluate(TRY_JS, [q, {"k": 10, "mode": mode}])
            assert healed["ok"] and healed["hits"] == 10, (kind, healed)
        assert page.evaluate("() => window.engine.debug.shardStats()")["bytes"] == 0
        page.close()
    finally:
        shards.close()


def test_a_transient_failure_is_retried_once(browser_context, part_url: str, cranfield_partitioned: Path,
                                             queries: list[str], bt) -> None:
    shards = Shards(browser_context)
    try:
        page = _fresh_page(browser_context, part_url, bt)
        for kind in ("ivf", "code", "lex", "frag"):
            shards.pending[kind] = ("abort-once", set())
        got = page.evaluate(SEARCH_FULL_JS, [queries[:1], {"k": 10, "mode": "hybrid"}])
        assert len(shards.aborted) == 4, shards.aborted
        for request in shards.aborted:  # the same request (path and range) once more
            assert shards.ranges.count(request) == 2, request
        want = bt.websem_query_json(cranfield_partitioned, queries[:1], "hybrid")
        bt.assert_same_results(cranfield_partitioned, "hybrid", queries[:1], got, want, engine="chromium, retried")
        page.close()
    finally:
        shards.close()


def test_the_shard_cache_stays_within_cache_bytes(browser_context, part_url: str, queries: list[str], bt) -> None:
    budget = 400_000
    page = _fresh_page(browser_context, part_url, bt, cacheBytes=budget)
    try:
        qs = queries + [f"{q} flow" for q in queries]
        for i, q in enumerate(qs):
            res = page.evaluate(TRY_JS, [q, {"k": 10, "mode": ("hybrid", "semantic", "lexical")[i % 3]}])
            assert res["ok"], res
            stats = page.evaluate("() => window.engine.debug.shardStats()")
            assert stats["bytes"] <= budget, (q, stats)
        assert stats["fetched_bytes"] > budget, stats  # the budget really bound something
        assert page.evaluate("() => window.engine.memory()")["shard_cache_bytes"] <= budget
        bad = page.evaluate("""async () => {
            const m = await import('./websem.js');
            try { await m.load(new URL('./', location.href), {cacheBytes: -1}); return null; }
            catch (e) { return String(e.message); }
        }""")
        assert bad and bad.startswith("websem: cacheBytes must be a non-negative integer"), bad
    finally:
        page.close()


def test_a_host_that_ignores_range_gets_whole_rows_files(browser_context, part_url: str,
                                                         cranfield_partitioned: Path, queries: list[str],
                                                         bt) -> None:
    """A host that answers a Range request with the whole file (200): the page checks the whole
    rows file against the manifest, cuts its blocks, ranks as `websem query`, and asks no more
    ranges after that first answer."""
    shards = Shards(browser_context)
    shards.whole_rows = True
    try:
        page = _fresh_page(browser_context, part_url, bt)
        qs = queries[:4]
        got = page.evaluate(SEARCH_FULL_JS, [qs[:1], {"k": 10, "mode": "semantic"}])
        first = len(shards.rows)
        got += page.evaluate(SEARCH_FULL_JS, [qs[1:], {"k": 10, "mode": "semantic"}])
        want = bt.websem_query_json(cranfield_partitioned, qs, "semantic")
        bt.assert_same_results(cranfield_partitioned, "semantic", qs, got, want, engine="chromium, no ranges")
        size = {p: e["size"] for p, e in _manifest(cranfield_partitioned)["files"].items()}
        assert shards.rows and all(status == 200 and n == size[p] for p, _, status, n in shards.rows), shards.rows
        # The first query asked for ranges (and got whole files); later ones ask for whole files.
        assert all(asked and asked.startswith("bytes=") for _, asked, *_ in shards.rows[:first]), shards.rows
        assert all(asked is None for _, asked, *_ in shards.rows[first:]), shards.rows
        page.close()
    finally:
        shards.close()


def test_a_tampered_row_block_on_disk_fails_that_query_only(browser_context, cranfield_partitioned: Path,
                                                            serve, queries: list[str], bt, tmp_path: Path) -> None:
    """A bundle whose rows file has one block changed on disk (manifest untouched): the query whose
    candidates sit in that block fails with a `websem:` error naming the file, the block and the
    codes shard; queries that read other blocks, and lexical queries, still work."""
    manifest = _manifest(cranfield_partitioned)
    ivf = manifest["index"]["ivf"]
    shards = Shards(browser_context)
    try:
        # Which blocks each query reads (no shard cache: every query reads all its blocks).
        page = _fresh_page(browser_context, serve(cranfield_partitioned), bt, cacheBytes=0)
        reads = {}
        for q in queries[:6]:
            before = len(shards.rows)
            assert page.evaluate(TRY_JS, [q, {"k": 10, "mode": "semantic"}])["ok"]
            reads[q] = [(p, *map(int, asked[6:].split("-"))) for p, asked, _, _ in shards.rows[before:]]
        page.close()
        victim = queries[0]
        path, start, _ = reads[victim][0]
        safe = next(q for q in queries[1:6] if not any(p == path and a <= start <= b for p, a, b in reads[q]))
        bad = bt.linked_copy(cranfield_partitioned, tmp_path / "bundle")
        rows = bt.make_real(bad / path)
        data = bytearray(rows.read_bytes())
        data[start] ^= 1  # the first byte of the victim's first range: the start of a block
        rows.write_bytes(bytes(data))
        count, dims, _, dtype, block_rows = struct.unpack_from("<5I", data, 8)
        assert block_rows == ivf["block_rows"]
        record = 4 + dims if dtype == 1 else 2 * dims
        k = (start - 28 - 4 * count) // (block_rows * record)
        page = _fresh_page(browser_context, serve(bad), bt)
        res = page.evaluate(TRY_JS, [victim, {"k": 10, "mode": "semantic"}])
        code = path.replace("index/ivf/", "index/code/")
        assert not res["ok"] and res["message"].startswith(f"websem: {path} block {k} (bytes {start}-"), res
        assert f"does not match the sha256 in {code}" in res["message"], res
        for q, mode in ((safe, "semantic"), (victim, "lexical"), (safe, "hybrid")):
            ok = page.evaluate(TRY_JS, [q, {"k": 10, "mode": mode}])
            assert ok["ok"] and ok["hits"] == 10, (q, mode, ok)
        page.close()
    finally:
        shards.close()
