"""BM25 over chunks, compact postings, document results, filters and facets.

Rank fusion lives in ``fusion.py``, snippets in ``snippets.py`` and the query pipeline after
scoring (``Ranker``) in ``ranker.py``; this module re-exports all three.
The query-time rules (modes, k, n, snippet length, filter fields, fusion) are the bundle's
``manifest.search`` table, defined and validated in ``rules.py``.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from types import MappingProxyType

from .errors import WebsemError
from .fusion import DocHit, Hit, _hit_key, convex, fuse, normalized, rrf
from .rules import FACETS
from .snippets import snippet, utf16_ranges

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "DocHit",
    "DocMeta",
    "Hit",
    "LexicalIndex",
    "Ranker",  # noqa: F822  (module __getattr__ below)
    "aggregate_docs",
    "allowed_docs",
    "facet_counts",
    "meta_from_facets",
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
    fields: Sequence[str] = FACETS,
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
    # A document without values passes no filter: a DocMeta walks only those with values.
    pairs = docs_meta.items() if isinstance(docs_meta, DocMeta) else enumerate(docs_meta)
    return frozenset(
        i for i, meta in pairs
        if all(wanted[f].intersection(_values(meta, f)) for f in wanted)
    )


def meta_from_facets(facets: Mapping[str, Mapping[str, Sequence[int]]], n_docs: int) -> DocMeta:
    """Each document's filter values (a ``DocMeta`` of ``n_docs`` documents, ``{field: [values]}``
    each) from a partitioned bundle's ``table.json`` ``facets`` (``{field: {value: [doc
    indices]}}``): the ``docs_meta`` that ``allowed_docs`` and ``facet_counts`` take, so filters
    and facet counts work as on a flat bundle's docs.json meta. A document's values keep the
    table's value order."""
    meta: dict[int, dict[str, list[str]]] = {}
    for field, values in facets.items():
        for value, docs in values.items():
            for d in docs:
                if not (isinstance(d, int) and 0 <= d < n_docs):
                    raise WebsemError(f"websem: facet {field}={value!r} lists document {d!r}, not one of "
                                      f"the bundle's {n_docs}; rebuild the bundle with `websem build`")
                meta.setdefault(d, {}).setdefault(field, []).append(value)
    return DocMeta(n_docs, meta)


class DocMeta(Sequence[Mapping]):
    """The filter values of ``n`` documents, held only for the documents that have any: a
    partitioned bundle of a million documents without facets would otherwise hold a list of a
    million pointers (4 MB of Pyodide's heap, which never shrinks). Reads as a sequence of
    mappings; a document without values reads as an empty read-only mapping."""

    __slots__ = ("_n", "_meta")

    def __init__(self, n: int, meta: Mapping[int, Mapping]) -> None:
        self._n = n
        self._meta = meta

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, d: int | slice) -> Mapping | list[Mapping]:
        if isinstance(d, slice):
            return [self[i] for i in range(*d.indices(self._n))]
        if d < 0:
            d += self._n
        if not 0 <= d < self._n:
            raise IndexError(f"document {d} out of range (0 to {self._n - 1})")
        return self._meta.get(d, _NO_META)

    def __iter__(self) -> Iterator[Mapping]:
        # map/repeat keep the walk in C: list(meta) over a million documents stays fast.
        return map(self._meta.get, range(self._n), repeat(_NO_META, self._n))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DocMeta):
            return self._n == other._n and dict(self.items()) == dict(other.items())
        return isinstance(other, Sequence) and len(other) == self._n and list(self) == list(other)

    def items(self) -> Iterable[tuple[int, Mapping]]:
        """``(document, values)`` of the documents that have values, ascending."""
        return sorted(self._meta.items())


_NO_META: Mapping = MappingProxyType({})


def facet_counts(
    docs: Iterable[int],
    docs_meta: Sequence[Mapping],
    fields: Sequence[str] = FACETS,
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


def __getattr__(name: str):
    # ``Ranker`` is re-exported lazily: ranker.py imports this module, so an eager import here
    # would be circular whichever of the two is imported first.
    if name == "Ranker":
        from .ranker import Ranker

        return Ranker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
