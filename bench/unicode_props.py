"""Dump the running Python's Unicode character properties that the tokenizer uses.

Stdlib only: bench/unicode_scan.py runs it in CPython and, through
``node tests/js/pyodide_tokenize.mjs unicode-dump bench/unicode_props.py``, in Pyodide.
"""

from __future__ import annotations

import sys
import unicodedata

__all__ = ["dump"]


def dump() -> dict:
    """Category runs, NFD decompositions, combining classes and lowercase maps, all code points
    except surrogates (HF `tokenizers` cannot receive lone surrogates)."""
    cats: list[list] = []
    nfd: dict[str, str] = {}
    ccc: dict[str, int] = {}
    lower: dict[str, str] = {}
    last = None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat != last:
            cats.append([cp, cat])
            last = cat
        d = unicodedata.normalize("NFD", ch)
        if d != ch:
            nfd[str(cp)] = d
        c = unicodedata.combining(ch)
        if c:
            ccc[str(cp)] = c
        lo = ch.lower()
        if lo != ch:
            lower[str(cp)] = lo
    return {
        "unidata_version": unicodedata.unidata_version,
        "python": sys.version.split()[0],
        "categories": cats,
        "nfd": nfd,
        "ccc": ccc,
        "lower": lower,
    }
