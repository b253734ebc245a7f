"""Lexical index size and query-time BM25 speed: CPython vs Pyodide vs plain JS, same bytes.

Run from the repository root::

    .venv/bin/python bench/bench_lexical.py [--set scifact-train] [--rounds 3]

Builds websem's BM25 index over a judged set from ../shared/data (one chunk per document,
title + text), measures its size against a naive JSON postings file (raw, gzip, brotli), then
runs tests/js/pyodide_lexical.mjs in Node: the shipped web/text/*.py inside Pyodide and a
plain-JS scorer over the same index bytes, alternating A B A B, per-query medians, postings
decoded from bytes on every query on both sides. Checks both rank identically first.
Writes bench/results/lexical.json and bench/results/lexical.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import bench_quality as bq  # noqa: E402  (same data loading as the quality benchmark)


def _sizes(blob: bytes) -> dict:
    import brotli

    return {"raw": len(blob), "gzip": len(gzip.compress(blob, 9)),
            "brotli": len(brotli.compress(blob, quality=11))}


def main(argv: list[str] | None = None) -> int:
    from websem.build.lexical import snowball_files
    from websem.text.analyze import Analyzer
    from websem.text.bm25 import LexicalIndex

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="scifact-train", choices=bq.SETS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    data = bq.load_set(args.set)
    analyzer = Analyzer()
    t0 = time.perf_counter()
    terms = [analyzer.terms(t) for t in data["texts"]]
    analyze_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = LexicalIndex.build(terms, analyzer=analyzer.config())
    blob = index.to_bytes()
    build_s = time.perf_counter() - t0

    # Naive peer format: {"term": [[chunk, tf], ...]} JSON, what a quick implementation ships.
    naive: dict[str, list[list[int]]] = {}
    for tid, t in enumerate(index.terms):
        ids, tfs = index.postings_of(tid)
        naive[t] = [[c, f] for c, f in zip(ids, tfs, strict=True)]
    naive_blob = json.dumps(naive, separators=(",", ":")).encode()

    # CPython query time (same decode-every-time rule).
    qterms = [analyzer.terms(q) for q in data["queries"]]
    cpy = []
    for _ in range(args.rounds):
        for ts in qterms:
            index._cache.clear()
            t = time.perf_counter()
            index.search(ts, 10)
            cpy.append(1000 * (time.perf_counter() - t))

    node = shutil.which("node")
    runtime: dict = {}
    if node is None:
        runtime = {"skipped": "node not found"}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            (tmp_path / "lexical.bin").write_bytes(blob)
            snow = tmp_path / "snowballstemmer"
            snow.mkdir()
            for rel, content in snowball_files().items():
                (tmp_path / rel).write_bytes(content)
            job = {"index": str(tmp_path / "lexical.bin"), "queries": data["queries"], "k": 10,
                   "repeat": args.rounds, "snowball_dir": str(snow)}
            (tmp_path / "job.json").write_text(json.dumps(job))
            proc = subprocess.run([node, str(REPO / "tests" / "js" / "pyodide_lexical.mjs"),
                                   str(tmp_path / "job.json")], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(proc.stderr[-3000:])
            out = json.loads(proc.stdout)
        want = [[[c, s] for c, s in index.search(ts, 10)] for ts in qterms]
        runtime = dict(out["timing_ms"])
        runtime["python"] = out["python"]
        runtime["identical_terms"] = out["terms"] == qterms
        runtime["identical_pyodide_vs_cpython"] = out["pyodide"] == want
        runtime["identical_js_vs_cpython"] = out["js"] == want
        runtime["ratio_pyodide_over_js_median"] = round(
            runtime["pyodide_score_median"] / runtime["js_score_median"], 1)

    report = {
        "name": "lexical",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "set": args.set,
        "docs": len(data["texts"]),
        "queries": len(qterms),
        "terms": index.n_terms,
        "postings": index.n_postings,
        "analyze_docs_s": round(analyze_s, 2),
        "build_s": round(build_s, 2),
        "index_bytes": _sizes(blob),
        "naive_json_bytes": _sizes(naive_blob),
        "bytes_per_posting": round(len(blob) / index.n_postings, 3),
        "cpython_score_median_ms": round(statistics.median(cpy), 3),
        "runtime_ms": runtime,
        "machine": bq.machine_info(),
        "note": "2-core machine shared with other jobs: absolute times are noisy, ratios are "
                "measured in the same run (A B A B).",
    }
    print(json.dumps(report, indent=1))
    if not args.no_write:
        res = REPO / "bench" / "results"
        res.mkdir(parents=True, exist_ok=True)
        (res / "lexical.json").write_text(json.dumps(report, indent=1) + "\n")
        (res / "lexical.md").write_text(markdown(report))
    return 0


def markdown(r: dict) -> str:
    ib, nb, rt = r["index_bytes"], r["naive_json_bytes"], r["runtime_ms"]
    lines = [
        "# Lexical index: size and BM25 query speed (bench/bench_lexical.py)", "",
        f"Set {r['set']}: {r['docs']} docs, {r['terms']} terms, {r['postings']} postings, "
        f"{r['queries']} queries. {r['date']}.", "",
        "| file | raw | gzip | brotli |", "|---|---:|---:|---:|",
        f"| websem lexical.bin | {ib['raw']:,} | {ib['gzip']:,} | {ib['brotli']:,} |",
        f"| naive JSON postings | {nb['raw']:,} | {nb['gzip']:,} | {nb['brotli']:,} |", "",
        f"{r['bytes_per_posting']} bytes per posting raw (terms, idf, offsets, lengths included).", "",
        "BM25 top-10 per query, postings decoded from bytes each query (median ms):", "",
        "| runtime | median ms/query |", "|---|---:|",
        f"| CPython {bq.platform.python_version()} | {r['cpython_score_median_ms']} |",
    ]
    if "pyodide_score_median" in rt:
        lines += [
            f"| Pyodide (Python {rt['python']}) in Node | {rt['pyodide_score_median']:.3f} |",
            f"| plain JS in Node, same bytes | {rt['js_score_median']:.3f} |", "",
            f"Pyodide / JS = {rt['ratio_pyodide_over_js_median']}x. Identical rankings and scores: "
            f"Pyodide vs CPython {rt['identical_pyodide_vs_cpython']}, JS vs CPython "
            f"{rt['identical_js_vs_cpython']}. Query analysis in Pyodide: "
            f"{rt['pyodide_analyze_per_query']:.3f} ms/query; index load: Pyodide "
            f"{rt['pyodide_index_load']:.0f} ms, JS {rt['js_index_load']:.0f} ms.",
        ]
    lines += ["", r["note"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
