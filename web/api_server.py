"""Run the edge search API (web/src/handler.js behind the Node adapter web/src/node.js) from Python.

This is what `websem serve BUNDLE --api` starts: a Node 20 process serving

    GET /search?q=...&k=10&mode=...   JSON hits, identical to `websem query`
    GET /healthz                      200 once the engine is loaded, 503 before

on 127.0.0.1. The search itself runs in Node on Pyodide + onnxruntime-web, the same code that
runs on Deno and Cloudflare Workers, so the Python side only supervises the process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from websem.text.errors import WebsemError

__all__ = [
    "ApiServer",
    "LEAN_NODE_FLAGS",
    "NODE_ADAPTER",
    "NODE_ENV",
    "NODE_FLAGS",
    "find_node",
    "EDGE_EXAMPLES",
    "edge_runtime_binary",
    "free_port",
    "run_api_server",
    "start_api_server",
    "start_edge_example",
]

NODE_ADAPTER = Path(__file__).resolve().parent / "src" / "node.js"

# 2026-11-28 (bench/results/edge_memory.md, edge.md): V8's optimising wasm tier (TurboFan)
# compiles the hot parts of the 14 MB ORT wasm on background threads; the freed compiler memory
# stays in glibc's per-thread malloc arenas. One arena (MALLOC_ARENA_MAX=1) measured ~80 MB less
# peak RSS at no measurable speed cost, so it is the default. `--liftoff-only` (no TurboFan)
# cuts ~140 MB more but runs queries ~2-2.4x slower: opt in with WEBSEM_NODE_FLAGS=--liftoff-only
# (or `lean=True`) where memory, not latency, is the limit.
NODE_FLAGS: tuple[str, ...] = ()
LEAN_NODE_FLAGS: tuple[str, ...] = ("--liftoff-only",)
NODE_ENV = {"MALLOC_ARENA_MAX": "1"}


def find_node() -> str:
    """Path of a Node >= 20 executable (WEBSEM_NODE overrides PATH)."""
    node = os.environ.get("WEBSEM_NODE") or shutil.which("node")
    if not node:
        raise WebsemError(
            "websem: `node` was not found on PATH; install Node.js 20 or newer, or set WEBSEM_NODE "
            "to its path (the edge API runs the same JS runtime as the browser)"
        )
    return node


def _node_flags() -> list[str]:
    env = os.environ.get("WEBSEM_NODE_FLAGS")
    return list(NODE_FLAGS) if env is None else env.split()


@dataclass
class ApiServer:
    """A running Node API process; use as a context manager or call :meth:`stop`."""

    process: subprocess.Popen[str]
    url: str
    bundle: Path
    log: list[str] = field(default_factory=list)

    def get(self, path: str, timeout: float = 60.0) -> tuple[int, dict]:
        """GET `path` (e.g. "search?q=x") and return (status, parsed JSON body)."""
        try:
            with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def wait_ready(self, timeout: float = 120.0) -> dict:
        """Poll /healthz until the engine is loaded; raise WebsemError if it fails or times out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise WebsemError(f"websem: the API process exited with {self.process.returncode}")
            try:
                status, body = self.get("healthz", timeout=10)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status, body = 0, {}
            if status == 200:
                return body
            if body.get("status") == "error":
                raise WebsemError(body.get("error", {}).get("message", "websem: engine failed"))
            if time.monotonic() > deadline:
                raise WebsemError(f"websem: the API at {self.url} was not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_api_server(
    bundle: Path,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    prefix: str = "",
    wait: bool = True,
    lazy: bool = False,
    lean: bool = False,
    node_flags: list[str] | None = None,
) -> ApiServer:
    """Start `node web/src/node.js BUNDLE` and return once it listens (and, with `wait`, is ready).

    `port=0` picks a free port; the chosen URL is read from the process's first output line.
    `lazy=True` leaves the engine unstarted until the first request (no warm-up at boot).
    `lean=True` trades query speed for memory (Node runs wasm with Liftoff only; docs/edge.md).
    """
    bundle = Path(bundle).resolve()
    if not (bundle / "manifest.json").is_file():
        raise WebsemError(
            f"websem: {bundle} holds no manifest.json; pass a bundle folder written by `websem build`"
        )
    if node_flags is not None:
        flags = node_flags
    else:
        flags = list(LEAN_NODE_FLAGS) if lean else _node_flags()
    cmd = [find_node(), *flags, str(NODE_ADAPTER), str(bundle), "--port", str(port), "--host", host]
    if prefix:
        cmd += ["--prefix", prefix]
    if lazy:
        cmd.append("--lazy")
    env = {**NODE_ENV, **os.environ}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    marker = "listening on "
    if marker not in line:
        rest = line + (proc.stdout.read() if proc.poll() is not None else "")
        proc.kill()
        raise WebsemError(f"websem: the API process did not start: {rest.strip()}")
    server = ApiServer(proc, line.split(marker, 1)[1].strip(), bundle, [line])
    # Drain the pipe so a chatty process can never block on a full stdout buffer.
    threading.Thread(target=lambda: server.log.extend(proc.stdout), daemon=True).start()
    if wait:
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
    return server


