"""The analyzer's JS twin against the Python analyzer: bytes to ship and query-analysis speed.

Run from the repository root::

    .venv/bin/python bench/bench_analyzer.py [--set scifact-train] [--rounds 3]

Bytes: the JS modules the twin needs (web/src/analyze.js, analyze-tables.js, stem-english.js,
snippet.js, errors.js) raw, gzip and brotli, against what the Python analyzer needs before its
first term in the browser (Pyodide core: pyodide.asm.wasm, pyodide.asm.mjs, python_stdlib.zip,
pyodide.mjs). Speed: every judged query of the set analyzed by a fresh analyzer (first-seen, as in
a page), per-query median and p90, and whole-corpus terms/s, in CPython 3.11, in Pyodide (Node) and
in the JS twin (Node), alternating rounds; checks all three give the same query terms.
Writes bench/results/analyzer.json and bench/results/analyzer.md.
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

TWIN = ("analyze.js", "analyze-tables.js", "stem-english.js", "snippet.js", "errors.js")
PYODIDE = ("pyodide.asm.wasm", "pyodide.asm.mjs", "python_stdlib.zip", "pyodide.mjs")


def _sizes(paths: list[Path]) -> dict:
    import brotli

    raw = gz = br = 0
    for p in paths:
        b = p.read_bytes()
        raw += len(b)
        gz += len(gzip.compress(b, 9))
        br += len(brotli.compress(b, quality=11))
    return {"raw": raw, "gzip": gz, "brotli": br}


def _stats(per_query: list[float]) -> dict:
    q = sorted(per_query)
    return {"median_ms": statistics.median(q), "p90_ms": q[int(0.9 * (len(q) - 1))]}


def _cpython_round(queries: list[str], docs: list[str]) -> dict:
    from websem.text.analyze import Analyzer

    a = Analyzer()
    per_query, terms = [], []
    for q in queries:
        t = time.perf_counter()
        terms.append(a.terms(q))
        per_query.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    b = Analyzer()
    n = sum(len(b.terms(d)) for d in docs)
    return {"per_query_ms": per_query, "terms": terms, "docs_s": time.perf_counter() - t, "doc_terms": n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="scifact-train", choices=bq.SETS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    data = bq.load_set(args.set)
    queries, docs = data["queries"], data["texts"]
    node = shutil.which("node")
    if node is None:
        raise SystemExit("websem bench: node (v20) is needed")
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"queries": queries, "docs": docs, "rounds": args.rounds}), encoding="utf-8")
        cpython = []
        proc = subprocess.Popen([node, str(REPO / "bench" / "analyzer_speed.mjs"), str(job)],
                                stdout=subprocess.PIPE, text=True)
        # CPython runs while Node works: each side gets a core of the 2-core box.
        for _ in range(args.rounds):
            cpython.append(_cpython_round(queries, docs))
        stdout, _ = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit("websem bench: bench/analyzer_speed.mjs failed")
    node_out = json.loads(stdout)
    from websem.text.analyze import Analyzer

    want = [Analyzer().terms(q) for q in queries]
    same = node_out["same_terms"] and all(r["terms"] == want for r in cpython)

    def summary(rounds: list[dict]) -> dict:
        per_query = [x for r in rounds for x in r["per_query_ms"]]
        best = min(rounds, key=lambda r: r["docs_s"])
        return {**_stats(per_query), "corpus_terms_per_s": best["doc_terms"] / best["docs_s"]}

    result = {
        "set": args.set, "queries": len(queries), "docs": len(docs), "rounds": args.rounds,
        "same_query_terms": same,
        "bytes": {"js_twin": _sizes([REPO / "web" / "src" / f for f in TWIN]),
                  "pyodide_core": _sizes([REPO / "web" / "node_modules" / "pyodide" / f for f in PYODIDE])},
        "cpython": summary(cpython), "pyodide": summary(node_out["pyodide"]), "js": summary(node_out["js"]),
        "pyodide_boot_ms_node": node_out["pyodide_boot_ms"],
    }
    b = result["bytes"]
    lines = [
        f"# The analyzer's JS twin vs the Python analyzer ({args.set})", "",
        "`.venv/bin/python bench/bench_analyzer.py` (bench/bench_analyzer.py says what is measured). "
        f"{len(queries)} queries, {len(docs)} documents, {args.rounds} rounds; the same query terms "
        f"in all three runtimes: **{same}**.", "",
        "| what the first query terms need | raw | gzip | brotli |", "|---|---:|---:|---:|",
        f"| JS twin ({', '.join(TWIN)}) | {b['js_twin']['raw']:,} | {b['js_twin']['gzip']:,} | "
        f"{b['js_twin']['brotli']:,} |",
        f"| Pyodide core files ({', '.join(PYODIDE)}; without the runtime's memory snapshot) | "
        f"{b['pyodide_core']['raw']:,} | "
        f"{b['pyodide_core']['gzip']:,} | {b['pyodide_core']['brotli']:,} |", "",
        "| runtime | query, median ms | p90 ms | corpus terms/s |", "|---|---:|---:|---:|",
    ]
    for name, key in (("CPython 3.11", "cpython"), ("Pyodide (Node 20)", "pyodide"), ("JS twin (Node 20)", "js")):
        r = result[key]
        lines.append(f"| {name} | {r['median_ms']:.4f} | {r['p90_ms']:.4f} | {r['corpus_terms_per_s']:,.0f} |")
    lines += ["", f"Pyodide boot in Node (not part of the rows): {result['pyodide_boot_ms_node']:.0f} ms."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        out = REPO / "bench" / "results"
        (out / "analyzer.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        (out / "analyzer.md").write_text(text, encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
