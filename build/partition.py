"""The partitioned index: what `websem build --index partitioned` writes instead of the flat files.

A flat bundle's index is loaded whole by every visitor; at a million chunks that is gigabytes. A
partitioned bundle splits it so a query fetches only what it needs (formats: docs/architecture.md,
"Bundle" and "Search semantics"):

* always loaded: ``index/part/table.json`` (counts, IVF list sizes, the BM25 term table of the
  shards, fragment starts, the facet table), ``index/part/centroids.bin``, ``index/part/docmap.bin``;
* dense: per IVF list a binary codes shard ``index/code/{l}.bin`` and a rows shard
  ``index/ivf/{l}.bin`` (build/ivf.py): a query scores the codes of ``nprobe`` lists and reranks
  its best ``rerank`` candidates exactly with the rows blocks (``block_rows`` rows, read by byte
  range, each checked against the sha256 the codes shard lists) that hold them (code "binary",
  the default); code "rows" has no codes shards and scores every probed row exactly;
* lexical: term-range shards ``index/lex/{j}.bin`` (build/shards.py), one per query term;
* rows: document fragments ``index/frag/{f}.json`` for the result page only.

:func:`partition_index` converts the flat files that ``write_index`` and ``write_lexical_index``
wrote, in place; :func:`convert_bundle` turns a finished flat bundle into a partitioned one without
re-embedding (tests and the benchmarks use it).
"""

from __future__ import annotations

import json
import math
import numbers
import shutil
from pathlib import Path

import numpy as np
from websem.text.bm25 import LexicalIndex
from websem.text.errors import WebsemError

from .index import _NP, DEFAULT_VECTOR_DTYPE
from .ivf import (
    BLOCK_ROWS,
    DEFAULT_ORDER,
    KMEANS_NITER,
    KMEANS_SEED,
    assign_lists,
    check_block_options,
    train_centroids,
    train_rows,
    write_lists,
)
from .shards import facet_table, write_fragments, write_lexical_shards

__all__ = [
    "AUTO_PARTITION_CHUNKS",
    "CODES",
    "RERANK",
    "FRAGMENT_BYTES",
    "INDEX_LAYOUTS",
    "LEX_SHARD_BYTES",
    "MAX_NLIST",
    "apply_layout",
    "check_index_options",
    "check_ivf_options",
    "choose_layout",
    "convert_bundle",
    "default_ivf",
    "default_vector_dtype",
    "parse_count",
    "partition_index",
]

INDEX_LAYOUTS = ("auto", "flat", "partitioned")
# --index auto: partitioned from this many chunks on. Below it the flat index (~1 KB brotli a
# chunk) costs at most ~12 cold partitioned hybrid queries (~0.65 MB each) plus the partitioned
# always-loaded files (~0.3 MB): about 8 MB brotli. It is exact and needs no request per query;
# above it its bytes, the tab's memory and the bytes before the first lexical result (the whole
# chunks.json, docs.json and lexical.bin) grow linearly (docs/partitioned.md).
AUTO_PARTITION_CHUNKS = 8000
# A lexical shard is closed before its postings pass this. A query fetches one shard per term, so
# the size is mostly waste for rare terms: 64 KiB cost 588 KB brotli per query at 100k synthetic
# chunks, 8 KiB 108 KB (4 KiB 89 KB, with twice the files to list in the manifest).
LEX_SHARD_BYTES = 8 * 1024
FRAGMENT_BYTES = 32 * 1024  # a fragment is closed before its JSON passes this
MAX_NLIST = 16384
NLIST_PER_SQRT = 4  # nlist = 4 * sqrt(chunks)
PROBE_ROWS = 4000  # rows a query scores, about (small indexes are probed whole)
MIN_NPROBE = 32  # lists probed at least (binds above ~250k chunks)
# The dense code of a partitioned index: "binary" (sign-bit codes scored for every probed row,
# the best RERANK rescored exactly from the rows shards) or "rows" (every probed row scored
# exactly: about twice the bytes a query fetches; docs/partitioned.md).
CODES = ("binary", "rows")
DEFAULT_CODE = "binary"
RERANK = 200  # candidates a binary-coded query rescores exactly (at least the documents asked for)
TABLE_FORMAT_VERSION = 2  # 2: rows shards in blocks, codes shards with block sha256s (build/ivf.py)
TABLE = "index/part/table.json"
CENTROIDS = "index/part/centroids.bin"
DOCMAP = "index/part/docmap.bin"
SHARDS = {"ivf": "index/ivf/{}.bin", "lexical": "index/lex/{}.bin", "fragments": "index/frag/{}.json"}
CODES_SHARDS = "index/code/{}.bin"
_FLAT_KEYS = ("vectors", "scales", "chunks", "docs", "lexical")


