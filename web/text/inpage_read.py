"""Reading one in-page input, a record or a file, with the rules `websem build` applies (reader.py).

:class:`inpage.InPageIndex.prepare` calls these before it chunks and tokenizes a document:

* ``reader.valid_unicode`` (the build applies it to corpus.jsonl too): a record's strings hold no
  lone UTF-16 surrogate. JSON can spell one
  (``"\\ud800"``: a corpus.jsonl line, or a record the page sent through ``JSON.stringify``) but
  no UTF-8 text holds one, so it gets the build's rule for text that is not valid UTF-8
  (reader.decode): a ``websem:`` error naming the document, or with ``encoding_errors="replace"``
  U+FFFD in its place and the document reported in ``report.replaced``;
* :func:`read_file`: a file's type, size, decoding and extraction (reader.file_document);
* :func:`read_record`: a record's id (its own, BEIR's ``_id``, or one derived from its text), size
  and document (reader.record_document).

Stdlib only; runs in Pyodide as part of ``websem_text``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from .errors import WebsemError
from .extract import Document
from .reader import (
    FOLDER_SUFFIXES,
    R_TYPE,
    SourceReport,
    check_size,
    file_document,
    record_document,
)

__all__ = ["item_label", "read_file", "read_record"]

def item_label(item: Mapping) -> str:
    """How errors name a record or file before it is read: its id (or name), as ``repr`` shows it."""
    for key in ("id", "_id", "name"):
        if item.get(key) not in (None, ""):
            return f"document {str(item[key])!r}"
    return "a document without an id"


def read_file(item: Mapping, data: bytes | None, errors: str, max_doc_bytes: int, report: SourceReport,
              check_new: Callable[[str], None]) -> tuple[str, Document | None, bool]:
    """A file ``{"name", "id"?}`` and its bytes: ``(id, document or None when skipped, whether it
    marks a data-websem-body region)``; ``check_new`` refuses an id the index holds."""
    name = str(item.get("name") or "")
    if not name or data is None:
        raise WebsemError(f"websem: a file needs a name and its bytes (got name {name!r}, "
                          f"{'no' if data is None else len(data)} bytes)")
    rel = str(item.get("id") or PurePosixPath(name).name)
    check_new(rel)
    if PurePosixPath(rel).suffix.lower() not in FOLDER_SUFFIXES:  # the build never reads those
        report.skip(rel, R_TYPE)
        return rel, None, False
    check_size(len(data), rel, max_doc_bytes)
    doc, marked = file_document(bytes(data), rel, errors, report)
    return rel, doc, marked


def read_record(item: Mapping, max_doc_bytes: int, report: SourceReport,
                check_new: Callable[[str], None]) -> tuple[str, Document | None, bool]:
    """A record ``{"id"?, "title"?, "text"?, "url"?, "meta"?}`` (or a corpus.jsonl line's ``_id``
    and ``metadata``): ``(id, document or None when skipped, False)``."""
    title, text = item.get("title"), item.get("text")
    doc_id = item.get("id") if item.get("id") not in (None, "") else item.get("_id")  # BEIR's names too
    if doc_id is None or doc_id == "":
        doc_id = hashlib.sha256(f"{title or ''}\x00{text or ''}".encode()).hexdigest()[:16]
    doc_id = str(doc_id)
    check_new(doc_id)
    size = len(str(title or "").encode("utf-8")) + len(str(text or "").encode("utf-8"))
    check_size(size, f"document {doc_id!r}", max_doc_bytes)
    meta = item.get("meta") if item.get("meta") is not None else item.get("metadata")
    doc = record_document(doc_id, title, text, item.get("url"), meta, "in-page record", report)
    return doc_id, doc, False
