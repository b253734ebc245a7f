"""Repeat visits in Chromium: the big bundle files come from Cache Storage (web/src/cache.js),
still verified; a tampered entry is refused and fetched again; `cache: false` keeps them out.
The two wasm binaries stay out of Cache Storage and come from the HTTP cache, the only place
Chromium keeps V8's compiled code for: a repeat visit compiles them from that code cache (seen in
a Chromium trace), and a tampered wasm is still refused.
A split model's word rows (read by byte range, which Chromium's HTTP cache does not serve again)
go into Cache Storage once the background fill has read them all; a later visit cuts its blocks
from that copy, each still checked against the block hash list, and refuses a tampered one.
Also the byte progress of a real load (web/src/progress.js): "bytes" events that only grow and
end at the manifest total, on the network load and on the cached one.

One Chromium profile (one origin's Cache Storage) for the module's other tests (the code-cache
test restarts Chromium on a profile of its own for each visit), `websem serve` as the server: it
sends `Cache-Control: no-cache`, so a file the page asks the network for always shows up as a
request (a 304 at best); a file read from Cache Storage never does."""

from __future__ import annotations

import json
import time
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

# LOAD without the close(): the engine stays open as on a page where search stays open (see
# traced_load).
LOAD_OPEN = LOAD.replace("await engine.close();", "window.__engine = engine;")
assert LOAD_OPEN != LOAD


def cached_paths(bundle: Path) -> dict[str, str]:
    """The bundle files a default load keeps in Cache Storage (those it reads of 1 MiB or more, JS
    modules and wasm excepted; a split model's word rows are not read by the load but by byte
    range per query, and stored once a fill has read them all, see the tests at the end):
    path -> sha256."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    loaded = load_plan(manifest)
    return {p: e["sha256"] for p, e in manifest["files"].items()
            if p in loaded and e["size"] >= CACHE_MIN_BYTES and not p.endswith((".js", ".mjs", ".wasm"))}


def wasm_paths(bundle: Path) -> list[str]:
    """The bundle's two wasm binaries (onnxruntime-web's and Pyodide's)."""
    vendor = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))["runtime"]["vendor"]
    return [vendor["ort"]["wasm"], vendor["pyodide"]["wasm"]]


