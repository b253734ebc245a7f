"""Precompressed bundles in real Chromium: `websem serve` sends the big files brotli-encoded, the
browser decodes them, the runtime's sha256 checks pass on the decoded bytes, and searches give the
CPU reference's results. Also: WebAssembly streaming compilation accepts a brotli-encoded
application/wasm response (what a site using the precompressed wasm relies on)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

QUERIES = ["flow over a flat plate", "heat transfer in hypersonic flow", "buckling of cylindrical shells"]


def _big_files(bundle: Path) -> list[str]:
    """The bundle's files of a megabyte or more that have a brotli copy (model, wasm, snapshot...)
    and that a load reads: a snapshot restore reads the stdlib zip made with the snapshot
    (runtime.snapshot_stdlib), not the whole python_stdlib.zip."""
    m = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    encodings = m.get("encodings", {})
    unread = {m["runtime"]["vendor"]["pyodide"]["stdlib"]} if m["runtime"].get("snapshot_stdlib") else set()
    big = [rel for rel, info in m["files"].items()
           if info["size"] >= 1_000_000 and "br" in encodings.get(rel, {}) and rel not in unread]
    # The build must have precompressed the files that dominate a cold load.
    vendor = m["runtime"]["vendor"]
    for rel in ("model/model.onnx", vendor["ort"]["wasm"], vendor["pyodide"]["wasm"], "index/chunks.json"):
        assert rel in big, f"{rel} has no brotli copy: {sorted(encodings)}"
    return big


def test_big_files_arrive_brotli_encoded_and_search_matches_cpu(browser_context, browser_bundle: Path,
                                                                cranfield_url: str, bt) -> None:
    encodings: dict[str, str | None] = {}

    def on_response(response) -> None:
        path = urlparse(response.url).path.lstrip("/")
        if response.status == 200:
            encodings[path] = response.headers.get("content-encoding")

    # Requests of the engine's worker are reported on the context, not the page.
    browser_context.on("response", on_response)
    try:
        page, log = bt.open_search_page(browser_context, cranfield_url)
        got = page.evaluate(
            "async (qs) => { const out = []; for (const q of qs) out.push(await window.engine.searchFull(q, {k: 10}));"
            " return out; }", QUERIES)
    finally:
        browser_context.remove_listener("response", on_response)
    assert log.errors() == [], log.errors()
    for rel in _big_files(browser_bundle):
        assert rel in encodings, f"{rel} was not fetched (or not seen) by the page: {sorted(encodings)}"
        assert encodings[rel] == "br", f"{rel} arrived with content-encoding {encodings[rel]!r}"
    want = bt.websem_query_json(browser_bundle, QUERIES, "hybrid")
    bt.assert_same_results(browser_bundle, "hybrid", QUERIES, got, want, engine="chromium (brotli)")
    page.close()


def test_wasm_streaming_compile_accepts_brotli(browser_context, browser_bundle: Path, cranfield_url: str) -> None:
    m = json.loads((browser_bundle / "manifest.json").read_text(encoding="utf-8"))
    page = browser_context.new_page()
    try:
        page.goto(cranfield_url + "index.html")
        for rel in (m["runtime"]["vendor"]["ort"]["wasm"], m["runtime"]["vendor"]["pyodide"]["wasm"]):
            assert "br" in m["encodings"][rel]
            result = page.evaluate(
                """async (url) => {
                    const response = await fetch(url, {cache: "no-store"});
                    const encoding = response.headers.get("content-encoding");
                    const type = response.headers.get("content-type");
                    const module = await WebAssembly.compileStreaming(response);
                    return {encoding, type, exports: WebAssembly.Module.exports(module).length};
                }""",
                cranfield_url + rel,
            )
            assert result["encoding"] == "br" and result["type"] == "application/wasm", result
            assert result["exports"] > 0, result
    finally:
        page.close()
