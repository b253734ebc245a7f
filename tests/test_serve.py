"""`websem serve`: 127.0.0.1 only, the MIME types browsers insist on, COOP/COEP on request, and
Content-Encoding negotiation over the bundle's precompressed copies (current ones only)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import brotli
import pytest
from click.testing import CliRunner
from websem.text.errors import WebsemError
from websem.web.serve import serve_bundle, serve_cmd


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    """Just enough files to check the HTTP layer (the browser tests serve real bundles)."""
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "websem-bundle"}))
    (tmp_path / "websem.js").write_text("export const x = 1;\n")
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "a.mjs").write_text("export default 1;\n")
    (tmp_path / "vendor" / "a.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    return tmp_path


def _get(url: str) -> tuple[int, Message, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


@pytest.mark.parametrize("coop_coep", [False, True])
def test_mime_types_and_isolation_headers(tiny_bundle: Path, coop_coep: bool) -> None:
    server, url = serve_bundle(tiny_bundle, coop_coep=coop_coep)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        expected = {
            "websem.js": "text/javascript",
            "vendor/a.mjs": "text/javascript",
            "vendor/a.wasm": "application/wasm",
            "manifest.json": "application/json",
            "index.html": "text/html; charset=utf-8",
        }
        for rel, mime in expected.items():
            status, headers, body = _get(url + rel)
            assert status == 200, rel
            assert headers["Content-Type"] == mime, rel
            assert body == (tiny_bundle / rel).read_bytes()
            assert ("Cross-Origin-Opener-Policy" in headers) is coop_coep
            if coop_coep:
                assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
                assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert _get(url + "nope.json")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_listens_on_loopback_only(tiny_bundle: Path) -> None:
    server, _ = serve_bundle(tiny_bundle)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_refuses_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(WebsemError, match=r"^websem: .*no manifest.json"):
        serve_bundle(tmp_path)
    result = CliRunner().invoke(serve_cmd, [str(tmp_path), "--port", "0"])
    # Exit status 2 with the bare `websem:` line, like every other websem command.
    assert result.exit_code == 2
    assert result.output.startswith("websem:") and "websem build" in result.output


# --- Content-Encoding negotiation ---------------------------------------------------------------

ENGINE = ("export function rank(q) { return q.split(' ').map((t) => t.length); }\n" * 300).encode()


@pytest.fixture
def compressed_bundle(tmp_path: Path) -> Path:
    """A bundle whose runtime/engine.js has brotli and gzip copies listed in manifest.encodings,
    written by the build's own precompress step."""
    from websem.build.compress import precompress

    root = tmp_path / "b"
    (root / "runtime").mkdir(parents=True)
    (root / "runtime" / "engine.js").write_bytes(ENGINE)
    (root / "websem.js").write_text("export const x = 1;\n")
    files = {rel: {"sha256": hashlib.sha256((root / rel).read_bytes()).hexdigest(),
                   "size": (root / rel).stat().st_size} for rel in ("runtime/engine.js", "websem.js")}
    encodings, _ = precompress(root, files)
    assert set(encodings) == {"runtime/engine.js"}
    (root / "manifest.json").write_text(json.dumps({"format": "websem-bundle", "files": files,
                                                    "encodings": encodings}))
    return root


