"""Browser fixtures: real Debian Chromium through Playwright (python), a fresh profile per test
module, and the session Cranfield bundle served on 127.0.0.1 by `websem.web.serve.serve_bundle`."""

from __future__ import annotations

import os
import shutil
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
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A Chromium context with a fresh profile for this test module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found; run .ci/setup (apt chromium) or set WEBSEM_CHROMIUM")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context.set_default_timeout(LOAD_TIMEOUT_MS)
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
    """Open BUNDLE/index.html, wait for <websem-search> to load its engine, expose it as
    `window.engine`. Returns the page and its log."""
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
    page.evaluate("() => { window.engine = document.querySelector('websem-search').engine; }")
    return page, log


def load_error(context, url: str) -> str:
    """Load the bundle at `url` through the public API in a fresh page; return the error message
    (fails the test if loading succeeds)."""
    page = context.new_page()
    try:
        # Any page of the origin will do; import the runtime from the bundle itself.
        page.goto(url + "index.html")
        result = page.evaluate(
            """async () => {
                const m = await import('./websem.js');
                try { await m.load(new URL('./', location.href)); return {ok: true}; }
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


@pytest.fixture(scope="session")
def bt() -> SimpleNamespace:
    """Browser-test helpers (test modules are not importable packages here, so they come as a fixture)."""
    return SimpleNamespace(
        open_search_page=open_search_page, load_error=load_error, linked_copy=linked_copy, make_real=make_real
    )
