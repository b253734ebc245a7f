"""The embedding stage of `websem build --engine ray`: chunk token ids → vectors on Ray Data.

Everything else of a build (reading, chunking, tokenizing, the index, the bundle) stays on the
machine that runs `websem build`; only token ids travel to the cluster and only vectors come back.

How it runs:

- The token ids become Arrow tables (a ``list<int32>`` column plus each row's input index), one
  per work unit of the local engine (``plan_batches``: longest chunks first, cut by token count,
  so :class:`~websem.build.embed.ChunkEmbedder` batches equal-length chunks), handed to
  ``ray.data.from_arrow``. The input index brings every vector back to its row, so the order
  the cluster finishes in never matters.
- ``map_batches`` runs :class:`_EmbedActor`, a callable class, on a fixed pool of actors
  (``ray.data.ActorPoolStrategy``): one actor per ``cpus_per_actor`` CPUs of the cluster, each
  holding one ONNX Runtime session (a ``ChunkEmbedder``), so the model loads once per worker.
- The model package goes to the cluster through the object store, so worker nodes need no
  shared file system: an actor uses the driver's package path when that folder exists on its
  node with the same sha256, else it writes the shipped files to a per-node cache and verifies
  them. Workers need the same websem and onnxruntime versions installed (checked; a different
  onnxruntime could change the vectors).

``ChunkEmbedder`` makes row i depend only on ``ids[i]``, so the vectors equal the local engine's
bit for bit on the same CPU kind (tests/test_ray.py checks the whole bundle byte for byte).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websem.text.errors import WebsemError

__all__ = ["RayRun", "check_ray_address", "embed_token_ids", "embed_on_ray", "import_ray"]

INSTALL_HINT = "pip install 'websem[ray]'"
#: Seconds the actor pool may take to start (new worker processes, model load; on an autoscaling
#: cluster, new nodes) before the build fails.
START_TIMEOUT_S = 600


def import_ray():
    """``ray`` with Ray Data, or a `websem:` error with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401  (ray without the [data] extra lacks pyarrow/pandas)
    except ImportError as e:
        raise WebsemError(
            f"websem: --engine ray needs Ray Data, which is not installed ({e}); install it with "
            f"`{INSTALL_HINT}`, or build with the default --engine local"
        ) from e
    return ray


@dataclass
class RayRun:
    """What one Ray embedding pass did: the vectors plus where and how fast they were made."""

    vectors: np.ndarray
    seconds: float  # wall time of the embedding pass (connecting to the cluster excluded)
    connect_seconds: float
    nodes: int  # alive nodes in the cluster
    cpus: float  # CPUs in the cluster
    actors: list[dict[str, Any]] = field(default_factory=list)  # node_id, node_ip, pid, rows, busy_s

    @property
    def chunks_per_s(self) -> float:
        return len(self.vectors) / self.seconds if self.seconds > 0 else float("inf")


