"""Ranking for sites (issue #15): field weights on the lexical side and score fusion.

Hand-made score lists with exact expected values (every number below is a binary fraction, so
equality is exact), the real build code for field weights, and the real web/src/lexical.js under
Node for JS-vs-Python BM25 on an index built with field weights."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from websem.build.lexical import (
    HEADING_WEIGHT,
    TITLE_WEIGHT,
    build_lexical_index,
    chunk_headings,
    chunk_lexical_text,
    write_lexical_index,
)
from websem.text.analyze import Analyzer
from websem.text.bm25 import (
    DocHit,
    LexicalIndex,
    Ranker,
    aggregate_docs,
    convex,
    fuse,
    normalized,
    rrf,
)
from websem.text.errors import WebsemError
from websem.text.rules import DEFAULT_FUSION, check_fusion, search_table

REPO = Path(__file__).resolve().parents[1]

LEX = [DocHit(4, 9.0, 40), DocHit(2, 5.0, 21), DocHit(8, 1.0, 80)]
SEM = [DocHit(2, 0.75, 20), DocHit(6, 0.5, 60), DocHit(4, 0.25, 41)]


# --------------------------------------------------------------------------- fusion


def test_normalized_minmax_and_zscore() -> None:
    assert normalized([9.0, 5.0, 1.0], "minmax") == [1.0, 0.5, 0.0]
    assert normalized([3.0], "minmax") == [1.0]  # one candidate: the best
    assert normalized([2.0, 2.0], "minmax") == [1.0, 1.0]
    assert normalized([4.0, 4.0, 1.0, 1.0], "zscore") == [1.0, 1.0, -1.0, -1.0]  # mean 2.5, std 1.5
    assert normalized([6.0, 2.0], "zscore") == [1.0, -1.0]
    assert normalized([7.0, 7.0], "zscore") == [0.0, 0.0]
    assert normalized([], "minmax") == []
    with pytest.raises(WebsemError, match="unknown score normalization 'softmax'.*minmax, max, zscore"):
        normalized([1.0], "softmax")


def test_convex_combination_by_hand() -> None:
    sem = [(d.doc, d.score) for d in SEM]  # normalized: 2 -> 1, 6 -> 0.5, 4 -> 0
    lex = [(d.doc, d.score) for d in LEX]  # normalized: 4 -> 1, 2 -> 0.5, 8 -> 0
    # missing from a side = that side's lowest normalized score (0 with minmax)
    assert convex(sem, lex, 0.25) == [(4, 0.75), (2, 0.625), (6, 0.125), (8, 0.0)]
    assert convex(sem, lex, 0.75) == [(2, 0.875), (6, 0.375), (4, 0.25), (8, 0.0)]
    # alpha 1 = dense only, alpha 0 = lexical only; ties break by document index
    assert [d for d, _ in convex(sem, lex, 1.0)] == [2, 6, 4, 8]
    assert [d for d, _ in convex(sem, lex, 0.0)] == [4, 2, 6, 8]
    # zscore: sem [0.75, 0.5, 0.25] -> mean 0.5; lexical [6, 2] -> [1, -1]; doc 6 missing on
    # the lexical side gets -1 (its lowest z)
    got = dict(convex(sem, [(4, 6.0), (2, 2.0)], 0.5, "zscore"))
    s = normalized([0.75, 0.5, 0.25], "zscore")
    assert got == {2: 0.5 * s[0] + 0.5 * -1.0, 6: 0.5 * s[1] + 0.5 * -1.0, 4: 0.5 * s[2] + 0.5 * 1.0}
    # an empty side adds 0: the other side's order stands
    assert convex(sem, [], 0.5) == [(2, 0.5), (6, 0.25), (4, 0.0)]


def test_max_normalization_the_shipped_default() -> None:
    assert normalized([8.0, 4.0, 2.0], "max") == [1.0, 0.5, 0.25]
    assert normalized([-1.0, -2.0], "max") == [1.0, 1.0]  # no positive best: no scale
    sem = [(2, 0.5), (6, 0.25), (4, 0.125)]  # -> 1, 0.5, 0.25
    lex = [(4, 8.0), (2, 4.0), (8, 2.0)]  # -> 1, 0.5, 0.25
    # the floor stays 0: a lexical-only document keeps (1 - alpha) * its normalized BM25
    assert convex(sem, lex, 0.25, "max") == [(4, 0.8125), (2, 0.625), (8, 0.1875), (6, 0.125)]
    hits = fuse("hybrid", semantic=[DocHit(d, x, d) for d, x in sem], lexical=[DocHit(d, x, d) for d, x in lex],
                fusion={"method": "convex", "norm": "max", "alpha": 0.25})
    assert [(h.doc, h.score) for h in hits] == [(4, 0.8125), (2, 0.625), (8, 0.1875), (6, 0.125)]


def test_weighted_rrf_by_hand() -> None:
    got = dict(rrf([[7, 3, 9], [3, 1, 7]], k=60, weights=(0.75, 0.25)))
    assert got == {7: 0.75 / 61 + 0.25 / 63, 3: 0.75 / 62 + 0.25 / 61, 9: 0.75 / 63, 1: 0.25 / 62}
    hits = fuse("hybrid", semantic=[DocHit(d, 0.0, d) for d in (7, 3, 9)],
                lexical=[DocHit(d, 0.0, d) for d in (3, 1, 7)], fusion={"method": "rrf", "rrf_k": 60, "alpha": 0.75})
    assert [(h.doc, h.score) for h in hits] == rrf([[7, 3, 9], [3, 1, 7]], 60, (0.75, 0.25))
    assert [h.doc for h in hits] == [7, 3, 9, 1]


def test_fuse_hybrid_convex_keeps_chunks_and_ranks() -> None:
    fusion = {"method": "convex", "norm": "minmax", "alpha": 0.25}
    hyb = fuse("hybrid", lexical=LEX, semantic=SEM, k=10, n=3, fusion=fusion)
    assert [(h.doc, h.score) for h in hyb] == [(4, 0.75), (2, 0.625), (6, 0.125), (8, 0.0)]
    by_doc = {h.doc: h for h in hyb}
    assert by_doc[4].chunk == 40 and by_doc[4].lexical_rank == 1 and by_doc[4].semantic_rank == 3
    assert by_doc[2].chunk == 20  # semantic rank 1 beats lexical rank 2
    assert by_doc[6].chunk == 60 and by_doc[6].lexical_rank is None
    # n cuts each side before normalizing: lexical {4: 1}, semantic {2: 1}
    assert [(h.doc, h.score) for h in fuse("hybrid", lexical=LEX, semantic=SEM, n=1, fusion=fusion)] == [
        (4, 0.75), (2, 0.25)]
    # no fusion settings = the default a build writes (rules.DEFAULT_FUSION)
    assert fuse("hybrid", lexical=LEX, semantic=SEM, k=10, n=3) == fuse(
        "hybrid", lexical=LEX, semantic=SEM, k=10, n=3, fusion=DEFAULT_FUSION)
    plain = fuse("hybrid", lexical=LEX, semantic=SEM, k=10, n=3, fusion={"method": "rrf"})
    assert [(h.doc, h.score) for h in plain] == rrf([[2, 6, 4], [4, 2, 8]], 60)
    assert [h.doc for h in fuse("hybrid", lexical=LEX, semantic=SEM, n=3, fusion={"method": "rrf", "rrf_k": 0})] \
        == [d for d, _ in rrf([[2, 6, 4], [4, 2, 8]], 0)]
    # single-side modes ignore the fusion
    assert [h.doc for h in fuse("lexical", lexical=LEX, semantic=SEM, fusion=fusion)] == [4, 2, 8]


def test_fusion_settings_are_checked() -> None:
    assert check_fusion({"method": "rrf"}) == {"method": "rrf", "rrf_k": 60}
    assert check_fusion({"method": "convex", "alpha": 1}) == {"method": "convex", "alpha": 1.0, "norm": "minmax"}
    assert check_fusion(DEFAULT_FUSION) == {**DEFAULT_FUSION, "alpha": float(DEFAULT_FUSION["alpha"])}
    with pytest.raises(WebsemError, match="fusion settings must be an object"):
        check_fusion(None)
    with pytest.raises(WebsemError, match="unknown fusion method 'max'; use one of rrf, convex"):
        check_fusion({"method": "max"})
    with pytest.raises(WebsemError, match="0 <= alpha <= 1.*alpha=1.5"):
        check_fusion({"method": "convex", "alpha": 1.5})
    with pytest.raises(WebsemError, match="alpha=None"):
        check_fusion({"method": "convex"})
    with pytest.raises(WebsemError, match="unknown score normalization 'l2'"):
        check_fusion({"method": "convex", "alpha": 0.5, "norm": "l2"})
    with pytest.raises(WebsemError, match="rrf_k >= 0.*rrf_k=-1"):
        check_fusion({"method": "rrf", "rrf_k": -1})
    with pytest.raises(WebsemError, match="unknown fusion method"):
        Ranker(None, [], [], search={**search_table(), "fusion": {"method": "weighted"}})


def test_ranker_fuses_with_the_bundle_table() -> None:
    """The Ranker takes fusion and depth from the bundle's manifest.search, nowhere else."""
    docs = [{"id": f"d{i}", "title": f"doc {i}", "url": f"/d{i}"} for i in range(10)]
    chunks = [{"doc": i, "text": f"text of document {i}"} for i in range(10)]
    lex = [DocHit(4, 9.0, 4), DocHit(2, 5.0, 2), DocHit(8, 1.0, 8)]
    sem = [DocHit(2, 0.75, 2), DocHit(6, 0.5, 6), DocHit(4, 0.25, 4)]
    rrf_table = {**search_table(), "n": 3, "fusion": {"method": "rrf", "rrf_k": 60}}
    res = Ranker(None, chunks, docs, search=rrf_table).results("document", semantic=sem, lexical=lex)
    assert [(h["id"], h["score"]) for h in res["hits"]] == [(f"d{d}", s) for d, s in rrf([[2, 6, 4], [4, 2, 8]])]
    convex_table = {**rrf_table, "fusion": {"method": "convex", "norm": "minmax", "alpha": 0.25}}
    res = Ranker(None, chunks, docs, search=convex_table).results("document", semantic=sem, lexical=lex)
    assert [(h["id"], h["score"]) for h in res["hits"]] == [("d4", 0.75), ("d2", 0.625), ("d6", 0.125),
                                                             ("d8", 0.0)]
    # n = 1 keeps each side's best only
    res = Ranker(None, chunks, docs, search={**convex_table, "n": 1}).results("document", semantic=sem, lexical=lex)
    assert [h["id"] for h in res["hits"]] == ["d4", "d2"]


