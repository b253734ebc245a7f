"""BM25 over chunks, compact postings, rank fusion, document results, snippets, filters, facets.

Stdlib only: the same file builds the index at build time (CPython) and searches it in the
browser (Pyodide), so the CPU reference and the browser rank identically by construction.

Scoring is Lucene's BM25 (what Anserini and ``bm25s`` method="lucene" compute)::

    idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
    score(q, c) = sum over query terms t (repeats count again) of
                  idf(t) * tf / (tf + k1 * (1 - b + b * len(c) / avgdl))

Determinism across CPython, Pyodide and JS: ``idf`` is computed once at build time and stored as
float32 (every reader widens the same float32 to float64), ``avgdl`` is stored as a JSON float
(shortest repr round-trips exactly), and everything else is +, -, *, / on float64 in a fixed
order, which IEEE 754 defines bit-exactly. Different libm ``log`` implementations never run
at query time.

Serialized index (one file, little-endian)::

    b"WSBM25\\x00\\x01"  u32 header_len  header JSON (space-padded to 4 bytes)  sections...
    terms     UTF-8 terms joined by "\\n", sorted by code point
    idf       float32[n_terms]
    offsets   u32[n_terms + 1]  byte offsets of each term's postings in `postings`
    lengths   u32[n_chunks]     chunk lengths in terms
    postings  per term, per chunk (ascending): varint(((chunk - prev - 1) << 1) | (tf == 1)),
              then varint(tf - 2) when tf >= 2     (LEB128 varints; prev starts at -1)

Section offsets ([start, length] relative to the first byte after the header) are in the header.
"""

from __future__ import annotations

import heapq
import json
import math
import struct
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .errors import WebsemError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FUSION_METHODS",
    "MODES",
    "NORMALIZATIONS",
    "DocHit",
    "Hit",
    "LexicalIndex",
    "Ranker",
    "aggregate_docs",
    "allowed_docs",
    "facet_counts",
    "check_fusion",
    "convex",
    "fuse",
    "normalized",
    "rrf",
    "snippet",
    "utf16_ranges",
]

FORMAT = "websem-bm25"
FORMAT_VERSION = 1
MAGIC = b"WSBM25\x00\x01"
MODES = ("hybrid", "semantic", "lexical")
DEFAULT_RRF_K = 60
FUSION_METHODS = ("rrf", "convex")
NORMALIZATIONS = ("minmax", "max", "zscore")


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


# --------------------------------------------------------------------------- varints


def _put_varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _decode_postings(buf: bytes | memoryview, pos: int, end: int) -> tuple[array, array]:
    """Decode one term's postings into (chunk ids, term frequencies)."""
    ids = array("i")
    tfs = array("i")
    c = -1
    while pos < end:
        b = buf[pos]
        pos += 1
        v = b & 0x7F
        shift = 7
        while b & 0x80:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
        c += (v >> 1) + 1
        ids.append(c)
        if v & 1:
            tfs.append(1)
        else:
            b = buf[pos]
            pos += 1
            t = b & 0x7F
            shift = 7
            while b & 0x80:
                b = buf[pos]
                pos += 1
                t |= (b & 0x7F) << shift
                shift += 7
            tfs.append(t + 2)
    return ids, tfs


def _le(a: array) -> array:
    """Arrays are stored little-endian; swap on (hypothetical) big-endian hosts."""
    if sys.byteorder != "little":
        a.byteswap()
    return a


# --------------------------------------------------------------------------- index


