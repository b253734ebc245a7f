"""Real sites (docs/sites.md): what a document is, what is content, deep links that land, clean
titles, no self-indexing, readable output.

Fixtures: hand-written pages shaped like Sphinx, MkDocs (Material) and Hugo (PaperMod) output in
tests/fixtures/sites/, a generated Sphinx-like site, and the real Django (Sphinx) and PostgreSQL
(DocBook) HTML documentation installed from Debian (python-django-doc, postgresql-doc-15)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
from bs4 import BeautifulSoup
from websem.build.bundle import build_bundle
from websem.build.extract import Document, extract_html
from websem.build.sources import (
    R_BUNDLE,
    R_ERROR_PAGE,
    R_GLOB,
    R_NO_BODY,
    R_NOINDEX,
    R_NOT_PAGE,
    R_REDIRECT,
    read_source,
    strip_shared_title_affix,
)
from websem.text.errors import WebsemError

SITES = Path(__file__).resolve().parent / "fixtures" / "sites"
DJANGO = Path("/usr/share/doc/python-django-doc/html")
POSTGRES = Path("/usr/share/doc/postgresql-doc-15/html")


def page_ids(path: Path) -> set[str]:
    """Every fragment a link into this page can name: element ids and ``<a name>``."""
    soup = BeautifulSoup(path.read_text("utf-8", errors="replace"), "html.parser")
    ids = {str(t["id"]) for t in soup.find_all(id=True)}
    return ids | {str(t["name"]) for t in soup.find_all("a", attrs={"name": True})}


def assert_anchors_land(site: Path, docs: list[Document]) -> int:
    """Every section anchor of every document is an id of its page; returns how many."""
    n = 0
    cache: dict[str, set[str]] = {}
    for d in docs:
        ids = cache.setdefault(d.url, page_ids(site / unquote(d.url)))
        for s in d.sections:
            if s.anchor:
                assert s.anchor.startswith("#") and unquote(s.anchor[1:]) in ids, (d.id, s.anchor)
                n += 1
    return n


# ---------------------------------------------------------------------------------------------
# the hand-written fixtures: Sphinx, MkDocs, Hugo

EXPECTED = {
    "sphinx": {
        "docs": {"api.html": "API reference", "brewing.html": "Brewing tea",
                 "changelog.html": "Changelog", "genindex.html": "Index",
                 "index.html": "Welcome to Kettle",
                 "notitle.html": "Troubleshooting"},  # no <h1>: <title> without " — Kettle 2.1 documentation"
        "skipped": {R_NOT_PAGE: 10, R_NOINDEX: 1},
        "absent": ["Quick search", "Related Topics", "Navigation", "Powered by", "Page source",
                   "Last update", "Table of Contents", "Previous topic", "previous",
                   "Kettle 2.1 documentation", "Home", "¶"],
        "landed": 16,
        "anchors": {"brewing.html": ["#brewing-tea", "#water-temperature", "#altitude",
                                     "#steeping-time"],
                    "api.html": ["#module-kettle", "#exceptions"],
                    "changelog.html": ["#changelog", "#version-2-1", "#version-2-0"]},
    },
    "mkdocs": {
        "docs": {"index.html": "Tidewater", "install/index.html": "Installation"},
        "skipped": {R_NOT_PAGE: 3, R_ERROR_PAGE: 1},
        "absent": ["Skip to content", "Table of contents", "Made with", "Back to top", "Next",
                   "Previous", "Home", "¶", "Search"],
        "landed": 6,
        "anchors": {"install/index.html": ["#installation", "#with-pip", "#harmonic-constants",
                                           "#offline-use"]},
    },
    "hugo": {
        "docs": {"posts/getting-started/index.html": "Getting started with sourdough",
                 "posts/index.html": "Posts", "posts/storing-bread/index.html": "Storing bread",
                 "tags/sourdough/index.html": "Sourdough"},
        "skipped": {R_NOT_PAGE: 2},
        "absent": ["Crumb Notes", "Powered by", "Table of Contents", "Prev", "Next »", "Home",
                   "Go to Top", "Tags"],
        "landed": 5,
        # the <h1> has no id and nothing before it inside the article has one: the page URL
        "anchors": {"posts/getting-started/index.html": ["", "#feeding-the-starter",
                                                         "#the-first-loaf", "#baking"]},
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_sites_pages_content_anchors_titles(name: str) -> None:
    site, want = SITES / name, EXPECTED[name]
    docs, report = read_source(site)
    assert {d.id: d.title for d in docs} == want["docs"]
    assert report.counts() == want["skipped"]
    for d in docs:
        for word in want["absent"]:
            assert word not in d.text, (d.id, word)
    for doc_id, anchors in want["anchors"].items():
        assert [s.anchor for s in next(d for d in docs if d.id == doc_id).sections] == anchors
    assert assert_anchors_land(site, docs) == want["landed"]


def _sphinx_page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" />
<title>{title} &#8212; Teapot 1.0 documentation</title>
<link rel="stylesheet" href="{up}_static/basic.css" /><script src="{up}_static/doctools.js"></script>
</head><body>
<div class="related" role="navigation" aria-label="related navigation"><h3>Navigation</h3>
<ul><li class="right"><a href="{up}genindex.html" title="General Index">index</a></li>
<li class="nav-item nav-item-0"><a href="{up}index.html">Teapot 1.0 documentation</a> &#187;</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
{body}
</div></div></div>
<div class="sphinxsidebar" role="navigation" aria-label="main navigation"><div class="sphinxsidebarwrapper">
<h3><a href="{up}index.html">Table of Contents</a></h3><p>sidebarword</p>
<search id="searchbox" role="search"><h3 id="searchlabel">Quick search</h3>
<form class="search" action="{up}search.html" method="get"><input type="text" name="q" /></form></search>
</div></div><div class="clearer"></div></div>
<div class="footer" role="contentinfo">&#169; Copyright 2024, footerword. Created using Sphinx 7.2.6.</div>
</body></html>
"""