def default_ivf(n_chunks: int) -> tuple[int, int]:
    """``(nlist, nprobe)`` for an index of ``n_chunks`` chunks, chosen by measurement
    (bench/bench_partition.py, docs/partitioned.md): ``4 * sqrt(n)`` lists (finer lists need fewer
    scored rows for the same quality than ``sqrt(n)`` on every judged set), and enough lists probed
    to score about ``PROBE_ROWS`` rows, at least ``MIN_NPROBE`` lists. Below ~4,000 chunks every
    list is probed (the search equals the flat one); SciFact (9.8k chunks) probes 41% of its rows,
    which its nDCG@10 needs; 100k chunks score ~4,000 rows, 1M ~8,000."""
    n = max(1, int(n_chunks))
    nlist = min(MAX_NLIST, n, max(1, round(NLIST_PER_SQRT * math.sqrt(n))))
    return nlist, _default_nprobe(nlist, n)


def _default_nprobe(nlist: int, n_chunks: int) -> int:
    return min(nlist, max(MIN_NPROBE, math.ceil(PROBE_ROWS * nlist / max(1, n_chunks))))


def default_vector_dtype(layout: str) -> str:
    """The row code when ``--vector-dtype`` is not given: float16 for a flat index (exact recall
    against float32, bench/results/index.md), int8 for a partitioned one (half the bytes a query
    fetches; within 0.002 nDCG@10 of float16 on every judged set, docs/partitioned.md)."""
    return "int8" if layout == "partitioned" else DEFAULT_VECTOR_DTYPE


def check_ivf_options(nlist: int | None, nprobe: int | None) -> None:
    """Refuse bad ``--nlist`` / ``--nprobe`` values with a websem: error naming them."""
    for name, v in (("--nlist", nlist), ("--nprobe", nprobe)):
        # numbers.Integral: a numpy integer from a formula is as good as an int
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise WebsemError(f"websem: {name} {v!r} is not allowed; pass an integer >= 1")
    if nlist is not None and nlist > MAX_NLIST:
        raise WebsemError(f"websem: --nlist {nlist} is too large; allowed: 1 to {MAX_NLIST}")
    if nlist is not None and nprobe is not None and nprobe > nlist:
        raise WebsemError(f"websem: --nprobe {nprobe} is more than --nlist {nlist}; allowed: 1 to {nlist} "
                          "(nprobe = nlist searches every list)")


def check_index_options(index: str, nlist: int | None, nprobe: int | None, vector_dtype: str | None = None) -> None:
    """Refuse a bad ``--index`` / ``--nlist`` / ``--nprobe`` combination before any slow step."""
    choose_layout(index, 0)
    check_ivf_options(nlist, nprobe)
    if index == "flat" and (nlist is not None or nprobe is not None):
        given = " ".join(f"{k} {v}" for k, v in (("--nlist", nlist), ("--nprobe", nprobe)) if v is not None)
        raise WebsemError(f"websem: {given} applies to a partitioned index, not --index flat; pass "
                          "--index partitioned or auto, or drop it")
    if index == "partitioned" and vector_dtype is not None and vector_dtype not in ("float16", "int8"):
        raise WebsemError(f"websem: --index partitioned stores float16 or int8 vectors, not {vector_dtype}; "
                          "pass --vector-dtype float16 or int8, or --index flat")


