"""The embedding cache of `websem build`: incremental builds embed only chunks not seen before.

One SQLite file per cache folder (``$XDG_CACHE_HOME/websem/embeddings/vectors.sqlite`` by default,
``--cache DIR``, off with ``--no-cache``), one row per (model, chunk):

* ``key``: sha256 over the model id and the chunk's exact token ids (little-endian uint32). The
  model id is model.onnx's sha256 plus the onnxruntime version (another version may round
  differently). The token ids, not the text, are what the model sees, so a changed tokenizer or
  token cap can never hit a stale entry, and equal ids always give the same vector (docs/build.md).
* ``model``: that model id, ``dims``, ``vec``: float32 little-endian bytes, exactly what the
  embedding engine returned;
* ``check``: sha256 over key, model, dims and vec. A row whose check, model, dims or size does not
  match, or whose values are not finite, is *ignored* (counted as ``rejected``, re-embedded and
  overwritten), so a corrupt or foreign entry is never shipped.

Why SQLite: one file scales to millions of rows (one file per chunk does not: inodes, directory
scans, rsync in CI caches), it is in the standard library, and its locking makes concurrent builds
safe: WAL mode lets readers run while one build writes, writers queue on a busy timeout, and every
write is an ``INSERT OR REPLACE`` of a self-checking row, so two builds writing the same key write
the same bytes.

The previous bundle at ``--out`` is a second source (:func:`previous_bundle_rows`; flat, or
partitioned with its rows read from the IVF lists): its rows are stored as float16, int8 or
float32, so they are reused only when that gives exactly the same output bytes: the same model
sha256, tokenizer and token cap, a manifest whose checksums match the files, and either float32
rows (the exact vectors) or float16 rows for a float16 build (a float16 row widened to float32 and
stored as float16 again is the same row; int8 rows, or float16 rows for an int8/float32 build,
cannot be rebuilt exactly).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

__all__ = [
    "EmbeddingCache",
    "chunk_key",
    "default_cache_dir",
    "previous_bundle_rows",
    "CACHE_FILE",
]

CACHE_FILE = "vectors.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key   BLOB PRIMARY KEY,
    model TEXT NOT NULL,
    dims  INTEGER NOT NULL,
    vec   BLOB NOT NULL,
    check_ BLOB NOT NULL
)
"""
# A rowid table, not WITHOUT ROWID: a row is ~1.7 kB (384 float32), far over the ~200 B that
# WITHOUT ROWID b-trees hold inline, and every row spilled to an overflow page (4.7 kB per row
# measured at 100k rows; ~2 kB per row now).
# SQLite's default limit on bound parameters is 32766 on current builds, 999 on old ones.
_LOOKUP_BATCH = 900
_WRITE_BATCH = 2000


def default_cache_dir() -> Path:
    """``$WEBSEM_CACHE`` if set, else ``$XDG_CACHE_HOME/websem/embeddings`` (``~/.cache`` when
    XDG_CACHE_HOME is unset), next to the default model package (build/command.py)."""
    env = os.environ.get("WEBSEM_CACHE")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "websem" / "embeddings"


def chunk_key(model_sha256: str, ids: Sequence[int]) -> bytes:
    """32-byte cache key of a chunk: sha256(model id, NUL, token ids as uint32 LE)."""
    h = hashlib.sha256(model_sha256.encode("ascii"))
    h.update(b"\x00")
    h.update(np.asarray(ids, dtype="<u4").tobytes())
    return h.digest()


def _check(key: bytes, model: str, dims: int, vec: bytes) -> bytes:
    h = hashlib.sha256(key)
    h.update(model.encode("ascii") + b"\x00" + str(dims).encode("ascii") + b"\x00")
    h.update(vec)
    return h.digest()[:16]


