"""Hybrid retrieval in real Chromium: modes, highlights, filters and facets of the page against
`websem query --json`, on the real Cranfield bundle and on a small HTML site with
`<meta name="section">` built here. The per-mode top-10 parity on Cranfield is test_parity.py's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

N_QUERIES = 30  # >= 30 real Cranfield queries per mode

SEARCH_ALL_JS = """async ([xs, opts]) => {
    const out = [];
    for (const x of xs) out.push(await window.engine.searchFull(x, opts));
    return out;
}"""

# Slices taken in the page: JS strings are UTF-16, so this is what a UI would highlight.
SLICES_JS = """(hits) => hits.map((h) => h.highlights.map(([s, e]) => h.snippet.slice(s, e)))"""

# The small site: section facet values with known counts; one page with astral characters before
# and inside the matches (emoji: 2 UTF-16 units each; U+20000.. CJK Extension B: 2 units, and one
# token per ideograph in the analyzer), so code-point ranges would be off in JS.
SITE = {
    "guides/install.html": ("guides", "Installing the rocket engine",
                            "Install the rocket engine on the launch pad. Check the fuel lines "
                            "before ignition and keep the propulsion manual at hand."),
    "guides/fuel.html": ("guides", "Fuel handling guide",
                         "Liquid oxygen and kerosene fuel must be stored apart. Rocket fuel "
                         "handling needs gloves and a second engineer."),
    "guides/launch.html": ("guides", "Launch day checklist",
                           "On launch day, verify telemetry, weather and the rocket propulsion "
                           "system. Abort when the wind exceeds limits."),
    "reference/engine.html": ("reference", "Engine reference",
                              "Thrust, specific impulse and chamber pressure of each rocket "
                              "engine model, with propulsion efficiency tables."),
    "reference/units.html": ("reference", "Units and constants",
                             "Standard gravity, pressure units and conversion factors used "
                             "across the manuals."),
    "reference/unicode.html": ("reference", "Astral characters",
                               "\U0001F680\U0001F680 Propulsion \U0001F525 notes: the \U00020000"
                               "\U00020001 glyphs and \U0001F9EA rocket \U0001F680 propulsion "
                               "tests by \U0001F469\u200D\U0001F52C engineers."),
    "news/first-flight.html": ("news", "First flight",
                               "The first rocket flight reached orbit; propulsion performed "
                               "as the engine reference predicted."),
}
SECTION_COUNTS = {"guides": 3, "reference": 3, "news": 1}


def _site_html(section: str, title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="section" content="{section}"></head>'
            f"<body><h1>{title}</h1><p>{body}</p></body></html>")


@pytest.fixture(scope="module")
def search_page(browser_context, cranfield_url, bt):
    page, log = bt.open_search_page(browser_context, cranfield_url)
    assert page.evaluate("() => window.engine.info.modes") == list(bt.MODES)
    yield page, log
    page.close()


@pytest.fixture(scope="module")
def cranfield_texts(shared_data: Path) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:N_QUERIES]]


@pytest.fixture(scope="module")
def site_bundle(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> Path:
    from websem.build.bundle import build_bundle

    root = tmp_path_factory.mktemp("site")
    src = root / "site"
    for rel, (section, title, body) in SITE.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(_site_html(section, title, body), encoding="utf-8")
    out = root / "bundle"
    build_bundle(src, out, model=model_package, progress=False)
    return out


@pytest.fixture(scope="module")
def site_page(browser_context, site_bundle: Path, serve, bt):
    page, log = bt.open_search_page(browser_context, serve(site_bundle))
    yield page, log
    page.close()


def _analyzer(bundle: Path):
    from websem.text.analyze import Analyzer
    from websem.text.bm25 import LexicalIndex

    manifest = json.loads((bundle / "manifest.json").read_text())
    blob = (bundle / manifest["index"]["files"]["lexical"]).read_bytes()
    return Analyzer.from_config(LexicalIndex.from_bytes(blob).analyzer)


def test_default_mode_is_hybrid_and_unknown_mode_is_refused(search_page):
    page, _ = search_page
    out = page.evaluate("""async () => {
        const q = "heat transfer in hypersonic flow";
        const plain = await window.engine.search(q);
        const hybrid = await window.engine.search(q, {mode: "hybrid"});
        let err = null;
        try { await window.engine.search(q, {mode: "fuzzy"}); } catch (e) { err = e.message; }
        return {same: JSON.stringify(plain) === JSON.stringify(hybrid), n: plain.length, err};
    }""")
    assert out["same"] and out["n"] == 10
    assert out["err"].startswith("websem:")
    assert "fuzzy" in out["err"] and all(m in out["err"] for m in ("hybrid", "semantic", "lexical"))


def test_cranfield_highlights_cover_query_terms(search_page, browser_bundle: Path, cranfield_texts):
    page, _ = search_page
    analyzer = _analyzer(browser_bundle)
    results = page.evaluate(SEARCH_ALL_JS, [cranfield_texts, {"k": 10, "mode": "lexical"}])
    n_ranges = 0
    for q, res in zip(cranfield_texts, results, strict=True):
        qterms = set(analyzer.terms(q))
        for piece_list in page.evaluate(SLICES_JS, res["hits"]):
            for piece in piece_list:
                n_ranges += 1
                assert qterms & set(analyzer.terms(piece)), f"{q!r}: highlight {piece!r} is no query term"
    assert n_ranges >= len(cranfield_texts)  # every lexical top hit shows at least one term


def test_astral_highlights_in_utf16(site_page, site_bundle: Path):
    """Emoji and CJK Extension B before and inside the matches: the page's ranges must still slice
    exactly the matched words out of the JS snippet."""
    page, _ = site_page
    analyzer = _analyzer(site_bundle)
    query = "propulsion \U00020001"
    res = page.evaluate(SEARCH_ALL_JS, [[query], {"k": 10, "mode": "lexical"}])[0]
    top = next(h for h in res["hits"] if h["url"].startswith("reference/unicode.html"))
    pieces = page.evaluate(SLICES_JS, [top])[0]
    assert pieces == ["Propulsion", "\U00020001", "propulsion"], pieces
    qterms = set(analyzer.terms(query))
    assert all(qterms & set(analyzer.terms(p)) for p in pieces)
    # Code-point ranges (Python string indices) would land elsewhere in the JS string.
    assert top["highlights"] != _codepoint_ranges(top["snippet"], pieces)


def _codepoint_ranges(snippet: str, pieces: list[str]) -> list[list[int]]:
    out, at = [], 0
    for p in pieces:
        i = snippet.index(p, at)
        out.append([i, i + len(p)])
        at = i + len(p)
    return out


def test_section_filter_and_facets(site_page, site_bundle: Path, bt, search_mode: str):
    """Every mode, with and without a section filter: hits (snippets and UTF-16 highlights on a
    page with astral characters included) and facet counts equal `websem query --json`'s."""
    page, _ = site_page
    query = "rocket propulsion engine"
    opts = {"k": 10, "mode": search_mode}
    full = page.evaluate(SEARCH_ALL_JS, [[query], opts])[0]
    filtered = page.evaluate(SEARCH_ALL_JS, [[query], {**opts, "filters": {"section": "reference"}}])[0]
    want_full = bt.websem_query_json(site_bundle, [query], search_mode)
    want_filtered = bt.websem_query_json(site_bundle, [query], search_mode, filters={"section": ["reference"]})
    bt.assert_same_results(site_bundle, search_mode, [query], [full], want_full, engine="chromium")
    bt.assert_same_results(site_bundle, search_mode, [query], [filtered], want_filtered, engine="chromium")
    # Ground truth from the site itself: semantic/hybrid candidates are the top n=100 of 7 pages,
    # so the unfiltered facets count every page.
    # "units" is the one page with none of the words (lexical counts matching pages only).
    want = SECTION_COUNTS if search_mode != "lexical" else {**SECTION_COUNTS, "reference": 2}
    assert dict(map(tuple, full["facets"]["section"])) == want
    assert dict(map(tuple, filtered["facets"]["section"])).keys() == {"reference"}
    sections = {rel: sec for rel, (sec, _, _) in SITE.items()}
    assert filtered["hits"] and all(sections[h["id"]] == "reference" for h in filtered["hits"])
    assert {h["id"] for h in full["hits"]} > {h["id"] for h in filtered["hits"]}


