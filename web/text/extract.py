"""Extraction: one HTML, Markdown or text file → a :class:`Document`.

`websem build` (CPython) and the in-page index (inpage.py, in Pyodide) run this one copy. Two
pure-Python packages besides the stdlib, both imported lazily inside the functions that need them:
``bs4`` (BeautifulSoup with the stdlib ``html.parser``) for HTML, and ``markdown_it``
(markdown-it-py) for Markdown; bundles ship both trimmed under ``py/`` (pyfiles.py).

What is content (the root, what is never content, page furniture) is content.py; docs/sites.md has
the user-facing contract. Here: the text walk over the content (paragraph breaks, heading
sections), deep links and the title.

Deep links: a section's anchor is an id the page already has (an ``<a name>`` counts as one): the
heading's own ``id``, else one inside it, else the target of its permalink, else the id of the
``<section>`` it opens, else the nearest element id before it inside the content; when there is
none, ``""`` (the page URL).
Nothing is invented for HTML. Markdown files have no ids of their own: their headings get the
GitHub-style slug that Markdown renderers (GitHub, MkDocs, Hugo) give them.

Title: the first ``<h1>`` of the content, else ``<title>`` (a suffix or prefix shared by most
pages' ``<title>``, such as " — Django 3.2 documentation", is stripped site-wide by
:func:`.reader.strip_shared_title_affix`), else the first heading, else the file name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .content import (
    FURNITURE_WORDS,
    HEADINGS,
    WS,
    content_roots,
    drop_never_content,
    drop_outermost,
    elements,
    is_permalink,
    is_whole_link_heading,
    narrow,
    prune,
    text_len,
)
from .meta import FACET_FIELDS, facet_meta, front_matter

__all__ = [
    "FACET_FIELDS",
    "FURNITURE_WORDS",
    "Document",
    "PageInfo",
    "Section",
    "extract_html",
    "facet_meta",
    "html_to_document",
    "markdown_to_document",
    "slugify",
    "text_to_document",
]


@dataclass
class Section:
    """A heading-delimited span ``text[start:end]`` of a document (the heading line included)."""

    anchor: str  # "#id" or "" for the part before the first heading (and headings without an id)
    title: str
    start: int
    end: int
    level: int = 0  # 1-6 for h1-h6, 0 for the part before the first heading


@dataclass
class Document:
    """One document: ``text`` is what gets chunked; ``sections`` cover it in order."""

    id: str
    title: str
    url: str
    text: str
    sections: list[Section]
    meta: dict = field(default_factory=dict)
    # Where ``title`` came from: "h1", "title" (the HTML <title>), "front matter", "heading",
    # "text" (first line), "id"; read_source strips the site-wide <title> suffix from "title" ones.
    title_from: str = ""
    page_title: str = ""  # the raw HTML <title>, "" for other kinds


@dataclass
class PageInfo:
    """What discovery needs to know about an HTML page besides its document."""

    noindex: bool = False  # <meta name="robots" content="noindex">
    redirect: bool = False  # <meta http-equiv="refresh" content="0; url=...">: a stub, not a page
    marked_body: bool = False  # the page has a [data-websem-body] region


# ---------------------------------------------------------------------------------------------
# text helpers


def slugify(text: str, seen: dict[str, int] | None = None) -> str:
    """GitHub-style heading slug: lowercase, drop punctuation, spaces → ``-``; repeats get ``-1``…"""
    s = unicodedata.normalize("NFKC", text).strip().lower()
    s = "".join(ch for ch in s if ch.isalnum() or ch in " -_")
    s = s.replace(" ", "-")
    if seen is not None:
        n = seen.get(s, 0)
        seen[s] = n + 1
        if n:
            s = f"{s}-{n}"
    return s


class _TextBuilder:
    """Accumulates extracted text with paragraph breaks and section boundaries."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.pending_break = ""  # "", "\n" or "\n\n": emitted lazily before the next text
        self.sections: list[Section] = [Section("", "", 0, 0)]

    def brk(self, kind: str) -> None:
        if self.length and len(kind) > len(self.pending_break):
            self.pending_break = kind

    def add(self, s: str) -> None:
        if self.pending_break:
            s = s.lstrip(" ")
            if not s:
                return
            # no trailing blanks before a line break
            while self.parts and self.parts[-1].endswith(" "):
                stripped = self.parts[-1].rstrip(" ")
                self.length -= len(self.parts[-1]) - len(stripped)
                self.parts[-1] = stripped
            self.parts.append(self.pending_break)
            self.length += len(self.pending_break)
            self.pending_break = ""
        elif self.parts and self.parts[-1].endswith((" ", "\n")) and s.startswith(" "):
            s = s.lstrip(" ")
        elif not self.length:
            s = s.lstrip()
        if not s:
            return
        if self.sections[-1].start < 0:
            self.sections[-1].start = self.length
        self.parts.append(s)
        self.length += len(s)

    def start_section(self, anchor: str, title: str, level: int) -> None:
        self.brk("\n\n")
        # start is set when the heading's first text is added (after the pending break)
        self.sections.append(Section(anchor, title, -1, -1, level))

    def finish(self) -> tuple[str, list[Section]]:
        text = "".join(self.parts)
        # strip trailing whitespace only (start offsets stay valid)
        text = text.rstrip()
        secs = self.sections
        secs = [sec for sec in secs if sec.start >= 0]
        for i, sec in enumerate(secs):
            sec.start = min(sec.start, len(text))
            sec.end = secs[i + 1].start if i + 1 < len(secs) else len(text)
            sec.end = max(sec.end, sec.start)
        secs = [s for s in secs if s.end > s.start]
        return text, secs


