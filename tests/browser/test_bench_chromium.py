"""The browser benchmarks' Chromium flags keep browser-UI renderers out of a timed repeat visit.

bench/browser.py times a repeat visit in a tab opened after the first one closed, so Chromium
opens a new window and, unless told not to, preloads that window's omnibox popup in a renderer of
its own (`--top-chrome-webui`) that keeps one of the machine's 2 cores busy for ~1.5 s. The bench
disables it (bench/cdp_pipe.py `CHROMIUM_ARGS`) and refuses a run in which one still appears; this
test catches a Chromium update that preloads it some new way before a 12-minute bench run does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from cdp_pipe import CHROMIUM  # noqa: E402  (the bench's Chromium, the one that matters here)
from cdp_pipe import CHROMIUM_ARGS as BENCH_ARGS  # noqa: E402
from procmem import chromium_processes  # noqa: E402

# What the bench ran with before Chromium 156 preloaded the popup through other features.
OLD_ARGS = [a for a in BENCH_ARGS if not a.startswith("--disable-features=")] + [
    "--disable-features=PreloadTopChromeWebUI"
]


def _browser_ui_renderers(playwright, profile: Path, args: list[str], wait_s: float) -> list[int]:
    """The bench's repeat-visit sequence (first tab closed, a new one opened), then the pids of
    browser-UI renderers seen within `wait_s`."""
    ctx = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=args)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto("about:blank")
        page.close()
        ctx.new_page().goto("about:blank")
        deadline = time.monotonic() + wait_s
        while True:
            seen = [p["pid"] for p in chromium_processes(profile) if p["type"] == "renderer-webui"]
            if seen or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)
    finally:
        ctx.close()


def test_bench_flags_keep_the_omnibox_popup_out_of_a_repeat_visit(playwright, tmp_path: Path) -> None:
    # The probe first sees the renderer with the old flags (so it can fail) ...
    assert _browser_ui_renderers(playwright, tmp_path / "old", OLD_ARGS, wait_s=5), (
        "Chromium no longer preloads a new window's omnibox popup: the WebUIOmnibox* entries of "
        "bench/cdp_pipe.py CHROMIUM_ARGS, and this test, can go")
    # ... and never with the bench's.
    seen = _browser_ui_renderers(playwright, tmp_path / "bench", BENCH_ARGS, wait_s=3)
    assert not seen, (
        f"a browser-UI renderer (pids {seen}) runs during the bench's repeat visit: find the feature "
        "that preloads it and add it to --disable-features in bench/cdp_pipe.py CHROMIUM_ARGS")
