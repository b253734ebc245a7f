"""A bundle that is corrupt, incomplete or inconsistent is refused with a `websem:` error that
names the problem and says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def bundle_copy(browser_bundle: Path, tmp_path: Path, bt) -> Path:
    return bt.linked_copy(browser_bundle, tmp_path / "bundle")


def _edit_manifest(bt, bundle: Path, edit) -> None:
    path = bt.make_real(bundle / "manifest.json")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_tampered_vectors_are_refused(browser_context, bundle_copy: Path, serve, bt):
    vectors = bt.make_real(bundle_copy / "index" / "vectors.bin")
    data = bytearray(vectors.read_bytes())
    for i in range(0, len(data), 4096):
        data[i] ^= 0x5A
    vectors.write_bytes(bytes(data))
    message = bt.load_error(browser_context, serve(bundle_copy))
    assert message.startswith("websem:")
    assert "index/vectors.bin" in message and "sha256" in message
    assert "websem build" in message


def test_missing_file_is_refused_naming_the_url(browser_context, bundle_copy: Path, serve, bt):
    (bundle_copy / "index" / "chunks.json").unlink()
    url = serve(bundle_copy)
    message = bt.load_error(browser_context, url)
    assert message.startswith("websem:")
    assert f"{url}index/chunks.json" in message and "404" in message


def test_unknown_format_version_is_refused(browser_context, bundle_copy: Path, serve, bt):
    _edit_manifest(bt, bundle_copy, lambda m: m.update(format_version=99))
    message = bt.load_error(browser_context, serve(bundle_copy))
    assert message.startswith("websem:") and "format_version 99" in message


def test_format_1_bundle_is_refused_with_the_remedy(browser_context, bundle_copy: Path, serve, bt):
    """A bundle of the previous format (no manifest.search, no runtime.vendor) is not read with
    guessed defaults: it is refused, naming its version and how to rebuild it."""
    _edit_manifest(bt, bundle_copy, lambda m: m.update(format_version=1))
    message = bt.load_error(browser_context, serve(bundle_copy))
    assert message.startswith("websem:") and "format_version 1" in message, message
    assert "websem build" in message, message


def test_model_index_mismatch_is_refused(browser_context, bundle_copy: Path, serve, bt):
    _edit_manifest(bt, bundle_copy, lambda m: m["index"].update(model_sha256="0" * 64))
    message = bt.load_error(browser_context, serve(bundle_copy))
    assert message.startswith("websem:")
    assert "0" * 64 in message and "websem build" in message


def test_missing_worker_script_is_refused(browser_context, bundle_copy: Path, serve, bt):
    (bundle_copy / "runtime" / "worker.js").unlink()
    url = serve(bundle_copy)
    message = bt.load_error(browser_context, url)
    assert message.startswith("websem:") and f"{url}runtime/worker.js" in message