def _request(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture
def served(compressed_bundle: Path):
    server, url = serve_bundle(compressed_bundle)
    yield url
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("accept", "coding"), [
    ("gzip, deflate, br, zstd", "br"),  # what Chromium sends
    ("gzip, br", "br"),  # brotli preferred on equal q-values
    ("br;q=0.5, gzip;q=0.9", "gzip"),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("br;q=0, gzip;q=0", None),
    ("*", "br"),
    ("*, br;q=0", "gzip"),
    ("identity", None),
    ("deflate", None),
    (None, None),
])
def test_negotiates_content_encoding(served: str, compressed_bundle: Path, accept: str | None,
                                     coding: str | None) -> None:
    status, headers, body = _request(served + "runtime/engine.js", {"Accept-Encoding": accept} if accept else {})
    assert status == 200
    assert headers["Content-Type"] == "text/javascript"  # the original's type, whatever the coding
    assert headers["Vary"] == "Accept-Encoding"
    assert headers.get("Content-Encoding") == coding
    assert int(headers["Content-Length"]) == len(body)
    decoded = {"br": brotli.decompress, "gzip": gzip.decompress, None: bytes}[coding](body)
    assert decoded == ENGINE
    if coding:
        assert len(body) < len(ENGINE) // 10


def test_etag_per_representation_and_304(served: str) -> None:
    url = served + "runtime/engine.js"
    etags = {}
    for accept in ("br", "gzip", "identity"):
        status, headers, _ = _request(url, {"Accept-Encoding": accept})
        assert status == 200
        etags[accept] = headers["ETag"]
    assert len(set(etags.values())) == 3, etags
    status, headers, body = _request(url, {"Accept-Encoding": "br", "If-None-Match": etags["br"]})
    assert (status, body) == (304, b"") and headers["ETag"] == etags["br"] and headers["Vary"] == "Accept-Encoding"
    # The browser holds another representation: it gets the one it asked for, in full.
    status, headers, body = _request(url, {"Accept-Encoding": "br", "If-None-Match": etags["identity"]})
    assert status == 200 and headers["Content-Encoding"] == "br" and brotli.decompress(body) == ENGINE
    status, headers, body = _request(url, {"Accept-Encoding": "br"}, method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Encoding"] == "br"


def test_files_without_copies_and_copies_by_name_are_plain(served: str, compressed_bundle: Path) -> None:
    status, headers, body = _request(served + "websem.js", {"Accept-Encoding": "br, gzip"})
    assert status == 200 and "Content-Encoding" not in headers and "Vary" not in headers
    assert body == (compressed_bundle / "websem.js").read_bytes()
    status, headers, body = _request(served + "manifest.json", {"Accept-Encoding": "br, gzip"})
    assert status == 200 and "Content-Encoding" not in headers
    for name, mime in (("runtime/engine.js.br", "application/octet-stream"),
                       ("runtime/engine.js.gz", "application/gzip")):
        status, headers, body = _request(served + name, {"Accept-Encoding": "br, gzip"})
        assert status == 200 and "Content-Encoding" not in headers and headers["Content-Type"] == mime
        assert body == (compressed_bundle / name).read_bytes()


@pytest.mark.parametrize("change", ["copy edited", "copy removed", "original edited", "not listed"])
def test_stale_copies_are_never_sent(served: str, compressed_bundle: Path, change: str) -> None:
    """A copy is sent only while it is the listed one and its original is the listed file: after
    any edit the original on disk is sent, so the runtime's sha256 check sees what is really there."""
    url = served + "runtime/engine.js"
    assert _request(url, {"Accept-Encoding": "br"})[1]["Content-Encoding"] == "br"  # hashes now cached
    time.sleep(0.01)  # a new mtime even on coarse-grained file systems
    engine = compressed_bundle / "runtime" / "engine.js"
    br = compressed_bundle / "runtime" / "engine.js.br"
    if change == "copy edited":  # same size, other bytes: only the sha256 tells
        data = bytearray(br.read_bytes())
        data[-1] ^= 1
        br.write_bytes(bytes(data))
    elif change == "copy removed":
        br.unlink()
    elif change == "original edited":  # same size: the copy no longer matches the file on disk
        engine.write_bytes(ENGINE[:-2] + b"//")
    else:
        manifest = json.loads((compressed_bundle / "manifest.json").read_text())
        del manifest["encodings"]["runtime/engine.js"]["br"]
        (compressed_bundle / "manifest.json").write_text(json.dumps(manifest))
    status, headers, body = _request(url, {"Accept-Encoding": "br"})
    assert status == 200 and "Content-Encoding" not in headers and body == engine.read_bytes()
    if change != "original edited":  # gzip is still current and still used
        status, headers, body = _request(url, {"Accept-Encoding": "br, gzip"})
        assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == engine.read_bytes()


# --- byte ranges (a partitioned index reads rows blocks by range) --------------------------------


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-0", 0, 0),
    ("bytes=100-199", 100, 199),
    ("bytes=17000-", 17000, len(ENGINE) - 1),
    ("bytes=-10", len(ENGINE) - 10, len(ENGINE) - 1),
    ("bytes=5-999999999", 5, len(ENGINE) - 1),  # clamped to the end
])
def test_a_single_range_is_206_of_the_identity_bytes(served: str, header: str, first: int, last: int) -> None:
    """A range of a file that has precompressed copies: the file's own bytes, no Content-Encoding
    whatever Accept-Encoding says, with Content-Range and Accept-Ranges."""
    status, headers, body = _request(served + "runtime/engine.js",
                                     {"Range": header, "Accept-Encoding": "gzip, deflate, br, zstd"})
    assert status == 206
    assert body == ENGINE[first:last + 1]
    assert headers["Content-Range"] == f"bytes {first}-{last}/{len(ENGINE)}"
    assert headers["Content-Length"] == str(last - first + 1)
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Encoding"] is None
    assert headers["Content-Type"] == "text/javascript"


