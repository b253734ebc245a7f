"""Soak: 1,000 queries in one page, renderer memory sampled every 100, websem against
transformers.js tuned in the same run.

What it answers: does a page that searches for a long time keep its memory? The target (issue
"First visit") is renderer RSS growth of at most 5% between query 100 and query 1,000. Each stack
runs in a fresh Chromium profile spoken to over a bare DevTools pipe, so its RSS is the one
bench/browser.py reports (`bench/browser.py` stacks and pages, same server, same model file);
stacks alternate A B A B over the rounds; queries are the judged set's real queries, cycled.

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

from browser import STACKS, mounts, peer_model_root  # noqa: E402
from cdp_pipe import PipeCdp, open_bench_page  # noqa: E402
from common import RESULTS, default_bundle, median, read_queries, write_result  # noqa: E402
from procmem import renderer_memory  # noqa: E402
from server import BenchServer  # noqa: E402

__all__ = ["soak_stack", "main"]

GROWTH_TARGET = 0.05  # RSS growth between the first sample (query `every`) and the last


def soak_stack(server: BenchServer, stack: str, queries: list[str], every: int,
               timeout_s: float = 300) -> dict:
    """Run `queries` one by one in one page of `stack`; sample renderer RSS and JS heap every
    `every` queries (no forced GC: the samples are what a visitor's tab really holds).

    The page runs in a Chromium spoken to over a bare DevTools pipe (cdp_pipe.PipeCdp), as
    bench/browser.py measures RSS: through Playwright, Chromium keeps every response body for
    DevTools in the renderer (~80 MB more for websem's cold load, ~30 MB for the peer's), which
    no visitor's tab holds."""
    profile = Path(tempfile.mkdtemp(prefix="websem-soak-profile-"))
    cdp = PipeCdp(profile)
    samples: list[dict] = []
    try:
        sid = open_bench_page(cdp, server.url, STACKS[stack], queries[0], timeout_s)
        # The Performance domain only reports counters (JS heap); it keeps no response bodies.
        cdp.send("Performance.enable", session=sid)
        t0 = time.perf_counter()
        for start in range(0, len(queries), every):
            out = cdp.evaluate(sid, f"window.__bench.run({json.dumps(queries[start:start + every])}, false)")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics", session=sid)["metrics"]}
            mem = renderer_memory(profile)
            samples.append({"queries": start + len(out["times"]), "renderer_rss_mb": mem.get("renderer_rss_mb"),
                            "js_heap_used_mb": round(metrics.get("JSHeapUsedSize", 0) / 2**20, 1),
                            "p50_ms": median(out["times"]), "elapsed_s": round(time.perf_counter() - t0, 1)})
            print(f"[soak] {stack}: {samples[-1]}", flush=True)
    finally:
        cdp.close()
        shutil.rmtree(profile, ignore_errors=True)
    first, last = samples[0]["renderer_rss_mb"], samples[-1]["renderer_rss_mb"]
    return {"stack": stack, "samples": samples, "rss_first_mb": first, "rss_last_mb": last,
            "growth": (last - first) / first if first else None}


def write_markdown(data: dict, results: Path) -> Path:
    lines = [f"# Soak: memory over {data['queries']:,} queries in one page (Chromium)", "",
             f"{data['queries']} queries from `{data['dataset']}` (cycled), renderer RSS sampled every "
             f"{data['every']}; {data['rounds']} round(s), stacks alternated; medians over rounds. "
             f"Target: growth from query {data['every']} to query {data['queries']} <= "
             f"{GROWTH_TARGET:.0%}. Chromium driven over a bare DevTools pipe (no response bodies kept for "
             "DevTools), as bench/browser.py measures RSS. "
             f"Load average during the run: {data['loadavg']}.", "",
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
    bundle = (args.bundle or default_bundle(args.dataset)).resolve()
    pool = read_queries(args.dataset)
    queries = [pool[i % len(pool)] for i in range(args.queries)]
    runs = []
    with BenchServer(mounts(bundle, peer_model_root(bundle))) as server:
        for rnd in range(args.rounds):
            for stack in args.stacks:
                r = soak_stack(server, stack, queries, args.every)
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
