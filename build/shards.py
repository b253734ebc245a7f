"""The lexical shards, document fragments, docmap and facet table of a partitioned index.

Formats: docs/architecture.md, "Partitioned index". Everything is derived from the flat files
(``index/lexical.bin``, ``index/chunks.json``, ``index/docs.json``), so a partitioned bundle
scores and renders exactly like the flat bundle it was made from:

* lexical shard ``index/lex/{j}.bin``: a run of consecutive terms (code point order) with their
  float32 idf copied from the flat index and postings that also carry each chunk's length ``dl``
  (so a query needs no ``lengths`` table); a shard is closed before a term would take its
  postings past ``shard_bytes`` (a term bigger than that gets a shard alone);
* fragment ``index/frag/{f}.json``: consecutive documents with their chunks, closed before a
  document would take it past ``fragment_bytes`` (a bigger document gets one alone).
"""

from __future__ import annotations

import codecs
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from websem.text.bm25 import FORMAT as BM25_FORMAT
from websem.text.bm25 import LexicalIndex
from websem.text.errors import WebsemError

__all__ = ["LEX_MAGIC", "LEX_SHARD_FORMAT", "facet_table", "iter_json_array", "write_fragments",
           "write_lexical_shards"]

LEX_MAGIC = b"WSLEX\x00\x00\x01"
LEX_SHARD_FORMAT = "websem-bm25-shard"


def _dump(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _put_varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _with_lengths(buf: bytes, pos: int, end: int, lengths: Sequence[int]) -> bytearray:
    """One term's flat postings with ``varint(dl)`` appended to each posting.

    The flat varints (gap/flag, then tf - 2 when the flag is clear) are copied unchanged; only the
    chunk id is tracked, to look up its length."""
    out = bytearray()
    c = -1
    while pos < end:
        start = pos
        b = buf[pos]
        pos += 1
        v = b & 0x7F
        shift = 7
        while b & 0x80:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
        c += (v >> 1) + 1
        if not v & 1:  # tf >= 2: skip its varint
            while buf[pos] & 0x80:
                pos += 1
            pos += 1
        out += buf[start:pos]
        _put_varint(out, lengths[c])
    return out


def _shard_bytes(j: int, first: int, terms: list[str], idf: Sequence[float], offsets: list[int],
                 postings: bytes) -> bytes:
    sections = [
        ("terms", "\n".join(terms).encode("utf-8")),
        ("idf", np.asarray(idf, dtype="<f4").tobytes()),
        ("offsets", np.asarray(offsets, dtype="<u4").tobytes()),
        ("postings", postings),
    ]
    layout, body = {}, bytearray()
    for name, data in sections:
        layout[name] = [len(body), len(data)]
        body += data
        body += b"\x00" * (-len(body) % 4)  # 4-byte alignment: JS typed arrays need it
    header = {"format": LEX_SHARD_FORMAT, "format_version": 1, "shard": j, "first_term": first,
              "n_terms": len(terms), "sections": layout}
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-(len(LEX_MAGIC) + 4 + len(hjson)) % 4)
    return LEX_MAGIC + struct.pack("<I", len(hjson)) + hjson + bytes(body)


def write_lexical_shards(root: Path, template: str, index: LexicalIndex, shard_bytes: int,
                         advance=None) -> tuple[dict, list[list]]:
    """Split the flat BM25 index (read from lexical.bin) into shard files; returns
    ``(table.json's "lexical" entry, the shard list [[first term, n_terms], ...])``."""
    buf, offsets, lengths, idf = index.postings, index.offsets, index.lengths, index.idf
    shards: list[list] = []
    cur_terms: list[str] = []
    cur_offsets = [0]
    cur_postings = bytearray()
    first = 0

    def close() -> None:
        nonlocal cur_terms, cur_offsets, cur_postings, first
        j = len(shards)
        path = root / template.format(j)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_shard_bytes(j, first, cur_terms, idf[first:first + len(cur_terms)], cur_offsets,
                                      bytes(cur_postings)))
        shards.append([cur_terms[0], len(cur_terms)])
        first += len(cur_terms)
        cur_terms, cur_offsets, cur_postings = [], [0], bytearray()

    for t, term in enumerate(index.terms):
        posting = _with_lengths(buf, offsets[t], offsets[t + 1], lengths)
        if cur_terms and len(cur_postings) + len(posting) > shard_bytes:
            close()
        cur_terms.append(term)
        cur_postings += posting
        cur_offsets.append(len(cur_postings))
        if advance:
            advance(1)
    if cur_terms:
        close()
    entry = {"format": BM25_FORMAT, "k1": index.k1, "b": index.b, "avgdl": index.avgdl,
             "n_chunks": index.n_chunks, "n_terms": index.n_terms, "analyzer": index.analyzer,
             "fields": index.fields, "shards": shards}
    return entry, shards


