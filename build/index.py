"""Step 4 of `websem build`: the index files, written and read back.

Layout (docs/architecture.md, "Bundle"):

* ``index/vectors.bin``: row-major ``[n_chunks, dims]``, little-endian, ``vector_dtype``:
  - ``int8``: symmetric scalar quantization per row, ``q = round(v / s)``, ``s = max|v| / 127``;
    ``index/scales.bin`` holds one little-endian float32 ``s`` per row;
  - ``float16``: IEEE half per component (no scales file);
  - ``float32``: the unquantized reference (used by the benchmark; not the default).
* ``index/chunks.json``: ``[{"doc", "anchor", "start", "end", "text"}]`` in index order.
* ``index/docs.json``: ``[{"id", "title", "url", "meta"?}]`` in document order.

The default ``float16`` was chosen by measurement (bench/bench_index.py, bench/results/index.md,
2026-11-28): recall@10 against float32 is 1.000 on Cranfield and SciFact, while int8 costs 0.27%
(Cranfield) and 0.52% (SciFact), over the 0.5% target on SciFact. float16 costs 768 B/chunk
against int8's 388 B, but the chunk text (chunks.json, ~880 B/chunk) dominates the index anyway
and both are small next to the model and the wasm runtime. int8 stays available
(``--vector-dtype int8``) for very large corpora.

Scoring (identical in the browser's dense scorer and in ``websem query``, which scores the rows of
:func:`dequantize`): the stored row is dequantized to float32 (int8: ``float32(q_i * s)``, exact
product rounded once; float16: exact widening), then ``sum_i(query_i * v_i)`` is accumulated in
float64; per document the maximum over its chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

from .chunk import Chunk
from .sources import Document

__all__ = [
    "DEFAULT_VECTOR_DTYPE",
    "VECTOR_DTYPES",
    "Index",
    "quantize",
    "dequantize",
    "write_index",
    "read_index",
]

VECTOR_DTYPES = ("int8", "float16", "float32")
DEFAULT_VECTOR_DTYPE = "float16"
_NP = {"int8": "<i1", "float16": "<f2", "float32": "<f4"}
_WRITE_BLOCK = 65536  # rows quantized at a time by write_index (25 MB of float32 at 384 dims)


def _check_dtype(dtype: str) -> None:
    if dtype not in VECTOR_DTYPES:
        raise WebsemError(f"websem: vector dtype {dtype!r} is not supported; allowed: "
                          + ", ".join(VECTOR_DTYPES))


def quantize(vectors: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 ``[n, d]`` → stored array (and per-row float32 scales for int8)."""
    _check_dtype(dtype)
    v = np.asarray(vectors, dtype=np.float32)
    if dtype == "int8":
        scales = np.abs(v).max(axis=1) / np.float32(127.0)
        scales = np.where(scales > 0, scales, np.float32(1.0)).astype("<f4")
        q = np.clip(np.rint(v / scales[:, None]), -127, 127).astype("<i1")
        return q, scales
    return v.astype(_NP[dtype]), None


