"""Document text is rendered as text: a title carrying markup shows up literally, runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EVIL_TITLE = 'Wing flutter <img src=x onerror="window.__websem_xss=1"> at supersonic speed'
EVIL_TEXT = "<script>window.__websem_xss=2</script> flutter of thin wings <b>bold</b>"


@pytest.fixture(scope="module")
def evil_bundle(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> Path:
    from websem.build.bundle import build_bundle

    src = tmp_path_factory.mktemp("evil-src") / "corpus.jsonl"
    docs = [
        {"_id": "evil", "title": EVIL_TITLE, "text": EVIL_TEXT, "url": "javascript:alert(1)"},
        {"_id": "calm-1", "title": "Heat transfer", "text": "heat transfer in laminar boundary layers"},
        {"_id": "calm-2", "title": "Buckling", "text": "buckling of thin cylindrical shells under axial load"},
    ]
    src.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    out = tmp_path_factory.mktemp("evil-bundle") / "bundle"
    build_bundle(src, out, model=model_package)
    return out


def test_markup_in_documents_renders_as_text(browser_context, evil_bundle: Path, serve, bt):
    page, log = bt.open_search_page(browser_context, serve(evil_bundle))
    page.locator("websem-search input").fill("flutter of wings at supersonic speed")
    page.locator("websem-search li").first.wait_for()
    first = page.locator("websem-search li").first
    assert first.get_attribute("data-id") == "evil"
    assert first.locator("a").text_content() == EVIL_TITLE
    assert "<script>" in first.locator(".snippet").text_content()
    assert first.locator("img").count() == 0 and first.locator("script, b").count() == 0
    assert first.locator("a").get_attribute("href") is None  # javascript: URLs are not linked
    assert page.evaluate("() => window.__websem_xss") is None
    assert not log.errors(), log.errors()
    page.close()
