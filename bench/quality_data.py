"""The judged sets and the metrics of bench/bench_quality.py (also used by fit_fusion.py,
bench_lexical.py, bench_analyzer.py and bench_partition.py): BEIR-layout sets read in place from
../shared/data, nDCG@10 (linear gains) and recall@100."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("WEBSEM_SHARED_DATA")
    for c in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (c / "cranfield" / "corpus.jsonl").is_file():
            return c
    sys.exit("bench_quality: ../shared/data not found; set WEBSEM_SHARED_DATA")


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_set(name: str) -> dict:
    """corpus (ids, texts), queries with at least one judgment, qrels {qid: {docid: grade}}."""
    root = shared_data() / name
    corpus = read_jsonl(root / "corpus.jsonl")
    doc_ids = [str(d["_id"]) for d in corpus]
    titles = [(d.get("title") or "").strip() for d in corpus]
    bodies = [d.get("text") or "" for d in corpus]
    # The dense side (and its embedding cache key) embeds title + " " + text.
    texts = [(t + " " + b).strip() for t, b in zip(titles, bodies, strict=True)]
    qrels: dict[str, dict[str, int]] = {}
    (qrels_file,) = sorted((root / "qrels").glob("*.tsv"))
    for i, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines()):
        if i == 0 or not line.strip():
            continue
        qid, did, grade = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(grade)
    queries = [q for q in read_jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels]
    # A query is judged only if it has at least one positive judgment.
    queries = [q for q in queries if any(g > 0 for g in qrels[str(q["_id"])].values())]
    return {
        "name": name,
        "doc_ids": doc_ids,
        "titles": titles,
        "bodies": bodies,
        "texts": texts,
        "qids": [str(q["_id"]) for q in queries],
        "queries": [q["text"] for q in queries],
        "qrels": qrels,
        "qrels_file": qrels_file.name,
    }


# --------------------------------------------------------------------------- metrics


def ndcg_at(ranked: Sequence[str], judged: dict[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (trec_eval / pytrec_eval ``ndcg_cut``)."""
    dcg = sum(judged.get(d, 0) / np.log2(i + 2) for i, d in enumerate(ranked[:k]) if judged.get(d, 0) > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], judged: dict[str, int], k: int = 100) -> float:
    rel = {d for d, g in judged.items() if g > 0}
    return len(rel.intersection(ranked[:k])) / len(rel) if rel else 0.0


def evaluate(data: dict, runs: list[list[int]]) -> dict:
    """Mean nDCG@10 and recall@100 of runs of document *indices* (one run per judged query)."""
    ids = data["doc_ids"]
    runs = [[ids[i] for i in r] for r in runs]
    nd = [ndcg_at(r, data["qrels"][q]) for q, r in zip(data["qids"], runs, strict=True)]
    rc = [recall_at(r, data["qrels"][q]) for q, r in zip(data["qids"], runs, strict=True)]
    return {"ndcg@10": round(float(np.mean(nd)), 4), "recall@100": round(float(np.mean(rc)), 4)}
