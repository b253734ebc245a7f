"""The lexical tier (web/src/lexical-tier.js, what the runtime answers with before Pyodide and the
model are up) against the CPU reference as users run it, `websem query --mode lexical --json`, on
real bundles: the Cranfield bundle with every Cranfield query, and a flat bundle of the faceted
Cranfield subset with filters on one field, several values and two fields; the same on the
partitioned copies of both (lexical shards and document fragments fetched per query). Equal means the same
ids in order, the same BM25 scores to the bit, titles, urls, snippets, highlights (Python's code
points converted to UTF-16 units) and facet counts; an unknown filter field gets the same message.
The module runs under Node (tests/js/lexical_tier_driver.mjs); tests/browser/test_progressive.py
checks it through the engine in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tier_helpers import EXTRA_QUERIES, assert_same_hits, run_driver, websem_query

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "js" / "lexical_tier_driver.mjs"


def _queries(shared_data: Path, limit: int | None = None) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text("utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return (texts[:limit] if limit else texts) + list(EXTRA_QUERIES)




def _titles(bundle: Path) -> dict:
    index = json.loads((bundle / "manifest.json").read_text("utf-8"))["index"]
    if index.get("layout") == "partitioned":  # the documents live in the fragments
        template = index["shards"]["fragments"]
        docs = [d for f in range(index["fragments"])
                for d in json.loads((bundle / template.replace("{}", str(f))).read_text("utf-8"))["docs"]]
    else:
        docs = json.loads((bundle / index["files"]["docs"]).read_text("utf-8"))
    return {d["id"]: d.get("title") for d in docs}


def _assert_equal(bundle: Path, queries: list[str], k: int, filters: dict | None, tmp: Path) -> int:
    proc = websem_query(bundle, queries, "lexical", k, filters, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    got = run_driver(DRIVER, bundle, [{"query": q, "k": k, "filters": filters} for q in queries], tmp)
    assert len(got) == len(want) == len(queries)
    titles = _titles(bundle)
    return assert_same_hits(got, want, queries, titles, f"filters {filters}, ", score="BM25")


def test_cranfield_every_query_equals_websem_query(cranfield_bundle: Path, shared_data: Path, tmp_path: Path) -> None:
    queries = _queries(shared_data)
    hits = _assert_equal(cranfield_bundle, queries, 10, None, tmp_path)
    assert hits >= 10 * 225, f"only {hits} hits compared"


@pytest.fixture(scope="module")
def faceted_flat(tmp_path_factory: pytest.TempPathFactory, faceted_corpus: Path, model_package: Path) -> Path:
    """A flat bundle of the faceted Cranfield subset (section and tags on every document)."""
    from websem.build.bundle import build_bundle

    out = tmp_path_factory.mktemp("faceted-flat") / "bundle"
    build_bundle(faceted_corpus, out, model=model_package, progress=False)
    return out


@pytest.mark.parametrize("filters", [
    None,
    {"section": ["heat"]},
    {"tags": ["theory", "supersonic"]},
    {"section": ["aerodynamics", "structures"], "tags": ["wind-tunnel"]},
    {"section": ["no-such-section"]},
], ids=["none", "one-value", "two-values", "two-fields", "nothing-passes"])
def test_faceted_filters_and_facets_equal_websem_query(faceted_flat: Path, shared_data: Path, tmp_path: Path,
                                                       filters: dict | None) -> None:
    manifest = json.loads((faceted_flat / "manifest.json").read_text("utf-8"))
    assert manifest["search"]["facets"] == ["tags", "section"], manifest["search"]
    hits = _assert_equal(faceted_flat, _queries(shared_data, 60), 7, filters, tmp_path)
    assert hits > 0 or filters == {"section": ["no-such-section"]}


def test_partitioned_every_query_equals_websem_query(cranfield_partitioned: Path, shared_data: Path,
                                                    tmp_path: Path) -> None:
    hits = _assert_equal(cranfield_partitioned, _queries(shared_data), 10, None, tmp_path)
    assert hits >= 10 * 225, f"only {hits} hits compared"


@pytest.mark.parametrize("filters", [
    None,
    {"section": ["heat"]},
    {"tags": ["theory", "supersonic"]},
    {"section": ["aerodynamics", "structures"], "tags": ["wind-tunnel"]},
], ids=["none", "one-value", "two-values", "two-fields"])
def test_partitioned_filters_and_facets_equal_websem_query(faceted_partitioned: Path, shared_data: Path,
                                                           tmp_path: Path, filters: dict | None) -> None:
    assert _assert_equal(faceted_partitioned, _queries(shared_data, 60), 7, filters, tmp_path) > 0


def test_unknown_filter_field_message_equals_websem_query(faceted_flat: Path, tmp_path: Path) -> None:
    proc = websem_query(faceted_flat, ["heat"], "lexical", 5, {"colour": ["red"]}, tmp_path)
    assert proc.returncode != 0
    want = [line for line in proc.stderr.splitlines() if "websem:" in line][-1]
    got = run_driver(DRIVER, faceted_flat, [{"query": "heat", "k": 5, "filters": {"colour": ["red"]}}], tmp_path)
    assert got == [{"error": want[want.index("websem:"):].strip()}]
