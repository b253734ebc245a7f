"""Repeat visits in Chromium: the big bundle files come from Cache Storage (web/src/cache.js),
still verified; a tampered entry is refused and fetched again; `cache: false` keeps them out.
Also the byte progress of a real load (web/src/progress.js): "bytes" events that only grow and
end at the manifest total, on the network load and on the cached one.

One Chromium profile (one origin's Cache Storage) for the whole module, `websem serve` as the
server: it sends `Cache-Control: no-cache`, so a file the page asks the network for always shows
up as a request (a 304 at best); a file read from Cache Storage never does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QUERIES = ["what similarity laws must be obeyed when constructing aeroelastic models",
           "boundary layer transition heated plate"]
CACHE_NAME = "websem-files-v1"
CACHE_MIN_BYTES = 1 << 20
# A document of the bundle's origin that loads nothing by itself (index.html's <websem-search>
# would start its own engine, which reads and repairs the cache behind the test's back).
BLANK = "manifest.json"

LOAD = """async ([queries, options]) => {
    const { load } = await import('./websem.js');
    const events = [];
    const engine = await load(new URL('./', location.href), {...options, onProgress: (e) => events.push(e)});
    if (engine.ready) await engine.ready;
    const results = {};
    for (const mode of engine.info.modes) {
        results[mode] = [];
        for (const q of queries) results[mode].push(await engine.searchFull(q, {k: 10, mode}));
    }
    await engine.close();
    return {events, results};
}"""


def cached_paths(bundle: Path) -> dict[str, str]:
    """The bundle files kept in Cache Storage (1 MiB or more, JS modules excepted): path -> sha256."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return {p: e["sha256"] for p, e in manifest["files"].items()
            if e["size"] >= CACHE_MIN_BYTES and not p.endswith((".js", ".mjs"))}


def load_page(context, url: str, options: dict | None = None) -> tuple[dict, list[str]]:
    """Load the bundle through the public API in a new page; returns the page's result and the
    URLs it (and its workers) requested."""
    requests: list[str] = []
    listener = lambda r: requests.append(r.url)  # noqa: E731
    context.on("request", listener)
    page = context.new_page()
    try:
        page.goto(url + BLANK)
        out = page.evaluate(LOAD, [QUERIES, options or {}])
    finally:
        page.close()
        context.remove_listener("request", listener)
    return out, requests


def cache_entries(context, url: str) -> dict[str, str]:
    """Cache Storage now: key URL -> sha256 of the stored body (computed in the page)."""
    page = context.new_page()
    try:
        page.goto(url + BLANK)
        return page.evaluate("""async (name) => {
            const cache = await caches.open(name);
            const out = {};
            for (const req of await cache.keys()) {
                const body = await (await cache.match(req)).arrayBuffer();
                const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
                out[req.url] = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
            }
            return out;
        }""", CACHE_NAME)
    finally:
        page.close()


