"""Shared by the edge API tests (test_edge.py: the Node adapter; test_edge_runtimes.py: Deno and
workerd; test_edge_partitioned.py: a partitioned bundle): the runtime check, the session's queries
and the comparison with the CPU reference. A plain module (pytest does not rewrite its asserts,
so each names what differs)."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path

from websem.text.snippets import utf16_ranges
from websem.web.api_server import ApiServer

N_QUERIES = 30


def require_node() -> None:
    """Node is required: a missing runtime fails, never skips."""
    assert shutil.which("node"), "Node.js 20 is missing: run .ci/setup (the edge handler runs under Node)"


def read_queries(shared_data: Path) -> list[str]:
    """The first ``N_QUERIES`` Cranfield query texts."""
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:N_QUERIES]]


def api_search(api: ApiServer, q: str, **params: object) -> tuple[int, dict]:
    """``GET /search?q=...`` with ``params``: the status and the JSON body."""
    return api.get("search?" + urllib.parse.urlencode({"q": q, **params}, doseq=True))


def assert_same_hits(got: list[dict], want: list[dict], q: str) -> float:
    """Same ids, order, titles, urls, snippets and highlights (the edge's are UTF-16 ranges, the
    reference's code points); returns the largest |score difference|."""
    got_ids, want_ids = [h["id"] for h in got], [h["id"] for h in want]
    assert got_ids == want_ids, (q, got_ids, want_ids)
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        worst = max(worst, abs(g["score"] - w["score"]))
        shown, ref = (g["title"], g["url"], g["snippet"]), (w["title"], w["url"], w["snippet"])
        assert shown == ref, (q, shown, ref)
        ranges = utf16_ranges(w["snippet"], w["highlights"])
        assert g["highlights"] == ranges, (q, w["snippet"], g["highlights"], ranges)
    return worst
