"""A partitioned bundle in Chromium: the page fetches only the shards a query needs, ranks exactly
like `websem query --json` on the same bundle (ids, scores, snippets, highlights, facets, in every
mode, with filters), refuses a missing, truncated or tampered shard for that query only, retries a
transient failure once, and keeps its shard cache within `cacheBytes`.

The bundles are the session's `cranfield_partitioned` (the Cranfield bundle with 16 IVF lists, 4
probed, binary codes reranking 200 candidates) and `faceted_partitioned` (300 documents with
section and tags, 8 lists, 2 probed).
Shard faults are injected with Playwright routes on the browser context, which also see the
requests of the engine's Web Worker."""

from __future__ import annotations

import json
import re
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
    """A route on the browser context over the bundle's index files: logs every request and can
    break a shard: `pending[kind] = (fault, exclude)` breaks the next requested shard of that kind
    ("ivf", "code", "lex", "frag") not in `exclude`, from then on, until removed from `broken`;
    "abort-once" fails its first request only (a connection reset)."""

    def __init__(self, context) -> None:
        self.context = context
        self.requests: list[str] = []
        self.broken: dict[str, str] = {}  # bundle path -> fault
        self.pending: dict[str, tuple[str, set[str]]] = {}
        self.aborted: list[str] = []
        context.route(INDEX_URL, self._handle)

    def close(self) -> None:
        self.context.unroute(INDEX_URL, self._handle)

    def _handle(self, route) -> None:
        url = route.request.url
        path = url.split("/", 3)[3]
        self.requests.append(path)
        m = SHARD.search(url)
        kind = m.group(1) if m else None
        fault = self.broken.get(path)
        if fault is None and kind in self.pending and path not in self.pending[kind][1]:
            fault = self.broken[path] = self.pending.pop(kind)[0]
        if fault == "abort-once":
            del self.broken[path]
            self.aborted.append(path)
            return route.abort("connectionreset")
        if fault == "missing":
            return route.fulfill(status=404, body="not found")
        if fault in ("truncated", "tampered"):
            body = route.fetch().body()
            body = body[:-1] if fault == "truncated" else body[:-1] + bytes([body[-1] ^ 1])
            return route.fulfill(status=200, body=body, headers={"content-type": "application/octet-stream"})
        return route.continue_()

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
        ivf = [p for p in semantic if p.startswith("index/ivf/")]
        assert 0 < len(ivf) <= index["ivf"]["nprobe"], semantic
        assert {p.replace("index/ivf/", "index/code/") for p in ivf} <= set(codes), semantic
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
            else:
                assert "failed its integrity check" in res["message"], res["message"]
            assert shards.requests[before:].count(path) == 1, f"{path} was retried after a {fault} answer"
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
        for path in shards.aborted:
            assert shards.requests.count(path) == 2, path
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
