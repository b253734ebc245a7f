"""A partitioned bundle (the session's Cranfield bundle with 16 IVF lists, 4 probed) behind the
Node adapter and under workerd: the engine reads its shards through the same fetch as every other
bundle file (workerd: the ASSETS binding), and answers like `websem query` on it.
Row blocks: both answer the engine's Range requests with 206 (workerd: the ASSETS binding; Node:
the adapter's file fetch, web/src/node.js fileFetch, reads those bytes from disk), so each block is
checked against its sha256 from the codes shard, never a whole rows file against the manifest.
Tampered shards fail the searches that read them, and only those."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from edge_helpers import api_search, assert_same_hits, read_queries, require_node
from websem.text.rules import MODES
from websem.web.api_server import find_node, start_api_server, start_edge_example
from websem.web.query import search as reference

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _node() -> None:
    require_node()


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[str]:
    return read_queries(shared_data)


@pytest.fixture(scope="module", params=["node", "workerd"])
def partitioned_edge(request: pytest.FixtureRequest, cranfield_partitioned: Path, tmp_path_factory):
    runtime = request.param
    if runtime == "node":
        with start_api_server(cranfield_partitioned) as server:
            yield runtime, server
    else:
        with start_edge_example(runtime, cranfield_partitioned, tmp_path_factory.mktemp("workerd-part")) as server:
            yield runtime, server


def test_partitioned_bundle_equals_websem_query(partitioned_edge, cranfield_partitioned: Path,
                                                cranfield_queries: list[str]) -> None:
    runtime, server = partitioned_edge
    status, health = server.get("healthz")
    assert status == 200, health
    assert health["info"]["index"]["layout"] == "partitioned", health["info"]["index"]
    ivf = json.loads((cranfield_partitioned / "manifest.json").read_text())["index"]["ivf"]
    want_ivf = {"nlist": 16, "nprobe": 4, "code": ivf["code"], "rerank": ivf["rerank"]}
    assert health["info"]["index"]["ivf"] == want_ivf, health["info"]["index"]
    assert health["memory"]["shard_cache_bytes"] == 0, health["memory"]  # no query yet: no shard
    if runtime == "workerd":  # the worker hands other paths to ASSETS, as the engine's reads go
        req = urllib.request.Request(server.url + "index/ivf/0.bin", headers={"Range": "bytes=0-27"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 206 and r.headers["Content-Range"].startswith("bytes 0-27/"), dict(r.headers)
            assert r.read()[:8] == b"WSIVF\x00\x00\x02"
    qs = cranfield_queries[:10]
    for mode in MODES:
        worst = 0.0
        for q, want in zip(qs, reference(cranfield_partitioned, qs, k=10, mode=mode), strict=True):
            status, body = api_search(server, q, k=10, mode=mode)
            assert status == 200, (runtime, body)
            assert body["mode"] == mode
            worst = max(worst, assert_same_hits(body["hits"], want, q))
        assert worst == 0.0 if mode == "lexical" else worst < 1e-4, (runtime, mode, worst)
    status, health = server.get("healthz")
    assert 0 < health["memory"]["shard_cache_bytes"] <= 64 << 20, health["memory"]
    assert health["served"] == 3 * len(qs), health


def test_node_reads_row_blocks_as_byte_ranges(cranfield_partitioned: Path, cranfield_queries: list[str]) -> None:
    """The engine under Node with the adapter's file fetch (tests/js/node_partitioned.mjs): every
    rows-file request asks a byte range and gets 206 with exactly those bytes, the shard cache
    counts them, fewer bytes arrive than the rows files touched hold, and the results still equal
    `websem query`."""
    qs = cranfield_queries[:6]
    modes = ["semantic", "hybrid"]
    proc = subprocess.run([find_node(), str(REPO / "tests" / "js" / "node_partitioned.mjs"), str(cranfield_partitioned),
                           json.dumps(qs), json.dumps(modes)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    for mode in modes:
        worst = 0.0
        for q, got, want in zip(qs, out["results"][mode], reference(cranfield_partitioned, qs, k=10, mode=mode),
                                strict=True):
            worst = max(worst, assert_same_hits(got["hits"], want, q))
        assert worst < 1e-4, (mode, worst)
    rows = out["rows"]
    assert rows, out["stats"]
    for _path, asked, status, n in rows:
        assert asked and asked.startswith("bytes=") and status == 206, rows
        first, last = map(int, asked.removeprefix("bytes=").split("-"))
        assert n == last - first + 1, rows
    assert out["stats"]["range_requests"] == len(rows), (out["stats"], rows)
    sizes = json.loads((cranfield_partitioned / "manifest.json").read_text())["files"]
    whole = sum(sizes[p]["size"] for p in {p for p, *_ in rows})
    got = sum(n for *_, n in rows)
    assert got < whole, (got, whole)


def test_partitioned_filters_and_facets_equal_websem_query(faceted_partitioned: Path) -> None:
    from websem.web.query import load_bundle

    searcher = load_bundle(faceted_partitioned)
    cases = [("boundary layer flow", {}), ("heat transfer", {"section": ["heat"]}),
             ("supersonic wing", {"tags": ["theory", "supersonic"], "section": ["aerodynamics"]})]
    with start_api_server(faceted_partitioned) as server:
        for mode in MODES:
            for q, filters in cases:
                params = {f"filter.{f}": v for f, v in filters.items()}
                status, body = api_search(server, q, k=10, mode=mode, **params)
                assert status == 200, body
                want = searcher.query(q, 10, mode=mode, filters=filters or None)
                assert assert_same_hits(body["hits"], want["hits"], q) < 1e-4, (mode, q)
                assert body["facets"] == json.loads(json.dumps(want["facets"])), (mode, q)
                assert any(body["facets"].values()), (mode, q)


def test_partitioned_bad_shard_fails_that_search_only(cranfield_partitioned: Path, tmp_path: Path) -> None:
    """A tampered lexical shard: the search that needs it answers a JSON 5xx naming the file;
    a search needing other shards, and /healthz, still work: the engine stays up."""
    from websem.text.analyze import Analyzer

    bad = tmp_path / "bundle"
    shutil.copytree(cranfield_partitioned, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    table = json.loads((bad / manifest["index"]["files"]["table"]).read_text())
    analyzer = Analyzer.from_config(table["lexical"]["analyzer"])
    firsts = [first for first, _ in table["lexical"]["shards"]]

    def shard_of(word: str) -> int:
        (term,) = analyzer.terms(word)
        return max(j for j, first in enumerate(firsts) if first <= term)  # str order = code points

    j = shard_of("boundary")
    other = next(w for w in ("wing", "flutter", "heat", "shock", "pressure") if shard_of(w) != j)
    path = manifest["index"]["shards"]["lexical"].replace("{}", str(j))
    data = bytearray((bad / path).read_bytes())  # the Node adapter reads the file itself
    data[-1] ^= 1
    (bad / path).write_bytes(bytes(data))
    with start_api_server(bad) as server:
        status, body = api_search(server, "boundary", k=5, mode="lexical")
        assert 500 <= status < 600, body
        assert body["error"]["message"].startswith("websem:") and path in body["error"]["message"], body
        assert "failed its integrity check" in body["error"]["message"], body
        status, body = api_search(server, other, k=5, mode="lexical")
        assert status == 200 and body["hits"], body
        status, health = server.get("healthz")
        assert status == 200 and health["status"] == "ok", health


def test_partitioned_tampered_rows_file_fails_those_searches_only(cranfield_partitioned: Path, tmp_path: Path,
                                                                  cranfield_queries: list[str]) -> None:
    """A rows shard changed on disk, behind the Node adapter (which reads blocks by byte range,
    so each block's sha256 from the codes shard catches it): each semantic search that reads it
    answers a JSON 5xx naming the file and block, searches that do not, lexical searches and
    /healthz still work."""
    bad = tmp_path / "bundle"
    shutil.copytree(cranfield_partitioned, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    path = manifest["index"]["shards"]["ivf"].replace("{}", "3")
    (bad / path).write_bytes(bytes(b ^ 1 for b in (bad / path).read_bytes()))  # every block
    failed = ok = 0
    with start_api_server(bad) as server:
        for q in cranfield_queries[:12]:
            status, body = api_search(server, q, k=5, mode="semantic")
            if status == 200:
                ok += 1
                continue
            failed += 1
            assert 500 <= status < 600, body
            message = body["error"]["message"]
            assert message.startswith(f"websem: {path} block "), body
            assert "does not match the sha256" in message, body
        status, body = api_search(server, cranfield_queries[0], k=5, mode="lexical")
        assert status == 200 and body["hits"], body
        status, health = server.get("healthz")
        assert status == 200 and health["status"] == "ok", health
    assert failed and ok, (failed, ok)
