"""The in-page index (web/text/inpage.py) makes the index `websem build` makes (issue #14).

In CPython: the first 300 Cranfield documents, prepared by InPageIndex (the build's reading,
chunking and tokenization code, moved into web/text) and embedded by the build's CPU embedder
from the token ids prepare returns, give byte-identical index files to `websem build` on those
documents; so do the HTML and Markdown sites. Bad input gets the build's error or skip and leaves
the index usable. An export ranks in `websem query --index` exactly like the built bundle. In
Pyodide under Node: prepare and files equal CPython's on records, HTML and Markdown files, with
the bs4/markdown-it files the bundle ships. (The pieces that need no built bundle:
tests/test_inpage_units.py.)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from websem.build.bundle import build_bundle
from websem.build.embed import ChunkEmbedder
from websem.build.sources import SourceReport, discover, read_source
from websem.text.errors import WebsemError
from websem.text.inpage import InPageIndex, read_export
from websem.text.wordpiece import WordPieceTokenizer

REPO = Path(__file__).resolve().parents[1]
SITES = REPO / "tests" / "fixtures" / "sites"
N_DOCS = 300
INDEX_FILES = ("index/chunks.json", "index/docs.json", "index/lexical.bin", "index/vectors.bin")


def _build(source: Path, out: Path, model: Path, cache: Path) -> Path:
    """`websem build` without the Pyodide snapshot and the precompressed copies (not index files)."""
    old = os.environ.get("WEBSEM_NO_SNAPSHOT")
    os.environ["WEBSEM_NO_SNAPSHOT"] = "1"
    try:
        build_bundle(source, out, model=model, progress=False, cache=cache, precompress=False, index="flat")
    finally:
        if old is None:
            del os.environ["WEBSEM_NO_SNAPSHOT"]
        else:
            os.environ["WEBSEM_NO_SNAPSHOT"] = old
    return out


def _inpage(bundle: Path, **options) -> InPageIndex:
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    tok = WordPieceTokenizer.from_json((bundle / "model" / "tokenizer.json").read_text("utf-8"),
                                       max_length=manifest["model"]["max_seq_length"])
    return InPageIndex.for_bundle(tok, manifest, **options)


def _feed(ix: InPageIndex, embedder: ChunkEmbedder, items: list[tuple[dict, bytes | None]]) -> list[dict]:
    """Prepare every item, embed the token ids prepare returned (CPU, batch-1 vectors), add."""
    prepared = [ix.prepare(item, data) for item, data in items]
    ids = [c["input_ids"] for p in prepared for c in p["chunks"]]
    vecs = embedder.embed(ids).astype("<f4") if ids else np.zeros((0, ix.dims), "<f4")
    row = 0
    for p in prepared:
        if p["skipped"] is None:
            ix.add(p["id"], vecs[row:row + p["n_chunks"]].tobytes())
            row += p["n_chunks"]
    return prepared


def _records(path: Path) -> list[tuple[dict, None]]:
    out = []
    for line in path.read_text("utf-8").splitlines():
        o = json.loads(line)
        out.append(({"id": o["_id"], "title": o.get("title"), "text": o.get("text"), "url": o.get("url"),
                     "meta": o.get("metadata")}, None))
    return out


def _assert_same_index(files: dict[str, bytes], bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    for rel in INDEX_FILES:
        assert files[rel] == (bundle / rel).read_bytes(), rel
    assert json.loads(files["index.json"]) == manifest["index"]
    assert json.loads(files["search.json"]) == manifest["search"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inpage")


@pytest.fixture(scope="module")
def cran(work: Path, model_package: Path, shared_data: Path) -> dict:
    """The first 300 Cranfield records: built by `websem build` and indexed in-page."""
    src = work / "cran300.jsonl"
    lines = (shared_data / "cranfield" / "corpus.jsonl").read_text("utf-8").splitlines()[:N_DOCS]
    src.write_text("\n".join(lines) + "\n", "utf-8")
    bundle = _build(src, work / "cran-bundle", model_package, work / "cache")
    embedder = ChunkEmbedder(model_package)
    ix = _inpage(bundle)
    prepared = _feed(ix, embedder, _records(src))
    return {"src": src, "bundle": bundle, "ix": ix, "prepared": prepared, "embedder": embedder}


# ----------------------------------------------------------------------------- parity with the build


def test_cranfield_index_files_equal_websem_build(cran: dict) -> None:
    """300 Cranfield documents: chunks.json, docs.json, lexical.bin, vectors.bin byte-identical,
    and the manifest's index section and search table equal."""
    assert len(cran["ix"]) == N_DOCS
    _assert_same_index(cran["ix"].files(), cran["bundle"])


