"""The shard files of a partitioned bundle as the CPU reference reads them (web/partitioned.py).

Verification against ``manifest.files`` (size and sha256), the byte-bounded LRU that holds parsed
shards, the dot-product and binary-code arithmetic that both the CPU and the JS runtime compute
bit for bit, and the parsers of the rows, codes and lexical shards (formats: docs/architecture.md;
the JS twins are web/src/shards.js and web/src/ivf.js). Split from web/partitioned.py, which
composes them into the index and its queries.
"""
from __future__ import annotations

import hashlib
import json
import struct
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

__all__ = ["CACHE_BYTES", "ShardCache", "check_file", "code_lut", "code_scores", "ordered_dots",
           "read_verified"]

CACHE_BYTES = 16 * 1024 * 1024  # default shard cache budget, as the JS runtime's load({cacheBytes})
TABLE_FORMAT = "websem-partitioned"
TABLE_VERSION = 2  # 2: rows shards in blocks with sha256s in the codes shards (build/ivf.py)
IVF_MAGIC = b"WSIVF\x00\x00\x02"
CODE_MAGIC = b"WSCOD\x00\x00\x02"
IVF_HEADER = 28  # magic, u32 count, dims, list, dtype, block_rows
CODE_HEADER = 24  # magic, u32 count, dims, list, block_rows
CODES = ("binary", "rows")  # manifest.index.ivf.code (absent: "rows", the first partitioned format)
LEX_MAGIC = b"WSLEX\x00\x00\x01"
LEX_SHARD_FORMAT = "websem-bm25-shard"
IVF_DTYPES = {0: "float16", 1: "int8"}  # the u32 dtype code of an IVF list file
_REBUILD = "rebuild the bundle with `websem build`"


# --------------------------------------------------------------------------- verified files


def check_file(bundle: Path, rel: str, info: Mapping | None, data: bytes | None = None) -> None:
    """Refuse ``bundle/rel`` unless it exists and has the size and sha256 its ``manifest.files``
    entry ``info`` lists. ``data``: the file's bytes when already read (else it is streamed)."""
    from websem.build.bundle import sha256_file

    p = Path(bundle) / rel
    if data is None and not p.is_file():
        raise WebsemError(f"websem: bundle file {rel} is missing from {bundle}; upload the complete bundle "
                          "folder (`websem build` output), or rebuild it with `websem build`")
    size = len(data) if data is not None else p.stat().st_size
    got = "not computed"
    if size == info.get("size"):
        got = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(p)
    if size != info.get("size") or got != info.get("sha256"):
        raise WebsemError(f"websem: {rel} failed its integrity check (sha256 {got}, {size} bytes; "
                          f"manifest.json expects {info.get('sha256')}, {info.get('size')} bytes) in "
                          f"{bundle}; the file is corrupt, tampered with or from another build: copy "
                          "the whole bundle folder again or rebuild it with `websem build`")


def read_verified(bundle: Path, rel: str, files: Mapping) -> bytes:
    """The bytes of ``bundle/rel`` after checking them against ``manifest.files`` (``files``)."""
    info = files.get(rel)
    if not (isinstance(info, dict) and isinstance(info.get("sha256"), str) and isinstance(info.get("size"), int)):
        raise WebsemError(f"websem: {Path(bundle) / 'manifest.json'} lists no file {rel!r} (with its sha256 "
                          f"and size); the bundle is incomplete, {_REBUILD}")
    try:
        data = (Path(bundle) / rel).read_bytes()
    except FileNotFoundError:
        data = None
    check_file(bundle, rel, info, data)
    return data


