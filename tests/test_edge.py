"""Edge API: the fetch handler (web/src/handler.js) behind the Node adapter (web/src/node.js),
started for real on 127.0.0.1 against the real Cranfield bundle, checked against the CPU
reference `websem query` and fed bad requests."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from websem.web.api_server import ApiServer, start_api_server

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js 20 is not installed")

N_QUERIES = 30


@pytest.fixture(scope="module")
def api(cranfield_bundle: Path):
    with start_api_server(cranfield_bundle) as server:
        yield server


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:N_QUERIES]]


def _search(api: ApiServer, q: str, **params: object) -> tuple[int, dict]:
    return api.get("search?" + urllib.parse.urlencode({"q": q, **params}))


def test_healthz_reports_the_loaded_bundle(api: ApiServer, cranfield_bundle: Path) -> None:
    status, body = api.get("healthz")
    manifest = json.loads((cranfield_bundle / "manifest.json").read_text())
    assert status == 200
    assert body["status"] == "ok" and body["ready"] is True
    assert body["starts"] == 1
    assert body["info"]["index"]["docs"] == len(
        json.loads((cranfield_bundle / "index" / "docs.json").read_text())
    )
    assert body["info"]["model"]["sha256"] == manifest["model"]["sha256"]


def test_results_equal_websem_query(
    api: ApiServer, cranfield_bundle: Path, cranfield_queries: list[str]
) -> None:
    from websem.web.query import search

    expected = search(cranfield_bundle, cranfield_queries, k=10)
    worst = 0.0
    for q, want in zip(cranfield_queries, expected, strict=True):
        status, body = _search(api, q, k=10)
        assert status == 200, body
        got = body["hits"]
        assert body["query"] == q and body["k"] == 10
        assert [h["id"] for h in got] == [h["id"] for h in want], q
        for g, w in zip(got, want, strict=True):
            worst = max(worst, abs(g["score"] - w["score"]))
            assert (g["title"], g["url"], g["snippet"]) == (w["title"], w["url"], w["snippet"])
    print(f"edge vs websem query: {len(cranfield_queries)} queries, max |score diff| {worst:.2e}")
    assert worst < 1e-4


def test_k_and_mode_are_honoured(api: ApiServer, cranfield_queries: list[str]) -> None:
    q = cranfield_queries[0]
    _, top10 = _search(api, q)
    status, top3 = _search(api, q, k=3)
    assert status == 200 and len(top10["hits"]) == 10
    assert [h["id"] for h in top3["hits"]] == [h["id"] for h in top10["hits"][:3]]
    status, semantic = _search(api, q, k=3, mode="semantic")
    assert status == 200 and semantic["hits"] == top3["hits"]
    status, big = _search(api, q, k=100)
    assert status == 200 and len(big["hits"]) == 100


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("search", "missing_query"),
        ("search?q=", "empty_query"),
        ("search?q=%20%20%09", "empty_query"),
        ("search?q=" + "a" * 100_000, "query_too_long"),
        ("search?q=" + urllib.parse.quote("é" * 50_000), "query_too_long"),
        ("search?q=wing&k=-1", "bad_k"),
        ("search?q=wing&k=1000000000", "bad_k"),
        ("search?q=wing&k=0", "bad_k"),
        ("search?q=wing&k=1e3", "bad_k"),
        ("search?q=wing&k=2.5", "bad_k"),
        ("search?q=wing&k=ten", "bad_k"),
        ("search?q=wing&mode=fuzzy", "bad_mode"),
        ("search?q=wing&q=flow", "bad_query"),
        ("nope", "not_found"),
    ],
)
def test_bad_requests_get_json_4xx(api: ApiServer, query: str, code: str) -> None:
    status, body = api.get(query)
    assert 400 <= status < 500, (status, body)
    assert body["error"]["code"] == code
    assert body["error"]["message"].startswith("websem:")


def test_wrong_method_and_oversized_url_are_json_and_server_survives(api: ApiServer) -> None:
    import urllib.request

    req = urllib.request.Request(api.url + "search?q=wing", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=30)
        raise AssertionError("POST must be refused")
    except urllib.error.HTTPError as e:
        assert e.code == 405
        assert json.loads(e.read())["error"]["message"].startswith("websem:")
    # Beyond the adapter's 1 MiB header limit: node:http refuses it, still with a JSON body.
    status, body = api.get("search?q=" + "b" * 1_100_000)
    assert status == 431 and body["error"]["code"] == "request_too_large"
    status, body = api.get("healthz")
    assert status == 200 and body["status"] == "ok"


def test_concurrent_first_requests_share_one_start(
    cranfield_bundle: Path, cranfield_queries: list[str]
) -> None:
    from websem.web.query import search

    qs = cranfield_queries[:8]
    with start_api_server(cranfield_bundle, lazy=True, wait=False) as server:
        status, body = server.get("healthz")
        assert status == 503 and body["status"] == "starting"

        def one(q: str) -> tuple[int, dict]:
            return _search(server, q, k=5)

        with ThreadPoolExecutor(len(qs)) as pool:
            results = list(pool.map(one, qs))
        status, health = server.get("healthz")
    assert status == 200 and health["starts"] == 1
    assert health["served"] == len(qs)
    expected = search(cranfield_bundle, qs, k=5)
    for (status, body), want in zip(results, expected, strict=True):
        assert status == 200
        assert [h["id"] for h in body["hits"]] == [h["id"] for h in want]


def test_broken_bundle_gives_503_json_not_a_crash(cranfield_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(cranfield_bundle, bad)
    vectors = bad / "index" / "vectors.bin"
    data = bytearray(vectors.read_bytes())
    data[100] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with start_api_server(bad, wait=False) as server:
        status, body = _search(server, "wing")
        assert status == 503
        assert body["error"]["code"] == "engine_failed"
        assert "vectors.bin" in body["error"]["message"]
        assert body["error"]["message"].startswith("websem:")
        status, body = server.get("healthz")
        assert status == 503 and body["status"] in ("error", "starting")