def test_prepare_gives_the_builds_chunks_and_token_ids(cran: dict) -> None:
    """The chunks prepare returns are the build's (text, offsets, anchors) and their input_ids are
    what the build embeds (the bundle tokenizer, [CLS]/[SEP], truncated at max_seq_length)."""
    bundle = cran["bundle"]
    chunks = json.loads((bundle / "index" / "chunks.json").read_text("utf-8"))
    got = [c for p in cran["prepared"] for c in p["chunks"]]
    assert [(c["text"], c["start"], c["end"], c["anchor"]) for c in got] == \
           [(c["text"], c["start"], c["end"], c["anchor"]) for c in chunks]
    from websem.build.embed import load_package_tokenizer

    tok = load_package_tokenizer(bundle / "model", 256)
    assert [c["input_ids"] for c in got] == [tok.encode(c["text"]).ids for c in chunks]
    assert all(ids[0] == 101 and ids[-1] == 102 and len(ids) <= 256 for ids in (c["input_ids"] for c in got))


def test_remove_gives_the_build_without_those_documents(cran: dict, work: Path, model_package: Path) -> None:
    """Removing documents leaves the index `websem build` makes of the others (the build reuses
    the cached vectors; the in-page index keeps its own)."""
    ix = _inpage(cran["bundle"])
    ix.load_export(cran["ix"].export())
    ix.search_state()  # the BM25 index of these 300 documents, kept for the export: not after a change
    gone = [json.loads(line)["_id"] for line in cran["src"].read_text("utf-8").splitlines()[10:13]]
    assert ix.remove(gone + ["no such id"]) == 3
    src = work / "cran297.jsonl"
    src.write_text("".join(line + "\n" for line in cran["src"].read_text("utf-8").splitlines()
                           if json.loads(line)["_id"] not in gone), "utf-8")
    _assert_same_index(ix.files(), _build(src, work / "cran297-bundle", model_package, work / "cache"))


def _site_items(root: Path) -> list[tuple[dict, bytes]]:
    """The files `websem build` would read from ``root``, in its order, as dropped files."""
    paths = discover(root, SourceReport())
    return [({"name": p.name, "id": p.relative_to(root).as_posix()}, p.read_bytes()) for p in paths]


def _markdown_site(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "guide.md").write_text(
        "---\ntitle: The guide\ntags: [setup, cli]\nsection: docs\n---\n# Install\n\nRun `pip install x`.\n\n"
        "## Configure\n\n| key | value |\n|-----|-------|\n| a | 1 |\n\nSee [the API](api.md).\n", "utf-8")
    (root / "api.md").write_text("# API reference\n\nCall `load()` first.\n\n## load\n\nLoads it. " * 3, "utf-8")
    (root / "notes.txt").write_text("Plain notes\n\nA paragraph of notes about the wind tunnel.\n", "utf-8")
    (root / "empty.md").write_text("", "utf-8")
    return root


@pytest.mark.parametrize("site", ["sphinx", "hugo", "markdown"])
def test_site_files_equal_websem_build(site: str, cran: dict, work: Path, model_package: Path) -> None:
    """HTML pages (noindex and furniture rules, the shared <title> affix stripped site-wide) and
    Markdown/text files (front matter facets, slugs, an empty file skipped) dropped in the page
    in the build's order give the build's index files."""
    root = _markdown_site(work / "md-site") if site == "markdown" else SITES / site
    bundle = _build(root, work / f"{site}-bundle", model_package, work / "cache")
    ix = _inpage(bundle)
    prepared = _feed(ix, cran["embedder"], _site_items(root))
    _, report = read_source(root)
    skipped = {p["id"]: p["skipped"] for p in prepared if p["skipped"]}
    assert skipped == {s["path"]: s["reason"] for s in report.skipped if s["path"] in skipped}
    _assert_same_index(ix.files(), bundle)