def ordered_dots(rows_t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``rows @ q`` for ``rows_t`` = the float64 rows transposed (``[dims, n]``): each row's sum
    accumulated in float64 in index order, ``((r0*q0 + r1*q1) + r2*q2) + ...``, as the JS loops
    do. (A BLAS mat-vec may reorder the sum and differ in the last bit, differently for
    different row sets: the partitioned index scores a subset of rows and must match the flat
    index exactly.)"""
    q = np.asarray(q, dtype=np.float64)
    acc = np.zeros(rows_t.shape[1], dtype=np.float64)
    tmp = np.empty_like(acc)
    for i in range(rows_t.shape[0]):
        np.multiply(rows_t[i], q[i], out=tmp)
        acc += tmp
    return acc


def code_lut(q: np.ndarray, n_bytes: int) -> np.ndarray:
    """The query's lookup table of binary codes: float64 ``[n_bytes, 256]``, entry ``[k, v]`` = the
    sum over bits i = 0..7 of byte value v of ``+q[8k+i]`` (bit set) or ``-q[8k+i]`` (clear),
    accumulated in i order from 0.0 (components past ``len(q)`` count as 0): the same additions,
    in the same order, as web/src/ivf.js codeLut."""
    qp = np.zeros(n_bytes * 8, dtype=np.float64)
    qp[: len(q)] = q
    bits = (np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1  # [v, i]
    lut = np.zeros((n_bytes, 256), dtype=np.float64)
    for i in range(8):
        qi = qp[i::8][:, None]  # [k, 1]
        lut += np.where(bits[None, :, i] == 1, qi, -qi)
    return lut


def code_scores(codes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """The asymmetric score of each code row (uint8 ``[n, n_bytes]``): ``sum_k lut[k, codes[:, k]]``
    accumulated in k order from 0.0, i.e. the query's dot product with the row's signs (+-1)."""
    acc = np.zeros(len(codes), dtype=np.float64)
    for k in range(codes.shape[1]):
        acc += lut[k][codes[:, k]]
    return acc


class ShardCache:
    """Parsed shards by path, least recently used first out once they hold more than ``budget``
    bytes. An entry counts what it holds in memory, never less than its file: an IVF list its
    float64 arrays (4x a float16 file), a lexical shard 2x and a parsed JSON fragment 3x its file
    (estimates of Python's object overhead)."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        if not isinstance(budget, int) or budget < 0:
            raise WebsemError(f"websem: cache_bytes={budget!r}; it must be an integer >= 0")
        self.budget = budget
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.fetched_bytes = 0
        self.requests = 0
        # (path, bytes, byte range or None) of every read, when a caller sets a list (the benchmark)
        self.log: list[tuple[str, int, tuple[int, int] | None]] | None = None

    def note_read(self, rel: str, size: int, byte_range: tuple[int, int] | None = None) -> None:
        """Count one read (a request, in the browser) of ``size`` bytes of ``rel``: the whole file,
        or the inclusive ``byte_range``."""
        self.requests += 1
        self.fetched_bytes += size
        if self.log is not None:
            self.log.append((rel, size, byte_range))

    def peek(self, rel: str) -> object | None:
        """The cached value of ``rel`` (now the most recently used) or None."""
        got = self._items.get(rel)
        if got is None:
            return None
        self._items.move_to_end(rel)
        self.hits += 1
        return got[0]

    def put(self, rel: str, value: object, held: int) -> None:
        """Keep ``value`` (``held`` bytes in memory) under ``rel``, evicting the least recently used."""
        self.misses += 1
        old = self._items.pop(rel, None)
        if old is not None:
            self.bytes -= old[1]
        self._items[rel] = (value, held)
        self.bytes += held
        while self.bytes > self.budget and self._items:
            _, (_, size) = self._items.popitem(last=False)
            self.bytes -= size

    def get(self, rel: str, load: Callable[[], tuple[object, int, int]]) -> object:
        """The cached value of ``rel``, or ``load()`` -> ``(value, held bytes, file bytes)`` (an
        exception from ``load`` leaves the cache as it was)."""
        got = self._items.get(rel)
        if got is not None:
            self._items.move_to_end(rel)
            self.hits += 1
            return got[0]
        self.misses += 1
        value, held, read = load()
        self.note_read(rel, read)
        self._items[rel] = (value, held)
        self.bytes += held
        while self.bytes > self.budget and self._items:
            _, (_, size) = self._items.popitem(last=False)
            self.bytes -= size
        return value

    def stats(self) -> dict:
        return {"bytes": self.bytes, "files": len(self._items), "hits": self.hits, "misses": self.misses,
                "fetched_bytes": self.fetched_bytes, "requests": self.requests}


# --------------------------------------------------------------------------- shards


def _u32s(data: bytes, offset: int, count: int) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4", count=count, offset=offset)


def _bad(rel: str, what: str) -> WebsemError:
    return WebsemError(f"websem: bundle file {rel} is not a valid shard ({what}); {_REBUILD}")


def _check_ids(chunks: np.ndarray, rel: str, n_chunks: int) -> None:
    """A list's chunk ids: any order (the build groups similar rows), but each < ``n_chunks`` and
    none twice."""
    if len(chunks) and (chunks.max() >= n_chunks or len(np.unique(chunks)) != len(chunks)):
        raise _bad(rel, f"a chunk id repeats or is not below {n_chunks}")


def record_size(dtype: str, dims: int) -> int:
    """Bytes of one rows-shard record: f32 scale + int8[dims], or f16[dims]."""
    return 4 + dims if dtype == "int8" else 2 * dims


def parse_records(data: bytes, count: int, *, dims: int, dtype: str) -> np.ndarray:
    """``count`` rows-shard records -> the flat index's dequantized rows, float64 ``[count, dims]``
    (``build.index.dequantize``: the same values whether read whole or by block)."""
    from websem.build.index import dequantize

    if dtype == "int8":
        rec = np.frombuffer(data, dtype=np.dtype([("s", "<f4"), ("r", "<i1", (dims,))]), count=count)
        return dequantize(rec["r"], rec["s"])
    return dequantize(np.frombuffer(data, dtype="<f2", count=count * dims).reshape(count, dims), None)


def parse_ivf(data: bytes, rel: str, *, lst: int, dims: int, dtype: str, count: int, block_rows: int,
              n_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """``(chunk ids int64 [count], rows transposed float64 [dims, count])`` of one whole rows
    shard (code "rows"); rows are the flat index's dequantized rows (``build.index.dequantize``)."""
    if len(data) < IVF_HEADER or data[:8] != IVF_MAGIC:
        raise _bad(rel, "bad magic bytes")
    n, d, got_list, code, b = struct.unpack_from("<5I", data, 8)
    if (n, d, got_list, IVF_DTYPES.get(code), b) != (count, dims, lst, dtype, block_rows):
        raise _bad(rel, f"header says {n} rows of {d} dims, list {got_list}, dtype code {code}, blocks of {b}; "
                        f"table.json says {count} rows of {dims}, list {lst}, {dtype}, blocks of {block_rows}")
    want = IVF_HEADER + 4 * n + n * record_size(dtype, d)
    if len(data) != want:
        raise _bad(rel, f"{len(data)} bytes, expected {want}")
    chunks = _u32s(data, IVF_HEADER, n).astype(np.int64)
    _check_ids(chunks, rel, n_chunks)
    rows = parse_records(memoryview(data)[IVF_HEADER + 4 * n:], n, dims=d, dtype=dtype)
    return chunks, np.ascontiguousarray(rows.T)


def parse_codes(data: bytes, rel: str, *, lst: int, dims: int, count: int, block_rows: int,
                n_chunks: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    """``(chunk ids int64 [count], codes uint8 [count, ceil(dims / 8)], the rows blocks' sha256
    digests, 32 bytes each)`` of one codes shard."""
    if len(data) < CODE_HEADER or data[:8] != CODE_MAGIC:
        raise _bad(rel, "bad magic bytes")
    n, d, got_list, b = struct.unpack_from("<4I", data, 8)
    if (n, d, got_list, b) != (count, dims, lst, block_rows):
        raise _bad(rel, f"header says {n} rows of {d} dims, list {got_list}, blocks of {b}; "
                        f"table.json says {count} rows of {dims}, list {lst}, blocks of {block_rows}")
    width = (d + 7) // 8
    blocks = -(-n // b)
    want = CODE_HEADER + 4 * n + n * width + 32 * blocks
    if len(data) != want:
        raise _bad(rel, f"{len(data)} bytes, expected {want}")
    chunks = _u32s(data, CODE_HEADER, n).astype(np.int64)
    _check_ids(chunks, rel, n_chunks)
    off = CODE_HEADER + 4 * n
    codes = np.frombuffer(data, dtype=np.uint8, count=n * width, offset=off).reshape(n, width)
    return chunks, codes, bytes(data[off + n * width:])


class LexShard:
    """One lexical shard: its terms, idf (float32) and postings with chunk lengths."""

    def __init__(self, data: bytes, rel: str, *, shard: int, first_term: int, n_terms: int) -> None:
        if len(data) < 12 or data[:8] != LEX_MAGIC:
            raise _bad(rel, "bad magic bytes")
        (hlen,) = struct.unpack_from("<I", data, 8)
        try:
            header = json.loads(data[12:12 + hlen])
            sections = header["sections"]
        except (ValueError, KeyError, TypeError):
            raise _bad(rel, "unreadable header") from None
        if (header.get("format"), header.get("format_version")) != (LEX_SHARD_FORMAT, 1):
            raise _bad(rel, f"format {header.get('format')!r} version {header.get('format_version')!r}")
        if (header.get("shard"), header.get("first_term"), header.get("n_terms")) != (shard, first_term, n_terms):
            raise _bad(rel, "its header does not match table.json")
        base = 12 + hlen

        def section(name: str) -> bytes:
            off, size = sections[name]
            return data[base + off: base + off + size]

        raw = section("terms").decode("utf-8")
        terms = raw.split("\n") if raw else []
        self.term_ids = {t: i for i, t in enumerate(terms)}
        self.idf = array("f", section("idf"))
        self.offsets = array("I", section("offsets"))
        self.postings = section("postings")
        if len(terms) != n_terms or len(self.idf) != n_terms or len(self.offsets) != n_terms + 1:
            raise _bad(rel, "truncated sections")

    def postings_of(self, term_id: int) -> tuple[list[int], list[int], list[int]]:
        """``(chunks ascending, tfs, chunk lengths)`` of one term."""
        buf, pos, end = self.postings, self.offsets[term_id], self.offsets[term_id + 1]
        vals = []
        while pos < end:  # the LEB128 varints of the posting list, in order
            b = buf[pos]
            pos += 1
            v, shift = b & 0x7F, 7
            while b & 0x80:
                b = buf[pos]
                pos += 1
                v |= (b & 0x7F) << shift
                shift += 7
            vals.append(v)
        ids, tfs, dls = [], [], []
        c, i = -1, 0
        while i < len(vals):
            v = vals[i]
            c += (v >> 1) + 1
            if v & 1:
                tf, i = 1, i + 1
            else:
                tf, i = vals[i + 1] + 2, i + 2
            ids.append(c)
            tfs.append(tf)
            dls.append(vals[i])
            i += 1
        return ids, tfs, dls
