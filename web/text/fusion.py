"""Rank fusion for hybrid search: reciprocal-rank fusion and a convex combination of normalised
scores, plus the result tuples both sides of a query produce.

Stdlib only, like the rest of ``websem_text``: the CPU reference and Pyodide in the browser run
this same file, so fused scores agree to the last bit wherever their inputs do. Split out of
``bm25.py`` (which re-exports the names here) along the seam between scoring one side and
combining two. The settings (method, weights, depth) are the bundle's ``manifest.search``,
defined and validated in ``rules.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from .errors import WebsemError
from .rules import DEFAULT_FUSION, DEFAULT_RRF_K, DEFAULTS, NORMALIZATIONS, check_fusion, check_mode

__all__ = [
    "DocHit",
    "Hit",
    "convex",
    "fuse",
    "normalized",
    "rrf",
]


class DocHit(NamedTuple):
    """One document on one side: its score and the chunk that gave it (the best chunk)."""

    doc: int
    score: float
    chunk: int


class Hit(NamedTuple):
    """A final result. ``score`` is BM25 (lexical), cosine (semantic) or the fused score (hybrid)."""

    doc: int
    score: float
    chunk: int
    lexical_rank: int | None  # 1-based rank on the lexical side, None if not in its top N
    semantic_rank: int | None


def _hit_key(h: DocHit) -> tuple[float, int]:
    return (-h.score, h.doc)


def rrf(rankings: Sequence[Sequence[int]], k: int = DEFAULT_RRF_K,
        weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank), rank 1-based, or
    of ``weights[i] / (k + rank)`` (weighted RRF). Sorted by fused score descending, then
    document ascending."""
    fused: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        w = None if weights is None else weights[i]
        for r, d in enumerate(ranking, start=1):
            fused[d] = fused.get(d, 0.0) + (1.0 / (k + r) if w is None else w / (k + r))
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def normalized(scores: Sequence[float], norm: str = "minmax") -> list[float]:
    """One side's scores on a common scale (``NORMALIZATIONS``), in the given order.

    - ``minmax``: ``(s - min) / (max - min)``, so the side's best is 1 and its worst 0 (all 1.0
      when every score is equal, e.g. a single candidate);
    - ``max``: ``s / max`` (the lower bound stays 0, BM25's and a cosine's natural floor, so a
      side whose candidates all score alike stays near 1; all 1.0 when ``max <= 0``);
    - ``zscore``: ``(s - mean) / std`` (population std; all 0.0 when it is 0).

    Only + - * / and ``math.sqrt`` (correctly rounded by IEEE 754), summed in list order: the
    same bits in CPython and Pyodide."""
    if norm not in NORMALIZATIONS:
        raise WebsemError(f"websem: unknown score normalization {norm!r}; use one of {', '.join(NORMALIZATIONS)}")
    if not scores:
        return []
    if norm == "max":
        hi = max(scores)
        if hi <= 0:
            return [1.0] * len(scores)
        return [s / hi for s in scores]
    if norm == "minmax":
        lo = min(scores)
        hi = max(scores)
        if hi == lo:
            return [1.0] * len(scores)
        return [(s - lo) / (hi - lo) for s in scores]
    mean = 0.0
    for s in scores:
        mean += s
    mean /= len(scores)
    var = 0.0
    for s in scores:
        var += (s - mean) * (s - mean)
    std = math.sqrt(var / len(scores))
    if std == 0:
        return [0.0] * len(scores)
    return [(s - mean) / std for s in scores]


def convex(
    semantic: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    alpha: float,
    norm: str = "minmax",
) -> list[tuple[int, float]]:
    """Convex combination of normalized scores: ``alpha * dense + (1 - alpha) * lexical``.

    Each side is ``(doc, score)`` pairs (its candidates, best first), normalized over those
    candidates with ``normalized(..., norm)``. A document missing from one side ranked below
    every candidate there, so it gets the side's floor: 0 with ``minmax`` (what its worst
    candidate gets) and ``max``, the lowest z-score with ``zscore``; an empty side adds 0.
    Sorted by fused score descending, then document ascending."""
    sides = []
    for pairs in (semantic, lexical):
        vals = normalized([s for _, s in pairs], norm)
        floor = min(vals) if vals and norm == "zscore" else 0.0
        sides.append(({d: v for (d, _), v in zip(pairs, vals, strict=True)}, floor))
    (sem, sem_floor), (lex, lex_floor) = sides
    fused = {}
    for d in list(sem) + [d for d in lex if d not in sem]:
        fused[d] = alpha * sem.get(d, sem_floor) + (1 - alpha) * lex.get(d, lex_floor)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def fuse(
    mode: str,
    *,
    lexical: Sequence[DocHit] = (),
    semantic: Sequence[DocHit] = (),
    k: int = DEFAULTS["k"],
    n: int = DEFAULTS["n"],
    fusion: Mapping | None = None,
) -> list[Hit]:
    """Final ranking for a mode, from each side's document ranking (already filtered, best first).

    - ``lexical`` / ``semantic``: that side's top-k as is;
    - ``hybrid``: fusion of each side's top-``n`` with ``fusion`` (a bundle's
      ``manifest.search.fusion``, ``rules.check_fusion``; None = ``rules.DEFAULT_FUSION``): RRF,
      or the convex combination of normalized scores. A hit keeps the best
      chunk of the side where it ranks better (lexical on a tie: its chunk contains the query
      terms, so the snippet shows them highlighted).
    """
    check_mode(mode)
    if k < 1 or n < 1:
        raise WebsemError(f"websem: k and n must be >= 1, got k={k}, n={n}")
    settings = check_fusion(DEFAULT_FUSION if fusion is None else fusion)
    if mode == "lexical":
        return [Hit(h.doc, h.score, h.chunk, r, None) for r, h in enumerate(lexical[:k], 1)]
    if mode == "semantic":
        return [Hit(h.doc, h.score, h.chunk, None, r) for r, h in enumerate(semantic[:k], 1)]
    lex = {h.doc: (r, h) for r, h in enumerate(lexical[:n], 1)}
    sem = {h.doc: (r, h) for r, h in enumerate(semantic[:n], 1)}
    if settings["method"] == "rrf":
        a = settings.get("alpha")
        fused = rrf([[h.doc for h in semantic[:n]], [h.doc for h in lexical[:n]]], settings["rrf_k"],
                    None if a is None else (a, 1 - a))
    else:
        fused = convex([(h.doc, h.score) for h in semantic[:n]], [(h.doc, h.score) for h in lexical[:n]],
                       settings["alpha"], settings["norm"])
    out = []
    for d, score in fused[:k]:
        lr, lh = lex.get(d, (None, None))
        sr, sh = sem.get(d, (None, None))
        if lh is not None and (sr is None or lr <= sr):
            chunk = lh.chunk
        else:
            chunk = sh.chunk
        out.append(Hit(d, score, chunk, lr, sr))
    return out
