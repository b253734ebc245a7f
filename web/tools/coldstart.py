"""Browser cold start of websem bundles: navigation -> first search result, fresh Chromium profile.

    .venv/bin/python web/tools/coldstart.py BUNDLE_A [BUNDLE_B ...] [--runs 5] [--json OUT]

Each run launches Chromium with a new, empty profile (nothing cached), opens BUNDLE/index.html (the
<websem-search> element starts loading at once), waits until it is ready, runs one search and
reads `performance.now()` (ms since navigation start). Bundles are alternated run by run so that
load on a shared box hits all of them alike; medians are printed. A development tool for the
runtime (bench/ holds the peer comparisons).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUERY = "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft"


def cold_run(p, url: str) -> dict:
    """One cold load in a fresh profile; returns {first_result_ms, load_ms, stages, snapshot}."""
    with tempfile.TemporaryDirectory(prefix="websem-cold-") as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = context.new_page()
            page.goto(url + "index.html")
            page.wait_for_function(
                "() => ['ready', 'error'].includes(document.querySelector('websem-search')?.getAttribute('state'))",
                timeout=600_000,
            )
            out = page.evaluate(
                """async (q) => {
                    const el = document.querySelector('websem-search');
                    const engine = el.engine;
                    if (!engine) return {error: el.shadowRoot.querySelector('.status').textContent};
                    const hits = await engine.search(q, {k: 10});
                    return {first_result_ms: performance.now(), load_ms: engine.info.load_ms,
                            snapshot: engine.info.pyodide_snapshot, top: hits[0]?.id,
                                                        timings: engine.info.timings,
                            nav: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd};
                }""",
                QUERY,
            )
        finally:
            context.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from websem.web.serve import serve_bundle

    servers = [serve_bundle(b) for b in args.bundles]
    results: dict[str, list[dict]] = {str(b): [] for b in args.bundles}
    try:
        with sync_playwright() as p:
            for i in range(args.runs):
                order = list(zip(args.bundles, servers, strict=True))
                if i % 2:
                    order.reverse()
                for bundle, (_, url) in order:
                    r = cold_run(p, url)
                    results[str(bundle)].append(r)
                    print(f"run {i} {bundle}: {r}", file=sys.stderr)
    finally:
        for server, _ in servers:
            server.shutdown()
            server.server_close()
    summary = {
        b: {
            "median_first_result_ms": statistics.median(r["first_result_ms"] for r in rs),
            "median_load_ms": statistics.median(r["load_ms"] for r in rs),
            "runs": rs,
        }
        for b, rs in results.items()
    }
    for b, s in summary.items():
        first, load = s["median_first_result_ms"], s["median_load_ms"]
        print(f"{b}: first result {first:.0f} ms, engine load {load:.0f} ms (median)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
