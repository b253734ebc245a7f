"""Step 1 of `websem build`: read a source into plain-text documents with sections.

Two kinds of source:

* a folder of ``.html``/``.htm``/``.md``/``.markdown``/``.txt`` files, as a static site generator
  writes them. HTML is parsed with BeautifulSoup (``html.parser``); ``nav``, ``script``, ``style``
  (and other non-content elements) are dropped; if the page has a ``<main>`` (or ``[role=main]``)
  only that is indexed. Markdown is rendered with markdown-it-py and then goes through the same
  HTML extraction. Headings ``h1``-``h6`` start sections; a section's anchor is the heading's
  ``id`` (or the id of an ``<a>`` inside it), else a GitHub-style slug of its text. The document id
  and URL are the file's path relative to the folder (POSIX separators, URL-quoted).
  ``<meta name=... content=...>`` tags and Markdown front matter are kept as ``Document.meta``.
* a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``, optional ``url`` and ``metadata``). The
  document text is ``title + "\\n\\n" + text``, except when ``text`` already starts with the title
  (Cranfield does this), in which case it is ``text`` alone, so the title is not embedded twice.
  URL = the ``url`` field, else ``#<_id>``.

Bad inputs: binary files (a NUL byte in the first 8 KiB) are skipped and reported; invalid UTF-8
raises a ``WebsemError`` naming the file and byte offset unless ``encoding_errors="replace"``
(then U+FFFD replaces the bad bytes and the file is reported); a document larger than
``max_doc_bytes`` raises before it is read (folder) or as soon as its line is read (jsonl);
duplicate ids raise naming the id; a source with no documents raises.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from websem.text.errors import WebsemError

__all__ = [
    "DEFAULT_MAX_DOC_BYTES",
    "FACET_FIELDS",
    "FOLDER_SUFFIXES",
    "Document",
    "Section",
    "SourceReport",
    "read_source",
    "facet_meta",
    "html_to_document",
    "markdown_to_document",
    "slugify",
]

FOLDER_SUFFIXES = (".html", ".htm", ".md", ".markdown", ".txt")
# 16 MiB of text is ~4M wordpieces, ~16k chunks: hours of CPU embedding. Bigger documents are
# almost always a mistake (a log, a dump); the user can raise the limit explicitly.
DEFAULT_MAX_DOC_BYTES = 16 * 1024 * 1024
ENCODING_ERRORS = ("strict", "replace")

# Elements whose content is never page text.
_DROP = {
    "script", "style", "nav", "noscript", "template", "head", "svg", "iframe", "object",
    "canvas", "button", "select", "form", "math",
}
_BLOCK = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "figure",
    "figcaption", "details", "summary", "hr", "address", "body", "html", "caption",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_CELL = {"td", "th"}


@dataclass
class Section:
    """A heading-delimited span ``text[start:end]`` of a document (the heading line included)."""

    anchor: str  # "#id" or "" for the part before the first heading
    title: str
    start: int
    end: int


@dataclass
class Document:
    """One document: ``text`` is what gets chunked; ``sections`` cover it in order."""

    id: str
    title: str
    url: str
    text: str
    sections: list[Section]
    meta: dict = field(default_factory=dict)


@dataclass
class SourceReport:
    """What was skipped or repaired while reading (printed by the CLI, stored in the manifest)."""

    kind: str = ""
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    replaced: list[str] = field(default_factory=list)  # files decoded with U+FFFD replacement


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


def _decode(data: bytes, name: str, errors: str, report: SourceReport) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if errors == "replace":
            report.replaced.append(name)
            return data.decode("utf-8", errors="replace")
        raise WebsemError(
            f"websem: {name} is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or pass "
            "`--encoding-errors replace` to index it with U+FFFD for the bad bytes"
        ) from None


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


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

    def start_section(self, anchor: str, title: str) -> None:
        self.brk("\n\n")
        # start is set when the heading's first text is added (after the pending break)
        self.sections.append(Section(anchor, title, -1, -1))

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


def _walk(node, tb: _TextBuilder, seen: dict[str, int], pre: bool = False) -> None:
    from bs4 import Comment, NavigableString, Tag
    from bs4.element import CData, Declaration, Doctype, ProcessingInstruction

    for child in node.children:
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
        if name in _DROP or child.get("hidden") is not None or child.get("aria-hidden") == "true":
            continue
        if name in _HEADINGS:
            title = _WS.sub(" ", child.get_text(" ")).strip()
            hid = child.get("id")
            if not hid:
                inner = child.find(["a", "span"], id=True)
                hid = inner.get("id") if inner is not None else None
            anchor = "#" + (hid if hid else slugify(title, seen))
            tb.start_section(anchor, title)
            _walk(child, tb, seen, pre)
            tb.brk("\n\n")
            continue
        if name == "br":
            tb.brk("\n")
            continue
        if name in _BLOCK or name in _CELL:
            tb.brk("\n" if name in {"li", "tr", "dt", "dd"} or name in _CELL else "\n\n")
            _walk(child, tb, seen, pre or name == "pre")
            tb.brk("\n" if name in _CELL else "\n\n")
            continue
        if name == "img" and child.get("alt"):
            tb.add(" " + child["alt"] + " ")
            continue
        _walk(child, tb, seen, pre)


def html_to_document(html: str, doc_id: str, url: str, meta: dict | None = None) -> Document:
    """Extract title, meta, text and heading sections from an HTML page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    meta = dict(meta or {})
    for m in soup.find_all("meta"):
        key = m.get("name") or m.get("property")
        if key and m.get("content") is not None:
            meta[str(key)] = str(m["content"])
    html_tag = soup.find("html")
    facet_meta(meta, html_tag.get("lang") if html_tag else None)
    title_tag = soup.find("title")
    title = _WS.sub(" ", title_tag.get_text()).strip() if title_tag else ""
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.body or soup
    tb = _TextBuilder()
    _walk(root, tb, {})
    text, sections = tb.finish()
    if not title:
        h1 = next((s for s in sections if s.anchor and s.title), None)
        title = h1.title if h1 else ""
    return Document(doc_id, title or doc_id, url, text, sections, meta)