# --------------------------------------------------------------------------- field weights


def test_chunk_text_repeats_title_and_heading() -> None:
    doc = {"title": "Zebra handbook"}
    chunk = {"doc": 0, "text": "stripes"}
    assert chunk_lexical_text(chunk, doc) == "Zebra handbook\nstripes"  # weight 1 = the old text
    assert chunk_lexical_text(chunk, doc, title_weight=3, heading="Care", heading_weight=2) == (
        "Zebra handbook\nZebra handbook\nZebra handbook\nCare\nCare\nstripes")
    assert chunk_lexical_text(chunk, {"title": ""}, title_weight=3) == "stripes"
    with pytest.raises(WebsemError, match="field weights must be integers >= 0.*title_weight=-1"):
        chunk_lexical_text(chunk, doc, title_weight=-1)


def test_chunk_headings_from_anchors_or_the_chunker() -> None:
    chunks = [
        {"doc": 0, "anchor": "", "text": "Intro text"},
        {"doc": 0, "anchor": "#install", "text": "Installing\n\nRun pip install."},
        {"doc": 0, "anchor": "#install", "text": "More install steps."},
        {"doc": 1, "anchor": "#install", "text": "  Setup guide\nsteps"},
        {"doc": 1, "anchor": "#api", "text": "api text", "heading": "API reference"},
    ]
    assert chunk_headings(chunks) == ["", "Installing", "Installing", "Setup guide", "API reference"]


