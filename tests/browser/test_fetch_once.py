"""Each bundle file crosses the network once on a cold load, and a tampered runtime module is
still refused before it runs.

A file read by byte range (a split model's model/word_rows.bin: the blocks a query needs, then
the rest in the background) crosses once too: the ranges the page's requests finished with never
overlap. That is counted in the browser (Playwright's finished requests): the server may log a
range twice that the page received once (re-sent by the network stack below the page), and logs
the background reads the closed page never received.

The engine fetches each JS module it loads (Pyodide's and onnxruntime-web's, at the paths
manifest.runtime.vendor gives) to check its sha256 against manifest.json, then `import()`s it; the
two workers (the engine's and the Python one) also import the same runtime modules each. Every
repeat request must be a conditional one answered with a bodiless 304 (`websem serve` sends
`Cache-Control: no-cache` and a strong ETag), so the import runs the bytes that were verified, from
the HTTP cache. Counted at the server, which sees every request from the page and both workers."""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

# The vendor JS modules the engine verifies and then imports, as (package, role) keys of the
# bundle's manifest.runtime.vendor, where the runtime reads their paths.
VERIFIED_MODULES = [("pyodide", "module"), ("pyodide", "asm"), ("ort", "module"), ("ort", "glue")]


def vendor_path(bundle: Path, package: str, role: str) -> str:
    """The bundle path of one vendor file, from manifest.runtime.vendor."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return manifest["runtime"]["vendor"][package][role]


class RecordingServer:
    """`websem serve`'s handler, recording (path, status, If-None-Match, body bytes, Range) per request."""

    def __init__(self, root: Path) -> None:
        from websem.web.serve import BundleRequestHandler, BundleServer

        self.log: list[tuple[str, int, str | None, int, str | None]] = []
        log = self.log

        class Handler(BundleRequestHandler):
            def log_request(self, code="-", size="-") -> None:
                self._status = int(code) if isinstance(code, int) else 0  # HTTPStatus is an int

            def copyfile(self, source, outputfile) -> None:
                start = source.tell()
                super().copyfile(source, outputfile)
                self._body = source.tell() - start

            def handle_one_request(self) -> None:
                self._status, self._body = 0, 0
                super().handle_one_request()
                if self._status:
                    path = self.path.split("?", 1)[0]
                    log.append((path, self._status, self.headers.get("If-None-Match"), self._body,
                                self.headers.get("Range")))

        self.server = BundleServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def by_path(self) -> dict[str, list[tuple[int, str | None, int]]]:
        out: dict[str, list[tuple[int, str | None, int]]] = defaultdict(list)
        for path, status, inm, body, _ in self.log:
            out[path.lstrip("/")].append((status, inm, body))
        return out

    def ranges(self, path: str) -> list[tuple[int, int]]:
        """The byte ranges (first, last) of ``path``'s 206 answers, in request order."""
        out = []
        for p, status, _, _, rng in self.log:
            if p.lstrip("/") == path and status == 206:
                first, last = rng.removeprefix("bytes=").split("-")
                out.append((int(first), int(last)))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recording() -> Iterator:
    servers: list[RecordingServer] = []

    def _serve(root: Path) -> RecordingServer:
        servers.append(RecordingServer(root))
        return servers[-1]

    yield _serve
    for s in servers:
        s.close()


def test_each_file_crosses_the_network_once_on_a_cold_load(browser_context, browser_bundle: Path, recording, bt):
    # A new port is a new origin: nothing of it is in the profile's HTTP cache yet (cold load).
    server = recording(browser_bundle)
    finished: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def on_finished(request) -> None:
        rng = request.headers.get("range")
        if rng and request.url.startswith(server.url):
            first, last = rng.removeprefix("bytes=").split("-")
            finished[request.url[len(server.url):].split("?", 1)[0]].append((int(first), int(last)))

    browser_context.on("requestfinished", on_finished)
    page, log = bt.open_search_page(browser_context, server.url)
    hits = page.evaluate("() => window.engine.search('flow over a flat plate', {k: 5})")
    assert hits and log.errors() == []
    page.close()
    time.sleep(0.5)  # let the last log lines land
    browser_context.remove_listener("requestfinished", on_finished)

    seen = server.by_path()
    for path in (vendor_path(browser_bundle, *key) for key in VERIFIED_MODULES):
        assert path in seen, f"{path} was never requested: {sorted(seen)}"
        # Fetched for its sha256 check, then imported: the import must not download it again.
        assert len(seen[path]) >= 2, (path, seen[path])
    for path, answers in seen.items():
        if server.ranges(path):
            # Read by byte range: never also whole, and no byte twice in what the page received.
            assert all(a[0] == 206 for a in answers), (path, answers)
            spans = sorted(finished[path])
            assert spans, (path, answers)
            overlaps = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] <= a[1]]
            assert not overlaps, (path, overlaps)
            continue
        bodies = [a for a in answers if a[0] == 200]
        assert len(bodies) == 1, f"{path} was downloaded {len(bodies)} times: {answers}"
        assert bodies[0][2] > 0, (path, answers)
        for status, inm, body in answers:
            if status != 200:
                # A repeat is a revalidation of the first answer: a 304 carrying no body.
                assert status == 304 and inm and body == 0, (path, answers)


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    from urllib.error import HTTPError

    try:
        with urlopen(Request(url, headers=headers or {})) as r:
            return r.status, dict(r.headers), r.read()
    except HTTPError as e:  # urllib reports a 304 as an error
        return e.code, dict(e.headers), e.read()


def test_etag_revalidation_is_exact(browser_bundle: Path, recording, tmp_path: Path, bt):
    """A 304 is given only for the very bytes the browser holds: a file rewritten within the same
    second at the same size (which Last-Modified cannot tell apart) gets a fresh 200."""
    copy = bt.linked_copy(browser_bundle, tmp_path / "bundle")
    module = vendor_path(browser_bundle, "ort", "module")
    target = bt.make_real(copy / module)
    server = recording(copy)
    url = server.url + module
    status, headers, data = _get(url)
    assert status == 200 and data == target.read_bytes()
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"].startswith('"')
    status, _, body = _get(url, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")

    before = target.stat()
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    ns = before.st_mtime_ns
    ns = ns + 1 if (ns + 1) // 10**9 == ns // 10**9 else ns - 1  # same second, same size
    os.utime(target, ns=(before.st_atime_ns, ns))
    status, fresh, body = _get(url, {"If-None-Match": headers["ETag"], "If-Modified-Since": headers["Last-Modified"]})
    assert status == 200 and body == target.read_bytes() and fresh["ETag"] != headers["ETag"]


@pytest.mark.parametrize("package", ["pyodide", "ort"])
def test_tampered_runtime_module_is_refused_before_it_runs(
    browser_context, browser_bundle: Path, recording, tmp_path: Path, bt, package: str
):
    module = vendor_path(browser_bundle, package, "module")
    copy = bt.linked_copy(browser_bundle, tmp_path / "bundle")
    path = bt.make_real(copy / module)
    # If this ever ran, the server would see a request for /tampered-module-ran.
    path.write_bytes(path.read_bytes() + b'\n;fetch("/tampered-module-ran");\n')
    server = recording(copy)
    message = bt.load_error(browser_context, server.url)
    assert message.startswith("websem:") and module in message and "sha256" in message, message
    time.sleep(0.5)
    assert "tampered-module-ran" not in server.by_path(), "a tampered module was executed"
