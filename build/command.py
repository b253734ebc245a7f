"""`websem build SOURCE --out BUNDLE [--model MODEL_PACKAGE]`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from websem.text.errors import WebsemError

from .index import DEFAULT_VECTOR_DTYPE, VECTOR_DTYPES
from .sources import DEFAULT_MAX_DOC_BYTES

__all__ = ["build_cmd", "default_model_dir"]


def default_model_dir() -> Path:
    """``$WEBSEM_MODEL`` if set, else ``.cache/model`` of a source checkout (written by `websem
    export --out .cache/model`)."""
    env = os.environ.get("WEBSEM_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".cache" / "model"


@click.command("build")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Bundle folder to write (replaced atomically if it is a previous bundle).")
@click.option("--model", "-m", type=click.Path(path_type=Path), default=None,
              help="Model package from `websem export` [default: $WEBSEM_MODEL or .cache/model].")
@click.option("--force", is_flag=True,
              help="Replace --out even if it exists and is not a websem bundle.")
@click.option("--vector-dtype", type=click.Choice(VECTOR_DTYPES), default=DEFAULT_VECTOR_DTYPE,
              show_default=True, help="Storage of the chunk vectors (see bench/results/index.md).")
@click.option("--encoding-errors", type=click.Choice(["strict", "replace"]), default="strict",
              show_default=True,
              help="Invalid UTF-8: fail naming the file (strict) or index it with U+FFFD.")
@click.option("--max-doc-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_DOC_BYTES,
              show_default=True, help="Refuse documents larger than this.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def build_cmd(
    source: Path, out: Path, model: Path | None, force: bool, vector_dtype: str,
    encoding_errors: str, max_doc_bytes: int, quiet: bool,
) -> None:
    """Build a static search bundle from SOURCE: a folder of .html/.htm/.md/.txt files or a
    BEIR corpus.jsonl (_id, title, text, optional url)."""
    from .bundle import build_bundle

    model = model or default_model_dir()
    try:
        build_bundle(source, out, model=model, force=force, vector_dtype=vector_dtype,
                     encoding_errors=encoding_errors, max_doc_bytes=max_doc_bytes,
                     progress=not quiet)
    except WebsemError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
