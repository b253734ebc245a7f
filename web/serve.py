"""`websem serve BUNDLE`: serve a search bundle on 127.0.0.1 with the MIME types the runtime needs.

Browsers refuse `WebAssembly.instantiateStreaming` without `application/wasm` and module scripts
without a JavaScript MIME type, and Python's default table varies by platform, so the types are
set here explicitly. `--coop-coep` adds the headers that make the page cross-origin isolated
(SharedArrayBuffer, hence onnxruntime-web threads).

Caching: every response says `Cache-Control: no-cache` and carries a strong `ETag` (file mtime in
ns + size), so a browser revalidates each file and gets a bodiless 304 when it is unchanged. That
is what makes the runtime's JS modules cross the network once: the engine fetches a module to check
its sha256, then `import()`s it, and the import is answered from the HTTP cache (docs/architecture.md,
"Runtime").
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

import click
from websem.text.errors import WebsemError

__all__ = ["MIME_TYPES", "BundleRequestHandler", "BundleServer", "serve_bundle", "serve_cmd"]

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
}


class BundleRequestHandler(SimpleHTTPRequestHandler):
    """Static files with explicit MIME types, optional COOP/COEP, and quiet logs."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    # HTTP/1.1: Chromium ignores ETags on HTTP/1.0 responses (it would revalidate by date only);
    # keep-alive also saves a connection per bundle file. Every answer has a Content-Length.
    protocol_version = "HTTP/1.1"
    coop_coep = False
    quiet = True
    etag: str | None = None

    def send_head(self):
        """Answer ``If-None-Match`` with a bodiless 304 when the file's ETag matches."""
        self.etag = None
        path = self.translate_path(self.path)
        if os.path.isfile(path):
            st = os.stat(path)
            # Strong validator: Last-Modified alone has 1 s resolution, so a file rebuilt within
            # the same second would be revalidated as unchanged and its stale copy used.
            self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
            wanted = self.headers.get("If-None-Match")
            if wanted and (wanted.strip() == "*" or self.etag in (t.strip() for t in wanted.split(","))):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.end_headers()
                return None
        return super().send_head()

    def end_headers(self) -> None:
        # Revalidate every time (cheap 304s via ETag): a rebuilt bundle is never mixed with stale
        # cached files, which the runtime would refuse as a sha256 mismatch.
        self.send_header("Cache-Control", "no-cache")
        if self.etag:
            self.send_header("ETag", self.etag)
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
    bundle: Path, port: int = 0, *, coop_coep: bool = False, quiet: bool = True
) -> tuple[BundleServer, str]:
    """Serve `bundle` on 127.0.0.1 from a daemon thread.

    Returns `(server, url)`; `url` ends with `/`. Stop with `server.shutdown(); server.server_close()`.
    `port=0` picks a free port.
    """
    root = _check_bundle(bundle)
    handler = type(
        "Handler",
        (BundleRequestHandler,),
        {"coop_coep": coop_coep, "quiet": quiet},
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
        # 2026-11-28, issue #7: the API is the edge handler (web/src/handler.js) run by Node.
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