# The Deno and Cloudflare Workers examples (demo/edge/) and the runtimes they run under, from npm
# (demo/edge/package.json; `bash .ci/setup` installs them). workerd is the open-source Workers
# runtime: same V8 rules as production (no wasm compilation from bytes, no import(url)).
EDGE_EXAMPLES = Path(__file__).resolve().parents[1] / "demo" / "edge"
_EDGE_BINARIES = {
    "deno": ("@deno", "linux-x64-glibc", "deno"),
    "workerd": ("@cloudflare", "workerd-linux-64", "bin", "workerd"),
}


def edge_runtime_binary(runtime: str) -> Path:
    """Path of the npm-installed `deno` or `workerd` binary; WebsemError with the fix if absent."""
    if runtime not in _EDGE_BINARIES:
        raise WebsemError(f"websem: unknown edge runtime {runtime!r}; choose one of {', '.join(_EDGE_BINARIES)}")
    path = EDGE_EXAMPLES / "node_modules" / Path(*_EDGE_BINARIES[runtime])
    if not path.is_file():
        raise WebsemError(
            f"websem: {runtime} is not installed at {path}; run `bash .ci/setup` "
            "(or `npm ci --ignore-scripts` in demo/edge)"
        )
    return path


def start_edge_example(
    runtime: str, bundle: Path, workdir: Path, *, port: int = 0, wait: bool = True, capnp: str | None = None
) -> ApiServer:
    """Start demo/edge/<runtime> on 127.0.0.1 exactly as its header says, and return it.

    `runtime` is "deno" (demo/edge/deno/main.ts) or "workerd" (demo/edge/cloudflare/worker.js
    with workerd.capnp, laid out in `workdir` the way wrangler sees it: the bundle beside the
    Worker). `capnp` replaces workerd.capnp's text (tests use it to drop a flag). The Worker starts
    its engine on the first request. Returns once the port accepts connections; `wait` also polls
    /healthz until the engine is loaded.
    """
    bundle = Path(bundle).resolve()
    if not (bundle / "manifest.json").is_file():
        raise WebsemError(
            f"websem: {bundle} holds no manifest.json; pass a bundle folder written by `websem build`"
        )
    port = port or free_port()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if runtime == "deno":
        cmd = [str(edge_runtime_binary("deno")), "run", "--no-prompt", f"--allow-read={bundle}",
               "--allow-net=127.0.0.1", str(EDGE_EXAMPLES / "deno" / "main.ts"), str(bundle), str(port)]
    else:
        binary = edge_runtime_binary(runtime)
        shutil.copy(EDGE_EXAMPLES / "cloudflare" / "worker.js", workdir / "worker.js")
        text = (EDGE_EXAMPLES / "cloudflare" / "workerd.capnp").read_text(encoding="utf-8")
        (workdir / "workerd.capnp").write_text(capnp if capnp is not None else text, encoding="utf-8")
        link = workdir / "bundle"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(bundle, target_is_directory=True)
        cmd = [str(binary), "serve", "workerd.capnp", f"--directory-path=assets={bundle}",
               f"--socket-addr=http=127.0.0.1:{port}"]
    env = {**os.environ, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env)
    server = ApiServer(proc, f"http://127.0.0.1:{port}/", bundle)
    assert proc.stdout is not None
    threading.Thread(target=lambda: server.log.extend(proc.stdout), daemon=True).start()
    try:
        _wait_listening(server, port)
        if wait:
            server.wait_ready(timeout=180)
    except BaseException:
        server.stop()
        raise
    return server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(server: ApiServer, port: int, timeout: float = 60.0) -> None:
    """Return once 127.0.0.1:`port` accepts connections (the engine may still be unstarted)."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise WebsemError(f"websem: the edge runtime exited with {server.process.returncode}: "
                              + "".join(server.log)[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise WebsemError(f"websem: nothing listened on 127.0.0.1:{port} after {timeout:.0f} s") from None
            time.sleep(0.1)


def run_api_server(
    bundle: Path,
    *,
    port: int = 8787,
    host: str = "127.0.0.1",
    lean: bool = False,
    echo: Callable[[str], object] = print,
) -> None:
    """Blocking entry for `websem serve BUNDLE --api`: start, print the URL, wait for Ctrl-C.

    SIGTERM stops it like Ctrl-C: Python's default SIGTERM action would exit without running
    `finally`, leaving the Node child serving on the port.
    """
    server = start_api_server(bundle, port=port, host=host, lean=lean, wait=False)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    echo(f"websem: search API for {server.bundle} at {server.url}search?q=... and {server.url}healthz "
         "(Ctrl-C stops)")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if server.process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL, None):
        raise WebsemError(f"websem: the API process exited with {server.process.returncode}: "
                          + "".join(server.log[-5:]).strip())


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
