"""`websem build`: sources, chunking, index, bundle assembly, atomicity and bad inputs.

Real data (../shared/data), the real stdlib tokenizer and the real exported model package."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from websem.build.bundle import VENDOR, build_bundle
from websem.build.chunk import chunk_document, default_overlap
from websem.build.index import dequantize, quantize
from websem.build.sources import read_source
from websem.text.errors import WebsemError
from websem.text.rules import search_table

REPO = Path(__file__).resolve().parents[1]

SITE = {
    "index.html": """<!doctype html><html><head><title>Aerofoil notes</title>
<meta name="description" content="Notes on wings"><meta name="section" content="physics">
<style>body { color: red }</style><script>console.log("never indexed")</script></head>
<body><nav><a href="/">Home</a> <a href="/x">navigation-only-word</a></nav>
<main><h1 id="intro">Aerofoil notes</h1><p>Wings produce lift because air pressure below the
wing exceeds the pressure above it.</p>
<h2 id="stall">Stall behaviour</h2><p>At high angles of attack the boundary layer separates and
the wing stalls; lift drops suddenly.</p>
<h2>Heat transfer in hypersonic flow</h2><p>Hypersonic vehicles heat up through skin
friction and shock waves.</p></main><footer>footer text</footer></body></html>""",
    "guide/cooking.md": """---
title: Cooking guide
author: Ada
---
# Baking bread

Knead the dough, let it rise for an hour, then bake it in a hot oven.

## Sourdough starter

