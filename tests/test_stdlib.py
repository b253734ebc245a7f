"""build/stdlib.py: the trimmed python_stdlib.zip. What it keeps is proven sufficient by the parity
tests, which run every bundle (built with the trimmed zip) in Chromium, Node, Deno and workerd;
here: the static import scan, determinism, and that a real build ships a zip that is a strict
subset of Pyodide's with every module its Python was measured to load."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from websem.build.stdlib import KEEP, STDLIB_PATH, stdlib_imports, write_trimmed

REPO = Path(__file__).resolve().parents[1]
FULL = REPO / "web" / "node_modules" / "pyodide" / "python_stdlib.zip"


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
