"""Edge API: the fetch handler (web/src/handler.js) behind the Node adapter (web/src/node.js),
started for real on 127.0.0.1 against the real Cranfield bundle, checked against the CPU
reference `websem query` (ids, scores, titles, urls, snippets, highlights, facets) in every mode
of the bundle, and fed bad requests. Node, Deno and workerd are required: a missing runtime or
mode fails, never skips."""

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
from websem.text.rules import MODES
from websem.text.snippets import utf16_ranges
from websem.web.api_server import ApiServer, free_port, start_api_server, start_edge_example
from websem.web.query import search as reference

N_QUERIES = 30


@pytest.fixture(scope="module", autouse=True)
def _node() -> None:
    assert shutil.which("node"), "Node.js 20 is missing: run .ci/setup (the edge handler runs under Node)"


@pytest.fixture(scope="module")
def api(cranfield_bundle: Path):
    with start_api_server(cranfield_bundle) as server:
        yield server


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:N_QUERIES]]


def _search(api: ApiServer, q: str, **params: object) -> tuple[int, dict]:
    return api.get("search?" + urllib.parse.urlencode({"q": q, **params}, doseq=True))


def _assert_same_hits(got: list[dict], want: list[dict], q: str) -> float:
    """Same ids, order, titles, urls, snippets and highlights (the edge's are UTF-16 ranges, the
    reference's code points); returns the largest |score difference|."""
    assert [h["id"] for h in got] == [h["id"] for h in want], q
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        worst = max(worst, abs(g["score"] - w["score"]))
        assert (g["title"], g["url"], g["snippet"]) == (w["title"], w["url"], w["snippet"]), q
        assert g["highlights"] == utf16_ranges(w["snippet"], w["highlights"]), (q, w["snippet"])
    return worst


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
        status, body = _search(api, q, k=10, mode=mode)
        assert status == 200, body
        assert body["query"] == q and body["k"] == 10 and body["mode"] == mode
        worst = max(worst, _assert_same_hits(body["hits"], want, q))
    print(f"edge vs websem query, {mode}: {len(cranfield_queries)} queries, max |score diff| {worst:.2e}")
    assert worst < 1e-4


def test_k_and_mode_are_honoured(api: ApiServer, cranfield_bundle: Path, cranfield_queries: list[str]) -> None:
    q = cranfield_queries[0]
    _, health = api.get("healthz")
    table = json.loads((cranfield_bundle / "manifest.json").read_text())["search"]
    modes, default = health["modes"], health["default_mode"]
    assert modes == table["modes"] and default == modes[0] == "hybrid"
    _, top10 = _search(api, q)
    assert top10["mode"] == default and top10["filters"] is None and top10["k"] == table["k"]
    status, top3 = _search(api, q, k=3)
    assert status == 200 and len(top10["hits"]) == 10
    assert [h["id"] for h in top3["hits"]] == [h["id"] for h in top10["hits"][:3]]
    status, explicit = _search(api, q, k=3, mode=default)
    assert status == 200 and explicit["hits"] == top3["hits"]
    status, big = _search(api, q, k=100)
    assert status == 200 and len(big["hits"]) == 100
    for mode in MODES:
        status, body = _search(api, q, k=3, mode=mode)
        assert status == 200 and body["mode"] == mode, body
    # the one unknown-mode wording (Python's says 'fuzzy', JS's "fuzzy")
    status, body = _search(api, q, mode="fuzzy")
    assert status == 400 and body["error"]["code"] == "bad_mode", body
    assert body["error"]["message"] == 'websem: unknown search mode "fuzzy"; use one of ' + ", ".join(modes)


def test_unknown_filter_field_is_a_400(api: ApiServer) -> None:
    status, body = _search(api, "wing", **{"filter.nosuchfield": "x"})
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
        status, body = _search(tagged_api, q, k=10, mode=mode, **params)
        assert status == 200, body
        assert body["filters"] == filters and body["mode"] == mode
        want = searcher.query(q, 10, mode=mode, filters=filters)
        _assert_same_hits(body["hits"], want["hits"], q)
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
            return _search(server, q, k=5)

        with ThreadPoolExecutor(len(qs)) as pool:
            results = list(pool.map(one, qs))
        status, health = server.get("healthz")
    assert status == 200 and health["starts"] == 1
    assert health["served"] == len(qs)
    expected = search(cranfield_bundle, qs, k=5)
    for q, (status, body), want in zip(qs, results, expected, strict=True):
        assert status == 200
        assert _assert_same_hits(body["hits"], want, q) < 1e-4


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
            assert _assert_same_hits(body["hits"], want, q) < 1e-4
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