def _probe(address: str, label: str = "--ray-address", timeout: float = 5.0) -> None:
    """Fail fast with a clear message when nothing listens at ``address`` (given as ``label``):
    ``ray.init`` itself retries for a long time and then raises a generic error."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise WebsemError(
            f"websem: {label} {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the address "
            "`ray start --head` prints), ray://HOST:10001 (Ray Client) or auto"
        )
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise WebsemError(
            f"websem: {label} {address}: no Ray cluster answers there ({e.strerror or e}); "
            "start one with `ray start --head --port PORT` and pass the address it prints, "
            "or leave out --ray-address to run a Ray instance on this machine"
        ) from e


def check_ray_address(address: str | None) -> None:
    """Cheap checks before a build's slow steps: Ray Data is installed and, when an address is
    given, something listens there (a `websem:` error otherwise)."""
    import_ray()
    if address:
        _probe(address)
    elif os.environ.get("RAY_ADDRESS"):
        _probe(os.environ["RAY_ADDRESS"], "$RAY_ADDRESS")


def _connect(address: str | None) -> bool:
    """Connect to the cluster at ``address`` (None: ``$RAY_ADDRESS``, else a new local
    instance). Returns True when this call started the connection (and must shut it down)."""
    ray = import_ray()
    if ray.is_initialized():  # a caller (e.g. a notebook or a benchmark) already connected
        return False
    import logging

    # Ray reports usage statistics to a web service by default; a build must not phone home.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    label = "--ray-address" if address else "$RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        _probe(address, label)
        try:
            ray.init(address=address, **kwargs)
        except Exception as e:  # ray raises ConnectionError, RuntimeError, ValueError...
            raise WebsemError(
                f"websem: {label} {address}: could not join the Ray cluster there "
                f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else e}); "
                "check that it is the GCS address printed by `ray start --head` and that this "
                f"machine runs the cluster's Ray version (ray {ray.__version__} here)"
            ) from e
    else:
        ray.init(include_dashboard=False, **kwargs)
    return True


def _package_payload(model_dir: Path) -> tuple[dict, dict[str, bytes]]:
    """The model package's manifest and every file of it (verified), to ship."""
    from websem.export.package import load_model_package

    manifest = load_model_package(model_dir)
    names = sorted(manifest["files"]) + ["manifest.json"]
    return manifest, {n: (model_dir / n).read_bytes() for n in names}


def _package_matches(model_dir: Path, sha: str) -> bool:
    from websem.export.package import load_model_package

    try:
        return load_model_package(model_dir)["files"]["model.onnx"]["sha256"] == sha
    except WebsemError:
        return False


class _EmbedActor:
    """One Ray Data actor: one ``ChunkEmbedder`` (one ONNX Runtime session), built once."""

    def __init__(self, model_dir: str, model_sha: str, package: list, threads: int,
                 versions: dict[str, str]) -> None:
        import onnxruntime
        import ray

        if onnxruntime.__version__ != versions["onnxruntime"]:
            raise WebsemError(
                f"websem: the Ray worker on {ray.util.get_node_ip_address()} runs onnxruntime "
                f"{onnxruntime.__version__}, the build machine {versions['onnxruntime']}; vectors "
                f"would differ: install the same `{INSTALL_HINT}` on every node"
            )
        local = Path(model_dir)
        if not _package_matches(local, model_sha):
            # No shared file system: write the shipped package into a per-node cache, atomically.
            local = Path(tempfile.gettempdir()) / "websem-ray-models" / model_sha
            if not _package_matches(local, model_sha):
                files: dict[str, bytes] = ray.get(package[0])  # fetched only where needed
                tmp = local.with_name(f".{model_sha}.{os.getpid()}")
                tmp.mkdir(parents=True, exist_ok=True)
                for name, data in files.items():
                    (tmp / name).write_bytes(data)
                import shutil

                # A folder appears whole (rename is atomic), so one that exists but does not
                # verify is a corrupt earlier copy; if another actor of this node renamed its
                # copy in meanwhile, ours fails to rename onto it and is dropped.
                if not _package_matches(local, model_sha):
                    shutil.rmtree(local, ignore_errors=True)
                    try:
                        tmp.rename(local)
                    except OSError:
                        pass
                shutil.rmtree(tmp, ignore_errors=True)
                if not _package_matches(local, model_sha):
                    raise WebsemError(f"websem: the model package shipped to {local} does not verify")
        from websem.build.embed import ChunkEmbedder

        self.embedder = ChunkEmbedder(local, threads=threads)
        self.node_id = ray.get_runtime_context().get_node_id()
        self.node_ip = ray.util.get_node_ip_address()
        self.pid = os.getpid()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = [np.asarray(x).tolist() for x in batch["ids"]]
        t0 = time.perf_counter()
        vecs = self.embedder.embed(ids)
        dt = time.perf_counter() - t0
        n = len(ids)
        return {
            "i": np.asarray(batch["i"], dtype=np.int64),
            "vec": np.asarray(vecs, dtype=np.float32),
            "node_id": np.full(n, self.node_id),
            "node_ip": np.full(n, self.node_ip),
            "pid": np.full(n, self.pid, dtype=np.int64),
            "busy_s": np.full(n, dt / n if n else 0.0),
        }


