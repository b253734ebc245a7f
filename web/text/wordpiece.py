"""Stdlib-only BERT WordPiece tokenizer with parity to HF `tokenizers` (Rust).

The same file runs in CPython at build time (``websem.text.wordpiece``) and in Pyodide in the
browser (``websem_text.wordpiece``), so build-time chunk token counts and query-time embeddings
see exactly the same token ids.

One module on purpose, and so past 600 lines: normalizer, pre-tokenizer and WordPiece share the
Unicode tables and the offset bookkeeping in one class, whose parity with HF is proven as one
unit (docs/tokenizer.md); the Pyodide tests reach its module-level character classes by this
module's name, and every bundle ships it as one file that the snapshot imports.

Pipeline, read from the model's ``tokenizer.json`` (anything else is refused):

1. added tokens that are not normalized (``[CLS]``, ``[MASK]``, ...) are split out of the raw text
   first, exactly like ``tokenizers.AddedVocabulary`` does;
2. ``BertNormalizer``: clean text (drop NUL, U+FFFD and "other" characters, map whitespace to a
   space), pad CJK ideographs with spaces, strip accents (NFD, drop Mn), lowercase (per character,
   like Rust's ``char::to_lowercase``: no final-sigma rule);
3. ``BertPreTokenizer``: split on whitespace (removed) and punctuation (isolated);
4. ``WordPiece``: greedy longest-match-first with the ``##`` prefix; a word longer than
   ``max_input_chars_per_word`` or with an unmatched piece becomes one ``[UNK]``;
5. post-processing (``TemplateProcessing`` / ``BertProcessing``): ``[CLS] ... [SEP]``, truncation of
   the sequence to ``max_length`` minus the special tokens (padding in tokenizer.json is ignored).

Offsets are code-point offsets into the original text (what the Python binding of HF
`tokenizers` reports); special tokens added by the post-processor get ``(0, 0)``.

Unicode tables: the character classes come from :mod:`unicodedata` plus explicit override
tables in :mod:`._unicode_overrides` for every code point where the runtime's Unicode version
(14.0 in CPython 3.11, 16.0 in Pyodide's 3.14) disagrees with the Rust crates HF uses. See
docs/tokenizer.md.
"""

from __future__ import annotations

import json
import re
import unicodedata

from . import _unicode_overrides as _ovr
from .errors import WebsemError

__all__ = ["Encoding", "WordPieceTokenizer"]

# Rust `char::is_whitespace` (the White_Space property; stable since Unicode 6.x). Python's
# str.isspace() differs (it includes U+001C..U+001F and excludes nothing else we need), so the
# set is explicit.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# tokenizers' `is_chinese_char` (normalizers/bert.rs). Note 0x2B920 (not 0x2B820): copied from
# the Rust source on purpose, parity beats correctness here.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)

# ASCII fast path: after lowercasing, a word is a run of non-space, non-punctuation ASCII.
_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_ASCII_WORD_RE = re.compile(r"[^\t\n\x0b\x0c\r !-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")
# ASCII characters the normalizer removes (Cc minus \t \n \r; \x0b and \x0c are Cc first).
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Over the class string of the general path: a word is a run of "w", punctuation is isolated.
_KIND_RE = re.compile(r"w+|p")


def _is_cjk(cp: int) -> bool:
    for lo, hi in _CJK_RANGES:
        if lo <= cp <= hi:
            return True
    return False


def _is_other(ch: str) -> bool:
    """HF's `is_other` as measured: Cc, Cf, Co (and Cs), with HF's tables.

    Unassigned code points (Cn) are *kept* by HF (its crate's Cn test never fires; measured over
    all code points by bench/unicode_scan.py), so they are kept here too.
    """
    cp = ord(ch)
    if cp in _ovr.OTHER_ADD:
        return True
    if cp in _ovr.OTHER_REMOVE:
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_mn(ch: str) -> bool:
    cp = ord(ch)
    if cp in _ovr.MN_ADD:
        return True
    if cp in _ovr.MN_REMOVE:
        return False
    return unicodedata.category(ch) == "Mn"