_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def _front_matter(md: str) -> tuple[dict, str]:
    """Split simple YAML-style front matter (``key: value`` lines) off a Markdown text."""
    m = _FRONT.match(md)
    if not m:
        return {}, md
    meta: dict = {}
    key = None
    for line in m.group(1).splitlines():
        item = line.strip()
        # YAML block list under the previous key ("tags:" then "  - a" lines)
        if key is not None and item.startswith("- ") and line[:1] in (" ", "\t", "-"):
            prev = meta.get(key)
            meta[key] = ([] if prev in ("", None) else prev if isinstance(prev, list)
                         else [prev]) + [_unquote(item[2:].strip())]
            continue
        if ":" in line and not line.startswith((" ", "\t", "#")):
            k, v = line.split(":", 1)
            key = k.strip()
            meta[key] = _unquote(v.strip())
    return meta, md[m.end():]


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


# Where each filter field comes from, first non-empty wins (docs/hybrid.md "Filters").
_FACET_SOURCES = {
    "tags": ("tags", "websem:tags", "keywords"),
    "section": ("section", "websem:section", "article:section", "category"),
    "language": ("language", "lang", "websem:language", "content-language"),
}
FACET_FIELDS = tuple(_FACET_SOURCES)


def _split_list(v) -> list[str]:
    """``"a, b"``, ``"[a, b]"`` or a list → ``["a", "b"]`` (stripped, empty and repeats dropped)."""
    if isinstance(v, (list, tuple)):
        items = [str(x) for x in v]
    else:
        s = str(v).strip()
        if s.startswith("[") and s.endswith("]"):
            s = s[1:-1]
        items = s.split(",")
    out: list[str] = []
    for x in items:
        x = _unquote(x.strip()).strip()
        if x and x not in out:
            out.append(x)
    return out


def facet_meta(meta: dict, html_lang: str | None = None) -> dict:
    """Normalize the filter fields of ``meta`` in place: ``tags`` a list of strings (from
    ``tags``/``keywords``, comma-separated or a list), ``section`` and ``language`` strings
    (``language`` falls back to ``<html lang>``). Other keys are kept as they are."""
    for fld, keys in _FACET_SOURCES.items():
        value = next((meta[k] for k in keys if meta.get(k) not in (None, "", [])), None)
        if value is None and fld == "language" and html_lang:
            value = html_lang
        if value is None:
            continue
        if fld == "tags":
            tags = _split_list(value)
            if tags:
                meta["tags"] = tags
        else:
            if isinstance(value, (list, tuple)):
                value = value[0] if value else ""
            value = str(value).strip()
            if value:
                meta[fld] = value
    return meta


def markdown_to_document(md: str, doc_id: str, url: str) -> Document:
    """Markdown → HTML (markdown-it-py, CommonMark + tables) → the HTML extraction.

    The title is the front-matter ``title``, else the first heading.
    """
    from markdown_it import MarkdownIt

    meta, body = _front_matter(md)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(body)
    doc = html_to_document(f"<html><body>{html}</body></html>", doc_id, url, meta)
    first = next((s.title for s in doc.sections if s.anchor and s.title), "")
    doc.title = str(meta.get("title") or first or doc_id)
    return doc


def text_to_document(text: str, doc_id: str, url: str) -> Document:
    """Plain text: paragraphs as they are; the title is the first non-empty line."""
    text = text.replace("\r\n", "\n").rstrip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return Document(doc_id, first[:200] or doc_id, url, text, [Section("", "", 0, len(text))])


# ---------------------------------------------------------------------------------------------
# sources


