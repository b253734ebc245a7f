"""A static file server for the browser benchmarks: one origin on 127.0.0.1 serving the websem
bundle, the bench pages and the transformers.js peer side by side, with identical headers.

Why not `websem.web.serve.serve_bundle`: the benchmark needs several folders under one origin
(bundle, peer library, peer model folder, bench pages) and, above all, *the same* headers for
both stacks, so neither side gets an unfair cache or compression advantage. Every response is
logged (path, status, bytes) so the harness can attribute bytes to page loads.

A GET with one ``Range`` (``bytes=a-b``, ``a-``, ``-n``) on a file is answered as `websem serve`
answers it (``websem.web.serve.byte_range``): 206 with those bytes of the file itself, never
compressed, or 416; several ranges get the whole file.
"""

from __future__ import annotations

import http.server
import posixpath
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BenchServer", "MIME_TYPES", "CACHE_CONTROL", "NETWORKS", "Link", "network_label", "network_record"]

MIME_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".zip": "application/zip",
    ".py": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".tar": "application/x-tar",
}

# What GitHub Pages sends for every file (plus Last-Modified); the same for both stacks, so the
# repeat-visit start measures what a typical static host gives users.
CACHE_CONTROL = "public, max-age=600"


@dataclass(frozen=True)
class Link:
    """An emulated network link: every response waits one round trip before its first byte, and
    all response bodies share one downstream of ``mbit`` Mbit/s. Done here, in the server, and not
    with Chromium's CDP network emulation, which throttles a page's own requests but not those of
    its dedicated workers (where websem fetches everything), so it would favour websem."""

    mbit: float
    rtt_ms: float

    @property
    def bytes_per_s(self) -> float:
        return self.mbit * 1e6 / 8


# --network presets of bench/browser.py (None: plain loopback).
NETWORKS: dict[str, Link | None] = {"loopback": None, "20mbit-40ms": Link(mbit=20, rtt_ms=40)}


def network_record(name: str) -> dict:
    """The ``network`` entry a results JSON keeps for a --network preset."""
    link = NETWORKS[name]
    return {"name": name, **({"mbit": link.mbit, "rtt_ms": link.rtt_ms, "encoding": "br"}
                             if link else {"encoding": "identity"})}


def network_label(record: dict | None) -> str:
    """The results header's words for a ``network_record`` (older files may have none)."""
    if record and record.get("mbit"):
        return (f"network: {record['mbit']:g} Mbit/s, {record['rtt_ms']:g} ms RTT, brotli "
                "(emulated by the bench server)")
    return "network: loopback"
# Compressed on the fly (once per file, at common.wire_quality: the quality websem's build gives a
# file of that kind, for every stack) when the client accepts br, as static hosts
# and CDNs do for these types; wasm and onnx too, since CDNs compress application/wasm and
# websem's precompressed copies cover them (docs/hosting.md).
_COMPRESSIBLE = (".html", ".js", ".mjs", ".json", ".wasm", ".onnx", ".bin", ".py", ".txt", ".css", ".zip")


def _brotli(raw: bytes, quality: int) -> bytes:
    """brotli of ``raw`` at ``quality``, kept on disk by sha256 (the model and wasm files take
    seconds to a minute each)."""
    import hashlib

    import brotli
    from common import CACHE

    folder = CACHE / "brotli-bodies"
    path = folder / f"{hashlib.sha256(raw).hexdigest()}-q{quality}.br"
    if path.is_file():
        packed = path.read_bytes()
        if brotli.decompress(packed) == raw:
            return packed
    packed = brotli.compress(raw, quality=quality)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{threading.get_ident()}.part")
    tmp.write_bytes(packed)
    tmp.replace(path)
    return packed