@pytest.mark.parametrize("header", [f"bytes={len(ENGINE)}-", f"bytes={len(ENGINE) + 5}-{len(ENGINE) + 9}",
                                    "bytes=-0"])
def test_an_unsatisfiable_range_is_416(served: str, header: str) -> None:
    status, headers, body = _request(served + "runtime/engine.js", {"Range": header})
    assert status == 416 and body == b""
    assert headers["Content-Range"] == f"bytes */{len(ENGINE)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "bytes=9-3", "items=0-5", "bytes=x-y"])
def test_multi_and_malformed_ranges_get_the_whole_file(served: str, header: str) -> None:
    status, headers, body = _request(served + "websem.js", {"Range": header})
    assert status == 200 and body == b"export const x = 1;\n" and headers["Content-Range"] is None
    assert headers["Accept-Ranges"] == "bytes"


def test_head_ignores_range_and_copies_do_not_advertise_ranges(served: str) -> None:
    status, headers, body = _request(served + "runtime/engine.js", {"Range": "bytes=0-9", "Accept-Encoding": "br"},
                                     method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Encoding"] == "br"
    assert headers["Content-Range"] is None and headers["Accept-Ranges"] is None
    status, headers, _ = _request(served + "runtime/engine.js", method="HEAD")
    assert status == 200 and headers["Content-Length"] == str(len(ENGINE)) and headers["Accept-Ranges"] == "bytes"


def test_bench_server_answers_ranges_the_same_way(compressed_bundle: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from server import BenchServer

    with BenchServer({"/": compressed_bundle}, brotli=True) as srv:
        url = srv.url + "/runtime/engine.js"
        status, headers, body = _request(url, {"Range": "bytes=100-199", "Accept-Encoding": "br"})
        assert (status, body, headers["Content-Range"]) == (206, ENGINE[100:200], f"bytes 100-199/{len(ENGINE)}")
        assert headers["Content-Encoding"] is None and headers["Accept-Ranges"] == "bytes"
        assert _request(url, {"Range": f"bytes={len(ENGINE)}-"})[0] == 416
        status, headers, body = _request(url, {"Range": "bytes=0-1,5-9", "Accept-Encoding": "br"})
        assert status == 200 and headers["Content-Encoding"] == "br" and brotli.decompress(body) == ENGINE
        log = srv.take_log()
        assert [(e["status"], e["bytes"]) for e in log] == [(206, 100), (416, 0), (200, len(body))]