def wait_for_entries(context, url: str, want: dict[str, str]) -> dict[str, str]:
    """Cache writes are not awaited by load(): poll until every wanted entry is there."""
    import time

    deadline = time.monotonic() + 60
    while True:
        got = cache_entries(context, url)
        if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def check_bytes_events(events: list[dict], bundle: Path, *, source: str | None = None) -> None:
    """'bytes' events: overall and per-group counts only grow, and end at the totals, which are
    the manifest sizes of the files loaded."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    got = [e for e in events if e["stage"] == "bytes"]
    assert got, "no bytes events"
    total = got[0]["overall"]["total"]
    last = 0
    groups: dict[str, tuple[int, int]] = {}
    for e in got:
        assert e["overall"]["total"] == total
        assert e["overall"]["loaded"] > last, "overall.loaded must grow with every event"
        last = e["overall"]["loaded"]
        before = groups.get(e["group"], (0, e["total"]))
        assert e["loaded"] > before[0] and e["total"] == before[1] and e["loaded"] <= e["total"]
        groups[e["group"]] = (e["loaded"], e["total"])
    assert last == total, f"overall ends at {last}, not at its total {total}"
    assert all(loaded == tot for loaded, tot in groups.values()), groups
    assert set(groups) == {"model", "onnxruntime", "pyodide", "index"}
    assert total == sum(manifest["files"][p]["size"] for p in load_plan(manifest))
    if source:
        froms = {e["file"]: e["from"] for e in got}
        for path in cached_paths(bundle):
            assert froms.get(path) == source, (path, froms.get(path))


def load_plan(manifest: dict) -> set[str]:
    """The files a default browser load fetches and verifies: the model, both runtimes' vendor
    files, the snapshot, the Python files and the index files (not the runtime's own modules)."""
    vendor = manifest["runtime"]["vendor"]
    paths = {"model/model.onnx", "model/tokenizer.json", *vendor["ort"].values(), *vendor["pyodide"].values(),
             *manifest["runtime"]["python_files"], *manifest["index"]["files"].values()}
    if "runtime/pyodide-snapshot.bin" in manifest["files"]:
        paths.add("runtime/pyodide-snapshot.bin")
    return paths


def hits(results: dict) -> dict:
    return {mode: [[(h["id"], round(h["score"], 6), h["snippet"]) for h in r["hits"]] for r in rs]
            for mode, rs in results.items()}


@pytest.fixture(scope="module")
def first_visit(browser_context, cranfield_url, browser_bundle):
    out, requests = load_page(browser_context, cranfield_url)
    return out, requests


def test_first_visit_fills_the_cache_and_reports_bytes(first_visit, browser_context, cranfield_url,
                                                       browser_bundle) -> None:
    out, requests = first_visit
    want = {f"{cranfield_url}{p}?websem-sha256={sha}": sha for p, sha in cached_paths(browser_bundle).items()}
    assert "model/model.onnx" in cached_paths(browser_bundle)
    assert any(r.endswith("model/model.onnx") for r in requests)
    check_bytes_events(out["events"], browser_bundle, source="network")
    got = wait_for_entries(browser_context, cranfield_url, want)
    assert {k: got.get(k) for k in want} == want


def test_repeat_visit_reads_the_cache_without_network(first_visit, browser_context, cranfield_url,
                                                      browser_bundle) -> None:
    first, _ = first_visit
    wait_for_entries(browser_context, cranfield_url,
                     {f"{cranfield_url}{p}?websem-sha256={s}": s for p, s in cached_paths(browser_bundle).items()})
    out, requests = load_page(browser_context, cranfield_url)
    asked = [r for r in requests if any(r.split("?")[0].endswith(p) for p in cached_paths(browser_bundle))]
    assert asked == [], f"cached files were requested from the network: {asked}"
    verified = {e["file"]: e.get("from") for e in out["events"] if e["stage"] == "verified"}
    assert verified["model/model.onnx"] == "cache"
    check_bytes_events(out["events"], browser_bundle, source="cache")
    assert hits(out["results"]) == hits(first["results"])


def test_tampered_entry_is_refused_and_fetched_again(first_visit, browser_context, cranfield_url,
                                                     browser_bundle) -> None:
    first, _ = first_visit
    sha = cached_paths(browser_bundle)["model/model.onnx"]
    key = f"{cranfield_url}model/model.onnx?websem-sha256={sha}"
    wait_for_entries(browser_context, cranfield_url, {key: sha})
    page = browser_context.new_page()
    page.goto(cranfield_url + BLANK)
    # Same size, one byte flipped in the middle: only the sha256 can tell.
    page.evaluate("""async ([name, key]) => {
        const cache = await caches.open(name);
        const bytes = new Uint8Array(await (await cache.match(key)).arrayBuffer());
        bytes[bytes.length >> 1] ^= 0xff;
        await cache.put(key, new Response(bytes));
    }""", [CACHE_NAME, key])
    page.close()
    assert cache_entries(browser_context, cranfield_url)[key] != sha
    out, requests = load_page(browser_context, cranfield_url)
    refused = [e for e in out["events"] if e["stage"] == "cache-refused"]
    assert [e["file"] for e in refused] == ["model/model.onnx"], "; ".join(
        f"{e['stage']} {e.get('file')} {e.get('from')}" for e in out["events"] if e["stage"] != "bytes")
    assert "failed its integrity check" in refused[0]["reason"]
    assert any(r.endswith("model/model.onnx") for r in requests), "the model was not fetched again"
    assert hits(out["results"]) == hits(first["results"])
    check_bytes_events(out["events"], browser_bundle)
    # The good copy replaced the tampered one.
    assert wait_for_entries(browser_context, cranfield_url, {key: sha})[key] == sha


def test_cache_false_uses_the_network(first_visit, browser_context, cranfield_url, browser_bundle) -> None:
    first, _ = first_visit
    out, requests = load_page(browser_context, cranfield_url, {"cache": False})
    for path in cached_paths(browser_bundle):
        assert any(r.split("?")[0].endswith(path) for r in requests), f"{path} not requested with cache: false"
    assert not any(e.get("from") == "cache" for e in out["events"])
    assert hits(out["results"]) == hits(first["results"])
