"""The in-page index: documents added in the browser, indexed by the code `websem build` runs.

A page (web/src, through bridge.py in Pyodide) feeds documents one at a time:

1. :meth:`InPageIndex.prepare` reads one record or file with the build's reading rules
   (reader.py: size limit, binary and UTF-8 rules, extraction by type, empty-text skip), chunks it
   with the build's chunker (chunk.py) and tokenizes each chunk exactly as the build embeds it
   (``[CLS]``/``[SEP]``, truncated at the model's ``max_seq_length``);
2. the page embeds each chunk with onnxruntime-web, batch 1 (the build's vectors equal batch-1
   runs, docs/architecture.md "Determinism");
3. :meth:`InPageIndex.add` commits the document with its float32 vectors, kept as the index
   stores them (float16 rows rounded like numpy by default; no float32 copy).

Each document's chunk texts are held once, in its chunks: :class:`ChunkRows` makes
``chunks.json``'s rows from them when read, for the BM25 build, the files and the page's ranker
(:meth:`InPageIndex.search_state`, which gives the page only the vectors, the BM25 index and each
chunk's document, so neither Pyodide nor JS parses a ``chunks.json`` copy).

:meth:`InPageIndex.files` writes the flat index files (``index/chunks.json``, ``docs.json``,
``lexical.bin``, ``vectors.bin``) exactly as `websem build` writes them for the same documents in
the same order and the same vectors: the same JSON bytes (build/index.py), the BM25 index from
lexbuild.py, float16 rows rounded like numpy (``struct`` format ``e``: IEEE round-half-even,
a bounded slice at a time).
Site-wide rules are applied there too, over the documents present: the ``<title>`` affix most
pages share is stripped, and pages without ``data-websem-body`` are left out when another page
has one. :meth:`export` / :meth:`load_export` move the index out of the page and back
(`websem query BUNDLE --index EXPORT` reads it). Stdlib only.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import sys
import tarfile
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from .bm25 import LexicalIndex
from .chunk import Chunk, chunk_document, default_overlap
from .errors import WebsemError
from .extract import Document
from .lexbuild import build_lexical
from .meta import FACET_FIELDS
from .reader import (
    DEFAULT_MAX_DOC_BYTES,
    ENCODING_ERRORS,
    FOLDER_SUFFIXES,
    R_TYPE,
    SourceReport,
    check_size,
    drop_unmarked,
    duplicate_id_error,
    file_document,
    record_document,
    strip_shared_title_affix,
)
from .rules import search_table

__all__ = [
    "EXPORT_FORMAT",
    "ChunkRows",
    "INPAGE_DTYPES",
    "InPageIndex",
    "dump_json",
    "deep_sizeof",
    "float16_bytes",
    "read_export",
]

INPAGE_DTYPES = ("float16", "float32")  # int8 rows cannot be restored exactly after an import
EXPORT_FORMAT = "websem-index"
EXPORT_VERSION = 1
EXPORT_META = "websem-index.json"
STATE_FILE = "index/state.json"
_SPLIT = ["heading", "paragraph", "sentence", "word"]
_WHERE = "the in-page index (remove it first to replace it)"
_F16_MAX = 65520.0  # from here on IEEE half rounds to infinity (numpy does; struct raises)
_SLICE = 4096  # values converted per struct call: bounds the transient Python floats


def dump_json(obj: object) -> bytes:
    """Compact, deterministic JSON: the bytes build/index.py writes for the same object."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def float16_bytes(values: array) -> bytes:
    """float32 values → little-endian IEEE half, rounded like numpy's ``astype("<f2")``: to
    nearest, ties to even, overflow to ±inf, NaN kept as a quiet NaN with its sign."""
    out = bytearray()
    # A slice at a time: ``struct.pack(*values)`` makes one Python float (24 bytes) per value,
    # and Pyodide's heap keeps the high-water mark of such a peak for good.
    for at in range(0, len(values), _SLICE):
        part = values[at:at + _SLICE]
        try:
            out += struct.pack(f"<{len(part)}e", *part)
            continue
        except OverflowError:  # a value at or past 65520: struct refuses, numpy gives inf
            pass
        for v in part:
            if math.isfinite(v) and abs(v) >= _F16_MAX:
                v = math.copysign(math.inf, v)
            out += struct.pack("<e", v)
    return bytes(out)