def _is_punct(ch: str) -> bool:
    """tokenizers' `is_bert_punc`: ASCII punctuation or Unicode P* (with HF's tables)."""
    if ch in _ASCII_PUNCT:
        return True
    cp = ord(ch)
    if cp in _ovr.PUNCT_ADD:
        return True
    if cp in _ovr.PUNCT_REMOVE:
        return False
    return unicodedata.category(ch)[0] == "P"


def _nfd(ch: str) -> str:
    cp = ord(ch)
    d = _ovr.NFD.get(cp)
    if d is not None:
        return d
    return unicodedata.normalize("NFD", ch)


def _ccc(ch: str) -> int:
    cp = ord(ch)
    c = _ovr.CCC.get(cp)
    if c is not None:
        return c
    return unicodedata.combining(ch)


def _lower(ch: str) -> str:
    """Rust `char::to_lowercase` for one char (no context: U+03A3 always gives U+03C3)."""
    cp = ord(ch)
    low = _ovr.LOWER.get(cp)
    if low is not None:
        return low
    return ch.lower()


class Encoding:
    """One encoded text: ``ids``, ``attention_mask``, ``type_ids`` and ``offsets``.

    ``offsets[i]`` is the ``(start, end)`` code-point span in the original text of token ``i``;
    ``(0, 0)`` for the special tokens added by post-processing.
    """

    __slots__ = ("ids", "type_ids", "offsets", "truncated")

    def __init__(
        self, ids: list[int], type_ids: list[int], offsets: list[tuple[int, int]], truncated: bool
    ) -> None:
        self.ids = ids
        self.type_ids = type_ids
        self.offsets = offsets
        self.truncated = truncated

    @property
    def attention_mask(self) -> list[int]:
        # No padding ever (batch size 1), so every position is attended.
        return [1] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Encoding(n={len(self.ids)}, ids={self.ids[:8]}{'...' if len(self) > 8 else ''})"