def test_title_weight_changes_bm25_as_intended() -> None:
    docs = [{"title": "Zebra handbook"}, {"title": "Horse care"}]
    chunks = [{"doc": 0, "text": "stripes and more stripes"}, {"doc": 1, "text": "zebra zebra crossing"}]
    a = Analyzer()
    by_weight = {}
    for w in (1, 3):
        ix = LexicalIndex.from_bytes(build_lexical_index(chunks, docs, title_weight=w, heading_weight=0,
                                                         progress=False))
        assert ix.fields == {"title": w, "heading": 0}
        # lengths count the repeated title: 2 title terms x w + 3 body terms ("and" is a stopword)
        assert list(ix.lengths) == [2 * w + 3, 2 * w + 3]
        tid = ix.term_ids["zebra"]
        ids, tfs = ix.postings_of(tid)
        assert list(ids) == [0, 1] and list(tfs) == [w, 2]  # tf in chunk 0 = the title's weight
        # the score is BM25 on the weighted counts (same expression and order as the runtime)
        avgdl = (2 * w + 3 + 2 * w + 3) / 2
        scores = ix.scores(a.terms("zebra"))
        for c, tf in ((0, w), (1, 2)):
            norm = 1.2 * (1 - 0.75 + 0.75 * ix.lengths[c] / avgdl)
            assert scores[c] == ix.idf[tid] * tf / (tf + norm)
        by_weight[w] = [c for c, _ in ix.search(a.terms("zebra"), 2)]
    # the body match wins at weight 1; three title copies outweigh it
    assert by_weight == {1: [1, 0], 3: [0, 1]}