def _float32_from16(raw: bytes | memoryview) -> array:
    """Little-endian IEEE half → float32 values (exact), a slice at a time (see float16_bytes)."""
    out = array("f")
    for at in range(0, len(raw), 2 * _SLICE):
        part = raw[at:at + 2 * _SLICE]
        out.extend(struct.unpack(f"<{len(part) // 2}e", part))
    return out


def deep_sizeof(obj: object, exclude: Iterable[object] = (), seen: set[int] | None = None) -> int:
    """``sys.getsizeof`` summed over ``obj`` and every object it reaches (containers, instance
    attributes), each counted once; ``exclude`` (and what only they reach) is left out, as are
    modules, classes and functions (shared code, not data). ``seen``: ids already counted (by an
    earlier call given the same set), left out and added to."""
    seen = set() if seen is None else seen
    seen.update(id(x) for x in exclude if x is not None)
    skip = (type, type(sys), type(deep_sizeof), type(len))
    total, todo = 0, [obj]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen or isinstance(x, skip):
            continue
        seen.add(id(x))
        total += sys.getsizeof(x)
        if isinstance(x, dict):
            todo.extend(x.keys())
            todo.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            todo.extend(x)
        if hasattr(x, "__dict__"):
            todo.append(x.__dict__)
        for slot in getattr(type(x), "__slots__", ()):
            todo.append(getattr(x, slot, None))
    return total


@dataclass
class _Entry:
    """One document of the index: its document (title sources kept for the site-wide rules), its
    chunks (``doc`` index 0: renumbered when the files are written) and vectors."""

    doc: Document
    marked: bool
    chunks: list[Chunk]
    # The rows as index/vectors.bin stores them (the index's vector_dtype, little-endian),
    # n_chunks x dims; None while pending. Converted once, when the document is added.
    vectors: bytes | None = None


class ChunkRows(Sequence):
    """``index/chunks.json``'s rows of some documents, each made when read
    (``{"doc", "anchor", "start", "end", "text"}``): the chunk texts stay in the documents'
    chunks, held once (by the index, the lexical build and the ranker alike)."""

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._entries = list(entries)
        self._chunks = [c for e in self._entries for c in e.chunks]
        self._doc = array("i", [i for i, e in enumerate(self._entries) for _ in e.chunks])

    def __len__(self) -> int:
        return len(self._chunks)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        c = self._chunks[i]
        return {"doc": self._doc[i], "anchor": c.anchor, "start": c.start, "end": c.end, "text": c.text}

    def doc_bytes(self) -> bytes:
        """Each chunk's document index, int32 little-endian."""
        out = array("i", self._doc)
        if sys.byteorder == "big":
            out.byteswap()
        return out.tobytes()

    def vectors(self) -> bytes:
        """index/vectors.bin: the documents' rows, in chunk order."""
        return b"".join(e.vectors or b"" for e in self._entries)


