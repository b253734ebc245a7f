"""The partitioned index as `websem build` writes it (build/partition.py, ivf.py, shards.py):
every file listed and checksummed, every document / chunk / term in exactly one place, rows and
BM25 scores identical to the flat index they come from. How a build chooses and guards the layout
(facets, byte-identical rebuilds, --index / --nlist / --nprobe, atomic failure):
test_partition_build_options.py. Readers (websem query, the JS runtime) are tested against the
same fixtures in their own test files."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from websem.build.index import dequantize, quantize
from websem.build.partition import (
    FRAGMENT_BYTES,
    LEX_SHARD_BYTES,
    convert_bundle,
    default_ivf,
    partition_index,
)
from websem.text.analyze import Analyzer
from websem.text.bm25 import LexicalIndex
from websem.text.errors import WebsemError


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text("utf-8"))


def flat_parts(bundle: Path) -> tuple[np.ndarray, np.ndarray | None, list, list, LexicalIndex]:
    m = manifest(bundle)["index"]
    files, n, d = m["files"], m["chunks"], m["dims"]
    np_dtype = {"float16": "<f2", "int8": "<i1"}[m["vector_dtype"]]
    vectors = np.frombuffer((bundle / files["vectors"]).read_bytes(), dtype=np_dtype).reshape(n, d)
    scales = np.frombuffer((bundle / files["scales"]).read_bytes(), dtype="<f4") if "scales" in files else None
    chunks = json.loads((bundle / files["chunks"]).read_text("utf-8"))
    docs = json.loads((bundle / files["docs"]).read_text("utf-8"))
    return vectors, scales, chunks, docs, LexicalIndex.from_bytes((bundle / files["lexical"]).read_bytes())


# --------------------------------------------------------------------------- a reader of the formats
# Written from the format description (docs/architecture.md), independent of the writer's code.


def read_ivf(path: Path) -> tuple[int, int, np.ndarray, np.ndarray | None, np.ndarray, list[bytes]]:
    """``(list, dims, ids, scales, rows, the bytes of each block)`` of a v2 rows shard."""
    data = path.read_bytes()
    assert data[:8] == b"WSIVF\x00\x00\x02"
    count, dims, lst, dtype, block_rows = struct.unpack_from("<5I", data, 8)
    pos = 28 + 4 * count
    ids = np.frombuffer(data, dtype="<u4", count=count, offset=28)
    rec = 4 + dims if dtype == 1 else 2 * dims
    assert pos + count * rec == len(data)
    scales, rows = None, []
    if dtype == 1:
        scales = np.array([struct.unpack_from("<f", data, pos + i * rec)[0] for i in range(count)], dtype="<f4")
    for i in range(count):
        body = data[pos + i * rec + (4 if dtype == 1 else 0): pos + (i + 1) * rec]
        rows.append(np.frombuffer(body, dtype={0: "<f2", 1: "<i1"}[dtype]))
    rows = np.array(rows).reshape(count, dims)
    blocks = [data[pos + s * rec: pos + min(s + block_rows, count) * rec] for s in range(0, count, block_rows)]
    return lst, dims, ids, scales, rows, blocks


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    v, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def read_lex_shard(path: Path) -> tuple[dict, dict[str, tuple[float, list[tuple[int, int, int]]]]]:
    """(header, {term: (idf, [(chunk, tf, dl), ...])})."""
    data = path.read_bytes()
    assert data[:8] == b"WSLEX\x00\x00\x01"
    (hlen,) = struct.unpack_from("<I", data, 8)
    assert (12 + hlen) % 4 == 0
    header = json.loads(data[12:12 + hlen])
    body = data[12 + hlen:]

    def section(name: str) -> bytes:
        off, size = header["sections"][name]
        assert off % 4 == 0
        return body[off:off + size]

    raw = section("terms").decode("utf-8")
    terms = raw.split("\n") if raw else []
    idf = np.frombuffer(section("idf"), dtype="<f4")
    offsets = np.frombuffer(section("offsets"), dtype="<u4")
    postings = section("postings")
    out = {}
    for i, t in enumerate(terms):
        pos, end, c, rows = int(offsets[i]), int(offsets[i + 1]), -1, []
        while pos < end:
            v, pos = read_varint(postings, pos)
            c += (v >> 1) + 1
            if v & 1:
                tf = 1
            else:
                t2, pos = read_varint(postings, pos)
                tf = t2 + 2
            dl, pos = read_varint(postings, pos)
            rows.append((c, tf, dl))
        out[t] = (float(idf[i]), rows)
    return header, out


def shard_terms(bundle: Path) -> tuple[dict, dict[str, tuple[float, list]]]:
    m = manifest(bundle)["index"]
    table = json.loads((bundle / m["files"]["table"]).read_text("utf-8"))
    terms: dict[str, tuple[float, list]] = {}
    for j, (first, count) in enumerate(table["lexical"]["shards"]):
        header, got = read_lex_shard(bundle / m["shards"]["lexical"].format(j))
        assert header["shard"] == j and header["n_terms"] == count == len(got)
        assert next(iter(got)) == first
        assert not set(got) & set(terms)
        terms.update(got)
    return table, terms


def shard_scores(table: dict, terms: dict, query_terms: list[str]) -> dict[int, float]:
    """BM25 from the shards, as the contract's query algorithm states it."""
    lex = table["lexical"]
    k1, b, avgdl = lex["k1"], lex["b"], lex["avgdl"]
    plan: dict[str, int] = {}
    for t in query_terms:
        if t in terms:
            plan[t] = plan.get(t, 0) + 1
    acc: dict[int, float] = {}
    for t, qtf in plan.items():
        idf, rows = terms[t]
        for c, tf, dl in rows:
            norm = k1 * (1 - b + b * dl / avgdl) if avgdl > 0 else k1
            acc[c] = acc.get(c, 0.0) + qtf * (idf * tf / (tf + norm))
    return acc