# ---------------------------------------------------------------------------------------------
# The Deno and Cloudflare Workers examples (demo/edge/), run for real: Deno and workerd (the
# open-source Workers runtime) come from npm via demo/edge/package.json (.ci/setup installs them).


@pytest.fixture(scope="module", params=["deno", "workerd"])
def edge_example(request: pytest.FixtureRequest, cranfield_bundle: Path, tmp_path_factory):
    runtime = request.param
    with start_edge_example(runtime, cranfield_bundle, tmp_path_factory.mktemp(runtime)) as server:
        yield runtime, server


def test_edge_examples_equal_websem_query(edge_example, cranfield_bundle: Path,
                                          cranfield_queries: list[str]) -> None:
    """Deno's and workerd's answers equal `websem query`, per mode, like the Node adapter's."""
    runtime, server = edge_example
    status, health = server.get("healthz")
    assert health["starts"] == 1 and health["info"]["pyodide_snapshot"] is True, health
    # Both wasm heaps are reported (what an isolate's memory limit counts; docs/edge.md).
    assert health["memory"]["pyodide_wasm_bytes"] > 16 << 20, health["memory"]
    assert health["memory"]["ort_wasm_bytes"] > 16 << 20, health["memory"]
    qs = cranfield_queries[:10]
    for mode in MODES:
        for q, want in zip(qs, reference(cranfield_bundle, qs, k=5, mode=mode), strict=True):
            status, body = _search(server, q, k=5, mode=mode)
            assert status == 200, (runtime, body)
            assert body["mode"] == mode
            assert _assert_same_hits(body["hits"], want, q) < 1e-4, (runtime, mode)
    status, body = _search(server, "x", k=-1)
    assert status == 400 and body["error"]["code"] == "bad_k", (runtime, body)
    status, health = server.get("healthz")
    assert health["starts"] == 1 and health["served"] >= 3 * len(qs), health


def test_worker_refuses_node_process_with_the_fix(cranfield_bundle: Path, tmp_path: Path) -> None:
    """Without its compatibility flag, workerd defines process.versions.node and Pyodide would
    boot as if in Node; the engine names the flag instead of failing obscurely."""
    from websem.web.api_server import EDGE_EXAMPLES

    text = (EDGE_EXAMPLES / "cloudflare" / "workerd.capnp").read_text()
    flag = 'compatibilityFlags = ["disable_nodejs_process_v2"],'
    assert flag in text
    with start_edge_example("workerd", cranfield_bundle, tmp_path, wait=False,
                            capnp=text.replace(flag, "")) as server:
        status, body = _search(server, "boundary layer")
        assert status == 503 and body["error"]["code"] == "engine_failed", body
        assert "disable_nodejs_process_v2" in body["error"]["message"]
        assert body["error"]["message"].startswith("websem:")