def test_unknown_filter_field_is_refused(site_page):
    page, _ = site_page
    err = page.evaluate("""async () => {
        try { await window.engine.search("rocket", {filters: {sektion: "news"}}); return null; }
        catch (e) { return e.message; } }""")
    assert err.startswith("websem:") and "sektion" in err and "section" in err


def test_component_mode_filter_and_marks(site_page):
    """The <websem-search> UI: mode selector (default hybrid), a section filter filled from the
    facets with counts, and snippets whose highlights are <mark> elements holding plain text."""
    page, log = site_page
    root = "document.querySelector('websem-search').shadowRoot"
    assert page.evaluate(f"() => {root}.querySelector('select.mode').value") == "hybrid"
    page.locator("websem-search input").fill("rocket propulsion")
    page.wait_for_function(f"() => {root}.querySelectorAll('li').length > 0 && "
                           f"{root}.querySelector('select.filter').options.length > 1")
    options = page.evaluate(
        f"() => [...{root}.querySelector('select.filter').options].map(o => [o.value, o.textContent])")
    assert options[0][0] == ""  # "all sections"
    assert ["reference", "reference (3)"] in options
    marks = page.evaluate(f"() => [...{root}.querySelectorAll('li mark')].map(m => m.textContent)")
    assert marks and all(m.lower() in ("rocket", "propulsion") for m in marks), marks
    page.select_option("websem-search select.filter", "news")
    page.wait_for_function(f"() => [...{root}.querySelectorAll('li')].every(li => li.dataset.id.startsWith('news/'))"
                           f" && {root}.querySelectorAll('li').length === 1")
    page.select_option("websem-search select.mode", "lexical")
    page.wait_for_function("() => document.querySelector('websem-search').getAttribute('state') === 'ready'")
    assert page.evaluate(f"() => {root}.querySelector('li').dataset.id") == "news/first-flight.html"
    assert not log.errors(), log.errors()


