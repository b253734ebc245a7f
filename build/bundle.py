"""Step 5 of `websem build`: assemble the static bundle, atomically.

``build_bundle(source, out, model=...)`` reads and chunks the source, embeds the chunks, writes the
index (vectors + the BM25 index ``index/lexical.bin``, docs/hybrid.md; partitioned for a large
corpus, build/partition.py), copies the model package (by default its model.onnx split into a body
and word-embedding rows read per query, build/model_split.py), the stdlib text package (``web/text`` →
``py/websem_text``) with the trimmed English snowballstemmer it imports (``py/snowballstemmer``),
the JS runtime (``web/src``) and the pinned vendor files (Pyodide core, onnxruntime-web wasm build,
from ``web/node_modules``), and writes ``manifest.json`` with the sha256 and size of every file.
Layout and manifest: docs/architecture.md, "Bundle".

The manifest carries the two tables every reader takes its settings from, so no reader keeps
a constant of its own: ``search`` (query-time rules, ``websem.text.rules.search_table``) and
``runtime.vendor`` (where the runtime finds Pyodide and onnxruntime-web, ``VENDOR`` below).

Atomicity (build/publish.py): everything is written into a temporary sibling folder
``.<name>.websem-tmp-<pid>``; only when it is complete does it replace ``out``, in one rename where
the OS allows. Any failure (exception, Ctrl-C) removes the temporary folder and leaves the previous
bundle byte-identical; a killed build leaves only a stale temporary folder, which the next build
removes.

``out`` may be an existing websem bundle (replaced) or an empty folder; anything else (a file, a
non-empty folder that is not a bundle) is refused unless ``force=True``, so a typo cannot replace
someone's directory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from websem.export.source import sha256_file
from websem.text.errors import WebsemError
from websem.text.rules import search_table

from .chunk import chunk_documents, default_overlap
from .index import VECTOR_DTYPES, write_index
from .jsbundle import bundle_workers
from .lexical import LEXICAL_FILE, extract_files, snowball_files, write_lexical_index
from .model_pack import check_matmul
from .model_split import DEFAULT_MATMUL, MODEL_LAYOUTS, install_model
from .partition import apply_layout, check_index_options, choose_layout, default_vector_dtype
from .publish import check_out, install, is_bundle, make_staging
from .snapshot import SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH, make_snapshot
from .sources import DEFAULT_MAX_DOC_BYTES, FACET_FIELDS, read_source
from .stdlib import trim_stdlib

__all__ = [
    "FORMAT_VERSION",
    "VENDOR",
    "build_bundle",
    "sha256_file",
    "verify_model_package",
]

# 2: manifest.search and manifest.runtime.vendor, index/lexical.bin required. Readers accept
# exactly this version (web/query.py, web/src/bundle.js) and ask older bundles to be rebuilt.
FORMAT_VERSION = 2
# manifest.runtime.vendor: role -> bundle path of each pinned vendor file. The folder under
# vendor/ names the npm package it is copied from (_VENDOR_PACKAGES), the file keeps its npm name.
# ORT: the plain wasm build only (no jsep/jspi/asyncify variants: up to 27 MB more, never used).
VENDOR = {
    "ort": {"module": "vendor/ort/ort.wasm.min.mjs", "glue": "vendor/ort/ort-wasm-simd-threaded.mjs",
            "wasm": "vendor/ort/ort-wasm-simd-threaded.wasm"},
    "pyodide": {"module": "vendor/pyodide/pyodide.mjs", "asm": "vendor/pyodide/pyodide.asm.mjs",
                "wasm": "vendor/pyodide/pyodide.asm.wasm", "stdlib": "vendor/pyodide/python_stdlib.zip",
                "lock": "vendor/pyodide/pyodide-lock.json"},
}
_VENDOR_PACKAGES = {"ort": "onnxruntime-web/dist", "pyodide": "pyodide"}
SKIPPED_LISTED = 100  # manifest.source.skipped lists at most this many files (counts cover all)


def _web_dir() -> Path:
    import websem.web

    return Path(websem.web.__file__).resolve().parent


def _text_dir() -> Path:
    import websem.text

    return Path(websem.text.__file__).resolve().parent


def verify_model_package(model: Path) -> dict:
    """The verified manifest of a model package, or a WebsemError saying how to make one."""
    model = Path(model)
    if not model.is_dir():
        raise WebsemError(f"websem: --model {model} is not a folder; pass a model package "
                          "written by `websem export --out DIR`")
    if not (model / "manifest.json").is_file():
        raise WebsemError(f"websem: --model {model} has no manifest.json, so it is not a websem "
                          "model package; create one with `websem export --out DIR`")
    from websem.export.package import load_model_package

    manifest = load_model_package(model)  # verifies every file's sha256 (WebsemError on mismatch)
    files = manifest.get("files", {})
    for name in ("model.onnx", "tokenizer.json"):
        if name not in files:
            raise WebsemError(f"websem: --model {model}/manifest.json lists no {name}; "
                              "re-run `websem export`")
    return manifest


def _vendor_sources() -> list[tuple[Path, str]]:
    nm = _web_dir() / "node_modules"
    pairs = [(nm / _VENDOR_PACKAGES[pkg] / rel.rsplit("/", 1)[1], rel)
             for pkg, roles in VENDOR.items() for rel in roles.values()]
    missing = [str(p) for p, _ in pairs if not p.is_file()]
    if missing:
        raise WebsemError(f"websem: the pinned runtime files are missing ({', '.join(missing[:3])}"
                          f"{' ...' if len(missing) > 3 else ''}); run .ci/setup (it installs "
                          "web/node_modules from web/package-lock.json)")
    return pairs


def _runtime_sources() -> list[tuple[Path, str]]:
    src = _web_dir() / "src"
    if not (src / "index.js").is_file():
        raise WebsemError(f"websem: the JS runtime {src / 'index.js'} is missing; reinstall "
                          "websem (the runtime ships in web/src)")
    pairs: list[tuple[Path, str]] = []
    for p in sorted(src.iterdir()):
        if p.is_file() and p.name.endswith(".d.ts"):
            # Types for TypeScript pages: websem.d.ts sits beside websem.js, the others beside
            # their modules in runtime/ (they import the shared types from "../websem.js").
            pairs.append((p, "websem.d.ts" if p.name == "index.d.ts" else f"runtime/{p.name}"))
            continue
        if not p.is_file() or p.suffix not in (".js", ".mjs", ".css", ".html"):
            continue
        if p.name == "index.js":
            pairs.append((p, "websem.js"))
        elif p.name == "index.html":
            pairs.append((p, "index.html"))
        else:
            pairs.append((p, f"runtime/{p.name}"))
    return pairs


def _python_sources() -> list[tuple[Path, str]]:
    return [(p, f"py/websem_text/{p.name}") for p in sorted(_text_dir().glob("*.py"))]


def _npm_versions() -> dict:
    nm = _web_dir() / "node_modules"
    out: dict = {}
    lock_path = _web_dir() / "package-lock.json"
    lock = json.loads(lock_path.read_text()) if lock_path.is_file() else {}
    for pkg, key in (("pyodide", "pyodide"), ("onnxruntime-web", "onnxruntime_web")):
        meta = json.loads((nm / pkg / "package.json").read_text())
        out[key] = meta["version"]
        entry = lock.get("packages", {}).get(f"node_modules/{pkg}", {})
        if entry.get("integrity"):
            out[f"{key}_integrity"] = entry["integrity"]
    return out


def _websem_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("websem")
    except PackageNotFoundError:
        return "0.0.0"


def _copy(pairs: list[tuple[Path, str]], root: Path) -> None:
    for src, rel in pairs:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _write_lexical(root: Path, progress: bool) -> tuple[dict, dict]:
    """Write index/lexical.bin over the very rows of index/chunks.json and index/docs.json
    (chunk i of the BM25 index = chunk i of the vectors). Returns ``manifest.index.lexical`` (a
    record of how the index was made: BM25 ``k1``/``b``, ``terms``, field weights) and
    ``manifest.search`` (the query-time rules, with the filter fields present in docs.json)."""
    chunks = json.loads((root / "index" / "chunks.json").read_text("utf-8"))
    docs = json.loads((root / "index" / "docs.json").read_text("utf-8"))
    lex = write_lexical_index(root, chunks, docs, progress=progress)
    present = {f for d in docs for f in (d.get("meta") or {}) if f in FACET_FIELDS}
    record = {"k1": lex["k1"], "b": lex["b"], "terms": lex["terms"], "fields": lex["fields"]}
    return record, search_table(facets=[f for f in FACET_FIELDS if f in present])


def _write_snowball(root: Path) -> list[str]:
    """The trimmed English snowballstemmer under py/ (web/text/analyze.py imports it); returns
    the paths to append to manifest.runtime.python_files."""
    rels = []
    for rel, data in sorted(snowball_files().items()):
        dst = root / "py" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        rels.append(f"py/{rel}")
    return rels


def _write_extract(root: Path) -> list[str]:
    """bs4, markdown-it-py and what they import under py/ (web/text/extract.py imports them, for
    in-page indexing only), with their licences under py/LICENSES/; returns the .py paths for
    manifest.runtime.extract_python_files (written into Pyodide when in-page indexing starts)."""
    rels = []
    for rel, data in sorted(extract_files().items()):
        dst = root / "py" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        if rel.endswith(".py"):
            rels.append(f"py/{rel}")
    return rels


def _file_table(root: Path) -> dict:
    files = {}
    for p in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel != "manifest.json":
                files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return files


def _created() -> dict:
    """``{"created": ISO date}`` from ``$SOURCE_DATE_EPOCH``, else nothing (builds stay byte-identical)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return {}
    try:
        when = datetime.fromtimestamp(int(epoch), UTC)
    except (ValueError, OverflowError, OSError) as e:
        raise WebsemError(f"websem: SOURCE_DATE_EPOCH={epoch!r} is not a Unix time in seconds; "
                          "set it to an integer such as $(git log -1 --format=%ct) or unset it") from e
    return {"created": when.isoformat()}


