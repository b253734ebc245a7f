"""How the in-page index (inpage.py) holds its documents, and the rows it makes from them.

Each document is one :class:`Entry` with slots, not a ``Document`` and a ``Chunk`` object per
chunk: its id, title sources, url, meta, body mark, its chunk texts (one zlib block), anchors and
offsets (one int array) and, when the index keeps them, its vector rows in the index's dtype
(:class:`ByteSource` reads them from elsewhere when it does not). :class:`ChunkRows` and
:class:`DocRows` are ``index/chunks.json``'s and ``index/docs.json``'s rows made when read, so the
texts and titles are held once (by the index, the lexical build and the ranker alike).

Also the byte helpers the index files need: compact JSON as build/index.py writes it, and
float32 -> IEEE half rounded like numpy (and back); and :func:`deep_sizeof`, which the memory
breakdown of bench/bench_inpage.py uses. Stdlib only (it runs in Pyodide).
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence

from .chunk import Chunk
from .extract import Document

__all__ = ["ByteSource", "ChunkRows", "DocRows", "Entry", "deep_sizeof", "dump_json", "float16_bytes", "float32_from16"]

_F16_MAX = 65520.0  # from here on IEEE half rounds to infinity (numpy does; struct raises)
_SLICE = 4096  # values converted per struct call: bounds the transient Python floats
_ZLIB_LEVEL = 6  # zlib's default: level 9 saves ~1% more on chunk texts, at twice the time


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


def float32_from16(raw: bytes | memoryview) -> array:
    """Little-endian IEEE half → float32 values (exact), a slice at a time (see float16_bytes)."""
    out = array("f")
    for at in range(0, len(raw), 2 * _SLICE):
        part = raw[at:at + 2 * _SLICE]
        out.extend(struct.unpack(f"<{len(part) // 2}e", part))
    return out


def deep_sizeof(obj: object, exclude: Iterable[object] = (), seen: set[int] | None = None) -> int:
    """``sys.getsizeof`` summed over ``obj`` and every object it reaches (containers, instance
    attributes and slots), each counted once; ``exclude`` (and what only they reach) is left
    out, as are modules, classes and functions (shared code, not data). ``seen``: ids already
    counted (by an earlier call given the same set), left out and added to."""
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
        for cls in type(x).__mro__:
            for slot in cls.__dict__.get("__slots__", ()):
                todo.append(getattr(x, slot, None))
    return total


class ByteSource:
    """Bytes held elsewhere, read a piece at a time: index/vectors.bin as the page's worker
    holds it (a JS typed array, read through ``read``), so no whole copy is made here."""

    def __init__(self, size: int, read: Callable[[int, int], bytes], piece: int = 1 << 16) -> None:
        """``size``: how many bytes; ``read(start, end)``: those bytes."""
        self.size, self._read, self._piece = int(size), read, int(piece)

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> ByteSource:
        """A source over bytes in memory."""
        view = memoryview(data).cast("B")
        return cls(len(view), lambda a, b: view[a:b])

    def __len__(self) -> int:
        return self.size

    def parts(self) -> Iterator[bytes]:
        """The bytes, in pieces of at most ``piece`` bytes."""
        for at in range(0, self.size, self._piece):
            yield self._read(at, min(self.size, at + self._piece))


class Entry:
    """One document of the in-page index: what its rows in chunks.json and docs.json and the
    site-wide title and body rules need, nothing more (the document's text is in its chunks;
    its sections are not kept). The chunk texts are held as one zlib-compressed UTF-8 block
    (:attr:`texts` decompresses it): the index holds them for the rare snippet and the export,
    and compressed they take about a third of the memory. The vectors are held here only when
    the index keeps them (``InPageIndex(keep_vectors=True)``); in the page the worker that
    scores them holds them."""

    __slots__ = ("id", "title", "url", "meta", "title_from", "page_title", "marked", "_text", "_lens",
                 "anchors", "spans", "vectors")

    def __init__(self, doc: Document, marked: bool, chunks: Sequence[Chunk], vectors: bytes | None = None) -> None:
        """``doc``: the document as read (its ``title`` raw: the site-wide rules apply when the
        files are made, over the documents present then); ``chunks``: its chunks in order;
        ``vectors``: its rows as index/vectors.bin stores them (n_chunks x dims, the index's
        vector_dtype, little-endian), None while the document is prepared but not added or
        when the index does not keep them."""
        self.id, self.title, self.url = doc.id, doc.title, doc.url
        self.meta = doc.meta or None  # most documents have none: no empty dict each
        self.title_from, self.page_title = doc.title_from, doc.page_title
        self.marked = bool(marked)
        raw = [c.text.encode("utf-8", "surrogatepass") for c in chunks]
        self._lens = array("i", [len(b) for b in raw])
        self._text = zlib.compress(b"".join(raw), _ZLIB_LEVEL)
        self.anchors = tuple(c.anchor for c in chunks)
        self.spans = array("i", [x for c in chunks for x in (c.start, c.end)])
        self.vectors = vectors

    def __len__(self) -> int:
        """Its number of chunks."""
        return len(self._lens)

    @property
    def texts(self) -> tuple[str, ...]:
        """Its chunk texts, in order (decompressed on each call)."""
        raw, out, at = zlib.decompress(self._text), [], 0
        for n in self._lens:
            out.append(raw[at:at + n].decode("utf-8", "surrogatepass"))
            at += n
        return tuple(out)

    def document(self) -> Document:
        """A ``Document`` with this entry's raw title sources (for the site-wide rules of
        reader.py, which may change its title: a new object each call)."""
        return Document(self.id, self.title, self.url, "", [], self.meta or {}, self.title_from, self.page_title)


class ChunkRows(Sequence):
    """``index/chunks.json``'s rows of some documents, each made when read
    (``{"doc", "anchor", "start", "end", "text"}``): the chunk texts stay in the entries."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self._entries = list(entries)
        self._doc = array("i", [i for i, e in enumerate(self._entries) for _ in range(len(e))])
        self._first = array("i")  # each document's first chunk
        # The last document whose texts were decompressed: rows are mostly read in order.
        self._texts: tuple[int, tuple[str, ...]] = (-1, ())
        n = 0
        for e in self._entries:
            self._first.append(n)
            n += len(e)

    def __len__(self) -> int:
        return len(self._doc)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self._doc)
        d = self._doc[i]  # IndexError past the end: ends Sequence iteration
        e, j = self._entries[d], i - self._first[d]
        if self._texts[0] != d:
            self._texts = (d, e.texts)
        return {"doc": d, "anchor": e.anchors[j], "start": e.spans[2 * j], "end": e.spans[2 * j + 1],
                "text": self._texts[1][j]}

    def doc_bytes(self) -> bytes:
        """Each chunk's document index, int32 little-endian."""
        out = array("i", self._doc)
        if sys.byteorder == "big":
            out.byteswap()
        return out.tobytes()

    def vector_parts(self) -> list[bytes]:
        """index/vectors.bin in pieces: each document's rows, in chunk order (the entries must
        hold them: ``InPageIndex(keep_vectors=True)``)."""
        return [e.vectors or b"" for e in self._entries]

    def json_parts(self) -> Iterable[bytes]:
        """index/chunks.json in pieces, a row at a time (never the whole text at once)."""
        yield b"["
        for i, row in enumerate(self):
            yield b"," + dump_json(row) if i else dump_json(row)
        yield b"]"


class DocRows(Sequence):
    """``index/docs.json``'s rows (``{"id", "title", "url", "meta"?}``) of the documents
    present, each made when read; ``titles``: each one's title after the site-wide rules."""

    def __init__(self, entries: Sequence[Entry], titles: Sequence[str]) -> None:
        self._entries = list(entries)
        self._titles = list(titles)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        e = self._entries[i]
        row = {"id": e.id, "title": self._titles[i], "url": e.url}
        if e.meta:
            row["meta"] = e.meta
        return row

    def ids(self) -> list[str]:
        """The documents' ids, in index order."""
        return [e.id for e in self._entries]

    def json(self) -> bytes:
        """index/docs.json."""
        return b"[" + b",".join(dump_json(r) for r in self) + b"]"
