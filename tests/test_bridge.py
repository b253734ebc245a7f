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
