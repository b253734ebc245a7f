"""Precompressed copies of bundle files: ``FILE.br`` (brotli) and ``FILE.gz`` (gzip) next to FILE.

A static host (or `websem serve`) sends a copy with ``Content-Encoding: br|gzip`` to a browser
that accepts it; the browser decodes it before the runtime sees the bytes, so the runtime's sha256
check (``manifest.files``) still covers exactly the original file. The copies are listed in
``manifest.encodings`` (``{FILE: {"br": {"size", "sha256", "by"}, "gz": {...}}}``), so a server
can tell a current copy from a stale one. Layout and hosting recipes: docs/hosting.md.

Rule (``_worth_it``): every file but manifest.json (which cannot list a copy of itself) is tried,
and a copy is kept when it is at least 10% smaller than the original (``MIN_SAVING``) or at least
100 kB smaller (``MIN_SAVED_BYTES``: what counts on the wire is bytes; the int8 model body saves
11%, Cranfield's float16 vectors 8%, 0.11 MB). Text (JS, JSON, Python, HTML, the tokenizer), the
wasm binaries and the stdlib zip (its members stored, build/stdlib.py) always pass; an
already-compressed file does not, and a host then sends the original.
A partitioned index's rows shards (``index/ivf/*.bin``, ``NEVER_COMPRESSED``) get no copy at all:
a query reads blocks of them by HTTP byte range, which must address the identity bytes (int8 rows
keep ~90% of their size under brotli anyway).

Settings (``brotli_quality``): brotli quality 11 for the runtime's files (``vendor/``, ``runtime/``:
the two wasm binaries, the Pyodide snapshot, the JS and Python) whatever their size, and for every
other file up to ``BIG`` (4 MB); quality 9 for the larger corpus and model files. On the wasm
binaries and the snapshot quality 11 saves 11-15% (1.2 MB of the 22.3 MB a Cranfield visitor
fetched at q9), on float16 vectors and chunk text 5-9%, on the int8 model 0.2%. It runs at 0.1 to
0.4 MB/s: the runtime's three big files take ~2 min of CPU, once per machine (their bytes are the
same in every bundle of a websem version and model, and copies are reused, below); the model
would add 66 s for 0.04 MB, and a corpus file's cost grows with the corpus (docs/hosting.md has
the table). A partitioned index's shards (``index/ivf/``, ``index/lex/``, ``index/frag/``:
thousands of small files) get quality 9 whatever their size: at q11 the 3,000 shards of a
100k-chunk bundle took ~1,000 s on this 2-core box. Files are compressed on a thread per core
(brotli and zlib release the GIL). gzip level 9 with mtime 0 and no file name, so the same input gives the same bytes.

Reuse: compressing is a pure function of (input bytes, settings, library version), recorded in each
entry as ``by``. A build reuses a copy made with the same ``by`` from the cache folder
(``compressed/<key>``) or from the previous bundle at ``--out`` (its manifest.encodings), like the
embedding and snapshot caches (build/cache.py); a candidate whose decompressed bytes do not hash
to the input is ignored. Rebuilds stay byte-identical.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import brotli

__all__ = ["BIG", "ENCODINGS", "MIN_SAVED_BYTES", "MIN_SAVING", "RUNTIME_PREFIXES", "brotli_quality", "compress_bytes",
           "precompress", "settings"]

# manifest.encodings key -> file suffix (Content-Encoding br is "br", gzip is "gz")
ENCODINGS = {"br": ".br", "gz": ".gz"}
MIN_SAVING = 0.10  # a copy is kept when it is at least 10% smaller than its original ...
MIN_SAVED_BYTES = 100_000  # ... or at least this many bytes smaller
BIG = 4_000_000  # above this, brotli quality 9 instead of 11, except for the runtime's files
RUNTIME_PREFIXES = ("vendor/", "runtime/")  # quality 11 whatever the size (module docstring)
GZIP_LEVEL = 9
_CACHE_SUBDIR = "compressed"


def _worth_it(copy_size: int, size: int) -> bool:
    """The size rule: is a copy of ``copy_size`` bytes worth keeping next to ``size`` bytes?"""
    saved = size - copy_size
    return saved >= MIN_SAVING * size or saved >= MIN_SAVED_BYTES


SHARD_PREFIXES = ("index/ivf/", "index/lex/", "index/frag/")  # partitioned index shards: always q9
NEVER_COMPRESSED = ("index/ivf/",)  # rows shards, read by byte range: identity bytes only


def brotli_quality(size: int, rel: str = "") -> int:
    """The brotli quality of the copy of the bundle file ``rel`` of ``size`` bytes (module docstring)."""
    if rel.startswith(RUNTIME_PREFIXES):
        return 11
    return 9 if size > BIG or rel.startswith(SHARD_PREFIXES) else 11


def settings(encoding: str, size: int, rel: str = "") -> str:
    """The ``by`` of a copy of the file ``rel`` of ``size`` bytes: what made it (library, version,
    level). Equal ``by`` and equal input give equal bytes, which is what makes reuse safe."""
    if encoding == "br":
        return f"brotli {brotli.__version__} q{brotli_quality(size, rel)}"
    if encoding == "gz":
        return f"zlib {zlib.ZLIB_RUNTIME_VERSION} level {GZIP_LEVEL}"
    raise ValueError(f"websem: unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")


def compress_bytes(data: bytes, encoding: str, rel: str = "") -> bytes:
    """``data`` (the file ``rel``) compressed as ``encoding`` (br or gz) with the settings of
    :func:`settings`."""
    if encoding == "br":
        return brotli.compress(data, quality=brotli_quality(len(data), rel))
    if encoding == "gz":
        # gzip.compress(mtime=0) writes no file name and a zero timestamp: deterministic bytes.
        return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    raise ValueError(f"websem: unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")


def _decompress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return brotli.decompress(data)
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        return f.read()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_key(input_sha: str, by: str) -> str:
    return _sha(f"websem-compress\0{by}\0{input_sha}".encode())


def _valid(blob: bytes, encoding: str, input_sha: str) -> bool:
    """True when ``blob`` decompresses to the input (a corrupt or foreign copy is ignored)."""
    try:
        return _sha(_decompress(blob, encoding)) == input_sha
    except (OSError, EOFError, zlib.error, brotli.error):
        return False


def _previous_copies(previous: Path | None) -> dict[tuple[str, str, str], Path]:
    """(input sha256, encoding, by) -> path of a copy in the previous bundle at --out."""
    found: dict[tuple[str, str, str], Path] = {}
    if previous is None:
        return found
    try:
        manifest = json.loads((Path(previous) / "manifest.json").read_text("utf-8"))
        files = manifest.get("files", {})
        for rel, entries in (manifest.get("encodings") or {}).items():
            sha = files.get(rel, {}).get("sha256")
            for enc, entry in entries.items():
                if sha and enc in ENCODINGS and isinstance(entry, dict) and "by" in entry:
                    found[(sha, enc, entry["by"])] = Path(previous) / (rel + ENCODINGS[enc])
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    return found


def _store(cache: Path, key: str, blob: bytes) -> None:
    """Keep a copy in the cache folder (atomically; a full or read-only cache is not fatal)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        dst = cache / key
        if dst.is_file():
            return
        tmp = cache / f".{key}.{os.getpid()}.part"
        tmp.write_bytes(blob)
        os.replace(tmp, dst)
    except OSError:
        pass


