"""Hybrid retrieval wired into `websem build` / `websem query` (issue #6, docs/hybrid.md).

Real bundles only: the session's Cranfield bundle (modes, fusion, highlights) and a small HTML +
Markdown site built here with the real model (filters, facets, front matter, the shipped
stemmer). nDCG per mode is in tests/test_query.py (it shares that module's embeddings)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websem.build.bundle import build_bundle
from websem.build.lexical import HEADING_WEIGHT, TITLE_WEIGHT
from websem.text.analyze import Analyzer
from websem.text.errors import WebsemError
from websem.text.rules import search_table
from websem.web.query import load_bundle, search, search_results

WEBSEM = Path(sys.executable).parent / "websem"

CRANFIELD_QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high "
    "speed aircraft",
    "boundary layer transition on a flat plate",
    "flutter of wings in supersonic flow",
    "heat transfer in hypersonic flow",
    "buckling of cylindrical shells under axial compression",
]


def _page(title: str, section: str, tags: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><title>{title}</title>'
            f'<meta name="section" content="{section}"><meta name="tags" content="{tags}">'
            f"</head><body><nav>Home</nav><main><h1>{title}</h1><p>{body}</p></main></body></html>")


SITE = {
    "library/socket.html": _page(
        "socket: low-level networking", "library", "network, io",
        "Create a socket, connect it to a server and set a timeout on blocking operations."),
    "library/ssl.html": _page(
        "ssl: TLS wrapper for socket objects", "library", "network, security",
        "Wrap a socket with TLS encryption and verify the server certificate."),
    "library/json.html": _page(
        "json: JSON encoder and decoder", "library", "data",
        "Serialize Python objects to JSON text and parse JSON documents back into objects."),
    "reference/timeouts.html": _page(
        "Timeouts in asynchronous code", "reference", "io",
        "A timeout cancels an awaitable that takes too long; the socket stays open."),
    "reference/grammar.html": _page(
        "Full grammar specification", "reference", "language",
        "The grammar of the language, written in a PEG notation with lookahead."),
    "howto/sorting.md": """---
title: Sorting how-to
section: howto
tags:
  - data
  - "algorithms"
lang: en
---
# Sorting how-to

