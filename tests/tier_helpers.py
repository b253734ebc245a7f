"""What the JS ranking tests share (test_lexical_tier.py, test_full_tier.py): extra queries, the
CPU reference as users run it (`websem query --json`) and a Node driver run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
