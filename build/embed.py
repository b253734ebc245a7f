"""Step 3 of `websem build`: embed the chunks on the CPU, fast, with batch-1 vectors.

The determinism rule of docs/architecture.md: a chunk's vector never depends on which other chunks
were embedded with it, and equals what one onnxruntime run on that chunk alone (batch 1, no padding)
gives. The engine here keeps that rule bit for bit while batching (docs/build.md):

* Chunks are grouped by token length, so a batch needs no padding and no attention mask games.
* The transformer trunk (everything up to ``last_hidden_state``) runs batched. Its rows are
  bit-identical to batch-1 rows for float32 matmuls (weight-int8 packages dequantize their weights
  at load): every output element is the same dot product in the same order whatever the batch.
  ``tests/test_embed.py`` checks it on real chunks of every length.
* The pooling tail (masked mean over the sequence axis, L2 normalisation) is *not* batch-invariant
  in onnxruntime: ReduceSum over axis 1 of ``[1, S, D]`` and of ``[B, S, D]`` sum in different
  orders (last bits differ). So the tail, extracted from the package's own graph, runs per chunk at
  batch 1: the same kernels on the same shapes as a batch-1 run of the whole model.
* Packages with dynamic activation quantization (``DynamicQuantizeLinear``: one scale per run) are
  never batched: their trunk itself depends on the batch.
* ``jobs`` worker processes each hold one :class:`ChunkEmbedder`; rows are written by index, so the
  result does not depend on scheduling either.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunk import Chunk

__all__ = [
    "ChunkEmbedder",
    "EmbedStats",
    "LocalEngine",
    "TOKENS_PER_BATCH",
    "default_jobs",
    "embed_chunks",
    "embed_rows",
    "load_package_tokenizer",
    "plan_batches",
]

#: Tokens per batched trunk run (batch size = TOKENS_PER_BATCH // length, at least 1). Chosen by
#: measurement (docs/build.md): short chunks gain ~1.5x from batching up to ~1k tokens, while
#: 256-token chunks gain nothing and get slower past ~2k (bigger attention buffers).
TOKENS_PER_BATCH = 1024
# Below this many tokens to embed (~40 full chunks) the local engine runs in-process.
_IN_PROCESS_TOKENS = 10_000
_TRUNK_OUTPUT = "last_hidden_state"
_OUTPUT = "sentence_embedding"
# Ops whose result depends on the whole batch (per-tensor activation scale): never batch them.
_BATCH_DEPENDENT_OPS = ("DynamicQuantizeLinear", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")


@dataclass
class EmbedStats:
    """Throughput of one embedding pass (printed at the end of `websem build`)."""

    docs: int
    chunks: int
    seconds: float
    reused: int = 0  # rows taken from the cache or the previous bundle
    embedded: int = 0  # rows computed in this build (duplicates of one chunk count once each)
    jobs: int = 1
    from_cache: int = 0
    from_previous: int = 0
    unique_embedded: int = 0  # distinct token sequences actually run through the model
    rejected: int = 0  # corrupt or foreign cache rows ignored (and re-embedded)
    embed_seconds: float = 0.0  # the model part of ``seconds`` (the rest: tokenizing, lookups)

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else float("inf")

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else float("inf")

    @property
    def embedded_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else float("inf")


def load_package_tokenizer(model_dir: Path, max_length: int):
    """The stdlib WordPiece tokenizer of a model package (``tokenizer.json``)."""
    from websem.text.wordpiece import WordPieceTokenizer

    text = (Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8")
    return WordPieceTokenizer.from_json(text, max_length=max_length)


def default_jobs() -> int:
    """Worker processes when ``--jobs`` is not given: one per usable core, one thread each.

    Measured on the 2-core box (docs/build.md): 2 single-threaded processes beat 1 process with 2
    intra-op threads, because small ops (layer norms, softmax, adds) do not scale across threads."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores)


