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
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from websem.text.errors import WebsemError

from .extract import (
    FACET_FIELDS,
    Document,
    Section,
    extract_html,
    facet_meta,
    html_to_document,
    markdown_to_document,
    slugify,
    text_to_document,
)
from .progress import progress as _progress

__all__ = [
    "DEFAULT_MAX_DOC_BYTES",
    "FACET_FIELDS",
    "FOLDER_SUFFIXES",
    "HTML_SUFFIXES",
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


# ---------------------------------------------------------------------------------------------
# reading helpers


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


def _check_size(size: int, name: str, max_doc_bytes: int) -> None:
    if size > max_doc_bytes:
        raise WebsemError(
            f"websem: {name} is {size / 1e6:.1f} MB, larger than the per-document limit of "
            f"{max_doc_bytes / 1e6:.1f} MB; split it into smaller documents, or raise the limit "
            "with `--max-doc-bytes` (embedding ~4 MB of text takes about an hour on one CPU)"
        )


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
            data = p.read_bytes()
            if _is_binary(data):
                report.skip(rel, R_BINARY)
                continue
            text = _decode(data, rel, errors, report)
            url = quote(rel)
            suffix = p.suffix.lower()
            is_marked = False
            if suffix in HTML_SUFFIXES:
                if p.stem == "404":  # the "not found" page generators write (MkDocs, Hugo, Jekyll)
                    report.skip(rel, R_ERROR_PAGE)
                    continue
                doc, info = extract_html(text, rel, url)
                if info.noindex:
                    report.skip(rel, R_NOINDEX)
                    continue
                if info.redirect and len(doc.text) < 500:
                    report.skip(rel, R_REDIRECT)
                    continue
                is_marked = info.marked_body
            elif suffix in (".md", ".markdown"):
                doc = markdown_to_document(text, rel, url)
            else:
                doc = text_to_document(text, rel, url)
            if not doc.text.strip():
                report.skip(rel, R_NO_TEXT)
                continue
            docs.append(doc)
            marked.append(is_marked)
    if any(marked):
        for doc, m in zip(docs, marked, strict=True):
            if not m and doc.id.lower().endswith(HTML_SUFFIXES):
                report.skip(doc.id, R_NO_BODY)
        docs = [d for d, m in zip(docs, marked, strict=True)
                if m or not d.id.lower().endswith(HTML_SUFFIXES)]
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
