"""The runtime's JS modules, each tested directly by its own node unit test
(``tests/js/<module>.test.mjs``, ``node --test``); this runs them under pytest, one test per file,
and fails on any failing, cancelled or missing one. ``model.test.mjs`` gets the session's model
package (``WEBSEM_MODEL_DIR``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JS_TESTS = sorted((REPO / "tests" / "js").glob("*.test.mjs"))
# Runtime modules that need no unit test of their own: the engine wiring and the workers are
# exercised whole, in Node, Deno, workerd and Chromium
# (tests/browser, tests/test_edge*.py); handler.js by tests/test_edge*.py and tests/test_serve.py;
# component.js in Chromium.
WHOLE_ONLY = {"engine", "worker", "python-worker", "index", "handler", "component"}


def test_every_runtime_module_has_a_unit_test() -> None:
    modules = {p.stem for p in (REPO / "web" / "src").glob("*.js")}
    tested = {p.name.removesuffix(".test.mjs") for p in JS_TESTS}
    assert tested <= modules, f"tests for modules that do not exist: {sorted(tested - modules)}"
    missing = sorted(modules - tested - WHOLE_ONLY)
    assert not missing, f"modules without tests/js/NAME.test.mjs: {missing}"


@pytest.mark.parametrize("path", JS_TESTS, ids=lambda p: p.name)
def test_node_unit_tests(path: Path, request: pytest.FixtureRequest) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    env = dict(os.environ)
    if path.name == "model.test.mjs":  # the real model: the session's exported package
        env["WEBSEM_MODEL_DIR"] = str(request.getfixturevalue("model_package"))
    proc = subprocess.run([node, "--test", str(path)], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    out = proc.stdout + proc.stderr
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|cancelled|tests) (\d+)$", out, re.M)}
    assert proc.returncode == 0 and counts.get("fail", 1) == 0 and counts.get("cancelled", 1) == 0, out[-4000:]
    assert counts.get("pass", 0) == counts.get("tests", -1) > 0, out[-4000:]