def traced_load(context, url: str) -> tuple[dict, list[dict]]:
    """load_page under a Chromium trace; returns the page's result and V8's wasm code-cache
    events (`v8.wasm.moduleCacheHit` with the module's URL, `v8.wasm.compiledModule`), from the
    page and its workers. V8 serializes a module's optimised code on a background thread a while
    after its tier-up (`v8.wasm.compiledModule`, then `v8.wasm.cachedModule`) and hands it to the
    thread that compiled it (Pyodide's: the Python worker), which must still be alive to store it:
    the engine stays open until every module compiled in this visit was serialized (at most 60 s)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    events: list[dict] = []
    done: list[bool] = []
    tracing = False
    cdp.on("Tracing.dataCollected", lambda p: events.extend(p["value"]))
    cdp.on("Tracing.tracingComplete", lambda p: done.append(True))

    def start() -> None:
        nonlocal tracing
        done.clear()
        cdp.send("Tracing.start", {"categories": "disabled-by-default-devtools.timeline",
                                   "transferMode": "ReportEvents"})
        tracing = True

    def stop() -> None:
        nonlocal tracing
        cdp.send("Tracing.end")
        tracing = False
        for _ in range(300):
            if done:
                return
            page.wait_for_timeout(100)

    def serialized() -> bool:
        names = [e.get("name") for e in events]
        return names.count("v8.wasm.cachedModule") >= names.count("v8.wasm.compiledModule")

    start()
    try:
        page.goto(url + BLANK)
        out = page.evaluate(LOAD_OPEN, [QUERIES, {"cache": False}])
        deadline = time.monotonic() + 60
        while True:
            page.wait_for_timeout(2000)
            stop()
            if serialized() or time.monotonic() > deadline:
                break
            start()
        # The serialized code travels to the code cache through the compiling thread's task queue.
        page.wait_for_timeout(1000)
        page.evaluate("() => window.__engine.close()")
    finally:
        if tracing:
            stop()
        cdp.detach()
        page.close()
    wasm = [e for e in events if e.get("name") in (
        "v8.wasm.moduleCacheHit", "v8.wasm.moduleCacheInvalid", "v8.wasm.compiledModule", "v8.wasm.cachedModule")]
    return out, wasm


def evaluate_logged(context, url: str, script: str, args: list) -> tuple[dict, list[str]]:
    """`script(args)` in a new page of the bundle's origin; returns its result and the URLs the
    page (and its workers) requested."""
    requests: list[str] = []
    listener = lambda r: requests.append(r.url)  # noqa: E731
    context.on("request", listener)
    page = context.new_page()
    try:
        page.goto(url + BLANK)
        out = page.evaluate(script, args)
    finally:
        page.close()
        context.remove_listener("request", listener)
    return out, requests


def load_page(context, url: str, options: dict | None = None) -> tuple[dict, list[str]]:
    """Load the bundle through the public API in a new page; returns the page's result and the
    URLs it (and its workers) requested."""
    return evaluate_logged(context, url, LOAD, [QUERIES, options or {}])


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
    files, the snapshot and the stdlib zip made with it instead of the whole one (else the
    tokenizer, whose vocabulary a snapshot holds), the Python files and the index files (not the
    runtime's own modules)."""
    vendor = manifest["runtime"]["vendor"]
    paths = {"model/model.onnx", *vendor["ort"].values(), *vendor["pyodide"].values(),
             *manifest["runtime"]["python_files"], *manifest["index"]["files"].values()}
    if "runtime/pyodide-snapshot.bin" in manifest["files"]:
        paths.add("runtime/pyodide-snapshot.bin")
        if manifest["runtime"].get("snapshot_stdlib"):
            paths.discard(vendor["pyodide"]["stdlib"])
            paths.add(manifest["runtime"]["snapshot_stdlib"])
    else:
        paths.add("model/tokenizer.json")
    if manifest["model"].get("word_rows"):  # a split model's block hashes (its rows: per query)
        paths.add(manifest["model"]["word_rows"]["hashes"])
    return paths


def hits(results: dict) -> dict:
    return {mode: [[(h["id"], round(h["score"], 6), h["snippet"]) for h in r["hits"]] for r in rs]
            for mode, rs in results.items()}


def test_repeat_visit_compiles_wasm_from_the_code_cache(playwright, bt, tmp_path, cranfield_url,
                                                       browser_bundle) -> None:
    """Read from Cache Storage, a wasm file never gets a code-cache hit (Chromium attaches none to
    those responses: every visit compiled ~5,300 functions again). From the HTTP cache it does:
    within a few visits onnxruntime-web's module compiles from V8's code cache, and results stay
    the same. V8 stores a module's code only once a visit has tiered enough of it up to its
    optimising compiler (`v8.wasm.compiledModule`); since a flat bundle ranks in JS, a visit runs
    too little Python for Pyodide's module to get there (the tokenizer only), so that module is
    held to the streaming part: compiled from the HTTP-cache response, never from Cache Storage.
    Every visit is a browser started anew on one profile, as a visitor who comes back: within one
    browser, V8 may reuse a module that an earlier page of the same renderer process compiled and
    that is not yet garbage (Chromium can put same-site pages in one process), without asking the
    code cache, which hides what this test looks for. `cache: false` keeps Cache Storage out."""
    wanted = {cranfield_url + wasm_paths(browser_bundle)[0]}  # onnxruntime-web's
    profile = tmp_path / "profile"

    def visit() -> tuple[dict, list[dict]]:
        context = bt.launch_profile(playwright, profile)
        try:
            return traced_load(context, cranfield_url)
        finally:
            context.close()

    first, _ = visit()
    hit: set[str] = set()
    seen = []
    for _ in range(4):
        out, wasm = visit()
        assert hits(out["results"]) == hits(first["results"])
        hit |= {e["args"]["url"] for e in wasm if e["name"] == "v8.wasm.moduleCacheHit"}
        seen.append(sorted((e["name"], e["args"].get("url", "")) for e in wasm))
        if wanted <= hit:
            break
    assert wanted <= hit, f"no code-cache hit for {sorted(wanted - hit)}; V8 events per visit: {seen}"
    compiled = [e for e in out["events"] if e["stage"] == "compiled"]
    assert sorted(e["file"] for e in compiled) == sorted(wasm_paths(browser_bundle))
    assert all(e["streaming"] for e in compiled), compiled


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


