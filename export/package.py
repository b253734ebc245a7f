"""Step 6: the model package on disk: manifest, sha256 of every file, atomic write, verify."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from websem.text.errors import WebsemError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PACKAGE_FILES",
    "package_tokenizer_json",
    "write_package",
    "load_model_package",
]

FORMAT = "websem-model"
FORMAT_VERSION = 1
PACKAGE_FILES = ("model.onnx", "tokenizer.json")


def package_tokenizer_json(tok: dict, max_seq_length: int) -> bytes:
    """The source tokenizer.json with padding disabled and truncation at `max_seq_length`
    (MiniLM's own file pads and truncates to 128; the model's cap is 256, and websem never pads)."""
    tok = dict(tok)
    tok["padding"] = None
    tok["truncation"] = {
        "direction": "Right",
        "max_length": max_seq_length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    return (json.dumps(tok, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _dump(obj: dict) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_package(out: Path, files: dict[str, bytes], manifest: dict, *, force: bool = False) -> dict:
    """Write `files` + manifest.json into a temp dir beside `out`, then rename it into place, so a
    failure never leaves a half-written package. Returns the manifest (with its `files` table)."""
    out = Path(out)
    if out.exists() and not force:
        raise WebsemError(f"websem: output folder '{out}' already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = dict(manifest)
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(files.items())
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / "manifest.json").write_bytes(_dump(manifest))
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "pkg")
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def load_model_package(directory: Path | str) -> dict:
    """Read and verify a model package: format, version and the sha256/size of every file."""
    d = Path(directory)
    redo = "re-run `websem export --out " + str(d) + " --force`"
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise WebsemError(f"websem: '{d}' is not a websem model package (no manifest.json); {redo}")
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except ValueError as e:
        raise WebsemError(f"websem: {mpath} is not valid JSON ({e}); {redo}") from e
    if manifest.get("format") != FORMAT:
        raise WebsemError(f"websem: {mpath} has format {manifest.get('format')!r}, expected '{FORMAT}'; {redo}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise WebsemError(
            f"websem: model package format_version {manifest.get('format_version')!r} is not supported "
            f"(this websem reads {FORMAT_VERSION}); {redo}"
        )
    files = manifest.get("files") or {}
    for name in PACKAGE_FILES:
        if name not in files:
            raise WebsemError(f"websem: {mpath} does not list {name}; {redo}")
    for name, info in files.items():
        p = d / name
        if not p.is_file():
            raise WebsemError(f"websem: model package file {p} is missing; {redo}")
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != info.get("sha256") or p.stat().st_size != info.get("size"):
            raise WebsemError(
                f"websem: {p} does not match its manifest (sha256/size differ: modified or corrupt); {redo}"
            )
    return manifest
