"""Extraction: one HTML, Markdown or text file → a :class:`Document`.

`websem build` (CPython) and the in-page index (inpage.py, in Pyodide) run this one copy. Two
pure-Python packages besides the stdlib, both imported lazily inside the functions that need them:
``bs4`` (BeautifulSoup with the stdlib ``html.parser``) for HTML, and ``markdown_it``
(markdown-it-py) for Markdown; bundles ship both trimmed under ``py/`` (pyfiles.py).

What is content (docs/sites.md has the user-facing contract):

1. The root. Every ``[data-websem-body]`` region when the page marks one (outermost ones, in page
   order); else the first ``<main>``, else ``[role=main]``, else the page's only ``<article>``;
   else ``<body>``, narrowed to the wrapper that holds the page's content (see :func:`_narrow`).
2. Never content, anywhere: ``script``, ``style``, ``template``, ``noscript``, forms and their
   controls, embedded objects, ``[hidden]``, ``[aria-hidden=true]`` and anything under
   ``[data-websem-ignore]``.
3. Page furniture inside the root: ``nav``, ``aside``, the ARIA landmarks that are not content
   (``role`` navigation, banner, contentinfo, complementary, search, menu, menubar, toolbar),
   page-level headers and footers (see :func:`_is_banner`), and elements whose ``class`` names
   them as furniture (the small generic list :data:`FURNITURE_WORDS`; ids are not used,
   generators derive them from heading text).
   Permalink anchors (``a.headerlink`` and in-page links whose text is only a symbol such as
   ``¶ # § 🔗``) are dropped so the symbol never reaches a heading, a title or a chunk.

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


_WS = re.compile(r"\s+")

# Never page text, wherever they are.
_DROP = {
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "embed",
    "canvas", "button", "select", "form", "input", "textarea", "math", "dialog",
}
_BLOCK = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "figure",
    "figcaption", "details", "summary", "hr", "address", "body", "html", "caption", "center",
}
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_CELL = {"td", "th"}
# Landmark roles that are page furniture, not content (WAI-ARIA).
_FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu",
                    "menubar", "toolbar"}
# HTML elements after which a <header>/<footer> belongs to that content, not to the page (ARIA).
_SECTIONING = {"article", "aside", "main", "nav", "section"}
FURNITURE_WORDS = frozenset({
    # A class token, or one of its "-"/"_"-separated parts, equal to one of these marks page
    # furniture: "sidebar", "md-sidebar", "global-nav", "navbar-top", "breadcrumbs", "pagination",
    # "toc" (an in-page table of contents repeats the headings): generic names most themes use;
    # plus DocBook XSL's "navheader"/"navfooter" and Sphinx's "sphinxsidebar" (two generators
    # whose navigation predates ARIA roles).
    "nav", "navbar", "navigation", "sidebar", "sidenav", "breadcrumb", "breadcrumbs", "navheader",
    "navfooter", "sphinxsidebar", "skiplink", "pagination", "toc",
})
# Whole class tokens that mark a page-level header or footer (dropped like <header>/<footer>).
_HEADER_TOKENS = frozenset({"header", "site-header", "masthead"})
_FOOTER_TOKENS = frozenset({"footer", "site-footer"})
# Permalink anchors: an in-page link whose only text is one of these (or nothing: an icon).
_PERMALINK_TEXT = {"", "¶", "#", "§", "🔗", "⚓", "link", "permalink", "¶#"}
_SPLIT_TOKEN = re.compile(r"[-_]")
# Whitespace and the zero-width characters some themes put in an icon-only permalink (VitePress,
# Docusaurus: "&#8203;").
_INVISIBLE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")


def _tags(node, names=None) -> list:
    """The element descendants of ``node`` in document order (optionally only ``names``).

    One plain pass over ``.descendants``: bs4's ``find_all`` filter machinery was ~5x slower than
    parsing itself on a Sphinx site."""
    from bs4 import Tag

    if names is None:
        return [d for d in node.descendants if isinstance(d, Tag)]
    return [d for d in node.descendants if isinstance(d, Tag) and d.name in names]


def _tokens(tag) -> list[str]:
    """The element's class tokens, lowercased. Ids are not used: generators derive them from
    heading text, so a section titled "Navigation" or "Pagination" would look like furniture."""
    cls = tag.get("class") or []
    if isinstance(cls, str):
        cls = cls.split()
    return [c.lower() for c in cls]


def _is_furniture_name(tag) -> bool:
    for tok in _tokens(tag):
        if tok in FURNITURE_WORDS or any(p in FURNITURE_WORDS for p in _SPLIT_TOKEN.split(tok)):
            return True
    return False


def _is_banner(tag, kind: str) -> bool:
    """A page-level header or footer, dropped with a ``body`` or ``main`` content root.

    A header (``<header>``, class ``header``) is the page's banner when it is not inside
    sectioning content (ARIA's rule); inside ``<main>`` it holds the page's title and stays. A
    footer is the page's when it is not inside an article/section/aside/nav: directly in ``<main>``
    it is "Edit this page" / "Last updated" furniture, in an ``<article>`` it belongs to the post."""
    toks = _tokens(tag)
    if tag.name == "header" or any(t in _HEADER_TOKENS for t in toks):
        return kind == "body" and not any(p.name in _SECTIONING for p in tag.parents)
    if tag.name == "footer" or any(t in _FOOTER_TOKENS for t in toks):
        return kind in ("body", "main") and not any(
            p.name in _SECTIONING and p.name != "main" for p in tag.parents)
    return False


def _is_permalink(a) -> bool:
    href = a.get("href")
    if not isinstance(href, str):
        return False
    cls = a.get("class") or []
    if "headerlink" in cls:  # Sphinx, MkDocs (Python-Markdown's toc extension)
        return True
    return href.startswith("#") and _INVISIBLE.sub("", a.get_text()).lower() in _PERMALINK_TEXT


def _is_whole_link_heading(h) -> bool:
    """A heading that is nothing but a link to another page: a site name or a list entry, not
    the heading of the text around it (e.g. ``<h1><a href="../index.html">Site docs</a></h1>``)."""
    links = [a for a in _tags(h, ("a",)) if a.get("href") is not None and not _is_permalink(a)]
    href = links[0]["href"] if len(links) == 1 else ""
    if len(links) != 1 or (href.startswith("#") and href != "#"):  # "#": the page's top, a site name
        return False
    return _WS.sub("", links[0].get_text()) == _WS.sub("", h.get_text())


def _text_len(tag) -> int:
    return len(_WS.sub("", tag.get_text()))


# ---------------------------------------------------------------------------------------------
# HTML


def _content_roots(soup):
    """The content root(s) and their kind: "marked" (``data-websem-body``), "main", "article" or
    "body" (page-level headers and footers are pruned for the last ones, see _is_banner)."""
    tags = _tags(soup)
    marked = [t for t in tags if t.has_attr("data-websem-body")]
    if marked:
        ids = {id(m) for m in marked}
        outer = [m for m in marked if not any(id(p) in ids for p in m.parents)]
        return outer, "marked"
    main = next((t for t in tags if t.name == "main"), None) or next(
        (t for t in tags if t.get("role") == "main"), None)
    if main is not None:
        return [main], "main"
    articles = [t for t in tags if t.name == "article"]
    if len(articles) == 1:
        return articles, "article"
    return [soup.body or soup], "body"


def _prune(root, kind: str) -> None:
    """Drop page furniture inside ``root`` (not ``root`` itself)."""
    doomed = []
    for el in _tags(root):
        name = el.name
        role = el.get("role")
        if (name in ("nav", "aside")
                or (isinstance(role, str) and role.lower() in _FURNITURE_ROLES)
                or _is_furniture_name(el)
                or _is_banner(el, kind)):
            doomed.append(el)
    _drop_outermost(doomed)


def _drop_outermost(doomed: list) -> None:
    """Remove ``doomed`` elements (document order) from the tree, skipping those inside another
    doomed one (already gone; bs4 clears a decomposed element, and asking it anything is slow)."""
    gone: set[int] = set()
    outer = []
    for el in doomed:
        if any(id(p) in gone for p in el.parents):
            continue
        gone.add(id(el))
        outer.append(el)
    for el in outer:
        el.decompose()


def _score(tag, cache: dict) -> float:
    """Text weight of a subtree: link text counts a quarter (menus and link lists are mostly
    links, prose is not)."""
    key = id(tag)
    if key in cache:
        return cache[key]
    from bs4 import NavigableString, Tag

    total = 0.0
    for child in tag.children:
        if isinstance(child, Tag):
            total += _text_len(child) / 4 if child.name == "a" else _score(child, cache)
        elif isinstance(child, NavigableString) and type(child) is NavigableString:
            total += len(_WS.sub("", str(child)))
    cache[key] = total
    return total


_CONTAINERS = {"div", "section", "article", "main", "center", "span", "table", "tbody", "tr",
               "td"}


def _narrow(body):
    """Descend from ``<body>`` into the wrapper that holds the content, for pages without
    ``<main>``/``<article>`` (Sphinx's older themes, DocBook): step into a child container while
    it holds the page's own heading (first content h1, else first heading), leaves out no heading
    of that rank or higher, and leaves out at most 10% of the body's text weight (plus ~80
    characters when that heading is kept).
    What is left out is what surrounds the content: a site banner, prev/next bars, a sidebar
    that carries no ARIA role."""
    cache: dict = {}
    total = _score(body, cache)
    if total <= 0:
        return body
    node = body
    from bs4 import Tag

    heads = [h for h in _tags(body, _HEADINGS) if _text_len(h) and not _is_whole_link_heading(h)]
    # The page's own heading (its first content h1, else its first heading) must stay inside.
    top = next((h for h in heads if h.name == "h1"), heads[0] if heads else None)
    # What may be left outside: 10% of the text, plus a line's worth when the page's heading is
    # kept (a short page's "Last update: <date>" box is more than 10% of it).
    slack = 0.1 * total + (80 if top is not None else 0)
    while True:
        best = max((c for c in node.children if isinstance(c, Tag)),
                   key=lambda c: _score(c, cache), default=None)
        if (best is None or best.name not in _CONTAINERS or total - _score(best, cache) > slack
                or not _keeps_headings(best, heads, top)):
            return node
        node = best


def _keeps_headings(node, heads: list, top) -> bool:
    """Whether ``node`` holds the page's own heading ``top`` and leaves out no heading of the same
    or a higher rank (a second article of a list page); a sidebar's lower "Last update:" may go."""
    if top is None:
        return True

    def within(h) -> bool:  # ancestry walk: a page has tens of headings but thousands of nodes
        return any(p is node for p in h.parents)

    return within(top) and all(int(h.name[1]) > int(top.name[1]) for h in heads if not within(h))


def _anchor(h, root, page_ids: set[str], slug_seen: dict | None) -> str:
    """The id a link to heading ``h`` should carry (``"#id"``), or ``""`` for the page itself."""
    hid = h.get("id")
    if isinstance(hid, str) and hid:
        return "#" + hid
    inner = next((_target(t) for t in _tags(h) if _target(t)), "")
    if inner:
        return "#" + inner
    for a in _tags(h, ("a",)):
        href = a.get("href")
        if isinstance(href, str) and _is_permalink(a) and href.startswith("#") and href[1:] in page_ids:
            return href
    # The <section> this heading opens (Sphinx, many generators put the id there).
    for p in h.parents:
        if p is root.parent:
            break
        is_section = p.name == "section" or "section" in (p.get("class") or [])
        if is_section and p.get("id"):
            first = next((t for t in p.descendants if getattr(t, "name", None) in _HEADINGS), None)
            if first is h:
                return "#" + p["id"]
            break
    if slug_seen is not None:  # Markdown: the slug its renderers give the heading
        title = _WS.sub(" ", h.get_text(" ")).strip()
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
                s = _WS.sub(" ", s)
            tb.add(s)
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in _HEADINGS and id(child) in anchors:
            title = _WS.sub(" ", child.get_text(" ")).strip()
            tb.start_section(anchors[id(child)], title, int(name[1]))
            _walk(child, tb, anchors, pre)
            tb.brk("\n\n")
            continue
        if name == "br":
            tb.brk("\n")
            continue
        if name in _BLOCK or name in _CELL or name in _HEADINGS:
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
    for m in _tags(soup, ("meta",)):
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
    tags = _tags(soup)
    html_tag = next((t for t in tags if t.name == "html"), None)
    facet_meta(meta, html_tag.get("lang") if html_tag else None)
    title_tag = next((t for t in tags if t.name == "title"), None)
    page_title = _WS.sub(" ", title_tag.get_text()).strip() if title_tag else ""
    page_ids = {str(t["id"]) for t in tags if t.get("id")}
    page_ids.update(str(t["name"]) for t in tags if t.name == "a" and t.get("name"))
    info.marked_body = any(t.has_attr("data-websem-body") for t in tags)

    _drop_outermost([el for el in tags if el.name in _DROP or el.get("hidden") is not None
                     or el.get("aria-hidden") == "true" or el.has_attr("data-websem-ignore")])
    roots, kind = _content_roots(soup)
    for i, root in enumerate(roots):
        _prune(root, kind)
        if kind == "body" and root.name == "body" and not slug_headings:
            roots[i] = _narrow(root)

    anchors: dict[int, str] = {}
    slug_seen: dict[str, int] | None = {} if slug_headings else None
    h1 = ""
    for root in roots:
        inside = _tags(root)
        for h in inside:
            if h.name in _HEADINGS and not _is_whole_link_heading(h):
                # walked as plain text when it is a whole link: not the heading of what follows
                anchors[id(h)] = _anchor(h, root, page_ids, slug_seen)
        _drop_outermost([a for a in inside if a.name == "a" and _is_permalink(a)])
    for root in roots:
        first = next((h for h in _tags(root, ("h1",)) if id(h) in anchors and _text_len(h)), None)
        if first is not None:
            h1 = _WS.sub(" ", first.get_text(" ")).strip()
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
