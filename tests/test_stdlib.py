"""build/stdlib.py: the trimmed python_stdlib.zip. What it keeps is proven sufficient by the parity
tests, which run every bundle (built with the trimmed zip) in Chromium, Node, Deno and workerd;
here: the static import scan, determinism, and that a real build ships a zip that is a strict
subset of Pyodide's with every module its Python was measured to load.

Also the zip a snapshot restore mounts instead (runtime/pyodide-snapshot.stdlib.zip, made by
web/tools/make_snapshot.mjs): exactly the trimmed members the snapshot has not loaded, plus
``KEEP``, written byte for byte as write_trimmed would; the bundle's runtime mounts it on a restore
(a lazy import from it and a formatted Python error work), the whole zip on a fallback boot, and
a bundle whose manifest does not name it restores with the whole zip."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from websem.build.snapshot import SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH
from websem.build.stdlib import KEEP, STDLIB_PATH, stdlib_imports, write_trimmed

REPO = Path(__file__).resolve().parents[1]
FULL = REPO / "web" / "node_modules" / "pyodide" / "python_stdlib.zip"
DRIVER = REPO / "tests" / "js" / "snapshot_stdlib.mjs"
# A stdlib module the in-page index imports lazily (bs4's parser) and set-up does not load.
LAZY = "html/parser.py"


def test_stdlib_imports_reads_function_bodies(tmp_path: Path) -> None:
    pkg = tmp_path / "py" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("import json\nfrom . import b\n\ndef f():\n    import html.parser\n"
                              "    from urllib.parse import quote\n")
    (pkg / "b.py").write_text("x = 1\n")
    got = stdlib_imports(tmp_path / "py")
    assert {"json", "html", "html.parser", "urllib", "urllib.parse", "urllib.parse.quote"} <= set(got)
    assert got == sorted(got) and not any(n.startswith(".") or n == "b" for n in got)


def test_write_trimmed_is_deterministic_and_keeps_the_codecs(tmp_path: Path) -> None:
    members = ["json/__init__.py", "json/decoder.py", "re/__init__.py", "no/such/member.py"]
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    write_trimmed(FULL, members, a)
    write_trimmed(FULL, list(reversed(members)), b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z, zipfile.ZipFile(FULL) as full:
        names = z.namelist()
        assert names == sorted(names)
        assert set(names) == (set(members[:3]) | set(KEEP)) & set(full.namelist())
        for n in names:
            assert z.read(n) == full.read(n)
            assert z.getinfo(n).date_time == (1980, 1, 1, 0, 0, 0)


def test_built_bundle_ships_the_trimmed_zip(cranfield_bundle: Path) -> None:
    shipped = cranfield_bundle / STDLIB_PATH
    manifest = json.loads((cranfield_bundle / "manifest.json").read_text())
    assert manifest["files"][STDLIB_PATH]["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    with zipfile.ZipFile(shipped) as z, zipfile.ZipFile(FULL) as full:
        names = set(z.namelist())
        assert names < set(full.namelist())
        assert len(names) < len(full.namelist()) / 2
        # What the tokenizer, analyzer and bridge need, and Pyodide's own start-up.
        for need in ("json/__init__.py", "re/__init__.py", "pyodide/__init__.py", "_pyodide/_base.py",
                     "dataclasses.py", "typing.py", "encodings/utf_8.py"):
            assert need in names, need
        # Stored, so the transport's brotli compresses across members (the .br copy is what travels).
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    br = shipped.with_name(shipped.name + ".br")
    assert br.is_file() and br.stat().st_size < FULL.stat().st_size / 3


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    return node


def _driver(mode: str, bundle: Path):
    """tests/js/snapshot_stdlib.mjs's JSON answer for ``bundle``."""
    proc = subprocess.run([_node(), str(DRIVER), mode, str(bundle)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        return set(z.namelist())


def _linked_copy(bundle: Path, dest: Path) -> Path:
    """A copy of ``bundle`` whose files are symlinks, but for manifest.json (edited by the tests)."""
    shutil.copytree(bundle, dest, copy_function=os.symlink)
    manifest = dest / "manifest.json"
    data = manifest.read_bytes()
    manifest.unlink()
    manifest.write_bytes(data)
    return dest


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _entry(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _assert_lazy_import_and_error(out: dict) -> None:
    # The HTML was read by bs4 with the stdlib html.parser, imported now from the mounted zip.
    assert out["skipped"] is None and out["chunks"], out
    assert "Boundary layer transition on a flat plate & its heat transfer." in out["chunks"][0]
    assert re.fullmatch(r"websem: search failed in Pyodide: json\.decoder\.JSONDecodeError: Expecting property "
                        r"name enclosed in double quotes: line 1 column 2 \(char 1\)", out["error"]), out["error"]


def test_zip_subset_writes_the_bytes_write_trimmed_writes(tmp_path: Path) -> None:
    """web/tools/stdlib_zip.mjs zipSubset (how make_snapshot.mjs writes the restore's zip) copies
    members of a write_trimmed zip into exactly the zip write_trimmed makes of them."""
    trimmed = tmp_path / "trimmed.zip"
    write_trimmed(FULL, ["json/__init__.py", "json/decoder.py", "html/__init__.py", "html/parser.py"], trimmed)
    # Without json/decoder.py and html/__init__.py (write_trimmed always adds KEEP back, so the
    # dropped members are not KEEP's).
    keep = sorted(_names(trimmed) - {"json/decoder.py", "html/__init__.py"})
    script = ("import {readFileSync, writeFileSync} from 'node:fs';"
              f"import {{zipSubset}} from {json.dumps((REPO / 'web' / 'tools' / 'stdlib_zip.mjs').as_uri())};"
              "const [src, dst, keep] = process.argv.slice(1); const wanted = new Set(JSON.parse(keep));"
              "const {bytes, names} = zipSubset(new Uint8Array(readFileSync(src)), (n) => wanted.has(n));"
              "writeFileSync(dst, bytes); console.log(JSON.stringify(names));")
    proc = subprocess.run([_node(), "--input-type=module", "-e", script, str(trimmed), str(tmp_path / "js.zip"),
                           json.dumps(keep)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == keep
    write_trimmed(trimmed, keep, tmp_path / "py.zip")
    assert _names(tmp_path / "py.zip") == set(keep)
    assert (tmp_path / "js.zip").read_bytes() == (tmp_path / "py.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "js.zip") as z:
        assert z.testzip() is None


def test_snapshot_stdlib_is_the_members_the_snapshot_has_not_loaded(cranfield_bundle: Path) -> None:
    manifest = json.loads((cranfield_bundle / "manifest.json").read_text())
    assert SNAPSHOT_PATH in manifest["files"], "the build made no snapshot"
    assert manifest["runtime"]["snapshot_stdlib"] == SNAPSHOT_STDLIB_PATH
    rest = cranfield_bundle / SNAPSHOT_STDLIB_PATH
    assert manifest["files"][SNAPSHOT_STDLIB_PATH] == _entry(rest)
    trimmed = _names(cranfield_bundle / STDLIB_PATH)
    # What the runtime's set-up loads in a normal boot: the state the snapshot was taken in.
    loaded = set(_driver("loaded", cranfield_bundle))
    assert len(loaded) > len(trimmed) / 2 and loaded <= trimmed
    assert _names(rest) == (trimmed - loaded) | (set(KEEP) & trimmed)
    assert LAZY in _names(rest) and LAZY not in loaded
    # Byte for byte what write_trimmed makes of those members (deterministic: a rebuild matches).
    again = Path(str(rest) + ".check")
    try:
        write_trimmed(cranfield_bundle / STDLIB_PATH, sorted(_names(rest)), again)
        assert again.read_bytes() == rest.read_bytes()
    finally:
        again.unlink(missing_ok=True)
    # What a visitor restoring the snapshot downloads instead of the trimmed zip (brotli copies).
    br_rest = Path(str(rest) + ".br").stat().st_size
    br_full = Path(str(cranfield_bundle / STDLIB_PATH) + ".br").stat().st_size
    assert br_rest < br_full / 4, (br_rest, br_full)


def test_snapshot_restore_mounts_the_snapshot_stdlib(cranfield_bundle: Path) -> None:
    out = _driver("load", cranfield_bundle)
    assert out["snapshot"] is True, out["stages"]
    assert SNAPSHOT_STDLIB_PATH in out["fetched"] and STDLIB_PATH not in out["fetched"], out["fetched"]
    _assert_lazy_import_and_error(out)


def test_fallback_boot_mounts_the_whole_zip(cranfield_bundle: Path, tmp_path: Path) -> None:
    """A snapshot that does not restore (an unknown container version, sha256 still right): the
    runtime boots normally, with the bundle's whole trimmed zip."""
    bundle = _linked_copy(cranfield_bundle, tmp_path / "b")
    snap = bundle / SNAPSHOT_PATH
    data = bytearray(snap.read_bytes())
    assert data[:4] == b"WSPS"
    data[4] = 99
    snap.unlink()
    snap.write_bytes(bytes(data))
    _edit_manifest(bundle, lambda m: m["files"].__setitem__(SNAPSHOT_PATH, _entry(snap)))
    out = _driver("load", bundle)
    assert out["snapshot"] is False
    assert any(s.startswith("snapshot-fallback: ") for s in out["stages"]), out["stages"]
    assert STDLIB_PATH in out["fetched"], out["fetched"]
    _assert_lazy_import_and_error(out)


def test_a_manifest_without_snapshot_stdlib_restores_with_the_whole_zip(cranfield_bundle: Path,
                                                                        tmp_path: Path) -> None:
    """A bundle built before runtime.snapshot_stdlib existed: its snapshot holds zipimport's table
    of the whole trimmed zip, which the runtime then mounts. Made here by keeping every member in
    make_snapshot.mjs's zip, which then is the trimmed zip itself."""
    from websem.build.bundle import VENDOR

    bundle = _linked_copy(cranfield_bundle, tmp_path / "b")
    for rel in (SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH):
        (bundle / rel).unlink()
    pyodide = VENDOR["pyodide"]
    max_length = json.loads((bundle / "manifest.json").read_text())["model"]["max_seq_length"]
    proc = subprocess.run([_node(), str(REPO / "web" / "tools" / "make_snapshot.mjs"), str(bundle), str(max_length),
                           pyodide["module"], pyodide["lock"], pyodide["stdlib"],
                           json.dumps(sorted(_names(bundle / STDLIB_PATH)))],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (bundle / SNAPSHOT_STDLIB_PATH).read_bytes() == (bundle / STDLIB_PATH).read_bytes()

    def edit(m: dict) -> None:
        m["files"][SNAPSHOT_PATH] = _entry(bundle / SNAPSHOT_PATH)
        m["files"].pop(SNAPSHOT_STDLIB_PATH)
        m["runtime"].pop("snapshot_stdlib")

    _edit_manifest(bundle, edit)
    out = _driver("load", bundle)
    assert out["snapshot"] is True, out["stages"]
    assert STDLIB_PATH in out["fetched"] and SNAPSHOT_STDLIB_PATH not in out["fetched"], out["fetched"]
    _assert_lazy_import_and_error(out)