def parse_count(name: str, value: str | None) -> int | None:
    """A ``--nlist`` / ``--nprobe`` command-line value as an int (None when not given)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise WebsemError(f"websem: {name} {value!r} is not allowed; pass an integer >= 1") from None


def choose_layout(index: str, n_chunks: int) -> tuple[str, str]:
    """``(layout, why)`` for ``--index`` ``index`` and an index of ``n_chunks`` chunks."""
    if index not in INDEX_LAYOUTS:
        raise WebsemError(f"websem: --index {index!r} is unknown; allowed: {', '.join(INDEX_LAYOUTS)}")
    if index != "auto":
        return index, f"--index {index}"
    if n_chunks >= AUTO_PARTITION_CHUNKS:
        return "partitioned", f"auto: {n_chunks} chunks >= {AUTO_PARTITION_CHUNKS}"
    return "flat", f"auto: {n_chunks} chunks < {AUTO_PARTITION_CHUNKS}"


def _dump(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check_code(code: str, rerank: int | None) -> None:
    """Refuse an unknown dense code or a bad ``rerank`` with a websem: error naming them."""
    if code not in CODES:
        raise WebsemError(f"websem: index code {code!r} is unknown; allowed: {', '.join(CODES)}")
    if rerank is not None and (isinstance(rerank, bool) or not isinstance(rerank, numbers.Integral) or rerank < 1):
        raise WebsemError(f"websem: rerank {rerank!r} is not allowed; pass an integer >= 1")


def partition_index(root: Path, index_section: dict, search: dict, *, nlist: int | None = None,
                    nprobe: int | None = None, progress: bool = True, code: str = DEFAULT_CODE,
                    rerank: int | None = None, block_rows: int = BLOCK_ROWS, order: str = DEFAULT_ORDER) -> dict:
    """Convert the flat index files under ``root`` (named in ``index_section["files"]``, as
    ``write_index`` + the lexical step wrote them) into the partitioned files, delete the flat
    ones, and return the new ``manifest.index`` section (the caller adds ``model_sha256`` and
    ``chunking``). ``search``: ``manifest.search`` (its ``facets`` choose the facet table's fields).
    ``nlist``/``nprobe``: None for :func:`default_ivf`; nlist is clamped to the chunk count.
    ``code``: "binary" (codes shards + exact rerank of ``rerank`` candidates, None = ``RERANK``)
    or "rows" (every probed row scored exactly). ``block_rows`` / ``order``: rows per block and the
    row order inside a list (``ivf.ROW_ORDERS``), as ``ivf.write_lists``."""
    from .progress import progress as report

    check_ivf_options(nlist, nprobe)
    check_code(code, rerank)
    check_block_options(block_rows, order)
    nlist, nprobe = (None if v is None else int(v) for v in (nlist, nprobe))
    root = Path(root)
    files = index_section["files"]
    dtype = index_section["vector_dtype"]
    n, dims, n_docs = int(index_section["chunks"]), int(index_section["dims"]), int(index_section["docs"])
    if dtype not in ("float16", "int8"):
        raise WebsemError(f"websem: a partitioned index stores float16 or int8 vectors, not {dtype}; "
                          "build with --vector-dtype float16 or int8 (or --index flat)")
    nlist = max(1, min(default_ivf(n)[0] if nlist is None else nlist, n))  # a list per chunk at most
    nprobe = min(_default_nprobe(nlist, n) if nprobe is None else nprobe, nlist)

    stored = np.memmap(root / files["vectors"], dtype=_NP[dtype], mode="r", shape=(n, dims)) if n else \
        np.zeros((0, dims), dtype=_NP[dtype])
    scales = np.fromfile(root / files["scales"], dtype="<f4") if dtype == "int8" else None
    # k-means + assignment + list files; the int8 scales (4 bytes a row) are read into memory.
    label = f"IVF k-means ({nlist} lists, {train_rows(n, nlist)} rows, {KMEANS_NITER} iterations)"
    with report(label, 1, unit="runs", enabled=progress and n > 1000) as bar:
        centroids, trained = train_centroids(stored, scales, nlist)
        bar.advance(1)
    with report("IVF lists", n, unit="chunks", enabled=progress and n > 1000) as bar:
        labels = assign_lists(stored, scales, centroids, bar.advance)
    (root / CENTROIDS).parent.mkdir(parents=True, exist_ok=True)
    (root / CENTROIDS).write_bytes(centroids.tobytes())
    with report("IVF files", nlist, unit="lists", enabled=progress and n > 1000) as bar:
        sizes = write_lists(root, SHARDS["ivf"], stored, scales, labels, nlist, dtype, bar.advance,
                            codes_template=CODES_SHARDS if code == "binary" else None,
                            block_rows=int(block_rows), order=order)
    del stored, labels

    flat_lex = LexicalIndex.from_bytes((root / files["lexical"]).read_bytes())
    with report("lexical shards", flat_lex.n_terms, unit="terms", enabled=progress and n > 1000) as bar:
        lexical, shards = write_lexical_shards(root, SHARDS["lexical"], flat_lex, LEX_SHARD_BYTES, bar.advance)
    del flat_lex

    docs = json.loads((root / files["docs"]).read_text("utf-8"))
    with report("fragments", n_docs, unit="docs", enabled=progress and n > 1000) as bar:
        starts, docmap = write_fragments(root, SHARDS["fragments"], docs, root / files["chunks"], n,
                                         FRAGMENT_BYTES, bar.advance)
    (root / DOCMAP).write_bytes(docmap.tobytes())
    table = {"format": "websem-partitioned", "format_version": TABLE_FORMAT_VERSION, "chunks": n, "docs": n_docs,
             "dims": dims, "vector_dtype": dtype, "ivf": {"nlist": nlist, "nprobe": nprobe, "sizes": sizes},
             "lexical": lexical, "fragments": starts,
             "facets": facet_table(docs, list(search.get("facets") or []))}
    (root / TABLE).write_bytes(_dump(table))
    for key in _FLAT_KEYS:
        if key in files:
            (root / files[key]).unlink()

    record = dict(index_section.get("lexical") or {})
    record["shards"] = len(shards)
    ivf = {"nlist": nlist, "nprobe": nprobe, "metric": "ip", "code": code, "block_rows": int(block_rows),
           "order": order,
           "kmeans": {"seed": KMEANS_SEED, "niter": KMEANS_NITER, "train_points": trained}}
    shard_templates = dict(SHARDS)
    if code == "binary":
        ivf["rerank"] = int(RERANK if rerank is None else rerank)
        shard_templates["codes"] = CODES_SHARDS
    return {
        "layout": "partitioned",
        "docs": n_docs,
        "chunks": n,
        "dims": dims,
        "vector_dtype": dtype,
        "files": {"centroids": CENTROIDS, "docmap": DOCMAP, "table": TABLE},
        "shards": shard_templates,
        "ivf": ivf,
        "lexical": record,
        "fragments": len(starts),
    }


def apply_layout(root: Path, index_section: dict, search: dict, *, index: str, nlist: int | None,
                 nprobe: int | None, progress: bool) -> tuple[dict, str]:
    """The build's index step after the flat files are written: partition them when ``index``
    (``--index``) says so; returns ``(manifest.index section, the line the build prints)``."""
    layout, why = choose_layout(index, int(index_section["chunks"]))
    if layout == "partitioned" and index_section["vector_dtype"] not in ("float16", "int8"):
        layout, why = "flat", f"{why}, but {index_section['vector_dtype']} vectors need the flat index"
    if layout == "flat":
        return {"layout": "flat", **index_section}, f"index: flat ({why})"
    section = partition_index(root, index_section, search, nlist=nlist, nprobe=nprobe, progress=progress)
    ivf = section["ivf"]
    return section, (f"index: partitioned ({why}): {ivf['nlist']} IVF lists, {ivf['nprobe']} probed, "
                     f"{ivf['code']} codes, "
                     f"{section['lexical']['shards']} lexical shards, {section['fragments']} fragments")


def _requantize(root: Path, index: dict, dtype: str) -> dict:
    """Rewrite ``root``'s flat vectors (and scales) in ``dtype``, block by block; returns the index
    section with the new dtype and files."""
    from .index import dequantize, quantize

    src = index["vector_dtype"]
    if dtype == src:
        return index
    if dtype not in ("float16", "int8"):
        raise WebsemError(f"websem: a partitioned index stores float16 or int8 vectors, not {dtype}; "
                          "pass vector_dtype='float16' or 'int8'")
    files = dict(index["files"])
    n, dims = int(index["chunks"]), int(index["dims"])
    # Read whole (not a memmap): the same file is rewritten below. 768 MB at 1M float16 rows.
    stored = np.fromfile(root / files["vectors"], dtype=_NP[src]).reshape(n, dims)
    scales = np.fromfile(root / files["scales"], dtype="<f4") if src == "int8" else None
    with open(root / files["vectors"], "wb") as vf, open(root / "index" / "scales.bin", "wb") as sf:
        for s in range(0, n, 65536):
            block = dequantize(stored[s:s + 65536], None if scales is None else scales[s:s + 65536])
            q, sc = quantize(block.astype(np.float32), dtype)
            vf.write(np.ascontiguousarray(q).tobytes())
            if sc is not None:
                sf.write(sc.tobytes())
    if dtype == "int8":
        files["scales"] = "index/scales.bin"
    else:
        (root / "index" / "scales.bin").unlink()
        files.pop("scales", None)
    return {**index, "vector_dtype": dtype, "files": files}


def convert_bundle(src: Path, out: Path, *, nlist: int | None = None, nprobe: int | None = None,
                   vector_dtype: str | None = None, precompress: bool = True, progress: bool = False,
                   code: str = DEFAULT_CODE, rerank: int | None = None, block_rows: int = BLOCK_ROWS,
                   order: str = DEFAULT_ORDER) -> dict:
    """Write a partitioned copy of the flat bundle ``src`` to ``out`` (no re-embedding); return its
    manifest. Every non-index file is copied unchanged (the model, runtime, snapshot), the index
    is partitioned, and manifest.files / encodings / index are rewritten. Atomic like a build:
    ``out`` is replaced only when the new bundle is complete. ``vector_dtype``: the rows' code
    (None: the source's, so both bundles score the very same rows); another code is requantized
    from the source's stored rows (a build quantizes from float32, so int8 rows made from a
    float16 bundle can differ from a build's by one step in a component). ``code`` / ``rerank`` /
    ``block_rows`` / ``order``: as :func:`partition_index`."""
    from websem.export.source import sha256_file

    from .bundle import _file_table
    from .cache import default_cache_dir
    from .publish import check_out, install, is_bundle, make_staging

    check_ivf_options(nlist, nprobe)
    check_code(code, rerank)
    check_block_options(block_rows, order)
    src, out = Path(src).absolute(), Path(out).absolute()
    try:
        manifest = json.loads((src / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise WebsemError(f"websem: {src} is not a websem bundle (no readable manifest.json); pass a bundle "
                          "written by `websem build`") from e
    index = manifest.get("index") or {}
    layout = index.get("layout", "flat")
    if manifest.get("format") != "websem-bundle" or layout != "flat":
        raise WebsemError(f"websem: {src} is not a flat websem bundle (index.layout {layout!r}); "
                          "convert a bundle built with `websem build --index flat`")
    if src == out:
        raise WebsemError(f"websem: converting {src} onto itself; pass another output folder")
    files = manifest["files"]
    for rel in index["files"].values():
        p = src / rel
        if not p.is_file() or p.stat().st_size != files[rel]["size"] or sha256_file(p) != files[rel]["sha256"]:
            raise WebsemError(f"websem: {src}/{rel} does not match its manifest checksum; rebuild the bundle")
    check_out(out, force=False)
    tmp = make_staging(out)
    try:
        for rel in sorted(files):
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, dst)
        keep = {k: index[k] for k in ("model_sha256", "chunking") if k in index}
        index = _requantize(tmp, index, vector_dtype or index["vector_dtype"])
        section = partition_index(tmp, index, manifest["search"], nlist=nlist, nprobe=nprobe, progress=progress,
                                  code=code, rerank=rerank, block_rows=block_rows, order=order)
        section.update(keep)
        new_files = _file_table(tmp)
        encodings: dict = {}
        if precompress:
            from .compress import precompress as write_copies

            # The source's copies of unchanged files are reused (same sha256, same settings).
            encodings, _ = write_copies(tmp, new_files, cache_dir=default_cache_dir(),
                                        previous=src if is_bundle(src) else None, progress=progress)
        manifest = {k: v for k, v in manifest.items() if k not in ("files", "encodings")}
        manifest["index"] = section
        manifest["files"] = new_files
        if precompress:
            manifest["encodings"] = encodings
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
        install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
