"""The build's embedding engine gives exactly the batch-1 vectors (docs/build.md).

Real model package, real chunks (Cranfield abstracts cut at random word counts, so many token
lengths share batches and some hit the 256-token cap), compared bit for bit with one
``OnnxEmbedder.embed_ids`` run per chunk: the CPU reference that `websem query` and the
determinism contract of docs/architecture.md are defined by."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from websem.build.embed import ChunkEmbedder, LocalEngine, _batch_invariant, load_package_tokenizer, plan_batches
from websem.export.embed import OnnxEmbedder


@pytest.fixture(scope="module")
def chunk_ids(model_package: Path, shared_data: Path) -> list[list[int]]:
    tok = load_package_tokenizer(model_package, 256)
    rng = random.Random(13)
    out = []
    with open(shared_data / "cranfield" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            words = (d["title"] + " " + d["text"]).split()
            out.append(tok.encode(" ".join(words[: rng.randint(1, len(words))])).ids)
            if len(out) == 150:
                break
    # Equal lengths must occur (so batches really hold several chunks), and the cap too.
    long = next(x for x in out if len(x) > 40)
    out += [long, long[:-2] + long[-1:], [long[0], long[-1]]]
    lengths = [len(x) for x in out]
    assert len(set(lengths)) < len(lengths) - 20
    return out


@pytest.fixture(scope="module")
def batch1(model_package: Path, chunk_ids: list[list[int]]) -> np.ndarray:
    emb = OnnxEmbedder(model_package, threads=1)
    return np.stack([emb.embed_ids(x) for x in chunk_ids])


@pytest.mark.parametrize("threads", [1, 2])
def test_chunk_embedder_bit_identical_to_batch1(model_package, chunk_ids, batch1, threads):
    emb = ChunkEmbedder(model_package, threads=threads)
    assert emb.batched, "the default package must take the batched path (it is what is under test)"
    out = emb.embed(chunk_ids)
    assert out.dtype == np.float32 and out.shape == batch1.shape
    diff = np.flatnonzero(~(out == batch1).all(axis=1))
    assert diff.size == 0, f"rows {diff[:10].tolist()} differ from batch 1 (max {np.abs(out - batch1).max():.3g})"


def test_any_grouping_gives_the_same_rows(model_package, chunk_ids, batch1):
    emb = ChunkEmbedder(model_package, threads=1)
    order = list(range(len(chunk_ids)))
    random.Random(5).shuffle(order)
    out = np.empty_like(batch1)
    for size in (1, 7, 64):
        for s in range(0, len(order), size):
            part = order[s:s + size]
            out[part] = emb.embed([chunk_ids[i] for i in part])
        assert np.array_equal(out, batch1), f"groups of {size} changed some rows"


def test_local_engine_worker_processes(model_package, chunk_ids, batch1):
    lengths = [len(x) for x in chunk_ids]
    out = np.full_like(batch1, np.nan)
    seen = []
    with LocalEngine(model_package, jobs=2) as engine:
        for rows, vecs in engine.embed(chunk_ids.__getitem__, range(len(chunk_ids)), lengths):
            out[rows] = vecs
            seen += rows
        assert engine.jobs == 2 and engine._pool is not None, "the worker processes must be under test"
    assert sorted(seen) == list(range(len(chunk_ids)))
    assert np.array_equal(out, batch1)


def test_plan_batches_covers_every_row_once():
    lengths = [5, 9, 9, 300, 2, 9, 5]
    units = plan_batches(lengths, range(len(lengths)), tokens=20)
    flat = [i for u in units for i in u]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first


def test_dynamic_quantization_is_never_batched(tmp_path, model_package):
    """A per-run activation scale (DynamicQuantizeLinear) makes the trunk batch-dependent."""
    assert _batch_invariant(model_package)
    manifest = json.loads((model_package / "manifest.json").read_text())
    manifest["ops"] = [*manifest["ops"], "DynamicQuantizeLinear", "MatMulInteger"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert not _batch_invariant(tmp_path)


def test_workers_exit_when_the_build_is_killed(model_package):
    """SIGKILL of `websem build` (or the OOM killer) must not leave workers holding a model."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from websem.build.embed import LocalEngine\n"
        f"e = LocalEngine(Path({str(model_package)!r}), jobs=2)\n"
        "e.start()\n"
        "print(sorted(e._pool._processes), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = eval(proc.stdout.readline())  # noqa: S307 - our own child's printed list of ints
        assert len(pids) == 2 and all(os.path.exists(f"/proc/{p}") for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    deadline = time.monotonic() + 20
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the killed build"
