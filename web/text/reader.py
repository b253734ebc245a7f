"""The reading rules of one document: bytes or a record → a :class:`Document`, or a skip.

`websem build` (build/sources.py: folders and corpus.jsonl files) and the in-page index
(inpage.py, in Pyodide) run this one copy, so a file gets the same decode, binary, size, type
and empty-text rules, the same extraction and the same error text in both:

* a document larger than ``max_doc_bytes`` raises (:func:`check_size`);
* binary data (a NUL byte in the first 8 KiB, :func:`is_binary`) is skipped as ``R_BINARY``;
* invalid UTF-8 raises naming the file and byte offset, unless ``errors="replace"`` (U+FFFD
  replaces the bad bytes and the file is reported, :func:`decode`);
* ``.html``/``.htm`` pages go through the HTML extraction (``404.html``, ``noindex`` and redirect
  stubs are skipped), ``.md``/``.markdown`` through Markdown, anything else as plain text
  (:func:`file_document`);
* a record (``{id, title, text, url?, meta?}``, BEIR's ``corpus.jsonl`` shape) becomes
  ``title + "\\n\\n" + text`` unless ``text`` already starts with the title
  (:func:`record_document`);
* a document without text is skipped as ``R_NO_TEXT``; a repeated id raises
  (:func:`duplicate_id_error`).

Site-wide rules that need every page (the shared ``<title>`` affix, ``data-websem-body``) are
:func:`strip_shared_title_affix` and :func:`drop_unmarked`. Stdlib only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import quote

from .errors import WebsemError
from .extract import Document, Section, extract_html, facet_meta, markdown_to_document, text_to_document

__all__ = [
    "DEFAULT_MAX_DOC_BYTES",
    "ENCODING_ERRORS",
    "FOLDER_SUFFIXES",
    "HTML_SUFFIXES",
    "TEXT_SUFFIXES",
    "SourceReport",
    "check_size",
    "decode",
    "drop_unmarked",
    "duplicate_id_error",
    "file_document",
    "is_binary",
    "record_document",
    "strip_shared_title_affix",
    "valid_unicode",
]

HTML_SUFFIXES = (".html", ".htm")
TEXT_SUFFIXES = (".md", ".markdown", ".txt")
FOLDER_SUFFIXES = HTML_SUFFIXES + TEXT_SUFFIXES
# 16 MiB of text is ~4M wordpieces, ~16k chunks: hours of CPU embedding. Bigger documents are
# almost always a mistake (a log, a dump); the user can raise the limit explicitly.
DEFAULT_MAX_DOC_BYTES = 16 * 1024 * 1024
ENCODING_ERRORS = ("strict", "replace")

# Skip reasons: short, stable strings (the build prints one line per reason with its count).
R_NOT_PAGE = "not a page (in a folder of HTML pages only .html/.htm are indexed; --glob chooses others)"
R_TYPE = "not a .html/.htm/.md/.markdown/.txt file"
R_GLOB = "not matched by --glob"
R_BUNDLE = "a websem bundle folder (never a source)"
R_NOINDEX = 'noindex (<meta name="robots" content="noindex">)'
R_REDIRECT = "redirect page (<meta http-equiv=\"refresh\">)"
R_ERROR_PAGE = "error page (404.html)"
R_NO_BODY = "no data-websem-body region (other pages of the site mark theirs)"
R_BINARY = "binary (NUL byte)"
R_NO_TEXT = "no text"


@dataclass
class SourceReport:
    """What was skipped or repaired while reading (printed by the CLI, stored in the manifest)."""

    kind: str = ""
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}, every skipped file
    replaced: list[str] = field(default_factory=list)  # files decoded with U+FFFD replacement

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def counts(self) -> dict[str, int]:
        """Skipped files per reason, most frequent first."""
        return dict(Counter(s["reason"] for s in self.skipped).most_common())


def decode(data: bytes, name: str, errors: str, report: SourceReport) -> str:
    """UTF-8 text of ``data`` (a leading BOM dropped); invalid UTF-8 raises naming ``name`` and
    the byte offset, or with ``errors="replace"`` becomes U+FFFD and ``name`` is reported."""
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


def is_binary(data: bytes) -> bool:
    """A NUL byte in the first 8 KiB: no text format websem reads has one."""
    return b"\x00" in data[:8192]


def check_size(size: int, name: str, max_doc_bytes: int) -> None:
    """Raise when a document of ``size`` bytes is over the per-document limit."""
    if size > max_doc_bytes:
        raise WebsemError(
            f"websem: {name} is {size / 1e6:.1f} MB, larger than the per-document limit of "
            f"{max_doc_bytes / 1e6:.1f} MB; split it into smaller documents, or raise the limit "
            "with `--max-doc-bytes` (embedding ~4 MB of text takes about an hour on one CPU)"
        )


def duplicate_id_error(doc_id: str, where: str) -> WebsemError:
    """The error for a document id seen before (``where``: the line or item that repeats it)."""
    return WebsemError(f"websem: duplicate document id {doc_id!r} at {where}; "
                       "ids in a corpus must be unique")


def file_document(data: bytes, rel: str, errors: str, report: SourceReport
                  ) -> tuple[Document | None, bool]:
    """One file's document (id ``rel``, its path with POSIX separators; URL ``rel`` URL-quoted)
    and whether it marks a ``data-websem-body`` region; ``(None, False)`` when it is skipped
    (recorded in ``report``). The size check comes first, by the caller (before reading)."""
    if is_binary(data):
        report.skip(rel, R_BINARY)
        return None, False
    text = decode(data, rel, errors, report)
    url = quote(rel)
    path = PurePosixPath(rel)
    suffix = path.suffix.lower()
    is_marked = False
    if suffix in HTML_SUFFIXES:
        if path.stem == "404":  # the "not found" page generators write (MkDocs, Hugo, Jekyll)
            report.skip(rel, R_ERROR_PAGE)
            return None, False
        doc, info = extract_html(text, rel, url)
        if info.noindex:
            report.skip(rel, R_NOINDEX)
            return None, False
        if info.redirect and len(doc.text) < 500:
            report.skip(rel, R_REDIRECT)
            return None, False
        is_marked = info.marked_body
    elif suffix in (".md", ".markdown"):
        doc = markdown_to_document(text, rel, url)
    else:
        doc = text_to_document(text, rel, url)
    if not doc.text.strip():
        report.skip(rel, R_NO_TEXT)
        return None, False
    return doc, is_marked


def record_document(doc_id: str, title: object, body: object, url: object, metadata: object,
                    where: str, report: SourceReport) -> Document | None:
    """A record's document (BEIR ``corpus.jsonl`` fields: ``_id``, ``title``, ``text``, ``url``,
    ``metadata``), or None when it has no text (recorded in ``report`` at ``where``)."""
    title = str(title or "").strip()
    body = str(body or "")
    if title and not body.lstrip().startswith(title):
        text = title + "\n\n" + body
    else:
        text = body
    text = text.strip()
    if not text:
        report.skipped.append({"path": f"{where} (_id {doc_id})", "reason": R_NO_TEXT})
        return None
    meta = facet_meta(dict(metadata) if isinstance(metadata, dict) else {})
    url = str(url or f"#{quote(doc_id)}")
    return Document(doc_id, title or doc_id, url, text, [Section("", title, 0, len(text))], meta)


def drop_unmarked(docs: list[Document], marked: list[bool], report: SourceReport) -> list[Document]:
    """When any page marks its content with ``data-websem-body``, the HTML pages without the mark
    are skipped (the site opted in page by page); other documents stay."""
    if not any(marked):
        return docs
    for doc, m in zip(docs, marked, strict=True):
        if not m and doc.id.lower().endswith(HTML_SUFFIXES):
            report.skip(doc.id, R_NO_BODY)
    return [d for d, m in zip(docs, marked, strict=True) if m or not d.id.lower().endswith(HTML_SUFFIXES)]


_TITLE_SEPS = (" — ", " – ", " - ", " | ", " · ", " :: ", " » ", " • ")


def _affixes(title: str) -> tuple[set[str], set[str]]:
    """Every suffix and prefix of ``title`` that starts/ends at a separator (" — Site", "Site | ")."""
    sufs, pres = set(), set()
    for sep in _TITLE_SEPS:
        start = 0
        while (i := title.find(sep, start)) > 0:
            sufs.add(title[i:])
            pres.add(title[:i + len(sep)])
            start = i + 1
    return sufs, pres


def strip_shared_title_affix(docs: list[Document]) -> str:
    """Strip the ``<title>`` suffix (or prefix) shared by most HTML pages (" — Django 3.2
    documentation") from the titles that came from ``<title>``; return what was stripped.

    "Most" = more than half of the pages with a ``<title>``, and at least two. The longest such
    affix wins; a title that would become empty keeps its text."""
    titled = [d for d in docs if d.page_title]
    if len(titled) < 2:
        return ""
    suf_count: Counter[str] = Counter()
    pre_count: Counter[str] = Counter()
    for d in titled:
        sufs, pres = _affixes(d.page_title)
        suf_count.update(sufs)
        pre_count.update(pres)
    need = max(2, len(titled) // 2 + 1)
    best_suf = max((s for s, n in suf_count.items() if n >= need), key=len, default="")
    best_pre = max((s for s, n in pre_count.items() if n >= need), key=len, default="")
    for d in docs:
        if d.title_from != "title":
            continue
        t = d.title
        if best_suf and t.endswith(best_suf) and t[:-len(best_suf)].strip():
            t = t[:-len(best_suf)].strip()
        if best_pre and t.startswith(best_pre) and t[len(best_pre):].strip():
            t = t[len(best_pre):].strip()
        d.title = t
    return best_suf or best_pre


# A lone UTF-16 surrogate: JSON can spell one ("\ud800"), no UTF-8 text holds one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(value: object, label: str, field: str, errors: str, report: SourceReport) -> object:
    """``value`` (a record or file item, or one of its fields, walked through its dicts and lists)
    with no lone surrogate (module docstring). ``label`` names the document, ``field`` the
    top-level field being walked ("" for the item itself)."""
    if isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad is None:
            return value
        if errors == "replace":
            if label not in report.replaced:
                report.replaced.append(label)
            return _SURROGATE.sub("\ufffd", value)
        where = f" field {field!r}" if field else ""
        raise WebsemError(
            f"websem: {label}{where} is not valid Unicode (a lone surrogate U+{ord(bad.group()):04X} at "
            f"character {bad.start()}), so it cannot be written as UTF-8; remove or replace that character, "
            "or index with encoding_errors \"replace\" to store U+FFFD for it")
    if isinstance(value, Mapping):
        return {valid_unicode(k, label, field or "key", errors, report):
                valid_unicode(v, label, field or str(k), errors, report) for k, v in value.items()}
    if isinstance(value, list):
        return [valid_unicode(v, label, field, errors, report) for v in value]
    return value