Feed the starter with flour and water every day.
""",
    "plain.txt": "Gardening tips\n\nWater tomatoes in the morning. Prune the basil often.\n",
}


# SITE mixes HTML with Markdown and text: by default only its HTML pages are documents
# (docs/sites.md); these globs choose all three kinds.
SITE_GLOBS = ("*.html", "*.md", "*.txt")


def write_site(root: Path) -> Path:
    for rel, text in SITE.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (relative POSIX paths)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def cranfield_subset(shared: Path, tmp: Path, n: int, start: int = 0) -> Path:
    """The Cranfield records [start, start + n) as a corpus.jsonl of their own."""
    src = shared / "cranfield" / "corpus.jsonl"
    lines = src.read_text("utf-8").splitlines()[start:start + n]
    out = tmp / f"cran{start}-{n}.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def tokenizer(model_package: Path):
    from websem.build.embed import load_package_tokenizer

    return load_package_tokenizer(model_package, 256)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory, model_package: Path,
                 shared_data: Path) -> Path:
    """A bundle of the first 25 Cranfield documents (fast to embed)."""
    tmp = tmp_path_factory.mktemp("small")
    out = tmp / "bundle"
    build_bundle(cranfield_subset(shared_data, tmp, 25), out, model=model_package, progress=False)
    return out


# ---------------------------------------------------------------------------------------------
# sources


def test_html_markdown_text_folder(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    html_only, report = read_source(site)  # a folder with HTML pages: the pages only
    assert [d.id for d in html_only] == ["index.html"]
    assert {s["path"] for s in report.skipped} == {"guide/cooking.md", "plain.txt"}
    docs, report = read_source(site, globs=SITE_GLOBS)
    by_id = {d.id: d for d in docs}
    assert sorted(by_id) == ["guide/cooking.md", "index.html", "plain.txt"]
    html = by_id["index.html"]
    assert html.title == "Aerofoil notes"
    assert html.url == "index.html"
    assert html.meta == {"description": "Notes on wings", "section": "physics"}
    for dropped in ("never indexed", "navigation-only-word", "color: red", "footer text"):
        assert dropped not in html.text  # nav, script, style dropped; <main> only
    # the third heading has no id: its link lands on the nearest id before it, never a made-up slug
    assert [s.anchor for s in html.sections] == ["#intro", "#stall", "#stall"]
    stall = html.sections[1]
    assert html.text[stall.start:stall.end].startswith("Stall behaviour\n\nAt high angles")
    md = by_id["guide/cooking.md"]
    assert md.title == "Cooking guide" and md.meta == {"title": "Cooking guide", "author": "Ada"}
    assert [s.anchor for s in md.sections] == ["#baking-bread", "#sourdough-starter"]
    assert "---" not in md.text and "author" not in md.text
    assert by_id["plain.txt"].title == "Gardening tips"
    assert report.skipped == []


def test_filter_fields_from_meta_and_front_matter() -> None:
    """docs.json meta for filters (docs/hybrid.md): tags a list, section / language strings."""
    from websem.build.sources import html_to_document, markdown_to_document

    page = html_to_document('<html lang="de"><head><meta name="keywords" content="a, b ,a, ">'
                            '<meta property="article:section" content="news"></head>'
                            "<body><p>x</p></body></html>", "p.html", "p.html")
    assert (page.meta["tags"], page.meta["section"], page.meta["language"]) == (
        ["a", "b"], "news", "de")
    assert page.meta["keywords"] == "a, b ,a, "  # the raw value is kept
    both = html_to_document('<meta name="tags" content="t1"><meta name="keywords" content="k">'
                            '<meta name="language" content="fr"><html lang="en"></html>',
                            "q", "q")
    assert (both.meta["tags"], both.meta["language"]) == (["t1"], "fr")  # tags win, meta wins
    md = markdown_to_document('---\ntags: [x, "y z"]\nsection: guide\nlang: en\n---\n# T\n',
                              "m.md", "m.md")
    assert (md.meta["tags"], md.meta["section"], md.meta["language"]) == (
        ["x", "y z"], "guide", "en")
    md = markdown_to_document("---\ntags:\n  - one\n  - 'two'\ntitle: T\n---\nbody\n", "n", "n")
    assert md.meta["tags"] == ["one", "two"] and md.meta["title"] == "T"
    assert "tags" not in html_to_document("<p>no meta</p>", "r", "r").meta


def test_beir_jsonl_doc_text_and_urls(shared_data: Path) -> None:
    docs, report = read_source(shared_data / "cranfield" / "corpus.jsonl")
    assert len(docs) == 1398  # two Cranfield records have no text: skipped and reported
    assert {s["path"].split("_id ")[1].rstrip(")") for s in report.skipped} == {"471", "995"}
    d = docs[0]
    assert d.id == "1" and d.url == "#1"
    # Cranfield's text already starts with its title: not repeated
    assert d.text.startswith(d.title) and d.text.count(d.title) == 1
    sci = read_source(shared_data / "scifact-train" / "corpus.jsonl")[0][0]
    assert sci.text.startswith(sci.title + "\n\n")


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(WebsemError, match=r"^websem: no .*found in .*empty"):
        read_source(tmp_path / "empty")


def test_binary_files_are_skipped_and_reported(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    (site / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (site / "logo.png").write_bytes(b"\x89PNG\x00")
    docs, report = read_source(site, globs=(*SITE_GLOBS, "*.png"))
    assert "image.html" not in {d.id for d in docs} and len(docs) == 3
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert reasons["image.html"].startswith("binary")
    assert "logo.png" in reasons
    only_binary = tmp_path / "bin"
    only_binary.mkdir()
    (only_binary / "a.txt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(WebsemError, match=r"no .* found .*a\.txt: binary"):
        read_source(only_binary)


def test_invalid_utf8_names_the_file_or_is_replaced(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    (site / "latin1.html").write_bytes("<p>caf\xe9 cr\xe8me</p>".encode("latin-1"))
    with pytest.raises(WebsemError, match=r"latin1\.html is not valid UTF-8 .*byte 0xe9 at offset 6.*iconv"):
        read_source(site)
    docs, report = read_source(site, encoding_errors="replace")
    doc = next(d for d in docs if d.id == "latin1.html")
    assert doc.text == "caf\ufffd cr\ufffdme" and report.replaced == ["latin1.html"]
    jl = tmp_path / "c.jsonl"
    jl.write_bytes(b'{"_id": "a", "title": "t", "text": "ok"}\n{"_id": "b", "text": "\xff"}\n')
    with pytest.raises(WebsemError, match="c.jsonl line 2 is not valid UTF-8"):
        read_source(jl)
    with pytest.raises(WebsemError, match="encoding_errors='ignore'.*strict, replace"):
        read_source(jl, encoding_errors="ignore")
    # Valid UTF-8 whose JSON spells a lone surrogate: the same rule (no raw UnicodeEncodeError later).
    lone = tmp_path / "lone.jsonl"
    lone.write_text('{"_id": "a", "title": "t", "text": "ok"}\n{"_id": "b", "text": "x \\ud800 y"}\n')
    with pytest.raises(WebsemError, match=r"lone.jsonl line 2 field 'text' is not valid Unicode.*U\+D800.*replace"):
        read_source(lone)
    docs, report = read_source(lone, encoding_errors="replace")
    assert docs[1].text == "x \ufffd y" and report.replaced == ["lone.jsonl line 2"]


def test_20mb_document_fails_clearly_without_reading_it(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    big = site / "dump.txt"
    with big.open("w") as f:
        for _ in range(20 * 1024):
            f.write(("lift and drag of a wing in a wind tunnel " * 25)[:1023] + "\n")
    assert big.stat().st_size >= 20 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(WebsemError, match=r"dump\.txt is 21\.0 MB, larger than .*--max-doc"):
            read_source(site, globs=SITE_GLOBS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # refused from its size, never loaded
    jl = tmp_path / "big.jsonl"
    with jl.open("w") as f:
        f.write(json.dumps({"_id": "big", "title": "big", "text": "x " * (10 * 1024 * 1024)}))
    with pytest.raises(WebsemError, match=r"big\.jsonl line 1 is 21\.0 MB"):
        read_source(jl)


def test_large_document_chunks_when_allowed(tmp_path: Path, tokenizer) -> None:
    """A 1 MB document (within a raised limit) is read and chunked, every chunk within budget."""
    site = tmp_path / "big"
    site.mkdir()
    para = ("The boundary layer on a flat plate thickens downstream. " * 12).strip()
    (site / "long.md").write_text("# Long\n\n" + "\n\n".join([para] * 1500), encoding="utf-8")
    docs, _ = read_source(site, max_doc_bytes=2 * 1024 * 1024)
    chunks = chunk_document(docs[0], 0, tokenizer.count_tokens, 254)
    assert len(chunks) > 300
    assert max(tokenizer.count_tokens(c.text) for c in chunks[:50]) <= 254


def test_duplicate_ids_name_the_id(tmp_path: Path) -> None:
    jl = tmp_path / "dup.jsonl"
    rows = [{"_id": "a1", "title": "x", "text": "one"}, {"_id": "b2", "title": "y", "text": "two"},
            {"_id": "a1", "title": "z", "text": "three"}]
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(WebsemError, match=r"duplicate document id 'a1' at dup\.jsonl line 3"):
        read_source(jl)


# ---------------------------------------------------------------------------------------------
# chunking


def test_chunks_fit_budget_keep_offsets_and_overlap(tokenizer, shared_data: Path) -> None:
    docs, _ = read_source(shared_data / "scifact-train" / "corpus.jsonl")
    docs = docs[:150]
    budget = 254
    n_multi = 0
    for i, d in enumerate(docs):
        chunks = chunk_document(d, i, tokenizer.count_tokens, budget)
        assert chunks and all(c.doc == i for c in chunks)
        for c in chunks:
            assert c.text == d.text[c.start:c.end] and c.text.strip() == c.text
            assert len(tokenizer.encode(c.text).ids) - 2 == tokenizer.count_tokens(c.text)
            assert tokenizer.count_tokens(c.text) <= budget
        covered = np.zeros(len(d.text), dtype=bool)
        for c in chunks:
            covered[c.start:c.end] = True
        assert all(ch.isspace() for ch, cv in zip(d.text, covered, strict=True) if not cv)
        if len(chunks) > 1:
            n_multi += 1
            for a, b in zip(chunks, chunks[1:], strict=False):
                assert b.start > a.start
                if b.start < a.end:  # overlap: bounded by ~15% of the budget
                    assert tokenizer.count_tokens(d.text[b.start:a.end]) <= default_overlap(budget)
    assert n_multi > 30


def test_chunks_follow_sections_and_hard_cut(tokenizer, tmp_path: Path) -> None:
    site = tmp_path / "s"
    site.mkdir()
    long_para = " ".join(f"sentence number {i} talks about turbulence." for i in range(120))
    # One whitespace-free "word" of 600 tokens (each "=" is a punctuation token; a long run of
    # letters would be a single [UNK]): only a character cut can split it.
    word = "=" * 600
    (site / "p.md").write_text(f"# First\n\nshort intro\n\n## Second\n\n{long_para}\n\n"
                               f"## Third\n\n{word}\n", encoding="utf-8")
    (doc,), _ = read_source(site)
    chunks = chunk_document(doc, 0, tokenizer.count_tokens, 64, 8)
    secs = {s.anchor: s for s in doc.sections}
    assert [c.anchor for c in chunks][0] == "#first"
    for c in chunks:
        s = secs[c.anchor]
        assert s.start <= c.start < c.end <= s.end  # never crosses a heading
        assert tokenizer.count_tokens(c.text) <= 64
    second = [c for c in chunks if c.anchor == "#second"]
    assert len(second) >= 10
    assert all(b.start < a.end for a, b in zip(second, second[1:], strict=False))  # overlap
    third = [c for c in chunks if c.anchor == "#third"]
    assert len(third) >= 2 and "".join(c.text for c in third).endswith(word)


# ---------------------------------------------------------------------------------------------
# index storage


def test_int8_quantization_roundtrip() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q, s = quantize(v, "int8")
    assert q.dtype == np.int8 and s.dtype == np.float32 and np.abs(q).max() == 127
    assert np.abs(dequantize(q, s) - v).max() <= s.max() / 2 + 1e-7
    query = v[3]
    exact = v.astype(np.float64) @ query.astype(np.float64)
    scores = dequantize(q, s) @ query.astype(np.float64)  # what websem query scores with
    assert np.abs(scores - exact).max() < 5e-3 and int(np.argmax(scores)) == 3
    h, none = quantize(v, "float16")
    assert none is None and h.dtype == np.float16
    assert np.abs(dequantize(h, None) @ query.astype(np.float64) - exact).max() < 1e-3
    with pytest.raises(WebsemError, match="'int4'.*int8, float16, float32"):
        quantize(v, "int4")


# ---------------------------------------------------------------------------------------------
# bundle


def test_cranfield_bundle_manifest_and_files(cranfield_bundle: Path, model_package: Path) -> None:
    m = json.loads((cranfield_bundle / "manifest.json").read_text())
    assert m["format"] == "websem-bundle" and m["format_version"] == 2
    on_disk = {p.relative_to(cranfield_bundle).as_posix() for p in cranfield_bundle.rglob("*")
               if p.is_file()} - {"manifest.json"}
    copies = {f"{rel}.{enc}" for rel, entries in m.get("encodings", {}).items() for enc in entries}
    assert copies, "the default build writes precompressed copies (manifest.encodings)"
    assert set(m["files"]) | copies == on_disk and not set(m["files"]) & copies
    for rel, info in m["files"].items():
        data = (cranfield_bundle / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["size"]
    pkg = json.loads((model_package / "manifest.json").read_text())
    assert m["model"]["sha256"] == pkg["files"]["model.onnx"]["sha256"]
    assert m["index"]["model_sha256"] == m["model"]["sha256"]
    assert m["model"]["dims"] == 384 and m["model"]["max_seq_length"] == 256
    idx = m["index"]
    assert (idx["docs"], idx["vector_dtype"], idx["dims"]) == (1398, "float16", 384)
    assert idx["chunks"] > idx["docs"]
    assert m["files"]["index/vectors.bin"]["size"] == idx["chunks"] * 384 * 2
    assert "index/scales.bin" not in m["files"]  # int8 only
    for rel in ("websem.js", "index.html", "runtime/engine.js", "runtime/worker.js",
                "model/model.onnx", "model/tokenizer.json", "model/manifest.json",
                "vendor/pyodide/pyodide.asm.wasm", "vendor/pyodide/python_stdlib.zip",
                "vendor/ort/ort-wasm-simd-threaded.wasm", "vendor/ort/ort.wasm.min.mjs",
                "py/websem_text/wordpiece.py", "py/websem_text/__init__.py"):
        assert rel in m["files"], rel
    assert not any("jsep" in f or "asyncify" in f for f in m["files"])  # wasm-only ORT
    # py/: what Pyodide imports at start, what the in-page index's extraction imports, their licences
    py = {f for f in m["files"] if f.startswith("py/")}
    extract = set(m["runtime"]["extract_python_files"])
    assert set(m["runtime"]["python_files"]) | extract == {f for f in py if not f.startswith("py/LICENSES/")}
    assert not set(m["runtime"]["python_files"]) & extract and "py/bs4/builder/_htmlparser.py" in extract
    assert "py/LICENSES/beautifulsoup4-LICENSE" in py and "py/bs4/builder/_lxml.py" not in py
    assert m["runtime"]["pyodide"] == "314.0.7" and m["runtime"]["onnxruntime_web"] == "1.30.0"
    # hybrid search (docs/hybrid.md): BM25 over the very chunks of the vectors, trimmed stemmer
    from websem.text.bm25 import LexicalIndex

    assert idx["files"]["lexical"] == "index/lexical.bin"
    lex = LexicalIndex.from_bytes((cranfield_bundle / "index/lexical.bin").read_bytes())
    assert lex.n_chunks == idx["chunks"] and lex.n_terms == idx["lexical"]["terms"]
    assert m["search"]["facets"] == []  # Cranfield has no tags/section/language
    assert m["search"] == search_table(facets=[])
    assert m["runtime"]["vendor"] == VENDOR
    assert {rel for roles in VENDOR.values() for rel in roles.values()} == {
        f for f in m["files"] if f.startswith("vendor/")}
    assert {f for f in m["files"] if f.startswith("py/snowballstemmer/")} == {
        f"py/snowballstemmer/{n}" for n in ("__init__.py", "among.py", "basestemmer.py",
                                            "english_stemmer.py")}
    chunks = json.loads((cranfield_bundle / "index/chunks.json").read_text())
    docs = json.loads((cranfield_bundle / "index/docs.json").read_text())
    assert [c["doc"] for c in chunks] == sorted(c["doc"] for c in chunks)
    assert docs[0] == {"id": "1", "title": docs[0]["title"], "url": "#1"}
    assert not list(cranfield_bundle.parent.glob(".*websem-tmp*"))


def test_vectors_do_not_depend_on_the_batch(tmp_path: Path, model_package: Path,
                                            cranfield_bundle: Path, shared_data: Path) -> None:
    """Two builds are byte-identical, and a doc's vectors equal those of the full Cranfield build."""
    src = cranfield_subset(shared_data, tmp_path, 12, start=100)
    a, b = tmp_path / "a", tmp_path / "b"
    build_bundle(src, a, model=model_package, progress=False)
    build_bundle(src, b, model=model_package, progress=False)
    assert tree_digest(a / "index") == tree_digest(b / "index")
    ma, mb = (json.loads((x / "manifest.json").read_text()) for x in (a, b))
    assert ma["index"] == mb["index"] and ma["model"] == mb["model"]
    full_chunks = json.loads((cranfield_bundle / "index/chunks.json").read_text())
    full_docs = json.loads((cranfield_bundle / "index/docs.json").read_text())
    full_vec = np.fromfile(cranfield_bundle / "index/vectors.bin", dtype="<f2").reshape(-1, 384)
    sub_chunks = json.loads((a / "index/chunks.json").read_text())
    sub_docs = json.loads((a / "index/docs.json").read_text())
    sub_vec = np.fromfile(a / "index/vectors.bin", dtype="<f2").reshape(-1, 384)
    pos = {(full_docs[c["doc"]]["id"], c["start"]): i for i, c in enumerate(full_chunks)}
    for i, c in enumerate(sub_chunks):
        j = pos[(sub_docs[c["doc"]]["id"], c["start"])]
        assert np.array_equal(sub_vec[i], full_vec[j])


