"""The dense side of a partitioned index: spherical k-means centroids and the IVF list files.

Layout (docs/architecture.md, "Partitioned index"):

* ``index/part/centroids.bin``: float16 little-endian ``[nlist, dims]``, L2-normalised centroids;
* ``index/ivf/{l}.bin``: ``b"WSIVF\\x00\\x00\\x01"``, u32 count, u32 dims, u32 list, u32 dtype
  (0 float16, 1 int8), u32 chunk[count] ascending, int8 only: f32 scale[count], then the rows;
* ``index/code/{l}.bin`` (code "binary", the default): ``b"WSCOD\\x00\\x00\\x01"``, u32 count,
  u32 dims, u32 list, u32 chunk[count] ascending, then ``ceil(dims / 8)`` bytes a row: the sign
  bits of the stored row (bit j = component j > 0, little-endian bit order within a byte).

The rows (and int8 scales) are copied byte for byte from the flat ``index/vectors.bin`` /
``index/scales.bin``, so a probed chunk scores exactly as in the flat index.

Determinism: the training sample is a fixed stride over the rows, faiss gets a fixed seed and
runs on one thread (below), and assignment is a plain argmax (ties to the lower list): building
the same input twice gives byte-identical files.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

from .index import dequantize

__all__ = ["CODE_MAGIC", "IVF_MAGIC", "KMEANS_NITER", "KMEANS_SEED", "TRAIN_PER_LIST", "ListRows", "assign_lists",
           "sign_codes",
           "train_centroids", "train_rows", "write_lists"]

IVF_MAGIC = b"WSIVF\x00\x00\x01"
CODE_MAGIC = b"WSCOD\x00\x00\x01"
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


def write_lists(root: Path, template: str, stored: np.ndarray, scales: np.ndarray | None,
                labels: np.ndarray, nlist: int, dtype: str, advance=None,
                codes_template: str | None = None) -> list[int]:
    """Write every IVF list file (``template`` with ``{}`` = the list number) and, when
    ``codes_template`` is given, every list's binary codes file; returns the sizes."""
    if dtype not in IVF_DTYPES:
        raise WebsemError(f"websem: a partitioned index stores float16 or int8 vectors, not {dtype}; "
                          "build with --vector-dtype float16 or int8 (or --index flat)")
    dims = stored.shape[1]
    order = np.argsort(labels, kind="stable")  # grouped by list, chunk ids ascending within each
    bounds = np.searchsorted(labels[order], np.arange(nlist + 1), side="left")
    sizes = []
    for lst in range(nlist):
        ids = order[bounds[lst]:bounds[lst + 1]]
        path = root / template.format(lst)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(IVF_MAGIC + struct.pack("<IIII", len(ids), dims, lst, IVF_DTYPES[dtype]))
            f.write(ids.astype("<u4").tobytes())
            if dtype == "int8":
                assert scales is not None
                f.write(np.asarray(scales[ids], dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(stored[ids]).tobytes())
        if codes_template is not None:
            cpath = root / codes_template.format(lst)
            cpath.parent.mkdir(parents=True, exist_ok=True)
            with open(cpath, "wb") as f:
                f.write(CODE_MAGIC + struct.pack("<III", len(ids), dims, lst))
                f.write(ids.astype("<u4").tobytes())
                f.write(sign_codes(stored[ids]).tobytes() if len(ids) else b"")
        sizes.append(len(ids))
        if advance:
            advance(1)
    return sizes


class ListRows:
    """The stored rows of a partitioned index by chunk number, read from its IVF list files
    (memory-mapped): ``rows[c]`` is chunk c's stored row, as ``vectors.bin[c]`` of a flat index.
    Used to reuse a previous partitioned bundle's vectors (build/cache.py)."""

    def __init__(self, paths: list[Path], n_chunks: int, dims: int) -> None:
        self._lists: list[np.ndarray] = []
        self._where = np.full((n_chunks, 2), -1, dtype=np.int64)
        for lst, path in enumerate(paths):
            with open(path, "rb") as f:
                head = f.read(24)
            if head[:8] != IVF_MAGIC:
                raise ValueError(f"{path} is not an IVF list")
            count, got_dims, got_list, dtype = struct.unpack_from("<IIII", head, 8)
            if got_dims != dims or got_list != lst or dtype not in (0, 1):
                raise ValueError(f"{path} does not match its manifest")
            ids = np.fromfile(path, dtype="<u4", count=count, offset=24).astype(np.int64)
            offset = 24 + 4 * count + (4 * count if dtype == 1 else 0)
            np_dtype = "<f2" if dtype == 0 else "<i1"
            rows = (np.memmap(path, dtype=np_dtype, mode="r", offset=offset, shape=(count, dims)) if count
                    else np.zeros((0, dims), dtype=np_dtype))
            if np.any(ids >= n_chunks) or np.any(self._where[ids, 0] >= 0):
                raise ValueError(f"{path} lists a chunk twice or out of range")
            self._where[ids, 0] = lst
            self._where[ids, 1] = np.arange(count)
            self._lists.append(rows)
        if n_chunks and np.any(self._where[:, 0] < 0):
            raise ValueError("the IVF lists miss chunks")

    def __len__(self) -> int:
        return len(self._where)

    def __getitem__(self, c: int) -> np.ndarray:
        lst, pos = self._where[c]
        return self._lists[lst][pos]