class _Downstream:
    """One shared token bucket: the link's bytes leave in order, at its rate."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.lock = threading.Lock()
        self.free_at = 0.0

    def send(self, out, data: bytes) -> None:
        import time

        step = 16 * 1024
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            with self.lock:
                start = max(time.monotonic(), self.free_at)
                self.free_at = start + len(piece) / self.link.bytes_per_s
                done = self.free_at
            delay = done - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            out.write(piece)


class _QuietServer(http.server.ThreadingHTTPServer):
    """A browser that closes a page (or its profile) mid-download drops the connection: over an
    emulated link that is most runs, and a traceback per dropped response buried the progress
    lines. Other handler errors still print."""

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - stdlib signature
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


@dataclass
class _Log:
    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[dict] = field(default_factory=list)


class BenchServer:
    """Serve `mounts` (URL prefix -> folder) on 127.0.0.1 in a background thread.

    Use as a context manager; `url` is the origin (``http://127.0.0.1:PORT``).
    `take_log()` returns and clears the list of `{path, status, bytes, t}` served since the last
    call (t: `time.perf_counter()` when the request arrived).
    """

    def __init__(self, mounts: dict[str, Path], port: int = 0, link: Link | None = None,
                 brotli: bool = False) -> None:
        """``link``: emulate that network (implies ``brotli``); ``brotli``: send brotli-compressed
        bodies of compressible files to clients that accept them (the log counts wire bytes)."""
        self.link = link
        self.brotli = brotli or link is not None
        self._downstream = _Downstream(link) if link else None
        self._compressed: dict[tuple, bytes | None] = {}
        self._compress_lock = threading.Lock()
        # Longest prefix first, so /peer/ort/ wins over /peer/.
        self.mounts = sorted(
            ((p if p.endswith("/") else p + "/", Path(d).resolve()) for p, d in mounts.items()),
            key=lambda m: -len(m[0]),
        )
        self._log = _Log()
        handler = self._make_handler()
        self.httpd = _QuietServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> BenchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def take_log(self) -> list[dict]:
        with self._log.lock:
            out, self._log.entries = self._log.entries, []
        return out

    def resolve(self, url_path: str) -> Path | None:
        """Map a URL path onto a file under one of the mounts (None if outside every mount)."""
        path = posixpath.normpath(urllib.parse.unquote(url_path.split("?", 1)[0]))
        if url_path.endswith("/") and not path.endswith("/"):
            path += "/"
        for prefix, folder in self.mounts:
            if path.startswith(prefix) or path + "/" == prefix:
                rel = path[len(prefix):]
                target = (folder / rel).resolve()
                # Symlinks are allowed (the peer model folder links to the model package), but
                # a URL must not climb out of its mount with "..".
                if ".." in Path(rel).parts:
                    return None
                return target
        return None

    def compressed(self, target: Path) -> bytes | None:
        """Brotli bytes of ``target`` at common.wire_quality (memoised per path, size and mtime), or
        None where compression does not pay (under 5 % saved) or the type is not compressible."""
        if not target.name.endswith(_COMPRESSIBLE):
            return None
        st = target.stat()
        key = (str(target), st.st_size, st.st_mtime_ns)
        with self._compress_lock:
            if key not in self._compressed:
                raw = target.read_bytes()
                from common import wire_quality

                packed = _brotli(raw, wire_quality(target))
                self._compressed[key] = packed if len(packed) < 0.95 * len(raw) else None
            return self._compressed[key]

    def prime(self) -> int:
        """Compress every compressible file under the mounts now, so no measured request waits
        for the compressor. Returns the number of files."""
        n = 0
        for _, folder in self.mounts:
            for f in sorted(folder.rglob("*")):
                if f.is_file() and f.name.endswith(_COMPRESSIBLE) and "node_modules" not in f.relative_to(folder).parts:
                    self.compressed(f.resolve())
                    n += 1
        return n

    def _make_handler(self) -> type[http.server.SimpleHTTPRequestHandler]:
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

            def translate_path(self, path: str) -> str:
                target = server.resolve(path)
                return str(target) if target is not None else "/nonexistent/websem-bench"

            def end_headers(self) -> None:
                self.send_header("Cache-Control", CACHE_CONTROL)
                super().end_headers()

            def send_head(self):  # noqa: ANN202 - stdlib signature
                import time

                arrived = time.perf_counter()  # when the request arrived (the harness's clock)
                if server.link is not None:
                    time.sleep(server.link.rtt_ms / 1000)  # request out, first byte back
                self._status_sent = False
                f = self._send_range() if self.command == "GET" and self.headers.get("Range") else None
                if f is None and self._status_sent is False:
                    f = self._send_compressed() if server.brotli else None
                if f is None and self._status_sent is False:
                    f = super().send_head()
                # Log what actually goes over the wire (body bytes; 304s and 404s carry none).
                size = 0
                if f is not None and hasattr(f, "getbuffer"):  # a compressed body
                    size = len(f.getbuffer()) if self.command == "GET" else 0
                elif f is not None and hasattr(f, "fileno"):
                    import os

                    size = os.fstat(f.fileno()).st_size if self.command == "GET" else 0
                with server._log.lock:
                    server._log.entries.append(
                        {"path": self.path.split("?", 1)[0], "status": self._status, "bytes": size, "t": arrived}
                    )
                return f

            _status_sent = False

            def _send_range(self):  # noqa: ANN202 - a file-like body or None
                import io

                from websem.web.serve import Unsatisfiable, byte_range

                target = server.resolve(self.path)
                if target is None or not target.is_file():
                    return None
                size = target.stat().st_size
                try:
                    got = byte_range(self.headers.get("Range"), size)
                except Unsatisfiable:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if got is None:
                    return None
                with open(target, "rb") as fh:
                    fh.seek(got[0])
                    body = fh.read(got[1] - got[0] + 1)
                self.send_response(206)
                self.send_header("Content-Type", self.guess_type(str(target)))
                self.send_header("Content-Range", f"bytes {got[0]}-{got[0] + len(body) - 1}/{size}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
                self.end_headers()
                return io.BytesIO(body)

            def _send_compressed(self):  # noqa: ANN202 - a file-like body or None
                import io

                target = server.resolve(self.path)
                if (target is None or not target.is_file()
                        or "br" not in self.headers.get("Accept-Encoding", "")):
                    return None
                body = server.compressed(target)
                if body is None:
                    return None
                ctype = self.guess_type(str(target))
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Encoding", "br")
                self.send_header("Vary", "Accept-Encoding")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
                self.end_headers()
                return io.BytesIO(body)

            def copyfile(self, source, outputfile) -> None:
                if server._downstream is None:
                    super().copyfile(source, outputfile)
                else:
                    server._downstream.send(outputfile, source.read())

            def send_response(self, code: int, message: str | None = None) -> None:
                self._status = code
                self._status_sent = True
                super().send_response(code, message)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        return Handler
