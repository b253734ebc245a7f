"""The query pipeline after scoring: fusion, facet counts, the top k, then snippets.

``Ranker`` is what the CPU reference (web/query.py) and the browser (Pyodide, through
``bridge.py``) both call, so they rank, filter, count facets and cut snippets with the same code
and the same rules (the bundle's ``manifest.search``). It runs in two steps:

- ``rank``: each side's document ranking -> the fused top k ``Hit``s and the facet counts;
- ``render``: those hits plus one row per hit (its document's id/title/url and its best chunk's
  anchor/text) -> the result dicts with snippets and highlights.

A flat bundle holds every chunk and document in memory, so ``results`` does both at once. A
partitioned bundle fetches the rows of the top k only (``index/frag/*.json``) between the two
steps; its Ranker is made from the per-document filter values alone (``meta=``, rebuilt by
``bm25.meta_from_facets`` from ``index/part/table.json``).

Split out of ``bm25.py`` (which re-exports ``Ranker``) along the seam between scoring one side and
everything after it. Stdlib only, like the rest of ``websem_text``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .bm25 import LexicalIndex, aggregate_docs, allowed_docs, facet_counts
from .errors import WebsemError
from .fusion import DocHit, Hit, fuse
from .rules import check_mode, check_search, search_table
from .snippets import snippet, utf16_ranges

__all__ = ["Ranker"]


class Ranker:
    """Everything after the query embedding, for one bundle.

    The semantic side (dense dot products) stays with the caller (numpy / JS): it passes its
    document ranking (filtered with ``allowed``, best first, top ``n``) as ``DocHit``s.
    """

    def __init__(
        self,
        lexical: LexicalIndex | bytes | None,
        chunks: Sequence[Mapping] | None = None,
        docs: Sequence[Mapping] | None = None,
        *,
        search: Mapping | None = None,
        analyzer: dict | None = None,
        meta: Sequence[Mapping] | None = None,
    ) -> None:
        """``lexical``: the index (bytes or loaded), or None when BM25 is scored elsewhere
        (the browser's JS scorer, a partitioned bundle's shards: then pass ``analyzer=`` the
        index header's analyzer config, so query terms and highlights still come from the same
        analyzer, and give ``rank``/``results`` the ``lexical=`` ranking). ``chunks``/``docs``:
        the bundle's chunks.json and docs.json; None for a partitioned bundle, which passes
        ``meta`` (each document's filter values, ``bm25.meta_from_facets``) and renders through
        ``render`` with the rows it fetched. ``search``: the bundle's ``manifest.search`` table
        (``rules.check_search``); None = ``rules.search_table()``, the defaults a build writes."""
        from .analyze import Analyzer

        if isinstance(lexical, (bytes, bytearray, memoryview)):
            lexical = LexicalIndex.from_bytes(lexical)
        if chunks is None or docs is None:
            if meta is None:
                raise WebsemError("websem: a Ranker needs chunks and docs (a flat bundle's chunks.json "
                                  "and docs.json) or meta= (a partitioned bundle's per-document filter "
                                  "values, bm25.meta_from_facets)")
            if lexical is not None:
                raise WebsemError("websem: a Ranker without chunks cannot score BM25 itself (it has no "
                                  "chunk -> document map); pass lexical=None and give rank the "
                                  "lexical= ranking")
        elif lexical is not None and lexical.n_chunks != len(chunks):
            raise WebsemError(
                f"websem: lexical index has {lexical.n_chunks} chunks but chunks.json has "
                f"{len(chunks)}; rebuild the bundle with `websem build`"
            )
        self.search = search_table() if search is None else check_search(search)
        self.modes = tuple(self.search["modes"])
        self.lexical = lexical
        cfg = lexical.analyzer if lexical is not None else analyzer
        self.analyzer = Analyzer.from_config(cfg) if cfg else Analyzer()
        self.chunks = chunks
        self.docs = docs
        self.chunk_doc = [] if chunks is None else [int(c["doc"]) for c in chunks]
        self.facet_fields = tuple(self.search["facets"])
        # meta is kept as given, not copied: bm25.DocMeta holds only the documents with values, and
        # a list of a million empty entries costs Pyodide ~6 MB at 1M documents.
        self._meta = meta if meta is not None else [d.get("meta") or {} for d in docs]
        self.n_docs = len(self._meta)

    def allowed(self, filters: Mapping | None) -> frozenset[int] | None:
        """Documents passing ``filters`` (None = all); the dense side must skip the others."""
        return allowed_docs(self._meta, filters, self.facet_fields)

    def lexical_docs(self, query: str, allowed: frozenset[int] | None = None) -> list[DocHit]:
        """Every document matching at least one query term, best first."""
        if self.lexical is None:
            return []
        terms = self.analyzer.terms(query)
        return aggregate_docs(self.lexical.scores(terms), self.chunk_doc, allowed=allowed)

    def rank(
        self,
        query: str,
        *,
        mode: str | None = None,
        semantic: Sequence[DocHit] = (),
        lexical: Sequence[DocHit] | None = None,
        filters: Mapping | None = None,
        k: int | None = None,
    ) -> tuple[list[Hit], dict]:
        """``(hits, facets)``: the fused top ``k`` (``Hit(doc, score, chunk, ...)``, best first)
        and the facet counts ``{field: [[value, count], ...]}``. Arguments as ``results``."""
        mode = self.modes[0] if mode is None else check_mode(mode, self.modes)
        k = self.search["k"] if k is None else k
        n = self.search["n"]
        if self.lexical is None and mode != "semantic" and lexical is None:
            raise WebsemError(
                f"websem: mode {mode!r} needs a lexical ranking: pass lexical= (the JS scorer's) "
                "or give the Ranker the bundle's index/lexical.bin"
            )
        allowed = self.allowed(filters)
        if mode == "semantic":
            lex: Sequence[DocHit] = []
        elif lexical is not None:
            lex = lexical
        else:
            lex = self.lexical_docs(query, allowed)
        hits = fuse(mode, lexical=lex, semantic=semantic, k=k, n=n, fusion=self.search["fusion"])
        if mode == "lexical":
            candidates = {h.doc for h in lex}
        elif mode == "semantic":
            candidates = {h.doc for h in semantic[:n]}
        else:
            candidates = {h.doc for h in lex[:n]} | {h.doc for h in semantic[:n]}
        facets = facet_counts(sorted(candidates), self._meta, self.facet_fields)
        return hits, {f: [list(p) for p in v] for f, v in facets.items()}

    def render(self, query: str, hits: Sequence, rows: Sequence[Mapping], *, utf16: bool = False) -> list[dict]:
        """The result dicts ``{id, score, title, url, snippet, highlights}`` of ``hits`` (anything
        with a ``score``), ``rows[i]`` = ``{"id", "title", "url", "anchor", "text"}`` of
        ``hits[i]``: its document's id, title and url, its best chunk's anchor and text.
        ``highlights`` are ``[start, end]`` ranges into ``snippet``: code points, or UTF-16 code
        units with ``utf16=True`` (JS strings)."""
        if len(rows) != len(hits):
            raise WebsemError(f"websem: {len(hits)} hits but {len(rows)} rows to render them from")
        terms = self.analyzer.terms(query)
        out = []
        for h, row in zip(hits, rows, strict=True):
            sn = snippet(row.get("text") or "", self.analyzer, terms,
                         max_chars=self.search["snippet_chars"])
            ranges = utf16_ranges(sn["text"], sn["highlights"]) if utf16 else sn["highlights"]
            url = (row.get("url") or "") + (row.get("anchor") or "")
            out.append({"id": row.get("id"), "score": h.score, "title": row.get("title") or "",
                        "url": url, "snippet": sn["text"], "highlights": ranges})
        return out

    def rows(self, hits: Sequence) -> list[dict]:
        """The render rows of ``hits`` from the in-memory chunks and docs (a flat bundle)."""
        if self.chunks is None or self.docs is None:
            raise WebsemError("websem: this Ranker holds no chunks or docs (a partitioned bundle): "
                              "fetch the rows of the hits' documents and call render")
        out = []
        for h in hits:
            doc = self.docs[h.doc]
            chunk = self.chunks[h.chunk]
            out.append({"id": doc.get("id"), "title": doc.get("title"), "url": doc.get("url"),
                        "anchor": chunk.get("anchor"), "text": chunk.get("text")})
        return out

    def results(
        self,
        query: str,
        *,
        mode: str | None = None,
        semantic: Sequence[DocHit] = (),
        lexical: Sequence[DocHit] | None = None,
        filters: Mapping | None = None,
        k: int | None = None,
        utf16: bool = False,
    ) -> dict:
        """``{"hits": [{id, score, title, url, snippet, highlights}], "facets": {...}}``:
        ``rank`` then ``render`` over the in-memory chunks and docs.

        ``mode``: one of the table's modes (None = its first); ``k``: hits (None = the table's).
        ``semantic``: the caller's dense document ranking, already restricted to
        ``allowed(filters)``, best first (ties: lower document first), at least the table's ``n``
        long when available (``k`` is enough in semantic mode). ``lexical``: optional precomputed
        ``lexical_docs(query, allowed)`` (the browser scores BM25 in JS over the same bytes,
        ~100x faster than Pyodide; see docs/hybrid.md). ``highlights`` are ``[start, end]`` ranges
        into ``snippet``: code points, or UTF-16 code units with ``utf16=True`` (JS strings).
        Facet counts are over the filtered candidates: lexical = all matching documents,
        semantic = its top ``n``, hybrid = the union of both top ``n``.
        """
        hits, facets = self.rank(query, mode=mode, semantic=semantic, lexical=lexical, filters=filters, k=k)
        return {"hits": self.render(query, hits, self.rows(hits), utf16=utf16), "facets": facets}