@pytest.mark.parametrize("which", ["pyodide", "ort"])
def test_tampered_wasm_is_refused(browser_context, browser_bundle, serve, bt, tmp_path, which) -> None:
    """The wasm files come from the HTTP cache or the network and are verified either way: one
    flipped byte in the middle (same size) is refused, naming the file."""
    copy = bt.linked_copy(browser_bundle, tmp_path / "bundle")
    rel = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))["runtime"]["vendor"][which]["wasm"]
    path = bt.make_real(copy / rel)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    message = bt.load_error(browser_context, serve(copy))
    assert message.startswith("websem:"), message
    assert rel in message and "failed its integrity check" in message, message


def test_prune_drops_wasm_entries_an_earlier_runtime_stored(browser_context, cranfield_url, browser_bundle) -> None:
    """An earlier runtime kept the wasm binaries in Cache Storage under their current sha256:
    prune (run when a new file is stored) deletes them, and only them."""
    manifest = json.loads((browser_bundle / "manifest.json").read_text(encoding="utf-8"))
    wasm = wasm_paths(browser_bundle)
    page = browser_context.new_page()
    try:
        page.goto(cranfield_url + BLANK)
        out = page.evaluate("""async ([name, manifest, wasm]) => {
            const { FileCache } = await import('./runtime/cache.js');
            const store = new FileCache(await caches.open(name), new URL('./', location.href).href);
            for (const p of wasm) await store.put(p, manifest.files[p].sha256, new Uint8Array(8), 'application/wasm');
            const before = (await store.cache.keys()).map((r) => r.url);
            const deleted = await store.prune(manifest);
            return {before, deleted, after: (await store.cache.keys()).map((r) => r.url)};
        }""", [CACHE_NAME, manifest, wasm])
    finally:
        page.close()
    keys = {f"{cranfield_url}{p}?websem-sha256={manifest['files'][p]['sha256']}" for p in wasm}
    assert keys <= set(out["before"])
    assert out["deleted"] == 2
    assert set(out["after"]) == set(out["before"]) - keys


# A split model's word rows (web/src/model.js WordRows): read per query by byte range, which
# Chromium's HTTP cache does not serve again; once the background fill has read every block the
# whole file goes into Cache Storage, and a later visit cuts its blocks from that copy.

# One hybrid query, then the fill; the rows' counters after each (engine.debug, relayed by the
# default worker). `waitFor`: a Cache Storage key to wait for before the engine closes (the store
# after the fill is not awaited; closing stops the worker).
ROWS_VISIT = """async ([query, options, cacheName, waitFor]) => {
    const { load } = await import('./websem.js');
    const events = [];
    const engine = await load(new URL('./', location.href), {...options, onProgress: (e) => events.push(e)});
    if (engine.ready) await engine.ready;
    const runsAtReady = await engine.debug.modelRuns();
    const started = performance.now();
    const result = await engine.searchFull(query, {k: 10, mode: 'hybrid'});
    const ms = performance.now() - started;
    const afterQuery = await engine.debug.wordRowsStats();
    await engine.debug.wordRowsFilled();
    const afterFill = await engine.debug.wordRowsStats();
    for (let i = 0; waitFor && i < 600; i++) {
        if (await (await caches.open(cacheName)).match(waitFor)) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await engine.close();
    return {events: events.filter((e) => e.stage !== 'bytes'), result, ms, afterQuery, afterFill, runsAtReady};
}"""