def test_default_weights_and_manifest_entry(tmp_path: Path) -> None:
    docs = [{"title": "Zebra handbook"}]
    chunks = [{"doc": 0, "anchor": "#care", "text": "Care\nfeed it"}]
    entry = write_lexical_index(tmp_path, chunks, docs, progress=False)
    assert entry["fields"] == {"title": TITLE_WEIGHT, "heading": HEADING_WEIGHT}
    ix = LexicalIndex.from_bytes((tmp_path / "index" / "lexical.bin").read_bytes())
    want = Analyzer().terms(chunk_lexical_text(chunks[0], docs[0], title_weight=TITLE_WEIGHT, heading="Care",
                                               heading_weight=HEADING_WEIGHT))
    assert list(ix.lengths) == [len(want)]


# --------------------------------------------------------------------------- JS parity


def test_lexical_js_scores_equal_python_with_field_weights(tmp_path: Path, shared_data: Path) -> None:
    """web/src/lexical.js (the file the runtime ships) under Node: the same top-10 documents,
    chunks and bit-identical scores as Python on a Cranfield index built with title and heading
    weights, several chunks per document and real section headings."""
    node = shutil.which("node")
    assert node, "node is missing: run .ci/setup (the runtime's JS is tested under Node)"
    corpus = [json.loads(x) for x in (shared_data / "cranfield" / "corpus.jsonl").read_text().splitlines() if x]
    queries = [json.loads(x)["text"] for x in (shared_data / "cranfield" / "queries.jsonl").read_text().splitlines()
               if x][:60] + ["", "zzzz unknownterm", "wing wing wing slipstream"]
    docs = [{"title": d.get("title") or ""} for d in corpus]
    chunks = []
    for i, d in enumerate(corpus):
        sentences = [s.strip() for s in (d.get("text") or "").split(" . ") if s.strip()]
        chunks.append({"doc": i, "anchor": "", "text": " . ".join(sentences[:2])})
        if len(sentences) > 2:  # a second section whose first line is its heading
            chunks.append({"doc": i, "anchor": "#more", "text": sentences[2] + "\n" + " . ".join(sentences[3:])})
    blob = build_lexical_index(chunks, docs, title_weight=3, heading_weight=2, progress=False)
    ix = LexicalIndex.from_bytes(blob)
    assert ix.fields == {"title": 3, "heading": 2}
    analyzer = Analyzer.from_config(ix.analyzer)
    chunk_doc = [c["doc"] for c in chunks]
    terms = [analyzer.terms(q) for q in queries]
    want = [[[h.doc, h.score, h.chunk] for h in aggregate_docs(ix.scores(t), chunk_doc, k=10)] for t in terms]
    (tmp_path / "lexical.bin").write_bytes(blob)
    (tmp_path / "job.json").write_text(json.dumps({"terms": terms, "chunkDoc": chunk_doc}))
    script = tmp_path / "run.mjs"
    script.write_text(
        f"import {{ readFileSync }} from 'node:fs';\n"
        f"import {{ openLexical, lexicalDocs }} from {json.dumps((REPO / 'web/src/lexical.js').as_uri())};\n"
        f"const job = JSON.parse(readFileSync({json.dumps(str(tmp_path / 'job.json'))}, 'utf8'));\n"
        f"const ix = openLexical(new Uint8Array(readFileSync({json.dumps(str(tmp_path / 'lexical.bin'))})), "
        "job.chunkDoc.length);\n"
        "const out = job.terms.map((t) => { const r = lexicalDocs(ix, t, job.chunkDoc, null, 10);\n"
        "  return Array.from(r.docs, (d, i) => [d, r.scores[i], r.chunks[i]]); });\n"
        "process.stdout.write(JSON.stringify(out));\n")
    proc = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert sum(len(w) for w in want) > 500  # real rankings, not empty lists
    assert got == want  # JSON floats round-trip exactly: bit-identical scores
