"""The real sites and their judged questions (bench/realsite/<site>/, BEIR layout) for
bench/bench_realsite.py: loading them, mapping hit URLs to pages, the metrics (nDCG@10, MRR@10,
success@1/@10) and the audit of hits (non-page hits, anchors missing from their page)."""

from __future__ import annotations

import html.parser
import json
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from common import BENCH

REALSITE = BENCH / "realsite"
PAGES = REALSITE / "pages"  # the harness pages served at /_realsite/
K = 10


@dataclass(frozen=True)
class Site:
    name: str
    package: str  # the Debian package that installs it
    root: Path
    generator: str
    builtin: str | None  # "sphinx" when the site ships its own client-side search


SITES: dict[str, Site] = {
    "django": Site("django", "python-django-doc", Path("/usr/share/doc/python-django-doc/html"),
                   "Sphinx (Django 3.2 docs)", "sphinx"),
    "postgres": Site("postgres", "postgresql-doc-15", Path("/usr/share/doc/postgresql-doc-15/html"),
                     "DocBook XSL (PostgreSQL 15 docs)", None),
}


def load_questions(site: str) -> tuple[dict[str, str], dict[str, dict[str, dict[str, int]]]]:
    """(query id -> text, split -> query id -> page -> grade) of a site's judged questions."""
    folder = REALSITE / site
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for split in ("dev", "test"):
        judged: dict[str, dict[str, int]] = {}
        lines = (folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        for line in lines[1:]:  # header: query-id corpus-id score
            if line.strip():
                qid, page, grade = line.split("\t")
                judged.setdefault(qid, {})[page] = int(grade)
        qrels[split] = judged
    return queries, qrels


def page_of(url: str) -> tuple[str, str]:
    """(page path relative to the site root, anchor without '#') of a hit URL, whatever its form:
    websem's relative `ref/x.html#a`, Pagefind's `/ref/x.html`, an absolute `http://host/dir/`."""
    parts = urlsplit(url)
    path = unquote(parts.path).lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path, unquote(parts.fragment)


def dedupe_pages(urls: list[str]) -> list[str]:
    """The pages of hit URLs, each once, in first-hit order."""
    out: list[str] = []
    for u in urls:
        p = page_of(u)[0]
        if p not in out:
            out.append(p)
    return out


def score_run(pages: list[str], judged: dict[str, int], k: int = K) -> dict[str, float]:
    """nDCG@k (linear gains, as trec_eval), MRR@k, success@1, success@k of one ranked page list."""
    ranked = pages[:k]
    dcg = sum(judged.get(p, 0) / math.log2(i + 2) for i, p in enumerate(ranked))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    first = next((i for i, p in enumerate(ranked) if judged.get(p, 0) > 0), None)
    return {
        "ndcg@10": dcg / idcg if idcg else 0.0,
        "mrr@10": 0.0 if first is None else 1.0 / (first + 1),
        "success@1": 1.0 if first == 0 else 0.0,
        "success@10": 0.0 if first is None else 1.0,
    }


def mean_scores(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean of each ``score_run`` metric over the queries, rounded to 4 places."""
    keys = ("ndcg@10", "mrr@10", "success@1", "success@10")
    n = len(per_query)
    return {k: round(sum(s[k] for s in per_query.values()) / n, 4) if n else 0.0 for k in keys}


class _Ids(html.parser.HTMLParser):
    """Every fragment target of a page: element ids and <a name> (both are what a browser scrolls to)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if v and (k == "id" or (k == "name" and tag == "a")):
                self.ids.add(v)


_IDS_CACHE: dict[Path, set[str]] = {}


def page_ids(path: Path) -> set[str]:
    """The fragment targets of the page at ``path`` (cached per path)."""
    if path not in _IDS_CACHE:
        p = _Ids()
        p.feed(path.read_text(encoding="utf-8", errors="replace"))
        _IDS_CACHE[path] = p.ids
    return _IDS_CACHE[path]


def hit_audit(site: Site, urls: list[str]) -> dict:
    """Non-page hits (not an existing .html/.htm file of the site) and anchors missing from their page."""
    not_page: list[str] = []
    anchored = 0
    missing: list[str] = []
    for u in urls:
        page, anchor = page_of(u)
        f = site.root / page
        if not (f.suffix.lower() in (".html", ".htm") and f.is_file()):
            not_page.append(u)
            continue
        if anchor:
            anchored += 1
            if anchor not in page_ids(f):
                missing.append(u)
    return {"hits": len(urls), "not_page": len(not_page), "not_page_examples": not_page[:5],
            "anchored": anchored, "anchor_missing": len(missing), "anchor_missing_examples": missing[:5]}
