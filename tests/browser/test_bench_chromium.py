"""What bench/browser.py's visits rest on in Chromium: its flags keep browser-UI renderers out of a
timed repeat visit, and a script's V8 code cache is read from its third load, not its second.

bench/browser.py times a repeat visit in a tab opened after the first one closed, so Chromium
opens a new window and, unless told not to, preloads that window's omnibox popup in a renderer of
its own (`--top-chrome-webui`) that keeps one of the machine's 2 cores busy for ~1.5 s. The bench
disables it (bench/cdp_pipe.py `CHROMIUM_ARGS`) and refuses a run in which one still appears; this
test catches a Chromium update that preloads it some new way before a 12-minute bench run does.

The bench also times a third visit beside the repeat visit, because Chromium compiles a script on
its first two loads (storing V8's code cache during the second) and reads the cache from the
third on; the second test checks that on websem's largest script, Pyodide's pyodide.asm.mjs.
"""

from __future__ import annotations

import collections
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


PYODIDE_ASM = "vendor/pyodide/pyodide.asm.mjs"
# One load and one hybrid query by the full tier, as a visitor's search box ends up doing; the
# engine closes after it.
VISIT = """async () => {
    const { load } = await import('./websem.js');
    const engine = await load(new URL('./', location.href));
    if (engine.ready) await engine.ready;
    await engine.search('boundary layer transition', {k: 3, mode: 'hybrid'});
    await engine.close();
}"""


def _script_cache_events(context, url: str) -> dict[str, int]:
    """One visit of the bundle's origin under a Chromium trace; counts V8's events on
    pyodide.asm.mjs: "compiled" (compiled from source), "consumed" (compiled from its code cache),
    "produced" (code cache written)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    events: list[dict] = []
    done: list[bool] = []
    cdp.on("Tracing.dataCollected", lambda p: events.extend(p["value"]))
    cdp.on("Tracing.tracingComplete", lambda p: done.append(True))
    cdp.send("Tracing.start", {"categories": "v8,devtools.timeline", "transferMode": "ReportEvents"})
    try:
        page.goto(url + "manifest.json")
        page.evaluate(VISIT)
        page.wait_for_timeout(1000)  # the cache write runs in a task after the module ran
    finally:
        cdp.send("Tracing.end")
        for _ in range(300):
            if done:
                break
            page.wait_for_timeout(100)
        cdp.detach()
        page.close()
    seen: collections.Counter = collections.Counter()
    for e in events:
        args = e.get("args") or {}
        data = args.get("data") if isinstance(args.get("data"), dict) else {}
        if not str(data.get("url") or "").endswith(PYODIDE_ASM):
            continue
        if e.get("name") == "v8.compileModule":
            seen["consumed" if data.get("consumedCacheSize") else "compiled"] += 1
        elif e.get("name") == "v8.produceModuleCache":
            seen["produced"] += 1
    return dict(seen)


def test_a_script_code_cache_is_read_from_the_third_visit(playwright, bt, tmp_path: Path, cranfield_url: str) -> None:
    context = bt.launch_profile(playwright, tmp_path / "profile")
    try:
        visits = [_script_cache_events(context, cranfield_url) for _ in range(3)]
    finally:
        context.close()
    first, second, third = visits
    assert first.get("compiled") and not first.get("consumed") and not first.get("produced"), visits
    assert second.get("compiled") and second.get("produced") and not second.get("consumed"), (
        f"Chromium's code cache for {PYODIDE_ASM} is no longer written on the second visit "
        f"(V8 events per visit: {visits}); the bench's third-visit column and its explanation in "
        "bench/README.md (Measures) and docs/architecture.md (Compiled JS) need another look")
    assert third.get("consumed") and not third.get("compiled"), (
        f"the third visit did not compile {PYODIDE_ASM} from its code cache (V8 events per visit: {visits})")
