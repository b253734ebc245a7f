"""The Deno and Cloudflare Workers examples (demo/edge/), run for real against the real Cranfield
bundle: Deno and workerd (the open-source Workers runtime) come from npm via demo/edge/package.json
(.ci/setup installs them). Their answers equal the CPU reference `websem query`; workerd's memory
with a packed int8 model, its refusal to run as Node, and one engine start under concurrent first
requests. A missing runtime fails, never skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from edge_helpers import api_search, assert_same_hits, read_queries, require_node
from websem.text.rules import MODES
from websem.web.api_server import start_edge_example
from websem.web.query import search as reference


@pytest.fixture(scope="module", autouse=True)
def _node() -> None:
    require_node()


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[str]:
    return read_queries(shared_data)


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
            status, body = api_search(server, q, k=5, mode=mode)
            assert status == 200, (runtime, body)
            assert body["mode"] == mode
            assert assert_same_hits(body["hits"], want, q) < 1e-4, (runtime, mode)
    status, body = api_search(server, "x", k=-1)
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
        status, body = api_search(server, "boundary layer")
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
    # The model's int8 weights: the body plus, for a split model, its word-embedding rows (read
    # per query, not held by ORT).
    rows = (manifest["model"].get("word_rows") or {}).get("file")
    model_bytes = manifest["files"]["model/model.onnx"]["size"] + (manifest["files"][rows]["size"] if rows else 0)
    with start_edge_example("workerd", packed_bundle, tmp_path) as server:
        status, health = server.get("healthz")
        memory = health["memory"]
        # fp32 weights would be ~90 MB; int8 held twice (bytes + tensors) ~2x the file.
        assert memory["ort_wasm_bytes"] < 2 * model_bytes, memory
        assert memory["ort_wasm_bytes"] + memory["pyodide_wasm_bytes"] < 96 << 20, memory
        qs = cranfield_queries[:5]
        for mode in MODES:
            for q, want in zip(qs, reference(packed_bundle, qs, k=5, mode=mode), strict=True):
                status, body = api_search(server, q, k=5, mode=mode)
                assert status == 200, body
                assert assert_same_hits(body["hits"], want, q) < 1e-4, mode


def test_worker_concurrent_first_requests_share_one_start(cranfield_bundle: Path, tmp_path: Path) -> None:
    """Under workerd, 8 simultaneous first searches (8 request contexts) await one engine start."""
    with start_edge_example("workerd", cranfield_bundle, tmp_path, wait=False) as server:
        qs = [f"flow {i}" for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda q: api_search(server, q, k=1, mode="semantic"), qs))
        assert [status for status, _ in answers] == [200] * 8, answers
        status, health = server.get("healthz")
        assert health["starts"] == 1 and health["served"] == 8, health