def make_sphinx_site(root: Path, n: int = 24) -> dict[str, str]:
    """A Sphinx-like build (pages, ``_sources/``, ``_static/``, navigation, a genindex, a
    noindex search page, a noindex draft, a redirect stub); returns {page: title} of the pages
    a visitor lands on."""
    pages: dict[str, str] = {}

    def write(rel: str, text: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")

    for i in range(n):
        folder = ("guide", "ref", "howto")[i % 3]
        rel, title = f"{folder}/topic{i}.html", f"Topic {i}: brewing method {i * 7}"
        body = (f'<section id="topic-{i}"><h1>{title}<a class="headerlink" href="#topic-{i}" '
                f'title="Link to this heading">¶</a></h1><p>Method {i * 7} steeps the leaves '
                f"for {i} minutes at {60 + i} degrees.</p>"
                f'<section id="details-{i}"><h2>Details of {i}<a class="headerlink" '
                f'href="#details-{i}">¶</a></h2><p>Stir {i} times, then strain.</p></section>'
                "</section>")
        write(rel, _sphinx_page(title, body, 1))
        write(f"_sources/{folder}/topic{i}.rst.txt", f"{title}\n{'=' * len(title)}\n\nMethod {i * 7}.\n")
        pages[rel] = title
    write("index.html", _sphinx_page("Teapot", '<section id="teapot"><h1>Teapot<a class="headerlink" '
                                     'href="#teapot">¶</a></h1><p>Teapot brews tea.</p></section>', 0))
    write("_sources/index.rst.txt", "Teapot\n======\n\nTeapot brews tea.\n")
    pages["index.html"] = "Teapot"
    write("genindex.html", _sphinx_page("Index", '<h1 id="index">Index</h1><ul><li>'
                                        '<a href="ref/topic1.html">Topic 1</a></li></ul>', 0))
    pages["genindex.html"] = "Index"
    search = _sphinx_page("Search", '<h1 id="search-documentation">Search</h1><p>Please activate '
                         "JavaScript to enable the search functionality.</p>", 0)
    write("search.html", search.replace("<head>", '<head><meta name="robots" content="noindex" />'))
    write("guide/draft.html", _sphinx_page("Draft", "<h1>Draft</h1><p>Not ready.</p>", 1).replace(
        "<head>", '<head><meta name="robots" content="noindex, nofollow" />'))
    write("guide/private.html", _sphinx_page("Private", "<h1>Private</h1><p>Hidden.</p>", 1).replace(
        "<head>", '<head><meta name="ROBOTS" content="NONE" />'))
    write("old-name.html", '<!DOCTYPE html><html><head><meta http-equiv="refresh" '
                           'content="0; url=guide/topic0.html" /></head><body></body></html>')
    for rel in ("_static/basic.css", "_static/doctools.js", "_static/language_data.js",
                "_static/pygments.css", "_static/file.png", "searchindex.js", "objects.inv"):
        write(rel, "/* static */\n")
    write(".buildinfo", "# Sphinx build info version 1\n")
    return pages


def test_generated_sphinx_site_indexes_its_pages_only(tmp_path: Path) -> None:
    """Issue #15: indexed documents = the site's pages (no _sources copies, no _static files,
    no noindex page, no redirect stub), navigation absent, titles from <h1>, anchors land."""
    site = tmp_path / "teapot"
    pages = make_sphinx_site(site)
    docs, report = read_source(site)
    assert {d.id: d.title for d in docs} == pages
    assert report.counts() == {R_NOT_PAGE: 25 + 7, R_NOINDEX: 3, R_REDIRECT: 1}
    for d in docs:
        for word in ("sidebarword", "footerword", "Quick search", "Navigation", "Teapot 1.0",
                     "Table of Contents", "¶", "index\n"):
            assert word not in d.text, (d.id, word)
    assert assert_anchors_land(site, docs) == 2 * 24 + 2
    topic = next(d for d in docs if d.id == "ref/topic4.html")
    assert [(s.anchor, s.title) for s in topic.sections] == [
        ("#topic-4", "Topic 4: brewing method 28"), ("#details-4", "Details of 4")]


# ---------------------------------------------------------------------------------------------
# what is content, anchors, titles: the rules one by one


def _doc(html: str) -> Document:
    return extract_html(html, "p.html", "p.html")[0]


def test_content_root_markers_and_furniture() -> None:
    page = """<html><head><title>T | Site</title></head><body>
    <header><a href="/">Site</a> banner-text</header><nav>nav-text</nav>
    <main><h1 id="a">Alpha</h1><p>alpha text</p><aside>aside-text</aside>
      <div class="md-sidebar">sidebar-text</div><div data-websem-ignore>ignored-text</div>
      <template><p>template-text</p></template><p hidden>hidden-text</p></main>
    <footer>footer-text</footer></body></html>"""
    d = _doc(page)
    assert d.text == "Alpha\n\nalpha text" and d.title == "Alpha" and d.title_from == "h1"
    # an explicit region wins over <main>; several regions are taken in page order
    marked = page.replace("<p>alpha text</p>", '<p data-websem-body>alpha text</p>').replace(
        "<footer>", '<footer><p data-websem-body>second region</p>')
    d, info = extract_html(marked, "p.html", "p.html")
    assert d.text == "alpha text\n\nsecond region" and info.marked_body
    assert d.title == "T | Site" and d.title_from == "title"  # no <h1> inside the regions
    # the single <article> (its own <header> holds the title and is kept)
    art = _doc('<body><header>site-banner</header><article><header><h1>Post</h1></header>'
               '<p>post text</p><footer>posted in tea</footer></article><footer>f</footer></body>')
    assert art.text == "Post\n\npost text\n\nposted in tea" and art.title == "Post"
    # several <article>s: the body, without page-level header/footer
    lst = _doc("<body><header>banner</header><article><h2>One</h2></article>"
               "<article><h2>Two</h2></article><footer>f</footer></body>")
    assert lst.text == "One\n\nTwo"


def test_main_footer_and_invisible_permalinks() -> None:
    """VitePress/Docusaurus shape: a zero-width-space permalink, and "Edit this page / Last
    updated" in a <footer> directly inside <main> (an <article>'s own footer stays)."""
    d = _doc('<body><main><header><h1 id="t">Title</h1></header><div class="vp-doc">'
             '<h2 id="x">Setup<a class="header-anchor" href="#x" aria-label="Permalink">&#8203;</a></h2>'
             "<p>Run the installer.</p><article><p>Post</p><footer>posted in tea</footer></article>"
             "</div><footer class=\"VPDocFooter\">Edit this page. Last updated: today</footer></main></body>")
    assert d.text == "Title\n\nSetup\n\nRun the installer.\n\nPost\n\nposted in tea"
    assert [s.title for s in d.sections] == ["Title", "Setup"]


def test_anchors_are_ids_the_page_has() -> None:
    d = _doc("""<body><main>
      <h1 id="own">Own id</h1><p>x</p>
      <h2><span id="inner"></span>Inner id</h2><p>x</p>
      <section id="sec"><h2>Section id<a class="headerlink" href="#sec">¶</a></h2><p>x</p>
        <h3>Second heading of the section</h3><p>x</p></section>
      <h2>Permalink<a href="#target" class="anchor">#</a></h2><p>x</p><span id="target"></span>
      <div id="wrap"><div class="titlepage"><h2 class="title">DocBook title</h2></div><p>x</p></div>
      <h2>Permalink to nowhere<a href="#missing">¶</a></h2><p>x</p>
      <h2><a name="old-style"></a>HTML 4 target</h2><p>x</p><a name="later"></a><h3>After it</h3>
    </main></body>""")
    got = [(s.anchor, s.title) for s in d.sections]
    assert got == [("#own", "Own id"), ("#inner", "Inner id"), ("#sec", "Section id"),
                   ("#sec", "Second heading of the section"),  # nearest id before it
                   ("#target", "Permalink"), ("#wrap", "DocBook title"),
                   ("#wrap", "Permalink to nowhere"), ("#old-style", "HTML 4 target"),
                   ("#later", "After it")]
    assert "¶" not in d.text and "#" not in d.text
    assert [s.anchor for s in _doc("<main><h1>No ids</h1><p>x</p><h2>At all</h2><p>y</p></main>"
                                   ).sections] == ["", ""]


def test_site_banner_heading_is_not_the_title() -> None:
    """Django's theme: <h1><a href="../index.html">Django docs</a></h1> above the content, no
    <main>; the page's own <h1> is the title and the banner, bars and sidebar are left out."""
    d = _doc("""<body><div class="document"><div id="hd"><h1><a href="../index.html">Site docs</a></h1>
      <div class="nav">&laquo; <a href="p.html">previous</a> | <a href="n.html">next</a></div></div>
      <div id="bd"><div class="yui-g"><div class="section" id="s-x"><span id="x"></span>
      <h1>Real title<a class="headerlink" href="#x">¶</a></h1><p>Some content of the page that is
      long enough to be the page.</p></div></div>
      <div id="sidebar"><h3>Last update:</h3><p>Nov 11, 2026</p></div></div></div></body>""")
    assert d.title == "Real title" and d.sections[0].anchor == "#x"
    assert d.text.startswith("Real title\n\nSome content") and "Last update" not in d.text


def test_shared_title_suffix_and_prefix_are_stripped() -> None:
    def docs(*titles: str) -> list[Document]:
        return [Document(f"{i}.html", t, "", "x", [], page_title=t, title_from="title")
                for i, t in enumerate(titles)]

    ds = docs("Install — Kettle 2.1 documentation", "API — Kettle 2.1 documentation",
              "Kettle 2.1 documentation", "FAQ — Kettle 2.1 documentation")
    assert strip_shared_title_affix(ds) == " — Kettle 2.1 documentation"
    assert [d.title for d in ds] == ["Install", "API", "Kettle 2.1 documentation", "FAQ"]
    ds = docs("Blog | Post one", "Blog | Post two", "Blog | About - me")
    strip_shared_title_affix(ds)
    assert [d.title for d in ds] == ["Post one", "Post two", "About - me"]
    ds = docs("A - B", "C - D", "E | F")  # nothing shared by most pages
    assert strip_shared_title_affix(ds) == "" and ds[0].title == "A - B"
    h1 = docs("Intro | Site", "Usage | Site")
    h1[0].title, h1[0].title_from = "Introduction", "h1"
    strip_shared_title_affix(h1)
    assert [d.title for d in h1] == ["Introduction", "Usage"]


def test_data_websem_body_on_some_pages_skips_the_others(tmp_path: Path) -> None:
    site = tmp_path / "s"
    site.mkdir()
    (site / "a.html").write_text('<body><div data-websem-body><h1>A</h1><p>a</p></div><p>x</p></body>')
    (site / "b.html").write_text("<body><h1>B</h1><p>b</p></body>")
    docs, report = read_source(site)
    assert [d.id for d in docs] == ["a.html"] and docs[0].text == "A\n\na"
    assert report.counts() == {R_NO_BODY: 1}


def test_globs_choose_documents(tmp_path: Path) -> None:
    site = tmp_path / "s"
    for rel in ("index.html", "guide/a.html", "guide/deep/b.htm", "_modules/m.html", "README.md",
                "notes/n.md", "notes/t.txt"):
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"<h1>{rel}</h1>" if rel.endswith(("html", "htm")) else f"# {rel}\n", "utf-8")

    def ids(*globs: str) -> list[str]:
        return sorted(d.id for d in read_source(site, globs=globs)[0])

    assert ids() == ["_modules/m.html", "guide/a.html", "guide/deep/b.htm", "index.html"]
    assert ids("!_modules/") == ["guide/a.html", "guide/deep/b.htm", "index.html"]
    assert ids("*.md") == ["README.md", "notes/n.md"]  # a bare name matches at any depth
    assert ids("notes/**") == ["notes/n.md", "notes/t.txt"]
    assert ids("guide/*.html") == ["guide/a.html"]  # * stays inside one folder
    assert ids("guide/**/*.htm*") == ["guide/a.html", "guide/deep/b.htm"]
    assert ids("*.html", "*.md", "!notes/") == ["README.md", "_modules/m.html", "guide/a.html",
                                               "index.html"]
    report = read_source(site, globs=["*.md"])[1]
    assert report.counts()[R_GLOB] == 5
    with pytest.raises(WebsemError, match=r"websem: --glob '!' is empty"):
        read_source(site, globs=["!"])
    jl = tmp_path / "c.jsonl"
    jl.write_text('{"_id": "1", "text": "t"}\n')
    with pytest.raises(WebsemError, match="--glob applies to a folder source"):
        read_source(jl, globs=["*.md"])


