"""Incremental builds (docs/build.md): the embedding cache and the previous bundle as sources.

Every build here is a real `build_bundle` on real Cranfield documents with the real model package;
"byte-identical" compares every file of the two bundle folders."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from websem.build.bundle import build_bundle
from websem.build.cache import CACHE_FILE, EmbeddingCache, chunk_key, restore_snapshot, store_snapshot
from websem.build.snapshot import SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH

N_DOCS = 40


def _docs(shared_data: Path) -> list[dict]:
    out = []
    with open(shared_data / "cranfield" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == N_DOCS:
                return out
    return out


def _write(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def _build(source: Path, out: Path, model: Path, **kw) -> tuple[dict, dict]:
    """Build; return the manifest and the numbers of the `embedding:` line it printed."""
    buf = io.StringIO()
    # No precompressed copies: these tests are about the vectors, and every fresh cache folder
    # would otherwise spend ~1 min of CPU on the runtime's quality-11 brotli copies.
    kw.setdefault("precompress", False)
    manifest = build_bundle(source, out, model=model, progress=False,
                            console=Console(file=buf, width=400), **kw)
    text = buf.getvalue()
    line = next(x for x in text.splitlines() if x.startswith("embedding:"))
    m = re.search(r"(\d+) chunks, (\d+) reused \((\d+) from the cache, (\d+) from the previous bundle\), "
                  r"(\d+) embedded", line)
    assert m, line
    ignored = re.search(r"ignored (\d+) corrupt", line)
    keys = ("chunks", "reused", "cache", "previous", "embedded")
    stats = dict(zip(keys, map(int, m.groups()), strict=True))
    stats["ignored"] = int(ignored.group(1)) if ignored else 0
    return manifest, stats


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_identical(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    differ = [k for k in fa if fa[k] != fb[k]]
    assert not differ, f"files differ: {differ}"


@pytest.fixture()
def no_snapshot(monkeypatch):
    # The Pyodide snapshot has its own test below; skipping it elsewhere saves ~10 s per build.
    monkeypatch.setenv("WEBSEM_NO_SNAPSHOT", "1")


def test_rebuild_after_edit_is_byte_identical_to_clean_build(tmp_path, model_package, shared_data, no_snapshot):
    docs = _docs(shared_data)
    cache = tmp_path / "cache"
    v1 = _write(tmp_path / "v1.jsonl", docs)
    _, s1 = _build(v1, tmp_path / "site", model_package, cache=cache)
    assert s1["reused"] == 0 and s1["embedded"] == s1["chunks"] > N_DOCS // 2

    # Change two documents, add one, drop one.
    edited = [dict(d) for d in docs[1:]]
    edited[3]["text"] = edited[3]["text"] + " The flow separates near the trailing edge."
    edited[10]["title"] = "a new title for this report"
    edited.append({"_id": "new-1", "title": "new report", "text": "Heat transfer in hypersonic boundary layers."})
    v2 = _write(tmp_path / "v2.jsonl", edited)
    _, s2 = _build(v2, tmp_path / "site", model_package, cache=cache)
    assert 3 <= s2["embedded"] <= 8, s2  # the changed and new documents' chunks only
    assert s2["reused"] + s2["embedded"] == s2["chunks"]

    _, s3 = _build(v2, tmp_path / "clean", model_package, cache=tmp_path / "empty-cache")
    assert s3["reused"] == 0
    _assert_identical(tmp_path / "site", tmp_path / "clean")


def test_previous_bundle_is_a_source_only_when_exact(tmp_path, model_package, shared_data, no_snapshot):
    v1 = _write(tmp_path / "v1.jsonl", _docs(shared_data)[:12])
    _, s1 = _build(v1, tmp_path / "a", model_package, cache=False)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    # float16 -> float16 without a cache: every row comes from the previous bundle, same bytes.
    _, s2 = _build(v1, tmp_path / "b", model_package, cache=False)
    assert s2["previous"] == s2["chunks"] == s1["chunks"] and s2["embedded"] == 0
    _assert_identical(tmp_path / "a", tmp_path / "b")
    # float16 rows cannot give float32 or int8 bytes: re-embedded.
    _, s3 = _build(v1, tmp_path / "b", model_package, cache=False, vector_dtype="int8")
    assert s3["previous"] == 0 and s3["embedded"] == s3["chunks"]
    # A previous bundle whose vectors no longer match its manifest is not trusted.
    _build(v1, tmp_path / "b", model_package, cache=False)
    vec = tmp_path / "b" / "index" / "vectors.bin"
    raw = bytearray(vec.read_bytes())
    raw[10] ^= 0x40
    vec.write_bytes(bytes(raw))
    _, s4 = _build(v1, tmp_path / "b", model_package, cache=False)
    assert s4["previous"] == 0 and s4["embedded"] == s4["chunks"]
    _assert_identical(tmp_path / "a", tmp_path / "b")


def test_corrupt_or_foreign_cache_rows_are_ignored(tmp_path, model_package, shared_data, no_snapshot):
    v1 = _write(tmp_path / "v1.jsonl", _docs(shared_data)[:15])
    cache = tmp_path / "cache"
    _, s1 = _build(v1, tmp_path / "a", model_package, cache=cache)
    n = s1["chunks"]
    db = sqlite3.connect(cache / CACHE_FILE)
    rows = db.execute("SELECT key, model, vec FROM vectors ORDER BY key").fetchall()
    assert len(rows) == n
    (k0, _, v0), (k1, _, v1_), (k2, model, _), (k3, _, v3) = rows[:4]
    flipped = bytearray(v0)
    flipped[7] ^= 0x01  # one bit of one float
    db.execute("UPDATE vectors SET vec = ? WHERE key = ?", (bytes(flipped), k0))
    db.execute("UPDATE vectors SET vec = ? WHERE key = ?", (v3, k1))  # another chunk's vector
    db.execute("UPDATE vectors SET model = ? WHERE key = ?", ("0" * 64 + model[64:], k2))  # foreign model
    db.execute("UPDATE vectors SET vec = ? WHERE key = ?", (v3[:-4], k3))  # truncated
    db.commit()
    db.close()
    _, s2 = _build(v1, tmp_path / "b", model_package, cache=cache)
    assert s2["ignored"] == 4 and s2["embedded"] == 4 and s2["cache"] == n - 4, s2
    _assert_identical(tmp_path / "a", tmp_path / "b")
    # The bad rows were replaced by good ones.
    _, s3 = _build(v1, tmp_path / "c", model_package, cache=cache)
    assert s3["ignored"] == 0 and s3["cache"] == n


def test_snapshot_reused_so_rebuilds_stay_identical(tmp_path, model_package, shared_data):
    """make_snapshot.mjs is not deterministic; a snapshot from identical inputs is reused."""
    v1 = _write(tmp_path / "v1.jsonl", _docs(shared_data)[:6])
    cache = tmp_path / "cache"
    m1, _ = _build(v1, tmp_path / "a", model_package, cache=cache)
    if "runtime/pyodide-snapshot.bin" not in m1["files"]:
        pytest.skip("no Node here, so no snapshot to reuse")
    assert m1["runtime"]["snapshot_key"]
    assert m1["runtime"]["snapshot_stdlib"] == SNAPSHOT_STDLIB_PATH and SNAPSHOT_STDLIB_PATH in m1["files"]
    # The snapshot and the stdlib zip its restore mounts are cached as one pair.
    pair = sorted(p.name for p in (cache / "snapshots").iterdir())
    shas = [m1["files"][rel]["sha256"] for rel in (SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH)]
    stem = ".".join([m1["runtime"]["snapshot_key"], *shas])
    assert pair == [f"{stem}.bin", f"{stem}.zip"]
    _build(v1, tmp_path / "b", model_package, cache=cache)  # from the cache
    _assert_identical(tmp_path / "a", tmp_path / "b")
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    _build(v1, tmp_path / "c", model_package, cache=False)  # from the previous bundle
    _assert_identical(tmp_path / "a", tmp_path / "c")


def _writer(folder: str, model: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with EmbeddingCache(Path(folder), model, 8) as cache:
        for _ in range(20):
            ids = [list(rng.integers(0, 50, 5)) for _ in range(50)]
            vecs = np.stack([np.full(8, sum(x), dtype=np.float32) for x in ids])
            cache.put_many([chunk_key(model, x) for x in ids], vecs)
            cache.flush()


def test_cache_is_safe_with_concurrent_builds(tmp_path):
    model = "ab" * 32
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), model, s)) for s in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = sqlite3.connect(tmp_path / CACHE_FILE)
    keys = [k for (k,) in db.execute("SELECT key FROM vectors")]
    db.close()
    with EmbeddingCache(tmp_path, model, 8) as cache:
        got = cache.get_many(keys)
        assert len(got) == len(keys) > 500 and cache.rejected == 0


@pytest.mark.parametrize("args, message", [
    (["--cache", "c", "--no-cache"], "--no-cache contradict"),
    (["--ray-address", "127.0.0.1:6379"], "needs --engine ray"),
    (["--engine", "ray", "--jobs", "2"], "applies to --engine local only"),
])
def test_cli_option_conflicts(tmp_path, model_package, args, message):
    import subprocess
    import sys

    src = _write(tmp_path / "c.jsonl", [{"_id": "1", "title": "t", "text": "x"}])
    proc = subprocess.run([sys.executable, "-m", "websem.build.cli", "build", str(src), "--out",
                           str(tmp_path / "out"), "--model", str(model_package), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("websem:") and message in proc.stderr, proc.stderr


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_snapshot_cache_restores_a_snapshot_only_with_its_own_stdlib_zip(tmp_path):
    """build/cache.py keeps the snapshot and its stdlib zip as a pair: a damaged or missing half,
    an entry of the older single-file layout, or a previous bundle that does not name its zip
    restores nothing (the build then makes a new pair), never half a pair."""
    src = tmp_path / "src"
    (src / "runtime").mkdir(parents=True)
    snap, zipped = b"snapshot heap " * 100, b"PK zip of the rest " * 50
    (src / SNAPSHOT_PATH).write_bytes(snap)
    (src / SNAPSHOT_STDLIB_PATH).write_bytes(zipped)
    cache = tmp_path / "cache"
    store_snapshot(src, "k", cache, SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH)
    stem = f"k.{_sha(snap)}.{_sha(zipped)}"
    assert sorted(p.name for p in (cache / "snapshots").iterdir()) == [f"{stem}.bin", f"{stem}.zip"]

    def restored(root: Path, **kw) -> dict[str, bytes]:
        args = {"cache_dir": cache, "previous": None, **kw}
        ok = restore_snapshot(root, "k", args["cache_dir"], args["previous"], SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        assert ok == bool(files), files.keys()  # all or nothing, no .part files left
        return files

    assert restored(tmp_path / "a") == {SNAPSHOT_PATH: snap, SNAPSHOT_STDLIB_PATH: zipped}
    assert restored(tmp_path / "a2", cache_dir=None) == {}
    # The cached zip damaged: the pair is refused.
    cached_zip = cache / "snapshots" / f"{stem}.zip"
    cached_zip.write_bytes(zipped[:-1] + b"!")
    assert restored(tmp_path / "b") == {}
    # The zip missing, or an entry of the older layout (<key>.<sha256>.bin, no zip): nothing.
    cached_zip.unlink()
    assert restored(tmp_path / "c") == {}
    (cache / "snapshots" / f"{stem}.bin").rename(cache / "snapshots" / f"k.{_sha(snap)}.bin")
    assert restored(tmp_path / "d") == {}
    # The previous bundle: its manifest names both files of the pair, or it is not used.
    prev = tmp_path / "prev"
    shutil.copytree(src, prev)
    manifest = {"runtime": {"snapshot_key": "k", "snapshot_stdlib": SNAPSHOT_STDLIB_PATH},
                "files": {SNAPSHOT_PATH: {"sha256": _sha(snap)}, SNAPSHOT_STDLIB_PATH: {"sha256": _sha(zipped)}}}
    (prev / "manifest.json").write_text(json.dumps(manifest))
    assert restored(tmp_path / "e", cache_dir=None, previous=prev) == {SNAPSHOT_PATH: snap,
                                                                      SNAPSHOT_STDLIB_PATH: zipped}
    del manifest["runtime"]["snapshot_stdlib"]
    (prev / "manifest.json").write_text(json.dumps(manifest))
    assert restored(tmp_path / "f", cache_dir=None, previous=prev) == {}
    manifest["runtime"]["snapshot_stdlib"] = SNAPSHOT_STDLIB_PATH
    (prev / "manifest.json").write_text(json.dumps(manifest))
    (prev / SNAPSHOT_STDLIB_PATH).write_bytes(b"another zip")
    assert restored(tmp_path / "g", cache_dir=None, previous=prev) == {}
