"""`websem query` over partitioned bundles (web/partitioned.py through web/query.py ``Searcher``).

With every IVF list probed and every probed row a rerank candidate, a partitioned bundle must
answer exactly like its flat twin (ids, scores, snippets, highlights, facets) in every mode, with
and without filters (and so must code "rows" with every list probed); BM25 never depends
on the probing; at the bundle's own nprobe the dense side is approximate (recall against flat is
reported, with a loose floor: bench/ measures it). Shards are verified when read: a missing,
truncated or tampered one fails the query that needs it, naming the file, and the next query
works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websem.text.errors import WebsemError
from websem.web.query import load_bundle, search

WEBSEM = Path(sys.executable).parent / "websem"
MODES = ("hybrid", "semantic", "lexical")
ALL = 10**6  # rerank: every probed row is a candidate
FILTERS = (None, {"section": ["heat"]}, {"tags": ["theory", "supersonic"]},
           {"section": "aerodynamics", "tags": "wind-tunnel"}, {"tags": "no-such-tag"})


@pytest.fixture(scope="module")
def queries(shared_data: Path) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text("utf-8").splitlines()
    return [json.loads(x)["text"] for x in lines if x.strip()]


@pytest.fixture(scope="module")
def flat(cranfield_bundle: Path):
    return load_bundle(cranfield_bundle)


@pytest.fixture(scope="module")
def part(cranfield_partitioned: Path):
    return load_bundle(cranfield_partitioned)


@pytest.fixture(scope="module")
def faceted_flat(faceted_corpus: Path, model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flat twin of ``faceted_partitioned``: the same corpus built with ``index="flat"``."""
    from websem.build.bundle import build_bundle

    out = tmp_path_factory.mktemp("faceted-flat") / "bundle"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEBSEM_NO_SNAPSHOT", "1")
        build_bundle(faceted_corpus, out, model=model_package, index="flat", progress=False, precompress=False)
    return out


def _same(a: dict, b: dict) -> None:
    """Equal results, scores compared as exact floats (``==`` on dicts would too: this names the
    first difference)."""
    assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]]
    assert [h["score"] for h in a["hits"]] == [h["score"] for h in b["hits"]]
    assert a == b


def test_all_lists_probed_equals_flat_exactly(cranfield_partitioned: Path, flat, queries) -> None:
    """nprobe = nlist, every row reranked: 50 Cranfield queries, every mode, the flat bundle's
    results bit for bit."""
    every = load_bundle(cranfield_partitioned, nprobe=16, rerank=ALL)
    assert every.info()["nlist"] == 16 and every.layout == "partitioned" and flat.layout == "flat"
    assert every.info()["code"] == "binary"
    for q in queries[:50]:
        for mode in MODES:
            _same(every.query(q, 10, mode=mode), flat.query(q, 10, mode=mode))
    with pytest.raises(WebsemError, match="rerank=0; it must be an integer >= 1"):
        load_bundle(cranfield_partitioned, rerank=0)


def test_binary_codes_rerank_candidates_exactly(cranfield_partitioned: Path, part, flat, queries) -> None:
    """Every list probed, default rerank: the code scores are the query's dot product with the
    rows' signs; every returned dense hit carries its chunk's exact (flat) score; and recall@10
    of the flat top 10 stays high (the codes only choose which rows to rescore)."""
    import numpy as np
    from websem.web.partitioned import code_lut, code_scores, ordered_dots

    every = load_bundle(cranfield_partitioned, nprobe=16)
    ix = every.part
    assert ix.code == "binary" and ix.rerank == 200
    q = np.asarray(every.embed(queries[0]), dtype=np.float64)
    chunks, codes, _ = ix.codes_list(0)
    _, rows_t = ix.ivf_list(0)
    signs = np.where(rows_t > 0, 1.0, -1.0)
    assert np.allclose(code_scores(codes, code_lut(q, codes.shape[1])), signs.T @ q, atol=1e-12)
    got = []
    for text in queries[:40]:
        qv = np.asarray(every.embed(text), dtype=np.float32).astype(np.float64)
        hits = ix.dense_docs(qv, 100)
        assert len(hits) >= 10
        exact = ordered_dots(np.ascontiguousarray(flat._rows_t[:, [h.chunk for h in hits]]), qv)
        assert [h.score for h in hits] == exact.tolist()
        want_ids = {x["id"] for x in flat.query(text, 10, mode="semantic")["hits"]}
        have = {x["id"] for x in every.query(text, 10, mode="semantic")["hits"]}
        got.append(len(want_ids & have) / len(want_ids))
    assert sum(got) / len(got) >= 0.9, got


