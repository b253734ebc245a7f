"""The README's two commands, in the order a newcomer runs them (issue #18): command 1
(`websem demo`, here in its `--check` mode) and then command 2's lint step, in this checkout.

The demo is built once, from a slice of the stdlib corpus (the page, bundle, runtime and search
are the real ones; only fewer pages are embedded), and `.ci/run` runs the full-size command 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEBSEM = Path(sys.executable).parent / "websem"
SLICE = ["--modules", "csv,json,subprocess,pathlib,shutil", "--topics", "assert,if,try"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def command1(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """`websem demo --check` run from the checkout as a newcomer does (no --out: the default
    location), with the user cache pointed at a temporary folder."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    # The demo's output folder before issue #18: command 1 must no longer create it.
    assert not (REPO / "websem-demo").exists(), "remove the stale websem-demo/ from the checkout"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.run(
        [str(WEBSEM), "demo", "--check", "--model", str(model_package), *SLICE],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    return proc, cache


def test_command1_check_builds_serves_and_searches_outside_the_checkout(command1) -> None:
    proc, cache = command1
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "websem demo: check passed" in proc.stdout and "first library/csv.html" in proc.stdout, proc.stdout
    site = cache / "websem" / "demo" / "site"
    # The last line says where the output went: the user cache, not the current folder.
    assert str(site) in proc.stdout.strip().splitlines()[-1]
    assert (site / "_websem" / "manifest.json").is_file() and (site / "library" / "csv.html").is_file()
    assert not site.resolve().is_relative_to(REPO)
    assert not (REPO / "websem-demo").exists(), "command 1 wrote its output into the checkout"


def test_command2_lint_step_passes_after_command1(command1) -> None:
    """Command 2's lint step, run the way command 2 runs it (pytest, in this checkout), after command 1."""
    proc, _ = command1
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lint = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_lint.py"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_check_fails_loudly_on_a_broken_site(command1, tmp_path: Path) -> None:
    """`--check` can fail: a site whose index was tampered with is refused by the page, and the
    check says so with a `websem:` message."""
    import shutil

    from websem.demo.command import check_demo
    from websem.text.errors import WebsemError

    proc, cache = command1
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = shutil.copytree(cache / "websem" / "demo" / "site", tmp_path / "site", copy_function=os.symlink)
    vectors = site / "_websem" / "index" / "vectors.bin"
    data = bytearray(vectors.read_bytes())
    data[0] ^= 0x5A
    vectors.unlink()
    vectors.write_bytes(bytes(data))
    with pytest.raises(WebsemError) as err:
        check_demo(site, log=lambda *_: None)
    message = str(err.value)
    assert message.startswith("websem: demo check:") and "index/vectors.bin" in message, message


def test_check_without_a_browser_fails_before_building(tmp_path: Path) -> None:
    """A missing Chromium is reported at once with the fix, and nothing is built."""
    env = {**os.environ, "WEBSEM_CHROMIUM": str(tmp_path / "no-chromium"), "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(WEBSEM), "demo", "--check", "--out", str(tmp_path / "demo")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert f"websem: no Chromium at {tmp_path / 'no-chromium'}" in proc.stderr, proc.stderr
    assert "apt-get install chromium" in proc.stderr
    assert not (tmp_path / "demo").exists()
