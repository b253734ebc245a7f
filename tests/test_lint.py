"""The code base stays ruff-clean, and lint covers the project's own sources only: generated
bundles (with their vendored Snowball stemmer) are never linted, wherever they are written
(config: ``[tool.ruff]`` in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"


def ruff(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the venv's ruff (the one `pip install -e '.[dev]'` put next to this Python)."""
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff") or "ruff"
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd)


def test_ruff_clean() -> None:
    """README command 2's lint step: `ruff check` over the whole checkout, with its own config."""
    proc = ruff("check", "--quiet", str(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_covers_project_sources_only() -> None:
    """What ruff checks in this checkout: the project's own folders, nothing vendored or generated."""
    proc = ruff("check", "--show-files", str(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = [Path(line).relative_to(REPO) for line in proc.stdout.splitlines() if line.strip()]
    assert any(f.parts[0] == "demo" for f in files) and any(f.parts[:2] == ("web", "text") for f in files)
    skipped = {"node_modules", ".venv", "snowballstemmer", "websem_text", "_websem", "websem-demo"}
    assert not [f for f in files if skipped & set(f.parts)], "ruff lints vendored or generated files"


def test_generated_bundle_files_are_not_linted(tmp_path: Path) -> None:
    """The vendored stemmer a bundle ships is not ruff-clean: under the project's config it is
    skipped in a bundle wherever it lives (named on the command line too), and the same bytes as
    the project's own source fail lint, so this test can fail."""
    from websem.build.lexical import snowball_files

    files = snowball_files()
    for bundle in ("public/_websem", "out/any-name", "websem-demo/site/_websem"):
        for rel, data in files.items():
            dst = tmp_path / bundle / "py" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
    (tmp_path / "out/any-name/py/websem_text").mkdir(parents=True)
    (tmp_path / "out/any-name/py/websem_text/bm25.py").write_text("import os\n", encoding="utf-8")

    proc = ruff("check", "--config", str(CONFIG), str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    named = tmp_path / "out/any-name/py/snowballstemmer/among.py"
    proc = ruff("check", "--config", str(CONFIG), str(named))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    own = tmp_path / "src" / "stemmer.py"
    own.parent.mkdir()
    own.write_bytes(b"".join(files.values()))
    proc = ruff("check", "--config", str(CONFIG), str(tmp_path))
    assert proc.returncode != 0 and "stemmer.py" in proc.stdout, proc.stdout + proc.stderr