class InPageIndex:
    """Documents prepared, embedded by the caller and added; the index files of those documents."""

    def __init__(self, tokenizer, *, model_sha256: str, dims: int, max_seq_length: int, model_id: str = "",
                 max_tokens: int | None = None, overlap_tokens: int | None = None,
                 vector_dtype: str = "float16", encoding_errors: str = "strict",
                 max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES) -> None:
        """``tokenizer``: the bundle's WordPiece tokenizer with ``max_length=max_seq_length``;
        ``max_tokens``/``overlap_tokens``: the chunk budget (None: ``max_seq_length - 2`` and
        the build's default overlap, as `websem build` chooses them)."""
        if vector_dtype not in INPAGE_DTYPES:
            raise WebsemError(f"websem: vector_dtype {vector_dtype!r} is not supported in the page; allowed: "
                              + ", ".join(INPAGE_DTYPES))
        if encoding_errors not in ENCODING_ERRORS:
            raise WebsemError(f"websem: encoding_errors={encoding_errors!r}; allowed: " + ", ".join(ENCODING_ERRORS))
        self.tokenizer = tokenizer
        self.model_sha256, self.model_id = str(model_sha256), str(model_id)
        self.dims, self.max_seq_length = int(dims), int(max_seq_length)
        self.max_tokens = self.max_seq_length - 2 if max_tokens is None else int(max_tokens)
        self.overlap = default_overlap(self.max_tokens) if overlap_tokens is None else int(overlap_tokens)
        self.vector_dtype, self.encoding_errors = vector_dtype, encoding_errors
        self.max_doc_bytes = int(max_doc_bytes)
        self.report = SourceReport(kind="inpage")
        self._docs: dict[str, _Entry] = {}  # committed, in the order they were added
        self._pending: dict[str, _Entry] = {}

    @classmethod
    def for_bundle(cls, tokenizer, manifest: Mapping, **options) -> InPageIndex:
        """An empty index for the bundle whose ``manifest.json`` is ``manifest`` (its model and
        chunking settings); ``options``: ``vector_dtype``, ``encoding_errors``, ``max_doc_bytes``."""
        model = manifest.get("model") or {}
        chunking = (manifest.get("index") or {}).get("chunking") or {}
        if not model.get("sha256") or not model.get("dims") or not model.get("max_seq_length"):
            raise WebsemError("websem: the bundle manifest has no model sha256/dims/max_seq_length; "
                              "rebuild the bundle with `websem build`")
        return cls(tokenizer, model_sha256=model["sha256"], model_id=model.get("id", ""), dims=model["dims"],
                   max_seq_length=model["max_seq_length"], max_tokens=chunking.get("max_tokens"),
                   overlap_tokens=chunking.get("overlap_tokens"), **options)

    # ------------------------------------------------------------------ adding documents

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def ids(self) -> list[str]:
        """The committed documents' ids, in index order."""
        return list(self._docs)

    def prepare(self, item: Mapping, data: bytes | None = None) -> dict:
        """Read, chunk and tokenize one document (module docstring). ``item``: a record
        ``{"id"?, "title"?, "text"?, "url"?, "meta"?}`` (or a ``corpus.jsonl`` line's ``_id`` and
        ``metadata``), or ``{"name", "id"?}`` with the file's
        bytes in ``data``. Returns ``{"id", "title", "skipped", "n_chunks", "chunks": [{"text",
        "anchor", "start", "end", "input_ids"}]}``; ``skipped`` is the build's reason or None."""
        if not isinstance(item, Mapping):
            raise WebsemError("websem: a document is an object {id, title, text, url?, meta?} or a file "
                              "{name, id?} with its bytes")
        before = len(self.report.skipped)
        if data is not None or "name" in item:
            doc_id, doc, marked = self._read_file(item, data)
        else:
            doc_id, doc, marked = self._read_record(item)
        if doc is None:
            reason = self.report.skipped[-1]["reason"] if len(self.report.skipped) > before else "no text"
            return {"id": doc_id, "title": "", "skipped": reason, "n_chunks": 0, "chunks": []}
        chunks = chunk_document(doc, 0, self.tokenizer.count_tokens, self.max_tokens, self.overlap)
        # The chunks hold the text the index needs: the document keeps only its title sources.
        self._pending[doc_id] = _Entry(replace(doc, text="", sections=[]), marked, chunks)
        rows = [{"text": c.text, "anchor": c.anchor, "start": c.start, "end": c.end,
                 "input_ids": self.tokenizer.encode(c.text).ids} for c in chunks]
        return {"id": doc_id, "title": doc.title, "skipped": None, "n_chunks": len(rows), "chunks": rows}

    def _check_new(self, doc_id: str) -> None:
        if doc_id in self._docs or doc_id in self._pending:
            raise duplicate_id_error(doc_id, _WHERE)

    def _read_file(self, item: Mapping, data: bytes | None) -> tuple[str, Document | None, bool]:
        name = str(item.get("name") or "")
        if not name or data is None:
            raise WebsemError(f"websem: a file needs a name and its bytes (got name {name!r}, "
                              f"{'no' if data is None else len(data)} bytes)")
        rel = str(item.get("id") or PurePosixPath(name).name)
        self._check_new(rel)
        if PurePosixPath(rel).suffix.lower() not in FOLDER_SUFFIXES:  # the build never reads those
            self.report.skip(rel, R_TYPE)
            return rel, None, False
        check_size(len(data), rel, self.max_doc_bytes)
        doc, marked = file_document(bytes(data), rel, self.encoding_errors, self.report)
        return rel, doc, marked

    def _read_record(self, item: Mapping) -> tuple[str, Document | None, bool]:
        title, text = item.get("title"), item.get("text")
        doc_id = item.get("id") if item.get("id") not in (None, "") else item.get("_id")  # BEIR's names too
        if doc_id is None or doc_id == "":
            doc_id = hashlib.sha256(f"{title or ''}\x00{text or ''}".encode()).hexdigest()[:16]
        doc_id = str(doc_id)
        self._check_new(doc_id)
        size = len(str(title or "").encode("utf-8")) + len(str(text or "").encode("utf-8"))
        check_size(size, f"document {doc_id!r}", self.max_doc_bytes)
        meta = item.get("meta") if item.get("meta") is not None else item.get("metadata")
        doc = record_document(doc_id, title, text, item.get("url"), meta, "in-page record", self.report)
        return doc_id, doc, False

    def add(self, doc_id: str, vectors: bytes) -> None:
        """Commit a prepared document with its chunk vectors: float32 little-endian, one row of
        ``dims`` per chunk in chunk order (what onnxruntime-web returns, batch 1)."""
        entry = self._pending.get(doc_id)
        if entry is None:
            raise WebsemError(f"websem: document {doc_id!r} was not prepared (or was added already); "
                              "call prepare before add")
        want = len(entry.chunks) * self.dims * 4
        if len(vectors) != want:
            raise WebsemError(f"websem: document {doc_id!r} has {len(entry.chunks)} chunks, so its vectors are "
                              f"{want} bytes (float32 x {self.dims} per chunk), got {len(vectors)}")
        entry.vectors = self._stored(vectors)
        del self._pending[doc_id]
        self._docs[doc_id] = entry

    def _stored(self, float32: bytes | memoryview) -> bytes:
        """float32 little-endian rows as this index stores them (its vector_dtype)."""
        if self.vector_dtype == "float32":
            return bytes(float32)
        values = array("f")
        values.frombytes(float32)
        return float16_bytes(values)

    def _restored(self, rows: bytes, dtype: str) -> bytes:
        """An exported document's rows (``dtype``, little-endian) as this index stores them."""
        if dtype == self.vector_dtype:
            return rows
        if dtype == "float16":  # into a float32 index: exact
            values = _float32_from16(rows)
            if sys.byteorder == "big":
                values.byteswap()
            return values.tobytes()
        return self._stored(rows)

    def remove(self, ids: Iterable[str]) -> int:
        """Remove documents (committed or pending) by id; returns how many were removed."""
        n = 0
        for doc_id in ids:
            doc_id = str(doc_id)
            if self._docs.pop(doc_id, None) is not None or self._pending.pop(doc_id, None) is not None:
                n += 1
        return n

    def clear(self) -> None:
        """Remove every document."""
        self._docs.clear()
        self._pending.clear()
        self.report = SourceReport(kind="inpage")

    def info(self) -> dict:
        """Counts and settings (what the page shows)."""
        return {"docs": len(self._docs), "chunks": sum(len(e.chunks) for e in self._docs.values()),
                "pending": len(self._pending), "dims": self.dims, "vector_dtype": self.vector_dtype,
                "model_sha256": self.model_sha256}

    # ------------------------------------------------------------------ the index files

    def _present(self) -> tuple[list[Document], list[_Entry]]:
        """The documents the files hold (site-wide rules applied to copies: the originals keep
        their raw titles for when documents are added or removed later)."""
        entries = list(self._docs.values())
        docs = [replace(e.doc) for e in entries]
        kept = drop_unmarked(docs, [e.marked for e in entries], SourceReport())
        if len(kept) != len(docs):
            keep = {id(d) for d in kept}
            entries = [e for e, d in zip(entries, docs, strict=True) if id(d) in keep]
        strip_shared_title_affix(kept)
        return kept, entries

    def _tables(self) -> tuple[ChunkRows, list[dict], LexicalIndex]:
        """chunks.json's rows (made when read), docs.json's rows and the BM25 index of the
        documents present."""
        docs, entries = self._present()
        doc_rows = []
        for d in docs:
            row = {"id": d.id, "title": d.title, "url": d.url}
            if d.meta:
                row["meta"] = d.meta
            doc_rows.append(row)
        chunk_rows = ChunkRows(entries)
        return chunk_rows, doc_rows, build_lexical(chunk_rows, doc_rows)

    def _section(self, n_docs: int, n_chunks: int, lexical: LexicalIndex) -> dict:
        """The manifest's ``index`` section, in the key order build_bundle writes (write_index,
        the lexical record, apply_layout's "layout" first, then model_sha256 and chunking)."""
        files = {"chunks": "index/chunks.json", "docs": "index/docs.json", "lexical": "index/lexical.bin",
                 "vectors": "index/vectors.bin"}
        return {
            "layout": "flat", "docs": n_docs, "chunks": n_chunks, "dims": self.dims,
            "vector_dtype": self.vector_dtype, "files": files,
            "lexical": {"k1": lexical.k1, "b": lexical.b, "terms": lexical.n_terms, "fields": lexical.fields},
            "model_sha256": self.model_sha256,
            "chunking": {"max_tokens": self.max_tokens, "overlap_tokens": self.overlap, "split": list(_SPLIT)},
        }

    @staticmethod
    def _search_table(doc_rows: list[dict]) -> dict:
        present = {f for r in doc_rows for f in (r.get("meta") or {}) if f in FACET_FIELDS}
        return search_table(facets=[f for f in FACET_FIELDS if f in present])

    def files(self) -> dict[str, bytes]:
        """The index files for the committed documents, as `websem build` writes them:
        ``index/chunks.json``, ``index/docs.json``, ``index/lexical.bin``, ``index/vectors.bin``,
        plus ``index.json`` (the manifest's ``index`` section) and ``search.json`` (its
        ``search`` table)."""
        chunk_rows, doc_rows, lexical = self._tables()
        return {
            "index/chunks.json": b"[" + b",".join(dump_json(r) for r in chunk_rows) + b"]",
            "index/docs.json": dump_json(doc_rows),
            "index/lexical.bin": lexical.to_bytes(),
            "index/vectors.bin": chunk_rows.vectors(),
            "index.json": dump_json(self._section(len(doc_rows), len(chunk_rows), lexical)),
            "search.json": dump_json(self._search_table(doc_rows)),
        }

    def search_state(self) -> tuple[dict[str, bytes], ChunkRows, list[dict], dict | None, dict]:
        """What the page searches with, without writing chunks.json and docs.json (their rows
        stay here, for the ranker): ``(files, chunk_rows, doc_rows, analyzer, search)``; files
        ``index.json``, ``search.json``, ``index/vectors.bin``, ``index/lexical.bin`` (the bytes
        :meth:`files` gives) and ``chunk_doc.bin`` (each chunk's document, int32 little-endian)."""
        chunk_rows, doc_rows, lexical = self._tables()
        search = self._search_table(doc_rows)
        files = {
            "index.json": dump_json(self._section(len(doc_rows), len(chunk_rows), lexical)),
            "search.json": dump_json(search),
            "index/vectors.bin": chunk_rows.vectors(),
            "index/lexical.bin": lexical.to_bytes(),
            "chunk_doc.bin": chunk_rows.doc_bytes(),
        }
        return files, chunk_rows, doc_rows, lexical.analyzer, search

    # ------------------------------------------------------------------ export / import

    def _state(self) -> bytes:
        """What adding more documents later needs besides the index files: each document's raw
        title and where it came from (the site-wide ``<title>`` rule) and its body mark."""
        return dump_json([{"id": k, "title": e.doc.title, "title_from": e.doc.title_from,
                           "page_title": e.doc.page_title, "marked": e.marked} for k, e in self._docs.items()])

    def export(self) -> bytes:
        """The index as one tar archive (deterministic: same documents, same bytes):
        ``websem-index.json`` (format, model, the manifest ``index`` section and ``search``
        table, every file's sha256 and size), the ``index/`` files and ``index/state.json``."""
        files = self.files()
        section, search = json.loads(files.pop("index.json")), json.loads(files.pop("search.json"))
        files[STATE_FILE] = self._state()
        meta = {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
                "model": {"id": self.model_id, "sha256": self.model_sha256, "dims": self.dims,
                          "max_seq_length": self.max_seq_length},
                "index": section, "search": search,
                "files": {rel: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
                          for rel, b in sorted(files.items())}}
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel, data in [(EXPORT_META, json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8")),
                              *sorted(files.items())]:
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def load_export(self, data: bytes) -> int:
        """Replace this index with an exported one (verified: format, model, every sha256);
        returns the number of documents."""
        meta, files = read_export(data, model_sha256=self.model_sha256, model_id=self.model_id)
        section = meta["index"]
        if section["dims"] != self.dims and section["docs"]:
            raise WebsemError(f"websem: the exported index holds {section['dims']}-d vectors, this model makes "
                              f"{self.dims}-d ones; re-index the documents")
        dtype = section["vector_dtype"]
        if dtype not in INPAGE_DTYPES:
            raise WebsemError(f"websem: the exported index stores {dtype} vectors; the page restores "
                              f"{', '.join(INPAGE_DTYPES)}; export it again from a page")
        chunks = json.loads(files["index/chunks.json"])
        doc_rows = json.loads(files["index/docs.json"])
        state = json.loads(files.get(STATE_FILE, b"[]")) or [{"id": r["id"]} for r in doc_rows]
        raw = files["index/vectors.bin"]
        width = 2 if dtype == "float16" else 4
        if len(raw) != len(chunks) * self.dims * width or len(state) != len(doc_rows):
            raise WebsemError("websem: the exported index's vectors, chunks and documents do not match; "
                              "export it again from a page")
        row_bytes = self.dims * width
        by_doc: dict[int, list[int]] = {}
        for i, c in enumerate(chunks):
            by_doc.setdefault(int(c["doc"]), []).append(i)
        docs: dict[str, _Entry] = {}
        for i, (row, st) in enumerate(zip(doc_rows, state, strict=True)):
            text_chunks = [Chunk(0, c["anchor"], c["start"], c["end"], c["text"])
                           for c in (chunks[j] for j in by_doc.get(i, []))]
            doc = Document(row["id"], st.get("title", row["title"]), row["url"], "", [], row.get("meta") or {},
                           st.get("title_from", ""), st.get("page_title", ""))
            own = by_doc.get(i, [])
            vec = b"".join(raw[j * row_bytes:(j + 1) * row_bytes] for j in own) if own else b""
            docs[row["id"]] = _Entry(doc, bool(st.get("marked")), text_chunks, self._restored(vec, dtype))
        self.clear()
        self._docs = docs
        return len(docs)


def read_export(data: bytes, *, model_sha256: str | None = None, model_id: str = "") -> tuple[dict, dict[str, bytes]]:
    """``(websem-index.json, {path: bytes})`` of an exported index, every file checked against
    its sha256; with ``model_sha256``, an index made with another model is refused."""
    try:
        with tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:") as tar:
            files = {}
            for m in tar.getmembers():
                if m.isfile():
                    f = tar.extractfile(m)
                    files[m.name] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError) as e:
        raise WebsemError(f"websem: the data is not an exported websem index ({e}); pass a file written by "
                          "the page's export()") from None
    try:
        meta = json.loads(files.pop(EXPORT_META))
    except (KeyError, ValueError):
        raise WebsemError(f"websem: the archive has no valid {EXPORT_META}, so it is not an exported websem "
                          "index; pass a file written by the page's export()") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise WebsemError(f"websem: {EXPORT_META} has format {got!r}, "
                          f"expected {EXPORT_FORMAT!r}; pass a file written by the page's export()")
    if meta.get("format_version") != EXPORT_VERSION:
        raise WebsemError(f"websem: exported index format_version {meta.get('format_version')!r} is not supported "
                          f"(this websem reads {EXPORT_VERSION}); export it again with this version")
    model = meta.get("model") or {}
    if model_sha256 is not None and model.get("sha256") != model_sha256:
        raise WebsemError(f"websem: the exported index was made with model {model.get('id') or '?'} "
                          f"(sha256 {str(model.get('sha256'))[:12]}), not with this bundle's model "
                          f"{model_id or '?'} (sha256 {model_sha256[:12]}); use it with a bundle of that model, "
                          "or index the documents again with this one")
    table = meta.get("files") or {}
    for rel, want in table.items():
        got = files.get(rel)
        if got is None or hashlib.sha256(got).hexdigest() != want.get("sha256") or len(got) != want.get("size"):
            raise WebsemError(f"websem: {rel} of the exported index is missing or does not match its sha256; "
                              "the file is damaged, export it again")
    for rel in ("index/chunks.json", "index/docs.json", "index/lexical.bin", "index/vectors.bin"):
        if rel not in table:
            raise WebsemError(f"websem: the exported index lists no {rel}; export it again")
    return meta, {rel: files[rel] for rel in table}
