"""`websem build --engine ray` on a real Ray cluster: a head node and a worker node, two `ray start`
processes on loopback addresses of this machine, one CPU each.

The nodes use 127.0.0.2 and 127.0.0.3 rather than 127.0.0.1: Ray rewrites 127.0.0.1/localhost to
the machine's network address, and these tests talk to loopback only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
N_DOCS = 150
SNAPSHOT = "runtime/pyodide-snapshot.bin"


def _free_port(host: str) -> int:
    # An ephemeral port: outside Ray's default worker port range (10002-19999).
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# Token authentication with a token of this test run: explicit, so the outcome does not depend on
# whether this machine has a ~/.ray/auth_token (Ray 2.60 turns token mode on when that file exists).
_TOKEN = secrets.token_hex(32)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = _TOKEN
    env["RAY_USAGE_STATS_ENABLED"] = "0"  # no reporting to a web service
    env["WEBSEM_PROGRESS_SECONDS"] = "3600"  # one final progress line per step
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # a stopped test node need not drain for 30 s
    env.pop("RAY_ADDRESS", None)
    return env


def _descendants(pids: list[int]) -> set[int]:
    """Every live process below ``pids`` (from /proc), so teardown kills exactly the cluster's."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _with_tag(tag: str) -> set[int]:
    """Live processes whose command line names ``tag`` (this cluster's unique temp folder)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if tag in (d / "cmdline").read_bytes().decode(errors="replace"):
                    out.add(int(d.name))
            except OSError:
                continue
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


class Cluster:
    """A head node and one worker node, each a `ray start --block` process we own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def _start(self, name: str, args: list[str]) -> None:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        env = _env()
        # The actors' per-node model cache ($TMPDIR/websem-ray-models) starts empty for every test run.
        env["TMPDIR"] = str(self.root / "tmp")
        (self.root / "tmp").mkdir(exist_ok=True)
        with open(log, "wb") as f:
            self.procs.append(subprocess.Popen(
                [str(VENV_BIN / "ray"), "start", "--block", "--num-cpus", "1", "--disable-usage-stats",
                 "--object-store-memory", str(200 * 1024 * 1024), "--temp-dir", str(self.root / name),
                 *args], stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True))

    def _wait(self, log: Path, timeout: float = 180) -> None:
        t0 = time.monotonic()
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"ray start exited:\n{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"ray start did not finish in {timeout} s:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def start(self) -> None:
        self._start("head", ["--head", "--port", str(self.port), "--node-ip-address", HEAD_IP,
                             "--include-dashboard=false"])
        self._wait(self.logs[0])
        self._start("worker", ["--address", self.address, "--node-ip-address", WORKER_IP])
        self._wait(self.logs[1])

    def stop(self) -> None:
        """SIGTERM each `ray start --block` (it stops the node's processes), then SIGKILL whatever
        of exactly this cluster's processes is still alive."""
        ours = _descendants([p.pid for p in self.procs]) | _with_tag(str(self.root))
        for p in reversed(self.procs):  # the worker node first
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        ours |= _with_tag(str(self.root))
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in ours) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in ours:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    cluster = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
    left = [pid for pid in _with_tag(str(cluster.root)) if _alive(pid)]
    assert not left, f"Ray processes left running: {left}"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The first Cranfield documents, as a BEIR corpus.jsonl."""
    out = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    with open(shared_data / "cranfield" / "corpus.jsonl", encoding="utf-8") as f:
        lines = [next(f) for _ in range(N_DOCS)]
    out.write_text("".join(lines), encoding="utf-8")
    return out


def _build(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "websem"), "build", *args], capture_output=True, text=True,
                          env=_env(), timeout=900)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_build_is_byte_identical_to_local(ray_cluster: Cluster, small_corpus: Path, model_package: Path,
                                              tmp_path: Path) -> None:
    local = _build([str(small_corpus), "--out", str(tmp_path / "local"), "--model", str(model_package),
                    "--no-cache", "--quiet"])
    assert local.returncode == 0, local.stderr
    ray = _build([str(small_corpus), "--out", str(tmp_path / "ray"), "--model", str(model_package),
                  "--no-cache", "--engine", "ray", "--ray-address", ray_cluster.address])
    assert ray.returncode == 0, ray.stderr
    # The engine's own report: both actors ran, one on each node of the cluster.
    assert "websem: ray: " in ray.stderr and " on 2 actors / 2 nodes " in ray.stderr, ray.stderr

    a, b = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    assert json.loads(a["manifest.json"])["index"]["chunks"] >= N_DOCS
    assert a["index/vectors.bin"] == b["index/vectors.bin"]
    # The Pyodide memory snapshot (a heap image made by Node) is not yet reproducible from one
    # build to the next, whatever the engine, and neither are its precompressed copies; every other
    # byte, and the manifest apart from those files' hashes and sizes, must be equal.
    differ = sorted(f for f in a if a[f] != b[f] and not f.startswith(SNAPSHOT) and f != "manifest.json")
    assert differ == [], f"files differ between the local and the Ray build: {differ}"
    ma, mb = json.loads(a["manifest.json"]), json.loads(b["manifest.json"])
    for m in (ma, mb):
        m["files"].pop(SNAPSHOT, None)
        m.get("encodings", {}).pop(SNAPSHOT, None)
    assert ma == mb


_DIRECT = r"""
import json, os, sys
from pathlib import Path
import numpy as np
import ray
from websem.build.embed import ChunkEmbedder, load_package_tokenizer
from websem.build.ray_embed import _EmbedActor, _package_payload, embed_on_ray

