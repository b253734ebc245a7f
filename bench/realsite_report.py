"""bench/results/realsite.md from the results of bench/bench_realsite.py."""

from __future__ import annotations

from pathlib import Path

from common import RESULTS


def _mb(x: float | None) -> str:
    """Bytes as MB (n/a for None)."""
    return "n/a" if x is None else f"{x / 1e6:.2f} MB"


def _kb(x: float | None) -> str:
    """Bytes as kB (n/a for None)."""
    return "n/a" if x is None else f"{x / 1e3:.1f} kB"


def write_markdown(result: dict) -> Path:
    lines = ["# Real sites: websem vs Pagefind vs the site's own search (issue #15)", "",
             "Chromium, one 127.0.0.1 origin (no compression; brotli sizes computed per file). "
             "Questions and judgments: bench/realsite/ (test split only below; relevant = grade >= 1). Method: "
             "bench/bench_realsite.py docstring.", ""]
    for s in result["sites"]:
        wb = s["builds"]["websem"] or {}
        pb = s["builds"]["pagefind"] or {}
        run = s["run"]
        lines += [f"## {s['site']}: {s['package']} ({s['generator']})", "",
                  f"Run {run['date_utc']}, websem code {run['code_version']}, {run['rounds']} alternated cold "
                  "round(s) per system.", "",
                  f"websem bundle: {wb['docs']} documents, {wb['chunks']} chunks, "
                  f"{_mb(wb['bundle_bytes'])}; build {wb.get('seconds', 'n/a')} s"
                  + (" (reused: built earlier by code " + str(wb.get('reused_code_version')) + ")"
                     if wb.get("reused") else "")
                  + "".join(f" ({ln.strip()})" for ln in wb.get("log_tail") or [] if ln.startswith("embedding:"))
                  + f". Pagefind ({pb.get('version')}): {pb.get('pages')} pages indexed in {pb.get('seconds')} s. "
                  f"Built-in search: {s['builtin']}.", "",
                  f"| system ({s['systems'][next(iter(s['systems']))]['n_test']} test questions) | nDCG@10 "
                  "| MRR@10 | success@1 | success@10 | no results | non-page hits | missing anchors "
                  "| query p50 | bytes/query after load |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for label, e in s["systems"].items():
            t, a = e["test"], e["audit"]
            anchors = f"{a['anchor_missing']}/{a['anchored']}"
            if "subresult_audit" in e:
                sa = e["subresult_audit"]
                anchors += f" (sub-results {sa['anchor_missing']}/{sa['anchored']})"
            lines.append(f"| {label} | {t['ndcg@10']:.3f} | {t['mrr@10']:.3f} | {t['success@1']:.3f} | "
                         f"{t['success@10']:.3f} | {e['no_results']} | {a['not_page']}/{a['hits']} | "
                         f"{anchors} | {e['query_ms_median']:.1f} ms | {_kb(e['bytes_per_query'])} "
                         f"(br {_kb(e['brotli_bytes_per_query'])}) |")
        lines += ["", "| system | cold start to first result (median) | runs | cold bytes (br) | requests |",
                  "|---|---|---|---|---|"]
        for system, c in s["cold"].items():
            lines.append(f"| {system} | {c['cold_ms_median']:,.0f} ms | "
                         f"{', '.join(f'{x:,.0f}' for x in c['cold_ms'])} | {_mb(c['cold_bytes_median'])} "
                         f"({_mb(c['cold_brotli_bytes_median'])}) | {c['cold_requests_median']:.0f} |")
        h = s["systems"].get("websem-hybrid", {}).get("test")
        p = s["systems"].get("pagefind", {}).get("test")
        if h and p:
            dm, ds = h["mrr@10"] - p["mrr@10"], h["success@1"] - p["success@1"]
            met = dm >= 0.10 and ds >= 0.10 and s["systems"]["websem-hybrid"]["audit"]["not_page"] == 0
            lines += ["", f"Target (hybrid above Pagefind by >= 0.10 in MRR@10 and success@1, no non-page hit): "
                      f"MRR@10 {dm:+.3f}, success@1 {ds:+.3f}: **{'met' if met else 'not met'}**."]
        for label, e in s["systems"].items():
            ex = e["audit"]["anchor_missing_examples"] + e["audit"]["not_page_examples"]
            if ex:
                lines.append(f"- {label} examples of missing anchors / non-page hits: "
                             + ", ".join(f"`{x}`" for x in ex[:4]))
        lines.append("")
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    out = RESULTS / "realsite.md"
    out.write_text("\n".join(lines))
    return out