# --------------------------------------------------------------------------- files


def test_every_file_is_listed_and_the_flat_index_is_gone(cranfield_partitioned: Path) -> None:
    m = manifest(cranfield_partitioned)
    idx = m["index"]
    assert idx["layout"] == "partitioned" and idx["ivf"]["nlist"] == 16 and idx["ivf"]["nprobe"] == 4
    from websem.build.ivf import TRAIN_PER_LIST

    # k-means trains on at most TRAIN_PER_LIST evenly strided rows a list (every row if fewer).
    assert idx["ivf"]["metric"] == "ip"
    assert idx["ivf"]["kmeans"]["train_points"] == min(idx["chunks"], 16 * TRAIN_PER_LIST)
    on_disk = {p.relative_to(cranfield_partitioned).as_posix() for p in cranfield_partitioned.rglob("*")
               if p.is_file() and p.suffix not in (".br", ".gz")} - {"manifest.json"}
    assert on_disk == set(m["files"])
    for rel, entry in m["files"].items():
        data = (cranfield_partitioned / rel).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}, rel
    expected = set(idx["files"].values())
    expected |= {idx["shards"]["ivf"].format(i) for i in range(idx["ivf"]["nlist"])}
    assert idx["ivf"]["code"] == "binary" and idx["ivf"]["rerank"] == 200
    expected |= {idx["shards"]["codes"].format(i) for i in range(idx["ivf"]["nlist"])}
    expected |= {idx["shards"]["lexical"].format(j) for j in range(idx["lexical"]["shards"])}
    expected |= {idx["shards"]["fragments"].format(f) for f in range(idx["fragments"])}
    assert {r for r in m["files"] if r.startswith("index/")} == expected
    # the shards get precompressed copies like any file, but the rows shards, read by byte range
    assert any(r.startswith("index/frag/") for r in m["encodings"])
    assert not any(r.startswith("index/ivf/") for r in m["encodings"])
    assert sorted({p.suffix for p in (cranfield_partitioned / "index/ivf").iterdir()}) == [".bin"]
    table = json.loads((cranfield_partitioned / idx["files"]["table"]).read_text("utf-8"))
    assert table["format_version"] == 2 and idx["ivf"]["block_rows"] == 8 and idx["ivf"]["order"] == "pca"
    for rel, encs in m["encodings"].items():
        for enc, entry in encs.items():
            copy = (cranfield_partitioned / f"{rel}.{enc}").read_bytes()
            assert hashlib.sha256(copy).hexdigest() == entry["sha256"]


def test_convert_is_byte_identical_and_keeps_the_rest(cranfield_bundle: Path, cranfield_partitioned: Path,
                                                      tmp_path: Path) -> None:
    again = convert_bundle(cranfield_bundle, tmp_path / "again", nlist=16, nprobe=4)
    assert tree_digest(tmp_path / "again") == tree_digest(cranfield_partitioned)
    flat, part = manifest(cranfield_bundle), again
    assert {k: v for k, v in flat.items() if k not in ("index", "files", "encodings")} == \
        {k: v for k, v in part.items() if k not in ("index", "files", "encodings")}
    for rel, entry in flat["files"].items():
        if not rel.startswith("index/"):
            assert part["files"][rel] == entry
    for key in ("docs", "chunks", "dims", "vector_dtype", "model_sha256", "chunking"):
        assert part["index"][key] == flat["index"][key]
    assert flat["index"]["layout"] == "flat"
    lex = {k: v for k, v in part["index"]["lexical"].items() if k != "shards"}
    assert lex == flat["index"]["lexical"]


