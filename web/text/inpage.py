"""The in-page index: documents added in the browser, indexed by the code `websem build` runs.

A page (web/src, through bridge.py in Pyodide) feeds documents one at a time:

1. :meth:`InPageIndex.prepare` reads one record or file with the build's reading rules
   (inpage_read.py over reader.py: size limit, binary and UTF-8 rules, extraction by type,
   empty-text skip), chunks it
   with the build's chunker (chunk.py) and tokenizes each chunk exactly as the build embeds it
   (``[CLS]``/``[SEP]``, truncated at the model's ``max_seq_length``);
2. the page embeds each chunk with onnxruntime-web, batch 1 (the build's vectors equal batch-1
   runs, docs/architecture.md "Determinism");
3. :meth:`InPageIndex.add` commits the document with its float32 vectors and returns them as the
   index stores them (float16 rows rounded like numpy by default). In the page
   (``keep_vectors=False``) the worker that scores them keeps those rows and hands them back for
   :meth:`InPageIndex.files` and :meth:`InPageIndex.export`, so they are held once; elsewhere the
   index keeps them itself.

Each document is one compact entry (inpage_rows.py) holding its chunk texts once, zlib-compressed:
``chunks.json``'s and ``docs.json``'s rows are made from them when read, for the BM25 build, the
files and the page's ranker (:meth:`InPageIndex.search_state`, which gives the page only the BM25
index, each chunk's document and the documents' order, so neither Pyodide nor JS parses a
``chunks.json`` copy).
The BM25 index is built once per change of the documents: :meth:`InPageIndex.search_state`
keeps its bytes for the :meth:`InPageIndex.export` that follows (the page's reload, then save).

:meth:`InPageIndex.files` writes the flat index files (``index/chunks.json``, ``docs.json``,
``lexical.bin``, ``vectors.bin``) exactly as `websem build` writes them for the same documents in
the same order and the same vectors: the same JSON bytes (build/index.py), the BM25 index from
lexbuild.py, float16 rows rounded like numpy (``struct`` format ``e``: IEEE round-half-even,
a bounded slice at a time).
Site-wide rules are applied there too, over the documents present: the ``<title>`` affix most
pages share is stripped, and pages without ``data-websem-body`` are left out when another page
has one. :meth:`export` / :meth:`load_export` move the index out of the page and back
(`websem query BUNDLE --index EXPORT` reads it; the archive: inpage_export.py). Stdlib only.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterable, Mapping

from .chunk import chunk_document, default_overlap
from .errors import WebsemError
from .inpage_export import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    STATE_FILE,
    entries_from_export,
    read_export,
    tar_parts,
    write_tar,
)
from .inpage_read import item_label, read_file, read_record
from .inpage_rows import ByteSource, ChunkRows, DocRows, Entry, deep_sizeof, dump_json, float16_bytes, float32_from16
from .lexbuild import build_lexical
from .meta import FACET_FIELDS
from .reader import (
    DEFAULT_MAX_DOC_BYTES,
    ENCODING_ERRORS,
    SourceReport,
    drop_unmarked,
    duplicate_id_error,
    strip_shared_title_affix,
    valid_unicode,
)
from .rules import search_table

__all__ = [
    "EXPORT_FORMAT",
    "ByteSource",
    "ChunkRows",
    "INPAGE_DTYPES",
    "InPageIndex",
    "dump_json",
    "deep_sizeof",
    "float16_bytes",
    "read_export",
]

INPAGE_DTYPES = ("float16", "float32")  # int8 rows cannot be restored exactly after an import
_SPLIT = ["heading", "paragraph", "sentence", "word"]
_WHERE = "the in-page index (remove it first to replace it)"


class _Tables:
    """The files' rows and BM25 index of the documents present, for one version of the index:
    the rows are views of the entries; of the BM25 index only its bytes and header fields are
    kept (its build's dicts and lists are transient)."""

    __slots__ = ("chunk_rows", "doc_rows", "lexical", "lexical_info", "analyzer", "version")

    def __init__(self, chunk_rows: ChunkRows, doc_rows: DocRows, version: int) -> None:
        lexical = build_lexical(chunk_rows, doc_rows)
        self.chunk_rows, self.doc_rows, self.version = chunk_rows, doc_rows, version
        self.lexical = lexical.to_bytes()
        self.lexical_info = {"k1": lexical.k1, "b": lexical.b, "terms": lexical.n_terms, "fields": lexical.fields}
        self.analyzer = lexical.analyzer


class InPageIndex:
    """Documents prepared, embedded by the caller and added; the index files of those documents."""

    def __init__(self, tokenizer, *, model_sha256: str, dims: int, max_seq_length: int, model_id: str = "",
                 max_tokens: int | None = None, overlap_tokens: int | None = None,
                 vector_dtype: str = "float16", encoding_errors: str = "strict",
                 max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES, keep_vectors: bool = True) -> None:
        """``tokenizer``: the bundle's WordPiece tokenizer with ``max_length=max_seq_length``;
        ``max_tokens``/``overlap_tokens``: the chunk budget (None: ``max_seq_length - 2`` and
        the build's default overlap, as `websem build` chooses them); ``keep_vectors``: whether
        the index holds the rows :meth:`add` returns (False: the caller holds them and passes
        index/vectors.bin to :meth:`files` and :meth:`export`)."""
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
        self.keep_vectors = bool(keep_vectors)
        self.report = SourceReport(kind="inpage")
        self._docs: dict[str, Entry] = {}  # committed, in the order they were added
        self._pending: dict[str, Entry] = {}
        # Bumped by every change of the committed documents: the BM25 build of one version
        # serves search_state and the export after it.
        self._version = 0
        self._tables_cache: _Tables | None = None

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
        item = valid_unicode(item, item_label(item), "", self.encoding_errors, self.report)
        if data is not None or "name" in item:
            doc_id, doc, marked = read_file(item, data, self.encoding_errors, self.max_doc_bytes, self.report,
                                            self._check_new)
        else:
            doc_id, doc, marked = read_record(item, self.max_doc_bytes, self.report, self._check_new)
        if doc is None:
            reason = self.report.skipped[-1]["reason"] if len(self.report.skipped) > before else "no text"
            return {"id": doc_id, "title": "", "skipped": reason, "n_chunks": 0, "chunks": []}
        chunks = chunk_document(doc, 0, self.tokenizer.count_tokens, self.max_tokens, self.overlap)
        # The chunks hold the text the index needs: of the document, the entry keeps its title
        # sources, url and meta.
        self._pending[doc_id] = Entry(doc, marked, chunks)
        rows = [{"text": c.text, "anchor": c.anchor, "start": c.start, "end": c.end,
                 "input_ids": self.tokenizer.encode(c.text).ids} for c in chunks]
        return {"id": doc_id, "title": doc.title, "skipped": None, "n_chunks": len(rows), "chunks": rows}

    def _check_new(self, doc_id: str) -> None:
        if doc_id in self._docs or doc_id in self._pending:
            raise duplicate_id_error(doc_id, _WHERE)

    def add(self, doc_id: str, vectors: bytes) -> bytes:
        """Commit a prepared document with its chunk vectors: float32 little-endian, one row of
        ``dims`` per chunk in chunk order (what onnxruntime-web returns, batch 1). Returns its
        rows as index/vectors.bin stores them (the index's vector_dtype, little-endian)."""
        entry = self._pending.get(doc_id)
        if entry is None:
            raise WebsemError(f"websem: document {doc_id!r} was not prepared (or was added already); "
                              "call prepare before add")
        want = len(entry) * self.dims * 4
        if len(vectors) != want:
            raise WebsemError(f"websem: document {doc_id!r} has {len(entry)} chunks, so its vectors are "
                              f"{want} bytes (float32 x {self.dims} per chunk), got {len(vectors)}")
        rows = self._stored(vectors)
        entry.vectors = rows if self.keep_vectors else None
        del self._pending[doc_id]
        self._docs[doc_id] = entry
        self._changed()
        return rows

    def _changed(self) -> None:
        self._version += 1
        self._tables_cache = None

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
            values = float32_from16(rows)
            if sys.byteorder == "big":
                values.byteswap()
            return values.tobytes()
        return self._stored(rows)

    def remove(self, ids: Iterable[str]) -> int:
        """Remove documents (committed or pending) by id; returns how many were removed."""
        n = 0
        for doc_id in ids:
            doc_id = str(doc_id)
            if self._docs.pop(doc_id, None) is not None:
                n += 1
                self._changed()
            elif self._pending.pop(doc_id, None) is not None:
                n += 1
        return n

    def clear(self) -> None:
        """Remove every document."""
        self._docs.clear()
        self._pending.clear()
        self.report = SourceReport(kind="inpage")
        self._changed()

    def info(self) -> dict:
        """Counts and settings (what the page shows)."""
        return {"docs": len(self._docs), "chunks": sum(len(e) for e in self._docs.values()),
                "pending": len(self._pending), "dims": self.dims, "vector_dtype": self.vector_dtype,
                "model_sha256": self.model_sha256}

    # ------------------------------------------------------------------ the index files

    def _tables(self, lexical: bool = True) -> _Tables:
        """The rows and BM25 index of the documents the files hold: the site-wide rules applied
        to copies of their title sources (the entries keep their raw titles for when documents
        are added or removed later). Built once per version of the index (and again when its
        BM25 bytes were let go by an export and ``lexical`` asks for them)."""
        cached = self._tables_cache
        if cached is not None and cached.version == self._version and (cached.lexical is not None or not lexical):
            return cached
        self._tables_cache = None  # the previous version's BM25 bytes are garbage before the build
        entries = list(self._docs.values())
        docs = [e.document() for e in entries]
        kept = drop_unmarked(docs, [e.marked for e in entries], SourceReport())
        if len(kept) != len(docs):
            keep = {id(d) for d in kept}
            entries = [e for e, d in zip(entries, docs, strict=True) if id(d) in keep]
        strip_shared_title_affix(kept)
        tables = _Tables(ChunkRows(entries), DocRows(entries, [d.title for d in kept]), self._version)
        self._tables_cache = tables
        return tables

    def doc_ids(self) -> list[str]:
        """The ids of the documents the index files hold, in index order (the order of
        index/vectors.bin's rows; a page without the body mark is left out when another has it)."""
        return self._tables().doc_rows.ids()

    def _section(self, tables: _Tables) -> dict:
        """The manifest's ``index`` section, in the key order build_bundle writes (write_index,
        the lexical record, apply_layout's "layout" first, then model_sha256 and chunking)."""
        files = {"chunks": "index/chunks.json", "docs": "index/docs.json", "lexical": "index/lexical.bin",
                 "vectors": "index/vectors.bin"}
        return {
            "layout": "flat", "docs": len(tables.doc_rows), "chunks": len(tables.chunk_rows), "dims": self.dims,
            "vector_dtype": self.vector_dtype, "files": files, "lexical": tables.lexical_info,
            "model_sha256": self.model_sha256,
            "chunking": {"max_tokens": self.max_tokens, "overlap_tokens": self.overlap, "split": list(_SPLIT)},
        }

    @staticmethod
    def _search_table(doc_rows: DocRows) -> dict:
        present = {f for r in doc_rows for f in (r.get("meta") or {}) if f in FACET_FIELDS}
        return search_table(facets=[f for f in FACET_FIELDS if f in present])

    def _vector_parts(self, tables: _Tables, vectors: ByteSource | bytes | memoryview | None) -> Callable[
            [], Iterable[bytes]]:
        """index/vectors.bin of ``tables``' documents in pieces: from the entries, or from
        ``vectors`` (the caller's, when the index does not keep them), its size checked."""
        if vectors is None:
            if not self.keep_vectors:
                raise WebsemError("websem: this in-page index does not keep its vectors (the page's worker "
                                  "holds them); pass index/vectors.bin of the documents present, in index order")
            return tables.chunk_rows.vector_parts
        source = vectors if isinstance(vectors, ByteSource) else ByteSource.of(vectors)
        want = len(tables.chunk_rows) * self.dims * (2 if self.vector_dtype == "float16" else 4)
        if len(source) != want:
            raise WebsemError(f"websem: the index holds {len(tables.chunk_rows)} chunks of {self.dims} "
                              f"{self.vector_dtype} values, so index/vectors.bin is {want} bytes, got "
                              f"{len(source)}; pass the rows add() returned, in index order (search_state's "
                              "doc_ids.json)")
        return source.parts

    def files(self, vectors: ByteSource | bytes | memoryview | None = None) -> dict[str, bytes]:
        """The index files for the committed documents, as `websem build` writes them:
        ``index/chunks.json``, ``index/docs.json``, ``index/lexical.bin``, ``index/vectors.bin``,
        plus ``index.json`` (the manifest's ``index`` section) and ``search.json`` (its
        ``search`` table). ``vectors``: index/vectors.bin, given when the index does not keep
        its vectors."""
        t = self._tables()
        parts = self._vector_parts(t, vectors)
        return {
            "index/chunks.json": b"".join(t.chunk_rows.json_parts()),
            "index/docs.json": t.doc_rows.json(),
            "index/lexical.bin": t.lexical,
            "index/vectors.bin": b"".join(parts()),
            "index.json": dump_json(self._section(t)),
            "search.json": dump_json(self._search_table(t.doc_rows)),
        }

    def search_state(self) -> tuple[dict[str, bytes], ChunkRows, DocRows, dict | None, dict]:
        """What the page searches with, without writing chunks.json and docs.json (their rows
        stay here, for the ranker): ``(files, chunk_rows, doc_rows, analyzer, search)``; files
        ``index.json``, ``search.json``, ``index/lexical.bin`` (the bytes :meth:`files` gives),
        ``chunk_doc.bin`` (each chunk's document, int32 little-endian), ``doc_ids.json`` (the
        documents' ids in index order: the order of index/vectors.bin's rows) and, when the
        index keeps its vectors, ``index/vectors.bin``."""
        t = self._tables()
        search = self._search_table(t.doc_rows)
        files = {
            "index.json": dump_json(self._section(t)),
            "search.json": dump_json(search),
            "index/lexical.bin": t.lexical,
            "chunk_doc.bin": t.chunk_rows.doc_bytes(),
            "doc_ids.json": dump_json(t.doc_rows.ids()),
        }
        if self.keep_vectors:
            files["index/vectors.bin"] = b"".join(t.chunk_rows.vector_parts())
        return files, t.chunk_rows, t.doc_rows, t.analyzer, search

    # ------------------------------------------------------------------ export / import

    def _state(self) -> bytes:
        """What adding more documents later needs besides the index files: each document's raw
        title and where it came from (the site-wide ``<title>`` rule) and its body mark."""
        return dump_json([{"id": k, "title": e.title, "title_from": e.title_from,
                           "page_title": e.page_title, "marked": e.marked} for k, e in self._docs.items()])

    def _export(self, vectors: ByteSource | bytes | memoryview | None) -> tuple[dict, dict, _Tables]:
        """The export's header fields, its members (functions giving their bytes in pieces) and
        the tables they come from. The BM25 bytes kept since :meth:`search_state` are used and
        let go afterwards (the page's search holds its own copy; the page saves once after each
        reload), the rows stay (:meth:`chunks_json` reads them)."""
        t = self._tables()
        vector_parts = self._vector_parts(t, vectors)
        lexical = t.lexical
        t.lexical = None
        state = self._state()
        meta = {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
                "model": {"id": self.model_id, "sha256": self.model_sha256, "dims": self.dims,
                          "max_seq_length": self.max_seq_length},
                "index": self._section(t), "search": self._search_table(t.doc_rows)}
        return meta, {
            "index/chunks.json": t.chunk_rows.json_parts,
            "index/docs.json": lambda: [t.doc_rows.json()],
            "index/lexical.bin": lambda: [lexical],
            "index/vectors.bin": vector_parts,
            STATE_FILE: lambda: [state],
        }, t

    def export(self, vectors: ByteSource | bytes | memoryview | None = None) -> bytearray:
        """The index as one tar archive (inpage_export.py; deterministic: same documents, same
        bytes). Written straight into a buffer of its size, from the entries: no whole
        ``chunks.json`` and no second copy of the archive is made. ``vectors``:
        index/vectors.bin, given when the index does not keep its vectors."""
        meta, members, _ = self._export(vectors)
        return write_tar(meta, members)

    def export_parts(self, vectors: ByteSource | bytes | memoryview | None = None) -> tuple[int, list[list]]:
        """:meth:`export`'s archive for a caller that assembles it (the page, which holds the
        vectors): ``(size, parts)`` as ``inpage_export.tar_parts`` gives them, with
        index/chunks.json and index/vectors.bin left to the caller (:meth:`chunks_json` gives the
        first a piece at a time). So the archive, chunks.json and the vectors are never held
        whole here: Pyodide's heap keeps its high-water mark for good."""
        meta, members, _ = self._export(vectors)
        return tar_parts(meta, members, external=("index/chunks.json", "index/vectors.bin"))

    def chunks_json(self, start: int, end: int) -> bytes:
        """The bytes of index/chunks.json that hold rows ``start`` to ``end`` (exclusive): with
        the opening ``[`` when ``start`` is 0 and the closing ``]`` when ``end`` is the last;
        the pieces of consecutive ranges joined are the file."""
        rows = self._tables(lexical=False).chunk_rows
        n = len(rows)
        start, end = max(0, int(start)), min(n, int(end))
        if start >= n > 0:
            return b""
        out = bytearray(b"[" if start == 0 else b"")
        for i in range(start, end):
            if i:
                out += b","
            out += dump_json(rows[i])
        if end == n:
            out += b"]"
        return bytes(out)

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
        docs = entries_from_export(files, dims=self.dims, dtype=dtype, restore=lambda rows: self._restored(rows, dtype))
        self.clear()
        self._docs = docs
        return len(docs)

    def take_vectors(self) -> tuple[list[list], bytes]:
        """The rows :meth:`load_export` restored, for a caller that holds the vectors itself
        (``keep_vectors=False``): ``([[id, n_chunks], ...], rows)``, every committed document in
        index order and its rows joined in that order; the entries let go of them."""
        counts, parts = [], []
        for doc_id, e in self._docs.items():
            counts.append([doc_id, len(e)])
            parts.append(e.vectors or b"")
            if not self.keep_vectors:
                e.vectors = None
        return counts, b"".join(parts)


