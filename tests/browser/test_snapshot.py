"""Pyodide memory snapshot (build/snapshot.py + web/tools/make_snapshot.mjs): a bundle restored
from its snapshot, the same bundle booting Pyodide from scratch (no snapshot in the manifest, or
`load(..., {snapshot: false})`) all return exactly what `websem query --json` does; a tampered
snapshot is refused like any other bundle file. A restore fetches the stdlib zip made with the
snapshot (runtime.snapshot_stdlib) and not the bundle's whole one; every normal boot, the fallback
from a snapshot that does not restore included, fetches the whole one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SNAPSHOT_PATH = "runtime/pyodide-snapshot.bin"
SNAPSHOT_STDLIB_PATH = "runtime/pyodide-snapshot.stdlib.zip"
STDLIB_PATH = "vendor/pyodide/python_stdlib.zip"
N_QUERIES = 5

LOAD_JS = """async ([queries, options]) => {
    const m = await import('./websem.js');
    const engine = await m.load(new URL('./', location.href), options);
    await engine.ready;
    const results = [];
    for (const q of queries) results.push(await engine.searchFull(q, {k: 10}));
    const info = engine.info;
    await engine.close();
    return {info, results};
}"""


def _rewrite_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    if path.is_symlink():
        path.unlink()
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def snapshot_bundles(browser_bundle: Path, tmp_path_factory, bt) -> dict[str, Path]:
    """{"snapshot": bundle with a snapshot, "plain": the same bundle without one}.

    A bundle from `websem build` ships a snapshot (when Node is available); the plain variant drops
    it from the manifest. A bundle without one gets it made here by `make_snapshot`, exactly as the
    build does, so the test covers both paths either way.
    """
    from websem.build.bundle import sha256_file
    from websem.build.snapshot import make_snapshot

    root = tmp_path_factory.mktemp("snapshot-bundles")
    listed = SNAPSHOT_PATH in json.loads((browser_bundle / "manifest.json").read_text(encoding="utf-8"))["files"]
    if listed:
        plain = bt.linked_copy(browser_bundle, root / "plain")

        def drop(m: dict) -> None:
            for rel in (SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH):
                (plain / rel).unlink()
                m["files"].pop(rel)
            m["runtime"].pop("snapshot_stdlib")

        _rewrite_manifest(plain, drop)
        return {"snapshot": browser_bundle, "plain": plain}
    if shutil.which("node") is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    snap = bt.linked_copy(browser_bundle, root / "snapshot")
    assert make_snapshot(snap) == SNAPSHOT_PATH

    def add(m: dict) -> None:
        for rel in (SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH):
            m["files"][rel] = {"sha256": sha256_file(snap / rel), "size": (snap / rel).stat().st_size}
        m["runtime"]["snapshot_stdlib"] = SNAPSHOT_STDLIB_PATH

    _rewrite_manifest(snap, add)
    return {"snapshot": snap, "plain": browser_bundle}


@pytest.fixture(scope="module")
def queries(shared_data: Path) -> list[str]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[60 : 60 + N_QUERIES]]


@pytest.fixture(scope="module")
def reference(snapshot_bundles: dict[str, Path], queries: list[str], bt) -> list[dict]:
    """`websem query --json` in the default mode (the engine's `searchFull` without a mode)."""
    return bt.websem_query_json(snapshot_bundles["plain"], queries, bt.MODES[0])


@pytest.fixture(scope="module")
def incompatible_bundle(snapshot_bundles: dict[str, Path], tmp_path_factory, bt) -> Path:
    """The snapshot bundle with a snapshot the runtime cannot restore (an unknown container
    version) that still matches its sha256 in the manifest: it must fall back, not fail."""
    from websem.build.bundle import sha256_file

    bundle = bt.linked_copy(snapshot_bundles["snapshot"], tmp_path_factory.mktemp("incompatible") / "b")
    path = bt.make_real(bundle / SNAPSHOT_PATH)
    data = bytearray(path.read_bytes())
    assert data[:4] == b"WSPS"
    data[4] = 99  # container version
    path.write_bytes(bytes(data))
    entry = {"sha256": sha256_file(path), "size": len(data)}
    _rewrite_manifest(bundle, lambda m: m["files"].__setitem__(SNAPSHOT_PATH, entry))
    return bundle


def _load_and_search(context, url: str, queries: list[str], options: dict) -> dict:
    """The engine's info and results, and ``requested``: the bundle paths the page and its
    workers requested (from the browser's HTTP cache too)."""
    requested: list[str] = []

    def on_request(request) -> None:
        if request.url.startswith(url):
            requested.append(request.url[len(url):].split("?", 1)[0])

    context.on("request", on_request)
    page = context.new_page()
    try:
        # Any same-origin page will do; load() runs in its own module worker.
        page.goto(url + "manifest.json")
        return {**page.evaluate(LOAD_JS, [queries, options]), "requested": requested}
    finally:
        page.close()
        context.remove_listener("request", on_request)


@pytest.mark.parametrize(
    ("variant", "options", "restored"),
    [
        ("snapshot", {}, True),
        ("plain", {}, False),
        ("snapshot", {"snapshot": False}, False),
    ],
    ids=["restored-from-snapshot", "no-snapshot-in-bundle", "snapshot-disabled"],
)
def test_snapshot_and_fallback_match_websem_query(
    browser_context, serve, snapshot_bundles, queries, reference, bt, variant, options, restored
) -> None:
    out = _load_and_search(browser_context, serve(snapshot_bundles[variant]), queries, options)
    assert out["info"]["pyodide_snapshot"] is restored
    assert ("snapshot-fallback" in out["info"]["timings"]) is False
    # A restore mounts the snapshot's own stdlib zip (what it has not loaded), a normal boot the whole one.
    assert (SNAPSHOT_STDLIB_PATH in out["requested"]) is restored, out["requested"]
    assert (STDLIB_PATH in out["requested"]) is not restored, out["requested"]
    bt.assert_same_results(snapshot_bundles[variant], bt.MODES[0], queries, out["results"], reference,
                           engine=f"chromium ({variant}, {options})")


def test_tampered_snapshot_is_refused(browser_context, serve, snapshot_bundles, tmp_path, bt) -> None:
    bad = bt.linked_copy(snapshot_bundles["snapshot"], tmp_path / "bad")
    data = bytearray(bt.make_real(bad / SNAPSHOT_PATH).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / SNAPSHOT_PATH).write_bytes(bytes(data))
    message = bt.load_error(browser_context, serve(bad))
    assert message.startswith("websem:")
    assert SNAPSHOT_PATH in message and "integrity" in message


def test_unrestorable_snapshot_falls_back_to_a_normal_boot(
    browser_context, serve, incompatible_bundle, queries, reference, bt
) -> None:
    out = _load_and_search(browser_context, serve(incompatible_bundle), queries, {})
    assert out["info"]["pyodide_snapshot"] is False
    assert "snapshot-fallback" in out["info"]["timings"]
    assert STDLIB_PATH in out["requested"], out["requested"]
    bt.assert_same_results(incompatible_bundle, bt.MODES[0], queries, out["results"], reference,
                           engine="chromium (unrestorable snapshot)")
