"""``websem_text.bridge`` (web/text/bridge.py) in CPython: the Python the browser and edge runtime
call in Pyodide. JS values are stood in for by what Pyodide hands Python for them: bytes-like
objects and lists for typed arrays and arrays, None for null. (The same functions run inside
Pyodide, driven by web/src/python.js, in tests/js/search.test.mjs and tests/js/bundle.test.mjs.)"""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import pytest
from websem.text import bridge
from websem.text.analyze import Analyzer
from websem.text.bm25 import LexicalIndex, Ranker, aggregate_docs
from websem.text.errors import WebsemError
from websem.text.rules import search_table


def test_js_value_helpers_accept_what_pyodide_passes() -> None:
    assert bridge.as_bytes(b"{}") == b"{}"
    assert bridge.as_bytes(memoryview(b"ab")) == b"ab"
    assert bridge.as_bytes("é") == "é".encode()
    assert bridge.as_list(None) == []
    assert bridge.as_list(array("d", [0.5, 1e-300])) == [0.5, 1e-300]
    assert bridge.as_list(memoryview(array("i", [3, 1]))) == [3, 1]
    assert bridge.as_list((1, 2)) == [1, 2]
    assert bridge.is_absent(None)
    assert bridge.is_absent(object())  # a JsNull: no to_py, no sequence
    assert not bridge.is_absent([]) and not bridge.is_absent(b"")

    class Proxy:  # the one JsProxy method the helpers use
        def __init__(self, data: bytes) -> None:
            self.data = data

        def to_py(self) -> memoryview:
            return memoryview(self.data)

    assert not bridge.is_absent(Proxy(b"x"))
    assert bridge.as_bytes(Proxy(b"xyz")) == b"xyz"
    assert bridge.as_list(Proxy(array("d", [2.5]).tobytes())) == list(memoryview(array("d", [2.5]).tobytes()))


def test_encode_matches_the_wordpiece_tokenizer(source_model_dir: Path) -> None:
    from websem.text.wordpiece import WordPieceTokenizer

    path = source_model_dir / "tokenizer.json"
    bridge.setup(32, str(path))
    assert bridge.max_length() == 32
    text = "How do I parse JSON? " * 20
    ids, mask, types = bridge.encode_arrays(text)
    want = WordPieceTokenizer.from_json(path.read_text(encoding="utf-8"), max_length=32).encode(text)
    assert (ids.typecode, mask.typecode, types.typecode) == ("q", "q", "q")
    assert list(ids) == want.ids and len(ids) == 32
    assert list(mask) == [1] * 32 and list(types) == [0] * 32


CHUNKS = [
    {"doc": 0, "text": "Install the package with pip; the cache folder is configurable."},
    {"doc": 0, "text": "On Windows set the cache path first."},
    {"doc": 1, "text": "Hybrid search fuses BM25 and dense vector scores."},
    {"doc": 2, "text": "Deploy the bundle to a static host or an edge function."},
]
DOCS = [
    {"id": "install", "title": "Install", "url": "install.html", "meta": {"section": "guide"}},
    {"id": "search", "title": "Search", "url": "search.html", "meta": {"section": "reference"}},
    {"id": "deploy", "title": "Deploy", "url": "deploy.html", "meta": {"section": "guide"}},
]
DENSE = {0: 0.25, 1: 0.5, 2: 0.75, 3: 0.125}  # chunk -> dense score


@pytest.fixture()
def ranker() -> tuple[Ranker, LexicalIndex]:
    analyzer = Analyzer()
    index = LexicalIndex.build([analyzer.terms(c["text"]) for c in CHUNKS], analyzer=analyzer.config())
    table = search_table(facets=["section"])
    n = bridge.ranker_init(json.dumps(CHUNKS).encode(), json.dumps(DOCS).encode(),
                           json.dumps(index.analyzer), json.dumps(table))
    assert n == len(DOCS)
    return Ranker(index, CHUNKS, DOCS, search=table), index


def _ranking(hits) -> list[list]:
    return [[h.doc for h in hits], [h.score for h in hits], [h.chunk for h in hits]]


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "lexical"])
@pytest.mark.parametrize("filters", [None, {"section": ["guide"]}])
def test_plan_and_finish_equal_the_ranker(ranker, mode: str, filters: dict | None) -> None:
    """plan + (the JS side's scoring, done here in Python) + finish == Ranker.results alone."""
    reference, index = ranker
    query = "cache path for pip install"
    fj = json.dumps(filters) if filters else ""
    plan = json.loads(bridge.plan(query, fj))
    allowed = None if plan["allowed"] is None else frozenset(plan["allowed"])
    assert plan["terms"] == reference.analyzer.terms(query)
    assert allowed == reference.allowed(filters)
    sem = aggregate_docs(DENSE, reference.chunk_doc, allowed=allowed)
    lex = None
    if mode != "semantic":
        lex = aggregate_docs(index.scores(plan["terms"]), reference.chunk_doc, allowed=allowed)
    got = json.loads(bridge.finish(query, mode, 2, _ranking(sem), None if lex is None else _ranking(lex), fj))
    want = reference.results(query, mode=mode, semantic=sem, filters=filters, k=2, utf16=True)
    assert got == json.loads(json.dumps(want))
    assert got["hits"], "the query matches"


def test_finish_refuses_an_unknown_mode_with_the_one_wording(ranker) -> None:
    with pytest.raises(WebsemError, match="unknown search mode 'fuzzy'; use one of hybrid, semantic, lexical"):
        bridge.finish("x", "fuzzy", 2, [[], [], []], None, "")


