"""Browser half of bench/bench_partition.py: flat vs partitioned vs transformers.js (tuned) in the
same Chromium run, per scale point.

One origin (bench/server.py) serves the flat bundle at /websem/ (the peer reads its vectors
there) and the partitioned copy at /websem-baseline/ (bench/pages/websem.html?bundle=...). Per
round the stacks alternate flat, partitioned, peer-tuned; medians over rounds.

Per run (fresh profile): cold start (navigation to the first result), then 200 *different* real
queries (this fills the partitioned shard cache), then the first 60 of them again, each twice in
a row: the warm p50 is over the second runs (every shard the query needs is cached, whatever the
cache budget; a query of the 200 that ran long ago may have been evicted by the ones after it, so
re-running the list once measures the cache's hit rate, not a warm query), then renderer RSS.
Renderer RSS is measured in a Chromium driven over a bare CDP pipe (``rss_run``: the same page,
queries and order, no Playwright): Playwright enables the DevTools Network domain on the page and
its workers, and Chromium then keeps every response body in the renderer for DevTools, up to
~200 MB (about 40 MB of a 1k bundle's load, the cap after 200 queries at 1M chunks), which no
user's tab holds. The Playwright run's RSS is kept as ``renderer_rss_devtools_mb``.
Then, in a second fresh profile, the cold-cache query: after ``load()`` and a first query on an
unthrottled network, Chromium network emulation (CDP ``Network.emulateNetworkConditions``: 20
Mbit/s both ways, 40 ms latency), then 5 new queries, each run twice: the first is cold (its
shards are fetched), the repeat fetches nothing (a flat bundle or the peer fetches nothing per
query either). Every bundle is served with this checkout's runtime, JS and Python (``with_current_runtime``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from browser import BASELINE_MOUNT, CHROMIUM, CHROMIUM_ARGS, measure_stack, mounts, peer_model_root
from cdp_pipe import rss_run
from common import median, percentile
from server import BenchServer

__all__ = ["run_browser", "BROWSER_STACKS", "with_current_runtime", "rss_run"]

BROWSER_STACKS = {
    "flat": "/pages/websem.html?mode=semantic",
    "partitioned": f"/pages/websem.html?mode=semantic&bundle={BASELINE_MOUNT}",
    "peer-tuned": "/peer/peer-tuned.html",
}
THROTTLE = {"offline": False, "latency": 40, "downloadThroughput": 20e6 / 8, "uploadThroughput": 20e6 / 8}


PY_TEXT = "py/websem_text/"  # websem's own Python in a bundle (build/bundle.py _python_sources)


def _runtime_file(rel: str) -> bool:
    """Whether bundle path ``rel`` is a runtime file (JS, or websem's own Python under
    py/websem_text/), or one of their .br/.gz copies."""
    base = rel.removesuffix(".br").removesuffix(".gz")
    return (base.startswith(("runtime/", PY_TEXT)) or base in ("websem.js", "websem.d.ts", "index.html"))


def with_current_runtime(bundle: Path) -> Path:
    """``bundle`` as served with this checkout's runtime (web/src and web/text, as ``websem
    build`` copies them): the cached synthetic bundles keep the runtime of the build that made
    them, and a browser run must measure the runtime under test. Returns ``bundle`` itself when
    its runtime is current, else a sibling folder ``<name>.runtime`` of symlinks to its index,
    model, vendor and other py/ files, with fresh runtime copies and a manifest listing them
    (reused while web/src and web/text are unchanged). The build's Pyodide snapshot (under
    runtime/) is left out: it holds the old Python modules, and the runtime boots without one."""
    from websem.build.bundle import _python_sources, _runtime_sources
    from websem.export.source import sha256_file

    sources = _runtime_sources() + _python_sources()
    fresh = {rel: {"sha256": sha256_file(p), "size": p.stat().st_size} for p, rel in sources}
    man = json.loads((bundle / "manifest.json").read_text())
    old = {rel for rel in man["files"] if _runtime_file(rel)}
    if old == set(fresh) and all(man["files"][rel] == e for rel, e in fresh.items()):
        return bundle
    out = bundle.with_name(bundle.name + ".runtime")
    key = hashlib.sha256(json.dumps([fresh, str(bundle)], sort_keys=True).encode()
                         + (bundle / "manifest.json").read_bytes()).hexdigest()
    if (out / "manifest.json").is_file() and (out / ".key").is_file() and (out / ".key").read_text() == key:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for entry in bundle.iterdir():
        if entry.name not in ("manifest.json", "runtime", "py") and not _runtime_file(entry.name):
            (out / entry.name).symlink_to(entry.resolve())
    if (bundle / "py").is_dir():  # bs4, snowballstemmer, licences ...: the build's; websem_text: fresh
        (out / "py").mkdir()
        for entry in (bundle / "py").iterdir():
            if entry.name != PY_TEXT.split("/")[1]:
                (out / "py" / entry.name).symlink_to(entry.resolve())
    for p, rel in sources:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, out / rel)
    man["files"] = {**{r: e for r, e in man["files"].items() if not _runtime_file(r)}, **fresh}
    if man.get("encodings") is not None:
        man["encodings"] = {r: e for r, e in man["encodings"].items() if not _runtime_file(r)}
    rt = man.get("runtime") or {}
    if "python_files" in rt:  # websem_text's modules first, then the build's others (build/bundle.py)
        rt["python_files"] = ([rel for _, rel in _python_sources()]
                              + [r for r in rt["python_files"] if not r.startswith(PY_TEXT)])
    (out / "manifest.json").write_text(json.dumps(man, indent=1))
    (out / ".key").write_text(key)
    return out


def cold_query_throttled(pw, server: BenchServer, path: str, first: str, queries: list[str],
                         warm: list[str], timeout_s: float = 240) -> dict:
    """Load and run ``warm`` unthrottled, then time each of ``queries`` under THROTTLE, twice in a
    row (the repeat fetches nothing: the difference is the network), in a fresh profile."""
    profile = Path(tempfile.mkdtemp(prefix="websem-part-profile-"))
    ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                args=CHROMIUM_ARGS)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(f"{server.url}{path}{'&' if '?' in path else '?'}q={quote(first)}", wait_until="commit")
        page.wait_for_function("() => window.__bench && (window.__bench.firstResultMs !== undefined"
                               " || window.__bench.error !== undefined)", polling=25, timeout=timeout_s * 1000)
        err = page.evaluate("() => window.__bench.error ?? null")
        if err:
            raise RuntimeError(f"{path}: {err}")
        if warm:
            page.evaluate("qs => window.__bench.run(qs, false)", warm)
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", THROTTLE)
        server.take_log()
        times, repeat, fetched = [], [], []
        for q in queries:
            out = page.evaluate("qs => window.__bench.run(qs, false)", [q, q])
            times.append(out["times"][0])
            repeat.append(out["times"][1])  # the same query again: nothing left to fetch
            log = server.take_log()
            fetched.append(sum(e["bytes"] for e in log if e["status"] == 200))
        cdp.detach()
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    return {"times_ms": times, "repeat_ms": repeat, "bytes": fetched}


def run_browser(points: list[tuple[int, Path, Path]], queries: list[str], rounds: int = 1,
                n_queries: int = 200, n_warm_again: int = 60, partitioned_only_from: int | None = None) -> dict:
    """``points``: (chunks, flat bundle, partitioned bundle). Returns per-point medians. From
    ``partitioned_only_from`` chunks on only the partitioned stack runs: a flat bundle of a
    million chunks (1.4 GB) does not fit a tab, and the peer would load its vectors."""
    from playwright.sync_api import sync_playwright

    different = [queries[i % len(queries)] for i in range(n_queries)]
    again = different[:n_warm_again]
    cold_qs = [q for q in reversed(queries) if q not in different[:1]][:5]
    # No warm-up queries: they would fill the shard cache. The page's first query (unthrottled)
    # warms the JIT partly; each timed query runs twice, the repeat being the no-fetch baseline.
    warm_other: list[str] = []
    out: dict = {"rounds": rounds, "queries": n_queries, "warm_again": n_warm_again,
                 "throttle": THROTTLE, "points": {}}
    with sync_playwright() as pw:
        for n, flat, part in points:
            stacks = BROWSER_STACKS
            if partitioned_only_from is not None and n >= partitioned_only_from:
                stacks = {"partitioned": BROWSER_STACKS["partitioned"]}
            models = peer_model_root(flat)
            flat, part = with_current_runtime(flat), with_current_runtime(part)
            runs: list[dict] = []
            colds: dict[str, dict] = {}
            # Each point says when and how it was measured: --append keeps points of older runs.
            started = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rounds": rounds,
                       "loadavg": list(os.getloadavg())}
            with BenchServer(mounts(flat, models, baseline=part)) as server:
                for _ in range(rounds):
                    for stack, path in stacks.items():
                        t = time.perf_counter()
                        r = measure_stack(pw, server, stack, first_query=different[0], warm=different,
                                          measured=[q for q in again for _ in (0, 1)], repeat_visit=False,
                                          path=path)
                        r["query_ms"] = r["query_ms"][1::2]  # each query's second run: shards cached
                        r["renderer_rss_devtools_mb"] = r.pop("renderer_rss_mb", None)
                        bare = rss_run(server.url, path, different[0], different, [q for q in again for _ in (0, 1)])
                        r.update(renderer_rss_mb=bare["renderer_rss_mb"], renderer_hwm_mb=bare["renderer_hwm_mb"],
                                 renderer_anon_mb=bare.get("renderer_anon_mb"),
                                 bare_warm_p50_ms=percentile(bare["query_ms"][1::2], 50))
                        r["loadavg"] = list(os.getloadavg())
                        runs.append(r)
                        print(f"[partition/browser] {n} {stack}: warm p50 {percentile(r['query_ms'], 50):.1f} ms, "
                              f"RSS {r.get('renderer_rss_mb')} MB (with DevTools Network on: "
                              f"{r['renderer_rss_devtools_mb']} MB) ({time.perf_counter() - t:.0f} s)", flush=True)
                for stack, path in stacks.items():
                    colds[stack] = cold_query_throttled(pw, server, path, different[0], cold_qs, warm_other)
                    print(f"[partition/browser] {n} {stack}: throttled cold queries {colds[stack]['times_ms']}",
                          flush=True)
            per = {}
            for stack in stacks:
                rs = [r for r in runs if r["stack"] == stack]
                per[stack] = {
                    "warm_p50_ms": median([percentile(r["query_ms"], 50) for r in rs]),
                    "renderer_rss_mb": median([r.get("renderer_rss_mb") for r in rs]),
                    "renderer_rss_devtools_mb": median([r.get("renderer_rss_devtools_mb") for r in rs]),
                    "cold_start_ms": median([r["cold_ms"] for r in rs]),
                    "cold_start_bytes": median([r["cold_network"]["bytes"] for r in rs]),
                    "throttled_query_ms": median(colds[stack]["times_ms"]),
                    "throttled_first_query_ms": colds[stack]["times_ms"][0],
                    "throttled_query_bytes": median(colds[stack]["bytes"]),
                    "throttled_repeat_ms": median(colds[stack]["repeat_ms"]),
                }
            out["points"][str(n)] = {**started, "per_stack": per,
                                     "runs": [{k: v for k, v in r.items() if k not in ("query_ms",)} for r in runs],
                                     "throttled": colds}
    return out
