"""`websem build SOURCE --out BUNDLE [--model MODEL_PACKAGE]`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from websem.text.errors import WebsemError

from .index import VECTOR_DTYPES
from .model_pack import DEFAULT_MATMUL, MODEL_MATMULS, check_matmul
from .partition import AUTO_PARTITION_CHUNKS, check_index_options, parse_count
from .sources import DEFAULT_MAX_DOC_BYTES

__all__ = ["build_cmd", "default_package_dir", "ensure_default_model"]


def default_package_dir(quantization: str | None = None) -> Path:
    """``$WEBSEM_MODEL`` if set, else the per-user cache of the embedded default model
    (``$XDG_CACHE_HOME/websem/models/<websem version>/default``, or ``default-<quantization>`` for
    another quantization than the default), exported on first use."""
    env = os.environ.get("WEBSEM_MODEL")
    if env and quantization is None:
        return Path(env)
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "websem" / "models" / version("websem") / (f"default-{quantization}" if quantization else "default")


def ensure_default_model(log=click.echo, quantization: str | None = None) -> Path:
    """The default model package (with `quantization`, if given), exported once (offline, from
    the embedded weights)."""
    from websem.export import export_model
    from websem.export.package import load_model_package
    from websem.export.quantize import DEFAULT_MODE

    if quantization == DEFAULT_MODE:
        quantization = None  # the default package, shared with `websem build` without the option
    model = default_package_dir(quantization)
    try:
        load_model_package(model)
    except WebsemError:
        log(f"websem: no --model given; exporting the embedded default model once into {model}")
        if quantization:
            export_model(None, model, force=True, quantization=quantization)
        else:
            export_model(None, model, force=True)
    return model


def _quantization_modes() -> list[str]:
    from websem.export.quantize import MODES

    return list(MODES)


@click.command("build")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Bundle folder to write (replaced atomically if it is a previous bundle).")
@click.option("--model", "-m", type=click.Path(path_type=Path), default=None,
              help="Model package from `websem export` [default: $WEBSEM_MODEL, else the embedded all-MiniLM-L6-v2, "
                   "exported once into the user cache].")
@click.option("--force", is_flag=True,
              help="Replace --out even if it exists and is not a websem bundle.")
@click.option("--vector-dtype", type=click.Choice(VECTOR_DTYPES), default=None,
              help="Storage of the chunk vectors [default: float16 for a flat index, int8 for a partitioned "
                   "one] (docs/partitioned.md).")
@click.option("--encoding-errors", type=click.Choice(["strict", "replace"]), default="strict",
              show_default=True,
              help="Invalid UTF-8: fail naming the file (strict) or index it with U+FFFD.")
@click.option("--max-doc-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_DOC_BYTES,
              show_default=True, help="Refuse documents larger than this.")
@click.option("--quantization", type=click.Choice(_quantization_modes()), default=None,
              help="Without --model: export the embedded default model with this quantization (cached "
                   "per mode). weight-int8-packed keeps int8 weights in memory, for edge runtimes "
                   "(docs/edge.md).")
@click.option("--glob", "globs", multiple=True, metavar="PATTERN",
              help="Choose a folder's documents (repeatable): 'NAME' matches a file name at any depth, "
                   "'a/**/*.html' a path, 'docs/' a folder, '!PATTERN' excludes. Default: the .html/.htm "
                   "pages of a folder that has any, else its .md/.markdown/.txt files (docs/sites.md).")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped file, not one line per reason.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Embedding cache folder: chunks embedded before (same model, same token ids) are reused "
                   "[default: $WEBSEM_CACHE, else $XDG_CACHE_HOME/websem/embeddings] (docs/build.md).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the embedding cache.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Embedding worker processes [default: one per core, one thread each].")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where chunks are embedded: this machine, or a Ray cluster (needs websem[ray]).")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --engine ray: an existing cluster (ray://HOST:10001 or HOST:6379) "
                   "[default: $RAY_ADDRESS, else a local Ray instance].")
@click.option("--no-precompress", is_flag=True,
              help="Write no brotli/gzip copies (FILE.br, FILE.gz) next to the bundle files (docs/hosting.md).")
@click.option("--index", "index", default="auto", show_default=True, metavar="flat|partitioned|auto",
              help="Index layout: flat (loaded whole), partitioned (IVF lists, term shards and document "
                   "fragments fetched per query), or auto: partitioned from "
                   f"{AUTO_PARTITION_CHUNKS:,} chunks on (docs/build.md).")
@click.option("--nlist", "nlist_s", default=None, metavar="N",
              help="Partitioned index: IVF lists (k-means centroids) [default: 4 * sqrt(chunks)].")
@click.option("--nprobe", "nprobe_s", default=None, metavar="P",
              help="Partitioned index: lists searched per query (<= --nlist) [default: enough for about "
                   "4,000 rows, at least 32].")
@click.option("--model-layout", type=click.Choice(["split", "whole"]), default="split", show_default=True,
              help="split: ship the model without its word-embedding table, whose rows a query reads "
                   "by byte range (~56 KB a query instead of 11.8 MB); whole: model.onnx as exported "
                   "(docs/architecture.md).")
@click.option("--model-matmul", default=DEFAULT_MATMUL, show_default=True, metavar="|".join(MODEL_MATMULS),
              help="Dense layers of the split model's body: nbits8 (int8 MatMulNBits, the same weights; "
                   "the browser keeps them as int8) or fp32 (DequantizeLinear -> MatMul, folded to "
                   "float32 at load) (docs/build.md).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def build_cmd(
    source: Path, out: Path, model: Path | None, force: bool, vector_dtype: str | None,
    encoding_errors: str, max_doc_bytes: int, quantization: str | None, globs: tuple[str, ...],
    verbose: bool, cache_dir: Path | None, no_cache: bool, jobs: int | None, engine: str,
    ray_address: str | None, no_precompress: bool, index: str, nlist_s: str | None, nprobe_s: str | None,
    model_layout: str, model_matmul: str, quiet: bool,
) -> None:
    """Build a static search bundle from SOURCE: a folder of .html/.htm/.md/.txt files or a
    BEIR corpus.jsonl (_id, title, text, optional url)."""
    from .bundle import build_bundle

    try:
        # Checked here, before a model export: a typo must not cost minutes (build_bundle checks again).
        nlist, nprobe = parse_count("--nlist", nlist_s), parse_count("--nprobe", nprobe_s)
        check_index_options(index, nlist, nprobe, vector_dtype)
        check_matmul(model_matmul)
        if model and quantization:
            raise WebsemError(
                f"websem: --quantization {quantization} applies to the embedded default model only; "
                f"for --model {model}, export it with `websem export --quantization {quantization}` "
                "and pass that package"
            )
        if no_cache and cache_dir:
            raise WebsemError(f"websem: --cache {cache_dir} and --no-cache contradict each other; pass one")
        if ray_address and engine != "ray":
            raise WebsemError(f"websem: --ray-address {ray_address} needs --engine ray")
        if jobs and engine != "local":
            raise WebsemError(f"websem: --jobs {jobs} applies to --engine local only; Ray sizes its "
                              "actor pool from the cluster's CPUs")
        model = model or ensure_default_model(quantization=quantization)
        build_bundle(source, out, model=model, force=force, vector_dtype=vector_dtype,
                     encoding_errors=encoding_errors, max_doc_bytes=max_doc_bytes,
                     progress=not quiet, globs=globs, verbose=verbose,
                     cache=False if no_cache else (cache_dir or True), jobs=jobs, engine=engine,
                     ray_address=ray_address, precompress=not no_precompress, index=index,
                     nlist=nlist, nprobe=nprobe, model_layout=model_layout,
                     model_matmul=model_matmul)
    except WebsemError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
