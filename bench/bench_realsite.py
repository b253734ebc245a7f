"""Real-site evaluation (issue #15): websem against Pagefind 1.6 and the site's own search, in Chromium.

Two real generator outputs installed from Debian, each with judged natural-language questions
(bench/realsite/<site>/: BEIR layout, how they were written in bench/realsite/README.md):

  django    python-django-doc   Sphinx HTML   /usr/share/doc/python-django-doc/html
  postgres  postgresql-doc-15   DocBook HTML  /usr/share/doc/postgresql-doc-15/html

Per site:
  1. `websem build SITE --out CACHE/<site>/_websem` (the CLI, as a user runs it; cached per site, websem
     code version and model, so an unchanged checkout does not rebuild);
  2. `pagefind --site SITE --output-path CACHE/<site>/pagefind` (npm `pagefind` 1.6.0 from
     bench/peer, default settings);
  3. one origin on 127.0.0.1 serves the site at `/`, the bundle at `/_websem/`, Pagefind's index at
     `/pagefind/` and the harness pages at `/_realsite/` (nothing is copied into the site);
  4. in Chromium (fresh profile per run), every question goes through websem (modes hybrid, semantic,
     lexical: `load()` then `engine.search`), through Pagefind's JS API (`search(q)`, `data()` of the
     top 10) and through the site's built-in search where it has one (Sphinx's own search.html,
     driven in the page; the PostgreSQL offline docs have none). Hit URLs are mapped to pages
     (`#anchor` stripped, `dir/` -> `dir/index.html`) and scored against the test qrels: nDCG@10
     (linear gains), MRR@10, success@1 and success@10 (relevant = grade >= 1; a page listed twice
     counts once, at its first rank).
  5. Cold start (navigation to the first result, fresh profile) and cold bytes are measured in
     `--rounds` alternated rounds (websem hybrid, Pagefind, built-in, then again), medians reported;
     bytes per query after load come from the server's log while the questions run.
Also reported: the fraction of hits that are not HTML pages of the site (must be 0) and the
fraction of websem's (and Pagefind's sub-result) #anchors that do not exist in their page.

    .venv/bin/python bench/bench_realsite.py [--sites django postgres] [--rounds 3] [--reuse]

Results: bench/results/realsite.json (raw, per query) and realsite.md.

Modules: realsite_score.py (sites, questions, metrics, hit audit), realsite_build.py (websem and
Pagefind indexes), realsite_browser.py (one Chromium visit), realsite_report.py (the markdown);
here: the rounds per site, their summary and the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, median, websem_code_version, write_result  # noqa: E402
from realsite_browser import run_system  # noqa: E402
from realsite_build import WORK, build_pagefind, build_websem  # noqa: E402
from realsite_report import write_markdown  # noqa: E402
from realsite_score import (  # noqa: E402
    PAGES,
    SITES,
    K,
    Site,
    dedupe_pages,
    hit_audit,
    load_questions,
    mean_scores,
    page_of,
    score_run,
)
from server import BenchServer  # noqa: E402

__all__ = ["SITES", "Site", "load_questions", "page_of", "score_run", "main"]


# --------------------------------------------------------------------------- one site


def run_site(pw, site: Site, *, rounds: int, reuse: bool, max_queries: int | None,
             only: list[str] | None = None) -> dict:
    queries, qrels = load_questions(site.name)
    qids = sorted(queries)
    if max_queries:
        qids = qids[:max_queries]
    texts = [queries[q] for q in qids]
    systems = ["websem", "pagefind"] + (["sphinx"] if site.builtin == "sphinx" else [])
    systems = [s for s in systems if not only or s in only]
    websem_build = build_websem(site, reuse=reuse) if "websem" in systems else None
    pagefind_build = build_pagefind(site) if "pagefind" in systems else None
    mounts = {
        "/": site.root,
        "/_websem/": WORK / site.name / "_websem",
        "/pagefind/": WORK / site.name / "pagefind",
        "/_realsite/": PAGES,
    }
    test_ids = [q for q in qids if q in qrels["test"]]
    cold: dict[str, list[dict]] = {s: [] for s in systems}
    runs: dict[str, dict] = {}
    with BenchServer(mounts) as server:
        # Round 0 runs every question (and is also a cold sample); further rounds are cold-only.
        # Systems alternate within each round; each round's first query is a different test question.
        for r in range(max(rounds, 1)):
            first = queries[test_ids[r % len(test_ids)]]
            order = systems if r % 2 == 0 else list(reversed(systems))
            for system in order:
                print(f"[realsite] {site.name}: round {r + 1}/{rounds} {system}"
                      f"{' (all questions)' if r == 0 else ''}", flush=True)
                res = run_system(pw, server, system, first, queries=texts if r == 0 else None)
                cold[system].append({k: res[k] for k in ("cold_ms", "ready_ms", "cold_wall_ms", "cold_network")})
                if r == 0:
                    for label, run in res["runs"].items():
                        runs[label] = run | ({"console_errors": res["console_errors"]}
                                             if res.get("console_errors") else {})
    return {"site": site, "qids": qids, "texts": texts, "qrels": qrels, "runs": runs, "cold": cold,
            "builds": {"websem": websem_build, "pagefind": pagefind_build}}


def summarize_site(raw: dict) -> dict:
    site: Site = raw["site"]
    qids, qrels = raw["qids"], raw["qrels"]
    systems: dict[str, dict] = {}
    for label, run in raw["runs"].items():
        rows = run["rows"]
        pages_by_q = {}
        all_urls: list[str] = []
        sub_urls: list[str] = []
        for qid, row in zip(qids, rows, strict=True):
            pages = dedupe_pages(row["urls"])[:K]
            pages_by_q[qid] = pages
            all_urls += row["urls"][:K]
            sub_urls += [u for u in (row.get("subUrls") or [])[:K] if u]
        scores = {split: {q: score_run(pages_by_q[q], qrels[split][q]) for q in qids if q in qrels[split]}
                  for split in ("test", "dev")}
        n = len(rows)
        entry = {
            "test": mean_scores(scores["test"]), "dev": mean_scores(scores["dev"]),
            "n_test": len(scores["test"]), "n_dev": len(scores["dev"]),
            "query_ms_median": round(median([r["ms"] for r in rows]) or 0, 1),
            "bytes_per_query": round(run["after_load"]["bytes"] / n) if n else None,
            "brotli_bytes_per_query": round(run["after_load"]["brotli_bytes"] / n) if n else None,
            "audit": hit_audit(site, all_urls),
            "no_results": sum(1 for r in rows if not r["urls"]),
            "per_query": {q: {"pages": pages_by_q[q], **{k: round(v, 4) for k, v in s.items()}}
                          for split in ("test", "dev") for q, s in scores[split].items()},
        }
        if sub_urls:
            entry["subresult_audit"] = hit_audit(site, sub_urls)
        if run.get("console_errors"):
            entry["console_errors"] = run["console_errors"]
        systems[label] = entry
    cold = {}
    for system, xs in raw["cold"].items():
        cold[system] = {
            "cold_ms_median": round(median([x["cold_ms"] for x in xs]), 1),
            "cold_ms": [x["cold_ms"] for x in xs],
            "cold_bytes_median": median([x["cold_network"]["bytes"] for x in xs]),
            "cold_brotli_bytes_median": median([x["cold_network"]["brotli_bytes"] for x in xs]),
            "cold_requests_median": median([x["cold_network"]["requests"] for x in xs]),
        }
    return {"site": site.name, "package": site.package, "root": str(site.root), "generator": site.generator,
            "builtin": site.builtin or "none (the offline DocBook HTML ships no search)",
            "questions": len(qids), "builds": raw["builds"], "systems": systems, "cold": cold}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", nargs="+", choices=list(SITES), default=list(SITES))
    ap.add_argument("--rounds", type=int, default=3, help="cold-start rounds per system (alternated)")
    ap.add_argument("--reuse", action="store_true",
                    help="use an existing websem bundle even if the websem code changed since it was built")
    ap.add_argument("--max-queries", type=int, default=None, help="only the first N questions (smoke test)")
    ap.add_argument("--systems", nargs="+", choices=["websem", "pagefind", "sphinx"], default=None,
                    help="only these systems (smoke tests; a results file needs all of them)")
    ap.add_argument("--build-only", action="store_true",
                    help="build (or refresh) the websem bundles and Pagefind indexes, measure nothing")
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite results/realsite.md from results/realsite.json, run nothing")
    ap.add_argument("--note", action="append", default=[], help="a note for the results file")
    args = ap.parse_args(argv)
    if args.markdown_only:
        result = json.loads((RESULTS / "realsite.json").read_text())
        result["notes"] = list(dict.fromkeys(result.get("notes") or []))
        print(f"[realsite] wrote {write_markdown(result)}")
        return 0
    missing = [s for s in args.sites if not SITES[s].root.is_dir()]
    if missing:
        print("websem: site(s) not installed: " + ", ".join(
            f"{s} (apt-get install {SITES[s].package})" for s in missing), file=sys.stderr)
        return 2
    if args.build_only:
        for name in args.sites:
            facts = build_websem(SITES[name], reuse=args.reuse)
            print(f"[realsite] {name}: websem bundle {facts['docs']} docs, {facts['chunks']} chunks, "
                  f"{facts.get('seconds')} s", flush=True)
        return 0
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    summaries = []
    with sync_playwright() as pw:
        for name in args.sites:
            raw = run_site(pw, SITES[name], rounds=args.rounds, reuse=args.reuse, max_queries=args.max_queries,
                           only=args.systems)
            summary = summarize_site(raw)
            # Each site carries its own run facts: a run of one site keeps the other's last results.
            summary["run"] = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "rounds": args.rounds, "code_version": websem_code_version(),
                              "notes": args.note}
            summaries.append(summary)
    result = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": args.rounds,
              "seconds": round(time.perf_counter() - t0, 1), "code_version": websem_code_version(),
              "max_queries": args.max_queries, "notes": args.note, "sites": summaries}
    if args.max_queries or args.systems:
        # A smoke run must not overwrite the real results.
        out = WORK / "realsite-smoke.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        print(f"[realsite] smoke run written to {out}")
        for s in summaries:
            for label, e in s["systems"].items():
                print(s["site"], label, e["test"], e["audit"]["not_page"], e["audit"]["anchor_missing"],
                      e["audit"]["anchored"])
        return 0
    try:
        previous = json.loads((RESULTS / "realsite.json").read_text())["sites"]
    except (OSError, ValueError, KeyError):
        previous = []
    ran = {s["site"] for s in summaries}
    kept = [s for s in previous if s.get("site") not in ran and s.get("run")]
    result["sites"] = sorted(kept + summaries, key=lambda s: list(SITES).index(s["site"]))
    result["notes"] = list(dict.fromkeys(n for s in result["sites"] for n in s["run"]["notes"]))
    write_result("realsite", result)
    print(f"[realsite] wrote {write_markdown(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