def test_docmap_and_fragments_hold_every_document_and_chunk_once(cranfield_bundle: Path,
                                                                cranfield_partitioned: Path) -> None:
    _, _, chunks, docs, _ = flat_parts(cranfield_bundle)
    m = manifest(cranfield_partitioned)["index"]
    table = json.loads((cranfield_partitioned / m["files"]["table"]).read_text("utf-8"))
    docmap = np.frombuffer((cranfield_partitioned / m["files"]["docmap"]).read_bytes(), dtype="<u4")
    assert len(docmap) == len(docs) + 1 and docmap[0] == 0 and docmap[-1] == len(chunks)
    assert np.all(np.diff(docmap.astype(np.int64)) >= 0)
    for c, chunk in enumerate(chunks):
        d = chunk["doc"]
        assert docmap[d] <= c < docmap[d + 1]
    starts = table["fragments"]
    assert starts[0] == 0 and starts == sorted(set(starts)) and len(starts) == m["fragments"]
    seen_docs = []
    for f, first in enumerate(starts):
        raw = (cranfield_partitioned / m["shards"]["fragments"].format(f)).read_bytes()
        frag = json.loads(raw)
        end = starts[f + 1] if f + 1 < len(starts) else len(docs)
        assert frag["first"] == first and len(frag["docs"]) == end - first
        assert len(raw) <= FRAGMENT_BYTES or len(frag["docs"]) == 1
        for i, entry in enumerate(frag["docs"]):
            d = first + i
            seen_docs.append(d)
            assert {k: v for k, v in entry.items() if k != "chunks"} == docs[d]
            want = [{k: c[k] for k in ("anchor", "start", "end", "text")}
                    for c in chunks[docmap[d]:docmap[d + 1]]]
            assert entry["chunks"] == want
    assert seen_docs == list(range(len(docs)))


