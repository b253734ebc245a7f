"""Snippets: a window of a chunk around the query terms, with highlight ranges.

Stdlib only; split out of ``bm25.py`` (which re-exports these names). Python counts code
points, JS counts UTF-16 units: ``utf16_ranges`` converts so the browser highlights the same
characters as the CPU reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .rules import DEFAULTS

__all__ = ["snippet", "utf16_ranges"]


def snippet(text: str, analyzer, query_terms: Iterable[str], *,
            max_chars: int = DEFAULTS["snippet_chars"], lead: int = 40) -> dict:
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