# ----------------------------------------------------------------------------- bad input


def _build_error(tmp: Path, name: str, data: bytes) -> str:
    folder = tmp / f"src-{name}"
    folder.mkdir()
    (folder / "good.txt").write_text("A good document about airfoils.\n", "utf-8")
    (folder / name).write_bytes(data)
    try:
        _, report = read_source(folder)
    except WebsemError as e:
        return str(e)
    return next(s["reason"] for s in report.skipped if s["path"] == name)


def test_bad_input_gets_the_builds_error_or_skip_and_the_index_stays_usable(cran: dict, tmp_path: Path) -> None:
    """An empty file, a binary file, invalid UTF-8, a 20 MB file and a duplicate id: each the
    build's skip reason or error text; afterwards the index holds exactly the good documents."""
    embedder = cran["embedder"]
    ix = _inpage(cran["bundle"])
    good = [({"name": "a.txt"}, b"Boundary layer transition on a flat plate.\n"),
            ({"id": "r1", "title": "Shock waves", "text": "Oblique shocks at Mach 3."}, None)]
    _feed(ix, embedder, good[:1])
    cases = {"empty.txt": b"", "blob.txt": b"PK\x03\x04\x00\x00binary", "latin1.md": "café".encode("latin-1"),
             "big.txt": b"word " * (4 * 1024 * 1024)}
    for name, data in cases.items():
        want = _build_error(tmp_path, name, data)
        if want.startswith("websem:"):
            with pytest.raises(WebsemError) as e:
                ix.prepare({"name": name}, data)
            assert str(e.value) == want
        else:
            assert ix.prepare({"name": name}, data)["skipped"] == want
    # duplicate ids: the build's message, located in the page instead of a corpus line
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"_id": "r1", "text": "x"}\n{"_id": "r1", "text": "y"}\n', "utf-8")
    with pytest.raises(WebsemError) as built:
        read_source(dup)
    _feed(ix, embedder, good[1:])
    for item, data in [({"id": "r1", "text": "again"}, None), ({"name": "a.txt"}, b"again")]:
        with pytest.raises(WebsemError) as e:
            ix.prepare(item, data)
        doc_id = item.get("id") or item["name"]
        assert str(e.value).split(" at ")[0] == str(built.value).split(" at ")[0].replace("'r1'", repr(doc_id))
        assert str(e.value).endswith("; ids in a corpus must be unique")
    assert ix.prepare({"id": "e", "text": "  "})["skipped"] == "no text"
    # a corpus.jsonl line's names work too
    beir = ix.prepare({"_id": "b1", "title": "T", "text": "Body.", "metadata": {"tags": "x, y"}})
    ix.add("b1", bytes(beir["n_chunks"] * ix.dims * 4))
    assert json.loads(ix.files()["index/docs.json"])[-1] == {"id": "b1", "title": "T", "url": "#b1",
                                                            "meta": {"tags": ["x", "y"]}}
    assert ix.remove(["b1"]) == 1
    # replace mode: the build's U+FFFD rule
    lenient = _inpage(cran["bundle"], encoding_errors="replace")
    assert "caf\ufffd" in lenient.prepare({"name": "latin1.md"}, cases["latin1.md"])["chunks"][0]["text"]
    assert lenient.report.replaced == ["latin1.md"]
    # still usable: exactly the index of the good documents alone
    fresh = _inpage(cran["bundle"])
    _feed(fresh, embedder, good)
    assert ix.ids == fresh.ids == ["a.txt", "r1"]
    assert ix.files() == fresh.files()


