"""Vector storage of the bundle index: int8 (per-row scale) and float16 against float32.

    .venv/bin/python bench/bench_index.py [--datasets cranfield scifact-train] [--max-docs N]
                                          [--model .cache/model]

For each dataset the corpus is read and chunked exactly as `websem build` does, every chunk is
embedded once in float32 (batch 1; cached under .cache/bench/index/), and every real query of the
set is ranked (document = max over its chunks) with each storage. Reported per storage:

* recall@10 against float32: |top10(dtype) ∩ top10(float32)| / 10, mean over queries (the cost of
  the storage itself, independent of relevance judgments);
* nDCG@10 against the qrels (linear gains), to see that cost in retrieval terms;
* bytes per chunk: vectors (+ scales) only, and with the chunk metadata (chunks.json) included.

Writes bench/results/index.json and bench/results/index.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, RESULTS, SHARED_DATA, write_result  # noqa: E402
from websem.build.chunk import chunk_documents, default_overlap  # noqa: E402
from websem.build.embed import embed_chunks, load_package_tokenizer  # noqa: E402
from websem.build.index import VECTOR_DTYPES, dequantize, quantize  # noqa: E402
from websem.build.sources import read_source  # noqa: E402
from websem.export.package import load_model_package  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        out.setdefault(q, {})[d] = int(s)
    return out


def _ndcg10(ranked: list[str], rel: dict[str, int]) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _top10(scores: np.ndarray, doc_of: np.ndarray, n_docs: int) -> list[int]:
    best = np.full(n_docs, -np.inf)
    np.maximum.at(best, doc_of, scores)
    cand = np.flatnonzero(best > -np.inf)
    return [int(d) for d in cand[np.lexsort((cand, -best[cand]))][:10]]


def run_dataset(name: str, model: Path, max_docs: int | None) -> dict:
    manifest = load_model_package(model)
    max_len = int(manifest["max_seq_length"])
    tok = load_package_tokenizer(model, max_len)
    docs, _ = read_source(SHARED_DATA / name / "corpus.jsonl")
    if max_docs:
        docs = docs[:max_docs]
    budget = max_len - 2
    chunks = chunk_documents(docs, tok.count_tokens, budget, default_overlap(budget))
    # Key: corpus slice, model and tokenizer code (a tokenizer change changes the chunk vectors).
    import hashlib

    import websem.text

    tok_code = hashlib.sha256(b"".join(p.read_bytes() for p in
                                       sorted(Path(websem.text.__file__).parent.glob("*.py"))))
    key = f"{manifest['files']['model.onnx']['sha256'][:12]}-{tok_code.hexdigest()[:8]}"
    cache = CACHE / "index" / f"{name}-{len(docs)}-{key}.npy"
    t0 = time.perf_counter()
    if cache.is_file():
        vectors = np.load(cache)
        embed_s = None
    else:
        vectors, stats = embed_chunks(model, chunks, tok, n_docs=len(docs))
        embed_s = stats.seconds
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    assert len(vectors) == len(chunks)
    from websem.export.embed import OnnxEmbedder

    embedder = OnnxEmbedder(model)
    queries = [json.loads(x) for x in (SHARED_DATA / name / "queries.jsonl").read_text()
               .splitlines() if x.strip()]
    qrels = {}
    for p in sorted((SHARED_DATA / name / "qrels").glob("*.tsv")):
        qrels.update(_qrels(p))
    qvecs = np.stack([embedder.embed_ids(tok.encode(q["text"]).ids) for q in queries])
    doc_of = np.array([c.doc for c in chunks])
    ids = [d.id for d in docs]
    doc_ids = set(ids)
    stored = {dt: quantize(vectors, dt) for dt in VECTOR_DTYPES}
    # the rows websem query scores with: float32 dequantized, float64 dot products
    rows = {dt: dequantize(*stored[dt]) for dt in VECTOR_DTYPES}
    tops = {dt: [_top10(rows[dt] @ qv.astype(np.float64), doc_of, len(docs)) for qv in qvecs]
            for dt in VECTOR_DTYPES}
    chunk_json = len(json.dumps([{"doc": c.doc, "anchor": c.anchor, "start": c.start,
                                  "end": c.end, "text": c.text} for c in chunks],
                                ensure_ascii=False, separators=(",", ":")).encode())
    out: dict = {"docs": len(docs), "chunks": len(chunks), "queries": len(queries),
                 "embed_seconds": embed_s, "chunks_json_bytes_per_chunk": chunk_json / len(chunks),
                 "storage": {}}
    judged = [i for i, q in enumerate(queries)
              if q["_id"] in qrels and any(d in doc_ids for d in qrels[q["_id"]])]
    for dt in VECTOR_DTYPES:
        q, s = stored[dt]
        vec_bytes = q.nbytes + (s.nbytes if s is not None else 0)
        overlap = [len(set(a) & set(b)) / 10 for a, b in zip(tops[dt], tops["float32"],
                                                            strict=True)]
        same_order = sum(a == b for a, b in zip(tops[dt], tops["float32"], strict=True))
        ndcg = [_ndcg10([ids[d] for d in tops[dt][i]], qrels[queries[i]["_id"]]) for i in judged]
        out["storage"][dt] = {
            "recall_at_10_vs_float32": float(np.mean(overlap)),
            "min_recall_at_10_vs_float32": float(np.min(overlap)),
            "identical_top10_order": same_order / len(queries),
            "ndcg_at_10": float(np.mean(ndcg)) if ndcg else None,
            "judged_queries": len(judged),
            "vector_bytes_per_chunk": vec_bytes / len(chunks),
            "bytes_per_chunk_with_metadata": (vec_bytes + chunk_json) / len(chunks),
        }
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["cranfield", "scifact-train"])
    ap.add_argument("--max-docs", type=int, default=None,
                    help="Only the first N documents of each corpus (queries are all kept).")
    ap.add_argument("--model", type=Path, default=REPO / ".cache" / "model")
    args = ap.parse_args()
    results = {name: run_dataset(name, args.model, args.max_docs) for name in args.datasets}
    pooled = {}
    for dt in VECTOR_DTYPES:
        n = sum(r["queries"] for r in results.values())
        pooled[dt] = {
            "recall_at_10_vs_float32": sum(r["storage"][dt]["recall_at_10_vs_float32"]
                                           * r["queries"] for r in results.values()) / n,
            "vector_bytes_per_chunk": results[args.datasets[0]]["storage"][dt][
                "vector_bytes_per_chunk"],
        }
    # The choice: the smallest storage whose recall@10 cost stays under the target on EVERY
    # dataset (a pooled mean could hide one corpus paying more).
    target = 0.005
    by_size = sorted(VECTOR_DTYPES, key=lambda dt: pooled[dt]["vector_bytes_per_chunk"])
    choice = next(dt for dt in by_size if all(
        1 - r["storage"][dt]["recall_at_10_vs_float32"] < target for r in results.values()))
    data = {"datasets": results, "pooled": pooled, "choice": choice,
            "max_docs": args.max_docs,
            "recall_cost_of_choice": 1 - pooled[choice]["recall_at_10_vs_float32"],
            "worst_dataset_recall_cost": {dt: max(1 - r["storage"][dt]["recall_at_10_vs_float32"]
                                                  for r in results.values())
                                          for dt in VECTOR_DTYPES},
            "target_recall_cost": target}
    write_result("index", data)
    worst = data["worst_dataset_recall_cost"]
    lines = ["# Index vector storage (bench/bench_index.py)", "",
             f"Choice: **{choice}**, the smallest storage whose recall@10 cost vs float32 is under "
             f"{target:.1%} on every dataset. Its cost: **{data['recall_cost_of_choice']:.2%}** "
             f"pooled, {worst[choice]:.2%} on the worst dataset. "
             + ", ".join(f"{dt}: {pooled[dt]['vector_bytes_per_chunk']:.0f} B/chunk, "
                         f"{1 - pooled[dt]['recall_at_10_vs_float32']:.2%} pooled / "
                         f"{worst[dt]:.2%} worst" for dt in VECTOR_DTYPES) + ".", "",
             "| dataset | docs | chunks | queries | storage | recall@10 vs fp32 | min | "
             "same top-10 order | nDCG@10 | vector B/chunk | B/chunk incl. chunks.json |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for dt, s in r["storage"].items():
            nd = f"{s['ndcg_at_10']:.4f}" if s["ndcg_at_10"] is not None else "-"
            lines.append(
                f"| {name} | {r['docs']} | {r['chunks']} | {r['queries']} | {dt} | "
                f"{s['recall_at_10_vs_float32']:.4f} | {s['min_recall_at_10_vs_float32']:.1f} | "
                f"{s['identical_top10_order']:.3f} | {nd} | {s['vector_bytes_per_chunk']:.0f} | "
                f"{s['bytes_per_chunk_with_metadata']:.0f} |")
    lines += ["", "Recall@10 vs fp32 = mean over queries of |top-10 ∩ float32 top-10| / 10. "
              "Vectors embedded once in float32 (batch 1), then stored each way; documents scored "
              "as max over their chunks, exactly as `websem query`."]
    (RESULTS / "index.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
