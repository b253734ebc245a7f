"""`websem serve BUNDLE`: serve a search bundle on 127.0.0.1 with the MIME types the runtime needs.

Browsers refuse `WebAssembly.instantiateStreaming` without `application/wasm` and module scripts
without a JavaScript MIME type, and Python's default table varies by platform, so the types are
set here explicitly. `--coop-coep` adds the headers that make the page cross-origin isolated
(SharedArrayBuffer, hence onnxruntime-web threads).

Compression: a file with a precompressed copy next to it (``FILE.br``, ``FILE.gz``, written by
`websem build`, build/compress.py) is sent as that copy with ``Content-Encoding: br|gzip`` when the
request's Accept-Encoding allows it (brotli preferred), and only while the copy is current: listed in
the bundle's ``manifest.encodings`` for FILE with the size and sha256 it has on disk, and FILE itself
still the one ``manifest.files`` lists. Anything else (no manifest entry, a stale or edited copy, an
edited original) is sent as the original, so the runtime's sha256 check sees what is really on disk.
Each representation has its own ETag, and files that have copies say ``Vary: Accept-Encoding``.

Byte ranges: a GET with one ``Range: bytes=a-b`` (or ``a-``, ``-n``) on a file is answered 206 with
those bytes of the file itself (never a precompressed copy: a range addresses the identity bytes,
which is how a partitioned index reads rows blocks), ``Content-Range`` and ``Accept-Ranges: bytes``;
an unsatisfiable range gets 416 with ``Content-Range: bytes */SIZE``. A multi-range or malformed
header is ignored (200, the whole file), as RFC 9110 allows; HEAD ignores Range.

Caching: every response says `Cache-Control: no-cache` and carries a strong `ETag` (file mtime in
ns + size), so a browser revalidates each file and gets a bodiless 304 when it is unchanged. That
is what makes the runtime's JS modules cross the network once: the engine fetches a module to check
its sha256, then `import()`s it, and the import is answered from the HTTP cache (docs/architecture.md,
"Runtime").
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

import click
from websem.text.errors import WebsemError

__all__ = ["MIME_TYPES", "BundleRequestHandler", "BundleServer", "Unsatisfiable", "accepted_encodings", "byte_range",
           "serve_bundle", "serve_cmd"]

MIME_TYPES: dict[str, str] = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".py": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".zip": "application/zip",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    # A precompressed copy asked for by its own name is a plain download (no Content-Encoding),
    # not the original's type: mimetypes would call runtime/engine.js.br text/javascript.
    ".br": "application/octet-stream",
    ".gz": "application/gzip",
}


# Accept-Encoding token -> (manifest.encodings key, file suffix); brotli first on equal q-values.
ACCEPTED = {"br": ("br", ".br"), "gzip": ("gz", ".gz")}


def accepted_encodings(header: str | None) -> list[str]:
    """The codings of ``ACCEPTED`` that an Accept-Encoding header allows, best first (RFC 9110
    12.5.3: ``q=0`` refuses a coding, ``*`` stands for codings not named, ``x-gzip`` is gzip)."""
    if not header:
        return []
    q: dict[str, float] = {}
    for part in header.split(","):
        name, *params = (x.strip() for x in part.split(";"))
        name = {"x-gzip": "gzip"}.get(name.lower(), name.lower())
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name:
            q[name] = weight
    order = list(ACCEPTED)
    weights = {c: q.get(c, q.get("*", 0.0)) for c in order}
    return sorted((c for c in order if weights[c] > 0), key=lambda c: (-weights[c], order.index(c)))


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(ValueError):
    """A Range header no byte of the file satisfies (answer 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte of a file of ``size`` bytes that a ``Range`` header
    asks for: ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (the last n), ``b`` clamped to the end.
    None: no header, several ranges or a malformed one (send the whole file). Raises
    :class:`Unsatisfiable` when the range starts past the end or asks for the last 0 bytes."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    a, b = m.group(1), m.group(2)
    if not a:  # suffix: the last n bytes
        n = int(b)
        if n == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(0, size - n), size - 1
    first = int(a)
    if b and int(b) < first:
        return None  # invalid: ignored, like a malformed header
    last = size - 1 if not b else int(b)
    if first >= size:
        raise Unsatisfiable(header)
    return first, min(last, size - 1)


class _Copies:
    """Which precompressed copies of a served tree are current; thread-safe, cached by file stat.

    A file's bundle is the nearest folder at or above it (up to the served root) that holds a
    websem manifest.json; its ``encodings`` table says which copies exist. A copy is current when
    its size and sha256 are the listed ones and the original's sha256 is the one ``files`` lists.
    Hashes are computed once per (inode, mtime, size) of each file."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._lock = threading.Lock()
        self._manifests: dict[str, tuple[tuple, dict | None]] = {}
        self._hashes: dict[str, tuple[tuple, str]] = {}

    @staticmethod
    def _stamp(st: os.stat_result) -> tuple:
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _manifest(self, folder: str) -> dict | None:
        path = os.path.join(folder, "manifest.json")
        try:
            st = os.stat(path)
        except OSError:
            return None
        with self._lock:
            hit = self._manifests.get(path)
        if hit and hit[0] == self._stamp(st):
            return hit[1]
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
            manifest = data if isinstance(data, dict) and data.get("format") == "websem-bundle" else None
        except (OSError, ValueError):
            manifest = None
        with self._lock:
            self._manifests[path] = (self._stamp(st), manifest)
        return manifest

    def _sha256(self, path: str, st: os.stat_result) -> str:
        with self._lock:
            hit = self._hashes.get(path)
        if hit and hit[0] == self._stamp(st):
            return hit[1]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        with self._lock:
            self._hashes[path] = (self._stamp(st), h.hexdigest())
        return h.hexdigest()

    def listed(self, path: str) -> tuple[str, dict, dict] | None:
        """(bundle folder, manifest.files entry, manifest.encodings entry) of ``path``, if it has copies."""
        folder = os.path.dirname(os.path.abspath(path))
        while True:
            manifest = self._manifest(folder)
            if manifest is not None:
                rel = os.path.relpath(os.path.abspath(path), folder).replace(os.sep, "/")
                entry = (manifest.get("encodings") or {}).get(rel)
                original = (manifest.get("files") or {}).get(rel)
                if isinstance(entry, dict) and isinstance(original, dict):
                    return folder, original, entry
                return None
            if folder == self.root or os.path.dirname(folder) == folder or not folder.startswith(self.root):
                return None
            folder = os.path.dirname(folder)

    def current(self, path: str, original: dict, entry: dict, key: str,
                suffix: str) -> tuple[str, os.stat_result] | None:
        """``(copy path, its stat)`` when the ``key`` copy of ``path`` is current, else None."""
        listed = entry.get(key)
        copy = path + suffix
        try:
            st, st_orig = os.stat(copy), os.stat(path)
        except OSError:
            return None
        if not isinstance(listed, dict) or st.st_size != listed.get("size"):
            return None
        if st_orig.st_size != original.get("size"):
            return None
        if self._sha256(copy, st) != listed.get("sha256") or self._sha256(path, st_orig) != original.get("sha256"):
            return None
        # The encodings entry pins the copy's own bytes, not what it decodes to: a hand-edited
        # original with an updated files entry would otherwise still be answered by its old copy.
        if self._decoded_sha256(copy, key, st) != original.get("sha256"):
            return None
        return copy, st

    def _decoded_sha256(self, copy: str, key: str, st: os.stat_result) -> str | None:
        """sha256 of what the ``key`` ("br" or "gz") copy decodes to; None if it does not decode."""
        with self._lock:
            hit = self._hashes.get(f"{copy}\0decoded")
        if hit and hit[0] == self._stamp(st):
            return hit[1]
        try:
            with open(copy, "rb") as f:
                data = f.read()
            if key == "br":
                import brotli

                data = brotli.decompress(data)
            else:
                import gzip

                data = gzip.decompress(data)
            digest: str | None = hashlib.sha256(data).hexdigest()
        except Exception:  # noqa: BLE001 - any decoding failure means "not a current copy"
            digest = None
        with self._lock:
            self._hashes[f"{copy}\0decoded"] = (self._stamp(st), digest)
        return digest


_COPIES: dict[str, _Copies] = {}
_COPIES_LOCK = threading.Lock()


def _copies_for(root: str) -> _Copies:
    """One :class:`_Copies` per served folder, shared by the server's handler threads."""
    with _COPIES_LOCK:
        if root not in _COPIES:
            _COPIES[root] = _Copies(root)
        return _COPIES[root]


class BundleRequestHandler(SimpleHTTPRequestHandler):
    """Static files with explicit MIME types, optional COOP/COEP, and quiet logs."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    # HTTP/1.1: Chromium ignores ETags on HTTP/1.0 responses (it would revalidate by date only);
    # keep-alive also saves a connection per bundle file. Every answer has a Content-Length.
    protocol_version = "HTTP/1.1"
    coop_coep = False
    quiet = True
    extra_headers: tuple[tuple[str, str], ...] = ()
    etag: str | None = None
    vary = False
    ranges = False  # this response is of the identity bytes: say Accept-Ranges
    negotiate = True  # send current precompressed copies (False: always the file itself)

    def send_head(self):
        """Pick the representation (a current precompressed copy or the file), answer
        ``If-None-Match`` with a bodiless 304 when its ETag matches, else send it."""
        self.etag, self.vary, self.ranges = None, False, False
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().send_head()
        wants_range = self.command == "GET" and self.headers.get("Range") is not None
        chosen = None if wants_range else self._negotiate(path)
        st = chosen[2] if chosen else os.stat(path)
        # Strong validator: Last-Modified alone has 1 s resolution, so a file rebuilt within the
        # same second would be revalidated as unchanged and its stale copy used. A copy's ETag
        # names its coding: the same URL has one ETag per representation.
        tag = f"-{chosen[0]}" if chosen else ""
        self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}{tag}"'
        wanted = self.headers.get("If-None-Match")
        if wanted and (wanted.strip() == "*" or self.etag in (t.strip() for t in wanted.split(","))):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.end_headers()
            return None
        if not chosen:
            self.ranges = True
            if wants_range:
                return self._send_range(path, st)
            return super().send_head()
        coding, copy, _ = chosen
        f = open(copy, "rb")
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", self.guess_type(path))  # the original's type
            self.send_header("Content-Encoding", coding)
            self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
            self.send_header("Last-Modified", self.date_time_string(st.st_mtime))
            self.end_headers()
        except BaseException:
            f.close()
            raise
        return f

    def _send_range(self, path: str, st: os.stat_result):
        """206 with the asked bytes of ``path``, 416 when none can be sent, or the whole file
        (200) for a header :func:`byte_range` ignores."""
        try:
            got = byte_range(self.headers.get("Range"), st.st_size)
        except Unsatisfiable:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{st.st_size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if got is None:
            return super().send_head()
        first, last = got
        with open(path, "rb") as f:
            f.seek(first)
            body = f.read(last - first + 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {first}-{first + len(body) - 1}/{st.st_size}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", self.date_time_string(st.st_mtime))
        self.end_headers()
        return io.BytesIO(body)

    def _negotiate(self, path: str) -> tuple[str, str, os.stat_result] | None:
        """``(Content-Encoding, copy path, copy stat)`` of the copy to send, or None for the file."""
        if not self.negotiate:
            return None
        copies = _copies_for(self.directory)
        listed = copies.listed(path)
        if listed is None:
            return None
        _, original, entry = listed
        self.vary = True  # the answer for this URL depends on Accept-Encoding
        for coding in accepted_encodings(self.headers.get("Accept-Encoding")):
            key, suffix = ACCEPTED[coding]
            found = copies.current(path, original, entry, key, suffix)
            if found:
                return coding, found[0], found[1]
        return None

    def end_headers(self) -> None:
        # Revalidate every time (cheap 304s via ETag): a rebuilt bundle is never mixed with stale
        # cached files, which the runtime would refuse as a sha256 mismatch.
        self.send_header("Cache-Control", "no-cache")
        if self.etag:
            self.send_header("ETag", self.etag)
        if self.vary:
            self.send_header("Vary", "Accept-Encoding")
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        for name, value in self.extra_headers:
            self.send_header(name, value)
        if self.coop_coep:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class BundleServer(ThreadingHTTPServer):
    """A threading HTTP server that stays quiet when a client goes away mid-download."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A page that is closed (or a worker terminated after a refused bundle) drops its
        # downloads; that is not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _check_bundle(bundle: Path) -> Path:
    bundle = Path(bundle)
    # A site root that holds its bundle one level down (e.g. public/_websem/, as `websem demo`
    # lays it out, like Pagefind's _pagefind/) is served as a whole.
    if not (bundle / "manifest.json").is_file() and not any(bundle.glob("*/manifest.json")):
        raise WebsemError(
            f"websem: {bundle} is not a bundle (no manifest.json) nor a site holding one (no */manifest.json); "
            "pass the folder written by `websem build SOURCE --out BUNDLE`, or the site folder containing it"
        )
    return bundle.resolve()


def serve_bundle(
    bundle: Path, port: int = 0, *, coop_coep: bool = False, quiet: bool = True,
    headers: dict[str, str] | None = None,
) -> tuple[BundleServer, str]:
    """Serve `bundle` on 127.0.0.1 from a daemon thread.

    Returns `(server, url)`; `url` ends with `/`. Stop with `server.shutdown(); server.server_close()`.
    `port=0` picks a free port. `headers` are sent with every response (e.g. a
    Content-Security-Policy, to check a page's policy against the runtime).
    """
    root = _check_bundle(bundle)
    handler = type(
        "Handler",
        (BundleRequestHandler,),
        {"coop_coep": coop_coep, "quiet": quiet, "extra_headers": tuple((headers or {}).items())},
    )
    try:
        server = BundleServer(("127.0.0.1", port), functools.partial(handler, directory=str(root)))
    except OSError as e:
        raise WebsemError(f"websem: cannot listen on 127.0.0.1:{port} ({e.strerror}); pick another --port") from e
    thread = threading.Thread(target=server.serve_forever, name="websem-serve", daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _fail(error: WebsemError) -> NoReturn:
    """Exit like every other websem command: the `websem:` message on stderr, status 2."""
    click.echo(str(error), err=True)
    sys.exit(2)


@click.command("serve")
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--coop-coep/--no-coop-coep",
    default=False,
    show_default=True,
    help="Send COOP/COEP so the page is cross-origin isolated (lets onnxruntime-web use threads).",
)
@click.option(
    "--api",
    is_flag=True,
    help="Serve the JSON search API (GET /search?q=, /healthz) via Node instead of static files; "
    "see docs/edge.md.",
)
@click.option(
    "--lean",
    is_flag=True,
    help="With --api: less memory, ~2x slower queries (Node runs wasm with Liftoff only).",
)
def serve_cmd(bundle: Path, port: int, coop_coep: bool, api: bool = False, lean: bool = False) -> None:
    """Serve BUNDLE on 127.0.0.1 (Ctrl-C stops)."""
    if lean and not api:
        raise click.UsageError("websem: --lean applies to --api only; add --api or drop --lean")
    if api:
        # The API is the edge handler (web/src/handler.js) run by Node.
        from websem.web.api_server import run_api_server

        try:
            run_api_server(bundle, port=port, lean=lean, echo=click.echo)
        except WebsemError as e:
            _fail(e)
        return
    try:
        server, url = serve_bundle(bundle, port, coop_coep=coop_coep, quiet=False)
    except WebsemError as e:
        _fail(e)
    click.echo(f"websem: serving {Path(bundle).resolve()} at {url} (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
