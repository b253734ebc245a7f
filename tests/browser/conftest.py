"""Browser fixtures: real Debian Chromium through Playwright (python), a fresh profile per test
module, and the session Cranfield bundle served on 127.0.0.1 by `websem.web.serve.serve_bundle`.

Also the one parity check every engine test uses (Chromium, the Node engine, the snapshot
variants): an engine's `searchFull` results against `websem query --json` on the same bundle,
hit by hit (id, score, title, url, snippet, highlights) and facets, in every search mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("WEBSEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Cold loads on a busy 2-core CI box: Pyodide boot + ORT compile can take tens of seconds.
LOAD_TIMEOUT_MS = 300_000

# The search modes every bundle offers, default first. Written here, not read from the product, so
# a runtime or a build that drops a mode fails the parity tests (`search_mode` runs each test once
# per mode) instead of skipping them.
MODES = ("hybrid", "semantic", "lexical")
# ORT-web and CPU onnxruntime embeddings differ by ~1e-7 (test_parity.py); semantic scores are
# cosines and hybrid scores a convex combination of normalised dense and BM25 scores. BM25 scores
# (lexical mode) are computed by the same Python in both and must be bit-identical.
DENSE_SCORE_TOL = 1e-4
# Cranfield queries whose terms occur only past the snippet window of their best chunk (measured by
# `assert_snippets_past_window`), so a snippet that drifts back to the chunk's first characters,
# or highlights computed on another window, show up as a parity failure.
LATE_QUERIES = (
    "terrestrial hazard detectable",
    "granular triggering",
    "subroutines for the organization of cutting",
    "acrothermoelasticity avenues",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "search_mode" in metafunc.fixturenames:
        metafunc.parametrize("search_mode", MODES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@dataclass
class PageLog:
    """Everything a page did: console messages, uncaught errors, requested URLs."""

    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        # Requests made by the module worker are reported on the context, not the page.
        page.context.on("request", lambda r: self.requests.append(r.url))

    def errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.page_errors

    def foreign_requests(self) -> list[str]:
        """Requests that leave 127.0.0.1 (data:/blob: URLs never hit the network)."""
        out = []
        for url in self.requests:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob"):
                continue
            if parsed.hostname != "127.0.0.1":
                out.append(url)
        return out


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    """Playwright's sync API for this test module (one per module: it cannot be nested)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found; run .ci/setup (apt chromium) or set WEBSEM_CHROMIUM")
    with sync_api.sync_playwright() as p:
        yield p


def launch_profile(playwright, profile: Path):
    """Chromium on the profile directory `profile` (created if new), as every browser test runs it."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    return context


@pytest.fixture(scope="module")
def browser_context(playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A Chromium context with a fresh profile for this test module."""
    context = launch_profile(playwright, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="session")
def serve():
    """`serve(bundle) -> url`: serves a bundle for the rest of the session."""
    from websem.web.serve import serve_bundle

    servers = []

    def _serve(bundle: Path, **kwargs) -> str:
        server, url = serve_bundle(bundle, **kwargs)
        servers.append(server)
        return url

    yield _serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser_bundle(request: pytest.FixtureRequest) -> Path:
    """The Cranfield bundle under test: the session `cranfield_bundle` (built from the real data).

    WEBSEM_TEST_BUNDLE_CACHE=DIR reuses a bundle built earlier by `build_bundle` from the same
    corpus while developing (still verified against its manifest); CI never sets it.
    """
    cache = os.environ.get("WEBSEM_TEST_BUNDLE_CACHE")
    if cache:
        from websem.web.query import verify_bundle

        verify_bundle(Path(cache))
        return Path(cache)
    return request.getfixturevalue("cranfield_bundle")


@pytest.fixture(scope="session")
def cranfield_url(browser_bundle: Path, serve) -> str:
    return serve(browser_bundle)


def open_search_page(context, url: str) -> tuple[object, PageLog]:
    """Open BUNDLE/index.html, wait for <websem-search> to load its engine and the engine's full
    tier, expose it as `window.engine`. Returns the page and its log."""
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    page.goto(url + "index.html")
    page.wait_for_function(
        "() => ['ready', 'error'].includes(document.querySelector('websem-search')?.getAttribute('state'))",
        timeout=LOAD_TIMEOUT_MS,
    )
    state = page.evaluate("() => document.querySelector('websem-search').getAttribute('state')")
    status = page.evaluate(
        "() => document.querySelector('websem-search').shadowRoot.querySelector('.status').textContent"
    )
    assert state == "ready", f"engine failed to load: {status}; console: {log.console}"
    # The full tier too: tests compare every mode with `websem query` (test_progressive.py
    # covers the lexical tier before it).
    page.evaluate("""async () => {
        window.engine = document.querySelector('websem-search').engine;
        await window.engine.ready;
    }""")
    return page, log


def load_error(context, url: str) -> str:
    """Load the bundle at `url` through the public API in a fresh page, full tier included
    (`engine.ready`); return the error message (fails the test if loading succeeds)."""
    page = context.new_page()
    try:
        # Any page of the origin will do; import the runtime from the bundle itself.
        page.goto(url + "index.html")
        result = page.evaluate(
            """async () => {
                const m = await import('./websem.js');
                try { await (await m.load(new URL('./', location.href))).ready; return {ok: true}; }
                catch (e) { return {ok: false, message: String(e.message)}; }
            }"""
        )
    finally:
        page.close()
    assert not result["ok"], f"{url} loaded although it must be refused"
    return result["message"]


