"""web/text/rules.py: the one definition of the query-time rules (manifest.search).

The bad-table cases shared with the JS runtime are in tests/fixtures/bad_bundles.json (run on a
real bundle by tests/test_query.py); these are the table's own contract."""

from __future__ import annotations

import json

import pytest
from websem.build.meta import FACET_FIELDS
from websem.text.errors import WebsemError
from websem.text.rules import (
    DEFAULT_FUSION,
    DEFAULTS,
    FACETS,
    MODES,
    check_fusion,
    check_mode,
    check_search,
    search_table,
)


def test_search_table_is_the_defaults_and_json_ready() -> None:
    table = search_table()
    assert list(table) == ["modes", "k", "n", "snippet_chars", "facets", "fusion"]
    assert table["modes"] == list(MODES) and table["modes"][0] == "hybrid"  # the default mode
    assert {key: table[key] for key in DEFAULTS} == DEFAULTS == {"k": 10, "n": 100, "snippet_chars": 240}
    assert table["facets"] == list(FACETS)
    assert table["fusion"] == {**DEFAULT_FUSION, "alpha": float(DEFAULT_FUSION["alpha"])}
    assert json.loads(json.dumps(table)) == table  # what the build writes is what readers get
    assert check_search(table) == table
    assert search_table(facets=["section"])["facets"] == ["section"]
    # the build reads facets from pages under the same names
    assert FACET_FIELDS == FACETS


def test_check_search_returns_a_copy_and_refuses_bad_tables() -> None:
    table = search_table()
    got = check_search(table)
    got["modes"].append("x")
    assert table["modes"] == list(MODES)
    for bad, message in (
        (None, "manifest.json has no search table"),
        ("hybrid", "manifest.search must be an object"),
        ({**table, "k": True}, "manifest.search.k is True but must be an integer >= 1"),
        ({**table, "n": "100"}, "manifest.search.n is '100' but must be an integer >= 1"),
        ({**table, "modes": "hybrid"}, "manifest.search.modes is 'hybrid' but must be a list"),
        ({**table, "facets": ["tags", "tags"]}, "manifest.search.facets"),
        ({k: v for k, v in table.items() if k != "fusion"}, "manifest.search.fusion is missing"),
        ({**table, "fusion": {"method": "rrf", "rrf_k": 1.5}}, "RRF needs an integer rrf_k >= 0"),
    ):
        with pytest.raises(WebsemError, match="^websem: ") as e:
            check_search(bad)
        assert message in str(e.value)


def test_one_wording_for_an_unknown_mode() -> None:
    assert check_mode("lexical") == "lexical"
    assert check_mode("lexical", ["lexical"]) == "lexical"
    for mode, allowed, message in (
        ("fuzzy", MODES, "websem: unknown search mode 'fuzzy'; use one of hybrid, semantic, lexical"),
        ("semantic", ("lexical", "hybrid"), "websem: unknown search mode 'semantic'; use one of lexical, hybrid"),
        (None, MODES, "websem: unknown search mode None; use one of hybrid, semantic, lexical"),
    ):
        with pytest.raises(WebsemError) as e:
            check_mode(mode, allowed)
        assert str(e.value) == message


def test_every_reader_says_it_the_same_way() -> None:
    """fuse, Ranker.results and websem query's API raise the very same unknown-mode message."""
    from websem.text.bm25 import Ranker, fuse

    messages = set()
    for call in (lambda: fuse("fuzzy"),
                 lambda: Ranker(None, [], []).results("q", mode="fuzzy"),
                 lambda: check_mode("fuzzy")):
        with pytest.raises(WebsemError) as e:
            call()
        messages.add(str(e.value))
    assert messages == {"websem: unknown search mode 'fuzzy'; use one of hybrid, semantic, lexical"}


def test_fusion_needs_an_explicit_method() -> None:
    """A table always names its method: no silent fallback to RRF or convex."""
    with pytest.raises(WebsemError, match="unknown fusion method None; use one of rrf, convex"):
        check_fusion({"alpha": 0.5})
    assert check_fusion({"method": "rrf", "rrf_k": 0, "alpha": 1}) == {"method": "rrf", "rrf_k": 0, "alpha": 1.0}
