"""The `websem query` command line: BUNDLE and QUERY or ``--queries`` (BEIR JSON Lines), printed
as a table or ``--json`` lines. The search itself is web/query.py ``Searcher``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from websem.text.errors import WebsemError
from websem.text.rules import MODES
from websem.web.query import load_bundle, parse_filters

__all__ = ["query_cmd"]


def _read_queries(path: Path) -> list[tuple[str, str]]:
    """``(query_id, text)`` of each line of a BEIR ``queries.jsonl``."""
    out = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise WebsemError(f"websem: {path} is not valid UTF-8 (offset {e.start}); queries.jsonl "
                          "must be UTF-8 JSON Lines") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append((str(obj["_id"]), str(obj["text"])))
        except (ValueError, KeyError, TypeError):
            raise WebsemError(f"websem: {path} line {n} is not a BEIR query "
                              '({"_id": ..., "text": ...})') from None
    if not out:
        raise WebsemError(f"websem: {path} holds no queries; expected BEIR JSON Lines "
                          '({"_id": ..., "text": ...})')
    return out


@click.command("query")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@click.option("--queries", "queries_file", type=click.Path(path_type=Path), default=None,
              help='BEIR queries.jsonl ({"_id", "text"} per line).')
@click.option("-k", "k", type=click.IntRange(min=1), default=None,
              help="Hits per query. [default: the bundle's manifest.search.k, 10]")
@click.option("--mode", type=click.Choice(MODES), default=None,
              help="hybrid = rank fusion of BM25 and embeddings; semantic; lexical (BM25 only). "
                   "[default: the bundle's first manifest.search.modes, hybrid]")
@click.option("--filter", "filter_items", multiple=True, metavar="FIELD=VALUE",
              help="Only documents whose FIELD (tags, section, language: see the bundle's "
                   "manifest.search.facets) has VALUE. Repeatable: values of one field are "
                   "OR-ed, fields AND-ed.")
@click.option("--index", "index_file", type=click.Path(path_type=Path), default=None,
              help="Search an index exported by a page (createIndex().export()) instead of BUNDLE's own; "
                   "BUNDLE supplies the model (the one the page indexed with) and the text package.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON line per query: {"query_id", "mode", "hits": [{"id", "score", '
                   '"url", "snippet", "highlights"}], "facets"}.')
def query_cmd(bundle: Path, query: str | None, queries_file: Path | None, k: int | None, mode: str | None,
              filter_items: tuple[str, ...], index_file: Path | None, as_json: bool) -> None:
    """Search BUNDLE on the CPU for QUERY, or for every query of --queries."""
    try:
        if (query is None) == (queries_file is None):
            raise WebsemError("websem: pass either a QUERY argument or --queries FILE "
                              "(exactly one of them)")
        filters = parse_filters(filter_items) or None
        qs = _read_queries(queries_file) if queries_file else [("0", query)]
        searcher = load_bundle(bundle, index=index_file)
        mode = mode or searcher.modes[0]
        for qid, text in qs:
            res = searcher.query(text, k, mode=mode, filters=filters)
            if as_json:
                click.echo(json.dumps({"query_id": qid, "mode": mode, "hits": [
                    {"id": h["id"], "score": h["score"], "url": h["url"],
                     "snippet": h["snippet"], "highlights": h["highlights"]}
                    for h in res["hits"]], "facets": res["facets"]}, ensure_ascii=False))
            else:
                _print_table(qid, text, res["hits"], res["facets"])
    except WebsemError as e:
        click.echo(str(e), err=True)
        sys.exit(2)


def _print_table(qid: str, text: str, hits: list[dict], facets: dict | None = None) -> None:
    """One query's hits as a rich table (highlights in bold), then its facet counts."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{qid}: {text}"), show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id")
    table.add_column("title / snippet", overflow="fold")
    for i, h in enumerate(hits, 1):
        body = Text(h["title"], style="bold")
        body.append("\n")
        sn = Text(h["snippet"], style="dim")
        for start, end in h.get("highlights", ()):
            sn.stylize("bold yellow", start, end)
        body.append_text(sn)
        table.add_row(str(i), f"{h['score']:.4f}", Text(h["id"]), body)
    console = Console()
    console.print(table)
    for field, counts in (facets or {}).items():
        if counts:
            console.print(Text(f"{field}: " + ", ".join(f"{v} ({c})" for v, c in counts),
                               style="dim"))

