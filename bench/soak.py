"""Soak: 1,000 queries in one page, renderer memory sampled every 100, websem against
transformers.js tuned in the same run.

What it answers: does a page that searches for a long time keep its memory? The target (issue
"First visit") is renderer RSS growth of at most 5% between query 100 and query 1,000. Each stack
runs in a fresh Chromium profile (`bench/browser.py` stacks and pages, same server, same model
file); stacks alternate A B A B over the rounds; queries are the judged set's real queries, cycled.

    .venv/bin/python bench/soak.py [--queries 1000] [--every 100] [--rounds 2] [--stacks websem-hybrid peer-tuned]

Writes bench/results/soak.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import CHROMIUM, CHROMIUM_ARGS, STACKS, _wait_first_result, mounts, peer_model_root  # noqa: E402
from common import RESULTS, default_bundle, median, read_queries, write_result  # noqa: E402
from procmem import renderer_memory  # noqa: E402
from server import BenchServer  # noqa: E402

__all__ = ["soak_stack", "main"]

GROWTH_TARGET = 0.05  # RSS growth between the first sample (query `every`) and the last


def soak_stack(pw, server: BenchServer, stack: str, queries: list[str], every: int,
               timeout_s: float = 300) -> dict:
    """Run `queries` one by one in one page of `stack`; sample renderer RSS and JS heap every
    `every` queries (after a GC when the page exposes one: it does not, so samples are what a
    visitor's tab really holds)."""
    from urllib.parse import quote

    profile = Path(tempfile.mkdtemp(prefix="websem-soak-profile-"))
    url = f"{server.url}{STACKS[stack]}{'&' if '?' in STACKS[stack] else '?'}q={quote(queries[0])}"
    ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                args=CHROMIUM_ARGS)
    samples: list[dict] = []
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(url, wait_until="commit")
        res = _wait_first_result(page, timeout_s)
        if res["error"]:
            raise RuntimeError(f"{stack}: page error: {res['error']}")
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")
        t0 = time.perf_counter()
        for start in range(0, len(queries), every):
            out = page.evaluate("qs => window.__bench.run(qs, false)", queries[start:start + every])
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            mem = renderer_memory(profile)
            samples.append({"queries": start + len(out["times"]), "renderer_rss_mb": mem.get("renderer_rss_mb"),
                            "js_heap_used_mb": round(metrics.get("JSHeapUsedSize", 0) / 2**20, 1),
                            "p50_ms": median(out["times"]), "elapsed_s": round(time.perf_counter() - t0, 1)})
            print(f"[soak] {stack}: {samples[-1]}", flush=True)
        cdp.detach()
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    first, last = samples[0]["renderer_rss_mb"], samples[-1]["renderer_rss_mb"]
    return {"stack": stack, "samples": samples, "rss_first_mb": first, "rss_last_mb": last,
            "growth": (last - first) / first if first else None}


def write_markdown(data: dict, results: Path) -> Path:
    lines = [f"# Soak: memory over {data['queries']:,} queries in one page (Chromium)", "",
             f"{data['queries']} queries from `{data['dataset']}` (cycled), renderer RSS sampled every "
             f"{data['every']}; {data['rounds']} round(s), stacks alternated; medians over rounds. "
             f"Target: growth from query {data['every']} to query {data['queries']} <= "
             f"{GROWTH_TARGET:.0%}. Load average during the run: {data['loadavg']}.", "",
             "| stack | RSS at first sample MB | RSS at last sample MB | growth | JS heap first / last MB "
             "| meets target |",
             "|---|---:|---:|---:|---:|---|"]
    for stack, s in data["summary"].items():
        lines.append(f"| {stack} | {s['rss_first_mb']:.0f} | {s['rss_last_mb']:.0f} | {s['growth']:+.1%} | "
                     f"{s['heap_first_mb']:.1f} / {s['heap_last_mb']:.1f} | "
                     f"{'yes' if s['growth'] <= GROWTH_TARGET else 'no'} |")
    lines += ["", "Per sample (first round):", "",
              "| stack | " + " | ".join(str(x["queries"]) for x in data["runs"][0]["samples"]) + " |",
              "|---|" + "---:|" * len(data["runs"][0]["samples"])]
    for r in data["runs"][: len(data["summary"])]:
        rss = " | ".join(f"{x['renderer_rss_mb']:.0f}" for x in r["samples"])
        lines.append(f"| {r['stack']} RSS MB | {rss} |")
    path = results / "soak.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dataset", default="cranfield")
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--stacks", nargs="+", default=["websem-hybrid", "peer-tuned"], choices=list(STACKS))
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    bundle = (args.bundle or default_bundle(args.dataset)).resolve()
    pool = read_queries(args.dataset)
    queries = [pool[i % len(pool)] for i in range(args.queries)]
    runs = []
    with BenchServer(mounts(bundle, peer_model_root(bundle))) as server, sync_playwright() as pw:
        for rnd in range(args.rounds):
            for stack in args.stacks:
                r = soak_stack(pw, server, stack, queries, args.every)
                r["round"] = rnd
                runs.append(r)
    summary = {}
    for stack in args.stacks:
        rs = [r for r in runs if r["stack"] == stack]
        summary[stack] = {
            "rss_first_mb": median([r["rss_first_mb"] for r in rs]),
            "rss_last_mb": median([r["rss_last_mb"] for r in rs]),
            "growth": median([r["growth"] for r in rs]),
            "heap_first_mb": median([r["samples"][0]["js_heap_used_mb"] for r in rs]),
            "heap_last_mb": median([r["samples"][-1]["js_heap_used_mb"] for r in rs]),
        }
    data = {"name": "soak", "bundle": str(bundle), "dataset": args.dataset, "queries": args.queries,
            "every": args.every, "rounds": args.rounds, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "summary": summary, "runs": runs}
    path = write_result("soak", data, args.results)
    print(f"[soak] wrote {path}, {write_markdown(json.loads(path.read_text()), args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
