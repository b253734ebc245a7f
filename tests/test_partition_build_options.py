"""How `websem build` chooses and guards a partitioned index (build/partition.py): facets in the
partition table, byte-identical rebuilds from the previous bundle's rows, --index auto and its
threshold, atomic failure, and the --index / --nlist / --nprobe refusals. What the partitioned
files hold: test_partition_build.py."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websem.build.bundle import build_bundle
from websem.build.partition import AUTO_PARTITION_CHUNKS, choose_layout, convert_bundle
from websem.text.bm25 import meta_from_facets
from websem.text.errors import WebsemError


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text("utf-8"))


def test_partitioned_build_facets_and_byte_identical_rebuild(faceted_partitioned: Path, faceted_corpus: Path,
                                                             model_package: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    m = manifest(faceted_partitioned)
    assert m["index"]["layout"] == "partitioned" and m["index"]["ivf"]["nlist"] == 8
    assert set(m["search"]["facets"]) == {"tags", "section"}
    table = json.loads((faceted_partitioned / m["index"]["files"]["table"]).read_text("utf-8"))
    records = [json.loads(x) for x in faceted_corpus.read_text("utf-8").splitlines()]
    assert set(table["facets"]) == set(m["search"]["facets"])
    meta = meta_from_facets(table["facets"], table["docs"])
    assert len(records) == table["docs"] == 300
    for d, rec in enumerate(records):
        want = rec["metadata"]
        assert meta[d]["section"] == [want["section"]]
        assert sorted(meta[d]["tags"]) == sorted(want["tags"])
    for values in table["facets"].values():
        for docs in values.values():
            assert docs == sorted(set(docs))
    # the fragments keep the documents' meta like docs.json
    frag = json.loads((faceted_partitioned / "index/frag/0.json").read_text("utf-8"))
    assert frag["docs"][0]["meta"] == records[0]["metadata"]
    assert m["index"]["vector_dtype"] == "int8"  # the partitioned default
    # A float16 partitioned bundle gives its vectors to a rebuild (int8 rows are lossy, so an int8
    # one cannot: its rebuilds use the embedding cache). Rebuilt over a copy of itself without the
    # embedding cache, every vector comes from the previous bundle's IVF lists and the index bytes
    # are the same. The Pyodide snapshot and the compressed copies do not depend on the layout and
    # are skipped (fast test).
    monkeypatch.setenv("WEBSEM_NO_SNAPSHOT", "1")
    from rich.console import Console

    first = tmp_path / "f16"
    build_bundle(faceted_corpus, first, model=model_package, index="partitioned", nlist=8, nprobe=2,
                 vector_dtype="float16", progress=False, precompress=False, console=Console(file=io.StringIO()))
    again = tmp_path / "again"
    shutil.copytree(first, again)
    log = io.StringIO()
    build_bundle(faceted_corpus, again, model=model_package, index="partitioned", nlist=8, nprobe=2,
                 progress=False, precompress=False, cache=False, console=Console(file=log, width=400),
                 vector_dtype="float16")
    assert "400 reused (0 from the cache, 400 from the previous bundle), 0 embedded" in log.getvalue()
    assert tree_digest(again / "index") == tree_digest(first / "index")
    assert manifest(again)["index"] == manifest(first)["index"]


def test_auto_threshold_and_its_boundary() -> None:
    # The threshold is where a flat index (~1 KB brotli a chunk) costs about 12 cold partitioned
    # queries (docs/partitioned.md). scifact-train's 9,764 chunks must land partitioned: flat, its
    # first lexical result needs 3.4 MB brotli (chunks.json, docs.json, lexical.bin whole), over the
    # 2 MB first-visit budget (bench/results/progressive.md); the demo's ~5,300 chunks stay flat.
    assert choose_layout("auto", AUTO_PARTITION_CHUNKS - 1) == (
        "flat", f"auto: {AUTO_PARTITION_CHUNKS - 1} chunks < {AUTO_PARTITION_CHUNKS}")
    assert choose_layout("auto", AUTO_PARTITION_CHUNKS) == (
        "partitioned", f"auto: {AUTO_PARTITION_CHUNKS} chunks >= {AUTO_PARTITION_CHUNKS}")
    assert choose_layout("auto", 9764)[0] == "partitioned"
    assert choose_layout("auto", 5305)[0] == "flat"
    assert choose_layout("flat", 10**6) == ("flat", "--index flat")
    with pytest.raises(WebsemError, match=r"^websem: --index 'tree' is unknown; allowed: auto, flat, partitioned$"):
        choose_layout("tree", 10)


def test_auto_layout_and_atomic_failure(faceted_corpus: Path, model_package: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("WEBSEM_NO_SNAPSHOT", "1")  # not what this test is about; ~10 s a build
    import websem.build.partition as partition_mod
    from rich.console import Console

    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(faceted_corpus.read_text("utf-8").splitlines()[:30]) + "\n", "utf-8")
    out = tmp_path / "bundle"
    console = Console(file=sys.stderr, soft_wrap=True)
    m = build_bundle(small, out, model=model_package, progress=False, precompress=False, console=console)
    assert AUTO_PARTITION_CHUNKS > m["index"]["chunks"]
    assert m["index"]["layout"] == "flat" and "lexical" in m["index"]["files"]
    assert f"index: flat (auto: {m['index']['chunks']} chunks < {AUTO_PARTITION_CHUNKS})" in capsys.readouterr().err
    before = tree_digest(out)
    # a failure after the partitioned files are written leaves the previous bundle untouched
    monkeypatch.setattr(partition_mod, "AUTO_PARTITION_CHUNKS", 10)
    real = partition_mod.partition_index

    def then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(28, "No space left on device (injected, partition)")

    monkeypatch.setattr(partition_mod, "partition_index", then_fail)
    with pytest.raises(OSError, match="injected, partition"):
        build_bundle(small, out, model=model_package, progress=False, precompress=False, console=console)
    assert tree_digest(out) == before
    assert not list(tmp_path.glob(".*websem-tmp*"))
    monkeypatch.setattr(partition_mod, "partition_index", real)
    m = build_bundle(small, out, model=model_package, progress=False, precompress=False, console=console)
    assert m["index"]["layout"] == "partitioned"
    assert f"index: partitioned (auto: {m['index']['chunks']} chunks >= 10)" in capsys.readouterr().err
    assert not (out / "index/chunks.json").exists() and (out / "index/part/table.json").is_file()


def test_convert_refuses_what_it_cannot_convert(cranfield_partitioned: Path, cranfield_bundle: Path,
                                                tmp_path: Path) -> None:
    with pytest.raises(WebsemError, match="is not a flat websem bundle"):
        convert_bundle(cranfield_partitioned, tmp_path / "x")
    with pytest.raises(WebsemError, match="--nprobe 9 is more than --nlist 4"):
        convert_bundle(cranfield_bundle, tmp_path / "x", nlist=4, nprobe=9)
    with pytest.raises(WebsemError, match="onto itself"):
        convert_bundle(cranfield_bundle, cranfield_bundle)
    with pytest.raises(WebsemError, match="index code 'pq' is unknown; allowed: binary, rows"):
        convert_bundle(cranfield_bundle, tmp_path / "x", code="pq")
    with pytest.raises(WebsemError, match="rerank 0 is not allowed; pass an integer >= 1"):
        convert_bundle(cranfield_bundle, tmp_path / "x", rerank=0)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--index", "sharded"], "websem: --index 'sharded' is unknown; allowed: auto, flat, partitioned"),
    (["--nlist", "0"], "websem: --nlist 0 is not allowed; pass an integer >= 1"),
    (["--nprobe", "many"], "websem: --nprobe 'many' is not allowed; pass an integer >= 1"),
    (["--nlist", "8", "--nprobe", "9"], "websem: --nprobe 9 is more than --nlist 8; allowed: 1 to 8"),
    (["--nlist", "20000"], "websem: --nlist 20000 is too large; allowed: 1 to 16384"),
    (["--index", "flat", "--nlist", "8"], "websem: --nlist 8 applies to a partitioned index, not --index flat"),
    (["--index", "partitioned", "--vector-dtype", "float32"],
     "websem: --index partitioned stores float16 or int8 vectors, not float32"),
])
def test_bad_index_options_are_websem_errors(args: list[str], message: str, tmp_path: Path) -> None:
    websem = Path(sys.executable).parent / "websem"
    proc = subprocess.run([str(websem), "build", str(tmp_path / "corpus.jsonl"), "--out", str(tmp_path / "o"),
                           *args], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
    assert not (tmp_path / "o").exists()
