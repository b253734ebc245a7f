"""`websem query` / `websem.web.query.search`: the CPU reference over a real Cranfield bundle.

Retrieval quality against the Cranfield judgments, the search semantics of docs/architecture.md
(recomputed independently from the raw index files), the CLI, and the bundle verification."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from websem.text.errors import WebsemError
from websem.web.query import load_bundle, search, verify_bundle

WEBSEM = Path(sys.executable).parent / "websem"


def qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        out.setdefault(q, {})[d] = int(s)
    return out


def ndcg10(ranked: list[str], rel: dict[str, int]) -> float:
    """nDCG@10 with linear gains (the pytrec_eval / BEIR convention)."""
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[dict]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


@pytest.fixture(scope="module")
def searcher(cranfield_bundle: Path):
    return load_bundle(cranfield_bundle)


def test_cranfield_ndcg_per_mode(searcher, cranfield_queries, shared_data: Path) -> None:
    """nDCG@10 on Cranfield's 225 judged queries for each search mode, through the public API.

    Measured 2026-11-28 with the weight-int8 MiniLM package, float16 index, chunked documents:
    semantic 0.370 (0.371 int8 / 0.370 float32 index, bench/results/index.md), lexical (BM25)
    0.367, hybrid (RRF, N=100, k=60) 0.406. docs/hybrid.md measured whole-document embeddings:
    dense 0.381, BM25 0.369, hybrid 0.415. The bands catch broken retrieval (tokenizer, pooling,
    chunking, scoring, id mapping, fusion); hybrid must beat both sides by a clear margin."""
    judged = qrels(shared_data / "cranfield" / "qrels" / "test.tsv")
    qs = [q for q in cranfield_queries if q["_id"] in judged]
    assert len(qs) == 225
    mean = {}
    for mode in ("semantic", "lexical", "hybrid"):
        scores = [ndcg10([h["id"] for h in searcher.search([q["text"]], 10, mode=mode)[0]],
                         judged[q["_id"]]) for q in qs]
        mean[mode] = sum(scores) / len(scores)
    assert 0.34 <= mean["semantic"] <= 0.42, mean
    assert 0.34 <= mean["lexical"] <= 0.40, mean
    assert 0.39 <= mean["hybrid"] <= 0.45, mean
    assert mean["hybrid"] >= max(mean["semantic"], mean["lexical"]) + 0.02, mean
    # the default mode is hybrid
    assert searcher.search([qs[0]["text"]], 10) == searcher.search([qs[0]["text"]], 10,
                                                                  mode="hybrid")
    # negative control: the same metric on a ranking from an unrelated query vector is near zero
    rng = np.random.default_rng(0)
    noise = rng.normal(size=384).astype(np.float32)
    noise_ids = [h["id"] for h in searcher.search_vector(noise / np.linalg.norm(noise), 10)]
    control = [ndcg10(noise_ids, judged[q["_id"]]) for q in cranfield_queries[:100]]
    assert sum(control) / len(control) < 0.05


def test_ranking_follows_the_contract(searcher, cranfield_bundle: Path, cranfield_queries) -> None:
    """Recompute scores from the raw files: float32 dequantization, float64 accumulation in index
    order, doc = max over chunks (first chunk wins), ties by doc index."""
    m = json.loads((cranfield_bundle / "manifest.json").read_text())
    n, d = m["index"]["chunks"], m["index"]["dims"]
    if m["index"]["vector_dtype"] == "int8":
        q8 = np.fromfile(cranfield_bundle / "index/vectors.bin", dtype="<i1").reshape(n, d)
        scale = np.fromfile(cranfield_bundle / "index/scales.bin", dtype="<f4")
        rows = (q8.astype(np.float32) * scale[:, None]).tolist()  # float32 products
    else:
        assert m["index"]["vector_dtype"] == "float16"
        rows = np.fromfile(cranfield_bundle / "index/vectors.bin", dtype="<f2").reshape(n, d)
        rows = rows.astype(np.float32).tolist()  # exact widening
    chunks = json.loads((cranfield_bundle / "index/chunks.json").read_text())
    docs = json.loads((cranfield_bundle / "index/docs.json").read_text())
    for q in cranfield_queries[:8]:
        qv = searcher.embed(q["text"])
        assert qv.dtype == np.float32 and abs(float(np.linalg.norm(qv)) - 1) < 1e-4
        qd = [float(x) for x in qv]
        best: dict[int, tuple[float, int]] = {}
        for c, row in enumerate(rows):
            s = 0.0
            for a, b in zip(qd, row, strict=True):
                s += a * b
            doc = chunks[c]["doc"]
            if doc not in best or s > best[doc][0]:
                best[doc] = (s, c)
        order = sorted(best, key=lambda x: (-best[x][0], x))[:10]
        hits = searcher.search([q["text"]], 10, mode="semantic")[0]
        assert [h["id"] for h in hits] == [docs[x]["id"] for x in order]
        for h, x in zip(hits, order, strict=True):
            assert h["score"] == best[x][0]  # float64 sums in index order: the same bits
            c = chunks[best[x][1]]
            assert h["url"] == docs[x]["url"] + c["anchor"] and h["title"] == docs[x]["title"]
            assert h["snippet"] and h["snippet"] in c["text"]
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_search_api_is_deterministic(cranfield_bundle: Path, cranfield_queries) -> None:
    texts = [q["text"] for q in cranfield_queries[:5]]
    a = search(cranfield_bundle, texts, k=10)
    b = search(cranfield_bundle, texts, k=10)
    assert a == b and [len(h) for h in a] == [10] * 5
    assert set(a[0][0]) == {"id", "score", "title", "url", "snippet", "highlights"}
    with pytest.raises(WebsemError, match="k=0"):
        search(cranfield_bundle, texts, k=0)


def test_cli_json_matches_api(cranfield_bundle: Path, cranfield_queries, tmp_path: Path) -> None:
    qs = cranfield_queries[:6]
    qfile = tmp_path / "queries.jsonl"
    qfile.write_text("\n".join(json.dumps({"_id": q["_id"], "text": q["text"]}) for q in qs))
    proc = subprocess.run([str(WEBSEM), "query", str(cranfield_bundle), "--queries", str(qfile),
                           "-k", "5", "--json"], capture_output=True, text=True, check=True)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    api = search(cranfield_bundle, [q["text"] for q in qs], k=5)
    assert [x["query_id"] for x in lines] == [q["_id"] for q in qs]
    for line, hits in zip(lines, api, strict=True):
        assert line["mode"] == "hybrid"
        assert line["hits"] == [{key: h[key] for key in ("id", "score", "url", "snippet", "highlights")}
                                for h in hits]
    lex = subprocess.run([str(WEBSEM), "query", str(cranfield_bundle), "--queries", str(qfile),
                          "-k", "5", "--json", "--mode", "lexical"],
                         capture_output=True, text=True, check=True)
    api = search(cranfield_bundle, [q["text"] for q in qs], k=5, mode="lexical")
    for line, hits in zip(map(json.loads, lex.stdout.splitlines()), api, strict=True):
        assert line["hits"] == [{key: h[key] for key in ("id", "score", "url", "snippet", "highlights")}
                                for h in hits]
    for args, message in ((["--mode", "fuzzy"], "'fuzzy' is not one of 'hybrid', 'semantic'"),
                          (["--filter", "section"], "is not FIELD=VALUE"),
                          (["--filter", "section=x"], "unknown filter field 'section'")):
        bad = subprocess.run([str(WEBSEM), "query", str(cranfield_bundle), "wing", *args],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    table = subprocess.run([str(WEBSEM), "query", str(cranfield_bundle), "flutter of wings",
                            "-k", "3"], capture_output=True, text=True, check=True)
    top = search(cranfield_bundle, ["flutter of wings"], k=1)[0][0]
    assert top["id"] in table.stdout and f"{top['score']:.4f}" in table.stdout
    bad = subprocess.run([str(WEBSEM), "query", str(cranfield_bundle), "x", "--queries",
                          str(qfile)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("websem: pass either a QUERY")


BAD_BUNDLES = json.loads((Path(__file__).parent / "fixtures" / "bad_bundles.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def small_bundle(model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good format-2 bundle of the two-page MkDocs fixture site (no Pyodide snapshot: the
    verification does not need one)."""
    from websem.build.bundle import build_bundle

    out = tmp_path_factory.mktemp("small") / "bundle"
    mp = pytest.MonkeyPatch()
    mp.setenv("WEBSEM_NO_SNAPSHOT", "1")
    try:
        build_bundle(Path(__file__).parent / "fixtures" / "sites" / "mkdocs", out, model=model_package,
                     progress=False)
    finally:
        mp.undo()
    return out