def linked_copy(bundle: Path, dest: Path) -> Path:
    """A copy of `bundle` whose files are symlinks (cheap); replace a link before editing a file."""
    shutil.copytree(bundle, dest, copy_function=os.symlink)
    return dest


def make_real(path: Path) -> Path:
    """Turn a symlinked file of a `linked_copy` into a real, editable copy."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)
    return path


def websem_query_json(bundle: Path, queries: list[str], mode: str, k: int = 10,
                      filters: dict[str, list[str]] | None = None) -> list[dict]:
    """The CPU reference as users run it: `websem query BUNDLE --queries FILE --mode MODE -k K
    [--filter FIELD=VALUE]... --json`, one `{query_id, mode, hits, facets}` per query, in order."""
    filter_args = [a for field, values in (filters or {}).items() for v in values for a in ("--filter", f"{field}={v}")]
    with tempfile.TemporaryDirectory(prefix="websem-parity-") as tmp:
        qfile = Path(tmp) / "queries.jsonl"
        qfile.write_text("".join(json.dumps({"_id": str(i), "text": q}) + "\n" for i, q in enumerate(queries)),
                         encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "websem.build.cli", "query", str(bundle), "--queries", str(qfile),
             "--mode", mode, "-k", str(k), "--json", *filter_args],
            capture_output=True, text=True, timeout=900,
        )
    assert proc.returncode == 0, f"websem query --mode {mode} failed: {proc.stderr[-3000:]}"
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [r["query_id"] for r in out] == [str(i) for i in range(len(queries))], proc.stdout[:2000]
    return out


def _bundle_docs(bundle: Path) -> dict[str, dict]:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    index = manifest["index"]
    if index.get("layout") == "partitioned":  # the documents live in the fragments
        template = index["shards"]["fragments"]
        docs = [d for f in range(index["fragments"])
                for d in json.loads((bundle / template.replace("{}", str(f))).read_text(encoding="utf-8"))["docs"]]
    else:
        docs = json.loads((bundle / index["files"]["docs"]).read_text(encoding="utf-8"))
    return {d["id"]: d for d in docs}


def assert_same_results(bundle: Path, mode: str, queries: list[str], got: list[dict],
                        want: list[dict], *, engine: str) -> float:
    """Fail unless an engine's `searchFull` results (`got`: `{mode, hits, facets}` per query, with
    UTF-16 highlight ranges as JS slices strings) equal `websem query --json`'s (`want`, code-point
    ranges): same mode, same ids in order, scores equal (lexical) or within `DENSE_SCORE_TOL`,
    same url, snippet, highlights and facets, and each title the document's own.
    Returns the largest score difference."""
    from websem.text.snippets import utf16_ranges

    docs = _bundle_docs(bundle)
    worst = 0.0
    assert len(got) == len(want) == len(queries), (len(got), len(want), len(queries))
    for q, g, w in zip(queries, got, want, strict=True):
        where = f"{engine}, mode {mode}, query {q!r}"
        assert g["mode"] == w["mode"] == mode, f"{where}: modes {g['mode']!r} / {w['mode']!r}"
        assert [h["id"] for h in g["hits"]] == [h["id"] for h in w["hits"]], f"{where}: ranking differs"
        for gh, wh in zip(g["hits"], w["hits"], strict=True):
            at = f"{where}, hit {wh['id']!r}"
            diff = abs(gh["score"] - wh["score"])
            if mode == "lexical":
                assert gh["score"] == wh["score"], f"{at}: BM25 score {gh['score']!r} != {wh['score']!r}"
            else:
                assert diff <= DENSE_SCORE_TOL, f"{at}: score {gh['score']!r} vs {wh['score']!r}"
            worst = max(worst, diff)
            assert gh["url"] == wh["url"], at
            assert gh["title"] == (docs[wh["id"]].get("title") or ""), at
            assert gh["snippet"] == wh["snippet"], f"{at}: snippet\n  {gh['snippet']!r}\n  {wh['snippet']!r}"
            assert gh["highlights"] == utf16_ranges(wh["snippet"], wh["highlights"]), (
                f"{at}: highlights {gh['highlights']} vs {wh['highlights']} (code points) in {wh['snippet']!r}")
        assert g["facets"] == w["facets"], f"{where}: facets {g['facets']} vs {w['facets']}"
    return worst


def assert_snippets_past_window(bundle: Path, lexical: list[dict]) -> None:
    """The premise of `LATE_QUERIES`: in `websem query --mode lexical --json` results, each top
    hit's snippet starts past the first snippet window of its chunk (and highlights something)."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    window = manifest["search"]["snippet_chars"]
    chunks = json.loads((bundle / manifest["index"]["files"]["chunks"]).read_text(encoding="utf-8"))
    for res in lexical:
        top = res["hits"][0]
        starts = [c["text"].find(top["snippet"]) for c in chunks if top["snippet"] in c["text"]]
        assert starts and min(starts) >= window and top["highlights"], (
            f"query {res['query_id']}: the top hit's snippet {top['snippet']!r} starts at {starts}, "
            f"not past character {window}: LATE_QUERIES no longer test the snippet window")


@pytest.fixture(scope="session")
def bt() -> SimpleNamespace:
    """Browser-test helpers (test modules are not importable packages here, so they come as a fixture)."""
    return SimpleNamespace(
        open_search_page=open_search_page, load_error=load_error, launch_profile=launch_profile,
        linked_copy=linked_copy, make_real=make_real,
        MODES=MODES, LATE_QUERIES=LATE_QUERIES, websem_query_json=websem_query_json,
        assert_same_results=assert_same_results, assert_snippets_past_window=assert_snippets_past_window,
    )
