"""Step 1 of `websem build`: find a source's documents and read them (extraction: extract.py).

Two kinds of source:

* a folder, as a static site generator writes it. What is a document (docs/sites.md):
  - when the folder holds ``.html``/``.htm`` files, the HTML pages only (a generator's
    ``_sources/*.txt`` copies, ``_static/`` files, a README.md are not pages a visitor lands on);
    otherwise ``.md``/``.markdown``/``.txt`` files. ``globs`` (``--glob``, repeatable) choose
    otherwise: a pattern without ``/`` matches a file name at any depth, one with ``/`` the path
    from the folder (``**`` spans folders, ``docs/`` means everything under it), and ``!PATTERN``
    excludes;
  - never: hidden files and folders (a leading ``.``), the build's output folder (``exclude``),
    and any folder holding a websem ``manifest.json`` (``"format": "websem-bundle"``), so
    ``websem build public/ --out public/_websem`` never indexes its own bundle;
  - pages with ``<meta name="robots" content="noindex">``, redirect stubs (``<meta
    http-equiv="refresh" content="0; url=...">``) and ``404.html`` error pages are skipped;
    when any page marks its content with ``data-websem-body``, pages without that mark are
    skipped (the site opted in page by page).
  The document id and URL are the file's path relative to the folder (POSIX separators,
  URL-quoted). Titles: the page's ``<h1>``, else its ``<title>`` without the suffix/prefix most
  pages' titles share (" — Django 3.2 documentation", "Site | ").
* a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``, optional ``url`` and ``metadata``). The
  document text is ``title + "\\n\\n" + text``, except when ``text`` already starts with the title
  (Cranfield does this), in which case it is ``text`` alone, so the title is not embedded twice.
  URL = the ``url`` field, else ``#<_id>``.

Bad inputs: binary files (a NUL byte in the first 8 KiB) are skipped and reported; invalid UTF-8
raises a ``WebsemError`` naming the file and byte offset unless ``encoding_errors="replace"``
(then U+FFFD replaces the bad bytes and the file is reported); a document larger than
``max_doc_bytes`` raises before it is read (folder) or as soon as its line is read (jsonl);
duplicate ids raise naming the id; a source with no documents raises. Skipped files are
reported by reason (:meth:`SourceReport.counts`), the full list in ``SourceReport.skipped``.

This module walks folders and corpus files; what happens to one file or record (those rules,
the extraction, the skip reasons) is ``websem.text.reader``, the copy the in-page index runs in
Pyodide too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from websem.text.errors import WebsemError
from websem.text.extract import (
    FACET_FIELDS,
    Document,
    Section,
    facet_meta,
    html_to_document,
    markdown_to_document,
    slugify,
    text_to_document,
)
from websem.text.reader import (
    DEFAULT_MAX_DOC_BYTES,
    ENCODING_ERRORS,
    FOLDER_SUFFIXES,
    HTML_SUFFIXES,
    R_BINARY,
    R_BUNDLE,
    R_ERROR_PAGE,
    R_GLOB,
    R_NO_BODY,
    R_NO_TEXT,
    R_NOINDEX,
    R_NOT_PAGE,
    R_REDIRECT,
    R_TYPE,
    TEXT_SUFFIXES,
    SourceReport,
    check_size,
    decode,
    drop_unmarked,
    duplicate_id_error,
    file_document,
    is_binary,
    record_document,
    strip_shared_title_affix,
    valid_unicode,
)

from .progress import progress as _progress

__all__ = [
    "DEFAULT_MAX_DOC_BYTES",
    "FACET_FIELDS",
    "FOLDER_SUFFIXES",
    "HTML_SUFFIXES",
    "R_BINARY",
    "R_BUNDLE",
    "R_ERROR_PAGE",
    "R_GLOB",
    "R_NO_BODY",
    "R_NO_TEXT",
    "R_NOINDEX",
    "R_NOT_PAGE",
    "R_REDIRECT",
    "R_TYPE",
    "TEXT_SUFFIXES",
    "Document",
    "Section",
    "SourceReport",
    "discover",
    "read_source",
    "facet_meta",
    "html_to_document",
    "markdown_to_document",
    "slugify",
    "strip_shared_title_affix",
    "text_to_document",
]

# The reading rules (decode, binary, size, extraction by type, records, skip reasons) live in
# websem.text.reader: the in-page index runs the same copy in Pyodide. Kept here under their
# historical private names for this module's readers.
_decode, _is_binary, _check_size = decode, is_binary, check_size


# ---------------------------------------------------------------------------------------------
# folders: what is a document


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob → regex over POSIX relative paths: ``*`` and ``?`` stay inside one folder,
    ``**/`` spans any number of folders, ``[...]`` is a character class."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1:j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class _Globs:
    """``--glob`` patterns: includes (replace the default choice when any) and ``!`` excludes."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.include: list[tuple[re.Pattern[str], bool]] = []
        self.exclude: list[tuple[re.Pattern[str], bool]] = []
        for raw in patterns:
            pat = raw.strip()
            neg = pat.startswith("!")
            pat = pat[1:] if neg else pat
            pat = pat.removeprefix("./").lstrip("/")
            if not pat:
                raise WebsemError(f"websem: --glob {raw!r} is empty; pass a pattern such as "
                                  "'**/*.html', 'docs/' or '!_modules/**'")
            if pat.endswith("/"):
                pat += "**"
            whole_path = "/" in pat
            (self.exclude if neg else self.include).append((_glob_regex(pat), whole_path))

    @staticmethod
    def _any(rules: list[tuple[re.Pattern[str], bool]], rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(rx.match(rel if whole else name) for rx, whole in rules)

    def included(self, rel: str) -> bool | None:
        """True/False when the patterns decide, None when the default choice applies."""
        if self.exclude and self._any(self.exclude, rel):
            return False
        if self.include:
            return self._any(self.include, rel)
        return None


def _is_bundle_dir(path: Path) -> bool:
    """A folder holding a websem bundle's manifest.json."""
    m = path / "manifest.json"
    if not m.is_file():
        return False
    try:
        with m.open("rb") as f:
            head = f.read(4096)
        if b"websem-bundle" not in head:  # cheap test before parsing a big manifest
            return False
        return json.loads(m.read_text("utf-8")).get("format") == "websem-bundle"
    except (OSError, ValueError, AttributeError):
        return False


def discover(root: Path, report: SourceReport, globs: Iterable[str] = (),
             exclude: Iterable[Path] = ()) -> list[Path]:
    """The files of folder ``root`` that are documents (module docstring), sorted; everything
    else that is not hidden is recorded in ``report`` with its reason."""
    root = Path(root)
    if _is_bundle_dir(root):
        raise WebsemError(f"websem: source {root} is a websem bundle (it holds a websem "
                          "manifest.json); pass the site folder that contains your pages")
    rules = _Globs(globs)
    excluded = {Path(p).resolve() for p in exclude}
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if d.startswith("."):
                continue
            if sub.resolve() in excluded or _is_bundle_dir(sub):
                report.skip(sub.relative_to(root).as_posix() + "/", R_BUNDLE)
                continue
            keep.append(d)
        dirnames[:] = keep
        rel_dir = here.relative_to(root).as_posix()
        for f in filenames:
            if f.startswith("."):
                continue
            files.append(f if rel_dir == "." else f"{rel_dir}/{f}")
    files.sort()
    html_site = any(f.lower().endswith(HTML_SUFFIXES) for f in files)
    default = HTML_SUFFIXES if html_site else TEXT_SUFFIXES
    chosen: list[Path] = []
    for rel in files:
        p = root / rel
        if not p.is_file():
            continue
        decided = rules.included(rel)
        suffix = p.suffix.lower()
        if decided is False:
            report.skip(rel, R_GLOB)
        elif decided is None and suffix not in default:
            report.skip(rel, R_NOT_PAGE if html_site else R_TYPE)
        elif suffix not in FOLDER_SUFFIXES:
            report.skip(rel, R_TYPE)
        else:
            chosen.append(p)
    return chosen


def _read_folder(root: Path, report: SourceReport, errors: str, max_doc_bytes: int,
                 globs: Iterable[str], exclude: Iterable[Path], show_progress: bool
                 ) -> list[Document]:
    paths = discover(root, report, globs, exclude)
    docs: list[Document] = []
    marked: list[bool] = []
    with _progress("reading pages", len(paths), unit="files", enabled=show_progress and bool(paths)) as bar:
        for p in paths:
            bar.advance()
            rel = p.relative_to(root).as_posix()
            _check_size(p.stat().st_size, rel, max_doc_bytes)
            doc, is_marked = file_document(p.read_bytes(), rel, errors, report)
            if doc is not None:
                docs.append(doc)
                marked.append(is_marked)
    docs = drop_unmarked(docs, marked, report)
    strip_shared_title_affix(docs)
    return docs


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
            # JSON can spell a lone surrogate that no UTF-8 text holds: the invalid-text rule.
            obj = valid_unicode(obj, where, "", errors, report)
            doc_id = str(obj["_id"])
            if doc_id in seen:
                raise duplicate_id_error(doc_id, where)
            seen.add(doc_id)
            doc = record_document(doc_id, obj.get("title"), obj.get("text"), obj.get("url"),
                                  obj.get("metadata"), where, report)
            if doc is not None:
                yield doc


def read_source(
    source: Path,
    *,
    encoding_errors: str = "strict",
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    globs: Iterable[str] = (),
    exclude: Iterable[Path] = (),
    progress: bool = False,
) -> tuple[list[Document], SourceReport]:
    """Read every document of ``source`` (a folder or a ``.jsonl`` file).

    Folders only: ``globs`` choose the files (module docstring), ``exclude`` are folders never
    read (the build's output), ``progress`` shows a bar (plain lines off a terminal)."""
    source = Path(source)
    if encoding_errors not in ENCODING_ERRORS:
        raise WebsemError(f"websem: encoding_errors={encoding_errors!r}; allowed: "
                          + ", ".join(ENCODING_ERRORS))
    globs = list(globs)
    report = SourceReport()
    if source.is_dir():
        report.kind = "folder"
        docs = _read_folder(source, report, encoding_errors, max_doc_bytes, globs, exclude,
                            progress)
        what = "pages or .md/.markdown/.txt files"
    elif source.is_file() and source.suffix.lower() in (".jsonl", ".json"):
        if globs:
            raise WebsemError(f"websem: --glob applies to a folder source; {source} is a "
                              "corpus.jsonl (every line is a document)")
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