def test_add_checks_the_vectors(cran: dict) -> None:
    ix = _inpage(cran["bundle"])
    p = ix.prepare({"id": "x", "text": "Heat transfer."})
    with pytest.raises(WebsemError, match=r"1 chunks, so its vectors are 1536 bytes"):
        ix.add("x", b"\0" * 10)
    with pytest.raises(WebsemError, match="was not prepared"):
        ix.add("y", b"")
    assert p["n_chunks"] == 1
    with pytest.raises(WebsemError, match="allowed: float16, float32"):
        _inpage(cran["bundle"], vector_dtype="int8")


def test_an_index_without_its_vectors_makes_the_same_files_from_the_callers(cran: dict) -> None:
    """keep_vectors=False (the page: its worker holds the vectors): add returns each document's
    stored rows; laid out in doc_ids' order and passed back, they give the files and the export an
    index that keeps its vectors makes; without them, or with the wrong size, a websem: error.
    An import hands the rows over (take_vectors) and keeps none."""
    from websem.text.inpage import ByteSource

    items = _records(cran["src"])[:40]
    keep, lean = _inpage(cran["bundle"]), _inpage(cran["bundle"], keep_vectors=False)
    prepared = [keep.prepare(item, data) for item, data in items]
    assert [lean.prepare(item, data) for item, data in items] == prepared
    vecs = cran["embedder"].embed([c["input_ids"] for p in prepared for c in p["chunks"]]).astype("<f4")
    rows, at = {}, 0
    for p in prepared:
        part = vecs[at:at + p["n_chunks"]].tobytes()
        at += p["n_chunks"]
        assert keep.add(p["id"], part) == lean.add(p["id"], part)
        rows[p["id"]] = keep._docs[p["id"]].vectors
    assert all(e.vectors is None for e in lean._docs.values())
    lean.remove([prepared[3]["id"]])
    keep.remove([prepared[3]["id"]])
    vectors = b"".join(rows[i] for i in lean.doc_ids())
    assert lean.files(vectors) == keep.files()
    pieces = ByteSource(len(vectors), lambda a, b: vectors[a:b], piece=1000)  # read in pieces, as from JS
    assert lean.files(pieces) == keep.files()
    assert lean.export(pieces) == keep.export()
    # The page assembles the same archive from export_parts, chunks_json pieces and its vectors.
    size, parts = lean.export_parts(pieces)
    out, n = bytearray(size), len(json.loads(keep.files()["index/chunks.json"]))
    for at, what, *rest in parts:
        if what == "index/vectors.bin":
            what = vectors
        elif what == "index/chunks.json":
            what = b"".join(lean.chunks_json(row, row + 7) for row in range(0, n, 7))
            assert lean.chunks_json(n, n + 7) == b""
        assert not rest or rest == [len(what)]
        out[at:at + len(what)] = what
    assert out == keep.export()
    with pytest.raises(WebsemError, match=r"does not keep its vectors"):
        lean.files()
    with pytest.raises(WebsemError, match=r"so index/vectors.bin is \d+ bytes, got \d+"):
        lean.export(vectors[:-2])
    assert lean.search_state()[0].keys() == {"index.json", "search.json", "index/lexical.bin", "chunk_doc.bin",
                                             "doc_ids.json"}
    again = _inpage(cran["bundle"], keep_vectors=False)
    assert again.load_export(keep.export()) == len(keep)
    counts, got = again.take_vectors()
    assert counts == [[i, len(keep._docs[i])] for i in keep.ids] and got == vectors
    assert all(e.vectors is None for e in again._docs.values())
    assert again.files(got) == keep.files()


def test_chunk_texts_are_held_compressed_and_read_back_exactly(cran: dict) -> None:
    """The entries hold each document's chunk texts as one zlib block; the rows read them back
    exactly, non-ASCII included."""
    ix = _inpage(cran["bundle"])
    text = "Ünïcødé tides \U0001f30a and more. " * 60
    p = ix.prepare({"id": "u", "title": "T", "text": text})
    ix.add("u", bytes(p["n_chunks"] * ix.dims * 4))
    entry = ix._docs["u"]
    assert entry.texts == tuple(c["text"] for c in p["chunks"]) and len(entry) == p["n_chunks"] > 1
    assert len(entry._text) < sum(len(c["text"].encode("utf-8", "surrogatepass")) for c in p["chunks"]) / 2
    assert [r["text"] for r in json.loads(ix.files()["index/chunks.json"])] == list(entry.texts)