def build_bundle(
    source: Path,
    out: Path,
    *,
    model: Path,
    force: bool = False,
    vector_dtype: str | None = None,
    encoding_errors: str = "strict",
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    overlap_tokens: int | None = None,
    progress: bool = True,
    console=None,
    globs: tuple[str, ...] | list[str] = (),
    verbose: bool = False,
    cache: Path | bool = True,
    jobs: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    precompress: bool = True,
    index: str = "auto",
    nlist: int | None = None,
    nprobe: int | None = None,
    model_layout: str = "split",
    model_matmul: str = DEFAULT_MATMUL,
) -> dict:
    """Build a static search bundle from ``source`` into ``out``; return its manifest.

    ``globs`` choose a folder's documents (``--glob``, docs/sites.md); ``verbose`` lists every
    skipped file instead of one line per reason. ``cache``: the embedding cache folder (True: the
    default one, False: none); ``jobs``: embedding worker processes (None: one per core);
    ``engine``: "local" or "ray" (``ray_address``: an existing cluster), docs/build.md.
    ``precompress``: write brotli/gzip copies next to the files (build/compress.py, docs/hosting.md).
    ``index``: "flat", "partitioned" or "auto" (partitioned from ``AUTO_PARTITION_CHUNKS`` chunks);
    ``nlist``/``nprobe``: the IVF lists of a partitioned index (None: ``default_ivf``), build/partition.py.
    ``model_layout``: "split" (model.onnx without its word-embedding table, whose rows a query
    reads by byte range, build/model_split.py) or "whole"; ``model_matmul``: the split body's dense
    layers, "nbits8" (MatMulNBits, build/model_pack.py) or "fp32"."""
    from rich.console import Console

    # soft_wrap: off a terminal rich would wrap every line at a guessed 80 columns, mid-sentence.
    console = console or Console(stderr=True, soft_wrap=True)
    source, out, model = Path(source), Path(out).absolute(), Path(model)
    if vector_dtype is not None and vector_dtype not in VECTOR_DTYPES:
        raise WebsemError(f"websem: vector dtype {vector_dtype!r} is not supported; allowed: "
                          + ", ".join(VECTOR_DTYPES))
    # Validate everything that can fail cheaply before the slow steps.
    check_index_options(index, nlist, nprobe, vector_dtype)
    if model_layout not in MODEL_LAYOUTS:
        raise WebsemError(f"websem: --model-layout {model_layout!r} is unknown; allowed: {', '.join(MODEL_LAYOUTS)}")
    check_matmul(model_matmul)
    model_manifest = verify_model_package(model)
    check_out(out, force)
    if engine == "ray":  # a missing install or a wrong --ray-address fails now, not after chunking
        from .ray_embed import check_ray_address

        check_ray_address(ray_address)
    copies = _vendor_sources() + _runtime_sources() + _python_sources()
    versions = _npm_versions()

    t0 = time.perf_counter()
    # The output folder is never a source (websem build public/ --out public/_websem).
    docs, report = read_source(source, encoding_errors=encoding_errors,
                               max_doc_bytes=max_doc_bytes, globs=globs, exclude=[out],
                               progress=progress)
    # One line per reason (a 500-page site must not print 500 lines); soft_wrap: rich would
    # otherwise wrap mid-sentence at its guessed width when stderr is not a terminal.
    plain = {"soft_wrap": True, "highlight": False, "markup": False}
    for reason, n in report.counts().items():
        console.print(f"skipped {n} {'file' if n == 1 else 'files'}: {reason}", **plain)
    if verbose:
        for s in report.skipped:
            console.print(f"skipped {s['path']}: {s['reason']}", **plain)
    elif report.skipped:
        console.print("(--verbose lists the skipped files)", **plain)
    for r in report.replaced:
        console.print(f"invalid UTF-8 replaced with U+FFFD in {r}", **plain)

    from .cache import default_cache_dir, previous_bundle_rows, restore_snapshot, snapshot_key, store_snapshot
    from .embed import embed_to_file, load_package_tokenizer

    max_len = int(model_manifest["max_seq_length"])
    tokenizer = load_package_tokenizer(model, max_len)
    budget = max_len - 2  # [CLS] and [SEP]
    overlap = default_overlap(budget) if overlap_tokens is None else overlap_tokens
    chunks = chunk_documents(docs, tokenizer.count_tokens, budget, overlap)
    console.print(f"{len(docs)} documents → {len(chunks)} chunks "
                  f"(≤ {budget} tokens, overlap ≤ {overlap})")
    # None: the layout's own default (float16 flat, int8 partitioned), known now that the chunks are.
    vector_dtype = vector_dtype or default_vector_dtype(choose_layout(index, len(chunks))[0])

    tmp = make_staging(out)
    try:
        model_files = model_manifest["files"]
        previous_ok = is_bundle(out)
        previous = previous_bundle_rows(
            out, model_sha256=model_files["model.onnx"]["sha256"],
            tokenizer_sha256=model_files["tokenizer.json"]["sha256"], max_tokens=budget,
            vector_dtype=vector_dtype)
        cache_dir = (default_cache_dir() if cache is True else None) if isinstance(cache, bool) else Path(cache)
        # float32 rows go to disk as they come (a memmap), not into several in-memory copies.
        (tmp / "index").mkdir()
        vectors_tmp = tmp / "index" / ".vectors.f32"
        vectors, stats = embed_to_file(
            model, model_files["model.onnx"]["sha256"], int(model_manifest["dims"]), chunks, tokenizer,
            vectors_tmp, n_docs=len(docs), cache_dir=cache_dir, previous=previous, jobs=jobs,
            engine=engine, ray_address=ray_address, progress=progress)
        console.print(
            f"embedding: {stats.chunks} chunks, {stats.reused} reused ({stats.from_cache} from the cache, "
            f"{stats.from_previous} from the previous bundle), {stats.embedded} embedded "
            f"({stats.unique_embedded} distinct, {engine} engine"
            + (f", {stats.jobs} job{'s' if stats.jobs != 1 else ''}" if engine == "local" else "") + ") in "
            f"{stats.seconds:.1f} s"
            + (f", {stats.unique_embedded / stats.embed_seconds:.1f} chunks/s" if stats.embed_seconds > 0
               and stats.unique_embedded else "")
            + (f"; ignored {stats.rejected} corrupt or foreign cache entries" if stats.rejected else ""),
            **plain)
        index_section = write_index(tmp, docs, chunks, vectors, vector_dtype)
        del vectors
        vectors_tmp.unlink()
        index_section["lexical"], search = _write_lexical(tmp, progress)
        index_section["files"] = dict(sorted({**index_section["files"],
                                              "lexical": LEXICAL_FILE}.items()))
        index_section, line = apply_layout(tmp, index_section, search, index=index, nlist=nlist,
                                           nprobe=nprobe, progress=progress)
        console.print(line, **plain)
        py_extra = _write_snowball(tmp)
        py_extract = _write_extract(tmp)
        # The model's identity stays the package's model.onnx (manifest.model.sha256, the index's
        # model_sha256); a split bundle ships its body (manifest.files, model.body_sha256) and rows.
        word_rows = install_model(model, tmp / "model", layout=model_layout, matmul=model_matmul,
                                  package_sha256=model_files["model.onnx"]["sha256"])
        body_matmul = word_rows.pop("matmul", None) if word_rows else None
        body_optimized = word_rows.pop("graph_optimization", None) if word_rows else None
        _copy(copies, tmp)
        # The two worker entry points as one file each: no module waterfall before manifest.json
        # and Pyodide's downloads are requested (build/jsbundle.py).
        bundle_workers(tmp, console=console)
        # Pyodide's stdlib cut to the modules the bundle's Python loads (2.5 MB -> ~0.9 MB), before
        # the snapshot: the snapshot holds zipimport's table of the zip it was made with.
        trim_stdlib(tmp, max_len, cache_dir, console=console)
        # Pyodide memory snapshot with websem_text imported: cold start 3.4 s -> 1.45 s (docs/architecture.md),
        # and with it the stdlib zip its restore mounts (the members it has not loaded, build/snapshot.py).
        # The pair is reused from the cache / previous bundle when made from identical inputs
        # (build/cache.py): making a snapshot is not deterministic, and a rebuild must be byte-identical.
        snap_key = snapshot_key(tmp, max_len) if os.environ.get("WEBSEM_NO_SNAPSHOT") != "1" else None
        previous_dir = out if previous_ok else None
        if snap_key and restore_snapshot(tmp, snap_key, cache_dir, previous_dir, SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH):
            pass
        elif make_snapshot(tmp, console=console) and snap_key:
            store_snapshot(tmp, snap_key, cache_dir, SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH)
        else:
            snap_key = None
        files = _file_table(tmp)
        model_sha = model_files["model.onnx"]["sha256"]  # install_model checked the bytes it read
        # FILE.br / FILE.gz for static hosts and `websem serve`, after the file table: manifest.files
        # lists the originals (what the runtime verifies once the browser has decoded a copy).
        encodings: dict = {}
        if precompress:
            from .compress import precompress as write_copies

            # The word rows are read by byte range, which addresses the identity bytes (int8 rows
            # keep ~90% of their size under brotli anyway): no copies.
            encodings, made = write_copies(tmp, files, cache_dir=cache_dir, previous=out if previous_ok else None,
                                           progress=progress,
                                           skip=("manifest.json", *([word_rows["file"]] if word_rows else [])))
            sent = {enc: sum(encodings.get(r, {}).get(enc, f)["size"] for r, f in files.items()) / 1e6
                    for enc in ("br", "gz")}
            total = sum(f["size"] for f in files.values()) / 1e6
            console.print(f"precompressed {len(encodings)} of {len(files)} files: {sent['br']:.1f} MB to send "
                          f"with brotli, {sent['gz']:.1f} MB with gzip, of {total:.1f} MB "
                          f"({made['compressed']} compressed, {made['reused']} reused)", **plain)
        src_info = model_manifest.get("source", {})
        index_section["model_sha256"] = model_sha
        index_section["chunking"] = {"max_tokens": budget, "overlap_tokens": overlap,
                                     "split": ["heading", "paragraph", "sentence", "word"]}
        manifest = {
            "format": "websem-bundle",
            "format_version": FORMAT_VERSION,
            "websem_version": _websem_version(),
            # Only with SOURCE_DATE_EPOCH (reproducible-builds.org): a wall-clock date would make
            # two builds of the same input differ (docs/build.md, "byte-identical").
            **_created(),
            "model": {
                "id": src_info.get("model_id", ""),
                "sha256": model_sha,
                "dims": model_manifest.get("dims"),
                "max_seq_length": max_len,
                "pooling": model_manifest.get("pooling"),
                "normalize": model_manifest.get("normalize"),
                "do_lower_case": model_manifest.get("do_lower_case"),
                "quantization": model_manifest.get("quantization"),
                # Split layout: the body's own sha256 (manifest.files checks the file) and where
                # the word-embedding rows are (build/model_split.py).
                **({"body_sha256": files["model/model.onnx"]["sha256"], "word_rows": word_rows}
                   if word_rows else {}),
                # "nbits8": the body's dense layers are MatMulNBits (build/model_pack.py)
                **({"matmul": body_matmul} if body_matmul else {}),
                # "basic": the body was saved optimized at that onnxruntime level, so the runtime
                # creates its session without optimizing again (build/model_optimize.py)
                **({"graph_optimization": body_optimized} if body_optimized else {}),
            },
            "index": index_section,
            "search": search,
            # skipped: the first SKIPPED_LISTED files; skipped_counts: every skipped file by reason
            "source": {"kind": report.kind, "name": source.name,
                       "skipped": report.skipped[:SKIPPED_LISTED],
                       "skipped_counts": report.counts(), "replaced": report.replaced},
            "runtime": {
                **versions,
                "python_files": [rel for _, rel in _python_sources()] + py_extra,
                "extract_python_files": py_extract,
                "vendor": VENDOR,
                # The stdlib zip a snapshot restore mounts instead of vendor.pyodide.stdlib.
                **({"snapshot_key": snap_key, "snapshot_stdlib": SNAPSHOT_STDLIB_PATH} if snap_key else {}),
            },
            "files": files,
            **({"encodings": encodings} if precompress else {}),
        }
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f["size"] for f in manifest["files"].values())
    console.print(f"[green]bundle[/] {out}: {len(docs)} docs, {len(chunks)} chunks, "
                  f"{vector_dtype} vectors, {size / 1e6:.1f} MB in {time.perf_counter() - t0:.0f} s")
    return manifest
