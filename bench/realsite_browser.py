"""One visit of bench/bench_realsite.py in Chromium (a fresh profile each): websem, Pagefind or
the site's own Sphinx search, timed from navigation to the first result, then (optionally) every
question, with the bytes the bench server logged in each phase."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from common import brotli_size
from server import BenchServer

CHROMIUM = os.environ.get("WEBSEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MODES = ("hybrid", "semantic", "lexical")


def _launch(pw, profile: Path):
    return pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)


# Sphinx's search.html renders results one <li> at a time; this init script stamps the first one
# (or the "did not match" status when the query has no result: the answer the visitor gets).
SPHINX_FIRST = """
window.__rs = window.__rs || {};
new MutationObserver((_, obs) => {
  const li = document.querySelector('#search-results ul.search li');
  const status = document.querySelector('#search-results p.search-summary');
  const none = status && status.textContent.startsWith('Your search did not match');
  if ((li || none) && window.__rs.firstMs === undefined) {
    window.__rs.firstMs = performance.now();
    obs.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""

# Run questions through the page's own Sphinx search (searchtools.js): performSearch(q) renders into
# #search-results and ends with a status line; the links are read in display order.
SPHINX_RUN = """
async (queries) => {
  const out = [];
  for (const q of queries) {
    const box = document.getElementById('search-results');
    box.innerHTML = '';
    Search.stopPulse();
    const t0 = performance.now();
    Search.performSearch(q);
    await new Promise((resolve) => {
      const tick = () => {
        const s = Search.status && Search.status.innerText;
        if (s && (s.startsWith('Search finished') || s.startsWith('Your search did not match'))) resolve();
        else setTimeout(tick, 5);
      };
      tick();
    });
    const ms = performance.now() - t0;
    const urls = [...box.querySelectorAll('ul.search > li > a')].map((a) => a.href);
    out.push({ms, urls});
  }
  return out;
}
"""


def _system_url(server: BenchServer, system: str, query: str, mode: str = "hybrid") -> str:
    q = quote(query)
    if system == "websem":
        return f"{server.url}/_realsite/websem.html?mode={mode}&q={q}"
    if system == "pagefind":
        return f"{server.url}/_realsite/pagefind.html?q={q}"
    if system == "sphinx":
        return f"{server.url}/search.html?q={q}"
    raise ValueError(system)


def _wait(page, timeout_s: float) -> dict:
    page.wait_for_function(
        "() => window.__rs && (window.__rs.firstMs !== undefined || window.__rs.error !== undefined)",
        polling=20, timeout=timeout_s * 1000)
    return page.evaluate("() => ({first: window.__rs.firstMs, ready: window.__rs.readyMs ?? null,"
                         " error: window.__rs.error ?? null})")


def _bytes(server: BenchServer, log: list[dict]) -> dict:
    served = [e for e in log if e["status"] == 200]
    raw = sum(e["bytes"] for e in served)
    br = 0
    for e in served:
        f = server.resolve(e["path"])
        if f is not None and f.is_file():
            br += brotli_size(f)
    return {"requests": len(log), "bytes": raw, "brotli_bytes": br}


def _settle(server: BenchServer, quiet_s: float = 0.3, max_s: float = 10.0) -> list[dict]:
    """Collect the server log until no request arrived for quiet_s (late fetches of a query)."""
    got: list[dict] = []
    t_end = time.perf_counter() + max_s
    last = time.perf_counter()
    while time.perf_counter() < t_end:
        time.sleep(0.05)
        new = server.take_log()
        if new:
            got += new
            last = time.perf_counter()
        elif time.perf_counter() - last >= quiet_s:
            break
    return got


def run_system(pw, server: BenchServer, system: str, first_query: str, *,
               queries: list[str] | None, timeout_s: float = 600) -> dict:
    """One fresh-profile visit: cold start to the first result, then (if queries) every question
    (websem: in all three modes), with per-query time and the bytes fetched after load."""
    profile = Path(tempfile.mkdtemp(prefix="websem-realsite-profile-"))
    console: list[str] = []
    out: dict = {"system": system}
    ctx = _launch(pw, profile)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        if system == "sphinx":
            page.add_init_script(SPHINX_FIRST)
        server.take_log()
        t0 = time.perf_counter()
        page.goto(_system_url(server, system, first_query), wait_until="commit")
        res = _wait(page, timeout_s)
        out["cold_wall_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if res["error"]:
            raise RuntimeError(f"{system}: page error: {res['error']}\n" + "\n".join(console[-20:]))
        out["cold_ms"] = round(res["first"], 1)
        out["ready_ms"] = None if res["ready"] is None else round(res["ready"], 1)
        out["cold_network"] = _bytes(server, server.take_log())
        # Late requests of the first query (Sphinx's per-result summaries) belong to neither phase.
        _settle(server)
        if queries is None:
            return out
        out["runs"] = {}
        modes = MODES if system == "websem" else (None,)
        for mode in modes:
            server.take_log()
            if system == "sphinx":
                rows = page.evaluate(SPHINX_RUN, queries)
            elif system == "websem":
                rows = page.evaluate("([qs, m]) => window.__rs.run(qs, m)", [queries, mode])
            else:
                rows = page.evaluate("qs => window.__rs.run(qs)", queries)
            log = server.take_log() + _settle(server)
            label = f"websem-{mode}" if mode else system
            out["runs"][label] = {"rows": rows, "after_load": _bytes(server, log)}
        if console:
            out["console_errors"] = console[-10:]
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    return out