class WordPieceTokenizer:
    """BERT WordPiece tokenizer configured from a HF ``tokenizer.json``. Stdlib only."""

    def __init__(
        self,
        vocab: dict[str, int],
        *,
        unk_token: str = "[UNK]",
        continuing_subword_prefix: str = "##",
        max_input_chars_per_word: int = 100,
        clean_text: bool = True,
        handle_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        lowercase: bool = True,
        prefix_specials: list[tuple[int, int]] | None = None,
        suffix_specials: list[tuple[int, int]] | None = None,
        added_tokens: dict[str, int] | None = None,
        max_length: int = 256,
    ) -> None:
        if unk_token not in vocab:
            raise WebsemError(
                f"websem: unk_token {unk_token!r} is not in the WordPiece vocab; "
                "fix the tokenizer.json of the model package (re-run `websem export`)"
            )
        self.vocab = vocab
        self.unk_token = unk_token
        self.unk_id = vocab[unk_token]
        self.prefix = continuing_subword_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.clean_text = clean_text
        self.handle_chinese_chars = handle_chinese_chars
        # HF: `strip_accents: null` means "follow lowercase".
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.lowercase = lowercase
        self.prefix_specials = list(prefix_specials or [])  # (id, type_id)
        self.suffix_specials = list(suffix_specials or [])
        self.n_special = len(self.prefix_specials) + len(self.suffix_specials)
        if max_length <= self.n_special:
            raise WebsemError(
                f"websem: max_length={max_length} leaves no room for text next to "
                f"{self.n_special} special tokens; use a max_length above {self.n_special}"
            )
        self.max_length = max_length
        self.added_tokens = dict(added_tokens or {})
        self._added_re = (
            re.compile(
                "|".join(re.escape(t) for t in sorted(self.added_tokens, key=len, reverse=True))
            )
            if self.added_tokens
            else None
        )
        self._id_to_token: dict[int, str] | None = None  # built on first use (cold start)
        # The vocab as one string while packed (pack_vocab), else None.
        self._packed_vocab: str | None = None
        self._max_piece = max(len(t) for t in vocab)
        # Caches, filled lazily (a cold start in Pyodide must stay cheap): per original char its
        # normalized form; the chars that normalize 1:1 (and their str.translate table); the
        # class of every normalized char seen; per word its wordpieces.
        self._final: dict[str, str] = {}
        self._removed: set[str] = set()
        self._simple: set[str] = set()
        self._simple_trans: dict[int, str] = {}
        self._starts_ns: set[str] = set()
        self._ends_ns: set[str] = set()
        self._kind_trans: dict[int, str] = {}
        self._word_cache: dict[str, tuple[tuple[int, int, int], ...]] = {}
        # The ASCII fast path assumes clean text (control chars are checked for separately);
        # lowercase is applied or not, strip_accents is a no-op on ASCII.
        self._ascii_ok = clean_text

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_json(cls, json_text: str, max_length: int | None = None) -> WordPieceTokenizer:
        """Build from the text of a HF ``tokenizer.json``.

        ``max_length`` is the model's ``max_seq_length`` (from the model package manifest);
        when None, tokenizer.json's own truncation length is used.
        """
        try:
            cfg = json.loads(json_text)
        except ValueError as e:
            raise WebsemError(f"websem: tokenizer.json is not valid JSON ({e}); re-run `websem export`") from e
        model = cfg.get("model") or {}
        if model.get("type") != "WordPiece":
            raise WebsemError(
                f"websem: unsupported tokenizer model {model.get('type')!r}; "
                "the stdlib tokenizer supports only 'WordPiece' (BERT-family models)"
            )
        norm = cfg.get("normalizer")
        if norm is None or norm.get("type") != "BertNormalizer":
            raise WebsemError(
                f"websem: unsupported normalizer {None if norm is None else norm.get('type')!r}; "
                "the stdlib tokenizer supports only 'BertNormalizer'"
            )
        pre = cfg.get("pre_tokenizer")
        if pre is None or pre.get("type") != "BertPreTokenizer":
            raise WebsemError(
                f"websem: unsupported pre_tokenizer {None if pre is None else pre.get('type')!r}; "
                "the stdlib tokenizer supports only 'BertPreTokenizer'"
            )
        vocab: dict[str, int] = model["vocab"]
        added: dict[str, int] = {}
        for tok in cfg.get("added_tokens") or []:
            content = tok["content"]
            if tok.get("normalized") or tok.get("single_word") or tok.get("lstrip") or tok.get(
                "rstrip"
            ):
                raise WebsemError(
                    f"websem: unsupported added token {content!r} (normalized/single_word/lstrip/"
                    "rstrip); the stdlib tokenizer supports only plain non-normalized added tokens"
                )
            added[content] = tok["id"]
        prefix, suffix = cls._parse_post_processor(cfg.get("post_processor"), vocab, added)
        if max_length is None:
            trunc = cfg.get("truncation") or {}
            max_length = trunc.get("max_length")
            if max_length is None:
                raise WebsemError(
                    "websem: max_length=None and tokenizer.json has no truncation; pass the "
                    "model's max_seq_length (manifest.json) as max_length"
                )
        return cls(
            vocab,
            unk_token=model.get("unk_token", "[UNK]"),
            continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
            max_input_chars_per_word=model.get("max_input_chars_per_word", 100),
            clean_text=norm.get("clean_text", True),
            handle_chinese_chars=norm.get("handle_chinese_chars", True),
            strip_accents=norm.get("strip_accents"),
            lowercase=norm.get("lowercase", True),
            prefix_specials=prefix,
            suffix_specials=suffix,
            added_tokens=added,
            max_length=int(max_length),
        )

    @staticmethod
    def _parse_post_processor(
        post: dict | None, vocab: dict[str, int], added: dict[str, int]
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return (prefix, suffix) special tokens as (id, type_id) for a single sequence."""
        if post is None:
            return [], []
        kind = post.get("type")
        if kind == "BertProcessing":
            cls_tok, cls_id = post["cls"]
            sep_tok, sep_id = post["sep"]
            return [(int(cls_id), 0)], [(int(sep_id), 0)]
        if kind == "TemplateProcessing":
            specials = post.get("special_tokens") or {}
            prefix: list[tuple[int, int]] = []
            suffix: list[tuple[int, int]] = []
            seen_seq = False
            for piece in post.get("single") or []:
                if "Sequence" in piece:
                    if seen_seq:
                        raise WebsemError("websem: TemplateProcessing with two sequences in 'single'")
                    seen_seq = True
                    continue
                sp = piece["SpecialToken"]
                entry = specials.get(sp["id"])
                if entry is None:
                    raise WebsemError(
                        f"websem: TemplateProcessing names special token {sp['id']!r} that is not "
                        "in its special_tokens; fix tokenizer.json"
                    )
                target = suffix if seen_seq else prefix
                for i in entry["ids"]:
                    target.append((int(i), int(sp.get("type_id", 0))))
            return prefix, suffix
        raise WebsemError(
            f"websem: unsupported post_processor {kind!r}; the stdlib tokenizer supports "
            "'TemplateProcessing' and 'BertProcessing'"
        )

    # ------------------------------------------------------------------ public API
    def encode(self, text: str) -> Encoding:
        """Encode one text: ``[CLS] pieces [SEP]``, truncated to ``max_length``."""
        budget = self.max_length - self.n_special
        ids: list[int] = []
        offs: list[tuple[int, int]] = []
        # Ask for one more piece than fits, so we know whether truncation happened.
        self._pieces(text, ids, offs, budget + 1)
        truncated = len(ids) > budget
        if truncated:
            del ids[budget:]
            del offs[budget:]
        out_ids = [i for i, _ in self.prefix_specials] + ids + [i for i, _ in self.suffix_specials]
        type_ids = (
            [t for _, t in self.prefix_specials]
            + [0] * len(ids)
            + [t for _, t in self.suffix_specials]
        )
        out_offs = [(0, 0)] * len(self.prefix_specials) + offs + [(0, 0)] * len(self.suffix_specials)
        return Encoding(out_ids, type_ids, out_offs, truncated)

    def encode_batch(self, texts: list[str]) -> list[Encoding]:
        """Encode several texts (each independently, no padding)."""
        return [self.encode(t) for t in texts]

    def count_tokens(self, text: str) -> int:
        """Number of wordpieces of ``text``, without special tokens and without truncation."""
        ids: list[int] = []
        self._pieces(text, ids, None, None)
        return len(ids)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        """:meth:`count_tokens` for many texts (the build's chunking path)."""
        return [self.count_tokens(t) for t in texts]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        """Token strings of ``ids`` (for debugging and tests)."""
        if self._id_to_token is None:
            self.unpack_vocab()
            self._id_to_token = {i: t for t, i in self.vocab.items()}
            for t, i in self.added_tokens.items():
                self._id_to_token.setdefault(i, t)
        return [self._id_to_token.get(i, self.unk_token) for i in ids]

    def pack_vocab(self) -> bool:
        """Hold the vocab as one string (tokens in id order, newline-separated) instead of the
        dict, until the next lookup rebuilds the dict (:meth:`unpack_vocab`).

        For the build-time Pyodide memory snapshot (web/tools/make_snapshot.mjs): in the wasm
        heap the dict costs about 0.5 MB of the snapshot's brotli (a str object per token, the
        table's hashes and pointers), the string about a fifth of that, and rebuilding the dict
        takes ~10 ms in Pyodide. Returns False and changes nothing when the vocab cannot be held
        that way losslessly: ids other than exactly 0..n-1, or a token containing a newline."""
        if self.vocab is None:
            return True
        tokens = sorted(self.vocab, key=self.vocab.__getitem__)
        if any(self.vocab[t] != i for i, t in enumerate(tokens)) or any("\n" in t for t in tokens):
            return False
        self._packed_vocab = "\n".join(tokens)
        self.vocab = None
        self._id_to_token = None
        return True

    def unpack_vocab(self) -> None:
        """The vocab dict back from :meth:`pack_vocab`'s string (a no-op when not packed)."""
        if self.vocab is None:
            self.vocab = {t: i for i, t in enumerate(self._packed_vocab.split("\n"))}
            self._packed_vocab = None

    # ------------------------------------------------------------------ internals
    def _pieces(
        self, text: str, ids: list[int], offs: list | None, limit: int | None
    ) -> None:
        """Append the wordpieces of ``text`` (ids, and offsets if ``offs`` is a list)."""
        if self._added_re is not None and self._added_re.search(text) is not None:
            pos = 0
            for m in self._added_re.finditer(text):
                if m.start() > pos:
                    self._segment(text[pos : m.start()], pos, ids, offs, limit)
                if limit is not None and len(ids) >= limit:
                    return
                ids.append(self.added_tokens[m.group()])
                if offs is not None:
                    offs.append((m.start(), m.end()))
                pos = m.end()
            if pos < len(text):
                self._segment(text[pos:], pos, ids, offs, limit)
            return
        self._segment(text, 0, ids, offs, limit)

    def _segment(
        self, text: str, base: int, ids: list[int], offs: list | None, limit: int | None
    ) -> None:
        """Normalize, pre-tokenize and WordPiece one text segment (no added tokens inside)."""
        if self._ascii_ok and text.isascii() and _ASCII_CONTROL_RE.search(text) is None:
            # ASCII fast path: normalization is lowercasing only (1:1), offsets are unchanged.
            norm = text.lower() if self.lowercase else text
            if offs is None and limit is None:
                # Counting only (the build's chunking path): words straight from findall.
                wc = self._word_cache
                for word in _ASCII_WORD_RE.findall(norm):
                    pieces = wc.get(word)
                    if pieces is None:
                        pieces = self._cache_word(word)
                    ids.extend([p[0] for p in pieces])
                return
            matches = _ASCII_WORD_RE.finditer(norm)
            align = None
        else:
            for ch in set(text).difference(self._final):
                self._learn_char(ch)
            if self._simple.issuperset(text):
                # Every char normalizes to exactly one char: offsets are unchanged.
                norm = text.translate(self._simple_trans)
                align = None
            else:
                norm, align = self._normalize(text)
            # One class letter per normalized char ("w" word, " " space, "p" punctuation),
            # then the word/punctuation spans come from one C-level regex scan.
            matches = _KIND_RE.finditer(norm.translate(self._kind_trans))
        wc = self._word_cache
        n_limit = -1 if limit is None else limit
        for m in matches:
            s, e = m.span()
            word = norm[s:e]
            pieces = wc.get(word)
            if pieces is None:
                pieces = self._cache_word(word)
            if offs is None:
                if len(pieces) == 1:
                    ids.append(pieces[0][0])
                else:
                    ids.extend([p[0] for p in pieces])
            elif align is None:
                o = base + s
                for pid, ps, pe in pieces:
                    ids.append(pid)
                    offs.append((o + ps, o + pe))
            else:
                for pid, ps, pe in pieces:
                    ids.append(pid)
                    offs.append((base + align[s + ps], base + align[s + pe - 1] + 1))
            if len(ids) >= n_limit >= 0:
                return

    def _cache_word(self, word: str) -> tuple[tuple[int, int, int], ...]:
        pieces = self._wordpiece(word)
        if len(self._word_cache) > 200_000:  # bound memory on huge corpora
            self._word_cache.clear()
        self._word_cache[word] = pieces
        return pieces

    def _learn_char(self, ch: str) -> None:
        """Compute and cache how one original char normalizes (everything but NFD reordering,
        which depends on the neighbours and is handled in :meth:`_normalize`)."""
        cp = ord(ch)
        starts_ns = ends_ns = False
        if self.clean_text and (cp == 0 or cp == 0xFFFD or (ch not in "\t\n\r" and _is_other(ch))):
            final = ""
            self._removed.add(ch)
        elif self.clean_text and ch in _WHITESPACE:
            final = " "
        else:
            d = _nfd(ch) if self.strip_accents else ch
            if self.strip_accents:
                starts_ns = _ccc(d[0]) != 0
                ends_ns = _ccc(d[-1]) != 0
                d = "".join(c for c in d if not _is_mn(c))
            if self.lowercase:
                d = "".join(_lower(c) for c in d)
            final = " " + d + " " if self.handle_chinese_chars and _is_cjk(cp) else d
        self._final[ch] = final
        if starts_ns:
            self._starts_ns.add(ch)
        if ends_ns:
            self._ends_ns.add(ch)
        if len(final) == 1 and not starts_ns:
            self._simple.add(ch)
            if final != ch:
                self._simple_trans[cp] = final
        for c in final:
            if ord(c) not in self._kind_trans:
                self._kind_trans[ord(c)] = (
                    " " if c in _WHITESPACE else ("p" if _is_punct(c) else "w")
                )

    def _normalize(self, text: str) -> tuple[str, list[int]]:
        """BertNormalizer with alignments: normalized text and, per normalized char, the index
        (in ``text``) of the original char it comes from."""
        final = self._final
        starts_ns = self._starts_ns
        ends_ns = self._ends_ns
        parts: list[str] = []
        align: list[int] = []
        prev_ends = False
        removed = self._removed
        for i, ch in enumerate(text):
            if ch in removed:
                continue  # removed by clean text, before NFD: does not separate marks
            if prev_ends and ch in starts_ns:
                # Two non-starters meet across chars: NFD may reorder them (rare).
                return self._normalize_exact(text)
            prev_ends = ch in ends_ns
            f = final[ch]
            if not f:
                continue  # e.g. a combining mark stripped with the accents
            parts.append(f)
            if len(f) == 1:
                align.append(i)
            else:
                align.extend([i] * len(f))
        return "".join(parts), align

    def _normalize_exact(self, text: str) -> tuple[str, list[int]]:
        """The full pipeline step by step, with NFD canonical reordering across chars."""
        chars: list[str] = []
        align: list[int] = []
        for i, ch in enumerate(text):
            if ch in self._removed:
                continue
            f = self._final[ch]
            if f == " " and ch in _WHITESPACE:
                chars.append(" ")
                align.append(i)
                continue
            cp = ord(ch)
            cjk = self.handle_chinese_chars and _is_cjk(cp)
            d = _nfd(ch) if self.strip_accents else ch
            if cjk:
                d = " " + d + " "
            chars.extend(d)
            align.extend([i] * len(d))
        if self.strip_accents:
            chars, align = self._canonical_order(chars, align)
        out_c: list[str] = []
        out_a: list[int] = []
        for c, a in zip(chars, align, strict=True):
            if self.strip_accents and _is_mn(c):
                continue
            low = _lower(c) if self.lowercase else c
            out_c.append(low)
            out_a.extend([a] * len(low))
        return "".join(out_c), out_a

    @staticmethod
    def _canonical_order(chars: list[str], align: list[int]) -> tuple[list[str], list[int]]:
        """NFD canonical ordering (stable sort of each run of non-starters by combining class),
        with HF's alignment rule.

        HF's unicode-normalization-alignments tags each decomposed char as "first of its
        source char" or "inserted", moves the tags with the chars when reordering, then
        re-aligns sequentially: a first char takes the next source char's alignment, an
        inserted one repeats the last taken. Measured: "\u1b44\u0301\u1b44" -> (0, 2) and
        "\u00e9\u1b44" -> (0, 2) (alignments kept by position would give (0, 1)).
        """
        n = len(chars)
        first = [True] * n
        sources: list[int] = []
        for k in range(n):
            if k and align[k] == align[k - 1]:
                first[k] = False
            else:
                sources.append(align[k])
        items = list(zip(chars, first, strict=True))
        i = 0
        moved = False
        while i < n:
            if _ccc(items[i][0]) == 0:
                i += 1
                continue
            j = i
            while j < n and _ccc(items[j][0]) != 0:
                j += 1
            if j - i > 1:
                run = sorted(items[i:j], key=lambda it: _ccc(it[0]))
                if run != items[i:j]:
                    items[i:j] = run
                    moved = True
            i = j
        if not moved:
            return chars, align
        out_c: list[str] = []
        out_a: list[int] = []
        src = -1
        for c, is_first in items:
            if is_first:
                src += 1
            out_c.append(c)
            out_a.append(sources[max(src, 0)])
        return out_c, out_a

    def _wordpiece(self, word: str) -> tuple[tuple[int, int, int], ...]:
        """Greedy longest-match-first. Returns (id, start, end) in chars of ``word``."""
        n = len(word)
        vocab = self.vocab
        if vocab is None:  # packed for a memory snapshot: rebuilt on the first lookup
            self.unpack_vocab()
            vocab = self.vocab
        if n > self.max_input_chars_per_word:
            return ((self.unk_id, 0, n),)
        whole = vocab.get(word)
        if whole is not None:
            return ((whole, 0, n),)
        out: list[tuple[int, int, int]] = []
        start = 0
        prefix = self.prefix
        max_piece = self._max_piece
        while start < n:
            end = min(n, start + max_piece)
            found = None
            while end > start:
                sub = word[start:end]
                if start > 0:
                    sub = prefix + sub
                pid = vocab.get(sub)
                if pid is not None:
                    found = pid
                    break
                end -= 1
            if found is None:
                return ((self.unk_id, 0, n),)
            out.append((found, start, end))
            start = end
        return tuple(out)