class EmbeddingCache:
    """A cache folder holding :data:`CACHE_FILE`; use as a context manager."""

    def __init__(self, folder: Path, model_sha256: str, dims: int) -> None:
        """``model_sha256``: the model id the rows belong to (see the module docstring)."""
        self.folder = Path(folder)
        self.model = model_sha256
        self.dims = int(dims)
        self.rejected = 0  # corrupt or foreign rows seen (and ignored) by get_many
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / CACHE_FILE
            # isolation_level=None: explicit transactions only; 60 s busy timeout so a concurrent
            # build's write transaction makes this one wait instead of failing.
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise WebsemError(f"websem: cannot open the embedding cache {self.folder}: {e}; pass "
                              "--cache DIR (a writable folder) or --no-cache") from e
        self._pending: list[tuple[bytes, str, int, bytes, bytes]] = []

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._db is None:
            return
        try:
            self.flush()
        finally:
            self._db.close()
            self._db = None

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Valid cached vectors for ``keys`` (missing, corrupt or foreign rows are left out)."""
        found: dict[bytes, np.ndarray] = {}
        for s in range(0, len(keys), _LOOKUP_BATCH):
            part = list(keys[s:s + _LOOKUP_BATCH])
            q = f"SELECT key, model, dims, vec, check_ FROM vectors WHERE key IN ({','.join('?' * len(part))})"
            for key, model, dims, vec, check in self._db.execute(q, part):
                if not self._valid(key, model, dims, vec, check):
                    self.rejected += 1
                    continue
                found[bytes(key)] = np.frombuffer(vec, dtype="<f4")
        return found

    def _valid(self, key: bytes, model: str, dims: int, vec: bytes, check: bytes) -> bool:
        if model != self.model or dims != self.dims or len(vec) != 4 * self.dims:
            return False
        if not isinstance(check, bytes) or check != _check(bytes(key), model, dims, bytes(vec)):
            return False
        return bool(np.isfinite(np.frombuffer(vec, dtype="<f4")).all())

    def put_many(self, keys: Iterable[bytes], vectors: np.ndarray) -> None:
        """Queue rows for writing (written in batches, and at :meth:`flush` / close)."""
        arr = np.ascontiguousarray(vectors, dtype="<f4")
        for key, row in zip(keys, arr, strict=True):
            vec = row.tobytes()
            self._pending.append((key, self.model, self.dims, vec, _check(key, self.model, self.dims, vec)))
        if len(self._pending) >= _WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows in one transaction (retried while another build holds the lock)."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        for attempt in range(10):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
                return
            except sqlite3.OperationalError:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if attempt == 9:
                    raise
                time.sleep(0.5 * (attempt + 1))


def previous_bundle_rows(out: Path, *, model_sha256: str, tokenizer_sha256: str, max_tokens: int,
                         vector_dtype: str) -> tuple[dict[bytes, int], np.ndarray] | None:
    """Rows of the previous bundle at ``out`` that give exactly the same output bytes.

    Returns ``({sha256(chunk text): row}, stored vectors)`` or None when the bundle is missing,
    unreadable, built with another model / tokenizer / token cap, stored so that its rows cannot
    give the new build's exact bytes (see the module docstring), or its index files do not match
    their manifest checksums. The chunk text stands for the token ids here: same tokenizer file
    and cap → same ids."""
    from websem.export.source import sha256_file

    from .index import _NP

    out = Path(out)
    try:
        manifest = json.loads((out / "manifest.json").read_text("utf-8"))
        index = manifest["index"]
        files = manifest["files"]
        old_dtype = index["vector_dtype"]
        if (manifest.get("format") != "websem-bundle" or index.get("model_sha256") != model_sha256
                or files.get("model/tokenizer.json", {}).get("sha256") != tokenizer_sha256
                or int(index.get("chunking", {}).get("max_tokens", -1)) != max_tokens
                or not (old_dtype == "float32" or old_dtype == vector_dtype == "float16")):
            return None
        if index.get("layout") == "partitioned":
            return _partitioned_rows(out, index, files)
        vec_rel, chunks_rel = index["files"]["vectors"], index["files"]["chunks"]
        for rel in (vec_rel, chunks_rel):
            p = out / rel
            if p.stat().st_size != files[rel]["size"] or sha256_file(p) != files[rel]["sha256"]:
                return None
        n, d = int(index["chunks"]), int(index["dims"])
        vectors = np.memmap(out / vec_rel, dtype=_NP[old_dtype], mode="r", shape=(n, d)) if n else None
        chunks = json.loads((out / chunks_rel).read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if vectors is None or len(chunks) != n:
        return None
    rows = {hashlib.sha256(c["text"].encode("utf-8")).digest(): i for i, c in enumerate(chunks)}
    return rows, vectors


def _partitioned_rows(out: Path, index: dict, files: dict) -> tuple[dict[bytes, int], object] | None:
    """:func:`previous_bundle_rows` for a partitioned bundle: chunk texts from its fragments, rows
    from its IVF lists (``ivf.ListRows``, memory-mapped), every file checked against its manifest
    entry first."""
    from websem.export.source import sha256_file

    from .ivf import ListRows

    shards = index["shards"]
    n, d = int(index["chunks"]), int(index["dims"])
    lists = [shards["ivf"].format(i) for i in range(int(index["ivf"]["nlist"]))]
    frags = [shards["fragments"].format(f) for f in range(int(index["fragments"]))]
    for rel in lists + frags:
        p = out / rel
        if p.stat().st_size != files[rel]["size"] or sha256_file(p) != files[rel]["sha256"]:
            return None
    rows: dict[bytes, int] = {}
    c = 0
    for rel in frags:
        for doc in json.loads((out / rel).read_text("utf-8"))["docs"]:
            for chunk in doc["chunks"]:
                rows[hashlib.sha256(chunk["text"].encode("utf-8")).digest()] = c
                c += 1
    if c != n or not n:
        return None
    return rows, ListRows([out / rel for rel in lists], n, d)


# --- the Pyodide memory snapshot ---------------------------------------------------------------
# make_snapshot.mjs saves a wasm heap that differs from run to run (hash seeds, file times), so two
# builds of the same input would differ in runtime/pyodide-snapshot.bin. The snapshot is a pure
# function of its inputs' *behaviour*, so a build reuses one made from byte-identical inputs:
# from the cache folder or from the previous bundle (its manifest's ``runtime.snapshot_key``).
# Only a build with neither makes a new one. A snapshot comes with the stdlib zip its restore
# mounts (snapshot.SNAPSHOT_STDLIB_PATH): the snapshot holds zipimport's table of that very zip,
# so the two are stored and restored only as a pair, both named by both sha256s
# (``snapshots/<key>.<snapshot sha256>.<zip sha256>.bin`` and ``.zip``; the ``.bin`` is written
# last, so a half-stored pair is never found).
# All of runtime/ (the snapshot is made by the runtime's own python.js / snapshot.js, which may
# move between modules), minus the pair itself.
_SNAPSHOT_INPUTS = ("runtime/", "vendor/pyodide/", "py/", "model/tokenizer.json")


def snapshot_key(root: Path, max_length: int) -> str:
    """sha256 over everything make_snapshot.mjs reads in the bundle being built ``root``, the
    scripts themselves, the codecs the restore's zip keeps, the Node version and the token cap."""
    import shutil
    import subprocess

    from .snapshot import SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH, script_files
    from .stdlib import KEEP

    h = hashlib.sha256(f"websem-snapshot\x00{max_length}\x00".encode())
    node = shutil.which("node")
    if node:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout
        h.update(version.strip().encode() + b"\x00")
    for script in script_files():
        h.update(script.read_bytes() + b"\x00")
    h.update("\x00".join(KEEP).encode() + b"\x00")
    for p in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix()
        wanted = any(rel == s or (s.endswith("/") and rel.startswith(s)) for s in _SNAPSHOT_INPUTS)
        if wanted and rel not in (SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH) and p.is_file():
            h.update(rel.encode() + b"\x00" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def restore_snapshot(root: Path, key: str, cache_dir: Path | None, previous: Path | None,
                     snapshot_rel: str, stdlib_rel: str) -> bool:
    """Copy a snapshot made from the same inputs (``key``) and the stdlib zip made with it into
    ``root`` (at ``snapshot_rel`` and ``stdlib_rel``); True if a pair was found. Both files of a
    candidate are checked against their recorded sha256 first (a corrupt or incomplete pair is
    ignored), so a snapshot never lands next to another snapshot's zip."""
    import shutil

    from websem.export.source import sha256_file

    candidates: list[list[tuple[Path, str, str]]] = []  # per pair: (source, sha256, bundle path)
    if cache_dir is not None:
        for p in sorted((Path(cache_dir) / "snapshots").glob(f"{key}.*.bin")):
            parts = p.name.split(".")
            if len(parts) == 4:
                candidates.append([(p, parts[1], snapshot_rel), (p.with_suffix(".zip"), parts[2], stdlib_rel)])
    if previous is not None:
        try:
            manifest = json.loads((Path(previous) / "manifest.json").read_text("utf-8"))
            runtime = manifest.get("runtime", {})
            if runtime.get("snapshot_key") == key and runtime.get("snapshot_stdlib") == stdlib_rel:
                candidates.append([(Path(previous) / rel, manifest["files"][rel]["sha256"], rel)
                                   for rel in (snapshot_rel, stdlib_rel)])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    for pair in candidates:
        parts: list[tuple[Path, Path]] = []
        try:
            for path, sha, rel in pair:
                if sha256_file(path) != sha:
                    break
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                shutil.copyfile(path, tmp)
                parts.append((tmp, target))
                if sha256_file(tmp) != sha:  # changed while copying (a concurrent writer)
                    break
            else:
                for tmp, target in parts:
                    os.replace(tmp, target)
                return True
        except OSError:
            pass
        for tmp, _ in parts:
            tmp.unlink(missing_ok=True)
    return False


def store_snapshot(root: Path, key: str, cache_dir: Path | None, snapshot_rel: str, stdlib_rel: str) -> None:
    """Keep the freshly made snapshot and its stdlib zip in the cache folder, as a pair
    (atomically; errors are not fatal)."""
    import shutil

    from websem.export.source import sha256_file

    snap, zipped = root / snapshot_rel, root / stdlib_rel
    if cache_dir is None or not snap.is_file() or not zipped.is_file():
        return
    folder = Path(cache_dir) / "snapshots"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{key}.{sha256_file(snap)}.{sha256_file(zipped)}"
        if (folder / f"{stem}.bin").is_file():
            return
        # The zip first: restore_snapshot looks for .bin files, so it never finds half a pair.
        for src, suffix in ((zipped, ".zip"), (snap, ".bin")):
            tmp = folder / f".{key}.{os.getpid()}{suffix}.part"
            shutil.copyfile(src, tmp)
            os.replace(tmp, folder / f"{stem}{suffix}")
    except OSError:
        pass
