"""The BM25 side of an index, built: what ``index/lexical.bin`` indexes for each chunk.

`websem build` (build/lexical.py) and the in-page index (inpage.py, in Pyodide) run this one copy,
so both write byte-identical ``lexical.bin`` files for the same chunks and documents. The analyzer
and the index format are analyze.py and bm25.py (docs/hybrid.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from .analyze import Analyzer
from .bm25 import LexicalIndex
from .errors import WebsemError

__all__ = [
    "HEADING_WEIGHT",
    "TITLE_WEIGHT",
    "build_lexical",
    "chunk_headings",
    "chunk_lexical_text",
]

# Field weights (BM25 over a repeated-field document, see chunk_lexical_text), chosen by
# bench/fit_fusion.py on the real sites' dev questions and the judged sets' training queries
# (docs/hybrid.md "Field weights", "Quality").
TITLE_WEIGHT = 3
HEADING_WEIGHT = 2


def chunk_headings(chunks: Sequence[Mapping]) -> list[str]:
    """The heading of each chunk's section ("" before the first heading).

    A chunk's own ``"heading"`` wins when the chunker provides one. Otherwise it is derived from
    what chunks.json always carries: chunks of one section share ``(doc, anchor)`` and a section
    starts with its heading line, so the heading is the first line of the section's first chunk."""
    first_line: dict[tuple[int, str], str] = {}
    for c in chunks:
        anchor = c.get("anchor") or ""
        key = (int(c["doc"]), anchor)
        if anchor and key not in first_line:
            text = (c.get("text") or "").lstrip()
            first_line[key] = text.split("\n", 1)[0].strip()
    out = []
    for c in chunks:
        h = c.get("heading")
        if h is None:
            h = first_line.get((int(c["doc"]), c.get("anchor") or ""), "")
        out.append(h)
    return out


def chunk_lexical_text(
    chunk: Mapping,
    doc: Mapping | None = None,
    *,
    title_weight: int = 1,
    heading: str = "",
    heading_weight: int = 0,
) -> str:
    """What BM25 indexes for a chunk: the document title ``title_weight`` times, the section
    heading ``heading_weight`` more times, then the chunk text.

    Repeating a field w times is BM25 with that field's term frequencies weighted by w (and the
    length counting them): titles and headings weigh more than body text with an unchanged
    index format, so the JS scorer (web/src/lexical.js) needs no change. The title goes into every
    chunk so a title match counts wherever the best passage is (documents score max over
    chunks); snippets and highlights use the chunk text only."""
    if title_weight < 0 or heading_weight < 0:
        raise WebsemError(
            f"websem: field weights must be integers >= 0, got title_weight={title_weight}, "
            f"heading_weight={heading_weight}"
        )
    title = (doc or {}).get("title") or ""
    parts = [title] * title_weight if title else []
    if heading:
        parts += [heading] * heading_weight
    parts.append(chunk.get("text") or "")
    return "\n".join(parts)


def build_lexical(
    chunks: Sequence[Mapping],
    docs: Sequence[Mapping] | None = None,
    *,
    analyzer: Analyzer | None = None,
    k1: float = 1.2,
    b: float = 0.75,
    title_weight: int = TITLE_WEIGHT,
    heading_weight: int = HEADING_WEIGHT,
    advance: Callable[[], None] | None = None,
) -> LexicalIndex:
    """The BM25 index over ``chunks`` (index order: chunk i = posting id i).

    ``chunks`` are the entries of index/chunks.json ({"doc", "anchor", "text", ...}); ``docs``
    the entries of index/docs.json (for titles). The field weights are stored in the index
    header (``"fields"``) for the record; queries do not need them. ``advance`` is called once
    per chunk analyzed (a progress bar)."""
    analyzer = analyzer or Analyzer()
    headings = chunk_headings(chunks) if heading_weight else [""] * len(chunks)

    def texts() -> Iterator[list[str]]:
        # Streamed into the index as analyzed: the terms of all chunks are never held at once.
        for c, h in zip(chunks, headings, strict=True):
            doc = docs[c["doc"]] if docs is not None else None
            yield analyzer.terms(chunk_lexical_text(c, doc, title_weight=title_weight, heading=h,
                                                    heading_weight=heading_weight))
            if advance is not None:
                advance()

    fields = {"title": title_weight, "heading": heading_weight}
    return LexicalIndex.build(texts(), k1=k1, b=b, analyzer=analyzer.config(), fields=fields)
