"""Edge API: the fetch handler (web/src/handler.js) behind the Node adapter (web/src/node.js),
started for real on 127.0.0.1 against the real Cranfield bundle, checked against the CPU
reference `websem query` (ids, scores, titles, urls, snippets, highlights, facets) in every mode
of the bundle, and fed bad requests; and `websem serve --api`. Deno and workerd:
test_edge_runtimes.py; a partitioned bundle: test_edge_partitioned.py. A missing runtime or mode
fails, never skips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from edge_helpers import api_search, assert_same_hits, read_queries, require_node
from websem.text.rules import MODES
from websem.web.api_server import ApiServer, free_port, start_api_server
from websem.web.query import search as reference


@pytest.fixture(scope="module", autouse=True)
def _node() -> None:
    require_node()


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[str]:
    return read_queries(shared_data)


@pytest.fixture(scope="module")
def api(cranfield_bundle: Path):
    with start_api_server(cranfield_bundle) as server:
        yield server


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
    # The two wasm heaps: Pyodide's (the snapshot's ~31 MB image) and ORT's (the model inside).
    model_bytes = manifest["files"]["model/model.onnx"]["size"]
    assert body["memory"]["pyodide_wasm_bytes"] >= 16 << 20, body["memory"]
    assert body["memory"]["ort_wasm_bytes"] >= model_bytes, body["memory"]


@pytest.mark.parametrize("mode", MODES)
def test_results_equal_websem_query(
    api: ApiServer, cranfield_bundle: Path, cranfield_queries: list[str], mode: str
) -> None:
    _, health = api.get("healthz")
    manifest = json.loads((cranfield_bundle / "manifest.json").read_text())
    assert health["modes"] == manifest["search"]["modes"] and mode in health["modes"], health["modes"]
    expected = reference(cranfield_bundle, cranfield_queries, k=10, mode=mode)
    worst = 0.0
    for q, want in zip(cranfield_queries, expected, strict=True):
        status, body = api_search(api, q, k=10, mode=mode)
        assert status == 200, body
        assert body["query"] == q and body["k"] == 10 and body["mode"] == mode
        worst = max(worst, assert_same_hits(body["hits"], want, q))
    print(f"edge vs websem query, {mode}: {len(cranfield_queries)} queries, max |score diff| {worst:.2e}")
    assert worst < 1e-4


def test_k_and_mode_are_honoured(api: ApiServer, cranfield_bundle: Path, cranfield_queries: list[str]) -> None:
    q = cranfield_queries[0]
    _, health = api.get("healthz")
    table = json.loads((cranfield_bundle / "manifest.json").read_text())["search"]
    modes, default = health["modes"], health["default_mode"]
    assert modes == table["modes"] and default == modes[0] == "hybrid"
    _, top10 = api_search(api, q)
    assert top10["mode"] == default and top10["filters"] is None and top10["k"] == table["k"]
    status, top3 = api_search(api, q, k=3)
    assert status == 200 and len(top10["hits"]) == 10
    assert [h["id"] for h in top3["hits"]] == [h["id"] for h in top10["hits"][:3]]
    status, explicit = api_search(api, q, k=3, mode=default)
    assert status == 200 and explicit["hits"] == top3["hits"]
    status, big = api_search(api, q, k=100)
    assert status == 200 and len(big["hits"]) == 100
    for mode in MODES:
        status, body = api_search(api, q, k=3, mode=mode)
        assert status == 200 and body["mode"] == mode, body
    # the one unknown-mode wording (Python's says 'fuzzy', JS's "fuzzy")
    status, body = api_search(api, q, mode="fuzzy")
    assert status == 400 and body["error"]["code"] == "bad_mode", body
    assert body["error"]["message"] == 'websem: unknown search mode "fuzzy"; use one of ' + ", ".join(modes)


def test_unknown_filter_field_is_a_400(api: ApiServer) -> None:
    status, body = api_search(api, "wing", **{"filter.nosuchfield": "x"})
    assert status == 400 and body["error"]["code"] == "bad_filter", body
    assert body["error"]["message"].startswith("websem:")
    assert "nosuchfield" in body["error"]["message"] and "\n" not in body["error"]["message"]


DOCS = {
    "wing.md": ("tags: [aero, wings]\nsection: guide\n", "# Wing lift\n\nLift on a swept wing in "
                "subsonic flow depends on the aspect ratio and the angle of attack."),
    "boundary.md": ("tags:\n  - aero\n  - flow\nsection: reference\n", "# Boundary layers\n\nThe "
                    "boundary layer over a flat plate thickens downstream; turbulent flow mixes it."),
    "heat.md": ("tags: heat\nsection: guide\n", "# Heat transfer\n\nHeat transfer at hypersonic "
                "speeds heats the wing leading edge; ablation protects it."),
    "python.md": ("tags: code\nsection: reference\n", "# Python lists\n\nA list is a mutable "
                  "sequence; append adds an item to the end of the list."),
}


@pytest.fixture(scope="module")
def tagged_bundle(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> Path:
    """A four-document bundle whose Markdown front matter gives tags and sections."""
    from websem.build.bundle import build_bundle

    src = tmp_path_factory.mktemp("tagged-src")
    for name, (front, body) in DOCS.items():
        (src / name).write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("tagged") / "bundle"
    build_bundle(src, out, model=model_package)
    return out


@pytest.fixture(scope="module")
def tagged_api(tagged_bundle: Path):
    with start_api_server(tagged_bundle) as server:
        yield server


@pytest.mark.parametrize("mode", MODES)
def test_filters_and_facets_equal_websem_query(
    tagged_api: ApiServer, tagged_bundle: Path, mode: str
) -> None:
    from websem.web.query import load_bundle

    cases = [
        ("wing flow", {"tags": ["aero"]}),
        ("wing flow", {"tags": ["aero", "heat"], "section": ["guide"]}),
        ("list append", {"section": ["reference"]}),
        ("wing", {"tags": ["nosuchtag"]}),
    ]
    searcher = load_bundle(tagged_bundle)  # what `websem query --filter` runs
    for q, filters in cases:
        params = {f"filter.{f}": v for f, v in filters.items()}
        status, body = api_search(tagged_api, q, k=10, mode=mode, **params)
        assert status == 200, body
        assert body["filters"] == filters and body["mode"] == mode
        want = searcher.query(q, 10, mode=mode, filters=filters)
        assert_same_hits(body["hits"], want["hits"], q)
        assert body["facets"] == json.loads(json.dumps(want["facets"])), q
        allowed = {n for n, (front, _) in DOCS.items()
                   if all(any(v in front for v in vs) for vs in filters.values())}
        assert {h["id"] for h in body["hits"]} <= allowed, (q, filters)
        # Only the made-up tag matches nothing.
        assert bool(body["hits"]) == (filters != {"tags": ["nosuchtag"]}), (q, filters)


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
        ("search?q=wing&filter.=x", "bad_filter"),
        ("search?q=wing&filter.a%20b=x", "bad_filter"),
        ("search?q=wing&filter.tags=", "bad_filter"),
        ("search?q=wing&" + "&".join(f"filter.tags=t{i}" for i in range(65)), "bad_filter"),
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
            return api_search(server, q, k=5)

        with ThreadPoolExecutor(len(qs)) as pool:
            results = list(pool.map(one, qs))
        status, health = server.get("healthz")
    assert status == 200 and health["starts"] == 1
    assert health["served"] == len(qs)
    expected = search(cranfield_bundle, qs, k=5)
    for q, (status, body), want in zip(qs, results, expected, strict=True):
        assert status == 200
        assert assert_same_hits(body["hits"], want, q) < 1e-4


def test_broken_bundle_gives_503_json_not_a_crash(cranfield_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(cranfield_bundle, bad)
    vectors = bad / "index" / "vectors.bin"
    data = bytearray(vectors.read_bytes())
    data[100] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with start_api_server(bad, wait=False) as server:
        status, body = api_search(server, "wing")
        assert status == 503
        assert body["error"]["code"] == "engine_failed"
        assert "vectors.bin" in body["error"]["message"]
        assert body["error"]["message"].startswith("websem:")
        status, body = server.get("healthz")
        assert status == 503 and body["status"] in ("error", "starting")


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_cli_serve_api_serves_websem_query_results(
    cranfield_bundle: Path, cranfield_queries: list[str]
) -> None:
    """The real `websem serve BUNDLE --api --port N`, as a user runs it, stopped with SIGTERM."""
    cli = Path(sys.executable).parent / "websem"
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [str(cli), "serve", str(cranfield_bundle), "--api", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                status, health = _get(base + "healthz")
            except (urllib.error.URLError, ConnectionError):
                status, health = 0, {}
            if status == 200:
                break
            assert time.monotonic() < deadline, f"not ready: {status} {health}"
            time.sleep(0.3)
        assert health["status"] == "ok" and health["starts"] == 1
        qs = cranfield_queries[:3]
        for q, want in zip(qs, reference(cranfield_bundle, qs, k=5), strict=True):  # the default mode
            status, body = _get(base + "search?" + urllib.parse.urlencode({"q": q, "k": 5}))
            assert status == 200, body
            assert assert_same_hits(body["hits"], want, q) < 1e-4
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"at {base}search?q=" in out
    # SIGTERM must stop the Node child too, not orphan it on the port.
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(base + "healthz")


def test_cli_serve_lean_needs_api(tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "websem"
    r = subprocess.run([str(cli), "serve", str(tmp_path), "--lean"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--lean applies to --api only" in r.stderr