# ----------------------------------------------------------------------------- export / import / query


def test_inpage_search_ranks_like_the_files_it_stands_for(cran: dict, shared_data: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """bridge.inpage_search (what the page searches with after each batch) gives inpage_files'
    vectors, lexical index, index section and search table, each chunk's document, and a ranker
    over the rows the index holds that returns what a ranker over chunks.json/docs.json returns."""
    from array import array

    from websem.text import bridge
    from websem.text.bm25 import LexicalIndex, Ranker

    ix = cran["ix"]
    monkeypatch.setattr(bridge, "_inpage", ix)
    monkeypatch.setattr(bridge, "_ranker", None)
    files = ix.files()
    got = bridge.inpage_search()
    assert set(got) == {"index.json", "search.json", "index/vectors.bin", "index/lexical.bin", "chunk_doc.bin",
                        "doc_ids.json"}
    for name in ("index.json", "search.json", "index/vectors.bin", "index/lexical.bin"):
        assert got[name] == files[name], name
    assert json.loads(got["doc_ids.json"]) == [d["id"] for d in json.loads(files["index/docs.json"])]
    chunks, docs = json.loads(files["index/chunks.json"]), json.loads(files["index/docs.json"])
    chunk_doc = array("i", got["chunk_doc.bin"])
    assert chunk_doc.itemsize == 4 and chunk_doc.tolist() == [c["doc"] for c in chunks]
    have = bridge._ranker
    assert list(have.chunks) == chunks and list(have.docs) == docs and have.chunks[-1] == chunks[-1]
    assert have.docs[-1] == docs[-1] and have.docs[1:3] == docs[1:3]
    lexical = LexicalIndex.from_bytes(files["index/lexical.bin"])
    want = Ranker(lexical, chunks, docs, search=json.loads(files["search.json"]), analyzer=lexical.analyzer)
    queries = [json.loads(line)["text"] for line in
               (shared_data / "cranfield" / "queries.jsonl").read_text("utf-8").splitlines()[:10]]
    for q in queries:
        res = want.results(q, mode="lexical", k=10)
        assert res["hits"]
        assert have.results(q, mode="lexical", lexical=want.lexical_docs(q), k=10) == res
    monkeypatch.setattr(bridge, "_inpage", _inpage(cran["bundle"]))
    empty = bridge.inpage_search()
    assert bridge._ranker is None and json.loads(empty["index.json"])["chunks"] == 0 and empty["chunk_doc.bin"] == b""


def test_export_import_round_trip_and_refusals(cran: dict) -> None:
    cran["ix"].search_state()  # the export after a reload uses the BM25 bytes the reload built
    blob = cran["ix"].export()
    assert blob == cran["ix"].export()  # deterministic
    # Written into one buffer by inpage_export.write_tar: the bytes tarfile writes for its members.
    meta, members = read_export(blob)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in [("websem-index.json", json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8")),
                          *sorted(members.items())]:
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    assert buf.getvalue() == blob
    again = _inpage(cran["bundle"])
    assert again.load_export(blob) == N_DOCS
    assert again.export() == blob
    _assert_same_index(again.files(), cran["bundle"])
    # Across dtypes: a float16 export read into a float32 index holds the halves exactly, and
    # that index's float32 export read into a float16 index gives the build's vectors again.
    wide = _inpage(cran["bundle"], vector_dtype="float32")
    assert wide.load_export(blob) == N_DOCS
    halves = np.frombuffer(cran["ix"].files()["index/vectors.bin"], "<f2")
    assert np.array_equal(np.frombuffer(wide.files()["index/vectors.bin"], "<f4"), halves.astype("<f4"))
    narrow = _inpage(cran["bundle"])
    assert narrow.load_export(wide.export()) == N_DOCS
    _assert_same_index(narrow.files(), cran["bundle"])
    manifest = json.loads((cran["bundle"] / "manifest.json").read_text("utf-8"))
    foreign = _inpage(cran["bundle"])
    foreign.model_sha256, foreign.model_id = "0" * 64, "other/model"
    with pytest.raises(WebsemError, match=r"made with model sentence-transformers/all-MiniLM-L6-v2 .*not with this "
                                          r"bundle's model other/model .*index the documents again"):
        foreign.load_export(blob)
    assert manifest["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2"
    damaged = bytearray(blob)
    at = damaged.find(b"[{\"doc\":0")
    damaged[at + 2] ^= 1
    with pytest.raises(WebsemError, match="does not match its sha256"):
        read_export(bytes(damaged))
    with pytest.raises(WebsemError, match="not an exported websem index"):
        read_export(b"not a tar")


def test_websem_query_ranks_an_export_like_the_built_bundle(cran: dict, work: Path, shared_data: Path) -> None:
    """`websem query BUNDLE --index EXPORT` gives the bundle's own results (ids, scores, snippets,
    highlights, facets) in all three modes."""
    from websem.build.cli import main
    from websem.web.query import load_bundle

    export = work / "cran300.websem-index.tar"
    export.write_bytes(cran["ix"].export())
    plain, exported = load_bundle(cran["bundle"]), load_bundle(cran["bundle"], index=export)
    queries = [json.loads(line)["text"] for line in
               (shared_data / "cranfield" / "queries.jsonl").read_text("utf-8").splitlines()[:15]]
    for mode in ("hybrid", "semantic", "lexical"):
        for q in queries:
            assert exported.query(q, 10, mode=mode) == plain.query(q, 10, mode=mode)
    runner = CliRunner()
    args = ["query", str(cran["bundle"]), queries[0], "--json", "--mode", "hybrid"]
    want = runner.invoke(main, args)
    got = runner.invoke(main, [*args, "--index", str(export)])
    assert want.exit_code == got.exit_code == 0, got.output
    assert got.output == want.output and json.loads(got.output)["hits"]
    bad = runner.invoke(main, [*args, "--index", str(work / "missing.tar")])
    assert bad.exit_code == 2 and bad.output.startswith("websem: --index ")


# ----------------------------------------------------------------------------- Pyodide


def test_pyodide_prepare_and_files_equal_cpython(cran: dict, work: Path) -> None:
    """websem_text.bridge's inpage_* functions in real Pyodide under Node, with the bundle's own
    py/ files (websem_text, snowballstemmer, and the extract packages written on demand): the
    same prepare results, index files and export as CPython for records, HTML and Markdown."""
    node = shutil.which("node")
    assert node, "node is required (web/node_modules holds Pyodide)"
    bundle = cran["bundle"]
    records = _records(cran["src"])[:6]
    files = _site_items(SITES / "sphinx")[:4] + _site_items(_markdown_site(work / "md-site"))
    items = records + files
    ix = _inpage(bundle)
    prepared = _feed(ix, cran["embedder"], items)
    vectors = {}
    rows = cran["embedder"].embed([c["input_ids"] for p in prepared for c in p["chunks"]]).astype("<f4")
    at = 0
    for p in prepared:
        vectors[p["id"]] = rows[at:at + p["n_chunks"]].tobytes().hex()
        at += p["n_chunks"]
    job = {"bundle": str(bundle), "items": [{"item": it, "data": None if d is None else d.hex()} for it, d in items],
           "vectors": vectors}
    (work / "pyodide-job.json").write_text(json.dumps(job), "utf-8")
    proc = subprocess.run([node, str(REPO / "tests" / "js" / "pyodide_inpage.mjs"), str(work / "pyodide-job.json")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["prepared"] == prepared
    want = {k: hashlib.sha256(v).hexdigest() for k, v in ix.files().items()}
    assert out["files"] == want
    assert out["export"] == hashlib.sha256(ix.export()).hexdigest()
    assert out["imported"] == len(ix)
    assert out["imported_vectors"] == want["index/vectors.bin"]
    assert any(m.startswith("bs4") for m in out["modules"]) and any(m.startswith("markdown_it") for m in out["modules"])