def test_code_rows_scores_every_probed_row(cranfield_bundle: Path, flat, queries, tmp_path: Path) -> None:
    """The int8/float16-rows-only code ("rows"): no codes shards; with every list probed it ranks
    exactly like the flat index."""
    from websem.build.partition import convert_bundle

    out = tmp_path / "rows"
    m = convert_bundle(cranfield_bundle, out, nlist=16, nprobe=4, code="rows", precompress=False)
    assert m["index"]["ivf"]["code"] == "rows" and "rerank" not in m["index"]["ivf"]
    assert "codes" not in m["index"]["shards"] and not (out / "index" / "code").exists()
    every = load_bundle(out, nprobe=16)
    assert every.info()["code"] == "rows"
    for q in queries[:10]:
        for mode in ("hybrid", "semantic"):
            _same(every.query(q, 10, mode=mode), flat.query(q, 10, mode=mode))


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_filters_and_facets_equal_the_flat_twin(faceted_partitioned: Path, faceted_flat: Path, faceted_corpus: Path,
                                                model_package: Path, tmp_path: Path, queries, dtype: str) -> None:
    """The faceted bundle (section and tags) with every list probed: filters and facet counts as
    its flat twin's, for int8 rows (built partitioned: the default) and float16 rows (the float16
    flat twin, converted)."""
    from websem.build.bundle import build_bundle
    from websem.build.partition import convert_bundle

    if dtype == "int8":
        p = faceted_partitioned
        f = tmp_path / "flat8"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WEBSEM_NO_SNAPSHOT", "1")
            build_bundle(faceted_corpus, f, model=model_package, index="flat", vector_dtype="int8",
                         progress=False, precompress=False)
    else:
        f = faceted_flat
        p = tmp_path / "part16"
        convert_bundle(f, p, nlist=8, nprobe=2, precompress=False)
    ps, fs = load_bundle(p, nprobe=8, rerank=ALL), load_bundle(f)
    assert ps.info()["vector_dtype"] == dtype
    facets_seen = 0
    for q in queries[:12]:
        for mode in MODES:
            for filters in FILTERS:
                a, b = ps.query(q, 10, mode=mode, filters=filters), fs.query(q, 10, mode=mode, filters=filters)
                _same(a, b)
                facets_seen += sum(c for counts in a["facets"].values() for _, c in counts)
    assert facets_seen > 0
    with pytest.raises(WebsemError, match="unknown filter field 'colour'"):
        ps.query("wing", filters={"colour": "red"})


def test_bm25_is_bit_identical_whatever_nprobe(part, flat, queries) -> None:
    """Lexical documents from the shards == the flat index's (scores compared with ==), for 200
    queries plus unknown and repeated terms; lexical mode output is the flat output."""
    extra = ["", "zzzz unknownterm", "wing wing wing slipstream", "0 0001 zzz superson"]
    for q in queries[:200] + extra:
        terms = flat.ranker.analyzer.terms(q)
        got = part.part.lexical_docs(terms)
        want = flat.ranker.lexical_docs(q)
        assert [tuple(h) for h in got] == [tuple(h) for h in want], q
    for q in queries[:20]:
        _same(part.query(q, 10, mode="lexical"), flat.query(q, 10, mode="lexical"))