def _blocks(ids: list[list[int]], n_actors: int):
    """Arrow tables of ``(i, ids)``: the work units of the local engine
    (:func:`~websem.build.embed.plan_batches`: rows sorted longest first, cut by token count), so
    each block is one actor call whose equal-length chunks share batched runs."""
    import pyarrow as pa

    from .embed import TOKENS_PER_BATCH, plan_batches

    lengths = [len(x) for x in ids]
    total = sum(lengths)
    # Up to 8 full batches per unit, but at least ~4 units per actor so every actor stays busy.
    unit_tokens = max(TOKENS_PER_BATCH // 4, min(8 * TOKENS_PER_BATCH, total // (4 * n_actors) + 1))
    tables = []
    for part in plan_batches(lengths, range(len(ids)), unit_tokens):
        offsets = np.zeros(len(part) + 1, dtype=np.int32)
        np.cumsum([lengths[j] for j in part], out=offsets[1:])
        flat = np.concatenate([np.asarray(ids[j], dtype=np.int32) for j in part])
        tables.append(pa.table({"i": pa.array(part, pa.int64()),
                                "ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))}))
    return tables


def _unwrap(e: BaseException) -> str:
    """The user-facing line of an actor failure (a `websem:` message or a missing module)."""
    text = str(e)
    for line in text.splitlines():
        line = line.strip()
        if "websem:" in line:
            return line[line.index("websem:"):]
    if "No module named 'websem" in text:
        return ("websem: the Ray workers cannot import websem; install the same websem on every "
                f"node of the cluster (`{INSTALL_HINT}` in the node image or venv)")
    return ""


def embed_on_ray(
    ids: list[list[int]],
    model_dir: Path,
    *,
    address: str | None,
    progress: bool,
    actors: int | None = None,
    cpus_per_actor: int = 1,
) -> RayRun:
    """Embed token-id sequences on Ray Data; the vectors come back in input order.

    ``actors``: pool size (default: the cluster's CPUs // ``cpus_per_actor``); each actor
    reserves ``cpus_per_actor`` CPUs and runs ONNX Runtime with that many threads.
    """
    import logging

    from websem.build.progress import progress as progress_bar

    model_dir = Path(model_dir).absolute()
    manifest, payload = _package_payload(model_dir)
    model_sha = manifest["files"]["model.onnx"]["sha256"]
    if not ids:
        return RayRun(vectors=np.zeros((0, int(manifest["dims"])), dtype=np.float32), seconds=0.0,
                      connect_seconds=0.0, nodes=0, cpus=0.0)
    t_connect = time.perf_counter()
    started = _connect(address)
    ray = import_ray()
    # Ray Data logs its own progress and execution summaries; websem reports progress itself.
    data_log = logging.getLogger("ray.data")
    log_level = data_log.level
    data_log.setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start",
                                          "wait_for_min_actors_s")}
    try:
        connect_s = time.perf_counter() - t_connect
        cpus = float(ray.cluster_resources().get("CPU", 0))
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        if cpus < cpus_per_actor:
            raise WebsemError(
                f"websem: the Ray cluster has {cpus:g} CPUs, fewer than one actor needs "
                f"({cpus_per_actor}); add worker nodes (`ray start --address ...`), or start the head "
                "without `--num-cpus 0`"
            )
        n_actors = max(1, min(actors or int(cpus // cpus_per_actor), len(ids)))
        import onnxruntime

        versions = {"onnxruntime": onnxruntime.__version__}
        t0 = time.perf_counter()
        actor_stats: dict[tuple[str, int], dict[str, Any]] = {}
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        # Start the whole pool before the first block: otherwise the first actor up (often the
        # driver's node) takes blocks while the others still load, and a pool the cluster cannot
        # place fails with a timeout instead of waiting forever.
        ctx.wait_for_min_actors_s = START_TIMEOUT_S
        ds = ray.data.from_arrow(_blocks(ids, n_actors))
        # In a list, so Ray passes the reference instead of resolving it into every actor.
        package = [ray.put(payload)]
        ds = ds.map_batches(
            _EmbedActor,
            fn_constructor_kwargs={"model_dir": str(model_dir), "model_sha": model_sha,
                                   "package": package, "threads": cpus_per_actor,
                                   "versions": versions},
            batch_size=None,  # one block = one work unit = one call
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_cpus=cpus_per_actor,
            udf_modifying_row_count=False,
        )
        vectors: np.ndarray | None = None
        seen = np.zeros(len(ids), dtype=bool)
        try:
            with progress_bar("embedding (ray)", len(ids), unit="chunks", enabled=progress) as bar:
                for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    idx, vec = b["i"], np.asarray(b["vec"], dtype=np.float32)
                    if vectors is None:
                        vectors = np.zeros((len(ids), vec.shape[1]), dtype=np.float32)
                    vectors[idx] = vec
                    seen[idx] = True
                    for nid, nip, pid, busy in zip(b["node_id"], b["node_ip"], b["pid"], b["busy_s"],
                                                   strict=True):
                        a = actor_stats.setdefault((str(nid), int(pid)), {
                            "node_id": str(nid), "node_ip": str(nip), "pid": int(pid),
                            "rows": 0, "busy_s": 0.0})
                        a["rows"] += 1
                        a["busy_s"] += float(busy)
                    bar.advance(len(idx))
        except WebsemError:
            raise
        except Exception as e:
            msg = _unwrap(e)
            if msg:
                raise WebsemError(msg) from e
            if "Timed out while starting actors" in str(e):
                raise WebsemError(
                    f"websem: the Ray cluster did not start {n_actors} embedding actors "
                    f"({cpus_per_actor} CPU each) within {START_TIMEOUT_S} s; check `ray status` for "
                    "free CPUs and node errors"
                ) from e
            raise
        if vectors is None or not seen.all():
            missing = int((~seen).sum())
            raise WebsemError(f"websem: Ray returned no vector for {missing} of {len(ids)} chunks; "
                              "re-run the build (a node may have left the cluster)")
        seconds = time.perf_counter() - t0
    finally:
        data_log.setLevel(log_level)
        for k, v in saved.items():  # a caller's own Ray Data settings are theirs
            setattr(ctx, k, v)
        if started:
            ray.shutdown()
    run = RayRun(vectors=vectors, seconds=seconds, connect_seconds=connect_s, nodes=nodes, cpus=cpus,
                 actors=sorted(actor_stats.values(), key=lambda a: (a["node_ip"], a["pid"])))
    if progress:
        per_actor = [a["rows"] / a["busy_s"] for a in run.actors if a["busy_s"] > 0]
        print(f"websem: ray: {len(ids)} chunks on {len(run.actors)} actors / "
              f"{len({a['node_id'] for a in run.actors})} nodes in {seconds:.1f} s "
              f"({run.chunks_per_s:.1f} chunks/s; per actor "
              f"{float(np.median(per_actor)) if per_actor else 0.0:.1f} chunks/s while busy)",
              file=sys.stderr, flush=True)
    return run


def embed_token_ids(ids: list[list[int]], model_dir: Path, *, address: str | None,
                    progress: bool) -> np.ndarray:
    """float32 ``[len(ids), dims]`` vectors of token-id sequences (with [CLS]/[SEP]) embedded on a
    Ray cluster (``address``; None: ``$RAY_ADDRESS``, else a Ray instance on this machine), in
    input order, equal to :class:`~websem.build.embed.ChunkEmbedder`'s on the same inputs.

    Each sequence may also be a 1-D integer numpy array (e.g. uint32): at a million chunks, lists
    of Python ints would take gigabytes that arrays do not."""
    return embed_on_ray(ids, model_dir, address=address, progress=progress).vectors