def dequantize(stored: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
    """Stored vectors → the float64 ``[n, d]`` rows every chunk is scored with (``rows @ query``
    in float64). int8: the float32 product ``q * s``, like ``Math.fround(q * s)`` in the browser
    (int8 x float32 is exact in float64, so both round the same exact value once)."""
    out = stored.astype(np.float32)
    if scales is not None:
        out = out * scales.astype(np.float32)[:, None]
    return out.astype(np.float64)


@dataclass
class Index:
    """An index read back from a bundle."""

    vectors: np.ndarray
    scales: np.ndarray | None
    chunks: list[dict]
    docs: list[dict]
    vector_dtype: str

    def doc_of_chunk(self) -> np.ndarray:
        return np.fromiter((c["doc"] for c in self.chunks), dtype=np.int64, count=len(self.chunks))


def _dump(obj: object) -> bytes:
    # Compact and deterministic: same input → byte-identical file.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write_index(
    out_dir: Path,
    docs: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    vector_dtype: str = DEFAULT_VECTOR_DTYPE,
) -> dict:
    """Write ``out_dir/index/*``; return the manifest's ``index`` section (without model_sha256)."""
    _check_dtype(vector_dtype)
    if len(chunks) != len(vectors):
        raise WebsemError(f"websem: {len(chunks)} chunks but {len(vectors)} vectors; "
                          "this is a bug in websem build, please report it")
    idx = Path(out_dir) / "index"
    idx.mkdir(parents=True, exist_ok=True)
    files = {"vectors": "index/vectors.bin", "chunks": "index/chunks.json",
             "docs": "index/docs.json"}
    # Streamed in blocks: ``vectors`` may be a disk memmap of a million rows, and quantizing it
    # whole would hold a second full copy (float16) next to the float32 matrix.
    with open(idx / "vectors.bin", "wb") as vf:
        sf = open(idx / "scales.bin", "wb") if vector_dtype == "int8" else None
        try:
            for s in range(0, len(vectors), _WRITE_BLOCK):
                stored, scales = quantize(vectors[s:s + _WRITE_BLOCK], vector_dtype)
                vf.write(np.ascontiguousarray(stored).tobytes())
                if sf is not None and scales is not None:
                    sf.write(scales.tobytes())
        finally:
            if sf is not None:
                sf.close()
    if vector_dtype == "int8":
        files["scales"] = "index/scales.bin"
    # Row by row, the same bytes as _dump(list): one dict at a time instead of a million.
    with open(idx / "chunks.json", "wb") as cf:
        cf.write(b"[")
        for i, c in enumerate(chunks):
            if i:
                cf.write(b",")
            cf.write(_dump({"doc": c.doc, "anchor": c.anchor, "start": c.start, "end": c.end, "text": c.text}))
        cf.write(b"]")
    doc_rows = []
    for d in docs:
        row = {"id": d.id, "title": d.title, "url": d.url}
        if d.meta:
            row["meta"] = d.meta
        doc_rows.append(row)
    (idx / "docs.json").write_bytes(_dump(doc_rows))
    return {
        "docs": len(docs),
        "chunks": len(chunks),
        "dims": int(vectors.shape[1]) if len(vectors) else 0,
        "vector_dtype": vector_dtype,
        "files": dict(sorted(files.items())),
    }


def read_index(bundle: Path, index_manifest: dict) -> Index:
    """Read the index files named in a (verified) bundle manifest's ``index`` section."""
    bundle = Path(bundle)
    dtype = index_manifest.get("vector_dtype")
    _check_dtype(str(dtype))
    files = index_manifest["files"]
    n, d = int(index_manifest["chunks"]), int(index_manifest["dims"])
    raw = (bundle / files["vectors"]).read_bytes()
    itemsize = np.dtype(_NP[dtype]).itemsize
    if len(raw) != n * d * itemsize:
        raise WebsemError(f"websem: {files['vectors']} has {len(raw)} bytes, expected "
                          f"{n}x{d}x{itemsize}; rebuild the bundle with `websem build`")
    vectors = np.frombuffer(raw, dtype=_NP[dtype]).reshape(n, d)
    scales = None
    if dtype == "int8":
        scales = np.frombuffer((bundle / files["scales"]).read_bytes(), dtype="<f4")
        if scales.shape != (n,):
            raise WebsemError(f"websem: {files['scales']} holds {scales.size} scales for {n} "
                              "chunks; rebuild the bundle with `websem build`")
    chunks = json.loads((bundle / files["chunks"]).read_text("utf-8"))
    docs = json.loads((bundle / files["docs"]).read_text("utf-8"))
    if len(chunks) != n or len(docs) != int(index_manifest["docs"]):
        raise WebsemError("websem: index/chunks.json or index/docs.json does not match the "
                          "manifest counts; rebuild the bundle with `websem build`")
    return Index(vectors, scales, chunks, docs, dtype)
