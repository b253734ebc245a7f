"""The tokenizer benchmark workload, stdlib only, so the very same code times the stdlib
tokenizer in CPython and in Pyodide (tests/js/pyodide_tokenize.mjs bench).

``run_workload(cls, tok_json, corpus_jsonl_text, repeats)`` returns medians over ``repeats``.
"""

from __future__ import annotations

import json
import sys
import time
import unicodedata


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def doc_texts(corpus_jsonl_text: str) -> list[str]:
    docs = [json.loads(line) for line in corpus_jsonl_text.splitlines() if line.strip()]
    return [(d.get("title") or "") + " " + (d.get("text") or "") for d in docs]


def queries_from(texts: list[str], n: int = 400) -> list[str]:
    """20-word queries: the first 20 words of each document (real vocabulary, mixed scripts)."""
    return [" ".join(t.split()[:20]) for t in texts[:n]]


def run_workload(cls, tok_json: str, corpus_jsonl_text: str, repeats: int = 3) -> dict:
    texts = doc_texts(corpus_jsonl_text)
    t0 = time.perf_counter()
    tok = cls.from_json(tok_json, max_length=256)
    load_s = time.perf_counter() - t0

    # Cold: a fresh tokenizer (empty char/word caches) encodes the whole corpus once.
    t0 = time.perf_counter()
    encode_tokens = sum(len(tok.encode(t).ids) for t in texts)
    encode_cold_s = time.perf_counter() - t0
    enc_s, cnt_s = [], []
    count_tokens = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for t in texts:
            tok.encode(t)
        enc_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        count_tokens = sum(tok.count_tokens(t) for t in texts)
        cnt_s.append(time.perf_counter() - t0)

    # 20-word queries on a fresh tokenizer warmed with 50 other queries: "first seen" is the
    # realistic browser case (new words every query), "repeat" the best case.
    qtok = cls.from_json(tok_json, max_length=256)
    queries = queries_from(texts)
    for q in queries[:50]:
        qtok.encode(q)
    first, repeat = [], []
    for q in queries[50:]:
        t0 = time.perf_counter()
        qtok.encode(q)
        first.append(time.perf_counter() - t0)
    for q in queries[50:]:
        t0 = time.perf_counter()
        qtok.encode(q)
        repeat.append(time.perf_counter() - t0)
    first.sort()
    return {
        "python": sys.version.split()[0],
        "unidata_version": unicodedata.unidata_version,
        "docs": len(texts),
        "load_s": load_s,
        "encode_tokens": encode_tokens,
        "encode_cold_s": encode_cold_s,
        "encode_warm_s": _median(enc_s),
        "count_tokens": count_tokens,
        "count_warm_s": _median(cnt_s),
        "encode_tokens_per_s_cold": encode_tokens / encode_cold_s,
        "encode_tokens_per_s_warm": encode_tokens / _median(enc_s),
        "count_tokens_per_s_warm": count_tokens / _median(cnt_s),
        "query20_n": len(first),
        "query20_ms_median_first_seen": 1000 * _median(first),
        "query20_ms_p90_first_seen": 1000 * first[int(0.9 * len(first))],
        "query20_ms_median_repeat": 1000 * _median(repeat),
    }