Sort a list in place with list.sort or build a new sorted list with sorted; a key function
picks the value to compare.
""",
}


@pytest.fixture(scope="module")
def site_bundle(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> Path:
    root = tmp_path_factory.mktemp("hybrid-site")
    for rel, text in SITE.items():
        p = root / "site" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    out = root / "bundle"
    # HTML and Markdown: a folder with HTML pages indexes only those unless told otherwise.
    build_bundle(root / "site", out, model=model_package, progress=False, globs=("*.html", "*.md"))
    return out


@pytest.fixture(scope="module")
def cranfield(cranfield_bundle: Path):
    return load_bundle(cranfield_bundle)


def test_bundle_ships_lexical_index_stemmer_and_facets(site_bundle: Path) -> None:
    m = json.loads((site_bundle / "manifest.json").read_text())
    idx = m["index"]
    assert idx["files"]["lexical"] == "index/lexical.bin" and "index/lexical.bin" in m["files"]
    assert set(idx["lexical"]) == {"k1", "b", "terms", "fields"}  # a record; the rules are in search
    assert idx["lexical"]["k1"] == 1.2 and idx["lexical"]["b"] == 0.75
    assert idx["lexical"]["terms"] > 40  # the six pages' main content (navigation is not indexed)
    assert idx["lexical"]["fields"] == {"title": TITLE_WEIGHT, "heading": HEADING_WEIGHT}
    assert m["search"] == search_table(facets=["tags", "section", "language"])
    assert "fusion" not in idx and "facets" not in idx
    py = m["runtime"]["python_files"]
    assert "py/websem_text/bm25.py" in py and "py/snowballstemmer/english_stemmer.py" in py
    assert all(f in m["files"] for f in py)
    docs = {d["id"]: d for d in json.loads((site_bundle / "index/docs.json").read_text())}
    assert docs["library/ssl.html"]["meta"]["tags"] == ["network", "security"]
    assert docs["library/ssl.html"]["meta"]["section"] == "library"
    assert docs["library/ssl.html"]["meta"]["language"] == "en"  # from <html lang>
    md = docs["howto/sorting.md"]["meta"]
    assert md["tags"] == ["data", "algorithms"] and md["section"] == "howto"
    assert md["language"] == "en"
    # The shipped py/ folder alone (no site-packages, as in Pyodide) ranks like websem query.
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1] + '/py');"
        "from websem_text.bm25 import Ranker; import snowballstemmer;"
        "b = sys.argv[1]; r = Ranker(open(b + '/index/lexical.bin', 'rb').read(),"
        " json.load(open(b + '/index/chunks.json')), json.load(open(b + '/index/docs.json')),"
        " search=json.load(open(b + '/manifest.json'))['search']); "
        "print(snowballstemmer.__file__);"
        "print(json.dumps(r.results('socket timeouts', mode='lexical', k=3)))"
    )
    proc = subprocess.run([sys.executable, "-S", "-I", "-c", code, str(site_bundle)],
                          capture_output=True, text=True, check=True)
    stem_file, res = proc.stdout.splitlines()
    assert stem_file.startswith(str(site_bundle / "py" / "snowballstemmer"))
    want = search_results(site_bundle, ["socket timeouts"], k=3, mode="lexical")[0]
    assert json.loads(res)["hits"] == want["hits"]


def test_three_modes_on_cranfield(cranfield, cranfield_bundle: Path) -> None:
    fresh = load_bundle(cranfield_bundle)
    lex = fresh.search(CRANFIELD_QUERIES, 10, mode="lexical")
    assert fresh._embedder is None  # lexical mode never runs the model
    for mode in ("hybrid", "semantic", "lexical"):
        for hits in cranfield.search(CRANFIELD_QUERIES, 10, mode=mode):
            assert len(hits) == 10
            assert all(set(h) == {"id", "score", "title", "url", "snippet", "highlights"}
                       for h in hits)
            assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert lex == cranfield.search(CRANFIELD_QUERIES, 10, mode="lexical")
    with pytest.raises(WebsemError, match=r"'fuzzy'.*hybrid, semantic, lexical"):
        search(cranfield_bundle, ["wing"], mode="fuzzy")
    # Hybrid = the manifest's fusion over each side's top 100, recomputed from the two
    # single-mode rankings: dense weight alpha, each side's scores divided by its best.
    table = json.loads((cranfield_bundle / "manifest.json").read_text())["search"]
    fusion = table["fusion"]
    assert fusion["method"] == "convex" and fusion["norm"] == "max"
    alpha, n = fusion["alpha"], table["n"]
    for q in CRANFIELD_QUERIES:
        sem = {h["id"]: h["score"] for h in cranfield.search([q], n, mode="semantic")[0]}
        bm = {h["id"]: h["score"] for h in cranfield.search([q], n, mode="lexical")[0]}
        top_s, top_b = max(sem.values()), max(bm.values())
        fused = {d: alpha * (sem[d] / top_s if d in sem else 0.0) + (1 - alpha) * (bm[d] / top_b if d in bm else 0.0)
                 for d in sem.keys() | bm.keys()}
        hyb = cranfield.search([q], 10, mode="hybrid")[0]
        # same operations in the same order: bit-identical scores
        assert all(h["score"] == fused[h["id"]] for h in hyb)
        assert [h["score"] for h in hyb] == sorted(fused.values(), reverse=True)[:10]


def test_the_manifest_search_table_rules_the_query(cranfield, cranfield_bundle: Path, tmp_path: Path) -> None:
    """`websem query` takes fusion, n, k and the modes from manifest.search, nowhere else: the
    same bundle with RRF (k=60) over each side's top 50, k=3 and lexical first ranks exactly so."""
    b = tmp_path / "rrf"
    shutil.copytree(cranfield_bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    m["search"].update(fusion={"method": "rrf", "rrf_k": 60}, n=50, k=3, modes=["lexical", "hybrid"])
    (b / "manifest.json").write_text(json.dumps(m))
    changed = load_bundle(b)
    n, rrf_k = 50, 60
    for q in CRANFIELD_QUERIES:
        sem = [h["id"] for h in cranfield.search([q], n, mode="semantic")[0]]
        bm = [h["id"] for h in cranfield.search([q], n, mode="lexical")[0]]
        fused: dict[str, float] = {}
        for ranking in (sem, bm):
            for r, d in enumerate(ranking, 1):
                fused[d] = fused.get(d, 0.0) + 1.0 / (rrf_k + r)
        hyb = changed.search([q], 10, mode="hybrid")[0]
        # same additions in the same order (semantic, then lexical): bit-identical scores
        assert all(h["score"] == fused[h["id"]] for h in hyb)
        assert [h["score"] for h in hyb] == sorted(fused.values(), reverse=True)[:10]
        # no k, no mode: the table's k (3) and first mode (lexical)
        assert changed.search([q])[0] == cranfield.search([q], 3, mode="lexical")[0]
    with pytest.raises(WebsemError, match="unknown search mode 'semantic'; use one of lexical, hybrid"):
        changed.query("wing", mode="semantic")
    proc = subprocess.run([str(WEBSEM), "query", str(b), "flutter of wings", "--json"],
                          capture_output=True, text=True, check=True)
    line = json.loads(proc.stdout)
    assert line["mode"] == "lexical" and len(line["hits"]) == 3


def test_highlights_point_at_query_terms(cranfield) -> None:
    analyzer = Analyzer()
    total = 0
    for q in CRANFIELD_QUERIES:
        qterms = set(analyzer.terms(q))
        for mode in ("lexical", "hybrid", "semantic"):
            for h in cranfield.search([q], 10, mode=mode)[0]:
                sn, ranges = h["snippet"], h["highlights"]
                assert all(isinstance(x, int) for r in ranges for x in r)  # ranges, not HTML
                if mode == "lexical":
                    assert ranges, (q, h["id"])  # every BM25 hit contains a query term
                prev_end = -1
                for s, e in ranges:
                    assert prev_end < s < e <= len(sn), ranges  # sorted, merged, in bounds
                    prev_end = e
                    assert set(analyzer.terms(sn[s:e])) & qterms, (q, sn[s:e])
                    total += 1
    assert total > 200


def test_filters_and_facets_on_a_site(site_bundle: Path, tmp_path: Path) -> None:
    s = load_bundle(site_bundle)
    # Lexical candidates = every document with a query term: socket (3 pages) and timeout (2).
    res = s.query("socket timeout", 10, mode="lexical")
    assert {h["id"] for h in res["hits"]} == {
        "library/socket.html", "library/ssl.html", "reference/timeouts.html"}
    assert res["facets"]["section"] == [["library", 2], ["reference", 1]]
    assert res["facets"]["tags"] == [["io", 2], ["network", 2], ["security", 1]]
    assert res["facets"]["language"] == [["en", 3]]
    # Hybrid candidates: the semantic side's top 100 holds all 6 pages.
    f = s.query("socket timeout", 10, mode="hybrid", filters={"section": "library"})
    assert {h["id"] for h in f["hits"]} == {
        "library/socket.html", "library/ssl.html", "library/json.html"}
    assert f["facets"]["section"] == [["library", 3]]
    assert f["facets"]["tags"] == [["network", 2], ["data", 1], ["io", 1], ["security", 1]]
    # Values of one field are OR-ed, fields AND-ed.
    f = s.query("socket timeout", 10, mode="semantic",
                filters={"tags": ["io", "data"], "section": "reference"})
    assert [h["id"] for h in f["hits"]] == ["reference/timeouts.html"]
    f = s.query("sorting a list", 10, mode="hybrid", filters={"tags": ["data"]})
    assert f["hits"][0]["id"] == "howto/sorting.md"
    assert {h["id"] for h in f["hits"]} == {"howto/sorting.md", "library/json.html"}
    assert f["facets"]["section"] == [["howto", 1], ["library", 1]]
    with pytest.raises(WebsemError, match="unknown filter field 'author'.*tags, section, language"):
        s.query("socket", 5, filters={"author": "Ada"})
    # CLI: repeatable --filter, facets in --json
    proc = subprocess.run([str(WEBSEM), "query", str(site_bundle), "socket timeout", "--json",
                           "--mode", "lexical", "--filter", "section=reference",
                           "--filter", "tags=io"], capture_output=True, text=True, check=True)
    line = json.loads(proc.stdout)
    assert [h["id"] for h in line["hits"]] == ["reference/timeouts.html"]
    assert line["facets"]["section"] == [["reference", 1]]
    table = subprocess.run([str(WEBSEM), "query", str(site_bundle), "socket timeout",
                            "--filter", "section=library"], capture_output=True, text=True,
                           check=True)
    assert "library/socket.html" in table.stdout and "reference/" not in table.stdout
    assert "section: library (3)" in table.stdout
