"""A flat bundle's full tier ranking in JS (search.js with lexical-tier.js createFlatRanker and
fusion.js: no Pyodide) against the CPU reference as users run it, `websem query --json`, in every
mode, with and without filters, and with every fusion method and normalization set in
manifest.search (copies of a small faceted bundle with the table edited). The JS side gets the
CPU reference's own query embeddings (the model is not what is tested here: tests/browser and
test_model_split.py compare the runtime's embeddings), so equal means the same ids in order, the
same scores to the bit (BM25, cosine and fused), urls, titles, snippets, highlights (Python's code
points converted to UTF-16 units) and facet counts. The module runs under Node
(tests/js/full_tier_driver.mjs, wired as engine.js wires the full tier); the per-mode parity of
the whole runtime in Chromium, embeddings included, is tests/browser/test_browser_hybrid.py's and
test_parity.py's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tier_helpers import EXTRA_QUERIES, assert_same_hits, run_driver, websem_query

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "js" / "full_tier_driver.mjs"
MODES = ("hybrid", "semantic", "lexical")
FILTERS = {
    "none": None,
    "one-value": {"section": ["heat"]},
    "two-fields": {"section": ["aerodynamics", "structures"], "tags": ["wind-tunnel"]},
    "nothing-passes": {"section": ["no-such-section"]},
}
# manifest.search.fusion variants (the build writes convex, max, 0.6) and a smaller n, so hybrid
# fuses cut lists and facets count the union of two top n.
FUSIONS = {
    "convex-max": ({"method": "convex", "norm": "max", "alpha": 0.6}, 100),
    "convex-minmax": ({"method": "convex", "norm": "minmax", "alpha": 0.3}, 100),
    "convex-zscore": ({"method": "convex", "norm": "zscore", "alpha": 0.5}, 20),
    "convex-default-norm": ({"method": "convex", "alpha": 0.8}, 20),
    "rrf": ({"method": "rrf", "rrf_k": 60}, 100),
    "rrf-weighted": ({"method": "rrf", "rrf_k": 5, "alpha": 0.7}, 20),
}


def _queries(shared_data: Path, limit: int) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:limit]] + list(EXTRA_QUERIES)


@pytest.fixture(scope="module")
def faceted_flat(tmp_path_factory: pytest.TempPathFactory, faceted_corpus: Path, model_package: Path) -> Path:
    """A flat bundle of the faceted Cranfield subset (section and tags on every document)."""
    from websem.build.bundle import build_bundle

    out = tmp_path_factory.mktemp("faceted-flat") / "bundle"
    build_bundle(faceted_corpus, out, model=model_package, progress=False)
    return out


@pytest.fixture(scope="module")
def queries(shared_data: Path) -> list[str]:
    return _queries(shared_data, 40)


@pytest.fixture(scope="module")
def vectors(faceted_flat: Path, queries: list[str]) -> dict[str, list[float]]:
    """The CPU reference's query embeddings (`Searcher.embed`, what `websem query` ranks with)."""
    from websem.web.query import load_bundle

    searcher = load_bundle(faceted_flat)
    return {q: [float(x) for x in searcher.embed(q)] for q in queries}


def _with_table(bundle: Path, dest: Path, **changes) -> Path:
    """A copy of `bundle` (files symlinked) whose manifest.search has `changes`."""
    shutil.copytree(bundle, dest, copy_function=os.symlink)
    path = dest / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    manifest["search"].update(changes)
    path.unlink()
    path.write_text(json.dumps(manifest), "utf-8")
    return dest


