"""The Python side of the browser and edge runtime: what the JS engine calls inside Pyodide.

The JS runtime (``web/src/python.js``) imports this module as ``websem_text.bridge`` and calls
its functions directly (``pyodide.pyimport``); ``web/tools/make_snapshot.mjs`` runs ``setup`` at
build time before it saves Pyodide's memory snapshot, so a browser restoring that snapshot finds
the tokenizer built and the ranker's modules imported.

- ``setup(max_length)`` builds the WordPiece tokenizer from the bundle's ``tokenizer.json``;
  ``encode(text)`` returns its ids for onnxruntime-web.
- ``ranker_init``, ``plan`` and ``finish`` run the parts of a query that must rank exactly like
  ``websem query``: query terms and filters (``plan``), then fusion, facets and snippets with
  highlights in UTF-16 code units (``finish``, ``Ranker.results``). BM25 and dense scoring run in
  JS between the two (docs/architecture.md, "Search semantics").
- A partitioned bundle has no chunks or docs in memory: ``ranker_init_partitioned`` sets the
  ranker up from ``table.json``'s facets, and ``finish`` becomes two calls with the JS fetching
  the top documents' fragments between them: ``rank`` (fusion, facets, the top k as
  ``[doc, chunk, score]``) and ``render`` (snippets and highlights from the fetched rows).
- ``inpage_*``: the in-page index (inpage.py): documents read, chunked and tokenized by the code
  `websem build` runs (``inpage_prepare``), committed with the vectors the page computed
  (``inpage_add``, which hands their stored rows back: the page's worker holds them, for its
  dense scoring, and passes index/vectors.bin back to ``inpage_files`` and ``inpage_export``, so
  the vectors are held once), and the index files ``websem build`` would write for them
  (``inpage_files``), exported and imported as one archive.

JS values arrive as ``JsProxy`` objects (a typed array's ``to_py()`` is a memoryview), ``null``
as ``None`` or a ``JsNull``; the ``as_*`` helpers accept those and plain Python values alike, so
CPython tests call every function here with bytes, lists and None. Nothing here may keep a JS
object referenced between calls: a memory snapshot cannot hold one.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence

from .errors import WebsemError

__all__ = [
    "TOKENIZER_PATH",
    "as_bytes",
    "as_list",
    "encode",
    "encode_arrays",
    "finish",
    "inpage_add",
    "inpage_chunks_json",
    "inpage_doc_ids",
    "inpage_export",
    "inpage_export_parts",
    "inpage_files",
    "inpage_files_list",
    "inpage_import",
    "inpage_info",
    "inpage_prepare",
    "inpage_remove",
    "inpage_reset",
    "inpage_search",
    "inpage_sizes",
    "is_absent",
    "max_length",
    "pack_for_snapshot",
    "plan",
    "rank",
    "ranker_init",
    "ranker_init_partitioned",
    "render",
    "setup",
]

#: Where python.js writes the bundle's model/tokenizer.json in Pyodide's file system.
TOKENIZER_PATH = "/websem/model/tokenizer.json"

_tokenizer = None
_max_length: int | None = None
_ranker = None
_inpage = None


def setup(max_length: int, tokenizer_path: str = TOKENIZER_PATH) -> None:
    """Build the query tokenizer (``max_length`` tokens, the model's cap) and import the ranker's
    modules, so a snapshot taken afterwards holds both."""
    global _tokenizer, _max_length
    from . import analyze, bm25, ranker  # noqa: F401  (imported for the snapshot: ~0.5 s per cold boot)
    from .wordpiece import WordPieceTokenizer

    with open(tokenizer_path, encoding="utf-8") as f:
        _tokenizer = WordPieceTokenizer.from_json(f.read(), max_length=int(max_length))
    _max_length = int(max_length)


def pack_for_snapshot() -> bool:
    """Shrink the set-up state right before a memory snapshot is saved (make_snapshot.mjs): the
    tokenizer's vocab is held packed (``WordPieceTokenizer.pack_vocab``: ~0.5 MB less snapshot
    brotli) and rebuilt by the first encode after the restore (~10 ms). Returns whether it was
    packed."""
    if _tokenizer is None:
        raise WebsemError("websem: the tokenizer is not set up; call bridge.setup(max_length) first")
    return _tokenizer.pack_vocab()


def max_length() -> int | None:
    """The token cap ``setup`` was called with (None before): python.js compares it with the
    manifest's after restoring a snapshot."""
    return _max_length


def encode_arrays(text: str) -> list[array]:
    """``[ids, attention_mask, type_ids]`` of ``text`` as ``array('q')`` (int64)."""
    if _tokenizer is None:
        raise WebsemError("websem: the tokenizer is not set up; call bridge.setup(max_length) first")
    enc = _tokenizer.encode(str(text))
    return [array("q", enc.ids), array("q", enc.attention_mask), array("q", enc.type_ids)]