# ---------------------------------------------------------------------------------------------
# HTML: the text walk

# Elements that break the text into paragraphs (cells and list items: into lines).
_BLOCK = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "figure",
    "figcaption", "details", "summary", "hr", "address", "body", "html", "caption", "center",
}
_CELL = {"td", "th"}


def _anchor(h, root, page_ids: set[str], slug_seen: dict | None) -> str:
    """The id a link to heading ``h`` should carry (``"#id"``), or ``""`` for the page itself."""
    hid = h.get("id")
    if isinstance(hid, str) and hid:
        return "#" + hid
    inner = next((_target(t) for t in elements(h) if _target(t)), "")
    if inner:
        return "#" + inner
    for a in elements(h, ("a",)):
        href = a.get("href")
        if isinstance(href, str) and is_permalink(a) and href.startswith("#") and href[1:] in page_ids:
            return href
    # The <section> this heading opens (Sphinx, many generators put the id there).
    for p in h.parents:
        if p is root.parent:
            break
        is_section = p.name == "section" or "section" in (p.get("class") or [])
        if is_section and p.get("id"):
            first = next((t for t in p.descendants if getattr(t, "name", None) in HEADINGS), None)
            if first is h:
                return "#" + p["id"]
            break
    if slug_seen is not None:  # Markdown: the slug its renderers give the heading
        title = WS.sub(" ", h.get_text(" ")).strip()
        return "#" + slugify(title, slug_seen)
    # The nearest element id before it inside the content (an <a id> / <span id> target, or the
    # wrapper the heading sits in: DocBook's <div class="sect1" id="...">).
    for el in h.previous_elements:
        target = _target(el) if getattr(el, "name", None) else ""
        if target:
            return "#" + target
        if el is root:
            break
    return ""


def _target(el) -> str:
    """The fragment that lands on ``el``: its ``id``, or the ``name`` of an ``<a name>`` (HTML 4
    targets, still written by DocBook XSL)."""
    tid = el.get("id")
    if isinstance(tid, str) and tid:
        return tid
    if el.name == "a":
        name = el.get("name")
        if isinstance(name, str) and name:
            return name
    return ""


def _walk(node, tb: _TextBuilder, anchors: dict, pre: bool = False) -> None:
    _walk_nodes(node.children, tb, anchors, pre)


def _walk_nodes(nodes, tb: _TextBuilder, anchors: dict, pre: bool = False) -> None:
    from bs4 import Comment, NavigableString, Tag
    from bs4.element import CData, Declaration, Doctype, ProcessingInstruction

    for child in nodes:
        if isinstance(child, Comment | Doctype | Declaration | ProcessingInstruction | CData):
            continue
        if isinstance(child, NavigableString):
            s = str(child)
            if not pre:
                s = WS.sub(" ", s)
            tb.add(s)
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in HEADINGS and id(child) in anchors:
            title = WS.sub(" ", child.get_text(" ")).strip()
            tb.start_section(anchors[id(child)], title, int(name[1]))
            _walk(child, tb, anchors, pre)
            tb.brk("\n\n")
            continue
        if name == "br":
            tb.brk("\n")
            continue
        if name in _BLOCK or name in _CELL or name in HEADINGS:
            tb.brk("\n" if name in {"li", "tr", "dt", "dd"} or name in _CELL else "\n\n")
            _walk(child, tb, anchors, pre or name == "pre")
            tb.brk("\n" if name in _CELL else "\n\n")
            continue
        if name == "img" and child.get("alt"):
            tb.add(" " + child["alt"] + " ")
            continue
        _walk(child, tb, anchors, pre)


