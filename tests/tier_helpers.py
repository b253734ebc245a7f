"""What the JS ranking tests share (test_lexical_tier.py, test_full_tier.py): extra queries, the
CPU reference as users run it (`websem query --json`) and a Node driver run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websem.text.snippets import utf16_ranges

# Beyond the judged queries: astral and non-ASCII text (UTF-16 highlights), identifiers, stopwords
# only, nothing at all, repeated terms (qtf).
EXTRA_QUERIES = (
    "Mach 𝐀 number ✈ boundary-layer", "heatTransfer flat_plate", "the of and", "", "flow flow flow",
    "naïve Reynolds-number café", "terrestrial hazard detectable",
)


def websem_query(bundle: Path, queries: list[str], mode: str, k: int, filters: dict[str, list[str]] | None,
                 tmp: Path) -> subprocess.CompletedProcess:
    """`websem query BUNDLE --queries FILE --mode MODE -k K --json [--filter field=value ...]`."""
    qfile = tmp / "queries.jsonl"
    qfile.write_text("".join(json.dumps({"_id": str(i), "text": q}) + "\n" for i, q in enumerate(queries)), "utf-8")
    args = [a for field, values in (filters or {}).items() for v in values for a in ("--filter", f"{field}={v}")]
    return subprocess.run(
        [sys.executable, "-m", "websem.build.cli", "query", str(bundle), "--queries", str(qfile), "--mode", mode,
         "-k", str(k), "--json", *args],
        capture_output=True, text=True, timeout=900,
    )


def run_driver(driver: Path, bundle: Path, requests: list[dict], tmp: Path) -> list[dict]:
    """The answers of a Node driver (tests/js/*_driver.mjs) to `requests` on `bundle`."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    rfile = tmp / "requests.json"
    rfile.write_text(json.dumps(requests), "utf-8")
    proc = subprocess.run([node, str(driver), str(bundle), str(rfile)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def assert_same_hits(got: list[dict], want: list[dict], queries: list[str], titles: dict, where: str,
                     score: str = "score") -> int:
    """The JS answers `got` equal `websem query --json`'s `want`, query by query: ids in order,
    scores to the bit, urls, snippets, titles (from `titles`: the CLI prints none), highlights in
    UTF-16 units, facet counts. Returns the number of hits compared."""
    hits = 0
    for q, g, w in zip(queries, got, want, strict=True):
        at_query = f"{where}query {q!r}"
        assert "error" not in g, f"{at_query}: {g}"
        assert [h["id"] for h in g["hits"]] == [h["id"] for h in w["hits"]], f"{at_query}: ranking differs"
        for gh, wh in zip(g["hits"], w["hits"], strict=True):
            at = f"{at_query}, hit {wh['id']!r}"
            assert gh["score"] == wh["score"], f"{at}: {score} {gh['score']!r} != {wh['score']!r}"
            assert (gh["url"], gh["snippet"]) == (wh["url"], wh["snippet"]), at
            assert gh["title"] == (titles[wh["id"]] or ""), at
            assert gh["highlights"] == utf16_ranges(wh["snippet"], wh["highlights"]), at
        assert g["facets"] == w["facets"], f"{at_query}: facets {g['facets']} vs {w['facets']}"
        hits += len(g["hits"])
    return hits
