"""Generate the demo corpus: the Python standard library's documentation, as a static HTML site.

Nothing is downloaded: module pages come from the user's own Python install (``inspect`` /
``pydoc`` docstrings and signatures), and the language-reference pages from
``pydoc_data.topics``, the text behind ``help("assert")``. The output is an ordinary static site
(one page per module / topic, headings with ids, a <nav>) that ``websem build`` indexes like any
site generator's output.
"""

from __future__ import annotations

import html
import importlib
import inspect
import io
import re
import sys
import warnings
from collections.abc import Iterable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from websem.text.errors import WebsemError

__all__ = ["generate_site", "DEFAULT_SKIP"]

# Modules that are never imported for the demo: side effects on import (antigravity opens a web
# browser, `this` prints), GUI toolkits, interactive tooling, platform-specific or deprecated
# shims, or the test suite.
DEFAULT_SKIP = frozenset(
    {
        "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3",
        "ensurepip", "pydoc_data", "msvcrt", "winreg", "winsound", "_winapi", "nt", "posix",
        "pwd", "grp", "spwd", "crypt", "nis", "ossaudiodev", "readline", "curses", "dbm",
        "sqlite3", "tty", "pty", "termios", "resource", "syslog", "fcntl", "mmap", "nturl2path",
        "xxsubtype", "sre_compile", "sre_constants", "sre_parse", "__future__", "__main__",
        "xxlimited", "xxlimited_35", "imp", "asynchat", "asyncore", "smtpd", "distutils",
        "pydoc", "sitecustomize", "usercustomize", "site", "cgi", "cgitb", "mailcap", "telnetlib",
        "nntplib", "pipes", "sndhdr", "imghdr", "audioop", "aifc", "sunau", "chunk", "uu",
        "xdrlib", "msilib",
    }
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<meta name="description" content="{description}">
<meta name="section" content="{section}">
<meta name="tags" content="{tags}">
<link rel="stylesheet" href="{root}style.css">
</head>
<body>
<nav><a href="{root}index.html">Search</a> · <a href="{root}library/index.html">Library</a> ·
<a href="{root}reference/index.html">Language reference</a></nav>
<main>
{body}
</main>
<script>/* not indexed: scripts are dropped by websem build */ void 0;</script>
</body>
</html>
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "section"


def _paragraphs(text: str) -> str:
    """Docstring / topic text → HTML: blank-line paragraphs, indented blocks as <pre>."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text or "")):
        if not block.strip():
            continue
        lines = block.split("\n")
        if all(line.startswith((" ", "\t", ">>>", "...")) for line in lines if line.strip()):
            out.append("<pre>" + html.escape(block) + "</pre>")
        else:
            out.append("<p>" + html.escape(" ".join(x.strip() for x in lines)) + "</p>")
    return "\n".join(out)


def _first_sentence(doc: str) -> str:
    # Skip reST title blocks ("ast\n~~~") so the summary is a real sentence.
    paras = [p for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    while len(paras) > 1 and _UNDERLINE.match(paras[0].strip().splitlines()[-1].strip()):
        paras.pop(0)
    para = " ".join(paras[0].split()) if paras else ""
    sentence = re.split(r"(?<=[.!?])\s", para, maxsplit=1)[0]
    return sentence if len(sentence) <= 100 else sentence[:97].rsplit(" ", 1)[0] + "..."


def _signature(name: str, obj: object) -> str:
    try:
        return name + str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return name + "(...)"


def _public_members(obj: object) -> Iterable[tuple[str, object]]:
    names = getattr(obj, "__all__", None)
    if not isinstance(names, (list, tuple)):
        names = [n for n in dir(obj) if not n.startswith("_")]
    for name in sorted(set(names)):
        try:
            yield name, getattr(obj, name)
        except Exception:  # noqa: BLE001 - lazy attributes may raise anything
            continue


def _module_page(modname: str, module: object, title: str) -> str:
    # The <h1> carries the full title: `websem build` titles a page by its <h1> (docs/sites.md).
    parts = [f'<h1 id="{_slug(modname)}">{html.escape(title)}</h1>', _paragraphs(module.__doc__ or "")]
    for name, member in _public_members(module):
        owner = getattr(member, "__module__", modname)
        if owner != modname and not (isinstance(owner, str) and owner.lstrip("_") == modname):
            continue  # re-exported from elsewhere: documented on its own page
        qual = f"{modname}.{name}"
        if inspect.isclass(member):
            parts.append(f'<h2 id="{_slug(qual)}">class {html.escape(_signature(qual, member))}</h2>')
            parts.append(_paragraphs(inspect.getdoc(member) or ""))
            for mname, meth in _public_members(member):
                if not (inspect.isfunction(meth) or inspect.ismethoddescriptor(meth)):
                    continue
                if mname not in vars(member):
                    continue
                mq = f"{qual}.{mname}"
                parts.append(f'<h3 id="{_slug(mq)}">{html.escape(_signature(mq, meth))}</h3>')
                parts.append(_paragraphs(inspect.getdoc(meth) or ""))
        elif inspect.isroutine(member):
            parts.append(f'<h2 id="{_slug(qual)}">{html.escape(_signature(qual, member))}</h2>')
            parts.append(_paragraphs(inspect.getdoc(member) or ""))
    return "\n".join(p for p in parts if p)


_UNDERLINE = re.compile(r"^([*=\-~^\"'])\1{2,}$")


def _topic_page(text: str) -> tuple[str, str]:
    """A pydoc topic (reST rendered as text, headings underlined) → (title, HTML body)."""
    lines = text.splitlines()
    body: list[str] = []
    title = ""
    levels: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            body.append(_paragraphs("\n".join(buf)))
            buf.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.match(nxt.strip()) and len(nxt.strip()) >= len(line.strip()):
            flush()
            ch = nxt.strip()[0]
            if ch not in levels:
                levels.append(ch)
            level = min(levels.index(ch) + 1, 6)
            heading = line.strip()
            title = title or heading
            body.append(f'<h{level} id="{_slug(heading)}">{html.escape(heading)}</h{level}>')
            i += 2
            continue
        buf.append(line)
        i += 1
    flush()
    return title, "\n".join(body)


def _page(title: str, body: str, section: str, tags: str, description: str, root: str) -> str:
    return _PAGE.format(
        title=html.escape(title),
        body=body,
        section=html.escape(section),
        tags=html.escape(tags),
        description=html.escape(description[:160]),
        root=root,
    )


def _import_quietly(name: str) -> object | None:
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), redirect_stdout(sink), redirect_stderr(sink):
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - a module that cannot import here is simply skipped
        return None


def generate_site(
    out: Path,
    modules: Iterable[str] | None = None,
    topics: Iterable[str] | None = None,
    skip: frozenset[str] = DEFAULT_SKIP,
) -> dict:
    """Write the stdlib documentation site into ``out`` and return counts.

    ``modules`` defaults to every public top-level module of ``sys.stdlib_module_names`` that
    imports cleanly here (minus ``skip``); ``topics`` to every ``pydoc_data.topics`` entry.
    Subsets keep tests fast.
    """
    out = Path(out)
    (out / "library").mkdir(parents=True, exist_ok=True)
    (out / "reference").mkdir(parents=True, exist_ok=True)
    names = sorted(modules) if modules is not None else sorted(
        n for n in sys.stdlib_module_names if not n.startswith("_") and n not in skip
    )
    written: list[tuple[str, str]] = []
    for name in names:
        module = _import_quietly(name)
        if module is None:
            continue
        summary = _first_sentence(module.__doc__ or "")
        title = f"{name} — {summary}" if summary else name
        body = _module_page(name, module, title)
        if len(body) < 200:  # nothing documented: not worth a page
            continue
        tags = name.split(".")[0]
        (out / "library" / f"{name}.html").write_text(
            _page(title, body, "library", tags, summary, "../"), encoding="utf-8"
        )
        written.append((name, summary))

    from pydoc_data.topics import topics as all_topics

    topic_pages: list[tuple[str, str]] = []
    for key in sorted(all_topics if topics is None else topics):
        if key not in all_topics:
            raise WebsemError(f"websem: unknown pydoc topic {key!r}; known: {', '.join(sorted(all_topics))}")
        title, body = _topic_page(all_topics[key])
        title = title or key
        (out / "reference" / f"{key}.html").write_text(
            _page(title, body, "reference", "language", title, "../"), encoding="utf-8"
        )
        topic_pages.append((key, title))

    lib_index = "<h1 id=\"library\">The Python standard library</h1>\n<ul>" + "".join(
        f'<li><a href="{html.escape(n)}.html">{html.escape(n)}</a> {html.escape(s)}</li>' for n, s in written
    ) + "</ul>"
    (out / "library" / "index.html").write_text(
        _page("Library index", lib_index, "library", "index", "Standard library modules", "../"), encoding="utf-8"
    )
    ref_index = "<h1 id=\"reference\">Language reference topics</h1>\n<ul>" + "".join(
        f'<li><a href="{html.escape(k)}.html">{html.escape(t)}</a></li>' for k, t in topic_pages
    ) + "</ul>"
    (out / "reference" / "index.html").write_text(
        _page("Language reference", ref_index, "reference", "index", "Language reference topics", "../"),
        encoding="utf-8",
    )
    return {"modules": len(written), "topics": len(topic_pages), "python": sys.version.split()[0]}