def encode(text: str):
    """``encode_arrays`` converted for JS: each ``array('q')`` arrives as a BigInt64Array, what
    onnxruntime-web's int64 tensors take directly. Pyodide only."""
    from pyodide.ffi import to_js  # looked up per call: the snapshot must hold no JS object

    return to_js(encode_arrays(text))


# --------------------------------------------------------------------------- JS value helpers


def is_absent(x: object) -> bool:
    """Whether a JS argument is null/undefined (``None``, or Pyodide's ``JsNull``, which has no
    ``to_py`` and is no Python sequence)."""
    if x is None:
        return True
    if hasattr(x, "to_py"):
        return False
    return not isinstance(x, (bytes, bytearray, memoryview, list, tuple, array, str))


def as_bytes(x: object) -> bytes:
    """The bytes of a JS Uint8Array (``JsProxy``) or of any bytes-like / str value."""
    if hasattr(x, "to_py"):
        return bytes(x.to_py())
    if isinstance(x, str):
        return x.encode("utf-8")
    return bytes(x)


def as_list(x: object) -> list:
    """The numbers of a JS typed array (float64 stays exact), a Python sequence, or [] for null."""
    if is_absent(x):
        return []
    if hasattr(x, "to_py"):
        x = x.to_py()
    return x.tolist() if isinstance(x, (memoryview, array)) else list(x)


def byte_source(x: object):
    """A JS Uint8Array (``JsProxy``) or bytes-like value as an ``inpage_rows.ByteSource``: a
    typed array is read a slice at a time (``subarray(...).to_bytes()``), never copied whole."""
    from .inpage_rows import ByteSource

    if hasattr(x, "subarray") and hasattr(x, "byteLength"):
        return ByteSource(int(x.byteLength), lambda a, b: x.subarray(a, b).to_bytes())
    return ByteSource.of(as_bytes(x))


def _json_or_none(text: object):
    return json.loads(text) if isinstance(text, str) and text else None


def _hits(docs: object, scores: object, chunks: object) -> list:
    from .bm25 import DocHit

    return [DocHit(d, s, c) for d, s, c in zip(as_list(docs), as_list(scores), as_list(chunks), strict=True)]


# --------------------------------------------------------------------------- the ranker


def ranker_init(chunks_json: object, docs_json: object, analyzer_json: str | None, search_json: str) -> int:
    """Set up the ranker of one bundle: ``chunks.json`` and ``docs.json`` (bytes), the lexical
    index's analyzer config (JSON, from the ``lexical.bin`` header the JS scorer read) and
    ``manifest.search`` (JSON; ``null`` when the manifest has none, which ``check_search``
    refuses: a bundle's table is required, the Ranker's defaults are for callers without one).
    Returns the number of documents."""
    global _ranker
    from .bm25 import Ranker
    from .rules import check_search

    _ranker = Ranker(None, json.loads(as_bytes(chunks_json)), json.loads(as_bytes(docs_json)),
                     search=check_search(json.loads(search_json)), analyzer=_json_or_none(analyzer_json))
    return len(_ranker.docs)


def ranker_init_partitioned(n_docs: int, facets_json: str, analyzer_json: str | None, search_json: str) -> int:
    """Set up the ranker of a partitioned bundle: its ``n_docs`` documents' filter values come
    from ``index/part/table.json``'s ``facets`` (JSON), the analyzer config from its ``lexical``
    record, ``manifest.search`` as for ``ranker_init``. Returns the number of documents."""
    global _ranker
    from .bm25 import meta_from_facets
    from .ranker import Ranker
    from .rules import check_search

    facets = json.loads(facets_json) if isinstance(facets_json, str) and facets_json else {}
    if not isinstance(facets, dict):
        raise WebsemError("websem: table.json facets must be an object {field: {value: [docs]}}; "
                          "rebuild the bundle with `websem build`")
    _ranker = Ranker(None, search=check_search(json.loads(search_json)), analyzer=_json_or_none(analyzer_json),
                     meta=meta_from_facets(facets, int(n_docs)))
    return _ranker.n_docs


def _ready():
    if _ranker is None:
        raise WebsemError("websem: the ranker is not set up; call bridge.ranker_init first")
    return _ranker


def plan(query: str, filters_json: str | None) -> str:
    """``{"terms": [...], "allowed": [doc, ...] | null}`` as JSON: the analyzed query terms (for
    the JS BM25 scorer) and the documents passing the filters (None = all)."""
    ranker = _ready()
    allowed = ranker.allowed(_json_or_none(filters_json))
    return json.dumps({"terms": ranker.analyzer.terms(str(query)),
                       "allowed": None if allowed is None else sorted(allowed)})