@pytest.fixture(scope="module")
def packed_bundle(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """`websem build --quantization weight-int8-packed` as a user runs it (embedded default model,
    exported into a fresh user cache) on the first 300 Cranfield documents."""
    tmp = tmp_path_factory.mktemp("packed")
    corpus = tmp / "corpus.jsonl"
    lines = (shared_data / "cranfield" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "WEBSEM_MODEL"}
    env.update(XDG_CACHE_HOME=str(tmp / "cache"), HF_HUB_OFFLINE="1")
    out = tmp / "bundle"
    r = subprocess.run([str(Path(sys.executable).parent / "websem"), "build", str(corpus), "--out", str(out),
                        "--quantization", "weight-int8-packed", "-q"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr
    assert (tmp / "cache" / "websem" / "models").is_dir()
    return out


def test_packed_bundle_keeps_int8_weights_once_under_workerd(
    packed_bundle: Path, cranfield_queries: list[str], tmp_path: Path
) -> None:
    """The edge build: int8 weights stay int8 in ORT's wasm heap (MatMulNBits) and are held
    once (the engine passes them as external data), so both wasm heaps together stay far below
    a Workers isolate's 128 MB, and the answers still equal `websem query`."""
    manifest = json.loads((packed_bundle / "manifest.json").read_text())
    assert manifest["model"]["quantization"]["mode"] == "weight-int8-packed"
    model_bytes = manifest["files"]["model/model.onnx"]["size"]
    with start_edge_example("workerd", packed_bundle, tmp_path) as server:
        status, health = server.get("healthz")
        memory = health["memory"]
        # fp32 weights would be ~90 MB; int8 held twice (bytes + tensors) ~2x the file.
        assert memory["ort_wasm_bytes"] < 2 * model_bytes, memory
        assert memory["ort_wasm_bytes"] + memory["pyodide_wasm_bytes"] < 96 << 20, memory
        qs = cranfield_queries[:5]
        for mode in MODES:
            for q, want in zip(qs, reference(packed_bundle, qs, k=5, mode=mode), strict=True):
                status, body = _search(server, q, k=5, mode=mode)
                assert status == 200, body
                assert _assert_same_hits(body["hits"], want, q) < 1e-4, mode


def test_worker_concurrent_first_requests_share_one_start(cranfield_bundle: Path, tmp_path: Path) -> None:
    """Under workerd, 8 simultaneous first searches (8 request contexts) await one engine start."""
    with start_edge_example("workerd", cranfield_bundle, tmp_path, wait=False) as server:
        qs = [f"flow {i}" for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda q: _search(server, q, k=1, mode="semantic"), qs))
        assert [status for status, _ in answers] == [200] * 8, answers
        status, health = server.get("healthz")
        assert health["starts"] == 1 and health["served"] == 8, health


# ---------------------------------------------------------------------------------------------
# A partitioned bundle (the session's Cranfield bundle with 16 IVF lists, 4 probed) behind the
# Node adapter and under workerd: the engine reads its shards through the same fetch as every
# other bundle file (workerd: the ASSETS binding), and answers like `websem query` on it.
# Row blocks: under workerd the ASSETS binding answers the engine's Range requests with 206 (the
# block path, checked below); the Node adapter's file fetch (web/src/node.js fileFetch) ignores
# Range and answers 200 with the whole file, so Node exercises the whole-file fallback (the file
# checked against the manifest, then cut into blocks).


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
            status, body = _search(server, q, k=10, mode=mode)
            assert status == 200, (runtime, body)
            assert body["mode"] == mode
            worst = max(worst, _assert_same_hits(body["hits"], want, q))
        assert worst == 0.0 if mode == "lexical" else worst < 1e-4, (runtime, mode, worst)
    status, health = server.get("healthz")
    assert 0 < health["memory"]["shard_cache_bytes"] <= 64 << 20, health["memory"]
    assert health["served"] == 3 * len(qs), health


def test_partitioned_filters_and_facets_equal_websem_query(faceted_partitioned: Path) -> None:
    from websem.web.query import load_bundle

    searcher = load_bundle(faceted_partitioned)
    cases = [("boundary layer flow", {}), ("heat transfer", {"section": ["heat"]}),
             ("supersonic wing", {"tags": ["theory", "supersonic"], "section": ["aerodynamics"]})]
    with start_api_server(faceted_partitioned) as server:
        for mode in MODES:
            for q, filters in cases:
                params = {f"filter.{f}": v for f, v in filters.items()}
                status, body = _search(server, q, k=10, mode=mode, **params)
                assert status == 200, body
                want = searcher.query(q, 10, mode=mode, filters=filters or None)
                assert _assert_same_hits(body["hits"], want["hits"], q) < 1e-4, (mode, q)
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
        status, body = _search(server, "boundary", k=5, mode="lexical")
        assert 500 <= status < 600, body
        assert body["error"]["message"].startswith("websem:") and path in body["error"]["message"], body
        assert "failed its integrity check" in body["error"]["message"], body
        status, body = _search(server, other, k=5, mode="lexical")
        assert status == 200 and body["hits"], body
        status, health = server.get("healthz")
        assert status == 200 and health["status"] == "ok", health


def test_partitioned_tampered_rows_file_fails_those_searches_only(cranfield_partitioned: Path, tmp_path: Path,
                                                                  cranfield_queries: list[str]) -> None:
    """A rows shard with one block changed on disk, behind the Node adapter (whole files, so the
    manifest check catches it): each semantic search that reads it answers a JSON 5xx naming the
    file, searches that do not, lexical searches and /healthz still work."""
    bad = tmp_path / "bundle"
    shutil.copytree(cranfield_partitioned, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    path = manifest["index"]["shards"]["ivf"].replace("{}", "3")
    data = bytearray((bad / path).read_bytes())
    data[-1] ^= 1  # the last row block
    (bad / path).write_bytes(bytes(data))
    failed = ok = 0
    with start_api_server(bad) as server:
        for q in cranfield_queries[:12]:
            status, body = _search(server, q, k=5, mode="semantic")
            if status == 200:
                ok += 1
                continue
            failed += 1
            assert 500 <= status < 600, body
            message = body["error"]["message"]
            assert message.startswith(f"websem: {path} failed its integrity check"), body
        status, body = _search(server, cranfield_queries[0], k=5, mode="lexical")
        assert status == 200 and body["hits"], body
        status, health = server.get("healthz")
        assert status == 200 and health["status"] == "ok", health
    assert failed and ok, (failed, ok)
