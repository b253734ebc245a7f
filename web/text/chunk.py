"""Chunking: cut documents into chunks that fit the model's token cap (step 2 of `websem build`;
the in-page index runs this same copy in Pyodide, so both chunk alike).

Order of cuts: sections (headings) first, never crossing a section boundary; inside a section,
paragraphs (blank lines) are kept whole when they fit, then sentences, then words, and a single
over-long word is cut by characters. Consecutive chunks of one section overlap by whole trailing
sentences worth at most ``overlap_tokens`` (default ~15% of the cap), so a passage split across a
boundary is still found in one piece.

The token budget is ``max_seq_length - 2`` (``[CLS]``/``[SEP]``). Counting is delegated to a
``count_tokens(text) -> int`` function (the stdlib WordPiece tokenizer in production). BERT's
pre-tokenizer splits on whitespace and punctuation, so the count of whitespace-joined units is the
sum of their counts: the packer never has to re-tokenize a growing chunk.

Each chunk keeps its document index, the anchor and heading text of its section and
``[start, end)`` character offsets into ``Document.text``; ``text == doc.text[start:end]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import WebsemError
from .extract import Document

__all__ = ["Chunk", "chunk_document", "chunk_documents", "default_overlap"]

_PARA = re.compile(r"\n[ \t]*\n\s*")
# a sentence ends at . ! ? (or CJK full stops), optionally followed by closing quotes/brackets
_SENT_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*(?=\s)|[\u3002\uff01\uff1f]")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    """A span of one document that is embedded as one vector."""

    doc: int
    anchor: str
    start: int
    end: int
    text: str
    heading: str = ""  # the title of the chunk's section ("" before the first heading)


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    para_start: bool


def default_overlap(max_tokens: int) -> int:
    """~15% of the budget."""
    return max(0, round(max_tokens * 0.15))


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    """Split ``text[start:end]`` at separator matches; yield stripped non-empty spans."""
    pos = start
    for m in pattern.finditer(text, start, end):
        yield from _strip(text, pos, m.start())
        pos = m.end()
    yield from _strip(text, pos, end)


def _strip(text: str, a: int, b: int) -> Iterable[tuple[int, int]]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        yield a, b


def _sentences(text: str, a: int, b: int) -> Iterable[tuple[int, int]]:
    pos = a
    for m in _SENT_END.finditer(text, a, b):
        yield from _strip(text, pos, m.end())
        pos = m.end()
    yield from _strip(text, pos, b)


def _hard_cut(
    text: str, a: int, b: int, count: Callable[[str], int], budget: int
) -> list[tuple[int, int, int]]:
    """Cut an over-long sentence by words; an over-long word by characters (binary search)."""
    out: list[tuple[int, int, int]] = []
    cur_a, cur_b, cur_t = -1, -1, 0
    for m in _WORD.finditer(text, a, b):
        wa, wb = m.span()
        wt = count(text[wa:wb])
        while wt > budget:  # one "word" longer than the budget: cut it by characters
            if cur_a >= 0:
                out.append((cur_a, cur_b, cur_t))
                cur_a, cur_t = -1, 0
            lo, hi = wa + 1, wb  # largest prefix end with count <= budget
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if count(text[wa:mid]) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            out.append((wa, lo, count(text[wa:lo])))
            wa = lo
            wt = count(text[wa:wb])
        if cur_a >= 0 and cur_t + wt <= budget:
            cur_b, cur_t = wb, cur_t + wt
        else:
            if cur_a >= 0:
                out.append((cur_a, cur_b, cur_t))
            cur_a, cur_b, cur_t = wa, wb, wt
    if cur_a >= 0:
        out.append((cur_a, cur_b, cur_t))
    return out


def _units(
    text: str, a: int, b: int, count: Callable[[str], int], budget: int
) -> list[_Unit]:
    units: list[_Unit] = []
    for pa, pb in _spans(_PARA, text, a, b):
        t = count(text[pa:pb])
        if t <= budget:
            units.append(_Unit(pa, pb, t, True))
            continue
        first = True
        for sa, sb in _sentences(text, pa, pb):
            st = count(text[sa:sb])
            pieces = [(sa, sb, st)] if st <= budget else _hard_cut(text, sa, sb, count, budget)
            for xa, xb, xt in pieces:
                units.append(_Unit(xa, xb, xt, first))
                first = False
    return units


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units into [i, j) ranges, preferring paragraph boundaries, with overlap."""
    ranges: list[tuple[int, int]] = []
    n = len(units)
    i = 0
    while i < n:
        j, total = i, 0
        while j < n and total + units[j].tokens <= budget:
            total += units[j].tokens
            j += 1
        j = max(j, i + 1)
        if j < n:
            # End at the last paragraph start in the chunk, if that keeps it at least half full.
            acc, best = 0, -1
            for k in range(i, j):
                if k > i and units[k].para_start and acc >= budget // 2:
                    best = k
                acc += units[k].tokens
            if best > 0:
                j = best
        ranges.append((i, j))
        if j >= n:
            break
        if units[j].para_start:
            i = j  # clean paragraph break: no overlap needed
            continue
        b, ov = j, 0
        while b - 1 > i and ov + units[b - 1].tokens <= overlap:
            b -= 1
            ov += units[b].tokens
        i = b
    return ranges


def chunk_document(
    doc: Document,
    doc_index: int,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int | None = None,
) -> list[Chunk]:
    """All chunks of one document, in text order."""
    if max_tokens < 8:
        raise WebsemError(f"websem: max_tokens={max_tokens} is too small; use the model's "
                          "max_seq_length minus 2 (254 for all-MiniLM-L6-v2)")
    overlap = default_overlap(max_tokens) if overlap_tokens is None else overlap_tokens
    if not 0 <= overlap < max_tokens // 2:
        raise WebsemError(f"websem: overlap_tokens={overlap} must be between 0 and "
                          f"{max_tokens // 2 - 1} (half the budget of {max_tokens})")
    out: list[Chunk] = []
    for sec in doc.sections:
        units = _units(doc.text, sec.start, sec.end, count_tokens, max_tokens)
        for i, j in _pack(units, max_tokens, overlap):
            a, b = units[i].start, units[j - 1].end
            out.append(Chunk(doc_index, sec.anchor, a, b, doc.text[a:b], sec.title))
    return out


def chunk_documents(
    docs: list[Document],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int | None = None,
) -> list[Chunk]:
    """Chunks of all documents, in document order (the index order)."""
    chunks: list[Chunk] = []
    for i, d in enumerate(docs):
        chunks.extend(chunk_document(d, i, count_tokens, max_tokens, overlap_tokens))
    return chunks