def finish(query: str, mode: str, k: int, semantic: Sequence, lexical: Sequence | None,
           filters_json: str | None) -> str:
    """The results of one query as JSON, ``{"hits": [...], "facets": {...}}`` (``Ranker.results``,
    which takes ``n``, ``snippet_chars`` and the fusion from the bundle's table). ``semantic`` /
    ``lexical``: each side's document ranking as ``[docs, scores, chunks]`` (JS typed arrays),
    ``lexical`` null in semantic mode."""
    ranker = _ready()
    lex = None if is_absent(lexical) else _hits(*_seq(lexical))
    res = ranker.results(str(query), mode=str(mode), semantic=_hits(*_seq(semantic)), lexical=lex,
                         filters=_json_or_none(filters_json), k=int(k), utf16=True)
    return json.dumps(res)


def rank(query: str, mode: str, k: int, semantic: Sequence, lexical: Sequence | None,
         filters_json: str | None) -> str:
    """Fusion and facet counts of one query as JSON, ``{"hits": [[doc, chunk, score], ...],
    "facets": {...}}`` (``Ranker.rank``; arguments as ``finish``). Scores are JSON floats, which
    round-trip exactly through JS numbers: ``render`` gets them back unchanged."""
    ranker = _ready()
    lex = None if is_absent(lexical) else _hits(*_seq(lexical))
    hits, facets = ranker.rank(str(query), mode=str(mode), semantic=_hits(*_seq(semantic)), lexical=lex,
                               filters=_json_or_none(filters_json), k=int(k))
    return json.dumps({"hits": [[h.doc, h.chunk, h.score] for h in hits], "facets": facets})


def render(query: str, rows_json: str) -> str:
    """The hits of one query as JSON, ``{"hits": [{id, score, title, url, snippet, highlights}]}``
    (``Ranker.render``, highlights in UTF-16 code units). ``rows_json``: a JSON list, in ``rank``'s
    hit order, of ``{"id", "title", "url", "anchor", "text", "score"}``: each hit's document
    (from its fragment), its best chunk's anchor and text, and its score from ``rank``."""
    from .fusion import DocHit

    ranker = _ready()
    rows = json.loads(rows_json)
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("score"), (int, float)) and not isinstance(r["score"], bool)
            for r in rows):
        raise WebsemError("websem: render needs a JSON list of rows {id, title, url, anchor, text, score} "
                          "with a numeric score each (rank's hits, in order)")
    hits = [DocHit(-1, float(r["score"]), -1) for r in rows]
    return json.dumps({"hits": ranker.render(str(query), hits, rows, utf16=True)})


def _seq(x: object) -> list:
    """A JS array (``JsProxy``) or Python sequence of three rankings, as a Python list."""
    items = list(x)
    if len(items) != 3:
        raise WebsemError(f"websem: a ranking is [docs, scores, chunks], got {len(items)} items")
    return items


# --------------------------------------------------------------------------- the in-page index


def inpage_reset(manifest_json: object, options_json: str | None = None) -> None:
    """Start an empty in-page index for the bundle whose ``manifest.json`` (text or bytes) is
    given; ``options_json``: ``{"vector_dtype", "encoding_errors", "max_doc_bytes"}``, each
    optional. Uses the tokenizer ``setup`` built."""
    global _inpage
    from .inpage import InPageIndex

    if _tokenizer is None:
        raise WebsemError("websem: the tokenizer is not set up; call bridge.setup(max_length) first")
    manifest = json.loads(manifest_json if isinstance(manifest_json, str) else as_bytes(manifest_json))
    options = _json_or_none(options_json) or {}
    if not isinstance(options, dict) or set(options) - {"vector_dtype", "encoding_errors", "max_doc_bytes"}:
        raise WebsemError(f"websem: in-page index options {options_json!r}: allowed keys are vector_dtype, "
                          "encoding_errors, max_doc_bytes")
    # The page's worker holds the vectors (what it scores), so Pyodide does not keep a copy.
    _inpage = InPageIndex.for_bundle(_tokenizer, manifest, keep_vectors=False, **options)


def _index():
    if _inpage is None:
        raise WebsemError("websem: the in-page index is not set up; call bridge.inpage_reset first")
    return _inpage


def inpage_prepare(item_json: str, data: object = None) -> str:
    """Read, chunk and tokenize one document (``InPageIndex.prepare``); ``data``: a file's bytes
    (Uint8Array) or null for a record. Returns the result as JSON."""
    item = json.loads(item_json)
    return json.dumps(_index().prepare(item, None if is_absent(data) else as_bytes(data)), ensure_ascii=False)


def inpage_add(doc_id: str, vectors: object) -> bytes:
    """Commit a prepared document with its float32 vectors (a Uint8Array / bytes, little-endian);
    returns its rows as the index stores them (the index's vector_dtype), for the page to hold."""
    return _index().add(str(doc_id), as_bytes(vectors))


