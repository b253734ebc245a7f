"""Precompressed bundle copies (build/compress.py): deterministic bytes, exact round trips, the
size rule, manifest.encodings, reuse from the cache and the previous bundle (corrupt copies
ignored), and a real `websem build` with and without them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import brotli
import pytest
from click.testing import CliRunner
from rich.console import Console
from websem.build import compress
from websem.build.compress import BIG, MIN_SAVING, compress_bytes, precompress, settings

TEXT = ("export function search(query, k) { return rank(query).slice(0, k); }\n" * 400).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path, files: dict[str, bytes]) -> dict[str, dict]:
    """Write files under root; return their manifest.files table."""
    table = {}
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        table[rel] = {"sha256": _sha(data), "size": len(data)}
    return table


def test_copies_are_deterministic_and_round_trip() -> None:
    for enc in ("br", "gz"):
        a, b = compress_bytes(TEXT, enc), compress_bytes(TEXT, enc)
        assert a == b and len(a) < len(TEXT) // 10
    assert brotli.decompress(compress_bytes(TEXT, "br")) == TEXT
    gz = compress_bytes(TEXT, "gz")
    assert gzip.decompress(gz) == TEXT
    # gzip header (RFC 1952): no FNAME/FCOMMENT flags, MTIME 0, so the bytes do not depend on the
    # file's name or the time of the build.
    assert gz[:3] == b"\x1f\x8b\x08" and gz[3] == 0 and gz[4:8] == b"\0\0\0\0"
    assert settings("br", 100) == f"brotli {brotli.__version__} q11"
    assert settings("br", BIG + 1).endswith(" q9")
    # A partitioned index's shards are many small files: quality 9 whatever their size.
    for rel in ("index/ivf/7.bin", "index/lex/0.bin", "index/frag/12.json"):
        assert settings("br", 100, rel).endswith(" q9")
        assert brotli.decompress(compress_bytes(TEXT, "br", rel)) == TEXT
    assert settings("br", 100, "index/part/table.json").endswith(" q11")
    # The runtime's files (the same in every bundle, copies reused) get quality 11 at any size;
    # large corpus and model files stay at 9.
    for rel in ("vendor/ort/ort-wasm-simd-threaded.wasm", "runtime/pyodide-snapshot.bin"):
        assert settings("br", BIG + 1, rel).endswith(" q11")
    assert settings("br", BIG + 1, "model/model.onnx").endswith(" q9")
    with pytest.raises(ValueError, match="websem: unknown encoding 'zstd'; allowed: br, gz"):
        compress_bytes(TEXT, "zstd")


def test_size_rule_and_manifest_entries(tmp_path: Path) -> None:
    noise = os.urandom(50_000)  # incompressible, like python_stdlib.zip
    files = _tree(tmp_path, {"runtime/engine.js": TEXT, "vendor/stdlib.zip": noise,
                             "index/empty.json": b"", "manifest.json": b'{"format": "websem-bundle"}' * 50})
    encodings, stats = precompress(tmp_path, files)
    assert set(encodings) == {"runtime/engine.js"}, "only files whose copy saves enough get one"
    assert stats == {"reused": 0, "compressed": 4, "rejected": 0}  # engine.js and stdlib.zip, br + gz
    for enc, suffix, decode in (("br", ".br", brotli.decompress), ("gz", ".gz", gzip.decompress)):
        entry = encodings["runtime/engine.js"][enc]
        blob = (tmp_path / f"runtime/engine.js{suffix}").read_bytes()
        assert entry == {"size": len(blob), "sha256": _sha(blob), "by": settings(enc, len(TEXT))}
        assert len(blob) <= (1 - MIN_SAVING) * len(TEXT) and decode(blob) == TEXT
    assert not (tmp_path / "vendor/stdlib.zip.br").exists() and not (tmp_path / "vendor/stdlib.zip.gz").exists()
    assert not (tmp_path / "manifest.json.br").exists()  # cannot list a copy of itself


def test_size_rule_keeps_big_absolute_savings(tmp_path: Path, monkeypatch) -> None:
    """Under 10% saved still earns a copy when the bytes saved reach MIN_SAVED_BYTES (the int8
    model: 9.3%, 2.1 MB). Scaled down here: a 10 kB threshold on 200 kB files."""
    monkeypatch.setattr(compress, "MIN_SAVED_BYTES", 10_000)
    mostly_noise = os.urandom(188_000) + bytes(12_000)  # ~6% compressible: 12 kB saved
    less = os.urandom(196_000) + bytes(4_000)  # ~2%: 4 kB saved
    files = _tree(tmp_path, {"model/model.onnx": mostly_noise, "index/vectors.bin": less})
    encodings, _ = precompress(tmp_path, files)
    assert set(encodings) == {"model/model.onnx"}
    for entry in encodings["model/model.onnx"].values():
        assert 0.9 * len(mostly_noise) < entry["size"] <= len(mostly_noise) - 10_000


def test_cache_and_previous_bundle_are_reused_and_corrupt_copies_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    files = _tree(tmp_path / "a", {"runtime/engine.js": TEXT})
    first, s1 = precompress(tmp_path / "a", files, cache_dir=cache)
    assert s1["compressed"] == 2 and len(list((cache / "compressed").iterdir())) == 2

    _tree(tmp_path / "b", {"runtime/engine.js": TEXT})
    again, s2 = precompress(tmp_path / "b", files, cache_dir=cache)
    assert again == first and s2 == {"reused": 2, "compressed": 0, "rejected": 0}

    # A corrupt cache entry (same size, one bit flipped) is detected by decompressing, ignored
    # and replaced; the copy written is the real one.
    for entry in (cache / "compressed").iterdir():
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 1
        entry.write_bytes(bytes(data))
    _tree(tmp_path / "c", {"runtime/engine.js": TEXT})
    fixed, s3 = precompress(tmp_path / "c", files, cache_dir=cache)
    assert fixed == first and s3 == {"reused": 0, "compressed": 2, "rejected": 2}
    assert brotli.decompress((tmp_path / "c/runtime/engine.js.br").read_bytes()) == TEXT

    # The previous bundle at --out is a source too (no cache), through its manifest.encodings.
    (tmp_path / "a/manifest.json").write_text(json.dumps({"format": "websem-bundle", "files": files,
                                                          "encodings": first}))
    _tree(tmp_path / "d", {"runtime/engine.js": TEXT})
    prev, s4 = precompress(tmp_path / "d", files, previous=tmp_path / "a")
    assert prev == first and s4 == {"reused": 2, "compressed": 0, "rejected": 0}
    # ... unless its copy no longer decompresses to the input.
    (tmp_path / "a/runtime/engine.js.gz").write_bytes(gzip.compress(b"something else", mtime=0))
    _tree(tmp_path / "e", {"runtime/engine.js": TEXT})
    _, s5 = precompress(tmp_path / "e", files, previous=tmp_path / "a")
    assert s5 == {"reused": 1, "compressed": 1, "rejected": 1}
    assert gzip.decompress((tmp_path / "e/runtime/engine.js.gz").read_bytes()) == TEXT


SITE = {
    "index.md": "# Airfoils\n\nThe boundary layer over a flat plate thickens downstream.\n",
    "heat.md": "# Heat\n\nHeat transfer in hypersonic flow near the stagnation point.\n",
}


def test_build_writes_listed_copies_and_no_precompress_writes_none(tmp_path: Path, model_package: Path,
                                                                  monkeypatch) -> None:
    from websem.build.command import build_cmd

    monkeypatch.setenv("WEBSEM_NO_SNAPSHOT", "1")  # the snapshot's reuse has its own tests
    monkeypatch.setenv("WEBSEM_CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    for rel, text in SITE.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text, encoding="utf-8")
    out = tmp_path / "bundle"
    result = CliRunner().invoke(build_cmd, [str(site), "--out", str(out), "--model", str(model_package), "-q"])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "manifest.json").read_text("utf-8"))
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    copies = {f"{rel}.{enc}" for rel, entries in m["encodings"].items() for enc in entries}
    # manifest.files lists the originals only; every other file is a listed copy.
    assert set(m["files"]) | copies == on_disk and not set(m["files"]) & copies
    # The stdlib zip stores its members (build/stdlib.py), so it compresses like the text it holds.
    for rel in ("websem.js", "runtime/engine.js", "model/tokenizer.json", "index/chunks.json", "model/model.onnx",
                m["runtime"]["vendor"]["ort"]["wasm"], m["runtime"]["vendor"]["pyodide"]["wasm"],
                m["runtime"]["vendor"]["pyodide"]["stdlib"]):
        assert set(m["encodings"][rel]) == {"br", "gz"}, rel
    for rel, entries in m["encodings"].items():
        original = (out / rel).read_bytes()
        for enc, entry in entries.items():
            blob = (out / f"{rel}.{enc}").read_bytes()
            assert (len(blob), _sha(blob)) == (entry["size"], entry["sha256"]), rel
            decoded = brotli.decompress(blob) if enc == "br" else gzip.GzipFile(fileobj=io.BytesIO(blob)).read()
            assert decoded == original, f"{rel}.{enc} does not decode to {rel}"

    plain = tmp_path / "plain"
    from websem.build.bundle import build_bundle

    m2 = build_bundle(site, plain, model=model_package, progress=False, precompress=False,
                      console=Console(file=io.StringIO()))
    assert "encodings" not in m2
    assert {p.relative_to(plain).as_posix() for p in plain.rglob("*") if p.is_file()} == set(m2["files"]) | {
        "manifest.json"}
    assert m2["files"] == m["files"]  # the originals do not depend on the copies
    result = CliRunner().invoke(build_cmd, ["--help"])
    assert "--no-precompress" in result.output