def test_ranker_init_refuses_a_missing_or_bad_search_table() -> None:
    chunks, docs = json.dumps(CHUNKS).encode(), json.dumps(DOCS).encode()
    with pytest.raises(WebsemError, match=r"no search table \(manifest.search\)"):
        bridge.ranker_init(chunks, docs, None, "null")
    bad = {**search_table(), "k": 0}
    with pytest.raises(WebsemError, match="manifest.search.k is 0 but must be an integer >= 1"):
        bridge.ranker_init(chunks, docs, None, json.dumps(bad))


def test_a_ranking_must_have_three_parts(ranker) -> None:
    with pytest.raises(WebsemError, match=r"a ranking is \[docs, scores, chunks\], got 2 items"):
        bridge.finish("cache", "semantic", 2, [[0], [0.5]], None, "")


# --------------------------------------------------------------------------- partitioned bundles

FACETS = {"section": {"guide": [0, 2], "reference": [1]}}  # DOCS' meta as table.json holds it


def _rows(hits: list, chunks: list = CHUNKS, docs: list = DOCS) -> str:
    """The rows the JS runtime builds from fragments for ``render``: each hit's document and chunk."""
    return json.dumps([{"id": docs[d]["id"], "title": docs[d]["title"], "url": docs[d]["url"],
                        "anchor": chunks[c].get("anchor", ""), "text": chunks[c]["text"], "score": s}
                       for d, c, s in hits])


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "lexical"])
@pytest.mark.parametrize("filters", [None, {"section": ["guide"]}, {"section": "reference"}])
@pytest.mark.parametrize("partitioned", [False, True])
def test_rank_and_render_equal_finish(ranker, mode: str, filters: dict | None, partitioned: bool) -> None:
    """rank + (the fragments' rows) + render == finish == Ranker.results, with the ranker set up
    from chunks/docs (flat) or from table.json's facets alone (partitioned)."""
    reference, index = ranker
    query = "cache path for pip install, deploy or hybrid search"
    fj = json.dumps(filters) if filters else ""
    sem = aggregate_docs(DENSE, reference.chunk_doc, allowed=reference.allowed(filters))
    lex = None
    if mode != "semantic":
        lex = aggregate_docs(index.scores(reference.analyzer.terms(query)), reference.chunk_doc,
                             allowed=reference.allowed(filters))
    args = (query, mode, 3, _ranking(sem), None if lex is None else _ranking(lex), fj)
    want = json.loads(bridge.finish(*args))
    if partitioned:
        table = search_table(facets=["section"])
        assert bridge.ranker_init_partitioned(len(DOCS), json.dumps(FACETS), json.dumps(index.analyzer),
                                              json.dumps(table)) == len(DOCS)
        allowed = reference.allowed(filters)
        assert json.loads(bridge.plan(query, fj)) == {"terms": reference.analyzer.terms(query),
                                                      "allowed": None if allowed is None else sorted(allowed)}
    ranked = json.loads(bridge.rank(*args))
    hits, facets = reference.rank(query, mode=mode, semantic=sem, lexical=lex, filters=filters, k=3)
    assert ranked == {"hits": [[h.doc, h.chunk, h.score] for h in hits], "facets": facets}
    assert ranked["facets"] == want["facets"] and ranked["hits"], "the query matches"
    assert json.loads(bridge.render(query, _rows(ranked["hits"]))) == {"hits": want["hits"]}


def test_a_partitioned_ranker_has_no_rows_of_its_own(ranker) -> None:
    _, index = ranker
    bridge.ranker_init_partitioned(3, json.dumps(FACETS), json.dumps(index.analyzer),
                                   json.dumps(search_table(facets=["section"])))
    with pytest.raises(WebsemError, match="holds no chunks or docs .a partitioned bundle.: fetch the rows"):
        bridge.finish("cache", "semantic", 2, [[0], [0.5], [0]], None, "")
    with pytest.raises(WebsemError, match="with a numeric score each"):
        bridge.render("cache", json.dumps([{"id": "install", "text": "cache"}]))
    with pytest.raises(WebsemError, match="unknown filter field 'tags'; this bundle has filters for section"):
        bridge.plan("cache", json.dumps({"tags": "x"}))


def test_meta_from_facets_rebuilds_each_documents_values() -> None:
    from websem.text.bm25 import allowed_docs, facet_counts, meta_from_facets

    facets = {"tags": {"a": [0, 2], "b": [2]}, "section": {"guide": [0, 1]}}
    meta = meta_from_facets(facets, 4)
    assert meta == [{"tags": ["a"], "section": ["guide"]}, {"section": ["guide"]}, {"tags": ["a", "b"]}, {}]
    flat = [{"tags": ["a"], "section": "guide"}, {"section": "guide"}, {"tags": ["b", "a"]}, {}]
    for filters in ({"tags": "b"}, {"tags": ["a", "b"], "section": "guide"}, {"section": ["guide"]}):
        assert allowed_docs(meta, filters) == allowed_docs(flat, filters)
    assert facet_counts(range(4), meta) == facet_counts(range(4), flat)
    assert meta_from_facets({}, 2) == [{}, {}]
    with pytest.raises(WebsemError, match="facet tags='a' lists document 4, not one of the bundle's 4"):
        meta_from_facets({"tags": {"a": [4]}}, 4)