def _batch_invariant(model_dir: Path) -> bool:
    """Whether the trunk of this package may run batched (no per-run activation quantization)."""
    try:
        ops = json.loads((Path(model_dir) / "manifest.json").read_text("utf-8")).get("ops")
    except (OSError, ValueError):
        ops = None
    if ops is None:  # unknown graph: read the ops from the model itself
        import onnx

        graph = onnx.load(str(Path(model_dir) / "model.onnx"), load_external_data=False).graph
        ops = {n.op_type for n in graph.node}
    return not any(op in ops for op in _BATCH_DEPENDENT_OPS)


def _tail_model(model_path: Path, input_name: str) -> bytes | None:
    """The pooling tail of the package graph (``last_hidden_state`` + mask → sentence_embedding)
    as a serialized model, or None when the graph has no such split point."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(model_path), load_external_data=False)
    outputs = {o.name for o in model.graph.output}
    if _TRUNK_OUTPUT not in outputs or _OUTPUT not in outputs:
        return None
    try:
        tail = Extractor(model).extract_model([_TRUNK_OUTPUT, input_name], [_OUTPUT])
    except Exception:  # noqa: BLE001 - any extraction problem just means "no batching"
        return None
    # The tail must not reach back into the trunk's inputs other than the mask.
    if {i.name for i in tail.graph.input} != {_TRUNK_OUTPUT, input_name}:
        return None
    return tail.SerializeToString()


class ChunkEmbedder:
    """One onnxruntime session over a model package; ``embed(ids)`` → float32 ``[len(ids), dims]``.

    Row i depends only on ``ids[i]`` and is bit-identical to ``OnnxEmbedder.embed_ids(ids[i])``
    (one batch-1 run of the whole model): any grouping of the same inputs gives identical rows.
    This is the unit the local engine and the Ray actors both run. ``threads`` is onnxruntime's
    intra-op thread count (None: onnxruntime's default, one per core).
    """

    def __init__(self, model_dir: Path, threads: int | None = None, *, batch: bool = True) -> None:
        import onnxruntime as ort
        from websem.export.embed import OnnxEmbedder

        model_dir = Path(model_dir)
        self._emb = OnnxEmbedder(model_dir, threads=threads)
        self.dims: int = self._emb.dims
        self._tail = None
        if batch and _batch_invariant(model_dir) and "attention_mask" in self._emb.input_names:
            tail = _tail_model(model_dir / "model.onnx", "attention_mask")
            if tail is not None:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1  # a few kB of work per run: threads only cost
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                self._tail = ort.InferenceSession(tail, opts, providers=["CPUExecutionProvider"])

    @property
    def batched(self) -> bool:
        """Whether equal-length chunks share trunk runs (False: one full run per chunk)."""
        return self._tail is not None

    def _feeds(self, arr: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {"input_ids": arr, "attention_mask": np.ones_like(arr), "token_type_ids": np.zeros_like(arr)}
        return {k: v for k, v in feeds.items() if k in self._emb.input_names}

    def embed(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """float32 ``[len(ids), dims]``; row i is the batch-1 vector of ``ids[i]``."""
        out = np.empty((len(ids), self.dims), dtype=np.float32)
        if self._tail is None:
            for i, seq in enumerate(ids):
                out[i] = self._emb.embed_ids(seq)
            return out
        by_len: dict[int, list[int]] = {}
        for i, seq in enumerate(ids):
            by_len.setdefault(len(seq), []).append(i)
        session = self._emb.session
        for length, rows in by_len.items():
            step = max(1, TOKENS_PER_BATCH // max(1, length))
            for s in range(0, len(rows), step):
                part = rows[s:s + step]
                arr = np.asarray([ids[i] for i in part], dtype=np.int64).reshape(len(part), length)
                hidden = session.run([_TRUNK_OUTPUT], self._feeds(arr))[0]
                mask = np.ones((1, length), dtype=np.int64)
                for j, i in enumerate(part):
                    out[i] = self._tail.run([_OUTPUT], {_TRUNK_OUTPUT: hidden[j:j + 1],
                                                        "attention_mask": mask})[0][0]
        return out


def plan_batches(lengths: Sequence[int], rows: Sequence[int], tokens: int = 8 * TOKENS_PER_BATCH) -> list[list[int]]:
    """Work units for the workers: ``rows`` sorted by token length (longest first, so the slow ones
    do not straggle at the end), cut into units of about ``tokens`` tokens. Units never mix much:
    a unit is mostly one or two lengths, so each worker's batches stay padding-free and full."""
    order = sorted(rows, key=lambda i: (-lengths[i], i))
    units: list[list[int]] = []
    cur: list[int] = []
    n_tok = 0
    for i in order:
        cur.append(i)
        n_tok += lengths[i]
        if n_tok >= tokens:
            units.append(cur)
            cur, n_tok = [], 0
    if cur:
        units.append(cur)
    return units


# --- worker processes -------------------------------------------------------------------------
_WORKER: ChunkEmbedder | None = None


def _worker_init(model_dir: str, threads: int) -> None:
    global _WORKER
    _watch_parent(os.getppid())
    _WORKER = ChunkEmbedder(Path(model_dir), threads=threads)


def _watch_parent(parent: int) -> None:
    """Exit when the build process dies (SIGKILL, OOM): a worker blocked on its task queue would
    otherwise live on as an orphan holding a model in memory."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="websem-parent-watch", daemon=True).start()


def _worker_embed(rows: list[int], ids: list[list[int]]) -> tuple[list[int], np.ndarray]:
    assert _WORKER is not None
    return rows, _WORKER.embed(ids)


class LocalEngine:
    """The local embedding engine: ``jobs`` worker processes (spawned once, each holding one
    :class:`ChunkEmbedder` with ``threads`` intra-op threads), or this process when jobs is 1.
    Use as a context manager; :meth:`embed` may be called many times on the same workers."""

    def __init__(self, model_dir: Path, *, jobs: int | None = None, threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.jobs = jobs or default_jobs()
        # One thread per process when there are several: the processes already fill the cores.
        self.threads = threads or (1 if self.jobs > 1 else None)
        self._pool = None
        self._local: ChunkEmbedder | None = None

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def start(self, *, batch: bool = True) -> None:
        """Load the model (in every worker); :meth:`embed` calls this on first use. ``batch=False``
        (a handful of chunks, in-process): one full run per chunk, which skips importing onnx and
        extracting the pooling tail; the vectors are the same either way."""
        if self.jobs <= 1:
            if self._local is None:
                self._local = ChunkEmbedder(self.model_dir, threads=self.threads, batch=batch)
            return
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may hold onnxruntime thread pools and a live display.
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=mp.get_context("spawn"),
                                             initializer=_worker_init,
                                             initargs=(str(self.model_dir), self.threads or 1))
            # Start every worker (and load the model) now, not in the middle of the first units.
            for f in [self._pool.submit(_worker_ready) for _ in range(self.jobs)]:
                f.result()

    def embed(self, ids: Callable[[int], Sequence[int]], rows: Sequence[int],
              lengths: Sequence[int]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Embed the chunks ``rows`` (``ids(i)``: chunk i's token ids, ``lengths[i]``: its length);
        yield ``(rows, float32 vectors)`` pieces as they finish, in no particular order. At most
        two units per worker are in flight, so memory stays bounded however many chunks there are."""
        if not rows:
            return
        total = sum(lengths[i] for i in rows)
        small = self._pool is None and self._local is None and total < _IN_PROCESS_TOKENS
        if small:
            # A rebuild that changed a few chunks: spawning workers (each loading the model) would
            # cost more than embedding them here.
            self.jobs, self.threads = 1, None
        # Units of up to 8 full batches, but at least ~4 per worker so small builds use every core.
        unit_tokens = max(TOKENS_PER_BATCH // 4, min(8 * TOKENS_PER_BATCH, total // (4 * self.jobs) + 1))
        units = plan_batches(lengths, rows, unit_tokens)
        self.start(batch=not small)
        if self._local is not None:
            for unit in units:
                yield unit, self._local.embed([ids(i) for i in unit])
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        pending: set = set()
        for unit in units:
            pending.add(self._pool.submit(_worker_embed, unit, [list(ids(i)) for i in unit]))
            if len(pending) >= 2 * self.jobs:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()


def _worker_ready() -> int:
    return os.getpid()


def embed_rows(
    ids: Callable[[int], Sequence[int]],
    rows: Sequence[int],
    lengths: Sequence[int],
    model_dir: Path,
    *,
    jobs: int | None = None,
    threads: int | None = None,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """:meth:`LocalEngine.embed` on a fresh engine (closed when the pieces are consumed)."""
    if not rows:
        return
    with LocalEngine(model_dir, jobs=jobs, threads=threads) as engine:
        yield from engine.embed(ids, rows, lengths)


def embed_chunks(
    model_dir: Path,
    chunks: list[Chunk],
    tokenizer,
    *,
    n_docs: int,
    progress: bool = True,
    threads: int | None = None,
    jobs: int | None = None,
) -> tuple[np.ndarray, EmbedStats]:
    """float32 ``[len(chunks), dims]`` vectors (``sentence_embedding``) and throughput, in memory and
    without a cache (benchmarks; ``websem build`` uses :func:`embed_to_file`)."""
    from .progress import progress as progress_bar

    t0 = time.perf_counter()
    encoded = [tokenizer.encode(c.text).ids for c in chunks]
    lengths = [len(x) for x in encoded]
    out: np.ndarray | None = None
    with progress_bar("embedding", len(chunks), unit="chunks", enabled=progress) as bar:
        for rows, vecs in embed_rows(encoded.__getitem__, range(len(chunks)), lengths, model_dir,
                                     jobs=jobs, threads=threads):
            if out is None:
                out = np.zeros((len(chunks), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
            bar.advance(len(rows))
    if out is None:
        out = np.zeros((0, ChunkEmbedder(Path(model_dir), threads=1).dims), dtype=np.float32)
    n = len(chunks)
    return out, EmbedStats(n_docs, n, time.perf_counter() - t0, embedded=n, jobs=jobs or default_jobs())


def embed_to_file(
    model_dir: Path,
    model_sha256: str,
    dims: int,
    chunks: Sequence[Chunk],
    tokenizer,
    path: Path,
    *,
    n_docs: int,
    cache_dir: Path | None,
    previous: tuple[dict[bytes, int], np.ndarray] | None = None,
    jobs: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, EmbedStats]:
    """Embed ``chunks`` into a float32 ``[n, dims]`` memmap at ``path``, reusing what the cache
    (``cache_dir``; None: no cache) and the previous bundle (``previous``, from
    :func:`websem.build.cache.previous_bundle_rows`) hold, and embedding only the rest with the
    ``engine`` ("local": :func:`embed_rows` with ``jobs`` processes; "ray": build/ray_embed.py).

    Streams: chunks are tokenized and looked up in blocks, vectors go straight to the memmap, and
    only the token ids of chunks still to embed are kept (as uint32 arrays)."""
    import hashlib

    import onnxruntime
    from websem.text.errors import WebsemError

    from .cache import EmbeddingCache, chunk_key
    from .progress import progress as progress_bar

    if engine not in ("local", "ray"):
        raise WebsemError(f"websem: embedding engine {engine!r} is not supported; allowed: local, ray")
    t0 = time.perf_counter()
    n = len(chunks)
    # Cache rows are keyed by the model *and* the onnxruntime version that computed them: another
    # version may round differently, and a rebuild must be byte-identical to a clean build.
    model_sha256 = f"{model_sha256}+onnxruntime-{onnxruntime.__version__}"
    out = np.memmap(path, dtype="<f4", mode="w+", shape=(max(n, 1), dims))[:n]
    cache = EmbeddingCache(cache_dir, model_sha256, dims) if cache_dir is not None else None
    todo: dict[bytes, list[int]] = {}  # key -> rows with those ids (duplicates embedded once)
    todo_ids: dict[bytes, np.ndarray] = {}
    from_cache = from_previous = 0
    local: LocalEngine | None = None
    try:
        block = 4096
        with progress_bar("cache lookup", n, unit="chunks", enabled=progress and n > 4 * block) as bar:
            for s in range(0, n, block):
                part = range(s, min(n, s + block))
                # The previous bundle first: matched by text, it needs no tokenizing at all.
                rest = []
                for i in part:
                    row = None
                    if previous is not None:
                        row = previous[0].get(hashlib.sha256(chunks[i].text.encode("utf-8")).digest())
                    if row is None:
                        rest.append(i)
                    else:
                        out[i] = previous[1][row].astype(np.float32)
                        from_previous += 1
                ids = [tokenizer.encode(chunks[i].text).ids for i in rest]
                keys = [chunk_key(model_sha256, x) for x in ids]
                hits = cache.get_many(keys) if cache is not None else {}
                for i, key, x in zip(rest, keys, ids, strict=True):
                    vec = hits.get(key)
                    if vec is not None:
                        out[i] = vec
                        from_cache += 1
                        continue
                    if key not in todo:
                        todo[key] = []
                        todo_ids[key] = np.asarray(x, dtype=np.uint32)
                    todo[key].append(i)
                bar.advance(len(part))
        keys = list(todo)
        lengths = [len(todo_ids[k]) for k in keys]
        t_embed = time.perf_counter()
        # The Ray engine reports its own progress (build/ray_embed.py).
        bar_on = progress and bool(keys) and engine != "ray"
        with progress_bar("embedding", len(keys), unit="chunks", enabled=bar_on) as bar:
            if engine == "ray":
                from .ray_embed import embed_token_ids as ray_embed_token_ids

                pieces = []
                if keys:
                    vecs = ray_embed_token_ids([todo_ids[k] for k in keys], Path(model_dir),
                                               address=ray_address, progress=progress)
                    pieces = [(list(range(len(keys))), np.asarray(vecs, dtype=np.float32))]
            else:
                local = LocalEngine(Path(model_dir), jobs=jobs)
                pieces = local.embed(lambda r: todo_ids[keys[r]].tolist(), range(len(keys)), lengths)
            for rows, vecs in pieces:
                if vecs.shape != (len(rows), dims):
                    raise WebsemError(f"websem: the {engine} engine returned vectors of shape {vecs.shape} "
                                      f"for {len(rows)} chunks of {dims} dims; this is a bug, please report it")
                for r, vec in zip(rows, vecs, strict=True):
                    out[todo[keys[r]]] = vec
                if cache is not None:
                    cache.put_many([keys[r] for r in rows], vecs)
                bar.advance(len(rows))
        embed_seconds = time.perf_counter() - t_embed
        if local is not None:
            jobs = local.jobs  # what really ran (a handful of chunks run in-process)
    finally:
        if local is not None:
            local.close()
        if cache is not None:
            cache.close()
    out.flush()
    embedded = sum(len(v) for v in todo.values())
    stats = EmbedStats(n_docs, n, time.perf_counter() - t0, reused=from_cache + from_previous,
                       embedded=embedded, jobs=jobs or default_jobs(), from_cache=from_cache,
                       from_previous=from_previous, unique_embedded=len(keys),
                       rejected=cache.rejected if cache is not None else 0, embed_seconds=embed_seconds)
    return out, stats
