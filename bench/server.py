"""A static file server for the browser benchmarks: one origin on 127.0.0.1 serving the websem
bundle, the bench pages and the transformers.js peer side by side, with identical headers.

Why not `websem.web.serve.serve_bundle`: the benchmark needs several folders under one origin
(bundle, peer library, peer model folder, bench pages) and, above all, *the same* headers for
both stacks, so neither side gets an unfair cache or compression advantage. Every response is
logged (path, status, bytes) so the harness can attribute bytes to page loads.
"""

from __future__ import annotations

import http.server
import posixpath
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BenchServer", "MIME_TYPES", "CACHE_CONTROL"]

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


@dataclass
class _Log:
    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[dict] = field(default_factory=list)


class BenchServer:
    """Serve `mounts` (URL prefix -> folder) on 127.0.0.1 in a background thread.

    Use as a context manager; `url` is the origin (``http://127.0.0.1:PORT``).
    `take_log()` returns and clears the list of `{path, status, bytes}` served since the last call.
    """

    def __init__(self, mounts: dict[str, Path], port: int = 0) -> None:
        # Longest prefix first, so /peer/ort/ wins over /peer/.
        self.mounts = sorted(
            ((p if p.endswith("/") else p + "/", Path(d).resolve()) for p, d in mounts.items()),
            key=lambda m: -len(m[0]),
        )
        self._log = _Log()
        handler = self._make_handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
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
                f = super().send_head()
                # Log what actually goes over the wire (body bytes; 304s and 404s carry none).
                size = 0
                if f is not None and hasattr(f, "fileno"):
                    import os

                    size = os.fstat(f.fileno()).st_size if self.command == "GET" else 0
                with server._log.lock:
                    server._log.entries.append(
                        {"path": self.path.split("?", 1)[0], "status": self._status, "bytes": size}
                    )
                return f

            def send_response(self, code: int, message: str | None = None) -> None:
                self._status = code
                super().send_response(code, message)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        return Handler