def _check_size(size: int, name: str, max_doc_bytes: int) -> None:
    if size > max_doc_bytes:
        raise WebsemError(
            f"websem: {name} is {size / 1e6:.1f} MB, larger than the per-document limit of "
            f"{max_doc_bytes / 1e6:.1f} MB; split it into smaller documents, or raise the limit "
            "with `--max-doc-bytes` (embedding ~4 MB of text takes about an hour on one CPU)"
        )


def _read_folder(
    root: Path, report: SourceReport, errors: str, max_doc_bytes: int
) -> Iterator[Document]:
    paths = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    wanted = set(paths)
    for p in sorted(q for q in root.rglob("*") if q.is_file() and q not in wanted):
        rel = p.relative_to(root).as_posix()
        if not any(part.startswith(".") for part in p.relative_to(root).parts):
            report.skipped.append({"path": rel, "reason": f"suffix {p.suffix or '(none)'} not in "
                                   + "/".join(FOLDER_SUFFIXES)})
    for p in paths:
        rel = p.relative_to(root).as_posix()
        _check_size(p.stat().st_size, rel, max_doc_bytes)
        data = p.read_bytes()
        if _is_binary(data):
            report.skipped.append({"path": rel, "reason": "binary (NUL byte)"})
            continue
        text = _decode(data, rel, errors, report)
        url = quote(rel)
        suffix = p.suffix.lower()
        if suffix in (".html", ".htm"):
            doc = html_to_document(text, rel, url)
        elif suffix in (".md", ".markdown"):
            doc = markdown_to_document(text, rel, url)
        else:
            doc = text_to_document(text, rel, url)
        if not doc.text.strip():
            report.skipped.append({"path": rel, "reason": "no text"})
            continue
        yield doc


def _read_jsonl(
    path: Path, report: SourceReport, errors: str, max_doc_bytes: int
) -> Iterator[Document]:
    seen: set[str] = set()
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path.name} line {lineno}"
            _check_size(len(raw), where, max_doc_bytes)
            if _is_binary(raw):
                raise WebsemError(f"websem: {where} contains a NUL byte; {path} must be JSON Lines "
                                  "text (one JSON object per line)")
            line = _decode(raw, where, errors, report).strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise WebsemError(f"websem: {where} is not valid JSON ({e.msg}); each line of a "
                                  "corpus.jsonl must be an object with _id, title, text") from None
            if not isinstance(obj, dict) or "_id" not in obj:
                raise WebsemError(f"websem: {where} has no `_id`; each line of a corpus.jsonl "
                                  "must be an object with _id, title, text")
            doc_id = str(obj["_id"])
            if doc_id in seen:
                raise WebsemError(f"websem: duplicate document id {doc_id!r} at {where}; "
                                  "ids in a corpus must be unique")
            seen.add(doc_id)
            title = str(obj.get("title") or "").strip()
            body = str(obj.get("text") or "")
            if title and not body.lstrip().startswith(title):
                text = title + "\n\n" + body
            else:
                text = body
            text = text.strip()
            if not text:
                report.skipped.append({"path": f"{where} (_id {doc_id})", "reason": "no text"})
                continue
            meta = facet_meta(dict(obj["metadata"]) if isinstance(obj.get("metadata"), dict)
                              else {})
            url = str(obj.get("url") or f"#{quote(doc_id)}")
            yield Document(doc_id, title or doc_id, url, text, [Section("", title, 0, len(text))],
                           meta)


def read_source(
    source: Path,
    *,
    encoding_errors: str = "strict",
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> tuple[list[Document], SourceReport]:
    """Read every document of ``source`` (a folder or a ``.jsonl`` file)."""
    source = Path(source)
    if encoding_errors not in ENCODING_ERRORS:
        raise WebsemError(f"websem: encoding_errors={encoding_errors!r}; allowed: "
                          + ", ".join(ENCODING_ERRORS))
    report = SourceReport()
    if source.is_dir():
        report.kind = "folder"
        docs = list(_read_folder(source, report, encoding_errors, max_doc_bytes))
        what = "/".join(FOLDER_SUFFIXES) + " files"
    elif source.is_file() and source.suffix.lower() in (".jsonl", ".json"):
        report.kind = "jsonl"
        docs = list(_read_jsonl(source, report, encoding_errors, max_doc_bytes))
        what = "documents with text"
    elif source.exists():
        raise WebsemError(f"websem: source {source} is neither a folder nor a .jsonl file; pass a "
                          "folder of .html/.htm/.md/.txt files or a BEIR corpus.jsonl")
    else:
        raise WebsemError(f"websem: source {source} does not exist; pass a folder of "
                          ".html/.htm/.md/.txt files or a BEIR corpus.jsonl")
    if not docs:
        skipped = "; ".join(f"{s['path']}: {s['reason']}" for s in report.skipped[:10])
        raise WebsemError(f"websem: no {what} found in {source}"
                          + (f" (skipped: {skipped})" if skipped else "")
                          + "; nothing to index")
    return docs, report