def test_default_nprobe_recall_and_determinism(cranfield_partitioned: Path, part, flat, queries) -> None:
    """At the bundle's nprobe (4 of 16 lists) the dense side is approximate: recall@10 of the flat
    top 10 is reported and must clear a loose floor; the same query gives the same output every
    time, in the same Searcher and in a fresh one."""
    assert part.info()["nprobe"] == 4
    recall = {}
    for mode in ("semantic", "hybrid"):
        got = []
        for q in queries[:100]:
            want = {h["id"] for h in flat.query(q, 10, mode=mode)["hits"]}
            have = {h["id"] for h in part.query(q, 10, mode=mode)["hits"]}
            got.append(len(want & have) / len(want))
        recall[mode] = sum(got) / len(got)
    print(f"recall@10 vs flat at nprobe 4/16: {recall}")
    assert recall["semantic"] >= 0.8 and recall["hybrid"] >= 0.8, recall
    assert recall["semantic"] < 1.0, "4 of 16 lists should miss something: is the index really probed?"
    fresh = load_bundle(cranfield_partitioned)
    for q in queries[:10]:
        for mode in MODES:
            first = part.query(q, 10, mode=mode)
            assert part.query(q, 10, mode=mode) == first == fresh.query(q, 10, mode=mode)


def test_the_shard_cache_stays_within_its_budget(cranfield_partitioned: Path, part, queries) -> None:
    small = load_bundle(cranfield_partitioned, cache_bytes=200_000)
    for q in queries[:30]:
        for mode in MODES:
            assert small.query(q, 10, mode=mode) == part.query(q, 10, mode=mode)
    info = small.info()
    assert 0 < info["cache_bytes"] <= 200_000 and info["cache_misses"] > info["cache_files"]
    with pytest.raises(WebsemError, match="nprobe=17; it must be an integer from 1 to nlist .16."):
        load_bundle(cranfield_partitioned, nprobe=17)


def _copy(src: Path, dst: Path) -> Path:
    """``src`` hard-linked into ``dst`` (a file changed in the copy is replaced, never written
    through its link)."""
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def _first_working(searcher, candidates, **kw) -> dict:
    """The first query among ``candidates`` that succeeds (one that needs no broken shard)."""
    for q in candidates:
        try:
            return searcher.query(q, 10, **kw)
        except WebsemError:
            continue
    raise AssertionError("no query avoided the broken shard")


@pytest.mark.parametrize("broken", ["ivf list missing", "codes shard tampered with", "lexical shard truncated",
                                    "fragment tampered with"])