model, address, corpus = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
tok = load_package_tokenizer(model, 256)
docs = [json.loads(line) for line in corpus.read_text().splitlines()][:60]
# Duplicates and very different lengths, in no particular order.
ids = [tok.encode(d["title"] + "\n\n" + d["text"]).ids for d in docs]
ids = ids + ids[:7] + [[101, 102], ids[3][:20] + [102]]
# Lists of ints or uint32 arrays (what a build keeps at scale), mixed.
run = embed_on_ray([np.asarray(x, dtype=np.uint32) if k % 3 == 0 else x for k, x in enumerate(ids)], model,
                   address=address, progress=False)
ref = ChunkEmbedder(model, threads=1).embed(ids)

# An actor on a node without the package folder gets it through the object store.
ray.init(address=address, log_to_driver=False)
manifest, payload = _package_payload(model)
actor = ray.remote(num_cpus=1)(_EmbedActor).remote(
    model_dir="/nonexistent/websem-model", model_sha=manifest["files"]["model.onnx"]["sha256"],
    package=[ray.put(payload)], threads=1, versions={"onnxruntime": __import__("onnxruntime").__version__})
batch = {"i": np.arange(3), "ids": np.array([np.array(x) for x in ids[:3]], dtype=object)}
shipped = ray.get(actor.__call__.remote(batch))
ray.kill(actor)
ray.shutdown()
print(json.dumps({
    "identical": run.vectors.tobytes() == ref.tobytes(),
    "shape": list(run.vectors.shape),
    "actors": run.actors, "nodes": run.nodes, "cpus": run.cpus, "driver_pid": os.getpid(),
    "shipped_identical": np.asarray(shipped["vec"]).tobytes() == ref[:3].tobytes(),
}))
"""


def test_ray_engine_order_actors_and_shipped_model(ray_cluster: Cluster, small_corpus: Path,
                                                   model_package: Path) -> None:
    """embed_on_ray: input order kept exactly (duplicates, a 2-token chunk), the work spread over
    actors in other processes on both nodes, and a node that lacks the model folder still gets the
    same model (shipped through the object store and verified)."""
    r = subprocess.run([sys.executable, "-c", _DIRECT, str(model_package), ray_cluster.address,
                        str(small_corpus)], capture_output=True, text=True, env=_env(), timeout=600,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["shape"] == [60 + 9, 384]
    assert res["identical"], "Ray vectors differ from ChunkEmbedder's"
    assert res["shipped_identical"], "the actor with the shipped package computed other vectors"
    assert res["nodes"] == 2 and res["cpus"] == 2
    actors = res["actors"]
    assert {a["node_ip"] for a in actors} == {HEAD_IP, WORKER_IP}
    assert len({a["node_id"] for a in actors}) == 2
    assert all(a["pid"] != res["driver_pid"] for a in actors)
    assert sum(a["rows"] for a in actors) == 60 + 9
    assert all(a["rows"] > 0 and a["busy_s"] > 0 for a in actors)
    sha = json.loads((model_package / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
    shipped = ray_cluster.root / "tmp" / "websem-ray-models" / sha
    assert (shipped / "model.onnx").read_bytes() == (model_package / "model.onnx").read_bytes()


def test_wrong_ray_address_is_a_clear_error(small_corpus: Path, model_package: Path, tmp_path: Path) -> None:
    port = _free_port(HEAD_IP)  # nothing listens there
    r = _build([str(small_corpus), "--out", str(tmp_path / "b"), "--model", str(model_package), "--no-cache",
                "--engine", "ray", "--ray-address", f"{HEAD_IP}:{port}"])
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"websem: --ray-address {HEAD_IP}:{port}: no Ray cluster answers there"), r.stderr
    assert "ray start --head" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()

    r = _build([str(small_corpus), "--out", str(tmp_path / "b"), "--model", str(model_package), "--no-cache",
                "--engine", "ray", "--ray-address", "head-node"])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("websem: --ray-address 'head-node' is not HOST:PORT"), \
        r.stderr


def test_missing_ray_names_the_extra() -> None:
    """Without Ray installed, --engine ray says which extra to install."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from websem.build.ray_embed import import_ray\n"
            "from websem.text.errors import WebsemError\n"
            "try:\n    import_ray()\nexcept WebsemError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith("websem: --engine ray needs Ray Data"), r.stdout + r.stderr
    assert "pip install 'websem[ray]'" in r.stdout


def test_no_chunks_needs_no_cluster(model_package: Path) -> None:
    from websem.build.ray_embed import embed_token_ids

    out = embed_token_ids([], model_package, address="127.0.0.2:1", progress=False)
    assert out.shape == (0, 384) and out.dtype == np.float32