def rows_spec(bundle: Path) -> tuple[dict, str]:
    """The bundle's manifest.model.word_rows and the rows file's sha256."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    spec = manifest["model"]["word_rows"]
    return spec, manifest["files"][spec["file"]]["sha256"]


def rows_key(url: str, bundle: Path) -> str:
    spec, sha = rows_spec(bundle)
    return f"{url}{spec['file']}?websem-sha256={sha}"


def rows_visit(context, url: str, options: dict | None = None, wait_for: str | None = None) -> tuple[dict, list[str]]:
    """ROWS_VISIT in a new page: its result and the URLs the page (and its workers) requested."""
    return evaluate_logged(context, url, ROWS_VISIT, [QUERIES[0], options or {}, CACHE_NAME, wait_for])


def set_rows_entry(context, url: str, bundle: Path, flip: int | None = None) -> None:
    """Deletes the rows file's Cache Storage entry (`flip` None) or stores the served file there,
    with the byte at offset `flip` flipped unless `flip` is -1."""
    spec, _ = rows_spec(bundle)
    page = context.new_page()
    try:
        page.goto(url + BLANK)
        page.evaluate("""async ([name, key, file, flip]) => {
            const cache = await caches.open(name);
            if (flip === null) return cache.delete(key);
            const bytes = new Uint8Array(await (await fetch(file, {cache: 'no-store'})).arrayBuffer());
            if (flip >= 0) bytes[flip] ^= 0xff;
            await cache.put(key, new Response(bytes));
        }""", [CACHE_NAME, rows_key(url, bundle), url + spec["file"], flip])
    finally:
        page.close()


def prune_now(context, url: str, bundle: Path) -> int:
    """FileCache.prune against the bundle's manifest, in a page: the entries it deleted."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    page = context.new_page()
    try:
        page.goto(url + BLANK)
        return page.evaluate("""async ([name, manifest]) => {
            const { FileCache } = await import('./runtime/cache.js');
            return new FileCache(await caches.open(name), new URL('./', location.href).href).prune(manifest);
        }""", [CACHE_NAME, manifest])
    finally:
        page.close()


def rows_requested(requests: list[str], bundle: Path) -> list[str]:
    spec, _ = rows_spec(bundle)
    return [r for r in requests if r.split("?")[0].endswith(spec["file"])]


def top_hits(result: dict) -> list[tuple]:
    return [(h["id"], round(h["score"], 6), h["snippet"]) for h in result["hits"]]


def test_word_rows_are_stored_after_the_fill_and_read_from_the_cache(first_visit, browser_context, cranfield_url,
                                                                     browser_bundle) -> None:
    """The first visit's query reads its blocks by range and the fill the rest; then the whole
    file is in Cache Storage (kept by prune: the manifest lists it with that sha256). The next
    visits read no rows from the network, neither for the first query nor for the fill (the
    rows' counters: no range request, no byte fetched), and answer the same."""
    first, _ = first_visit
    key = rows_key(cranfield_url, browser_bundle)
    _, sha = rows_spec(browser_bundle)
    set_rows_entry(browser_context, cranfield_url, browser_bundle)  # whatever earlier tests left
    cold, cold_requests = rows_visit(browser_context, cranfield_url, wait_for=key)
    assert rows_requested(cold_requests, browser_bundle)
    assert wait_for_entries(browser_context, cranfield_url, {key: sha}).get(key) == sha
    assert prune_now(browser_context, cranfield_url, browser_bundle) == 0  # not stale: kept
    assert key in cache_entries(browser_context, cranfield_url)
    warm, warm_requests = rows_visit(browser_context, cranfield_url)
    assert rows_requested(warm_requests, browser_bundle) == []
    # And with the engine in the page's thread (worker: false), the other place it runs.
    again, again_requests = rows_visit(browser_context, cranfield_url, {"worker": False})
    assert rows_requested(again_requests, browser_bundle) == []
    for stats in (warm["afterQuery"], warm["afterFill"], again["afterQuery"], again["afterFill"]):
        assert stats["range_requests"] == 0 and stats["fetched_bytes"] == 0, stats
        assert stats["cache_storage_hits"] > 0 and stats["misses"] == 0, stats
    # No query was asked while loading: ORT's warm-up run went first (model.js warmUp).
    assert warm["runsAtReady"] == again["runsAtReady"] == 1, (warm["runsAtReady"], again["runsAtReady"])
    for out in (warm, again):
        assert not [e for e in out["events"] if e["stage"] == "cache-refused"], out["events"]
        assert top_hits(out["result"]) == top_hits(first["results"]["hybrid"][0])
    assert top_hits(cold["result"]) == top_hits(first["results"]["hybrid"][0])
    print(f"first hybrid query: {cold['ms']:.0f} ms with the rows by range, {warm['ms']:.0f} ms from Cache Storage")