def _meta_info(soup, meta: dict) -> PageInfo:
    info = PageInfo()
    for m in elements(soup, ("meta",)):
        key = m.get("name") or m.get("property")
        content = m.get("content")
        if key and content is not None:
            meta[str(key)] = str(content)
        if content is None:
            continue
        robots = set(re.split(r"[\s,]+", str(content).lower()))
        if str(key or "").lower() == "robots" and robots & {"noindex", "none"}:  # none = noindex, nofollow
            info.noindex = True
        if str(m.get("http-equiv") or "").lower() == "refresh" and "url=" in str(content).lower():
            info.redirect = True
    return info


def extract_html(html: str, doc_id: str, url: str, meta: dict | None = None, *,
                 slug_headings: bool = False) -> tuple[Document, PageInfo]:
    """Extract title, meta, text and heading sections from an HTML page (module docstring).

    ``slug_headings``: headings without any id get a GitHub-style slug (Markdown sources)
    instead of the nearest preceding id."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    meta = dict(meta or {})
    info = _meta_info(soup, meta)
    tags = elements(soup)
    html_tag = next((t for t in tags if t.name == "html"), None)
    facet_meta(meta, html_tag.get("lang") if html_tag else None)
    title_tag = next((t for t in tags if t.name == "title"), None)
    page_title = WS.sub(" ", title_tag.get_text()).strip() if title_tag else ""
    page_ids = {str(t["id"]) for t in tags if t.get("id")}
    page_ids.update(str(t["name"]) for t in tags if t.name == "a" and t.get("name"))
    info.marked_body = any(t.has_attr("data-websem-body") for t in tags)

    drop_never_content(tags)
    roots, kind = content_roots(soup)
    for i, root in enumerate(roots):
        prune(root, kind)
        if kind == "body" and root.name == "body" and not slug_headings:
            roots[i] = narrow(root)

    anchors: dict[int, str] = {}
    slug_seen: dict[str, int] | None = {} if slug_headings else None
    h1 = ""
    for root in roots:
        inside = elements(root)
        for h in inside:
            if h.name in HEADINGS and not is_whole_link_heading(h):
                # walked as plain text when it is a whole link: not the heading of what follows
                anchors[id(h)] = _anchor(h, root, page_ids, slug_seen)
        drop_outermost([a for a in inside if a.name == "a" and is_permalink(a)])
    for root in roots:
        first = next((h for h in elements(root, ("h1",)) if id(h) in anchors and text_len(h)), None)
        if first is not None:
            h1 = WS.sub(" ", first.get_text(" ")).strip()
            break

    tb = _TextBuilder()
    for root in roots:
        tb.brk("\n\n")
        _walk_nodes([root], tb, anchors)
    text, sections = tb.finish()
    if h1:
        title, title_from = h1, "h1"
    elif page_title:
        title, title_from = page_title, "title"
    else:
        first_h = next((s.title for s in sections if s.level and s.title), "")
        title, title_from = (first_h, "heading") if first_h else (doc_id, "id")
    return Document(doc_id, title, url, text, sections, meta, title_from, page_title), info


def html_to_document(html: str, doc_id: str, url: str, meta: dict | None = None) -> Document:
    """Extract title, meta, text and heading sections from an HTML page."""
    return extract_html(html, doc_id, url, meta)[0]


# ---------------------------------------------------------------------------------------------
# Markdown and text

def markdown_to_document(md: str, doc_id: str, url: str) -> Document:
    """Markdown → HTML (markdown-it-py, CommonMark + tables) → the HTML extraction.

    The title is the front-matter ``title``, else the first heading."""
    from markdown_it import MarkdownIt

    meta, body = front_matter(md)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(body)
    doc, _ = extract_html(f"<html><body>{html}</body></html>", doc_id, url, meta,
                          slug_headings=True)
    first = next((s.title for s in doc.sections if s.level and s.title), "")
    if meta.get("title"):
        doc.title, doc.title_from = str(meta["title"]), "front matter"
    elif first:
        doc.title, doc.title_from = first, "heading"
    else:
        doc.title, doc.title_from = doc_id, "id"
    return doc


def text_to_document(text: str, doc_id: str, url: str) -> Document:
    """Plain text: paragraphs as they are; the title is the first non-empty line."""
    text = text.replace("\r\n", "\n").rstrip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return Document(doc_id, first[:200] or doc_id, url, text, [Section("", "", 0, len(text))],
                    title_from="text" if first else "id")