def iter_json_array(path: Path, block: int = 1 << 20) -> Iterator[object]:
    """The items of a JSON array file, one at a time (chunks.json of a million chunks is about a
    gigabyte of text: never held whole). Items must be objects or arrays, as in index/*.json."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    text, pos, started = "", 0, False
    with open(path, "rb") as f:
        eof = False
        while True:
            # skip separators and find the next item
            while True:
                while pos < len(text) and text[pos] in " \t\r\n,":
                    pos += 1
                if pos < len(text) or eof:
                    break
                data = f.read(block)
                eof = not data
                text, pos = text[pos:] + utf8.decode(data, final=eof), 0
            if not started:
                if not text.startswith("["):
                    raise WebsemError(f"websem: {path} is not a JSON array; rebuild the bundle with `websem build`")
                started, pos = True, 1
                continue
            if pos < len(text) and text[pos] == "]":
                return
            if pos >= len(text):
                raise WebsemError(f"websem: {path} ends early; rebuild the bundle with `websem build`")
            try:
                item, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                if eof:
                    raise WebsemError(f"websem: {path} is not valid JSON; rebuild the bundle with "
                                      "`websem build`") from None
                data = f.read(block)
                eof = not data
                text, pos = text[pos:] + utf8.decode(data, final=eof), 0
                continue
            yield item
            pos = end


def write_fragments(root: Path, template: str, docs: Sequence[Mapping], chunks_path: Path, n_chunks: int,
                    fragment_bytes: int, advance=None) -> tuple[list[int], np.ndarray]:
    """Write the fragment files from docs.json rows and the chunks of ``chunks_path`` (streamed);
    returns ``(first doc of each fragment, docmap uint32 [D + 1])``."""
    n_docs = len(docs)
    docmap = np.zeros(n_docs + 1, dtype="<u4")
    starts: list[int] = []
    cur: list[bytes] = []
    size = 0

    def close() -> None:
        nonlocal cur, size
        f = len(starts) - 1
        path = root / template.format(f)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'{"first":%d,"docs":[' % starts[-1] + b",".join(cur) + b"]}")
        cur, size = [], 0

    chunk_iter = iter_json_array(chunks_path)
    pending = next(chunk_iter, None)
    c = 0
    for d, doc in enumerate(docs):
        docmap[d] = c
        rows = []
        while pending is not None and pending["doc"] == d:  # type: ignore[index]
            rows.append({k: pending[k] for k in ("anchor", "start", "end", "text")})  # type: ignore[index]
            c += 1
            pending = next(chunk_iter, None)
        if pending is not None and pending["doc"] < d:  # type: ignore[index]
            raise WebsemError(f"websem: {chunks_path} is not in document order (chunk {c}); rebuild the "
                              "bundle with `websem build`")
        entry = _dump({**doc, "chunks": rows})
        if cur and size + len(entry) + 1 > fragment_bytes:
            close()
        if not cur:
            starts.append(d)
            size = len(b'{"first":%d,"docs":[]}' % d)
        cur.append(entry)
        size += len(entry) + (1 if len(cur) > 1 else 0)
        if advance:
            advance(1)
    if cur:
        close()
    if pending is not None or c != n_chunks:
        raise WebsemError(f"websem: {chunks_path} does not match index/docs.json ({c} of {n_chunks} chunks "
                          "belong to its documents); rebuild the bundle with `websem build`")
    docmap[n_docs] = c
    return starts, docmap


def _values(meta: Mapping, field: str) -> list[str]:
    v = meta.get(field)
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]


def facet_table(docs: Sequence[Mapping], fields: Sequence[str]) -> dict:
    """``{field: {value: [doc indices ascending]}}`` for the filter fields (values in code point
    order); readers rebuild each document's meta from it (``websem.text.bm25.meta_from_facets``)."""
    table: dict[str, dict[str, list[int]]] = {}
    for field in fields:
        values: dict[str, list[int]] = {}
        for d, doc in enumerate(docs):
            for v in dict.fromkeys(_values(doc.get("meta") or {}, field)):
                values.setdefault(v, []).append(d)
        table[field] = dict(sorted(values.items()))
    return table
