"""The lexical analyzer: text -> index terms, each with its character span in the original text.

Stdlib only (+ the pure-Python ``snowballstemmer`` package, shipped into Pyodide as plain .py
files). The same file analyzes documents at build time (CPython) and queries in the browser
(Pyodide), so both sides produce the same terms by construction.

Pipeline, per token (offsets always point into the *original* string, so highlights are exact):

1. tokenize: runs of word characters (``\\w``, plus combining marks so a decomposed "é" stays
   inside its word); every CJK ideograph is a token of its own (as BERT does);
2. identifiers: ``snake_case`` and ``camelCase`` tokens are kept whole AND split into their
   parts (each part with its own span), so ``getElementById`` matches exactly and ``element``
   still finds it;
3. case folding (``str.casefold``) and accent folding (NFKD, combining marks dropped, plus
   ø→o, æ→ae, ł→l... which NFKD leaves alone);
4. stopwords (Lucene's English set, 33 words);
5. Snowball English (Porter2) stemming.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

__all__ = ["ENGLISH_STOPWORDS", "ANALYZER_VERSION", "Analyzer", "Token"]

ANALYZER_VERSION = 1

# Lucene EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (the set Anserini's BEIR BM25 baselines use).
# Deliberately short: site search users type "not", "which", "T cell", "C API" and mean it.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)

# CJK ideograph blocks (the same ranges BERT's _is_chinese_char uses): one token per character.
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\U0002f800-\U0002fa1f"
)
# Combining diacritical marks are not \w in `re`; allow them inside a word so that "cafe\u0301"
# is one token (folding then removes the mark).
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_TOKEN_RE = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])\\w)(?:(?![{_CJK}])[\\w{_MARKS}])*")
# camelCase boundaries: lower->Upper ("getElement"), and Upper->Upper+lower ("HTMLParser").
_CAMEL_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W_]+")

# Latin letters NFKD does not decompose, folded like Lucene's ASCIIFoldingFilter (lowercase only:
# folding runs after casefold).
_FOLD_EXTRA = str.maketrans({
    "ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b", "ɨ": "i",
    "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ĳ": "ij", "ŋ": "n", "ĸ": "q",
})

_CACHE_LIMIT = 200_000


class Token(NamedTuple):
    """One index term and the [start, end) character span it came from in the original text."""

    term: str
    start: int
    end: int


class Analyzer:
    """Configurable analyzer; ``config()`` is stored in the index so the query side can rebuild it.

    >>> Analyzer().terms("The Runners' running shoes")
    ['runner', 'run', 'shoe']
    """

    def __init__(
        self,
        *,
        lowercase: bool = True,
        fold_accents: bool = True,
        stopwords: str | list[str] | frozenset[str] | None = "english",
        stemmer: str | None = "english",
        split_identifiers: bool = True,
        max_token_chars: int = 64,
    ) -> None:
        from .errors import WebsemError

        if isinstance(stopwords, str):
            if stopwords != "english":
                raise WebsemError(
                    f"websem: unknown stopword list {stopwords!r}; use 'english', a list of words, "
                    "or None"
                )
            stop = ENGLISH_STOPWORDS
        else:
            stop = frozenset(stopwords or ())
        self.lowercase = lowercase
        self.fold_accents = fold_accents
        self.stopwords_name = stopwords if isinstance(stopwords, str) else None
        self.stopwords = stop
        self.stemmer_name = stemmer
        self.split_identifiers = split_identifiers
        self.max_token_chars = max_token_chars
        self._stem = _make_stemmer(stemmer)
        # raw token -> term ("" = dropped). Documents repeat words a lot; the cache makes
        # analysis ~10x faster in CPython and Pyodide alike.
        self._cache: dict[str, str] = {}

    # ------------------------------------------------------------------ config

    def config(self) -> dict:
        """JSON-able settings (stored in the lexical index header)."""
        return {
            "version": ANALYZER_VERSION,
            "lowercase": self.lowercase,
            "fold_accents": self.fold_accents,
            "stopwords": self.stopwords_name
            if self.stopwords_name is not None
            else sorted(self.stopwords),
            "stemmer": self.stemmer_name,
            "split_identifiers": self.split_identifiers,
            "max_token_chars": self.max_token_chars,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> Analyzer:
        """Rebuild the analyzer an index was built with; refuse a newer analyzer version."""
        from .errors import WebsemError

        version = cfg.get("version")
        if version != ANALYZER_VERSION:
            raise WebsemError(
                f"websem: lexical index uses analyzer version {version!r}, this runtime knows "
                f"version {ANALYZER_VERSION}; rebuild the bundle with `websem build`"
            )
        return cls(
            lowercase=cfg["lowercase"],
            fold_accents=cfg["fold_accents"],
            stopwords=cfg["stopwords"],
            stemmer=cfg["stemmer"],
            split_identifiers=cfg["split_identifiers"],
            max_token_chars=cfg["max_token_chars"],
        )

    # ------------------------------------------------------------------ analysis

    def tokens(self, text: str) -> list[Token]:
        """All index terms of `text` in order, with their spans in `text`."""
        out: list[Token] = []
        for m in _TOKEN_RE.finditer(text):
            raw = m.group()
            start = m.start()
            term = self._term(raw)
            if term:
                out.append(Token(term, start, m.end()))
            if self.split_identifiers and len(raw) > 2 and _is_compound(raw):
                for part in _CAMEL_RE.finditer(raw):
                    p = part.group()
                    if len(p) == len(raw):
                        break
                    pterm = self._term(p)
                    if pterm:
                        out.append(Token(pterm, start + part.start(), start + part.end()))
        return out

    def terms(self, text: str) -> list[str]:
        """Index terms only (what BM25 counts)."""
        return [t.term for t in self.tokens(text)]

    def _term(self, raw: str) -> str:
        cache = self._cache
        term = cache.get(raw)
        if term is None:
            term = self._normalize(raw)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[raw] = term
        return term

    def _normalize(self, raw: str) -> str:
        if len(raw) > self.max_token_chars:
            return ""
        t = raw.casefold() if self.lowercase else raw
        if self.fold_accents and not t.isascii():
            t = "".join(
                c for c in unicodedata.normalize("NFKD", t) if c.isalnum() or c == "_"
            ).translate(_FOLD_EXTRA)
            if self.lowercase:
                # NFKD can expose new capitals (e.g. U+1D400 MATHEMATICAL BOLD A).
                t = t.casefold()
        if not t or t in self.stopwords:
            return ""
        if self._stem is not None:
            t = self._stem(t)
        return t


def _is_compound(raw: str) -> bool:
    """snake_case, or camelCase with a lower->upper step between parts of length >= 2."""
    if "_" in raw.strip("_"):
        return True
    if raw.islower() or raw.isupper() or not raw.isascii():
        return False
    parts = _CAMEL_RE.findall(raw)
    return len(parts) > 1 and all(len(p) >= 2 for p in parts)


def _make_stemmer(name: str | None):
    if name is None:
        return None
    from .errors import WebsemError

    try:
        import snowballstemmer
    except ImportError as e:  # pragma: no cover - packaging error
        raise WebsemError(
            "websem: the lexical analyzer needs the pure-Python package snowballstemmer; "
            "`pip install snowballstemmer` (the bundle ships it into Pyodide)"
        ) from e
    try:
        stemmer = snowballstemmer.stemmer(name)
    except KeyError as e:
        raise WebsemError(
            f"websem: unknown stemmer {name!r}; use one of {sorted(snowballstemmer.algorithms())} "
            "or None"
        ) from e
    return stemmer.stemWord
