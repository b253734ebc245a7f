"""The CPU reference reader of a partitioned bundle (``manifest.index.layout`` "partitioned").

``websem query`` (web/query.py ``Searcher``) runs a partitioned bundle through this module and
the browser runs the same steps in JS (web/src/partitioned.js); docs/architecture.md defines the
files and the arithmetic, and both sides compute it bit for bit:

- at load, the always-loaded files (``manifest.index.files``: table.json, centroids.bin,
  docmap.bin) are read and verified against ``manifest.files`` (size and sha256);
- dense: the query's score against every centroid, the top ``nprobe`` lists (score descending,
  then list ascending); with ``ivf.code`` "binary" (the default) every row of those lists is
  scored by its sign-bit code (``code_scores``), the best ``max(ivf.rerank, limit)`` rows (score
  descending, then chunk ascending) are rescored exactly from the rows blocks holding them (each
  list's rows shard read by byte range, one read per run of consecutive blocks, every block
  checked against the sha256 its codes shard lists), and only those exact scores rank; with code
  "rows" every row of the probed lists is scored exactly, like the flat index. Document = max
  over its exactly scored chunks;
- lexical: each query term's shard (the last shard whose first term is <= the term in code point
  order), postings with their chunk lengths, BM25 summed exactly like ``bm25.LexicalIndex.scores``;
- rows: the fragments holding the result documents (their ids, titles, urls and chunk texts).

Every shard read whole is verified against ``manifest.files``, every rows block against its
codes shard's sha256, the first time it is read, and kept, parsed, in a least-recently-used cache
bounded by bytes held (a block under the key ``index/ivf/{l}.bin#{k}``, as the JS runtime); a
missing or corrupt shard or block fails that query with a ``WebsemError`` naming the file (and
the block), and the index stays usable for queries that do not need it. Dot products are
float64 sums in index order (``ordered_dots``): the same bits as the JS loops, whichever rows a
query happens to score together.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import struct
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from websem.text.bm25 import DocHit, aggregate_docs
from websem.text.errors import WebsemError

__all__ = ["CACHE_BYTES", "PartitionedIndex", "ShardCache", "check_file", "code_lut", "code_scores", "ordered_dots",
           "read_verified"]

CACHE_BYTES = 64 * 1024 * 1024  # default shard cache budget, as the JS runtime's load({cacheBytes})
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


# --------------------------------------------------------------------------- the index


class PartitionedIndex:
    """A verified partitioned bundle's index, read lazily shard by shard."""

    def __init__(self, bundle: Path, manifest: Mapping, *, cache_bytes: int = CACHE_BYTES,
                 nprobe: int | None = None, rerank: int | None = None) -> None:
        """``manifest``: the bundle's checked manifest (``web.query.check_manifest``).
        ``nprobe``: lists probed per query (None = ``manifest.index.ivf.nprobe``); ``rerank``:
        binary-code candidates rescored exactly (None = ``manifest.index.ivf.rerank``)."""
        self.bundle = Path(bundle)
        self.files = manifest["files"]
        index = manifest["index"]
        self.shards = index["shards"]
        self.dims = int(index["dims"])
        self.n_chunks = int(index["chunks"])
        self.n_docs = int(index["docs"])
        self.vector_dtype = index["vector_dtype"]
        self.nlist = int(index["ivf"]["nlist"])
        self.nprobe = int(index["ivf"]["nprobe"]) if nprobe is None else nprobe
        self.code = index["ivf"].get("code", "rows")
        self.rerank = int(index["ivf"].get("rerank", 0)) if rerank is None else rerank
        if rerank is not None and (isinstance(rerank, bool) or not isinstance(rerank, int) or rerank < 1):
            raise WebsemError(f"websem: rerank={rerank!r}; it must be an integer >= 1")
        if self.code not in CODES or (self.code == "binary" and (self.rerank < 1 or "codes" not in self.shards)):
            raise WebsemError(f"websem: manifest.index.ivf.code {self.code!r} (rerank {self.rerank}) is not "
                              f"readable; allowed: {', '.join(CODES)} (binary with rerank >= 1 and "
                              f"shards.codes); {_REBUILD}")
        self.block_rows = index["ivf"].get("block_rows")
        if isinstance(self.block_rows, bool) or not isinstance(self.block_rows, int) or self.block_rows < 1:
            raise WebsemError(f"websem: manifest.index.ivf.block_rows {self.block_rows!r} is not an integer >= 1 "
                              f"(a partitioned bundle from an older websem?); {_REBUILD}")
        self.record = record_size(self.vector_dtype, self.dims)
        if not (isinstance(self.nprobe, int) and 1 <= self.nprobe <= self.nlist):
            raise WebsemError(f"websem: nprobe={nprobe!r}; it must be an integer from 1 to nlist ({self.nlist})")
        self.cache = ShardCache(cache_bytes)
        files = index["files"]
        try:
            table = json.loads(read_verified(self.bundle, files["table"], self.files))
        except (ValueError, UnicodeDecodeError) as e:
            raise WebsemError(f"websem: {files['table']} is not valid JSON ({e}); {_REBUILD}") from None
        self._check_table(table, files["table"])
        self.table = table
        self.sizes = [int(x) for x in table["ivf"]["sizes"]]
        lex = table["lexical"]
        self.k1, self.b, self.avgdl = lex["k1"], lex["b"], lex["avgdl"]
        self.analyzer = lex.get("analyzer")
        self._first_terms = [s[0] for s in lex["shards"]]
        self._shard_start = [0]
        for _, n in lex["shards"]:
            self._shard_start.append(self._shard_start[-1] + int(n))
        self._fragments = [int(x) for x in table["fragments"]]
        self.facets = table.get("facets") or {}
        raw = read_verified(self.bundle, files["centroids"], self.files)
        if len(raw) != self.nlist * self.dims * 2:
            raise WebsemError(f"websem: {files['centroids']} has {len(raw)} bytes, expected "
                              f"{self.nlist}x{self.dims}x2 (float16); {_REBUILD}")
        self._centroids_t = np.ascontiguousarray(
            np.frombuffer(raw, dtype="<f2").reshape(self.nlist, self.dims).astype(np.float64).T)
        raw = read_verified(self.bundle, files["docmap"], self.files)
        docmap = np.frombuffer(raw, dtype="<u4").astype(np.int64)
        if (len(docmap) != self.n_docs + 1 or docmap[0] != 0 or docmap[-1] != self.n_chunks
                or np.any(np.diff(docmap) < 1)):
            raise WebsemError(f"websem: {files['docmap']} is not {self.n_docs + 1} ascending chunk offsets "
                              f"from 0 to {self.n_chunks}; {_REBUILD}")
        self.docmap = docmap
        self.chunk_doc = np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(docmap))
        self._chunk_doc_list = array("q", self.chunk_doc.tobytes())  # Python ints for aggregate_docs

    def _check_table(self, t: object, rel: str) -> None:
        ok = (isinstance(t, dict) and t.get("format") == TABLE_FORMAT and t.get("format_version") == TABLE_VERSION)
        if not ok:
            got = (t.get("format"), t.get("format_version")) if isinstance(t, dict) else None
            old = isinstance(t, dict) and t.get("format") == TABLE_FORMAT and t.get("format_version") == 1
            why = " (version 1 came from an older websem: its rows shards have no blocks)" if old else ""
            raise WebsemError(f"websem: {rel} is not a websem-partitioned version {TABLE_VERSION} table "
                              f"(got {got!r}){why}; {_REBUILD}")
        try:
            ivf, lex, frags = t["ivf"], t["lexical"], t["fragments"]
            good = (t["chunks"] == self.n_chunks and t["docs"] == self.n_docs and t["dims"] == self.dims
                    and t["vector_dtype"] == self.vector_dtype and ivf["nlist"] == self.nlist
                    and len(ivf["sizes"]) == self.nlist and sum(ivf["sizes"]) == self.n_chunks
                    and lex["n_chunks"] == self.n_chunks and frags and frags[0] == 0
                    and all(a < b for a, b in zip(frags, frags[1:], strict=False)) and frags[-1] < max(self.n_docs, 1)
                    and sum(int(n) for _, n in lex["shards"]) == lex["n_terms"]
                    and isinstance(lex["avgdl"], (int, float)))
        except (KeyError, TypeError, ValueError):
            good = False
        if not good:
            raise WebsemError(f"websem: {rel} does not match manifest.index (counts, dims, dtype or lists) "
                              f"or misses an entry; {_REBUILD}")
        if self.vector_dtype not in IVF_DTYPES.values():
            raise WebsemError(f"websem: a partitioned index stores float16 or int8 vectors, not "
                              f"{self.vector_dtype!r}; {_REBUILD}")

    # ------------------------------------------------------------------ shards

    def _shard(self, kind: str, number: int, parse: Callable[[bytes, str], tuple[object, int]]) -> object:
        rel = self.shards[kind].replace("{}", str(number))

        def load() -> tuple[object, int, int]:
            data = read_verified(self.bundle, rel, self.files)
            value, held = parse(data, rel)
            return value, max(held, len(data)), len(data)

        return self.cache.get(rel, load)

    def ivf_list(self, lst: int) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk ids, rows transposed)`` of IVF list ``lst``'s whole rows shard (code "rows";
        verified, cached)."""
        def parse(data: bytes, rel: str):
            chunks, rows_t = parse_ivf(data, rel, lst=lst, dims=self.dims, dtype=self.vector_dtype,
                                       count=self.sizes[lst], block_rows=self.block_rows, n_chunks=self.n_chunks)
            return (chunks, rows_t), chunks.nbytes + rows_t.nbytes

        return self._shard("ivf", lst, parse)

    def codes_list(self, lst: int) -> tuple[np.ndarray, np.ndarray, bytes]:
        """``(chunk ids, codes, block sha256s)`` of IVF list ``lst``'s codes shard (verified, cached)."""
        def parse(data: bytes, rel: str):
            chunks, codes, digests = parse_codes(data, rel, lst=lst, dims=self.dims, count=self.sizes[lst],
                                                 block_rows=self.block_rows, n_chunks=self.n_chunks)
            return (chunks, codes, digests), chunks.nbytes + codes.nbytes + len(digests)

        return self._shard("codes", lst, parse)

    def block_range(self, lst: int, k: int) -> tuple[int, int]:
        """The inclusive byte range ``(start, end)`` of block ``k`` in list ``lst``'s rows shard."""
        count, b = self.sizes[lst], self.block_rows
        base = IVF_HEADER + 4 * count
        return base + k * b * self.record, base + min((k + 1) * b, count) * self.record - 1

    def row_blocks(self, lst: int, blocks: Sequence[int]) -> dict[int, np.ndarray]:
        """Blocks ``blocks`` (ascending, distinct) of list ``lst``'s rows: ``{k: float64 rows
        [rows in block, dims]}``. Cached blocks come from the cache; the others are read from the
        rows shard by byte range, one read per run of consecutive blocks, and each is checked
        against the sha256 the (verified) codes shard lists for it before it is used or cached."""
        rel = self.shards["ivf"].replace("{}", str(lst))
        out: dict[int, np.ndarray] = {}
        missing = []
        for k in blocks:
            got = self.cache.peek(f"{rel}#{k}")
            if got is None:
                missing.append(k)
            else:
                out[k] = got
        if not missing:
            return out
        info = self.files.get(rel)
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str) and isinstance(info.get("size"), int)):
            raise WebsemError(f"websem: {self.bundle / 'manifest.json'} lists no file {rel!r} (with its sha256 "
                              f"and size); the bundle is incomplete, {_REBUILD}")
        digests = self.codes_list(lst)[2]
        code_rel = self.shards["codes"].replace("{}", str(lst))
        runs: list[list[int]] = []
        for k in missing:  # runs of consecutive block numbers: one read (one HTTP range) each
            if runs and runs[-1][-1] == k - 1:
                runs[-1].append(k)
            else:
                runs.append([k])
        try:
            f = open(self.bundle / rel, "rb")
        except FileNotFoundError:
            raise WebsemError(f"websem: bundle file {rel} is missing from {self.bundle}; upload the complete "
                              "bundle folder (`websem build` output), or rebuild it with `websem build`") from None
        with f:
            for run in runs:
                start, end = self.block_range(lst, run[0])[0], self.block_range(lst, run[-1])[1]
                f.seek(start)
                data = f.read(end - start + 1)
                self.cache.note_read(rel, len(data), (start, end))
                if len(data) != end - start + 1:
                    raise WebsemError(f"websem: {rel} bytes {start}-{end} (blocks {run[0]}-{run[-1]}) came back "
                                      f"as {len(data)} bytes; the file is truncated or from another build: copy "
                                      f"the whole bundle folder again or {_REBUILD}")
                for k in run:
                    a, b = self.block_range(lst, k)
                    raw = data[a - start: b - start + 1]
                    if hashlib.sha256(raw).digest() != digests[32 * k: 32 * k + 32]:
                        raise WebsemError(f"websem: {rel} block {k} (bytes {a}-{b}) does not match the sha256 in "
                                          f"{code_rel}; the file is corrupt, tampered with or from another build: "
                                          f"copy the whole bundle folder again or {_REBUILD}")
                    rows = parse_records(raw, len(raw) // self.record, dims=self.dims, dtype=self.vector_dtype)
                    out[k] = rows
                    self.cache.put(f"{rel}#{k}", rows, max(rows.nbytes, len(raw)))
        return out

    def lex_shard(self, j: int) -> LexShard:
        """Lexical shard ``j`` (verified, cached)."""
        n_terms = self._shard_start[j + 1] - self._shard_start[j]

        def parse(data: bytes, rel: str):
            return LexShard(data, rel, shard=j, first_term=self._shard_start[j], n_terms=n_terms), 2 * len(data)

        return self._shard("lexical", j, parse)

    def fragment(self, f: int) -> dict:
        """Fragment ``f``: ``{"first", "docs": [...]}`` (verified, cached)."""
        first = self._fragments[f]
        last = self._fragments[f + 1] if f + 1 < len(self._fragments) else self.n_docs

        def parse(data: bytes, rel: str):
            try:
                frag = json.loads(data)
                ok = frag["first"] == first and len(frag["docs"]) == last - first and all(
                    len(doc["chunks"]) == self.docmap[first + i + 1] - self.docmap[first + i]
                    for i, doc in enumerate(frag["docs"]))
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise _bad(rel, f"not the documents {first}..{last - 1} table.json places there")
            return frag, 3 * len(data)

        return self._shard("fragments", f, parse)

    # ------------------------------------------------------------------ queries

    def probe(self, q: np.ndarray) -> list[int]:
        """The lists to score for query vector ``q``: top ``nprobe`` centroid scores, ties to
        the lower list."""
        s = ordered_dots(self._centroids_t, np.asarray(q, dtype=np.float32).astype(np.float64))
        order = np.lexsort((np.arange(self.nlist), -s))
        return [int(x) for x in order[: self.nprobe]]

    def dense_docs(self, q: np.ndarray, limit: int, allowed: Iterable[int] | None = None) -> list[DocHit]:
        """Top ``limit`` documents by their best scored chunk in the probed lists, best first
        (ties: lower document), documents outside ``allowed`` (None = all) dropped before the
        cut; a document's chunk is the lowest-numbered chunk reaching its score."""
        q64 = np.asarray(q, dtype=np.float32).astype(np.float64)
        allowed_ids = None if allowed is None else np.fromiter(allowed, dtype=np.int64)
        if self.code == "binary":
            chunks, scores = self._reranked(q64, max(self.rerank, limit), allowed_ids)
        else:
            chunk_parts, score_parts = [], []
            for lst in self.probe(q):
                lchunks, rows_t = self.ivf_list(lst)
                if len(lchunks):
                    chunk_parts.append(lchunks)
                    score_parts.append(ordered_dots(rows_t, q64))
            if not chunk_parts:
                return []
            chunks = np.concatenate(chunk_parts)
            scores = np.concatenate(score_parts)
        docs = self.chunk_doc[chunks]
        if allowed_ids is not None:
            keep = np.isin(docs, allowed_ids)
            chunks, scores, docs = chunks[keep], scores[keep], docs[keep]
        by_doc = np.lexsort((chunks, -scores, docs))  # per document: best score, then lowest chunk
        firsts = by_doc[np.r_[True, docs[by_doc][1:] != docs[by_doc][:-1]]] if len(by_doc) else by_doc
        order = firsts[np.lexsort((docs[firsts], -scores[firsts]))][:limit]
        return [DocHit(int(docs[i]), float(scores[i]), int(chunks[i])) for i in order]

    def _reranked(self, q64: np.ndarray, n_candidates: int,
                  allowed_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk ids, exact scores)`` of the best ``n_candidates`` probed rows by code score
        (score descending, then chunk ascending; rows of documents outside ``allowed_ids``
        dropped first), rescored from the rows blocks that hold them."""
        lut = code_lut(q64, (self.dims + 7) // 8)
        chunk_parts, score_parts, list_parts, pos_parts = [], [], [], []
        for lst in self.probe(q64):
            lchunks, codes, _ = self.codes_list(lst)
            if len(lchunks):
                chunk_parts.append(lchunks)
                score_parts.append(code_scores(codes, lut))
                list_parts.append(np.full(len(lchunks), lst, dtype=np.int64))
                pos_parts.append(np.arange(len(lchunks), dtype=np.int64))
        if not chunk_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        chunks, approx, lists, pos = (np.concatenate(p) for p in (chunk_parts, score_parts, list_parts, pos_parts))
        if allowed_ids is not None:
            keep = np.isin(self.chunk_doc[chunks], allowed_ids)
            chunks, approx, lists, pos = chunks[keep], approx[keep], lists[keep], pos[keep]
        top = np.lexsort((chunks, -approx))[:n_candidates]  # chunk ids are unique: a total order
        chunks, lists, pos = chunks[top], lists[top], pos[top]
        exact = np.empty(len(chunks), dtype=np.float64)
        for lst in sorted(set(lists.tolist())):  # each list's needed blocks at once
            sel = np.flatnonzero(lists == lst)
            blocks = pos[sel] // self.block_rows
            got = self.row_blocks(lst, sorted(set(blocks.tolist())))
            rows = np.stack([got[int(k)][int(p) - int(k) * self.block_rows] for k, p in zip(blocks, pos[sel],
                                                                                           strict=True)])
            exact[sel] = ordered_dots(np.ascontiguousarray(rows.T), q64)
        return chunks, exact

    def lexical_docs(self, terms: Sequence[str], allowed: Iterable[int] | None = None,
                     limit: int | None = None) -> list[DocHit]:
        """Documents matching at least one query term (analyzed ``terms``, repeats count), best
        first (ties: lower document); ``limit`` None = all of them. Scores equal the flat
        index's ``LexicalIndex.scores`` bit for bit (same idf, avgdl, order of additions)."""
        plan: dict[str, int] = {}
        for t in terms:
            plan[t] = plan.get(t, 0) + 1
        acc: dict[int, float] = {}
        k1, b, avgdl = self.k1, self.b, self.avgdl
        for term, qtf in plan.items():
            j = bisect.bisect_right(self._first_terms, term) - 1  # str order is code point order
            if j < 0:
                continue
            shard = self.lex_shard(j)
            tid = shard.term_ids.get(term)
            if tid is None:
                continue
            idf = shard.idf[tid]
            get = acc.get
            for c, tf, dl in zip(*shard.postings_of(tid), strict=True):
                norm = k1 * (1 - b + b * dl / avgdl) if avgdl > 0 else k1
                acc[c] = get(c, 0.0) + qtf * (idf * tf / (tf + norm))
        allowed_set = None if allowed is None else frozenset(allowed)
        return aggregate_docs(acc, self._chunk_doc_list, allowed=allowed_set, k=limit)

    def rows(self, hits: Sequence) -> list[dict]:
        """``{"id", "title", "url", "anchor", "text"}`` for each hit (``.doc``, ``.chunk``): its
        document from its fragment and its best chunk, what ``Ranker.render`` takes."""
        out = []
        for h in hits:
            d, c = int(h.doc), int(h.chunk)
            if not (0 <= d < self.n_docs and self.docmap[d] <= c < self.docmap[d + 1]):
                raise WebsemError(f"websem: hit (doc {d}, chunk {c}) is not a chunk of that document")
            f = bisect.bisect_right(self._fragments, d) - 1
            frag = self.fragment(f)
            doc = frag["docs"][d - frag["first"]]
            chunk = doc["chunks"][c - int(self.docmap[d])]
            out.append({"id": doc.get("id"), "title": doc.get("title"), "url": doc.get("url"),
                        "anchor": chunk.get("anchor"), "text": chunk.get("text")})
        return out

    def stats(self) -> dict:
        """The layout, IVF settings and shard cache counters."""
        return {"layout": "partitioned", "nlist": self.nlist, "nprobe": self.nprobe, "code": self.code,
                "rerank": self.rerank, "block_rows": self.block_rows,
                "cache_budget": self.cache.budget, **{f"cache_{k}": v for k, v in self.cache.stats().items()}}
