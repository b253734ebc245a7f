"""The report of bench/bench_partition.py: bench/results/partition.json as markdown
(partition.md). Kept apart from the measuring code; `markdown(json.load(f))` regenerates the
report from the results file without measuring again."""

from __future__ import annotations


def markdown(report: dict) -> str:
    q, s = report.get("quality") or {}, report.get("scale") or {}
    lines = ["# Partitioned index (bench/bench_partition.py)", "",
             f"{report['date']} · load average {report['machine'].get('loadavg')} · "
             f"vector dtype of the partitioned rows: {report['vector_dtype']} · dense code: "
             f"{report.get('code', 'rows')} · row blocks: {report.get('block_rows', '-')} rows, order "
             f"{report.get('order', '-')} · IVF settings: "
             f"{report.get('settings', 'default')}"
             + (" (= build/partition.py default_ivf)" if report.get("settings_equal_default") else ""), ""]
    if q:
        lines += ["## Quality: every judged set, default settings, against the flat index", "",
                  "| set | chunks | nlist / nprobe | mode | recall@10 | nDCG@10 flat | partitioned | delta | "
                  "bytes/query median (brotli) | always-loaded |", "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in q.items():
            for mode, m in r["modes"].items():
                lines.append(f"| {name} | {r['chunks']:,} | {r['nlist']} / {r['nprobe']} | {mode} | "
                             f"{m['recall@10']:.4f} | {m['ndcg@10_flat']:.4f} | {m['ndcg@10_part']:.4f} | "
                             f"{m['ndcg@10_delta']:+.4f} | {m['bytes_per_query']['total']['median']:,.0f} | "
                             f"{r['always_loaded']['brotli']:,} |")
        lines.append("")
    if s:
        lines += ["## Scale: synthetic chunks (real vectors + noise, cos 0.90 to the source)", "",
                  f"{s['sources']:,} real source vectors (chunks of "
                  f"{', '.join(s.get('source_sets') or ['the judged sets'])}"
                  f"{'' if s.get('source_sets') else ' and the realsite bundles'}), sigma {s['sigma']:.5f}; "
                  f"{s['queries']} real query texts, "
                  "each with an empty shard cache.", "",
                  "| chunks | nlist / nprobe | always-loaded (brotli) | mode | bytes/query median | p90 | "
                  "ivf rows / codes / lex / frag median | requests/query median | recall@10 vs flat | "
                  "CPU warm p50 ms (flat) | convert s / peak RSS MB |",
                  "|---:|---|---:|---|---:|---:|---|---:|---:|---:|---:|"]
        for n, p in s["points"].items():
            for mode, m in p["modes"].items():
                b = m["bytes_per_query"]
                flat_ms = m.get("cpu_warm_p50_ms_flat")
                lines.append(
                    f"| {int(n):,} | {p['nlist']} / {p['nprobe']} | {p['always_loaded']['brotli']:,} | {mode} | "
                    f"{b['total']['median']:,.0f} | {b['total']['p90']:,.0f} | {b['ivf']['median']:,.0f} / "
                    f"{b.get('code', {}).get('median', 0):,.0f} / "
                    f"{b['lex']['median']:,.0f} / {b['frag']['median']:,.0f} | "
                    f"{b['requests']['median'] if 'requests' in b else '-'} | "
                    f"{m.get('recall@10_vs_flat', '-')} | {m['cpu_warm_p50_ms']}"
                    f"{f' ({flat_ms})' if flat_ms is not None else ''} | "
                    f"{p['convert']['seconds']} / {p['convert']['peak_rss_mb']} |")
        lines.append("")
        sweep = [(n, p) for n, p in s["points"].items() if p.get("blocks")]
        if sweep:
            lines += ["### Row blocks: bytes and requests per cold query by block size and row order", "",
                      "Each variant is the same bundle (same lists, same ranking: checked, top-10 ids equal "
                      "to the default variant's for every query) with rows shards of `block_rows` rows in "
                      "`order`; a query reads the blocks holding its rerank candidates by byte range.", "",
                      "| chunks | block_rows | order | mode | bytes/query median | p90 | ivf rows median | "
                      "requests/query median | same ranking |", "|---:|---:|---|---|---:|---:|---:|---:|---|"]
            for n, p in sweep:
                rows = {f"b{p['block_rows']}-{p['order']}": {"block_rows": p["block_rows"], "order": p["order"],
                                                           "modes": p["modes"], "default": True}, **p["blocks"]}
                for _, v in sorted(rows.items(), key=lambda kv: (kv[1]["order"], kv[1]["block_rows"])):
                    for mode in ("semantic", "hybrid"):
                        b = v["modes"][mode]["bytes_per_query"]
                        tag = " (default)" if v.get("default") else ""
                        lines.append(f"| {int(n):,} | {v['block_rows']}{tag} | {v['order']} | {mode} | "
                                     f"{b['total']['median']:,.0f} | {b['total']['p90']:,.0f} | "
                                     f"{b['ivf']['median']:,.0f} | {b['requests']['median']} | "
                                     f"{'yes' if v.get('default') or v['modes'][mode]['same_ranking'] else 'NO'} |")
            lines.append("")
    b = report.get("browser")
    if b:
        lines += ["## Browser (Chromium): flat vs partitioned vs transformers.js tuned, same run", "",
                  "A round runs each stack once, in turn, each in fresh Chromium profiles: a Playwright run "
                  "(cold start, warm p50, RSS with DevTools Network on), then a bare-pipe run (renderer RSS); "
                  "each figure is the median over the point's rounds (below the table). Per run: "
                  f"{b['queries']} different queries, then the first {b['warm_again']} "
                  "again (warm p50: shards cached); RSS after them. Throttled: 5 new queries after load and one "
                  "first query, at 20 Mbit/s + 40 ms (CDP), median (first); each run twice, the repeat fetching "
                  "nothing. Renderer RSS: in a Chromium driven over a bare CDP pipe (no DevTools Network "
                  "domain); with Playwright's DevTools Network domain on, Chromium keeps response bodies in the "
                  "renderer for DevTools (up to ~200 MB), which no user's tab holds (the column after it).", "",
                  "| chunks | stack | warm p50 ms | renderer RSS MB | RSS with DevTools Network on MB | "
                  "cold start ms | cold start bytes (raw) | throttled query ms (first) | same query repeated ms | "
                  "throttled query bytes (raw) |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n, p in b["points"].items():
            for stack, m in p["per_stack"].items():
                if m.get("renderer_rss_devtools_mb") is None:  # a run from before the bare-pipe RSS
                    bare, devtools = "-", f"{m['renderer_rss_mb']:.1f}"
                else:
                    bare, devtools = f"{m['renderer_rss_mb']:.1f}", f"{m['renderer_rss_devtools_mb']:.1f}"
                lines.append(f"| {int(n):,} | {stack} | {m['warm_p50_ms']:.1f} | {bare} | {devtools} | "
                             f"{m['cold_start_ms']:.0f} | {m['cold_start_bytes']:,.0f} | "
                             f"{m['throttled_query_ms']:.0f} ({m['throttled_first_query_ms']:.0f}) | "
                             f"{m.get('throttled_repeat_ms', float('nan')):.0f} | {m['throttled_query_bytes']:,.0f} |")
        pts = b["points"]
        lo, hi = min(pts, key=int), max(pts, key=int)
        if lo != hi:
            a, z = pts[lo]["per_stack"]["partitioned"], pts[hi]["per_stack"]["partitioned"]
            line = (f"Partitioned {int(hi):,} vs {int(lo):,} chunks: RSS ratio "
                    f"{z['renderer_rss_mb'] / a['renderer_rss_mb']:.2f} (target <= 1.2 at 1M), warm p50 ratio "
                    f"{z['warm_p50_ms'] / a['warm_p50_ms']:.2f} (target <= 1.5 at 1M).")
            if a.get("renderer_rss_devtools_mb") and z.get("renderer_rss_devtools_mb"):
                line += (f" With DevTools Network on: RSS ratio "
                         f"{z['renderer_rss_devtools_mb'] / a['renderer_rss_devtools_mb']:.2f}.")
            lines += ["", line]
        lines += ["", _measured(b)]
        lines.append("")
    for note in report.get("notes", []):
        lines += [f"Note: {note}", ""]
    return "\n".join(lines)


def _measured(b: dict) -> str:
    """When each browser point was measured: points kept by --append come from older runs."""
    groups: dict[tuple, list[str]] = {}
    for n, p in b["points"].items():
        key = (p.get("date"), p.get("rounds", b["rounds"] if "date" in p else None),
               round(p["loadavg"][0], 1) if p.get("loadavg") else None)
        groups.setdefault(key, []).append(f"{int(n):,}")
    parts = []
    for (date, rounds, load), ns in groups.items():
        sizes = ns[0] if len(ns) == 1 else f"{', '.join(ns[:-1])} and {ns[-1]}"
        if date is None:
            parts.append(f"{sizes} chunks: an earlier run (see the notes)")
        else:
            parts.append(f"{sizes} chunks: {date}, {rounds} round(s), load average {load} at the start")
    return "Measured: " + "; ".join(parts) + "."