def test_a_broken_shard_fails_only_the_queries_that_need_it(cranfield_partitioned: Path, part, queries,
                                                            tmp_path: Path, broken: str) -> None:
    """The query needing the shard fails with a websem: error naming the file; the same Searcher
    then answers a query that does not need it (twice: the failure cached nothing)."""
    q = queries[0]
    if broken == "ivf list missing":
        mode, rel = "semantic", f"index/ivf/{part.part.probe(part.embed(q))[0]}.bin"
        message = f"bundle file {rel} is missing"
    elif broken == "codes shard tampered with":
        mode, rel = "semantic", f"index/code/{part.part.probe(part.embed(q))[0]}.bin"
        message = f"{rel} failed its integrity check"
    elif broken == "lexical shard truncated":
        term = part.ranker.analyzer.terms(q)[0]
        shard = max(j for j, first in enumerate(part.part._first_terms) if first <= term)
        mode, rel, message = "lexical", f"index/lex/{shard}.bin", f"index/lex/{shard}.bin failed its integrity check"
    else:
        doc = part.query(q, 10, mode="lexical")["hits"][0]["id"]
        frag = next(f for f in range(len(part.part._fragments))
                    if doc in {d["id"] for d in part.part.fragment(f)["docs"]})
        mode, rel = "lexical", f"index/frag/{frag}.json"
        message = f"{rel} failed its integrity check"
    b = _copy(cranfield_partitioned, tmp_path / "b")
    data = (b / rel).read_bytes()
    (b / rel).unlink()
    if broken == "lexical shard truncated":
        (b / rel).write_bytes(data[: len(data) // 2])
    elif broken in ("fragment tampered with", "codes shard tampered with"):
        (b / rel).write_bytes(data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])  # same size
    s = load_bundle(b)  # shards are verified when read, not at load
    with pytest.raises(WebsemError, match=message):
        s.query(q, 10, mode=mode)
    ok = _first_working(s, queries[1:], mode=mode)
    assert ok["hits"] and _first_working(s, queries[1:], mode=mode) == ok
    with pytest.raises(WebsemError, match=message):  # still refused, not cached half-read
        s.query(q, 10, mode=mode)


def test_a_shard_missing_from_the_file_table_is_never_read(cranfield_partitioned: Path, part, queries,
                                                           tmp_path: Path) -> None:
    q = queries[0]
    rel = f"index/ivf/{part.part.probe(part.embed(q))[0]}.bin"
    b = _copy(cranfield_partitioned, tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text("utf-8"))
    del m["files"][rel]
    (b / "manifest.json").unlink()
    (b / "manifest.json").write_text(json.dumps(m), "utf-8")
    with pytest.raises(WebsemError, match=f"lists no file '{rel}'"):
        load_bundle(b).query(q, 10, mode="semantic")


def test_cli_json_on_a_partitioned_bundle(cranfield_partitioned: Path, queries, tmp_path: Path) -> None:
    qfile = tmp_path / "queries.jsonl"
    qfile.write_text("\n".join(json.dumps({"_id": str(i), "text": t}) for i, t in enumerate(queries[:5])))
    for mode in MODES:
        proc = subprocess.run([str(WEBSEM), "query", str(cranfield_partitioned), "--queries", str(qfile),
                               "-k", "5", "--json", "--mode", mode], capture_output=True, text=True, check=True)
        lines = [json.loads(x) for x in proc.stdout.splitlines()]
        api = search(cranfield_partitioned, queries[:5], k=5, mode=mode)
        assert [x["query_id"] for x in lines] == [str(i) for i in range(5)]
        for line, hits in zip(lines, api, strict=True):
            assert line["mode"] == mode and len(hits) == 5
            assert line["hits"] == [{key: h[key] for key in ("id", "score", "url", "snippet", "highlights")}
                                    for h in hits]


# --------------------------------------------------------------------------- rows blocks by range


def _reads(searcher, q: str, mode: str = "semantic") -> list[tuple]:
    """Every read a cold query makes: ``(path, bytes, inclusive byte range or None)``."""
    from websem.web.partitioned import ShardCache

    searcher.part.cache = ShardCache()
    searcher.part.cache.log = []
    searcher.query(q, 10, mode=mode)
    return searcher.part.cache.log


def test_block_size_and_row_order_change_only_the_bytes_read(cranfield_bundle: Path, cranfield_partitioned: Path,
                                                            part, queries, tmp_path: Path) -> None:
    """The same lists with rows in chunk order and blocks of 3: the same results, bit for bit; the
    rerank reads rows blocks by byte range (one read per run of consecutive blocks, never the
    whole rows shard) and caches each block under ``index/ivf/{l}.bin#{k}``."""
    from websem.build.partition import convert_bundle

    out = tmp_path / "chunk3"
    convert_bundle(cranfield_bundle, out, nlist=16, nprobe=4, order="chunk", block_rows=3, precompress=False)
    other = load_bundle(out)
    assert other.info()["block_rows"] == 3 and part.info()["block_rows"] == 8
    for q in queries[:15]:
        for mode in ("hybrid", "semantic"):
            _same(other.query(q, 10, mode=mode), part.query(q, 10, mode=mode))
    reads = _reads(part, queries[0])
    ranged = [r for r in reads if r[0].startswith("index/ivf/")]
    assert ranged and all(r[2] is not None and r[1] == r[2][1] - r[2][0] + 1 for r in ranged)
    assert all(r[2] is None for r in reads if not r[0].startswith("index/ivf/"))
    ix = part.part
    blocks = [k for k in ix.cache._items if "#" in k]
    assert len(blocks) >= len(ranged) and all(k.startswith("index/ivf/") for k in blocks)
    assert sum(r[1] for r in ranged) < sum((cranfield_partitioned / r).stat().st_size for r in {r[0] for r in ranged})
    for rel, _, (a, b) in ranged:  # one read per run: no two reads of a file touch
        others = [r[2] for r in ranged if r[0] == rel and r[2] != (a, b)]
        assert all(y + 1 < a or b + 1 < x for x, y in others)


def _tamper_target(part, q: str) -> tuple[str, int, int, int]:
    """``(rows shard, block, first byte, last byte)`` of the first block query ``q`` reads."""
    rel, _, (a, _) = next(r for r in _reads(part, q) if r[0].startswith("index/ivf/"))
    lst = int(rel.split("/")[-1].split(".")[0])
    k = next(k for k in range(10**6) if part.part.block_range(lst, k)[0] == a)
    return rel, k, *part.part.block_range(lst, k)


@pytest.mark.parametrize("broken", ["block tampered with", "rows shard truncated"])
def test_a_broken_rows_block_fails_the_query_naming_file_and_block(cranfield_partitioned: Path, part, queries,
                                                                   tmp_path: Path, broken: str) -> None:
    """A tampered block (same size) fails with the block and the codes shard named; a rows shard
    cut inside a block the query reads fails naming the byte range. The engine stays usable, and
    the bad block is never cached."""
    q = queries[0]
    rel, k, a, b = _tamper_target(part, q)
    code_rel = rel.replace("ivf", "code")
    copy = _copy(cranfield_partitioned, tmp_path / "b")
    data = (copy / rel).read_bytes()
    (copy / rel).unlink()
    if broken == "block tampered with":
        (copy / rel).write_bytes(data[:a + 7] + bytes([data[a + 7] ^ 1]) + data[a + 8:])
        message = rf"{rel} block {k} \(bytes {a}-{b}\) does not match the sha256 in {code_rel}; .*websem build"
    else:
        (copy / rel).write_bytes(data[:a + 10])
        message = rf"{rel} bytes {a}-\d+ \(blocks {k}-\d+\) came back as \d+ bytes; the file is truncated"
    s = load_bundle(copy)
    with pytest.raises(WebsemError, match=message):
        s.query(q, 10, mode="semantic")
    assert not [key for key in s.part.cache._items if key.startswith(f"{rel}#")]
    ok = _first_working(s, queries[1:], mode="semantic")
    assert ok["hits"] and _first_working(s, queries[1:], mode="semantic") == ok
    assert s.query(q, 10, mode="lexical")["hits"]  # lexical reads no rows
    with pytest.raises(WebsemError, match=message):
        s.query(q, 10, mode="hybrid")


def test_a_version_1_table_is_refused_with_the_rebuild_remedy(cranfield_partitioned: Path, tmp_path: Path) -> None:
    """A partitioned bundle of the previous format (table.json format_version 1: whole rows shards,
    no block sha256s) is refused at load, saying to rebuild it."""
    import hashlib

    copy = _copy(cranfield_partitioned, tmp_path / "b")
    rel = "index/part/table.json"
    table = json.loads((copy / rel).read_text("utf-8"))
    table["format_version"] = 1
    raw = json.dumps(table).encode()
    (copy / rel).unlink()
    (copy / rel).write_bytes(raw)
    m = json.loads((copy / "manifest.json").read_text("utf-8"))
    m["files"][rel] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    del m["index"]["ivf"]["block_rows"]
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").write_text(json.dumps(m), "utf-8")
    with pytest.raises(WebsemError, match=r"block_rows None is not an integer >= 1 .*rebuild the bundle with `websem "):
        load_bundle(copy)
    m["index"]["ivf"]["block_rows"] = 8
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").write_text(json.dumps(m), "utf-8")
    with pytest.raises(WebsemError, match=r"table.json is not a websem-partitioned version 2 table .*version 1 came "
                                          r"from an older websem.*rebuild the bundle with `websem build`"):
        load_bundle(copy)
