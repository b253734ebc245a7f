"""Step 4b of `websem build`: a Pyodide memory snapshot of the ready tokenizer (optional).

``make_snapshot(bundle_tmp_dir)`` runs ``web/tools/make_snapshot.mjs`` with Node on the bundle being
assembled: it boots the bundle's own Pyodide, imports ``websem_text``, builds the WordPiece
tokenizer from the bundle's ``model/tokenizer.json`` and saves the wasm heap as
``runtime/pyodide-snapshot.bin``. The browser then restores that heap instead of starting Python
(cold start: docs/architecture.md "Runtime"); ``manifest.json`` lists it with its sha256 like any
file, so call this before the file table is hashed.

The snapshot is an optimisation only: without Node, or if making it fails, the bundle is built
without one (a warning is printed) and the runtime boots Pyodide normally, with the same results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["SNAPSHOT_PATH", "make_snapshot"]

#: Bundle-relative path of the snapshot (web/src/snapshot.js SNAPSHOT_PATH).
SNAPSHOT_PATH = "runtime/pyodide-snapshot.bin"
# Node boots Pyodide once (~3 s idle, far more on a loaded box).
_TIMEOUT_S = 600


def _script() -> Path:
    import websem.web

    return Path(websem.web.__file__).resolve().parent / "tools" / "make_snapshot.mjs"


def make_snapshot(bundle_tmp_dir: Path, *, console=None) -> str | None:
    """Write ``runtime/pyodide-snapshot.bin`` into the bundle folder being built.

    Needs ``runtime/python.js``, ``runtime/snapshot.js``, the Pyodide vendor files, ``py/`` and ``model/`` already
    copied into ``bundle_tmp_dir``. Returns the snapshot's bundle-relative path, or None when no
    snapshot was made (no Node, ``WEBSEM_NO_SNAPSHOT=1``, or a failure, which is printed).
    """
    root = Path(bundle_tmp_dir)
    target = root / SNAPSHOT_PATH
    target.unlink(missing_ok=True)

    def warn(message: str) -> None:
        if console is not None:
            console.print(f"[yellow]no Pyodide snapshot[/] ({message}); the bundle boots Pyodide normally")

    if os.environ.get("WEBSEM_NO_SNAPSHOT") == "1":
        return None
    node = shutil.which("node")
    if node is None:
        warn("node not found; install Node >= 20 to make one")
        return None
    from .bundle import VENDOR  # here, not at import: bundle.py imports this module

    max_length = int(json.loads((root / "model" / "manifest.json").read_text(encoding="utf-8"))["max_seq_length"])
    pyodide = VENDOR["pyodide"]
    try:
        proc = subprocess.run(
            [node, str(_script()), str(root), str(max_length), pyodide["module"], pyodide["lock"]],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        target.unlink(missing_ok=True)
        warn(f"node took over {_TIMEOUT_S} s")
        return None
    if proc.returncode != 0 or not target.is_file():
        target.unlink(missing_ok=True)
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        warn(f"make_snapshot.mjs failed: {tail}")
        return None
    return SNAPSHOT_PATH
