"""Step 4c of `websem build`: the runtime's two worker entry points bundled into one file each.

``bundle_workers(bundle_tmp_dir)`` runs ``web/tools/bundle_workers.mjs`` (esbuild, pinned in
web/package.json) with Node on the bundle being assembled: ``runtime/worker.js`` and
``runtime/python-worker.js`` are replaced by single-module bundles of themselves and everything
they import, so a browser fetches each worker's code in one request instead of one round trip per
level of its import graph (cold start: docs/architecture.md, "Runtime"). The unbundled modules stay
in ``runtime/`` for the in-process engine (Node, Deno, edge handlers).

An optimisation only, like the Pyodide snapshot: without Node or esbuild, or if bundling fails, the
copied modules stay as they are (a warning is printed) and the runtime behaves the same, with a
slower first load. esbuild's output is deterministic, so rebuilds stay byte-identical.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["WORKER_ENTRIES", "bundle_workers", "script_files"]

#: The bundle-relative files bundle_workers replaces.
WORKER_ENTRIES = ("runtime/worker.js", "runtime/python-worker.js")
_TIMEOUT_S = 120


def _web_dir() -> Path:
    import websem.web

    return Path(websem.web.__file__).resolve().parent


def script_files() -> list[Path]:
    """The build-side code the worker bundles are made by."""
    return [_web_dir() / "tools" / "bundle_workers.mjs"]


def bundle_workers(bundle_tmp_dir: Path, *, console=None) -> bool:
    """Replace WORKER_ENTRIES in the bundle folder being built by their esbuild bundles, made from
    the runtime sources (web/src). Returns whether they were bundled; on any failure the copied
    modules are left untouched. ``WEBSEM_NO_JS_BUNDLE=1`` skips it (tests of the unbundled path)."""
    root = Path(bundle_tmp_dir)

    def warn(message: str) -> None:
        if console is not None:
            console.print(f"[yellow]runtime workers not bundled[/] ({message}); the browser loads "
                          "their modules one by one")

    if os.environ.get("WEBSEM_NO_JS_BUNDLE") == "1":
        return False
    node = shutil.which("node")
    if node is None:
        warn("node not found; install Node >= 20")
        return False
    if not (_web_dir() / "node_modules" / "esbuild").is_dir():
        warn("web/node_modules/esbuild is missing; run .ci/setup")
        return False
    staging = root / ".workers"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        try:
            proc = subprocess.run([node, str(script_files()[0]), str(_web_dir() / "src"), str(staging)],
                                  capture_output=True, text=True, timeout=_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            warn(f"esbuild took over {_TIMEOUT_S} s")
            return False
        made = [staging / Path(rel).name for rel in WORKER_ENTRIES]
        if proc.returncode != 0 or not all(p.is_file() for p in made):
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            warn(f"bundle_workers.mjs failed: {tail}")
            return False
        # Moved only once esbuild wrote both: a failure leaves the copied modules, never a mix.
        for src, rel in zip(made, WORKER_ENTRIES, strict=True):
            shutil.move(src, root / rel)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