def inpage_remove(ids_json: str) -> int:
    """Remove documents by id (a JSON list); returns how many were removed."""
    ids = json.loads(ids_json)
    if not isinstance(ids, list):
        raise WebsemError(f"websem: inpage_remove takes a JSON list of ids, got {ids_json!r}")
    return _index().remove(ids)


def inpage_files(vectors: object) -> dict:
    """The index files of the committed documents, ``{path: bytes}`` (``InPageIndex.files``);
    ``vectors``: index/vectors.bin as the page holds it (in ``doc_ids.json``'s order)."""
    return _index().files(byte_source(vectors))


def inpage_search() -> dict:
    """Sets the ranker up over the committed documents' rows, held once by the in-page index
    (``Ranker`` as ``ranker_init`` makes it, without a chunks.json/docs.json round trip), and
    returns what the page's dense and BM25 scoring load, ``{path: bytes}``
    (``InPageIndex.search_state``): ``index.json``, ``search.json``, ``index/lexical.bin``,
    ``chunk_doc.bin`` and ``doc_ids.json`` (the order in which the page lays out the rows it
    holds as index/vectors.bin)."""
    global _ranker
    from .bm25 import Ranker
    from .rules import check_search

    files, chunk_rows, doc_rows, analyzer, search = _index().search_state()
    _ranker = None  # the previous index's rows: freed before the new ranker is made
    if len(chunk_rows):
        _ranker = Ranker(None, chunk_rows, doc_rows, search=check_search(search), analyzer=analyzer)
    return files


def inpage_files_list(vectors: object) -> list:
    """``inpage_files`` as ``[[path, bytes], ...]`` (converts to JS arrays of Uint8Array)."""
    return [[k, v] for k, v in _index().files(byte_source(vectors)).items()]


def inpage_info() -> str:
    """Counts and settings of the in-page index as JSON."""
    return json.dumps(_index().info())


def inpage_export(vectors: object) -> bytes:
    """The exported index (a tar archive, ``InPageIndex.export``); ``vectors`` as for
    ``inpage_files``."""
    return _index().export(byte_source(vectors))


def inpage_export_parts(vectors: object) -> dict:
    """The exported index for the page to assemble (``InPageIndex.export_parts``): ``{"size":
    the archive's bytes, "parts": [[offset, bytes] | [offset, member, size], ...]}``; the page
    writes index/vectors.bin (``vectors``, as for ``inpage_files``) and index/chunks.json (from
    ``inpage_chunks_json``) at their offsets, NULs elsewhere: the archive ``inpage_export``
    gives, without Pyodide ever holding it, chunks.json or the vectors whole."""
    size, parts = _index().export_parts(byte_source(vectors))
    return {"size": size, "parts": parts}


def inpage_chunks_json(start: int, end: int) -> bytes:
    """index/chunks.json's bytes for rows ``start`` to ``end`` (``InPageIndex.chunks_json``)."""
    return _index().chunks_json(int(start), int(end))


def inpage_import(data: object) -> dict:
    """Replace the in-page index with an exported one (verified). Returns ``{"docs": JSON
    [[id, n_chunks], ...] in index order, "vectors": their rows joined, "row_bytes"}``: the page
    holds the vectors from here on (``InPageIndex.take_vectors``)."""
    index = _index()
    index.load_export(as_bytes(data))
    counts, rows = index.take_vectors()
    width = 2 if index.vector_dtype == "float16" else 4
    return {"docs": json.dumps(counts, ensure_ascii=False), "vectors": rows, "row_bytes": index.dims * width}


def inpage_doc_ids() -> str:
    """The ids of the documents the index files hold, in index order, as JSON: the order of
    index/vectors.bin's rows (``InPageIndex.doc_ids``)."""
    return json.dumps(_index().doc_ids(), ensure_ascii=False)


def inpage_sizes() -> str:
    """Python-side bytes held by the in-page index and by the ranker over it, as JSON
    ``{"python_inpage_bytes", "python_ranker_bytes"}`` (``sys.getsizeof`` over every object each
    reaches, the shared tokenizer and analyzer excluded; the ranker's count leaves out what the
    index holds too, e.g. the chunk texts): the memory breakdown of bench/bench_inpage.py."""
    from .inpage import deep_sizeof

    shared = [_tokenizer, getattr(_ranker, "analyzer", None)]
    if _inpage is not None:
        shared.append(_inpage.report)
    seen: set[int] = set()
    inpage = deep_sizeof(_inpage, exclude=shared, seen=seen)
    return json.dumps({"python_inpage_bytes": inpage, "python_ranker_bytes": deep_sizeof(_ranker, seen=seen)})
