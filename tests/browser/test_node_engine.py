"""The runtime is platform-neutral: the bundle's own runtime runs under Node 20 (the base of the
edge handler) with Pyodide and onnxruntime-web wasm, in-process through the public `load()`, and
returns exactly what `websem query --json` does in every mode: ids, scores, titles, urls,
snippets, highlights and facets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def node_results(browser_bundle: Path, shared_data: Path, bt) -> tuple[list[str], dict]:
    """One Node run over every mode: (queries, {info, results: {mode: [searchFull result...]}})."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in lines[40:45]] + list(bt.LATE_QUERIES)
    proc = subprocess.run(
        [node, str(HERE / "node_engine.mjs"), str(browser_bundle), json.dumps(queries), json.dumps(list(bt.MODES))],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return queries, json.loads(proc.stdout)


def test_engine_under_node_offers_every_mode(node_results, bt) -> None:
    _, out = node_results
    assert out["info"]["index"]["chunks"] > 0
    assert out["info"]["modes"] == list(bt.MODES)


def test_engine_under_node_matches_websem_query(node_results, browser_bundle: Path, bt, search_mode: str) -> None:
    queries, out = node_results
    want = bt.websem_query_json(browser_bundle, queries, search_mode)
    if search_mode == "lexical":
        bt.assert_snippets_past_window(browser_bundle, want[-len(bt.LATE_QUERIES):])
    worst = bt.assert_same_results(browser_bundle, search_mode, queries, out["results"][search_mode], want,
                                   engine="node")
    print(f"\n{search_mode}: Node top-10 of {len(queries)} queries identical; max score diff {worst:.3g}")
