"""The public JS API's type declarations (web/src/*.d.ts) are right, checked three ways:

- `tsc --strict` compiles tests/js/types/consumer.ts, the API used as the README and docs show it,
  against the .d.ts files laid out as in a bundle (websem.d.ts, runtime/*.d.ts);
- tsc reports an error on exactly the marked lines of tests/js/types/wrong.ts, so the types cannot
  turn loose (`any`, a missing union) without this failing;
- the declarations match the JS: the same exported names as each module, and the same members as
  what a real engine returns (its methods, `info`, hits, `searchFull`, `memory()`, progress events).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
SRC = WEB / "src"
TYPES = REPO / "tests" / "js" / "types"
TSC = WEB / "node_modules" / ".bin" / "tsc"

# Where each declaration file sits in a bundle: next to the module it describes
# (web/src/index.js is BUNDLE/websem.js, the rest BUNDLE/runtime/NAME.js).
DECLARATIONS = {
    "index.d.ts": "websem.d.ts",
    "handler.d.ts": "runtime/handler.d.ts",
    "component.d.ts": "runtime/component.d.ts",
    "node.d.ts": "runtime/node.d.ts",
}

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "lib": ["es2022", "dom"],
        # Only what the files import: no ambient @types package may satisfy or break them.
        "types": [],
        "exactOptionalPropertyTypes": True,
        "noUncheckedIndexedAccess": True,
        "noUnusedLocals": True,
    },
}

ERROR_LINE = re.compile(r"^(?P<file>[^\s(]+)\((?P<line>\d+),\d+\): error (?P<code>TS\d+):", re.M)
MARK = re.compile(r"// error (TS\d+)\s*$")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    return node


def _tsc(project: Path) -> subprocess.CompletedProcess:
    if not TSC.is_file():
        pytest.fail(f"{TSC} is missing; run .ci/setup (npm ci in web/ installs typescript)")
    return subprocess.run([str(TSC), "-p", str(project)], capture_output=True, text=True, timeout=300,
                          cwd=project.parent)


def _project(tmp_path: Path, source: str) -> Path:
    """A scratch project: the declarations in their bundle places, one source file, a tsconfig."""
    for name, rel in DECLARATIONS.items():
        dest = tmp_path / "_websem" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SRC / name, dest)
    shutil.copyfile(TYPES / source, tmp_path / source)
    (tmp_path / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "files": [source]}), encoding="utf-8")
    return tmp_path / "tsconfig.json"


def test_consumer_compiles_strict(tmp_path: Path) -> None:
    proc = _tsc(_project(tmp_path, "consumer.ts"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_misuse_is_refused_line_by_line(tmp_path: Path) -> None:
    proc = _tsc(_project(tmp_path, "wrong.ts"))
    assert proc.returncode != 0, "tsc accepted every misuse in wrong.ts"
    lines = (TYPES / "wrong.ts").read_text(encoding="utf-8").splitlines()
    want = {i: m.group(1) for i, line in enumerate(lines, 1) if (m := MARK.search(line))}
    assert len(want) >= 15
    got: dict[int, set[str]] = {}
    for m in ERROR_LINE.finditer(proc.stdout):
        assert m.group("file") == "wrong.ts", f"error outside wrong.ts (a broken declaration?):\n{proc.stdout}"
        got.setdefault(int(m.group("line")), set()).add(m.group("code"))
    assert set(got) == set(want), f"errors on lines {sorted(got)}, expected on {sorted(want)}:\n{proc.stdout}"
    wrong_code = {i: (want[i], sorted(got[i])) for i in want if want[i] not in got[i]}
    assert not wrong_code, f"unexpected error codes (line: (expected, got)): {wrong_code}\n{proc.stdout}"


@pytest.fixture(scope="module")
def declared() -> dict:
    """What each module and its declaration file export, and the declared shapes (tests/js/types/declared.mjs)."""
    files = []
    for name in DECLARATIONS:
        files += [f"web/src/{name.removesuffix('.d.ts')}.js", f"web/src/{name}"]
    proc = subprocess.run(
        [_node(), str(TYPES / "declared.mjs"), str(WEB), *files],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", list(DECLARATIONS))
def test_declarations_export_what_the_module_exports(declared: dict, name: str) -> None:
    js = declared[f"web/src/{name.removesuffix('.d.ts')}.js"]["values"]
    dts = declared[f"web/src/{name}"]["values"]
    assert dts == js, f"web/src/{name} declares {dts}, the module exports {js}"


def test_worker_proxy_has_the_declared_members(declared: dict) -> None:
    """In a browser `load()` returns index.js's worker proxy, not the engine itself: the same
    members (read from the object it returns; Node has no Worker to run it here)."""
    proxy = declared["web/src/index.js"]["returns"].get("loadInWorker")
    assert proxy, "web/src/index.js has no loadInWorker returning the engine object"
    assert sorted(set(proxy) - {"debug"}) == sorted(_props(declared, "Engine"))


def _props(declared: dict, type_name: str) -> dict:
    return declared["web/src/index.d.ts"]["types"][type_name]["props"]


def _required(props: dict) -> list[str]:
    return sorted(k for k, v in props.items() if not v["optional"])


@pytest.fixture(scope="module")
def engine_shape(cranfield_bundle: Path) -> dict:
    """What a real engine returns, loaded in-process under Node (tests/js/types/engine_shape.mjs)."""
    proc = subprocess.run(
        [_node(), str(TYPES / "engine_shape.mjs"), str(cranfield_bundle), "boundary layer transition"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_engine_has_the_declared_members(declared: dict, engine_shape: dict) -> None:
    # `debug` is the test hook the docs mark as not API; it is deliberately undeclared.
    members = sorted(set(engine_shape["engine"]) - {"debug"})
    assert members == sorted(_props(declared, "Engine")), "Engine in index.d.ts"
    assert engine_shape["info"] == _required(_props(declared, "EngineInfo")), "EngineInfo in index.d.ts"
    assert engine_shape["info_index"] == _required(_props(declared, "EngineInfo")["index"]["props"])
    assert set(_required(_props(declared, "ModelInfo"))) <= set(engine_shape["info_model"])
    assert engine_shape["memory"] == _required(_props(declared, "MemoryUsage")), "MemoryUsage in index.d.ts"


def test_search_results_have_the_declared_shape(declared: dict, engine_shape: dict) -> None:
    modes = declared["web/src/index.d.ts"]["types"]["SearchMode"]["literals"]
    assert sorted(engine_shape["modes"]) == modes, "every declared mode is offered, no other"
    for mode, res in engine_shape["results"].items():
        assert res["full"] == _required(_props(declared, "SearchResult")), f"SearchResult ({mode})"
        assert res["mode"] == mode
        assert res["hit"] == _required(_props(declared, "Hit")), f"Hit ({mode})"
        assert res["search_equals_full"], f"search() and searchFull().hits differ ({mode})"


def test_progress_events_have_the_declared_shape(declared: dict, engine_shape: dict) -> None:
    stages = set(declared["web/src/index.d.ts"]["types"]["ProgressStage"]["literals"])
    fields = set(_props(declared, "ProgressEvent"))
    seen = {e["stage"] for e in engine_shape["progress"]}
    assert seen <= stages, f"undeclared progress stages: {sorted(seen - stages)}"
    assert {"manifest", "verified", "ready"} <= seen
    extra = {k for e in engine_shape["progress"] for k in e["keys"]} - fields
    assert not extra, f"undeclared progress event fields: {sorted(extra)}"


def test_every_progress_stage_the_runtime_emits_is_declared(declared: dict) -> None:
    """Including the fallback stages a healthy load never reaches."""
    emitted = set()
    for path in SRC.glob("*.js"):
        emitted |= set(re.findall(r"""\bstage: ["']([a-z-]+)["']""", path.read_text(encoding="utf-8")))
    stages = set(declared["web/src/index.d.ts"]["types"]["ProgressStage"]["literals"])
    assert emitted == stages, (f"emitted, undeclared: {sorted(emitted - stages)}; "
                               f"declared, never emitted: {sorted(stages - emitted)}")
