"""Chromium for the browser benchmarks, and renderer memory measured over a bare DevTools pipe.

Playwright enables the DevTools Network domain on every page and worker it drives, and Chromium
then keeps each response body in the renderer for DevTools (about 40 MB after a cold load of a
1k-chunk bundle with its model and wasm; up to ~200 MB), memory no visitor's tab holds. So the
benchmarks that report renderer RSS also run the same page in a Chromium spoken to over
``--remote-debugging-pipe`` (``PipeCdp``) with no domain enabled, and read the renderer's RSS
from /proc (bench/procmem.py): ``rss_run``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from procmem import renderer_memory

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "PipeCdp", "open_bench_page", "rss_run"]

CHROMIUM = "/usr/bin/chromium"
# Browser-UI preloads off: a repeat visit opens a new tab after the first one closed, so
# Chromium opens a new window and preloads its omnibox popup (a chrome://omnibox-popup renderer,
# `--top-chrome-webui`, that kept one of the 2 cores busy for the first ~1.5 s of every stack's
# repeat visit, traced); a visitor coming back to a site in a running browser pays nothing of the
# kind. Chromium 156 preloads it through the WebUIOmnibox* features even with
# PreloadTopChromeWebUI off, so all of them are listed; `browser.measure_stack` refuses a run in
# which such a renderer still appears.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=PreloadTopChromeWebUI,WebUIOmniboxPopup,WebUIOmniboxFullPopup,"
    "WebUIOmniboxAimPopup",
]


class PipeCdp:
    """Chromium launched with ``--remote-debugging-pipe`` and spoken to over it (JSON messages
    ending in NUL): no DevTools domain is enabled unless asked, so the renderer holds what the
    page holds."""

    def __init__(self, profile: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def child() -> None:  # Chromium reads commands from fd 3 and writes replies to fd 4
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        self.proc = subprocess.Popen([CHROMIUM, *CHROMIUM_ARGS, "--remote-debugging-pipe",
                                      f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=child, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; every other message read meanwhile (events,
        another session's replies) goes to :meth:`on_event`."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}} | ({"sessionId": session} if session else {})
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"websem bench: Chromium closed its DevTools pipe during {method}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id and reply.get("sessionId") == session:
                if "error" in reply:
                    raise RuntimeError(f"websem bench: {method} failed: {reply['error']}")
                return reply["result"]
            self.on_event(reply)

    def on_event(self, message: dict) -> None:
        """Called with each message ``send`` reads that is not its reply; skipped here."""

    def evaluate(self, session: str, expr: str):
        """``expr`` evaluated in the page of ``session`` (promises awaited), by value."""
        r = self.send("Runtime.evaluate", {"expression": expr, "awaitPromise": True, "returnByValue": True},
                      session=session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"websem bench: {expr[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self) -> None:
        """Close the browser (killed if it does not answer) and the pipe."""
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            self.proc.kill()
        self.proc.wait(timeout=60)
        os.close(self._cmd_w)
        os.close(self._res_r)


def open_bench_page(cdp: PipeCdp, server_url: str, path: str, first: str, timeout_s: float = 300) -> str:
    """Opens bench page ``path`` under ``server_url`` (first query ``first``) in ``cdp``'s browser and
    waits for its first result (``window.__bench.firstResultMs``); returns the page's session id.
    A page error, or no result within ``timeout_s``, raises."""
    url = f"{server_url}{path}{'&' if '?' in path else '?'}q={quote(first)}"
    target = cdp.send("Target.createTarget", {"url": url})["targetId"]
    sid = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    t = time.monotonic()
    while not cdp.evaluate(sid, "!!(window.__bench && (window.__bench.firstResultMs !== undefined"
                                " || window.__bench.error !== undefined))"):
        if time.monotonic() - t > timeout_s:
            raise RuntimeError(f"websem bench: {path} gave no first result in {timeout_s:.0f} s")
        time.sleep(0.25)
    err = cdp.evaluate(sid, "window.__bench.error ?? null")
    if err:
        raise RuntimeError(f"websem bench: {path}: {err}")
    return sid


def rss_run(server_url: str, path: str, first: str, warm: list[str], measured: list[str],
            timeout_s: float = 300) -> dict:
    """One run of a bench page (``path`` under ``server_url``, its first query ``first``; the page
    sets ``window.__bench.firstResultMs`` and has ``window.__bench.run``) in a fresh profile over a
    bare CDP pipe: the first result, the ``warm`` queries, then the ``measured`` ones, then the
    renderer's memory (bench/procmem.py ``renderer_memory``) and the measured query times."""
    profile = Path(tempfile.mkdtemp(prefix="websem-bare-rss-"))
    cdp = PipeCdp(profile)
    try:
        sid = open_bench_page(cdp, server_url, path, first, timeout_s)
        cdp.evaluate(sid, f"window.__bench.run({json.dumps(warm)}, false).then(() => null)")
        out = cdp.evaluate(sid, f"window.__bench.run({json.dumps(measured)}, false)")
        return {"query_ms": out["times"], **renderer_memory(profile)}
    finally:
        cdp.close()
        shutil.rmtree(profile, ignore_errors=True)