def test_reading_shows_plain_progress_off_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSEM_PROGRESS_SECONDS", "0")
    make_sphinx_site(tmp_path / "s", n=6)
    read_source(tmp_path / "s", progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(ln.startswith("websem: reading pages ") for ln in lines)
    assert lines[-1].startswith("websem: reading pages 12/12 files (100%)") and lines[-1].endswith("done")


# ---------------------------------------------------------------------------------------------
# bundles: every anchor lands, no self-indexing, readable output


def test_bundle_anchors_land_and_the_bundle_never_indexes_itself(tmp_path: Path,
                                                                 model_package: Path) -> None:
    """Sphinx, MkDocs and Hugo output in one public/ folder, built twice with the README's
    layout (--out public/_websem): the second build indexes exactly what the first did."""
    public = tmp_path / "public"
    for name in EXPECTED:
        shutil.copytree(SITES / name, public / name)
    out = public / "_websem"
    con1 = io.StringIO()
    from rich.console import Console

    m1 = build_bundle(public, out, model=model_package, progress=False,
                      console=Console(file=con1, width=40))
    docs1 = json.loads((out / "index/docs.json").read_text("utf-8"))
    con2 = io.StringIO()
    m2 = build_bundle(public, out, model=model_package, progress=False, verbose=True,
                      console=Console(file=con2, width=40))
    docs = json.loads((out / "index/docs.json").read_text("utf-8"))
    chunks = json.loads((out / "index/chunks.json").read_text("utf-8"))
    want = {f"{name}/{d}" for name, e in EXPECTED.items() for d in e["docs"]}
    assert {d["id"] for d in docs1} == want and docs == docs1
    assert m2["source"]["skipped_counts"][R_BUNDLE] == 1 and R_BUNDLE not in m1["source"]["skipped_counts"]
    assert {"path": "_websem/", "reason": R_BUNDLE} in m2["source"]["skipped"]
    # every deep link of the bundle lands on an id of its page; no permalink symbol leaks
    landed = 0
    for c in chunks:
        doc = docs[c["doc"]]
        if c["anchor"]:
            assert unquote(c["anchor"][1:]) in page_ids(public / unquote(doc["url"])), (doc["url"], c["anchor"])
            landed += 1
        assert "¶" not in c["text"]
    assert landed >= 15
    # titles from <h1>; the one <title>-only page keeps its site suffix here, because this folder
    # mixes three sites and " — Kettle 2.1 documentation" is not on most of its pages
    titles = {d["id"]: d["title"] for d in docs}
    assert titles.pop("sphinx/notitle.html").startswith("Troubleshooting")
    assert set(titles.values()) == {t for e in EXPECTED.values() for t in e["docs"].values()} - {
        "Troubleshooting"}
    # one line per reason, never wrapped at the console's 40 columns; --verbose lists the files
    out1, out2 = con1.getvalue().splitlines(), con2.getvalue().splitlines()
    assert "skipped 15 files: " + R_NOT_PAGE in out1 and "(--verbose lists the skipped files)" in out1
    assert "skipped 1 file: " + R_BUNDLE in out2 and "skipped _websem/: " + R_BUNDLE in out2
    assert "skipped sphinx/_sources/api.rst.txt: " + R_NOT_PAGE in out2
    assert not any(ln.startswith("sphinx/") for ln in out1)


# ---------------------------------------------------------------------------------------------
# real sites from Debian packages

needs_django = pytest.mark.skipif(not (DJANGO / "ref" / "csrf.html").is_file(),
                                  reason="python-django-doc is not installed (.ci/setup installs it)")
needs_postgres = pytest.mark.skipif(not (POSTGRES / "sql-select.html").is_file(),
                                    reason="postgresql-doc-15 is not installed (.ci/setup installs it)")
DJANGO_FURNITURE = ("Django 3.2.25 documentation", "Last update", "Quick search", "Table of contents",
                    "Previous topic", "Next topic", "Home page", "Module index", "«", "»", "¶")


def django_subset(dst: Path, n: int = 30) -> list[str]:
    """``n`` small pages of Django's ``ref/`` (with their folder layout) plus ``_static/``,
    ``_images/``, ``searchindex.js`` and a ``_sources/`` copy of each page, as Sphinx writes it
    (Debian's package drops ``_sources``)."""
    pages = sorted((p for p in (DJANGO / "ref").rglob("*.html") if 6_000 < p.stat().st_size < 30_000),
                   key=lambda p: p.relative_to(DJANGO).as_posix())[:n]
    rels = []
    for p in pages:
        rel = p.relative_to(DJANGO).as_posix()
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst / rel)
        src = dst / "_sources" / (rel[:-len(".html")] + ".txt")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(BeautifulSoup(p.read_text("utf-8"), "html.parser").get_text(), "utf-8")
        rels.append(rel)
    shutil.copytree(DJANGO / "_static", dst / "_static", symlinks=False, ignore_dangling_symlinks=True)
    shutil.copytree(DJANGO / "_images", dst / "_images")
    shutil.copyfile(DJANGO / "searchindex.js", dst / "searchindex.js")
    return rels


