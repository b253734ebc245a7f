"""Where an HTML page's content is: the content-finding heuristics of extraction (extract.py).

docs/sites.md has the user-facing contract:

1. The root (:func:`content_roots`). Every ``[data-websem-body]`` region when the page marks one
   (outermost ones, in page order); else the first ``<main>``, else ``[role=main]``, else the
   page's only ``<article>``; else ``<body>``, narrowed to the wrapper that holds the page's
   content (see :func:`narrow`).
2. Never content, anywhere (:func:`drop_never_content`): ``script``, ``style``, ``template``,
   ``noscript``, forms and their controls, embedded objects, ``[hidden]``, ``[aria-hidden=true]``
   and anything under ``[data-websem-ignore]``.
3. Page furniture inside the root (:func:`prune`): ``nav``, ``aside``, the ARIA landmarks that
   are not content (``role`` navigation, banner, contentinfo, complementary, search, menu,
   menubar, toolbar), page-level headers and footers (see :func:`_is_banner`), and elements whose
   ``class`` names them as furniture (the small generic list :data:`FURNITURE_WORDS`; ids are
   not used, generators derive them from heading text).
   Permalink anchors (``a.headerlink`` and in-page links whose text is only a symbol such as
   ``¶ # § 🔗``: :func:`is_permalink`) are dropped by extract.py so the symbol never reaches a
   heading, a title or a chunk.

Runs in CPython (`websem build`) and in Pyodide (the in-page index): stdlib only, plus ``bs4``
imported lazily inside the functions that need it.
"""

from __future__ import annotations

import re

__all__ = [
    "FURNITURE_WORDS",
    "HEADINGS",
    "WS",
    "content_roots",
    "drop_never_content",
    "drop_outermost",
    "elements",
    "is_permalink",
    "is_whole_link_heading",
    "narrow",
    "prune",
    "text_len",
]

WS = re.compile(r"\s+")

# Never page text, wherever they are.
_NEVER_CONTENT = {
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "embed",
    "canvas", "button", "select", "form", "input", "textarea", "math", "dialog",
}
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
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


def elements(node, names=None) -> list:
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
    """Whether a class token of ``tag``, or a "-"/"_"-separated part of one, is a furniture word."""
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


def is_permalink(a) -> bool:
    """Whether the ``<a>`` is a heading's permalink (``a.headerlink``, or an in-page link whose
    text is only a symbol or nothing)."""
    href = a.get("href")
    if not isinstance(href, str):
        return False
    cls = a.get("class") or []
    if "headerlink" in cls:  # Sphinx, MkDocs (Python-Markdown's toc extension)
        return True
    return href.startswith("#") and _INVISIBLE.sub("", a.get_text()).lower() in _PERMALINK_TEXT


def is_whole_link_heading(h) -> bool:
    """A heading that is nothing but a link to another page: a site name or a list entry, not
    the heading of the text around it (e.g. ``<h1><a href="../index.html">Site docs</a></h1>``)."""
    links = [a for a in elements(h, ("a",)) if a.get("href") is not None and not is_permalink(a)]
    href = links[0]["href"] if len(links) == 1 else ""
    if len(links) != 1 or (href.startswith("#") and href != "#"):  # "#": the page's top, a site name
        return False
    return WS.sub("", links[0].get_text()) == WS.sub("", h.get_text())


def text_len(tag) -> int:
    """The number of non-whitespace characters of ``tag``'s text."""
    return len(WS.sub("", tag.get_text()))


def content_roots(soup):
    """The content root(s) and their kind: "marked" (``data-websem-body``), "main", "article" or
    "body" (page-level headers and footers are pruned for the last ones, see :func:`_is_banner`)."""
    tags = elements(soup)
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


def prune(root, kind: str) -> None:
    """Drop page furniture inside ``root`` (not ``root`` itself)."""
    doomed = []
    for el in elements(root):
        name = el.name
        role = el.get("role")
        if (name in ("nav", "aside")
                or (isinstance(role, str) and role.lower() in _FURNITURE_ROLES)
                or _is_furniture_name(el)
                or _is_banner(el, kind)):
            doomed.append(el)
    drop_outermost(doomed)


def drop_outermost(doomed: list) -> None:
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
            total += text_len(child) / 4 if child.name == "a" else _score(child, cache)
        elif isinstance(child, NavigableString) and type(child) is NavigableString:
            total += len(WS.sub("", str(child)))
    cache[key] = total
    return total


_CONTAINERS = {"div", "section", "article", "main", "center", "span", "table", "tbody", "tr",
               "td"}


def narrow(body):
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

    heads = [h for h in elements(body, HEADINGS) if text_len(h) and not is_whole_link_heading(h)]
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


def drop_never_content(tags: list) -> None:
    """Remove what is never page text from the tree (``tags``: all its elements, document order)."""
    drop_outermost([el for el in tags if el.name in _NEVER_CONTENT or el.get("hidden") is not None
                    or el.get("aria-hidden") == "true" or el.has_attr("data-websem-ignore")])
