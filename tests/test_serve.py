"""`websem serve`: 127.0.0.1 only, the MIME types browsers insist on, COOP/COEP on request."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

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
