"""Progressive results in Chromium: `load()` resolves on the lexical tier while the model and
Pyodide are still held back, and the full tier takes over once they arrive (flat and partitioned
bundles; a full tier that fails leaves the keyword results working).

Deterministic, not timed: every request for the model (model/), the vendored runtimes (vendor/:
Pyodide, onnxruntime-web) and the Pyodide snapshot is intercepted (Playwright routes) and held
until the test releases it. While held: `load()` has resolved, a hybrid search answers with
`tier: "lexical"` and equals `websem query --mode lexical --json` hit by hit (ids, BM25 scores,
titles, urls, snippets, highlights, facets), lexical mode is the full answer, semantic waits (or,
with `wait: false`, is refused), and `<websem-search>` shows keyword results with its progress bar.
After release: `engine.ready` resolves, `info.tier` is "full", every mode equals `websem query
--json`, and the component has re-run its query in place (same input element, value, focus and
cursor; same list items) with the hybrid ranking."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
    "boundary layer transition on a flat plate",
    "terrestrial hazard detectable",
    "heat transfer to a blunt body in hypersonic flow",
]
# Held until released: the model, both wasm runtimes and their glue, the Pyodide snapshot.
HELD = re.compile(r"/(model/|vendor/|runtime/pyodide-snapshot\.bin)")


class Gate:
    """Holds every matching request of a context until `release()`; later ones pass at once."""

    def __init__(self, context, origin: str, held: re.Pattern = HELD) -> None:
        self.context = context
        self.pattern = re.compile(re.escape(origin) + held.pattern)
        self.held: list = []
        self.open = False
        self.lock = threading.Lock()
        context.route(self.pattern, self._route)

    def _route(self, route) -> None:
        with self.lock:
            if not self.open:
                self.held.append(route)
                return
        route.continue_()

    def urls(self) -> list[str]:
        return [r.request.url for r in self.held]

    def wait_for(self, page, suffix: str, polls: int = 600) -> list[str]:
        """The held URLs once one ends with `suffix` (Playwright dispatches route handlers while
        the page is waited on)."""
        for _ in range(polls):
            if any(u.endswith(suffix) for u in self.urls()):
                return self.urls()
            page.wait_for_timeout(100)
        raise AssertionError(f"no request for {suffix} was held; held: {self.urls()}")

    def release(self) -> None:
        with self.lock:
            self.open = True
            held, self.held = self.held, []
        self.released = [r.request.url for r in held]
        for r in held:
            r.continue_()

    def close(self) -> None:
        self.context.unroute(self.pattern, self._route)


@pytest.fixture()
def fresh_url(browser_bundle: Path, serve) -> str:
    """The bundle on an origin of its own: no Cache Storage or HTTP cache from other tests, so
    every model and runtime byte really crosses the (held) network."""
    return serve(browser_bundle)


def _cpu(bt, bundle: Path, mode: str) -> list[dict]:
    return bt.websem_query_json(bundle, QUERIES, mode, k=10)


def test_lexical_tier_answers_before_the_model_then_the_full_tier(browser_context, browser_bundle: Path,
                                                                  fresh_url: str, bt) -> None:
    gate = Gate(browser_context, fresh_url.rstrip("/"))
    page = browser_context.new_page()
    try:
        page.goto(fresh_url + "manifest.json")  # any page of the origin: the API is imported below
        early = page.evaluate(
            """async (queries) => {
                const m = await import('./websem.js');
                const stages = [];
                const engine = await m.load(new URL('./', location.href), {onProgress: (e) => stages.push(e.stage)});
                window.engine = engine;
                const out = {info: JSON.parse(JSON.stringify(engine.info)), stages: stages.slice(),
                             hybrid: [], lexical: []};
                for (const q of queries) out.hybrid.push(await engine.searchFull(q, {k: 10}));
                for (const q of queries) out.lexical.push(await engine.searchFull(q, {k: 10, mode: 'lexical'}));
                // Semantic: refused without waiting, pending (not failed) with the default.
                try { await engine.search(queries[0], {mode: 'semantic', wait: false}); out.refused = null; }
                catch (e) { out.refused = String(e.message); }
                let settled = false;
                window.semanticP = engine.searchFull(queries[1], {k: 10, mode: 'semantic'})
                    .finally(() => { settled = true; });
                await engine.searchFull(queries[2], {k: 3, mode: 'lexical'});
                out.semanticSettled = settled;
                out.infoAfter = engine.info.tier;
                return out;
            }""",
            QUERIES,
        )
        # Loading really is held: the runtimes were asked for and none has been answered.
        gate.wait_for(page, "/model/model.onnx")
        held = gate.wait_for(page, "/vendor/pyodide/pyodide.asm.wasm", polls=100)
        assert any(u.endswith("/model/model.onnx") for u in held), held
        assert any("/vendor/pyodide/" in u for u in held), held
        assert early["info"]["tier"] == "lexical" and early["infoAfter"] == "lexical", early["info"]
        assert early["info"]["threads"] is None and early["info"]["ready_ms"] is None, early["info"]
        assert "lexical-ready" in early["stages"] and "ready" not in early["stages"], early["stages"]
        assert early["semanticSettled"] is False, "a semantic search must wait for the model"
        assert early["refused"] and early["refused"].startswith("websem: semantic search needs the model"), early
        lexical = _cpu(bt, browser_bundle, "lexical")
        assert all(r["tier"] == "lexical" and r["mode"] == "hybrid" for r in early["hybrid"]), early["hybrid"]
        as_lexical = [{**r, "mode": "lexical"} for r in early["hybrid"]]
        bt.assert_same_results(browser_bundle, "lexical", QUERIES, as_lexical, lexical, engine="lexical tier (hybrid)")
        assert all(r["tier"] == "full" for r in early["lexical"])
        bt.assert_same_results(browser_bundle, "lexical", QUERIES, early["lexical"], lexical, engine="lexical tier")

        gate.release()
        late = page.evaluate(
            """async (queries) => {
                const engine = window.engine;
                await engine.ready;
                const semanticFirst = await window.semanticP;
                const out = {info: engine.info, semanticFirst};
                for (const mode of ['hybrid', 'semantic', 'lexical']) {
                    out[mode] = [];
                    for (const q of queries) out[mode].push(await engine.searchFull(q, {k: 10, mode}));
                }
                await engine.close();
                return out;
            }""",
            QUERIES,
        )
        assert any(u.endswith("/model/model.onnx") for u in gate.released)
        assert late["info"]["tier"] == "full" and late["info"]["threads"] >= 1 and late["info"]["ready_ms"] > 0
        for mode in bt.MODES:
            assert all(r["tier"] == "full" for r in late[mode]), mode
            bt.assert_same_results(browser_bundle, mode, QUERIES, late[mode], _cpu(bt, browser_bundle, mode),
                                   engine=f"full tier ({mode})")
        assert late["semanticFirst"]["tier"] == "full"
        assert late["semanticFirst"]["hits"] == late["semantic"][1]["hits"]
    finally:
        page.close()
        gate.close()


ROOT = "document.querySelector('websem-search').shadowRoot"


def test_component_shows_keyword_results_then_updates_them_in_place(browser_context, browser_bundle: Path,
                                                                    fresh_url: str, bt) -> None:
    gate = Gate(browser_context, fresh_url.rstrip("/"))
    page = browser_context.new_page()
    query = QUERIES[1]
    try:
        page.goto(fresh_url + "index.html")
        page.wait_for_function("() => document.querySelector('websem-search')?.getAttribute('state') === 'ready'")
        el = "document.querySelector('websem-search')"
        assert page.evaluate(f"() => {el}.getAttribute('tier')") == "lexical"
        assert page.evaluate(f"() => {ROOT}.querySelector('progress').hidden") is False
        page.evaluate(f"""() => {{ window.__results = [];
            {el}.addEventListener('websem-results', (e) => window.__results.push(e.detail)); }}""")
        page.locator("websem-search input").click()
        page.keyboard.type(query)
        page.wait_for_function("(n) => window.__results.length >= 1 && window.__results.at(-1).query === n", arg=query)
        first = page.evaluate("() => window.__results.at(-1)")
        assert first["tier"] == "lexical", first
        lexical = _cpu(bt, browser_bundle, "lexical")[1]
        assert [h["id"] for h in first["hits"]] == [h["id"] for h in lexical["hits"]]
        # Mark what must survive the update: the input, its cursor, the list items.
        state = page.evaluate(f"""() => {{
            const root = {ROOT};
            const input = root.querySelector('input');
            input.setSelectionRange(4, 9);
            window.__input = input;
            window.__items = [...root.querySelectorAll('li')];
            return {{shown: window.__items.map((li) => li.dataset.id),
                     status: root.querySelector('.status').textContent}};
        }}""")
        assert state["shown"] == [h["id"] for h in lexical["hits"]]
        assert "keyword" in state["status"], state
        assert gate.wait_for(page, "/model/model.onnx"), "the model must have been requested and held"

        gate.release()
        page.wait_for_function(f"() => {el}.getAttribute('tier') === 'full' && window.__results.at(-1).tier === 'full'")
        after = page.evaluate(f"""() => {{
            const root = {ROOT};
            const input = root.querySelector('input');
            const items = [...root.querySelectorAll('li')];
            return {{
                sameInput: input === window.__input,
                focused: root.activeElement === input,
                value: input.value,
                selection: [input.selectionStart, input.selectionEnd],
                sameItems: items.every((li, i) => i >= window.__items.length || li === window.__items[i]),
                shown: items.map((li) => li.dataset.id),
                progressHidden: root.querySelector('progress').hidden,
                status: root.querySelector('.status').textContent,
                results: window.__results.length,
                last: window.__results.at(-1),
            }};
        }}""")
        hybrid = _cpu(bt, browser_bundle, "hybrid")[1]
        assert after["sameInput"] and after["focused"], after
        assert after["value"] == query and after["selection"] == [4, 9], after
        assert after["sameItems"], "the result items were re-created instead of updated in place"
        assert after["shown"] == [h["id"] for h in hybrid["hits"]], after["shown"]
        assert after["last"]["mode"] == "hybrid" and after["progressHidden"], after
        assert after["status"] == f"{len(hybrid['hits'])} results", after["status"]
        assert after["results"] == 2, "one keyword answer, then one hybrid re-run"
        bt.assert_same_results(browser_bundle, "hybrid", [query], [after["last"]], [hybrid], engine="component re-run")
    finally:
        page.close()
        gate.close()


def test_a_query_asked_while_loading_is_prepared_for_the_full_tier(browser_context, browser_bundle: Path,
                                                                   fresh_url: str, bt) -> None:
    """A hybrid query asked before the model is up (answered by the lexical tier) is tokenized and
    its word rows read while the rest loads (engine.js `early`): with model.onnx held back, the
    query's blocks are read anyway; when the full tier answers it, every block the model run
    needs is already held (no read of its own), ORT's first run is that query's (no stand-in
    warm-up run: model.js skipWarmUp), and the answer equals `websem query --json`. The engine in
    the page (`worker: false`) so its counters are at hand; `cache: false` so the rows come by
    byte range."""
    gate = Gate(browser_context, fresh_url.rstrip("/"), re.compile(r"/model/model\.onnx$"))
    page = browser_context.new_page()
    try:
        page.goto(fresh_url + "manifest.json")
        page.evaluate(
            """async (query) => {
                const m = await import('./websem.js');
                const engine = await m.load(new URL('./', location.href), {worker: false, cache: false});
                window.engine = engine;
                window.early = await engine.searchFull(query, {k: 10});
                for (let i = 0; i < 1200; i++) {  // Pyodide up, the query's rows read: model.onnx still held
                    const s = engine.debug.wordRowsStats();
                    if (s && s.misses > 1 && s.bytes > 3104) break;
                    await new Promise((r) => setTimeout(r, 100));
                }
            }""",
            QUERIES[0],
        )
        assert any(u.endswith("/model/model.onnx") for u in gate.urls()), gate.urls()
        early_stats = page.evaluate("engine.debug.wordRowsStats()")
        gate.release()
        got = page.evaluate(
            """async (query) => {
                const engine = window.engine;
                await engine.ready;
                const before = engine.debug.wordRowsStats();
                const runsAtReady = engine.debug.modelRuns();
                const full = await engine.searchFull(query, {k: 10});
                const after = engine.debug.wordRowsStats();
                const runs = engine.debug.modelRuns();
                await engine.close();
                return {early: window.early.tier, full, before, after, runsAtReady, runs};
            }""",
            QUERIES[0],
        )
    finally:
        page.close()
        gate.close()
    assert early_stats["misses"] > 1, early_stats
    assert got["early"] == "lexical", "the query must have been asked before the full tier was up"
    before, after = got["before"], got["after"]
    # [CLS]/[SEP] are preloaded; the query's other ~15 blocks were asked for early.
    assert before["misses"] > 2, before
    assert after["misses"] == before["misses"] and after["range_requests"] == before["range_requests"], (before, after)
    assert got["full"]["tier"] == "full"
    # Pyodide was up and a query asked when the session came: ORT's first run was the query's.
    assert (got["runsAtReady"], got["runs"]) == (0, 1), got
    bt.assert_same_results(browser_bundle, "hybrid", QUERIES[:1], [got["full"]], _cpu(bt, browser_bundle, "hybrid")[:1],
                           engine="full tier, query prepared while loading")


def test_a_failed_full_tier_keeps_keyword_results(browser_context, browser_bundle: Path, fresh_url: str, bt) -> None:
    """The model cannot be fetched (HTTP 404): `load()` still resolves on the lexical tier,
    `engine.ready` rejects with the `websem:` error naming the file, hybrid searches keep answering
    lexically (equal to `websem query --mode lexical`), semantic ones reject with that error; with
    `progressive: false` `load()` itself rejects with it."""
    pattern = re.compile(re.escape(fresh_url.rstrip("/")) + r"/model/model\.onnx$")
    browser_context.route(pattern, lambda route: route.fulfill(status=404, body="gone"))
    page = browser_context.new_page()
    try:
        page.goto(fresh_url + "manifest.json")
        got = page.evaluate(
            """async (queries) => {
                const m = await import('./websem.js');
                const engine = await m.load(new URL('./', location.href));
                const out = {tier: engine.info.tier};
                try { await engine.ready; out.ready = null; } catch (e) { out.ready = String(e.message); }
                out.hybrid = [];
                for (const q of queries) out.hybrid.push(await engine.searchFull(q, {k: 10}));
                try { await engine.search(queries[0], {mode: 'semantic'}); out.semantic = null; }
                catch (e) { out.semantic = String(e.message); }
                await engine.close();
                try { await m.load(new URL('./', location.href), {progressive: false}); out.strict = null; }
                catch (e) { out.strict = String(e.message); }
                return out;
            }""",
            QUERIES,
        )
    finally:
        page.close()
        browser_context.unroute(pattern)
    assert got["tier"] == "lexical"
    assert got["ready"] and got["ready"].startswith("websem:") and "model/model.onnx" in got["ready"], got["ready"]
    assert got["semantic"] == got["ready"] and got["strict"] == got["ready"], got
    assert all(r["tier"] == "lexical" for r in got["hybrid"])
    bt.assert_same_results(browser_bundle, "lexical", QUERIES, [{**r, "mode": "lexical"} for r in got["hybrid"]],
                           _cpu(bt, browser_bundle, "lexical"), engine="lexical tier after a failed full tier")


def test_partitioned_bundle_answers_from_its_shards_before_the_model(browser_context, cranfield_partitioned: Path,
                                                                     serve, bt) -> None:
    """A partitioned bundle's lexical tier: `load()` resolves on the always-loaded files with the
    model held back, hybrid searches answer from the lexical shards and fragments (equal to
    `websem query --mode lexical`), then the full tier's hybrid answers equal `websem query`."""
    url = serve(cranfield_partitioned)
    gate = Gate(browser_context, url.rstrip("/"))
    page = browser_context.new_page()
    try:
        page.goto(url + "manifest.json")
        early = page.evaluate(
            """async (queries) => {
                const m = await import('./websem.js');
                const engine = window.engine = await m.load(new URL('./', location.href));
                const out = {info: JSON.parse(JSON.stringify(engine.info)), hybrid: []};
                for (const q of queries) out.hybrid.push(await engine.searchFull(q, {k: 10}));
                return out;
            }""",
            QUERIES,
        )
        gate.wait_for(page, "/model/model.onnx")
        assert early["info"]["tier"] == "lexical" and early["info"]["index"]["layout"] == "partitioned", early["info"]
        assert all(r["tier"] == "lexical" for r in early["hybrid"])
        bt.assert_same_results(cranfield_partitioned, "lexical", QUERIES,
                               [{**r, "mode": "lexical"} for r in early["hybrid"]],
                               _cpu(bt, cranfield_partitioned, "lexical"), engine="partitioned lexical tier")
        gate.release()
        late = page.evaluate(
            """async (queries) => {
                await window.engine.ready;
                const out = [];
                for (const q of queries) out.push(await window.engine.searchFull(q, {k: 10}));
                await window.engine.close();
                return out;
            }""",
            QUERIES,
        )
        assert all(r["tier"] == "full" for r in late)
        bt.assert_same_results(cranfield_partitioned, "hybrid", QUERIES, late,
                               _cpu(bt, cranfield_partitioned, "hybrid"), engine="partitioned full tier")
    finally:
        page.close()
        gate.close()