def _assert_equal(bundle: Path, queries: list[str], vectors: dict, mode: str, k: int, filters: dict | None,
                  tmp: Path) -> int:
    proc = websem_query(bundle, queries, mode, k, filters, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    got = run_driver(DRIVER, bundle, [{"query": q, "k": k, "mode": mode, "filters": filters,
                        "vector": None if mode == "lexical" else vectors[q]} for q in queries], tmp)
    assert len(got) == len(want) == len(queries)
    docs = json.loads((bundle / "index" / "docs.json").read_text("utf-8"))
    titles = {d["id"]: d.get("title") for d in docs}
    for g, w in zip(got, want, strict=True):
        assert g.get("mode") == w["mode"] == mode, (g, w["mode"])
    return assert_same_hits(got, want, queries, titles, f"{mode}, filters {filters}, ")


@pytest.mark.parametrize("filters", FILTERS.values(), ids=FILTERS.keys())
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_equals_websem_query(faceted_flat: Path, queries: list[str], vectors: dict, tmp_path: Path,
                                        mode: str, filters: dict | None) -> None:
    manifest = json.loads((faceted_flat / "manifest.json").read_text("utf-8"))
    assert manifest["search"]["facets"] == ["tags", "section"], manifest["search"]
    hits = _assert_equal(faceted_flat, queries, vectors, mode, 7, filters, tmp_path)
    if filters == FILTERS["nothing-passes"]:
        assert hits == 0
    else:
        assert hits >= 7 * 40 * (0.5 if mode == "lexical" else 1), f"only {hits} hits compared"


@pytest.mark.parametrize("filters", [FILTERS["none"], FILTERS["two-fields"]], ids=["none", "two-fields"])
@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_settings_equal_websem_query(faceted_flat: Path, queries: list[str], vectors: dict, tmp_path: Path,
                                            name: str, filters: dict | None) -> None:
    fusion, n = FUSIONS[name]
    bundle = _with_table(faceted_flat, tmp_path / "bundle", fusion=fusion, n=n)
    hits = _assert_equal(bundle, queries, vectors, "hybrid", 10, filters, tmp_path)
    assert hits >= 10 * 40, f"only {hits} hits compared"


@pytest.mark.parametrize("filters", [FILTERS["none"], FILTERS["one-value"]], ids=["none", "one-value"])
@pytest.mark.parametrize("mode", MODES)
def test_k_above_n_equals_websem_query(faceted_flat: Path, queries: list[str], vectors: dict, tmp_path: Path,
                                       mode: str, filters: dict | None) -> None:
    """k > n: the dense side ranks max(k, n) documents, semantic facets count its top n only and
    hybrid fuses two top-n lists into fewer than k hits."""
    bundle = _with_table(faceted_flat, tmp_path / "bundle", n=4)
    assert _assert_equal(bundle, queries, vectors, mode, 12, filters, tmp_path) > 0


def test_fusion_settings_change_the_ranking(faceted_flat: Path, queries: list[str], vectors: dict,
                                            tmp_path: Path) -> None:
    """The fusion variants above are not one ranking in disguise: each orders the hybrid hits of
    these queries differently from the bundle's own setting."""
    def ranking(bundle: Path) -> list[list[str]]:
        requests = [{"query": q, "k": 10, "mode": "hybrid", "filters": None, "vector": vectors[q]} for q in queries]
        got = run_driver(DRIVER, bundle, requests, tmp_path)
        return [[h["id"] for h in r["hits"]] for r in got]

    base = ranking(faceted_flat)
    for name, (fusion, n) in FUSIONS.items():
        if name == "convex-max":
            continue
        assert ranking(_with_table(faceted_flat, tmp_path / name, fusion=fusion, n=n)) != base, name


def test_unknown_filter_field_message_equals_websem_query(faceted_flat: Path, vectors: dict, queries: list[str],
                                                          tmp_path: Path) -> None:
    proc = websem_query(faceted_flat, [queries[0]], "hybrid", 5, {"colour": ["red"]}, tmp_path)
    assert proc.returncode != 0
    want = [line for line in proc.stderr.splitlines() if "websem:" in line][-1]
    request = {"query": queries[0], "k": 5, "mode": "hybrid", "filters": {"colour": ["red"]},
               "vector": vectors[queries[0]]}
    got = run_driver(DRIVER, faceted_flat, [request], tmp_path)
    assert got == [{"error": want[want.index("websem:"):].strip()}]
