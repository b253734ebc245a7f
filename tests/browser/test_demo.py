"""The demo end to end in Chromium: generate the stdlib docs site (a subset of modules, for
time), build its bundle with the real default model, serve the *site* (bundle under _websem/),
search from the demo page, and save the README screenshot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = ["csv", "json", "subprocess", "pathlib", "shutil", "zipfile", "datetime", "re", "random", "statistics"]
TOPICS = ["assert", "if", "try", "with", "exceptions", "for"]


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> Path:
    from websem.demo.command import prepare_demo

    return prepare_demo(tmp_path_factory.mktemp("demo"), model_package, modules=MODULES, topics=TOPICS)


def _search(page, query: str) -> list[dict]:
    return page.evaluate("(q) => window.engine.search(q, {k: 5})", query)


def test_demo_site_searches_and_links(browser_context, serve, demo_site: Path, bt) -> None:
    assert (demo_site / "_websem" / "manifest.json").is_file()
    assert (demo_site / "library" / "csv.html").is_file()
    url = serve(demo_site)
    page, log = bt.open_search_page(browser_context, url)  # the demo's own index.html

    hits = _search(page, "read rows from a comma separated values file")
    assert hits[0]["url"].startswith("library/csv.html"), hits
    hits = _search(page, "run a shell command and capture what it prints")
    assert hits[0]["url"].startswith("library/subprocess.html"), hits

    # The component renders the same first result, as a link that resolves inside the site.
    page.locator("websem-search input").fill("run a shell command and capture what it prints")
    page.wait_for_function(
        """() => { const a = document.querySelector('websem-search').shadowRoot.querySelector('li a');
                   return a && a.getAttribute('href').startsWith('library/subprocess.html'); }"""
    )
    href = page.evaluate("() => document.querySelector('websem-search').shadowRoot.querySelector('li a').href")
    assert page.request.get(href).ok, href
    assert log.errors() == [] and log.foreign_requests() == []

    shot = demo_site.parent / "screenshot.png"
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("WEBSEM_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, REPO / "docs" / "screenshot.png")
    page.close()
