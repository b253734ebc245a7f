"""The dense side of a partitioned index: spherical k-means centroids and the IVF list files.

Layout (docs/architecture.md, "Partitioned index"; all integers little-endian u32):

* ``index/part/centroids.bin``: float16 little-endian ``[nlist, dims]``, L2-normalised centroids;
* ``index/ivf/{l}.bin`` (rows shard): ``b"WSIVF\\x00\\x00\\x02"``, count, dims, list, dtype
  (0 float16, 1 int8), block_rows (a 28-byte header), chunk[count], then ``count`` fixed-size
  records in list order: int8 = f32 scale + int8[dims], float16 = f16[dims]. Block k = records
  ``[k * block_rows, (k + 1) * block_rows)``, the unit a query reads by byte range;
* ``index/code/{l}.bin`` (codes shard, code "binary", the default): ``b"WSCOD\\x00\\x00\\x02"``,
  count, dims, list, block_rows (24 bytes), chunk[count] (the rows shard's order), then
  ``ceil(dims / 8)`` bytes a row: the sign bits of the stored row (bit j = component j > 0,
  little-endian bit order within a byte), then the raw sha256 of each rows block.

Row order inside a list (``ROW_ORDERS``): "pca" (the default) puts rows that lie close together in
vector space into the same block, by recursive bisection along the principal axis with cuts on
block boundaries, so the few candidates a query reranks in a list share few blocks; "chunk" keeps
chunk ids ascending (the measured baseline, bench/bench_partition.py).

The rows (and int8 scales) are copied byte for byte from the flat ``index/vectors.bin`` /
``index/scales.bin``, so a probed chunk scores exactly as in the flat index.

Determinism: the training sample is a fixed stride over the rows, faiss gets a fixed seed and
runs on one thread (below), and assignment is a plain argmax (ties to the lower list): building
the same input twice gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

from .index import dequantize

__all__ = ["BLOCK_ROWS", "CODE_MAGIC", "DEFAULT_ORDER", "IVF_MAGIC", "KMEANS_NITER", "KMEANS_SEED", "ROW_ORDERS",
           "TRAIN_PER_LIST", "ListRows", "assign_lists", "check_block_options", "list_order", "record_bytes",
           "sign_codes", "train_centroids", "train_rows", "write_lists"]

IVF_MAGIC = b"WSIVF\x00\x00\x02"
CODE_MAGIC = b"WSCOD\x00\x00\x02"
IVF_HEADER = 28  # magic + count, dims, list, dtype, block_rows
CODE_HEADER = 24  # magic + count, dims, list, block_rows
# Rows a block holds: the unit a reranking query reads by byte range (docs/partitioned.md, measured
# at 100k synthetic chunks by bench/bench_partition.py --blocks).
BLOCK_ROWS = 8
ROW_ORDERS = ("pca", "chunk")
DEFAULT_ORDER = "pca"
IVF_DTYPES = {"float16": 0, "int8": 1}
KMEANS_SEED = 1234
KMEANS_NITER = 20
# k-means trains on at most nlist * 64 rows: at 1M chunks (4,000 lists) 256 rows a list would
# mean an hour of one-thread training; 64 (faiss warns below 39) gave no measurable recall change.
TRAIN_PER_LIST = 64
_BLOCK = 16384  # rows scored against the centroids at a time (25 MB of float32 at 384 dims)


def _float_rows(stored: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
    """Stored rows -> float32 rows, dequantized exactly as the scorers do."""
    return dequantize(stored, scales).astype(np.float32)


def _normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def train_rows(n_rows: int, nlist: int) -> int:
    """How many rows k-means trains on: every row, up to ``nlist * TRAIN_PER_LIST``."""
    return min(n_rows, nlist * TRAIN_PER_LIST)


def train_centroids(stored: np.ndarray, scales: np.ndarray | None, nlist: int) -> tuple[np.ndarray, int]:
    """Spherical k-means over an evenly strided sample of the rows: ``(float16 [nlist, dims]
    L2-normalised centroids, rows trained on)``. ``stored`` may be a disk memmap."""
    n, dims = stored.shape
    if n == 0:
        return np.zeros((nlist, dims), dtype="<f2"), 0
    t = train_rows(n, nlist)
    sample = (np.arange(t, dtype=np.int64) * n) // t  # evenly strided, always row 0, never repeats
    x = np.empty((t, dims), dtype=np.float32)  # filled in blocks: no float64 copy of the whole sample
    for s in range(0, t, _BLOCK):
        rows = sample[s:s + _BLOCK]
        x[s:s + len(rows)] = _normalise(_float_rows(stored[rows], None if scales is None else scales[rows]))
    if nlist == 1:
        cent = x.astype(np.float64).mean(axis=0, keepdims=True)
    else:
        try:
            import faiss
        except ImportError as e:
            raise WebsemError("websem: a partitioned index needs faiss for k-means; install it with "
                              "`pip install faiss-cpu` (or build with --index flat)") from e
        km = faiss.Kmeans(dims, nlist, niter=KMEANS_NITER, seed=KMEANS_SEED, spherical=True,
                          verbose=False, min_points_per_centroid=1, max_points_per_centroid=TRAIN_PER_LIST)
        # One thread, whatever OMP_NUM_THREADS or the core count says: faiss's assignment step is
        # BLAS, whose float sums are only promised to repeat under the same threading. (On 100k
        # rows, 1 and 2 threads gave identical centroids and 1 thread was not slower on a busy
        # 2-core machine, so the pin costs little and keeps rebuilds byte-identical.)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            km.train(x)
        finally:
            faiss.omp_set_num_threads(threads)
        cent = km.centroids.astype(np.float64)
    del x
    return _normalise(cent).astype("<f2"), t


def assign_lists(stored: np.ndarray, scales: np.ndarray | None, centroids: np.ndarray,
                 advance=None) -> np.ndarray:
    """The list of every row: the highest inner product with the (float16-stored) centroid,
    ties to the lower list. Scored in blocks, so memory stays bounded for a memmap of any size."""
    n = len(stored)
    cent = centroids.astype(np.float32)
    labels = np.empty(n, dtype=np.int64)
    for s in range(0, n, _BLOCK):
        block = _float_rows(stored[s:s + _BLOCK], None if scales is None else scales[s:s + _BLOCK])
        labels[s:s + len(block)] = np.argmax(block @ cent.T, axis=1)  # argmax: first (lowest) on ties
        if advance:
            advance(len(block))
    return labels


def sign_codes(stored: np.ndarray) -> np.ndarray:
    """The binary codes of stored rows: uint8 ``[n, ceil(dims / 8)]``, bit j (byte j >> 3, bit
    j & 7) set when component j is > 0 (the same for int8 and float16 rows: quantizing keeps signs)."""
    return np.packbits(np.asarray(stored) > 0, axis=1, bitorder="little")


def record_bytes(dtype: str, dims: int) -> int:
    """Bytes of one row record in a rows shard: f32 scale + int8[dims], or f16[dims]."""
    return 4 + dims if dtype == "int8" else 2 * dims


def check_block_options(block_rows: int, order: str) -> None:
    """Refuse a bad ``block_rows`` or row ``order`` with a websem: error naming them."""
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise WebsemError(f"websem: block_rows {block_rows!r} is not allowed; pass an integer >= 1")
    if order not in ROW_ORDERS:
        raise WebsemError(f"websem: row order {order!r} is unknown; allowed: {', '.join(ROW_ORDERS)}")


def _principal_axis(sub: np.ndarray, iterations: int = 12) -> np.ndarray:
    """About the principal axis of the centred rows ``sub``: power iteration on ``sub.T @ sub``
    from the longest row (a fixed start, so deterministic). An approximate axis only changes which
    rows share a block, never a score; an SVD per part made the ordering ~100x slower."""
    v = sub[int(np.argmax(np.einsum("ij,ij->i", sub, sub)))].copy()
    for _ in range(iterations):
        w = sub.T @ (sub @ v)
        norm = np.linalg.norm(w)
        if norm == 0:
            break
        v = w / norm
    return v


def list_order(rows: np.ndarray, ids: np.ndarray, block_rows: int, order: str) -> np.ndarray:
    """The positions of a list's rows (float rows ``rows``, chunk ids ``ids`` ascending) in their
    stored order. "chunk": as given. "pca": recursive bisection along the principal axis of the
    part's rows (centred), the cut placed on a block boundary (half the part's blocks on each
    side) and ties broken by chunk id, until a part fits a block; rows near each other in vector
    space then share a block. Deterministic (a fixed start for the power iteration)."""
    n = len(ids)
    if order == "chunk" or n <= block_rows:
        return np.arange(n)
    x = rows.astype(np.float64)
    out: list[np.ndarray] = []
    stack = [np.arange(n)]
    while stack:  # depth first, left part first: the output is the parts in order
        part = stack.pop()
        if len(part) <= block_rows:
            out.append(part)
            continue
        sub = x[part] - x[part].mean(axis=0)
        proj = sub @ _principal_axis(sub)
        ranked = part[np.lexsort((ids[part], proj))]
        blocks = -(-len(part) // block_rows)
        cut = (blocks // 2) * block_rows if blocks > 1 else len(part)
        stack.append(ranked[cut:])
        stack.append(ranked[:cut])
    return np.concatenate(out)


def _records(stored: np.ndarray, scales: np.ndarray | None, dtype: str) -> np.ndarray:
    """The rows as a rows shard stores them: uint8 ``[n, record_bytes]`` (int8: scale then row)."""
    n, dims = stored.shape
    if dtype == "float16":
        return np.ascontiguousarray(stored, dtype="<f2").view(np.uint8).reshape(n, 2 * dims)
    rec = np.empty((n, 4 + dims), dtype=np.uint8)
    rec[:, :4] = np.asarray(scales, dtype="<f4").reshape(n, 1).view(np.uint8)
    rec[:, 4:] = np.asarray(stored, dtype="<i1").view(np.uint8)
    return rec


def write_lists(root: Path, template: str, stored: np.ndarray, scales: np.ndarray | None,
                labels: np.ndarray, nlist: int, dtype: str, advance=None,
                codes_template: str | None = None, *, block_rows: int = BLOCK_ROWS,
                order: str = DEFAULT_ORDER) -> list[int]:
    """Write every IVF rows shard (``template`` with ``{}`` = the list number) and, when
    ``codes_template`` is given, every list's codes shard, rows in ``order`` (``ROW_ORDERS``) with
    blocks of ``block_rows``; returns the list sizes."""
    if dtype not in IVF_DTYPES:
        raise WebsemError(f"websem: a partitioned index stores float16 or int8 vectors, not {dtype}; "
                          "build with --vector-dtype float16 or int8 (or --index flat)")
    check_block_options(block_rows, order)
    dims = stored.shape[1]
    rec_size = record_bytes(dtype, dims)
    grouped = np.argsort(labels, kind="stable")  # grouped by list, chunk ids ascending within each
    bounds = np.searchsorted(labels[grouped], np.arange(nlist + 1), side="left")
    sizes = []
    for lst in range(nlist):
        ids = grouped[bounds[lst]:bounds[lst + 1]]
        lrows = np.asarray(stored[ids])
        lscales = None if scales is None else np.asarray(scales[ids], dtype="<f4")
        if order != "chunk" and len(ids) > block_rows:
            perm = list_order(_float_rows(lrows, lscales), ids, block_rows, order)
            ids, lrows = ids[perm], lrows[perm]
            lscales = None if lscales is None else lscales[perm]
        records = _records(lrows, lscales, dtype) if len(ids) else np.zeros((0, rec_size), dtype=np.uint8)
        path = root / template.format(lst)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(IVF_MAGIC + struct.pack("<5I", len(ids), dims, lst, IVF_DTYPES[dtype], block_rows))
            f.write(ids.astype("<u4").tobytes())
            f.write(records.tobytes())
        if codes_template is not None:
            digests = b"".join(hashlib.sha256(records[s:s + block_rows].tobytes()).digest()
                               for s in range(0, len(ids), block_rows))
            cpath = root / codes_template.format(lst)
            cpath.parent.mkdir(parents=True, exist_ok=True)
            with open(cpath, "wb") as f:
                f.write(CODE_MAGIC + struct.pack("<4I", len(ids), dims, lst, block_rows))
                f.write(ids.astype("<u4").tobytes())
                f.write(sign_codes(lrows).tobytes() if len(ids) else b"")
                f.write(digests)
        sizes.append(len(ids))
        if advance:
            advance(1)
    return sizes


class ListRows:
    """The stored rows of a partitioned index by chunk number, read from its IVF rows shards
    (memory-mapped): ``rows[c]`` is chunk c's stored row, as ``vectors.bin[c]`` of a flat index.
    Used to reuse a previous partitioned bundle's vectors (build/cache.py); a shard of another
    format version raises ValueError (the caller then embeds again)."""

    def __init__(self, paths: list[Path], n_chunks: int, dims: int) -> None:
        self._lists: list[np.ndarray] = []
        self._where = np.full((n_chunks, 2), -1, dtype=np.int64)
        for lst, path in enumerate(paths):
            with open(path, "rb") as f:
                head = f.read(IVF_HEADER)
            if head[:8] != IVF_MAGIC or len(head) < IVF_HEADER:
                raise ValueError(f"{path} is not a version 2 IVF rows shard")
            count, got_dims, got_list, dtype, block_rows = struct.unpack_from("<5I", head, 8)
            if got_dims != dims or got_list != lst or dtype not in (0, 1) or block_rows < 1:
                raise ValueError(f"{path} does not match its manifest")
            ids = np.fromfile(path, dtype="<u4", count=count, offset=IVF_HEADER).astype(np.int64)
            rec = np.dtype([("scale", "<f4"), ("row", "<i1", (dims,))]) if dtype == 1 else \
                np.dtype([("row", "<f2", (dims,))])
            offset = IVF_HEADER + 4 * count
            if path.stat().st_size != offset + count * rec.itemsize:
                raise ValueError(f"{path} has the wrong size")
            records = (np.memmap(path, dtype=rec, mode="r", offset=offset, shape=(count,)) if count
                       else np.zeros(0, dtype=rec))
            if np.any(ids >= n_chunks) or len(np.unique(ids)) != count or np.any(self._where[ids, 0] >= 0):
                raise ValueError(f"{path} lists a chunk twice or out of range")
            self._where[ids, 0] = lst
            self._where[ids, 1] = np.arange(count)
            self._lists.append(records["row"])
        if n_chunks and np.any(self._where[:, 0] < 0):
            raise ValueError("the IVF lists miss chunks")

    def __len__(self) -> int:
        return len(self._where)

    def __getitem__(self, c: int) -> np.ndarray:
        lst, pos = self._where[c]
        return self._lists[lst][pos]