def test_tampered_lexical_index_is_refused(browser_context, browser_bundle: Path, serve, bt, tmp_path: Path):
    """index/lexical.bin is verified like every bundle file before the JS scorer reads it."""
    bad = bt.linked_copy(browser_bundle, tmp_path / "bundle")
    blob = bytearray(bt.make_real(bad / "index" / "lexical.bin").read_bytes())
    blob[-1] ^= 0x01  # one bit in the last posting
    (bad / "index" / "lexical.bin").write_bytes(bytes(blob))
    message = bt.load_error(browser_context, serve(bad))
    assert message.startswith("websem:") and "index/lexical.bin" in message and "integrity" in message


def test_query_rules_come_from_manifest_search(browser_context, browser_bundle: Path, serve, bt, tmp_path: Path):
    """The page and `websem query` read one table, manifest.search: with other values in it (k,
    snippet length, mode order, fusion weight) both change alike, so no reader keeps its own constant."""
    copy = bt.linked_copy(browser_bundle, tmp_path / "bundle")
    path = bt.make_real(copy / "manifest.json")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    table = manifest["search"]
    assert table["k"] != 5 and table["snippet_chars"] != 120 and table["modes"][0] != "lexical"
    table.update(k=5, snippet_chars=120, modes=["lexical", "hybrid", "semantic"])
    table["fusion"] = {**table["fusion"], "alpha": 0.3} if table["fusion"]["method"] == "convex" else table["fusion"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    page, log = bt.open_search_page(browser_context, serve(copy))
    try:
        assert page.evaluate("() => window.engine.info.modes") == ["lexical", "hybrid", "semantic"]
        queries = ["heat transfer in hypersonic flow", *bt.LATE_QUERIES]
        # No k, no mode: the table's k and first mode.
        got = page.evaluate("""async (xs) => {
            const out = [];
            for (const x of xs) out.push(await window.engine.searchFull(x));
            return out;
        }""", queries)
        want = bt.websem_query_json(copy, queries, "lexical", k=5)
        bt.assert_same_results(copy, "lexical", queries, got, want, engine="chromium (edited manifest.search)")
        assert len(got[0]["hits"]) == 5  # the other queries match fewer documents by their words
        assert max(len(h["snippet"]) for r in got for h in r["hits"]) <= 120 + 1  # + an ellipsis at most
        hybrid = page.evaluate(SEARCH_ALL_JS, [queries, {"mode": "hybrid"}])
        bt.assert_same_results(copy, "hybrid", queries, hybrid, bt.websem_query_json(copy, queries, "hybrid", k=5),
                               engine="chromium (edited manifest.search)")
        assert not log.errors(), log.errors()
    finally:
        page.close()
