"""Step 4: measure what quantization cost, against the fp32 export of the same model.

Always: cosine(int8, fp32) on the built-in varied sentence set (mean / min / p1).
With `--eval DIR` (BEIR layout): nDCG@10 of fp32 and of the quantized model, and the mean
top-10 overlap between their rankings. Everything is embedded one text per run (batch 1)."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

from .embed import OnnxEmbedder

__all__ = [
    "DEFAULT_THRESHOLD",
    "builtin_sentences",
    "sentence_quality",
    "beir_quality",
    "load_beir",
    "check_threshold",
]

DEFAULT_THRESHOLD = {"mean": 0.999, "min": 0.99, "ndcg_drop": 0.005}


def builtin_sentences() -> list[str]:
    """The built-in quality sentences (export/data/sentences.txt, one per line, # comments)."""
    text = resources.files("websem.export").joinpath("data/sentences.txt").read_text("utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def sentence_quality(
    ref: OnnxEmbedder, cand: OnnxEmbedder, tokenizer, sentences: list[str] | None = None
) -> dict:
    """Cosine of the candidate's sentence embeddings against the reference's."""
    sentences = sentences or builtin_sentences()
    ids = [tokenizer.encode(s).ids for s in sentences]
    a = np.stack([ref.embed_ids(i) for i in ids])
    b = np.stack([cand.embed_ids(i) for i in ids])
    cos = _cosines(a, b)
    return {
        "n": len(sentences),
        "mean": round(float(cos.mean()), 6),
        "min": round(float(cos.min()), 6),
        "p1": round(float(np.percentile(cos, 1)), 6),
    }


def load_beir(directory: Path, split: str | None = None) -> tuple[dict, dict, dict]:
    """(corpus {id: text}, queries {id: text} restricted to judged ones, qrels {qid: {did: grade}})."""
    directory = Path(directory)
    need = [directory / "corpus.jsonl", directory / "queries.jsonl"]
    qrels_dir = directory / "qrels"
    splits = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not all(p.is_file() for p in need) or not splits:
        raise WebsemError(
            f"websem: --eval '{directory}' is not a BEIR folder; it needs corpus.jsonl, queries.jsonl "
            "and qrels/<split>.tsv"
        )
    split = split or next((s for s in ("test", "dev", "train") if s in splits), splits[0])
    corpus = {}
    for line in (directory / "corpus.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            corpus[str(d["_id"])] = (d.get("title", "") + " " + d.get("text", "")).strip()
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate((qrels_dir / f"{split}.tsv").read_text("utf-8").splitlines()):
        parts = line.split("\t")
        if i == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) >= 3 and parts[1] in corpus:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {}
    for line in (directory / "queries.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    if not queries:
        raise WebsemError(
            f"websem: --eval '{directory}': no query in qrels/{split}.tsv has a judged document in the corpus"
        )
    return corpus, queries, qrels


def _ndcg10(ranked: list[str], rels: dict[str, int]) -> float:
    """nDCG@10 with linear gains (trec_eval ``ndcg_cut``), the definition bench/bench_quality.py
    reports, so `--eval` numbers on graded sets (Cranfield, 0-4) match the project's benchmark."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if rels.get(d, 0) > 0)
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _top10(doc_vecs: np.ndarray, q_vecs: np.ndarray) -> np.ndarray:
    scores = q_vecs.astype(np.float64) @ doc_vecs.astype(np.float64).T
    # stable: score descending, then document index ascending (the search contract)
    return np.argsort(-scores, axis=1, kind="stable")[:, :10]


def beir_quality(ref: OnnxEmbedder, cand: OnnxEmbedder, tokenizer, directory: Path, progress=None) -> dict:
    """nDCG@10 of reference and candidate, and their mean top-10 overlap, on a BEIR folder."""
    corpus, queries, qrels = load_beir(directory)
    doc_ids, doc_texts = list(corpus), list(corpus.values())
    q_ids, q_texts = list(queries), list(queries.values())
    texts = doc_texts + q_texts
    ids = [tokenizer.encode(t).ids for t in texts]
    vecs = {}
    for name, emb in (("fp32", ref), ("quantized", cand)):
        task = progress.add_task(f"eval: embedding with {name}", total=len(ids)) if progress else None
        rows = []
        for i in ids:
            rows.append(emb.embed_ids(i))
            if progress:
                progress.advance(task)
        vecs[name] = np.stack(rows)
    n = len(doc_ids)
    result = {"dir": str(directory), "docs": n, "queries": len(q_ids)}
    tops = {}
    for name, v in vecs.items():
        top = _top10(v[:n], v[n:])
        tops[name] = top
        ndcg = np.mean([_ndcg10([doc_ids[j] for j in top[k]], qrels[q]) for k, q in enumerate(q_ids)])
        result[f"ndcg@10_{name}"] = round(float(ndcg), 6)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops["fp32"], tops["quantized"], strict=True)])
    result["top10_overlap"] = round(float(overlap), 6)
    result["ndcg@10_drop"] = round(result["ndcg@10_fp32"] - result["ndcg@10_quantized"], 6)
    return result


def check_threshold(quality: dict, threshold: dict) -> list[str]:
    """Human-readable reasons the quality misses `threshold` (empty list = pass)."""
    fails = []
    s = quality["sentences"]
    if s["mean"] < threshold["mean"]:
        fails.append(f"mean cosine {s['mean']:.6f} < {threshold['mean']}")
    if s["min"] < threshold["min"]:
        fails.append(f"min cosine {s['min']:.6f} < {threshold['min']}")
    ev = quality.get("eval")
    if ev and ev["ndcg@10_drop"] > threshold["ndcg_drop"]:
        fails.append(
            f"nDCG@10 {ev['ndcg@10_quantized']:.4f} is {ev['ndcg@10_drop']:.4f} below fp32 "
            f"{ev['ndcg@10_fp32']:.4f} (allowed {threshold['ndcg_drop']})"
        )
    return fails