class LexicalIndex:
    """An immutable BM25 index over chunks (build with ``build``, ship with ``to_bytes``)."""

    def __init__(
        self,
        *,
        terms: list[str],
        idf: array,
        offsets: array,
        lengths: array,
        postings: bytes,
        k1: float,
        b: float,
        avgdl: float,
        analyzer: dict | None,
        fields: dict | None = None,
    ) -> None:
        self.terms = terms
        self.term_ids = {t: i for i, t in enumerate(terms)}
        self.idf = idf
        self.offsets = offsets
        self.lengths = lengths
        self.postings = postings
        self.k1 = k1
        self.b = b
        self.avgdl = avgdl
        self.analyzer = analyzer
        # How the indexed text was made (e.g. {"title": 2, "heading": 1}: field repetitions);
        # a record for reports, never needed to score.
        self.fields = fields
        # Per-chunk length normalisation, computed in this exact order in every runtime.
        self.norm = [k1 * (1 - b + b * dl / avgdl) if avgdl > 0 else k1 for dl in lengths]
        self._cache: dict[int, tuple[array, array]] = {}

    # ------------------------------------------------------------------ build

    @classmethod
    def build(
        cls,
        chunk_terms: Iterable[Sequence[str]],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        analyzer: dict | None = None,
        fields: dict | None = None,
    ) -> LexicalIndex:
        """Index analyzed chunks (``Analyzer.terms`` output, one list per chunk, in chunk order).
        ``fields``: how the chunk texts were made (stored in the header for the record)."""
        if not (k1 >= 0 and 0 <= b <= 1):
            raise WebsemError(f"websem: BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        inverted: dict[str, list[int]] = {}  # term -> flat [chunk, tf, chunk, tf, ...]
        lengths = array("I")
        for c, terms in enumerate(chunk_terms):
            lengths.append(len(terms))
            counts: dict[str, int] = {}
            for t in terms:
                counts[t] = counts.get(t, 0) + 1
            for t, tf in counts.items():
                p = inverted.get(t)
                if p is None:
                    inverted[t] = [c, tf]
                else:
                    p.append(c)
                    p.append(tf)
        n = len(lengths)
        total = sum(lengths)
        avgdl = total / n if n else 0.0
        terms = sorted(inverted)
        idf = array("f")
        offsets = array("I", [0])
        postings = bytearray()
        for t in terms:
            flat = inverted[t]
            df = len(flat) // 2
            idf.append(math.log(1 + (n - df + 0.5) / (df + 0.5)))
            prev = -1
            for i in range(0, len(flat), 2):
                c, tf = flat[i], flat[i + 1]
                _put_varint(postings, ((c - prev - 1) << 1) | (1 if tf == 1 else 0))
                if tf != 1:
                    _put_varint(postings, tf - 2)
                prev = c
            offsets.append(len(postings))
        index = cls(terms=terms, idf=idf, offsets=offsets, lengths=lengths,
                    postings=bytes(postings), k1=k1, b=b, avgdl=avgdl, analyzer=analyzer,
                    fields=fields)
        index._n_postings = sum(len(p) for p in inverted.values()) // 2
        return index

    # ------------------------------------------------------------------ (de)serialize

    def to_bytes(self) -> bytes:
        """The shipped index file (see the module docstring)."""
        sections = [
            ("terms", "\n".join(self.terms).encode("utf-8")),
            ("idf", _le(array("f", self.idf)).tobytes()),
            ("offsets", _le(array("I", self.offsets)).tobytes()),
            ("lengths", _le(array("I", self.lengths)).tobytes()),
            ("postings", bytes(self.postings)),
        ]
        layout = {}
        body = bytearray()
        for name, data in sections:
            layout[name] = [len(body), len(data)]
            body += data
            body += b"\x00" * (-len(body) % 4)  # 4-byte alignment: JS typed arrays need it
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "bm25": "lucene",
            "k1": self.k1,
            "b": self.b,
            "avgdl": self.avgdl,
            "n_chunks": len(self.lengths),
            "n_terms": len(self.terms),
            "n_postings": self.n_postings,
            "analyzer": self.analyzer,
            "sections": layout,
        }
        if self.fields is not None:
            header["fields"] = self.fields
        hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
        hjson += b" " * (-(len(MAGIC) + 4 + len(hjson)) % 4)
        return MAGIC + struct.pack("<I", len(hjson)) + hjson + bytes(body)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> LexicalIndex:
        """Load a serialized index; refuse unknown formats with a websem: error."""
        data = bytes(data)
        if data[: len(MAGIC)] != MAGIC:
            raise WebsemError(
                "websem: not a websem lexical index (bad magic bytes); rebuild with `websem build`"
            )
        (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        header = json.loads(data[start : start + hlen])
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise WebsemError(
                f"websem: lexical index format {header.get('format')!r} version "
                f"{header.get('format_version')!r} is not {FORMAT!r} version {FORMAT_VERSION}; "
                "rebuild the bundle with `websem build`"
            )
        base = start + hlen

        def section(name: str) -> bytes:
            off, size = header["sections"][name]
            return data[base + off : base + off + size]

        raw_terms = section("terms").decode("utf-8")
        terms = raw_terms.split("\n") if raw_terms else []
        idf = _le(array("f", section("idf")))
        offsets = _le(array("I", section("offsets")))
        lengths = _le(array("I", section("lengths")))
        if len(terms) != header["n_terms"] or len(lengths) != header["n_chunks"]:
            raise WebsemError("websem: lexical index is truncated; rebuild with `websem build`")
        return cls(terms=terms, idf=idf, offsets=offsets, lengths=lengths,
                   postings=section("postings"), k1=header["k1"], b=header["b"],
                   avgdl=header["avgdl"], analyzer=header.get("analyzer"),
                   fields=header.get("fields"))

    # ------------------------------------------------------------------ query

    @property
    def n_chunks(self) -> int:
        return len(self.lengths)

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @property
    def n_postings(self) -> int:
        # Known after build; a loaded index counts by decoding once (only used for reports).
        n = getattr(self, "_n_postings", None)
        if n is None:
            n = sum(len(self.postings_of(i)[0]) for i in range(len(self.terms)))
            self._n_postings = n
        return n

    def postings_of(self, term_id: int) -> tuple[array, array]:
        """(chunk ids ascending, tfs) of one term; decoded lazily, recent terms cached."""
        got = self._cache.get(term_id)
        if got is None:
            got = _decode_postings(self.postings, self.offsets[term_id], self.offsets[term_id + 1])
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[term_id] = got
        return got

    def query_plan(self, query_terms: Sequence[str]) -> list[tuple[int, int]]:
        """(term id, query term frequency) for known terms, in order of first occurrence."""
        plan: dict[int, int] = {}
        for t in query_terms:
            tid = self.term_ids.get(t)
            if tid is not None:
                plan[tid] = plan.get(tid, 0) + 1
        return list(plan.items())

    def scores(self, query_terms: Sequence[str]) -> dict[int, float]:
        """BM25 score of every chunk that contains at least one query term."""
        acc: dict[int, float] = {}
        norm = self.norm
        for tid, qtf in self.query_plan(query_terms):
            idf = self.idf[tid]
            ids, tfs = self.postings_of(tid)
            get = acc.get
            for c, tf in zip(ids, tfs, strict=True):
                acc[c] = get(c, 0.0) + qtf * (idf * tf / (tf + norm[c]))
        return acc

    def search(self, query_terms: Sequence[str], k: int = 10) -> list[tuple[int, float]]:
        """Top-k chunks: score descending, then chunk index ascending."""
        acc = self.scores(query_terms)
        return heapq.nsmallest(k, ((c, s) for c, s in acc.items()), key=lambda x: (-x[1], x[0]))


# --------------------------------------------------------------------------- documents


def aggregate_docs(
    chunk_scores: Mapping[int, float] | Iterable[tuple[int, float]],
    chunk_doc: Sequence[int],
    *,
    allowed: set[int] | frozenset[int] | None = None,
    k: int | None = None,
) -> list[DocHit]:
    """Chunk scores -> documents: score = max over its chunks, the best chunk is the first
    (lowest index) chunk reaching it. Sorted by score descending, then document ascending.
    ``allowed`` (from ``allowed_docs``) drops filtered-out documents *before* the cut."""
    items = chunk_scores.items() if isinstance(chunk_scores, Mapping) else chunk_scores
    best: dict[int, tuple[float, int]] = {}
    for c, s in items:
        d = chunk_doc[c]
        if allowed is not None and d not in allowed:
            continue
        cur = best.get(d)
        if cur is None or s > cur[0] or (s == cur[0] and c < cur[1]):
            best[d] = (s, c)
    hits = (DocHit(d, s, c) for d, (s, c) in best.items())
    key = _hit_key
    if k is None:
        return sorted(hits, key=key)
    return heapq.nsmallest(k, hits, key=key)


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


def check_fusion(fusion: Mapping | None, rrf_k: int = DEFAULT_RRF_K) -> dict:
    """Validated fusion settings (the manifest's ``index.fusion``): ``{"method": "rrf", "rrf_k"}``
    (plus ``"alpha"``, the dense side's weight, for weighted RRF) or ``{"method": "convex",
    "alpha", "norm"}``. ``None`` (bundles built before fusion settings existed) means RRF with
    ``rrf_k``."""
    if fusion is None:
        fusion = {"method": "rrf", "rrf_k": rrf_k}
    if not isinstance(fusion, Mapping):
        raise WebsemError(f"websem: fusion settings must be an object like {{'method': 'rrf'}}, got {fusion!r}")
    method = fusion.get("method", "rrf")
    if method not in FUSION_METHODS:
        raise WebsemError(f"websem: unknown fusion method {method!r}; use one of {', '.join(FUSION_METHODS)}")
    if method == "rrf":
        k = fusion.get("rrf_k", rrf_k)
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise WebsemError(f"websem: RRF needs an integer rrf_k >= 0, got rrf_k={k!r}")
        if "alpha" not in fusion:
            return {"method": "rrf", "rrf_k": k}
        return {"method": "rrf", "rrf_k": k, "alpha": _alpha(fusion.get("alpha"), "weighted RRF")}
    alpha = _alpha(fusion.get("alpha"), "convex fusion")
    norm = fusion.get("norm", "minmax")
    if norm not in NORMALIZATIONS:
        raise WebsemError(f"websem: unknown score normalization {norm!r}; use one of {', '.join(NORMALIZATIONS)}")
    return {"method": "convex", "alpha": alpha, "norm": norm}


def _alpha(alpha, what: str) -> float:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 <= alpha <= 1:
        raise WebsemError(f"websem: {what} needs a weight 0 <= alpha <= 1 (dense side), got alpha={alpha!r}")
    return float(alpha)


def fuse(
    mode: str,
    *,
    lexical: Sequence[DocHit] = (),
    semantic: Sequence[DocHit] = (),
    k: int = 10,
    n: int = 100,
    rrf_k: int = DEFAULT_RRF_K,
    fusion: Mapping | None = None,
) -> list[Hit]:
    """Final ranking for a mode, from each side's document ranking (already filtered, best first).

    - ``lexical`` / ``semantic``: that side's top-k as is;
    - ``hybrid``: fusion of each side's top-``n`` with ``fusion`` (``check_fusion``; None = RRF
      with ``rrf_k``): RRF, or the convex combination of normalized scores. A hit keeps the best
      chunk of the side where it ranks better (lexical on a tie: its chunk contains the query
      terms, so the snippet shows them highlighted).
    """
    if mode not in MODES:
        raise WebsemError(f"websem: unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if k < 1 or n < 1 or rrf_k < 0:
        raise WebsemError(f"websem: k, n must be >= 1 and rrf_k >= 0, got k={k}, n={n}, rrf_k={rrf_k}")
    settings = check_fusion(fusion, rrf_k)
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


# --------------------------------------------------------------------------- filters, facets


def _values(meta: Mapping, field: str) -> list[str]:
    v = meta.get(field)
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [str(v)]


def allowed_docs(
    docs_meta: Sequence[Mapping],
    filters: Mapping[str, str | Sequence[str]] | None,
    fields: Sequence[str] = ("tags", "section", "language"),
) -> frozenset[int] | None:
    """Documents passing ``filters`` ({field: value or [values]}): any value within a field,
    every field (AND). None = no filter. Unknown fields are refused (typos must not silently
    return everything or nothing)."""
    if not filters:
        return None
    for field in filters:
        if field not in fields:
            raise WebsemError(
                f"websem: unknown filter field {field!r}; this bundle has filters for "
                f"{', '.join(fields) or 'no fields'}"
            )
    wanted = {f: {v} if isinstance(v, str) else {str(x) for x in v} for f, v in filters.items()}
    return frozenset(
        i for i, meta in enumerate(docs_meta)
        if all(wanted[f].intersection(_values(meta, f)) for f in wanted)
    )


def facet_counts(
    docs: Iterable[int],
    docs_meta: Sequence[Mapping],
    fields: Sequence[str] = ("tags", "section", "language"),
) -> dict[str, list[tuple[str, int]]]:
    """Counts of each field value over ``docs`` (the filtered candidates of a query), as
    [value, count] pairs sorted by count descending, then value (explicit order for JSON/JS)."""
    counts: dict[str, dict[str, int]] = {f: {} for f in fields}
    for d in docs:
        meta = docs_meta[d]
        for f in fields:
            c = counts[f]
            for v in set(_values(meta, f)):
                c[v] = c.get(v, 0) + 1
    return {f: sorted(c.items(), key=lambda x: (-x[1], x[0])) for f, c in counts.items()}


# --------------------------------------------------------------------------- snippets


def snippet(text: str, analyzer, query_terms: Iterable[str], *, max_chars: int = 240,
            lead: int = 40) -> dict:
    """A window of ``text`` around the densest group of query-term matches.

    Returns ``{"text", "start", "end", "highlights"}``: ``start``/``end`` locate the window in
    ``text``; ``highlights`` are sorted, non-overlapping ``[start, end]`` ranges in code points
    relative to the window (use ``utf16_ranges`` for JS strings). Never HTML.
    """
    qset = set(query_terms)
    matches = [(t.start, t.end, t.term) for t in analyzer.tokens(text) if t.term in qset]
    if len(text) <= max_chars:
        s, e = 0, len(text)
    else:
        anchor = 0
        if matches:
            # The window [m.start, m.start + max_chars - lead) with the most distinct terms, then
            # the most matches, then the earliest.
            best = (-1, -1, 0)
            j = 0
            width = max_chars - lead
            for i in range(len(matches)):
                while j < len(matches) and matches[j][1] <= matches[i][0] + width:
                    j += 1
                window = matches[i:j]
                key = (len({m[2] for m in window}), len(window), -matches[i][0])
                if key > best:
                    best = key
            anchor = max(0, -best[2] - lead)
        s = _snap_start(text, anchor)
        e = _snap_end(text, min(len(text), s + max_chars))
    # Merge overlapping spans: identifier parts overlap their whole identifier.
    merged: list[list[int]] = []
    for a, b_, _ in sorted(matches):
        if a < s or b_ > e:
            continue
        if merged and a - s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b_ - s)
        else:
            merged.append([a - s, b_ - s])
    return {"text": text[s:e], "start": s, "end": e, "highlights": merged}


def _snap_start(text: str, i: int) -> int:
    """Move a window start back to the beginning of the word it cuts (at most 20 chars)."""
    if i <= 0:
        return 0
    j = i
    while j > 0 and i - j < 20 and not text[j - 1].isspace():
        j -= 1
    return j if j == 0 or text[j - 1].isspace() else i


def _snap_end(text: str, i: int) -> int:
    """Move a window end back to a word boundary (at most 20 chars)."""
    if i >= len(text):
        return len(text)
    j = i
    while j > 0 and i - j < 20 and not text[j].isspace():
        j -= 1
    return j if text[j].isspace() else i


def utf16_ranges(text: str, ranges: Sequence[Sequence[int]]) -> list[list[int]]:
    """Convert code-point ranges in ``text`` to UTF-16 code-unit ranges (JS string indices)."""
    if text.isascii():
        return [[a, b] for a, b in ranges]
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return [[prefix[a], prefix[b]] for a, b in ranges]


# --------------------------------------------------------------------------- the query pipeline


class Ranker:
    """Everything after the query embedding, for one bundle: the CPU reference (web/query.py)
    and the browser (Pyodide, called from engine.js) both call ``results`` so they rank, filter,
    count facets and cut snippets with the same code.

    The semantic side (dense dot products) stays with the caller (numpy / JS): it passes its
    document ranking (filtered with ``allowed``, best first, top ``n``) as ``DocHit``s.
    """

    def __init__(
        self,
        lexical: LexicalIndex | bytes | None,
        chunks: Sequence[Mapping],
        docs: Sequence[Mapping],
        *,
        analyzer: dict | None = None,
        facet_fields: Sequence[str] = ("tags", "section", "language"),
        fusion: Mapping | None = None,
    ) -> None:
        """``lexical``: the index (bytes or loaded), or None when BM25 is scored elsewhere
        (the browser's JS scorer: then pass ``analyzer=`` the index header's analyzer config,
        so query terms and highlights still come from the same analyzer, and give ``results``
        the ``lexical=`` ranking). ``fusion``: the manifest's ``index.fusion`` (``check_fusion``;
        None = RRF, what bundles without that key rank by)."""
        from .analyze import Analyzer

        if isinstance(lexical, (bytes, bytearray, memoryview)):
            lexical = LexicalIndex.from_bytes(lexical)
        if lexical is not None and lexical.n_chunks != len(chunks):
            raise WebsemError(
                f"websem: lexical index has {lexical.n_chunks} chunks but chunks.json has "
                f"{len(chunks)}; rebuild the bundle with `websem build`"
            )
        self.fusion = None if fusion is None else check_fusion(fusion)
        self.lexical = lexical
        cfg = lexical.analyzer if lexical is not None else analyzer
        self.analyzer = Analyzer.from_config(cfg) if cfg else Analyzer()
        self.chunks = chunks
        self.docs = docs
        self.chunk_doc = [int(c["doc"]) for c in chunks]
        self.facet_fields = tuple(facet_fields)
        self._meta = [d.get("meta") or {} for d in docs]

    def allowed(self, filters: Mapping | None) -> frozenset[int] | None:
        """Documents passing ``filters`` (None = all); the dense side must skip the others."""
        return allowed_docs(self._meta, filters, self.facet_fields)

    def lexical_docs(self, query: str, allowed: frozenset[int] | None = None) -> list[DocHit]:
        """Every document matching at least one query term, best first."""
        if self.lexical is None:
            return []
        terms = self.analyzer.terms(query)
        return aggregate_docs(self.lexical.scores(terms), self.chunk_doc, allowed=allowed)

    def results(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        semantic: Sequence[DocHit] = (),
        lexical: Sequence[DocHit] | None = None,
        filters: Mapping | None = None,
        k: int = 10,
        n: int = 100,
        rrf_k: int = DEFAULT_RRF_K,
        utf16: bool = False,
        snippet_chars: int = 240,
        fusion: Mapping | None = None,
    ) -> dict:
        """``{"hits": [{id, score, title, url, snippet, highlights}], "facets": {...}}``.

        ``semantic``: the caller's dense document ranking, already restricted to
        ``allowed(filters)``, best first (ties: lower document first), at least ``n`` long when
        available (``k`` is enough in semantic mode). ``lexical``: optional precomputed
        ``lexical_docs(query, allowed)`` (the browser scores BM25 in JS over the same bytes,
        ~100x faster than Pyodide; see docs/hybrid.md). ``highlights`` are ``[start, end]`` ranges
        into ``snippet``: code points, or UTF-16 code units with ``utf16=True`` (JS strings).
        Facet counts are over the filtered candidates: lexical = all matching documents,
        semantic = its top ``n``, hybrid = the union of both top ``n``. Hybrid fuses with
        ``fusion`` if given, else the Ranker's own (the bundle's), else RRF with ``rrf_k``.
        """
        if mode not in MODES:
            raise WebsemError(f"websem: unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if self.lexical is None and mode != "semantic" and lexical is None:
            raise WebsemError(
                f"websem: mode {mode!r} needs a lexical index but this bundle has none; "
                "use mode 'semantic' or rebuild the bundle with `websem build`"
            )
        allowed = self.allowed(filters)
        if mode == "semantic":
            lex: Sequence[DocHit] = []
        elif lexical is not None:
            lex = lexical
        else:
            lex = self.lexical_docs(query, allowed)
        hits = fuse(mode, lexical=lex, semantic=semantic, k=k, n=n, rrf_k=rrf_k,
                    fusion=fusion if fusion is not None else self.fusion)
        if mode == "lexical":
            candidates = {h.doc for h in lex}
        elif mode == "semantic":
            candidates = {h.doc for h in semantic[:n]}
        else:
            candidates = {h.doc for h in lex[:n]} | {h.doc for h in semantic[:n]}
        terms = self.analyzer.terms(query)
        out = []
        for h in hits:
            doc = self.docs[h.doc]
            chunk = self.chunks[h.chunk]
            sn = snippet(chunk.get("text") or "", self.analyzer, terms, max_chars=snippet_chars)
            ranges = utf16_ranges(sn["text"], sn["highlights"]) if utf16 else sn["highlights"]
            url = (doc.get("url") or "") + (chunk.get("anchor") or "")
            out.append({"id": doc.get("id"), "score": h.score, "title": doc.get("title") or "",
                        "url": url, "snippet": sn["text"], "highlights": ranges})
        facets = facet_counts(sorted(candidates), self._meta, self.facet_fields)
        return {"hits": out, "facets": {f: [list(p) for p in v] for f, v in facets.items()}}