def _copy_for(data: bytes, rel: str, sha: str, enc: str, by: str, cache: Path | None,
              previous: dict[tuple[str, str, str], Path], stats: dict[str, int]) -> bytes:
    key = _cache_key(sha, by)
    candidates = ([cache / key] if cache is not None else []) + (
        [previous[(sha, enc, by)]] if (sha, enc, by) in previous else [])
    for path in candidates:
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        if _valid(blob, enc, sha):
            stats["reused"] += 1
            if cache is not None and path != cache / key:
                _store(cache, key, blob)
            return blob
        stats["rejected"] += 1
    blob = compress_bytes(data, enc, rel)
    stats["compressed"] += 1
    if cache is not None:
        _store(cache, key, blob)
    return blob


def precompress(root: Path, files: dict[str, dict], *, cache_dir: Path | None = None,
                previous: Path | None = None, skip: Iterable[str] = ("manifest.json",),
                progress: bool = False) -> tuple[dict, dict]:
    """Write ``FILE.br`` / ``FILE.gz`` next to each file of ``files`` (``manifest.files``: rel ->
    {sha256, size}) under ``root`` where the copy is worth it (the module docstring's rule).

    ``cache_dir``: the build cache folder (copies are kept in ``cache_dir/compressed``), None for
    none; ``previous``: the previous bundle at --out, or None. Returns ``(encodings, stats)``:
    the ``manifest.encodings`` table (rel -> {enc: {size, sha256, by}}, sorted) and counts of
    copies reused / compressed / rejected (a corrupt cache or previous-bundle copy). ``progress``:
    a bar (or plain lines off a terminal) over the files, for bundles of many shards."""
    from .progress import progress as report

    cache = Path(cache_dir) / _CACHE_SUBDIR if cache_dir is not None else None
    prev = _previous_copies(previous)
    skip = set(skip)
    stats = {"reused": 0, "compressed": 0, "rejected": 0}
    todo = [rel for rel in sorted(files)
            if rel not in skip and files[rel].get("size") and not rel.startswith(NEVER_COMPRESSED)]

    def one(rel: str) -> tuple[str, dict, dict[str, int]]:
        # Per-file stats, summed by the caller: the threads share nothing but the cache folder,
        # whose writes are atomic (_store).
        mine = {"reused": 0, "compressed": 0, "rejected": 0}
        data = (root / rel).read_bytes()
        sha = files[rel]["sha256"]
        kept: dict = {}
        for enc, suffix in ENCODINGS.items():
            by = settings(enc, len(data), rel)
            blob = _copy_for(data, rel, sha, enc, by, cache, prev, mine)
            if not _worth_it(len(blob), len(data)):
                continue  # not worth a second file: the host sends the original
            (root / (rel + suffix)).write_bytes(blob)
            kept[enc] = {"size": len(blob), "sha256": _sha(blob), "by": by}
        return rel, kept, mine

    encodings: dict[str, dict] = {}
    # Largest first, so the runtime's q11 wasm/snapshot copies start at once and overlap the rest.
    order = sorted(todo, key=lambda r: -int(files[r]["size"]))
    with report("precompressing", len(files), unit="files", enabled=progress and len(files) > 500) as bar, \
            ThreadPoolExecutor(max_workers=max(1, min(len(order), os.cpu_count() or 1))) as pool:
        bar.advance(len(files) - len(todo))
        for rel, kept, mine in pool.map(one, order):
            bar.advance(1)
            for k, v in mine.items():
                stats[k] += v
            if kept:
                encodings[rel] = kept
    return dict(sorted(encodings.items())), stats
