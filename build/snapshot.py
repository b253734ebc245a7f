"""Step 4b of `websem build`: a Pyodide memory snapshot of the ready tokenizer (optional).

``make_snapshot(bundle_tmp_dir)`` runs ``web/tools/make_snapshot.mjs`` with Node on the bundle being
assembled: it boots the bundle's own Pyodide, imports ``websem_text``, builds the WordPiece
tokenizer from the bundle's ``model/tokenizer.json`` and saves the wasm heap as
``runtime/pyodide-snapshot.bin``. The browser then restores that heap instead of starting Python
(cold start: docs/architecture.md "Runtime"); ``manifest.json`` lists it with its sha256 like any
file, so call this before the file table is hashed.

With it comes ``runtime/pyodide-snapshot.stdlib.zip`` (``manifest.runtime.snapshot_stdlib``), the
stdlib zip a restore mounts instead of ``vendor/pyodide/python_stdlib.zip``: that zip without the
members whose modules the snapshot already holds, plus ``stdlib.KEEP``'s codecs (Cranfield: 22 of
160 members, 85 KB brotli instead of 633 KB). The snapshot holds zipimport's table of this zip
(each member's offset), so the two files are made, cached and shipped only as a pair. Written
deterministically: the kept members' bytes and order are the shipped zip's.

The snapshot is an optimisation only: without Node, or if making it fails, the bundle is built
without one (a warning is printed) and the runtime boots Pyodide normally, with the same results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["SNAPSHOT_PATH", "SNAPSHOT_STDLIB_PATH", "make_snapshot", "script_files"]

#: Bundle-relative path of the snapshot (web/src/snapshot.js SNAPSHOT_PATH).
SNAPSHOT_PATH = "runtime/pyodide-snapshot.bin"
#: Bundle-relative path of the stdlib zip a snapshot restore mounts (web/src/snapshot.js
#: SNAPSHOT_STDLIB_PATH; the manifest names it in ``runtime.snapshot_stdlib``).
SNAPSHOT_STDLIB_PATH = "runtime/pyodide-snapshot.stdlib.zip"
# Node boots Pyodide once (~3 s idle, far more on a loaded box).
_TIMEOUT_S = 600


def _script() -> Path:
    import websem.web

    return Path(websem.web.__file__).resolve().parent / "tools" / "make_snapshot.mjs"


def script_files() -> list[Path]:
    """The build-side code a snapshot is made by: make_snapshot.mjs and the zip helpers it
    imports (a snapshot cache key covers them all)."""
    return [_script(), _script().with_name("stdlib_zip.mjs")]


def make_snapshot(bundle_tmp_dir: Path, *, console=None) -> str | None:
    """Write ``runtime/pyodide-snapshot.bin`` and ``runtime/pyodide-snapshot.stdlib.zip`` into the
    bundle folder being built.

    Needs ``runtime/python.js``, ``runtime/snapshot.js``, the Pyodide vendor files (the stdlib zip
    already trimmed: build/stdlib.py), ``py/`` and ``model/`` already copied into
    ``bundle_tmp_dir``. Returns the snapshot's bundle-relative path, or None when no snapshot was
    made (no Node, ``WEBSEM_NO_SNAPSHOT=1``, or a failure, which is printed); then neither file
    is left behind.
    """
    root = Path(bundle_tmp_dir)
    target = root / SNAPSHOT_PATH
    pair = (target, root / SNAPSHOT_STDLIB_PATH)
    for p in pair:
        p.unlink(missing_ok=True)

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
    from .stdlib import KEEP

    max_length = int(json.loads((root / "model" / "manifest.json").read_text(encoding="utf-8"))["max_seq_length"])
    pyodide = VENDOR["pyodide"]
    try:
        proc = subprocess.run(
            [node, str(_script()), str(root), str(max_length), pyodide["module"], pyodide["lock"],
             pyodide["stdlib"], json.dumps(list(KEEP))],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        for p in pair:
            p.unlink(missing_ok=True)
        warn(f"node took over {_TIMEOUT_S} s")
        return None
    if proc.returncode != 0 or not all(p.is_file() for p in pair):
        for p in pair:
            p.unlink(missing_ok=True)
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        warn(f"make_snapshot.mjs failed: {tail}")
        return None
    return SNAPSHOT_PATH