def test_html_site_bundle(tmp_path: Path, model_package: Path) -> None:
    from websem.web.query import search

    out = tmp_path / "site-bundle"
    # int8 here (the non-default storage), so its write → read → search path is exercised too
    m = build_bundle(write_site(tmp_path / "site"), out, model=model_package, progress=False,
                     vector_dtype="int8", globs=SITE_GLOBS)
    assert m["source"]["kind"] == "folder" and m["index"]["vector_dtype"] == "int8"
    assert m["files"]["index/scales.bin"]["size"] == 4 * m["index"]["chunks"]
    docs = json.loads((out / "index/docs.json").read_text())
    assert docs[1]["meta"] == {"description": "Notes on wings", "section": "physics"}
    hit = search(out, ["why does a wing stall at a high angle of attack"], k=1)[0][0]
    assert hit["id"] == "index.html" and hit["url"] == "index.html#stall"
    hit = search(out, ["how do I keep a sourdough culture alive"], k=1)[0][0]
    assert hit["url"] == "guide/cooking.md#sourdough-starter"


def test_bad_model_packages_are_refused(tmp_path: Path, model_package: Path) -> None:
    site = write_site(tmp_path / "site")
    no_manifest = tmp_path / "m1"
    no_manifest.mkdir()
    shutil.copy(model_package / "model.onnx", no_manifest / "model.onnx")
    with pytest.raises(WebsemError, match=r"m1.*no manifest\.json.*websem export"):
        build_bundle(site, tmp_path / "out", model=no_manifest, progress=False)
    tampered = tmp_path / "m2"
    shutil.copytree(model_package, tampered)
    with (tampered / "tokenizer.json").open("r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(WebsemError, match=r"tokenizer\.json does not match its manifest"):
        build_bundle(site, tmp_path / "out", model=tampered, progress=False)
    assert not (tmp_path / "out").exists()


def test_out_that_is_not_a_bundle_needs_force(tmp_path: Path, model_package: Path) -> None:
    site = write_site(tmp_path / "site")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(WebsemError, match=r"precious exists and is not a websem bundle.*--force"):
        build_bundle(site, precious, model=model_package, progress=False)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_failed_rebuild_keeps_previous_bundle(small_bundle: Path, tmp_path: Path,
                                              model_package: Path, shared_data: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree_digest(small_bundle)
    # 1. a bad source fails before anything is written
    bad = tmp_path / "dup.jsonl"
    bad.write_text('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n')
    with pytest.raises(WebsemError, match="duplicate document id '1'"):
        build_bundle(bad, small_bundle, model=model_package, progress=False)
    # 2. a failure in the middle of writing the new bundle (after embedding, index half written)
    import websem.build.bundle as bundle_mod

    real_write = bundle_mod.write_index

    def write_then_fail(out_dir, *args, **kwargs):
        real_write(out_dir, *args, **kwargs)
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(bundle_mod, "write_index", write_then_fail)
    src = cranfield_subset(shared_data, tmp_path, 3, start=400)
    with pytest.raises(OSError, match="injected"):
        build_bundle(src, small_bundle, model=model_package, progress=False)
    monkeypatch.undo()
    assert tree_digest(small_bundle) == before
    assert not list(small_bundle.parent.glob(".*websem-tmp*"))
    # 2b. the same in the lexical step (index/lexical.bin written, then a failure)
    real_lex = bundle_mod.write_lexical_index

    def lex_then_fail(*args, **kwargs):
        real_lex(*args, **kwargs)
        raise OSError(28, "No space left on device (injected, lexical)")

    monkeypatch.setattr(bundle_mod, "write_lexical_index", lex_then_fail)
    with pytest.raises(OSError, match="injected, lexical"):
        build_bundle(src, small_bundle, model=model_package, progress=False)
    monkeypatch.undo()
    assert tree_digest(small_bundle) == before
    assert not list(small_bundle.parent.glob(".*websem-tmp*"))
    # 3. a successful rebuild over the bundle replaces it
    m = build_bundle(src, small_bundle, model=model_package, progress=False)
    assert m["index"]["docs"] == 3 and tree_digest(small_bundle) != before
    assert json.loads((small_bundle / "manifest.json").read_text())["index"]["docs"] == 3


def test_killed_build_keeps_previous_bundle(tmp_path: Path, model_package: Path,
                                            shared_data: Path) -> None:
    """SIGKILL during embedding: the old bundle is byte-identical; the next build cleans up."""
    out = tmp_path / "bundle"
    build_bundle(cranfield_subset(shared_data, tmp_path, 2), out, model=model_package, progress=False)
    before = tree_digest(out)
    big = cranfield_subset(shared_data, tmp_path, 300, start=500)
    websem = Path(sys.executable).parent / "websem"
    # --no-cache: vectors cached by an earlier test would finish the build before the kill.
    proc = subprocess.Popen([str(websem), "build", str(big), "--out", str(out), "--model",
                             str(model_package), "--quiet", "--no-cache"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".bundle.websem-tmp-*")):
            assert proc.poll() is None and time.monotonic() < deadline, "build never started"
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert tree_digest(out) == before
    assert list(tmp_path.glob(".bundle.websem-tmp-*"))  # the killed build's leftovers
    build_bundle(cranfield_subset(shared_data, tmp_path, 2, start=2), out, model=model_package, progress=False)
    assert not list(tmp_path.glob(".bundle.websem-tmp-*"))


def test_cli_build_errors_exit_2(tmp_path: Path, model_package: Path) -> None:
    (tmp_path / "empty").mkdir()
    websem = Path(sys.executable).parent / "websem"
    proc = subprocess.run([str(websem), "build", str(tmp_path / "empty"), "--out",
                           str(tmp_path / "o"), "--model", str(model_package)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("websem: no ") and "Traceback" not in proc.stderr


def test_bundle_ships_a_pyodide_snapshot(cranfield_bundle: Path) -> None:
    """`websem build` makes the Pyodide memory snapshot (cold start); a silent fallback would
    only show up as a slow first search, so the session bundle must list it."""
    manifest = json.loads((cranfield_bundle / "manifest.json").read_text())
    assert "runtime/pyodide-snapshot.bin" in manifest["files"]
    assert manifest["files"]["runtime/pyodide-snapshot.bin"]["size"] > 1_000_000


def test_bundle_ships_its_workers_bundled(cranfield_bundle: Path, tmp_path: Path) -> None:
    """runtime/worker.js and runtime/python-worker.js are one module each (esbuild, build/jsbundle.py):
    no static import left for the browser to fetch level by level; the modules they were made
    from still ship for the in-process engine. Like the snapshot, a silent fallback would only show
    as a slower cold start, so the session bundle must have them; and they are reproducible."""
    import re

    from websem.build.jsbundle import WORKER_ENTRIES, bundle_workers

    static_import = re.compile(r"""(?:^|[;}\n])\s*(?:import|export)\s*(?:[\w*{}\s,]+from\s*)?["']\./""")
    for rel in WORKER_ENTRIES:
        text = (cranfield_bundle / rel).read_text(encoding="utf-8")
        assert text.startswith("// websem runtime, bundled by `websem build`"), rel
        assert not static_import.search(text), f"{rel} still imports a sibling module"
    # What they bundle: the engine, the lexical tier, Pyodide's loader; the rpc of both.
    worker = (cranfield_bundle / "runtime/worker.js").read_text(encoding="utf-8")
    assert "function createEngine" in worker and "function createInpageEngine" in worker
    assert "function loadPython" in (cranfield_bundle / "runtime/python-worker.js").read_text(encoding="utf-8")
    for rel in ("runtime/engine.js", "runtime/python.js", "runtime/rpc.js"):
        assert 'from "./' in (cranfield_bundle / rel).read_text(encoding="utf-8"), rel
    # Reproducible: bundling again writes the same bytes.
    again = tmp_path / "again"
    (again / "runtime").mkdir(parents=True)
    assert bundle_workers(again)
    for rel in WORKER_ENTRIES:
        assert (again / rel).read_bytes() == (cranfield_bundle / rel).read_bytes(), rel
