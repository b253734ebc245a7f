"""Step 4a of `websem build`: Pyodide's standard library trimmed to what a bundle loads.

Pyodide ships the whole standard library as ``python_stdlib.zip`` (2.5 MB, deflated). A bundle's
Python (``websem_text``, the trimmed snowballstemmer) and Pyodide's own start-up load about a third
of it. ``trim_stdlib(bundle_tmp_dir)`` measures which
members are loaded (``web/tools/stdlib_modules.mjs``: the bundle's own Pyodide with the full zip
boots, runs the runtime's set-up, imports every shipped module and every stdlib module the shipped
Python names anywhere, function bodies included, then encodes a query and formats an error) and
replaces ``vendor/pyodide/python_stdlib.zip`` with a zip of just those members, plus ``KEEP``.

The trimmed zip stores its members uncompressed: brotli over the whole archive (the bundle's
``.br`` copy, docs/hosting.md) is 0.70 MB where per-member deflate was 0.86 MB, and zipimport reads
stored members without inflating them. Deterministic: members in name order, fixed timestamps;
the same inputs give the same bytes. Cached like the snapshot: ``CACHE/stdlib/<key>.zip``, where
the key is a sha256 over the full zip, the shipped Python, the measuring scripts and the Node
version. Without Node, or with ``WEBSEM_NO_STDLIB_TRIM=1``, the full zip ships (same results, 2 MB
more).

A normal boot mounts this zip. A snapshot restore mounts a smaller one: called before the snapshot
is made, this zip is what build/snapshot.py cuts ``runtime/pyodide-snapshot.stdlib.zip`` from (its
members whose modules the snapshot has not loaded, plus ``KEEP``; the snapshot holds zipimport's
table of that zip). A visitor restoring the snapshot downloads 85 KB brotli of stdlib instead of
633 KB (Cranfield).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

__all__ = ["KEEP", "STDLIB_PATH", "stdlib_imports", "trim_stdlib", "write_trimmed"]

#: Bundle path of the standard library zip (build/bundle.py VENDOR["pyodide"]["stdlib"]).
STDLIB_PATH = "vendor/pyodide/python_stdlib.zip"
#: Kept whether measured or not: codecs that a str/bytes conversion may look up by name (a few
#: KB), so text in a legacy encoding never meets a missing module.
KEEP = (
    "encodings/__init__.py", "encodings/aliases.py", "encodings/ascii.py", "encodings/latin_1.py",
    "encodings/utf_8.py", "encodings/utf_8_sig.py", "encodings/utf_16.py", "encodings/utf_16_le.py",
    "encodings/utf_16_be.py", "encodings/utf_32.py", "encodings/cp1252.py",
)
_TIMEOUT_S = 600
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Trimmed zips made in this process, by key: builds without a cache folder (`--no-cache`, tests)
# measure once per set of inputs, not once per build.
_MADE: dict[str, bytes] = {}


def _script() -> Path:
    import websem.web

    return Path(websem.web.__file__).resolve().parent / "tools" / "stdlib_modules.mjs"


def stdlib_imports(py_root: Path) -> list[str]:
    """Every absolute module name imported anywhere in the ``.py`` files under ``py_root`` (module
    level and function bodies), with its parent packages, sorted. Names that are not in the
    standard library are harmless: the measuring script ignores what it cannot import."""
    names: set[str] = set()
    for path in sorted(Path(py_root).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for name in found:
                parts = name.split(".")
                names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(names)


def _key(root: Path, node: str) -> str:
    h = hashlib.sha256(b"websem-stdlib-stored\x00")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout
    h.update(version.strip().encode() + b"\x00" + _script().read_bytes() + b"\x00"
             + _script().with_name("stdlib_zip.mjs").read_bytes() + b"\x00"
             + "\x00".join(KEEP).encode() + b"\x00")
    for rel in ("runtime/python.js", "runtime/errors.js", STDLIB_PATH, "model/tokenizer.json"):
        h.update(rel.encode() + b"\x00" + hashlib.sha256((root / rel).read_bytes()).digest())
    for p in sorted((root / "py").rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\x00" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def write_trimmed(full: Path, members: list[str], out: Path) -> None:
    """Write the zip of ``members`` (plus ``KEEP``) of ``full`` to ``out``, deterministically."""
    with zipfile.ZipFile(full) as src:
        present = set(src.namelist())
        wanted = sorted((set(members) | set(KEEP)) & present)
        tmp = out.with_name(out.name + f".{os.getpid()}.part")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as dst:
            for name in wanted:
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                dst.writestr(info, src.read(name))
    os.replace(tmp, out)


def _measure(root: Path, node: str, max_length: int) -> list[str]:
    from .bundle import VENDOR  # here, not at import: bundle.py imports this module

    pyodide = VENDOR["pyodide"]
    proc = subprocess.run(
        [node, str(_script()), str(root), str(max_length), pyodide["module"], pyodide["lock"],
         json.dumps(stdlib_imports(root / "py"))],
        capture_output=True, text=True, timeout=_TIMEOUT_S,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"stdlib_modules.mjs failed: {tail}")
    members = json.loads(proc.stdout.strip().splitlines()[-1])
    if not isinstance(members, list) or not members:
        raise RuntimeError("stdlib_modules.mjs found no modules")
    return [str(m) for m in members]


def trim_stdlib(bundle_tmp_dir: Path, max_length: int, cache_dir: Path | None = None, *,
                console=None) -> dict | None:
    """Replace the bundle's python_stdlib.zip with the trimmed one. Returns
    ``{"members", "bytes", "full_bytes"}``, or None when the full zip stays (no Node,
    ``WEBSEM_NO_STDLIB_TRIM=1``, or a failed measurement, which is printed)."""
    root = Path(bundle_tmp_dir)
    target = root / STDLIB_PATH
    if os.environ.get("WEBSEM_NO_STDLIB_TRIM") == "1":
        return None
    node = shutil.which("node")

    def warn(message: str) -> None:
        if console is not None:
            console.print(f"[yellow]full Python stdlib shipped[/] ({message})")

    if node is None:
        warn("node not found; install Node >= 20 to trim it")
        return None
    full_bytes = target.stat().st_size
    key = _key(root, node)
    if key in _MADE:
        target.write_bytes(_MADE[key])
        with zipfile.ZipFile(target) as z:
            return {"members": len(z.namelist()), "bytes": len(_MADE[key]), "full_bytes": full_bytes}
    cached = Path(cache_dir) / "stdlib" / f"{key}.zip" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        with zipfile.ZipFile(cached) as z:
            ok = z.testzip() is None
            members = z.namelist()
        if ok:
            shutil.copyfile(cached, target)
            _MADE[key] = target.read_bytes()
            return {"members": len(members), "bytes": target.stat().st_size, "full_bytes": full_bytes}
    try:
        members = _measure(root, node, max_length)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as e:
        warn(str(e))
        return None
    trimmed = target.with_name("python_stdlib.trimmed.zip")
    write_trimmed(target, members, trimmed)
    os.replace(trimmed, target)
    _MADE[key] = target.read_bytes()
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            part = cached.with_name(f".{key}.{os.getpid()}.part")
            shutil.copyfile(target, part)
            os.replace(part, cached)
        except OSError:
            pass  # the cache is an optimisation only
    with zipfile.ZipFile(target) as z:
        count = len(z.namelist())
    return {"members": count, "bytes": target.stat().st_size, "full_bytes": full_bytes}
