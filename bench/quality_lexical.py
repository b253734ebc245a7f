"""The lexical systems of bench/bench_quality.py: websem's BM25 through its serialized index (the
bytes a bundle ships) and PyPI bm25s with the same k1/b, fed its own tokens or websem's."""

from __future__ import annotations

import time

import numpy as np

# websem keeps 1-character tokens ("C API", "vitamin D", "Python 3"); bm25s' default pattern
# drops them. "bm25s" uses websem's setting (the like-for-like check), "bm25s-2char" its default.
TOKEN_PATTERN = r"(?u)\b\w+\b"
BM25S_DEFAULT_PATTERN = r"(?u)\b\w\w+\b"
K1, B = 1.2, 0.75


def websem_lexical(data: dict, depth: int, title_weight: int | None = None) -> tuple[list[list[int]], dict, object]:
    """websem BM25 through the serialized index (what the bundle ships): one chunk per document,
    its text made by build/lexical.py ``chunk_lexical_text`` (the title ``title_weight`` times,
    default the product's). Returns (document runs, info, (analyzer, doc terms, score runs))."""
    from websem.build.lexical import TITLE_WEIGHT, chunk_lexical_text
    from websem.text.analyze import Analyzer
    from websem.text.bm25 import LexicalIndex

    w = TITLE_WEIGHT if title_weight is None else title_weight
    analyzer = Analyzer()
    t0 = time.perf_counter()
    doc_terms = [analyzer.terms(chunk_lexical_text({"text": b}, {"title": t}, title_weight=w))
                 for t, b in zip(data["titles"], data["bodies"], strict=True)]
    t_an = time.perf_counter() - t0
    blob = LexicalIndex.build(doc_terms, k1=K1, b=B, analyzer=analyzer.config(),
                              fields={"title": w, "heading": 0}).to_bytes()
    index = LexicalIndex.from_bytes(blob)
    t0 = time.perf_counter()
    runs = []
    scored = []
    for qtext in data["queries"]:
        hits = index.search(analyzer.terms(qtext), depth)
        runs.append([c for c, _ in hits])
        scored.append(hits)
    t_q = time.perf_counter() - t0
    info = {
        "index_bytes": len(blob),
        "analyze_docs_s": round(t_an, 3),
        "query_ms_mean": round(1000 * t_q / max(1, len(data["queries"])), 3),
        "terms": index.n_terms,
        "postings": index.n_postings,
        "title_weight": w,
    }
    info.update(_compressed_sizes(blob))
    return runs, info, (analyzer, doc_terms, scored)


def _compressed_sizes(blob: bytes) -> dict:
    import gzip

    out = {"index_gzip_bytes": len(gzip.compress(blob, 9))}
    try:
        import brotli

        out["index_brotli_bytes"] = len(brotli.compress(blob, quality=11))
    except ImportError:
        pass
    return out


def bm25s_runs(data: dict, depth: int, analyzer, doc_terms=None,
               token_pattern: str = TOKEN_PATTERN) -> list[list[int]]:
    """bm25s (Lucene BM25, same k1/b). With doc_terms: fed websem's tokens; else its own tokenizer."""
    import bm25s
    from websem.text.analyze import ENGLISH_STOPWORDS

    if doc_terms is None:
        import snowballstemmer

        stem = snowballstemmer.stemmer("english")
        kw = {"lower": True, "stopwords": sorted(ENGLISH_STOPWORDS), "stemmer": stem,
              "show_progress": False, "token_pattern": token_pattern}
        corpus_tok = bm25s.tokenize(data["texts"], **kw)
        query_tok = bm25s.tokenize(data["queries"], return_ids=False, **kw)
    else:
        corpus_tok = doc_terms
        query_tok = [analyzer.terms(q) for q in data["queries"]]
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(corpus_tok, show_progress=False)
    runs = []
    n = len(data["texts"])
    for qt in query_tok:
        qt = list(qt)
        if not qt:
            runs.append([])
            continue
        scores = np.asarray(retriever.get_scores(qt), dtype=np.float64)
        idx = np.lexsort((np.arange(n), -scores))
        idx = [int(i) for i in idx[:depth] if scores[i] > 0]
        runs.append(idx)
    return runs