@pytest.fixture(scope="module")
def small_partitioned(small_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small_bundle`` converted to the partitioned layout (the good bundle of the fixture cases
    with ``"layout": "partitioned"``)."""
    from websem.build.partition import convert_bundle

    out = tmp_path_factory.mktemp("small-partitioned") / "bundle"
    convert_bundle(small_bundle, out, precompress=False, progress=False)
    return out


def bad_bundle(good: Path, case: dict, dst: Path) -> Path:
    """``good`` changed as one case of tests/fixtures/bad_bundles.json says (files hard-linked;
    a changed file is replaced, never written through its link)."""
    import os

    shutil.copytree(good, dst, copy_function=os.link)
    mpath = dst / "manifest.json"
    if "manifest_text" in case:
        mpath.unlink()
        mpath.write_text(case["manifest_text"], "utf-8")
    if "manifest" in case:
        m = json.loads(mpath.read_text("utf-8"))
        for edit in case["manifest"]:
            *parents, last = edit["set"] if "set" in edit else edit["delete"]
            node = m
            for key in parents:
                node = node[key]
            if "set" in edit:
                node[last] = edit["value"]
            else:
                del node[last]
        mpath.unlink()
        mpath.write_text(json.dumps(m), "utf-8")
    if "file" in case:
        f = dst / case["file"]["path"]
        data = f.read_bytes()
        f.unlink()
        op = case["file"]["op"]
        if op == "flip":
            f.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        elif op == "append":
            f.write_bytes(data + b"\n")
        else:
            assert op == "remove", op
    return dst


def test_the_good_partitioned_bundle_verifies_its_shards_lazily(small_partitioned: Path, tmp_path: Path) -> None:
    """The partitioned good bundle loads; its shards are verified when first read, not at load:
    a bundle missing a shard still loads, and the query needing it names the file."""
    m = verify_bundle(small_partitioned)
    assert m["index"]["layout"] == "partitioned" and m["format_version"] == 2
    b = bad_bundle(small_partitioned, {"file": {"path": "index/lex/0.bin", "op": "remove"}}, tmp_path / "b")
    searcher = load_bundle(b)
    with pytest.raises(WebsemError, match="bundle file index/lex/0.bin is missing"):
        searcher.query("search", mode="lexical")


@pytest.mark.parametrize(("path", "value", "message"), [
    (["layout"], 3, "websem: index.layout 3 is unknown; allowed: flat, partitioned"),
    (["ivf"], None, "manifest.index.ivf.nlist is missing (a positive integer)"),
    (["ivf", "nlist"], 0, "manifest.index.ivf.nlist is 0 but must be an integer >= 1"),
    (["ivf", "nlist"], 2.5, "manifest.index.ivf.nlist is 2.5 but must be an integer >= 1"),
    (["ivf", "nprobe"], None, "manifest.index.ivf.nprobe is missing (an integer from 1 to nlist)"),
    (["ivf", "nprobe"], True, "manifest.index.ivf.nprobe is true but must be an integer from 1 to nlist"),
    (["ivf", "nprobe"], 0, "manifest.index.ivf.nprobe is 0 but must be an integer from 1 to nlist"),
    (["shards"], [], "manifest.index.shards.ivf is missing"),
    (["files"], None, "manifest.index.files.table is missing (a partitioned index loads it at start)"),
])
def test_partitioned_manifest_values(small_partitioned: Path, path: list, value: object, message: str) -> None:
    """The partitioned entries' checks beyond the golden cases (values JS checks alike)."""
    from websem.web.query import check_manifest

    m = json.loads((small_partitioned / "manifest.json").read_text("utf-8"))
    check_manifest(m, "manifest.json")
    node = m["index"]
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(WebsemError) as e:
        check_manifest(m, "manifest.json")
    assert message in str(e.value) and str(e.value).endswith("rebuild the bundle with `websem build`")


def test_the_good_bundle_is_format_2_and_verifies(small_bundle: Path) -> None:
    from websem.build.bundle import FORMAT_VERSION, VENDOR
    from websem.text.rules import search_table

    m = verify_bundle(small_bundle)
    assert m["format_version"] == FORMAT_VERSION == 2
    assert m["search"] == search_table(facets=m["search"]["facets"])
    assert m["runtime"]["vendor"] == VENDOR
    assert all(rel in m["files"] for roles in VENDOR.values() for rel in roles.values())


@pytest.mark.parametrize("case", BAD_BUNDLES["cases"], ids=[c["name"] for c in BAD_BUNDLES["cases"]])
def test_bad_bundles_are_refused(small_bundle: Path, small_partitioned: Path, tmp_path: Path, case: dict) -> None:
    """Every golden case of tests/fixtures/bad_bundles.json (the JS runtime passes the same file)."""
    good = small_partitioned if case.get("layout", "flat") == "partitioned" else small_bundle
    b = bad_bundle(good, case, tmp_path / "b")
    with pytest.raises(WebsemError) as e:
        load_bundle(b)
    message = str(e.value)
    assert message.startswith("websem:"), message
    for part in case["errors"]:
        assert part in message, (case["name"], message)
    verify_bundle(good)  # the good bundle was not changed through a hard link


def test_cli_refuses_a_bad_bundle_without_traceback(small_bundle: Path, tmp_path: Path) -> None:
    case = next(c for c in BAD_BUNDLES["cases"] if c["name"] == "format_version 1")
    b = bad_bundle(small_bundle, case, tmp_path / "old")
    proc = subprocess.run([str(WEBSEM), "query", str(b), "wing"], capture_output=True, text=True)
    assert proc.returncode == 2 and "format_version 1 is not supported" in proc.stderr
    assert "Traceback" not in proc.stderr
    (b / "manifest.json").unlink()
    proc = subprocess.run([str(WEBSEM), "query", str(b), "wing"], capture_output=True, text=True)
    assert proc.returncode == 2 and "no manifest.json" in proc.stderr
    assert "Traceback" not in proc.stderr
