"""Step 3 of `websem build`: embed every chunk on the CPU, one chunk per onnxruntime run.

Batch size 1 is the determinism rule of docs/architecture.md: a chunk's vector never depends on
which other chunks were embedded with it (dynamic int8 picks one activation scale per run).
Tokenization is websem's stdlib WordPiece (the same code the browser runs in Pyodide).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunk import Chunk

__all__ = ["EmbedStats", "load_package_tokenizer", "embed_chunks"]


@dataclass
class EmbedStats:
    """Throughput of one embedding pass (printed at the end of `websem build`)."""

    docs: int
    chunks: int
    seconds: float

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else float("inf")

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else float("inf")


def load_package_tokenizer(model_dir: Path, max_length: int):
    """The stdlib WordPiece tokenizer of a model package (``tokenizer.json``)."""
    from websem.text.wordpiece import WordPieceTokenizer

    text = (Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8")
    return WordPieceTokenizer.from_json(text, max_length=max_length)


def embed_chunks(
    model_dir: Path,
    chunks: list[Chunk],
    tokenizer,
    *,
    n_docs: int,
    progress: bool = True,
    threads: int | None = None,
) -> tuple[np.ndarray, EmbedStats]:
    """float32 ``[len(chunks), dims]`` vectors (``sentence_embedding``) and throughput."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from websem.export.embed import OnnxEmbedder

    embedder = OnnxEmbedder(Path(model_dir), threads=threads)
    out = np.zeros((len(chunks), embedder.dims), dtype=np.float32)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not progress, transient=False,
    ) as bar:
        task = bar.add_task("embedding", total=len(chunks))
        for i, c in enumerate(chunks):
            out[i] = embedder.embed_ids(tokenizer.encode(c.text).ids)
            bar.advance(task)
    return out, EmbedStats(n_docs, len(chunks), time.perf_counter() - t0)
