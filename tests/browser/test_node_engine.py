"""engine.js is platform-neutral: the bundle's runtime runs under Node 20 (the base of the edge
handler) with Pyodide and onnxruntime-web wasm, and ranks exactly like `websem query`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_engine_under_node_matches_websem_query(browser_bundle: Path, shared_data: Path) -> None:
    from websem.web.query import search

    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in lines[40:45]]
    proc = subprocess.run(
        [node, str(HERE / "node_engine.mjs"), str(browser_bundle), json.dumps(queries)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["info"]["index"]["chunks"] > 0
    cpu = search(browser_bundle, queries, k=10)
    for node_hits, cpu_hits in zip(out["results"], cpu, strict=True):
        assert [h["id"] for h in node_hits] == [h["id"] for h in cpu_hits]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(node_hits, cpu_hits, strict=True)) <= 1e-4
