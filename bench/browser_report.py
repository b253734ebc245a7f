"""The browser benchmark's report: per-stack medians and ratios (websem/peer, new/baseline), the
markdown table and the plot written next to bench/results/<name>.json. Split from browser.py,
which measures; this only reads the numbers it recorded."""

from __future__ import annotations

from pathlib import Path

from common import RESULTS, median, percentile
from server import network_label

__all__ = ["summarize", "write_markdown", "rerun_command", "plot"]

# The ratios new/baseline: start, warm query and renderer memory (and bytes, for the record).
BASELINE_RATIO_KEYS = ("cold_ms_median", "repeat_ms_median", "third_ms_median", "query_p50_ms", "query_p95_ms",
                       "renderer_rss_mb_median", "renderer_hwm_mb_median", "js_heap_used_mb_median",
                       "cold_bytes")


def summarize(runs: list[dict], stacks: list[str]) -> dict:
    per: dict[str, dict] = {}
    for s in stacks:
        rs = [r for r in runs if r["stack"] == s and "cold_ms" in r]
        q = [t for r in rs for t in r["query_ms"]]
        per[s] = {
            "runs": len(rs),
            "cold_ms_median": median([r["cold_ms"] for r in rs]),
            "repeat_ms_median": median([r.get("repeat_ms") for r in rs]),
            # The third visit: V8's code cache for the scripts exists from the second (browser.py).
            "third_ms_median": median([r.get("third_ms") for r in rs]),
            "query_p50_ms": median([percentile(r["query_ms"], 50) for r in rs]),
            "query_p95_ms": median([percentile(r["query_ms"], 95) for r in rs]),
            "query_p50_ms_pooled": percentile(q, 50),
            "query_p95_ms_pooled": percentile(q, 95),
            "renderer_rss_mb_median": median([r.get("renderer_rss_mb") for r in rs]),
            "renderer_hwm_mb_median": median([r.get("renderer_hwm_mb") for r in rs]),
            # The Playwright run's: DevTools' Network domain on, response bodies kept in the renderer.
            "renderer_rss_devtools_mb_median": median([r.get("renderer_rss_devtools_mb") for r in rs]),
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
        # websem-* rows (websem-hybrid, the baselines) are extra rows, not peers.
        for peer in (s for s in stacks if not s.startswith("websem")):
            p = per[peer]
            ratios[peer] = {
                k: (w[k] / p[k] if w.get(k) and p.get(k) else None)
                for k in ("cold_ms_median", "repeat_ms_median", "third_ms_median", "query_p50_ms",
                          "query_p95_ms", "renderer_rss_mb_median", "cold_bytes")
            }
    vs_baseline: dict[str, dict] = {}
    for s in stacks:
        base = per.get(f"{s}-baseline")
        if base is None:
            continue
        vs_baseline[s] = {k: (per[s][k] / base[k] if per[s].get(k) and base.get(k) else None)
                          for k in BASELINE_RATIO_KEYS}
    out = {"per_stack": per, "ratios_websem_over_peer": ratios}
    if "websem-hybrid" in per:  # the product default against the peers (issue #12's targets)
        out["ratios_hybrid_over_peer"] = _over_peers(per, "websem-hybrid", stacks)
    out["compile_ms"] = _compile_times(runs, stacks)
    out["phase_ms"] = _phase_times(runs, stacks)
    if vs_baseline:
        out["ratios_new_over_baseline"] = vs_baseline
    return out


def _over_peers(per: dict, row: str, stacks: list[str]) -> dict:
    """``row`` / each peer, for the PEER_COLUMNS keys."""
    w = per[row]
    return {peer: {k: (w[k] / per[peer][k] if w.get(k) and per[peer].get(k) else None)
                   for _, k in PEER_COLUMNS}
            for peer in stacks if not peer.startswith("websem")}


def _compile_times(runs: list[dict], stacks: list[str]) -> dict:
    """Median wasm compile ms per websem stack and file, on the cold start and on the repeat
    visit (the runtime's "compiled" events): a repeat visit served from the browser's compiled
    code cache compiles in a fraction of the cold time."""
    out: dict[str, dict] = {}
    for s in stacks:
        per_file: dict[str, dict] = {}
        for visit in ("stages", "repeat_stages"):
            for r in runs:
                if r["stack"] != s:
                    continue
                for st in r.get(visit) or []:
                    if st.get("compile_ms") is not None:
                        per_file.setdefault(st["stage"].removeprefix("compiled "), {}).setdefault(
                            "cold" if visit == "stages" else "repeat", []).append(st["compile_ms"])
        if per_file:
            out[s] = {f: {k: median(v) for k, v in d.items()} for f, d in per_file.items()}
    return out


# Loading phases timed from the runtime's events: (name, start stage, end stage, clock). Python-worker
# events are timed by the worker's own clock (`own_ms`, bench/pages/websem.js): the engine's
# thread, busy creating the ORT session, receives them late.
PHASES = (("Pyodide boot", "pyodide-boot", "pyodide-ready", "own_ms"),
          ("ORT session", "ort-session", "ort-ready", "at_ms"))


def _phase_times(runs: list[dict], stacks: list[str]) -> dict:
    """Median ms of each PHASES entry per websem stack, cold start and repeat visit: what the
    browser's compiled-code cache (wasm compiled lazily during the boot otherwise) and the
    snapshot save on a repeat visit."""
    def at(stages: list[dict], name: str, clock: str) -> float | None:
        st = next((x for x in stages if x["stage"] == name), None)
        return None if st is None else st.get(clock)

    out: dict[str, dict] = {}
    for s in stacks:
        per: dict[str, dict] = {}
        for visit, key in (("cold", "stages"), ("repeat", "repeat_stages")):
            for name, start, end, clock in PHASES:
                times = []
                for r in (r for r in runs if r["stack"] == s):
                    stages = r.get(key) or []
                    a, b = at(stages, start, clock), at(stages, end, clock)
                    if a is not None and b is not None:
                        times.append(b - a)
                if times:
                    per.setdefault(name, {})[visit] = median(times)
        if per:
            out[s] = per
    return out


# Ratio table columns: (heading, summary key).
PEER_COLUMNS = (("cold", "cold_ms_median"), ("repeat", "repeat_ms_median"), ("3rd visit", "third_ms_median"),
                ("p50", "query_p50_ms"), ("p95", "query_p95_ms"), ("renderer RSS", "renderer_rss_mb_median"),
                ("cold bytes", "cold_bytes"))
BASELINE_COLUMNS = (*PEER_COLUMNS[:6], ("peak RSS", "renderer_hwm_mb_median"),
                    ("JS heap", "js_heap_used_mb_median"), ("cold bytes", "cold_bytes"))


def _ratio_table(caption: str, row_label: str, ratios: dict[str, dict], columns) -> list[str]:
    """Markdown lines of one ratio table (none when there are no ratios)."""
    if not ratios:
        return []
    lines = ["", caption, "", "| " + " | ".join([row_label, *(h for h, _ in columns)]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for name, r in ratios.items():
        cells = ["n/a" if r.get(k) is None else f"{r[k]:,.2f}" for _, k in columns]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines


def write_markdown(data: dict, results: Path = RESULTS) -> Path:
    per = data["summary"]["per_stack"]
    ratios = data["summary"]["ratios_websem_over_peer"]

    def f(x, nd=0):
        return "n/a" if x is None else f"{x:,.{nd}f}"

    base = data.get("baseline")
    title = ("# Browser: websem before/after (a baseline bundle against the current build, same Chromium, "
             "same run)" if base else
             "# Browser: websem vs transformers.js (same Chromium, same model file, same vectors)")
    lines = [
        title,
        "",
        *([f"Baseline: `{base['path']}` (format {base['format_version']}, websem {base['websem_version']}, "
           f"{base['chunks']} chunks, same model), served at `{base['mount']}`; each `*-baseline` row runs "
           "right after its new counterpart in every round.", ""] if base else []),
        f"{data['date']} · {data['machine']['cpu_model']} · {data['machine']['nproc']} cores · "
        f"load {', '.join(f'{x:.1f}' for x in data['machine']['loadavg'])} · mode `{data['mode']}` · "
        f"{data['rounds']} alternated rounds · bundle: {data['bundle']['chunks']} chunks "
        f"({data['bundle']['dataset']}) · {data['queries']['measured']} measured queries after "
        f"{data['queries']['warm']} warm-up"
        + " · " + network_label(data.get("network")),
        "",
        "| stack | cold start ms | repeat visit ms | 3rd visit ms | query p50 ms | query p95 ms | renderer RSS MB "
        "| peak RSS MB | RSS with DevTools Network on MB | JS heap MB | cold bytes (raw) | cold bytes (brotli) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s, p in per.items():
        br = data["bytes"].get(s, {})
        lines.append(
            f"| {s} | {f(p['cold_ms_median'])} | {f(p['repeat_ms_median'])} | {f(p.get('third_ms_median'))} | "
            f"{f(p['query_p50_ms'], 1)} | {f(p['query_p95_ms'], 1)} | "
            f"{f(p['renderer_rss_mb_median'])} | {f(p['renderer_hwm_mb_median'])} | "
            f"{f(p.get('renderer_rss_devtools_mb_median'))} | "
            f"{f(p['js_heap_used_mb_median'], 1)} | {f(br.get('raw'))} | {f(br.get('brotli'))} |"
        )
    lines += _ratio_table("websem / peer (medians; < 1 means websem is better):", "peer", ratios, PEER_COLUMNS)
    lines += _ratio_table("websem-hybrid (the default mode) / peer (medians; < 1 means websem is better):",
                          "peer", data["summary"].get("ratios_hybrid_over_peer") or {}, PEER_COLUMNS)
    lines += _ratio_table("new / baseline (medians; < 1 means the new runtime is better):", "stack",
                          data["summary"].get("ratios_new_over_baseline") or {}, BASELINE_COLUMNS)
    for stack in ("websem", "websem-baseline"):
        stage_runs = [r["stages"] for r in data["runs"] if r["stack"] == stack and r.get("stages")]
        if not stage_runs:
            continue
        names = [st["stage"] for st in stage_runs[0]]
        med = {n: median([next((st["at_ms"] for st in sr if st["stage"] == n), None)
                          for sr in stage_runs]) for n in names}
        lines += ["", f"{stack} loading stages on a cold start (median ms after navigation start): "
                  + ", ".join(f"{n} {f(v)}" for n, v in med.items())]
    for s, p in per.items():
        bd = p.get("breakdown_p50_ms")
        if bd and p.get("query_p50_ms"):
            rest = p["query_p50_ms"] - bd["tokenize_embed_ms"]
            lines += ["", f"{s} warm query, where the time goes (p50 ms, diagnostics via the engine's "
                      f"test hook): tokenize {f(bd['tokenize_ms'], 1)}, tokenize + embed "
                      f"{f(bd['tokenize_embed_ms'], 1)}, whole search() {f(p['query_p50_ms'], 1)} "
                      f"→ ranking + result assembly ≈ {f(rest, 1)}."]
    for stack, files in (data["summary"].get("compile_ms") or {}).items():
        lines += ["", f"{stack} wasm compile ms (median, cold start → repeat visit; from the response's "
                  "first byte, so reading the file counts): " + ", ".join(
                      f"{name} {f(t.get('cold'))} → {f(t.get('repeat'))}" for name, t in files.items())]
    for stack, phases in (data["summary"].get("phase_ms") or {}).items():
        lines += ["", f"{stack} loading phases ms (median, cold start → repeat visit): " + ", ".join(
            f"{name} {f(t.get('cold'))} → {f(t.get('repeat'))}" for name, t in phases.items())]
    if data.get("agreement"):
        lines += ["", "Same job check: mean overlap@10 of the peer's top-10 with websem's: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in data["agreement"].items() if v is not None)]
    if data.get("baseline_agreement"):
        lines += ["", "Same results check: mean overlap@10 of each baseline row's top-10 with its new "
                  "counterpart's: " + ", ".join(f"{k} {v:.3f}" for k, v in data["baseline_agreement"].items()
                                                if v is not None)]
    lines += ["", ("Files fetched on a cold load (raw / brotli bytes, at the quality websem's build ships: 11 for "
              "wasm, JS and the snapshot, 9 for other files over 4 MB; the same rule for every stack):"), ""]
    for s, b in data["bytes"].items():
        ranges = b.get("ranges") or {}
        lines.append(f"- **{s}**: " + ", ".join(
            f"`{x['path']}` {x['raw']:,} / {x['brotli']:,}"
            for x in sorted(b["files"], key=lambda x: -x["raw"])[:8])
            + (f"; plus {ranges['requests']} byte ranges of {', '.join(f'`{p}`' for p in ranges['paths'])}, "
               f"{ranges['bytes']:,} bytes asked for before the first result (sent as is, counted in both "
               "totals)" if ranges.get("requests") else ""))
    lines += [
        "",
        "Cold start = `performance.now()` at the first query's hits (counted from navigation start), "
        "fresh profile. Repeat visit = second navigation in the same profile (warm HTTP cache; the "
        f"server sends `Cache-Control: {data['cache_control']}` to both stacks). 3rd visit = one more, "
        "once Chromium holds V8's code cache for the scripts (it stores it on a script's second load "
        "and reads it from the third: what every later visit sees). Renderer RSS and peak "
        "RSS: from /proc after the warm queries, in a second run of the same page, first query, warm-up "
        "and measured queries right after each run, in a Chromium driven over a bare CDP pipe "
        "(bench/cdp_pipe.py: no DevTools domain enabled); the ratios use it. RSS with DevTools Network on: "
        "the Playwright run's (timings, bytes and JS heap are from that run); Playwright enables DevTools' "
        "Network domain, and Chromium then keeps every response body in the renderer for DevTools, which "
        "no visitor's tab holds, so a stack that fetches more bytes looks bigger there than it is. "
        f"Plot: `{data['name']}.png`.",
        "",
        f"Rerun: `{rerun_command(data)}` (bench/browser.py).",
    ]
    out = results / f"{data['name']}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def rerun_command(data: dict) -> str:
    """The bench/browser.py command line that measures what ``data`` records."""
    base = [s for s in data["stacks"] if not s.endswith("-baseline")]
    net = (data.get("network") or {}).get("name", "loopback")
    return " ".join([
        "nice -n 10 .venv/bin/python bench/browser.py", f"--{data['mode']}", f"--rounds {data['rounds']}",
        "--stacks", *base, f"--queries {data['queries']['measured']}", f"--warm {data['queries']['warm']}",
        *([f"--dataset {data['queries']['dataset']}"] if data["queries"]["dataset"] != "cranfield" else []),
        *([f"--network {net}"] if net != "loopback" else []),
        *(["--baseline BASELINE_BUNDLE"] if data.get("baseline") else []),
    ])


def plot(data: dict, results: Path = RESULTS) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(data["summary"]["per_stack"])
    colors = {"websem": "#1b7f5b", "websem-hybrid": "#7cc4a4", "peer-default": "#9e9e9e", "peer-tuned": "#5c6bc0",
              "websem-baseline": "#b5651d", "websem-hybrid-baseline": "#e0a86b"}
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    runs = data["runs"]
    # 1) start times, each run a dot, median a bar
    ax = axes[0]
    width = 0.27
    for i, s in enumerate(stacks):
        for j, key in enumerate(("cold_ms", "repeat_ms", "third_ms")):
            vals = [r[key] / 1000 for r in runs if r["stack"] == s and r.get(key)]
            x = i + (j - 1) * width
            if vals:
                ax.bar(x, median(vals), width, color=colors.get(s), alpha=(1.0, 0.55, 0.3)[j],
                       label=("cold", "repeat visit", "3rd visit")[j] if i == 0 else None)
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
    ax.bar([x + 0.2 for x in xs], br, 0.4, label="brotli", color=[colors.get(s) for s in stacks])
    ax.set_xticks(list(xs), stacks)
    ax.set_ylabel("MB fetched on a cold load")
    ax.set_title("Bytes")
    ax.legend(fontsize=8)
    # 4) memory
    ax = axes[3]
    per = data["summary"]["per_stack"]
    rss = [per[s]["renderer_rss_mb_median"] or 0 for s in stacks]
    devtools = [per[s].get("renderer_rss_devtools_mb_median") or 0 for s in stacks]
    heap = [per[s]["js_heap_used_mb_median"] or 0 for s in stacks]
    ax.bar([x - 0.27 for x in xs], rss, 0.27, label="renderer RSS", color=[colors.get(s) for s in stacks])
    ax.bar(list(xs), devtools, 0.27, label="RSS, DevTools Network on", color="#e0e0e0")
    ax.bar([x + 0.27 for x in xs], heap, 0.27, label="JS heap used", color="#bdbdbd")
    ax.set_xticks(list(xs), stacks)
    ax.set_ylabel("MB")
    ax.set_title("Renderer memory after the warm queries")
    ax.legend(fontsize=8)
    for ax in axes:  # up to six stacks with long names: keep the labels apart
        ax.tick_params(axis="x", labelsize=8.5, labelrotation=12 if len(stacks) <= 4 else 25)
    what = "websem new vs baseline" if data.get("baseline") else "websem vs transformers.js"
    fig.suptitle(f"{what} · {data['machine']['cpu_model']} · "
                 f"{data['machine']['nproc']} cores · {data['date'][:10]} · medians of "
                 f"{data['rounds']} alternated rounds", fontsize=10)
    fig.tight_layout()
    out = results / f"{data['name']}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