def _check_codes(path: Path, lst: int, dims: int, ids: np.ndarray, stored: np.ndarray, blocks: list[bytes]) -> None:
    """A codes shard (architecture.md): header, the list's chunk ids in the rows shard's order, bit
    j of each row set exactly when the stored component j is > 0 (bytes built here bit by bit),
    then the sha256 of each rows block."""
    data = path.read_bytes()
    assert data[:8] == b"WSCOD\x00\x00\x02"
    count, got_dims, got_list, block_rows = struct.unpack_from("<4I", data, 8)
    assert (count, got_dims, got_list, block_rows) == (len(ids), dims, lst, 8)
    assert np.frombuffer(data, dtype="<u4", count=count, offset=24).tobytes() == ids.astype("<u4").tobytes()
    width = (dims + 7) // 8
    want = np.zeros((count, width), dtype=np.uint8)
    for j in range(dims):
        want[:, j // 8] |= ((stored[:, j] > 0).astype(np.uint8) << (j % 8)).astype(np.uint8)
    off = 24 + 4 * count
    assert data[off: off + count * width] == want.tobytes()
    assert len(blocks) == -(-count // 8)
    assert data[off + count * width:] == b"".join(hashlib.sha256(b).digest() for b in blocks)


def _check_lists(part: Path, flat_vectors: np.ndarray, flat_scales: np.ndarray | None) -> list[int]:
    table = json.loads((part / "index/part/table.json").read_text("utf-8"))
    nlist, dims = table["ivf"]["nlist"], table["dims"]
    centroids = np.frombuffer((part / "index/part/centroids.bin").read_bytes(), dtype="<f2").reshape(nlist, dims)
    norms = np.linalg.norm(centroids.astype(np.float64), axis=1)
    assert np.all(np.abs(norms - 1) < 1e-2)
    owner = np.full(len(flat_vectors), -1)
    for lst in range(nlist):
        got_list, got_dims, ids, scales, rows, blocks = read_ivf(part / f"index/ivf/{lst}.bin")
        assert got_list == lst and got_dims == dims and len(ids) == table["ivf"]["sizes"][lst]
        assert len(np.unique(ids)) == len(ids)  # any order (grouped by similarity), each chunk once
        assert np.all(owner[ids] == -1)
        owner[ids] = lst
        assert rows.tobytes() == flat_vectors[ids].tobytes()
        _check_codes(part / f"index/code/{lst}.bin", lst, dims, ids, flat_vectors[ids], blocks)
        if flat_scales is None:
            assert scales is None
        else:
            assert scales is not None and scales.tobytes() == flat_scales[ids].tobytes()
    assert np.all(owner >= 0)  # every chunk in exactly one list
    # each chunk sits in (one of) its nearest lists
    rows = dequantize(flat_vectors, flat_scales)
    scores = rows @ centroids.astype(np.float64).T
    best = scores.max(axis=1)
    assert np.all(scores[np.arange(len(rows)), owner] >= best - 1e-5)
    return table["ivf"]["sizes"]


def test_ivf_lists_partition_the_chunks_with_the_flat_rows(cranfield_bundle: Path,
                                                           cranfield_partitioned: Path) -> None:
    vectors, scales, *_ = flat_parts(cranfield_bundle)
    sizes = _check_lists(cranfield_partitioned, vectors, scales)
    assert len(sizes) == 16 and sum(sizes) == len(vectors) and max(sizes) < len(vectors) // 2


def _flat_copy(bundle: Path, root: Path) -> tuple[dict, dict]:
    m = manifest(bundle)
    for rel in m["index"]["files"].values():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle / rel, root / rel)
    return m["index"], m["search"]


def test_int8_lists_carry_the_flat_rows_and_scales(cranfield_bundle: Path, tmp_path: Path) -> None:
    section, search = _flat_copy(cranfield_bundle, tmp_path)
    vectors, *_ = flat_parts(cranfield_bundle)
    q, scales = quantize(vectors.astype(np.float32), "int8")
    (tmp_path / "index/vectors.bin").write_bytes(q.tobytes())
    (tmp_path / "index/scales.bin").write_bytes(scales.tobytes())
    section = {**section, "vector_dtype": "int8",
               "files": {**section["files"], "scales": "index/scales.bin"}}
    got = partition_index(tmp_path, section, search, nlist=5, nprobe=2, progress=False)
    assert got["vector_dtype"] == "int8" and got["ivf"]["nlist"] == 5
    assert not (tmp_path / "index/vectors.bin").exists() and not (tmp_path / "index/scales.bin").exists()
    assert sum(_check_lists(tmp_path, q, scales)) == len(q)


def _block_cosines(part: Path) -> tuple[float, float]:
    """Mean cosine of two rows in the same block, and of two rows in the same list but different
    blocks, over every list of ``part``."""
    table = json.loads((part / "index/part/table.json").read_text("utf-8"))
    same, other = [], []
    for lst in range(table["ivf"]["nlist"]):
        _, _, ids, scales, rows, _ = read_ivf(part / f"index/ivf/{lst}.bin")
        x = dequantize(rows, scales)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        cos = x @ x.T
        block = np.arange(len(ids)) // 8
        pair = ~np.eye(len(ids), dtype=bool)
        same += cos[pair & (block[:, None] == block[None, :])].tolist()
        other += cos[block[:, None] != block[None, :]].tolist()
    return float(np.mean(same)), float(np.mean(other))


def test_row_order_puts_similar_rows_in_one_block(cranfield_bundle: Path, cranfield_partitioned: Path,
                                                  tmp_path: Path) -> None:
    """"pca" (the default) and "chunk" hold the same rows in the same lists; "chunk" keeps ids
    ascending, "pca" permutes them so that rows sharing a block are more alike than rows of the
    same list in other blocks (what keeps a query's rerank candidates in few blocks)."""
    chunk = tmp_path / "chunk"
    m = convert_bundle(cranfield_bundle, chunk, nlist=16, nprobe=4, order="chunk", block_rows=8, precompress=False)
    assert m["index"]["ivf"]["order"] == "chunk"
    vectors, scales, *_ = flat_parts(cranfield_bundle)
    _check_lists(chunk, vectors, scales)
    permuted = 0
    for lst in range(16):
        a = read_ivf(chunk / f"index/ivf/{lst}.bin")[2]
        b = read_ivf(cranfield_partitioned / f"index/ivf/{lst}.bin")[2]
        assert np.all(np.diff(a.astype(np.int64)) > 0) and sorted(b.tolist()) == a.tolist()
        permuted += a.tolist() != b.tolist()
    assert permuted == 16
    same, other = _block_cosines(cranfield_partitioned)
    same_chunk, other_chunk = _block_cosines(chunk)
    assert same > other + 0.05 and same > same_chunk + 0.05, (same, other, same_chunk, other_chunk)


@pytest.mark.parametrize(("kw", "message"), [
    ({"block_rows": 0}, "block_rows 0 is not allowed; pass an integer >= 1"),
    ({"block_rows": True}, "block_rows True is not allowed"),
    ({"order": "random"}, "row order 'random' is unknown; allowed: pca, chunk"),
])
def test_bad_block_options_are_websem_errors(cranfield_bundle: Path, tmp_path: Path, kw: dict, message: str) -> None:
    with pytest.raises(WebsemError, match=message):
        convert_bundle(cranfield_bundle, tmp_path / "x", nlist=4, **kw)
    assert not (tmp_path / "x").exists()


def test_nlist_is_clamped_and_defaults(cranfield_bundle: Path, tmp_path: Path) -> None:
    # 4 * sqrt(n) lists; about 4,000 rows probed, at least 32 lists; every list below ~4,000 chunks.
    assert default_ivf(0) == (1, 1) and default_ivf(1778) == (169, 169)
    assert default_ivf(9764) == (395, 162) and default_ivf(100_000) == (1265, 51)
    assert default_ivf(1_000_000) == (4000, 32) and default_ivf(10**9)[0] == 16384
    section, search = _flat_copy(cranfield_bundle, tmp_path)
    got = partition_index(tmp_path, section, search, nlist=5000, progress=False)
    n = section["chunks"]
    # nlist clamped to the chunk count; the default nprobe then probes every (one-row) list.
    assert got["ivf"]["nlist"] == n and got["ivf"]["nprobe"] == n
    sizes = json.loads((tmp_path / "index/part/table.json").read_text())["ivf"]["sizes"]
    assert len(sizes) == n and sum(sizes) == n


def test_chunks_json_is_streamed_item_by_item(cranfield_bundle: Path, tmp_path: Path) -> None:
    """The fragments read chunks.json in blocks; items and multi-byte characters cut by a block
    boundary come out whole."""
    from websem.build.shards import iter_json_array

    real = (cranfield_bundle / "index/chunks.json").read_bytes()[:4000]
    rows = json.loads(real[:real.rindex(b',{"doc"')] + b"]")
    rows.append({"doc": 9, "anchor": "#ü", "start": 0, "end": 5, "text": "naïve 水 😀 [x], {y}"})
    path = tmp_path / "chunks.json"
    path.write_bytes(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    for block in (1, 3, 7, 4096):
        assert list(iter_json_array(path, block=block)) == rows
    path.write_bytes(b"[]")
    assert list(iter_json_array(path, block=1)) == []
    path.write_bytes(json.dumps(rows).encode()[:-5])
    with pytest.raises(WebsemError, match="chunks.json is not valid JSON"):
        list(iter_json_array(path, block=64))


# --------------------------------------------------------------------------- lexical


def test_lexical_shards_hold_the_flat_postings(cranfield_bundle: Path, cranfield_partitioned: Path) -> None:
    *_, flat = flat_parts(cranfield_bundle)
    table, terms = shard_terms(cranfield_partitioned)
    lex = table["lexical"]
    assert list(terms) == flat.terms  # every term once, in code point order
    assert lex["avgdl"] == flat.avgdl and lex["n_terms"] == flat.n_terms and lex["n_chunks"] == flat.n_chunks
    assert lex["analyzer"] == flat.analyzer and lex["fields"] == flat.fields
    assert len(lex["shards"]) > 1
    first = 0
    for j, (_, count) in enumerate(lex["shards"]):
        header, got = read_lex_shard(cranfield_partitioned / f"index/lex/{j}.bin")
        assert header["first_term"] == first
        assert header["sections"]["postings"][1] <= LEX_SHARD_BYTES or count == 1
        first += count
    for tid, t in enumerate(flat.terms):
        idf, rows = terms[t]
        ids, tfs = flat.postings_of(tid)
        assert idf == flat.idf[tid]
        assert [(c, tf) for c, tf, _ in rows] == list(zip(ids, tfs, strict=True))
        assert all(dl == flat.lengths[c] for c, _, dl in rows)


def test_shard_bm25_equals_the_flat_index_bit_for_bit(cranfield_bundle: Path, cranfield_partitioned: Path,
                                                      shared_data: Path) -> None:
    *_, flat = flat_parts(cranfield_bundle)
    table, terms = shard_terms(cranfield_partitioned)
    analyzer = Analyzer.from_config(flat.analyzer)
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text("utf-8").splitlines()
    queries = [json.loads(x)["text"] for x in lines if x.strip()][:200]
    assert len(queries) == 200
    queries[0] = queries[0] + " " + queries[0]  # repeated query terms (qtf 2)
    matched = 0
    for q in queries:
        qt = analyzer.terms(q)
        want = flat.scores(qt)
        got = shard_scores(table, terms, qt)
        assert got == want, q  # float equality: the same operations in the same order
        matched += bool(want)
    assert matched == 200