@needs_django
def test_real_django_subset_bundle(tmp_path: Path, model_package: Path) -> None:
    site = tmp_path / "django"
    pages = django_subset(site)
    out = tmp_path / "bundle"
    m = build_bundle(site, out, model=model_package, progress=False)
    docs = json.loads((out / "index/docs.json").read_text("utf-8"))
    chunks = json.loads((out / "index/chunks.json").read_text("utf-8"))
    assert sorted(d["id"] for d in docs) == sorted(pages)  # no _sources/_static/_images document
    assert m["source"]["skipped_counts"][R_NOT_PAGE] >= len(pages)
    for d in docs:
        assert d["title"] and "Django 3.2.25" not in d["title"], d["title"]
    ids: dict[str, set[str]] = {}
    n_anchor = 0
    for c in chunks:
        url = docs[c["doc"]]["url"]
        if c["anchor"]:
            assert unquote(c["anchor"][1:]) in ids.setdefault(url, page_ids(site / unquote(url)))
            n_anchor += 1
        for word in DJANGO_FURNITURE:
            assert word not in c["text"], (url, word)
    assert n_anchor > len(chunks) // 2
    # Every page here has an <h1>; the <title> route must find Django's real suffix too.
    read, _ = read_source(site)
    for d in read:
        d.title, d.title_from = d.page_title, "title"
    assert strip_shared_title_affix(read) == " — Django 3.2.25 documentation"
    assert all(d.title == d.page_title.removesuffix(" — Django 3.2.25 documentation") for d in read)


@needs_postgres
def test_real_postgresql_pages_extract_cleanly() -> None:
    """DocBook output: no <main>, navigation tables above and below, ids on the sect divs."""
    names = ["sql-select.html", "ddl-basics.html", "tutorial-join.html", "datatype-numeric.html",
             "functions-string.html", "indexes-types.html", "mvcc-intro.html", "app-psql.html",
             "index.html", "install-short.html"]
    docs, report = read_source(POSTGRES, globs=names)
    assert sorted(d.id for d in docs) == sorted(names)
    assert report.counts().get(R_GLOB, 0) > 1000
    by_id = {d.id: d for d in docs}
    assert by_id["sql-select.html"].title == "SELECT"
    assert by_id["ddl-basics.html"].title == "5.1. Table Basics"
    assert by_id["ddl-basics.html"].sections[0].anchor == "#DDL-BASICS"
    for d in docs:
        lines = set(d.text.splitlines())
        assert not lines & {"Prev", "Next", "Up", "Home", "Prev Up", "Submit correction"}, d.id
    assert assert_anchors_land(POSTGRES, docs) > 100