def test_tampered_word_rows_entry_is_refused(first_visit, browser_context, cranfield_url, browser_bundle) -> None:
    """One byte flipped inside a block the query reads (same size: only that block's hash can
    tell): the copy is refused and deleted, the rows come from the network, the hits are right."""
    from websem.web.query import _bundle_tokenizer

    first, _ = first_visit
    spec, _ = rows_spec(browser_bundle)
    manifest = json.loads((browser_bundle / "manifest.json").read_text(encoding="utf-8"))
    k = _bundle_tokenizer(browser_bundle, manifest).encode(QUERIES[0]).ids[1] // spec["block_rows"]
    assert all(i // spec["block_rows"] != k for i in spec["preload_ids"])  # the query's, not the load's
    set_rows_entry(browser_context, cranfield_url, browser_bundle, flip=k * spec["block_rows"] * spec["row_bytes"] + 5)
    # "on-demand": no fill, so nothing stores a good copy again behind the test's back.
    out, requests = rows_visit(browser_context, cranfield_url, {"wordRows": "on-demand"})
    refused = [e for e in out["events"] if e["stage"] == "cache-refused"]
    assert [e["file"] for e in refused] == [spec["file"]], out["events"]
    assert refused[0]["reason"].startswith("websem: ") and f"block {k} " in refused[0]["reason"], refused
    assert rows_requested(requests, browser_bundle)
    assert top_hits(out["result"]) == top_hits(first["results"]["hybrid"][0])
    assert rows_key(cranfield_url, browser_bundle) not in cache_entries(browser_context, cranfield_url)


def test_cache_false_never_stores_or_reads_the_word_rows(first_visit, browser_context, cranfield_url,
                                                         browser_bundle) -> None:
    first, _ = first_visit
    key = rows_key(cranfield_url, browser_bundle)
    spec, _ = rows_spec(browser_bundle)
    set_rows_entry(browser_context, cranfield_url, browser_bundle)
    out, _ = rows_visit(browser_context, cranfield_url, {"cache": False})
    assert out["afterFill"]["fetched_bytes"] == spec["rows"] * spec["row_bytes"], out["afterFill"]
    time.sleep(2)  # a store would have started when the fill ended
    assert key not in cache_entries(browser_context, cranfield_url)
    # A good copy there is not read either.
    set_rows_entry(browser_context, cranfield_url, browser_bundle, flip=-1)
    options = {"cache": False, "wordRows": "on-demand"}
    out, requests = rows_visit(browser_context, cranfield_url, options)
    assert out["afterQuery"]["range_requests"] > 0 and out["afterQuery"]["cache_storage_hits"] == 0, out
    assert rows_requested(requests, browser_bundle)
    assert top_hits(out["result"]) == top_hits(first["results"]["hybrid"][0])
