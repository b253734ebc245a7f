"""The CPU reference reader of a partitioned bundle (``manifest.index.layout`` "partitioned").

``websem query`` (web/query.py ``Searcher``) runs a partitioned bundle through this module and
the browser runs the same steps in JS (web/src/partitioned.js); docs/architecture.md defines the
files and the arithmetic, and both sides compute it bit for bit:

- at load, the always-loaded files (``manifest.index.files``: table.json, centroids.bin,
  docmap.bin) are read and verified against ``manifest.files`` (size and sha256);
- dense: the query's score against every centroid, the top ``nprobe`` lists (score descending,
  then list ascending); with ``ivf.code`` "binary" (the default) every row of those lists is
  scored by its sign-bit code (``code_scores``), the best ``max(ivf.rerank, limit)`` rows (score
  descending, then chunk ascending) are rescored exactly from the rows blocks holding them (each
  list's rows shard read by byte range, one read per run of consecutive blocks, every block
  checked against the sha256 its codes shard lists), and only those exact scores rank; with code
  "rows" every row of the probed lists is scored exactly, like the flat index. Document = max
  over its exactly scored chunks;
- lexical: each query term's shard (the last shard whose first term is <= the term in code point
  order), postings with their chunk lengths, BM25 summed exactly like ``bm25.LexicalIndex.scores``;
- rows: the fragments holding the result documents (their ids, titles, urls and chunk texts).

Every shard read whole is verified against ``manifest.files``, every rows block against its
codes shard's sha256, the first time it is read, and kept, parsed, in a least-recently-used cache
bounded by bytes held (a block under the key ``index/ivf/{l}.bin#{k}``, as the JS runtime); a
missing or corrupt shard or block fails that query with a ``WebsemError`` naming the file (and
the block), and the index stays usable for queries that do not need it. Dot products are
float64 sums in index order (``ordered_dots``): the same bits as the JS loops, whichever rows a
query happens to score together.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from websem.text.bm25 import DocHit, aggregate_docs
from websem.text.errors import WebsemError

from .shards import (
    _REBUILD,
    CACHE_BYTES,
    CODES,
    IVF_DTYPES,
    IVF_HEADER,
    TABLE_FORMAT,
    TABLE_VERSION,
    LexShard,
    ShardCache,
    _bad,
    check_file,
    code_lut,
    code_scores,
    ordered_dots,
    parse_codes,
    parse_ivf,
    parse_records,
    read_verified,
    record_size,
)

__all__ = ["CACHE_BYTES", "PartitionedIndex", "ShardCache", "check_file", "code_lut", "code_scores", "ordered_dots",
           "read_verified"]


# --------------------------------------------------------------------------- the index


class PartitionedIndex:
    """A verified partitioned bundle's index, read lazily shard by shard."""

    def __init__(self, bundle: Path, manifest: Mapping, *, cache_bytes: int = CACHE_BYTES,
                 nprobe: int | None = None, rerank: int | None = None) -> None:
        """``manifest``: the bundle's checked manifest (``web.query.check_manifest``).
        ``nprobe``: lists probed per query (None = ``manifest.index.ivf.nprobe``); ``rerank``:
        binary-code candidates rescored exactly (None = ``manifest.index.ivf.rerank``)."""
        self.bundle = Path(bundle)
        self.files = manifest["files"]
        index = manifest["index"]
        self.shards = index["shards"]
        self.dims = int(index["dims"])
        self.n_chunks = int(index["chunks"])
        self.n_docs = int(index["docs"])
        self.vector_dtype = index["vector_dtype"]
        self.nlist = int(index["ivf"]["nlist"])
        self.nprobe = int(index["ivf"]["nprobe"]) if nprobe is None else nprobe
        self.code = index["ivf"].get("code", "rows")
        self.rerank = int(index["ivf"].get("rerank", 0)) if rerank is None else rerank
        if rerank is not None and (isinstance(rerank, bool) or not isinstance(rerank, int) or rerank < 1):
            raise WebsemError(f"websem: rerank={rerank!r}; it must be an integer >= 1")
        if self.code not in CODES or (self.code == "binary" and (self.rerank < 1 or "codes" not in self.shards)):
            raise WebsemError(f"websem: manifest.index.ivf.code {self.code!r} (rerank {self.rerank}) is not "
                              f"readable; allowed: {', '.join(CODES)} (binary with rerank >= 1 and "
                              f"shards.codes); {_REBUILD}")
        self.block_rows = index["ivf"].get("block_rows")
        if isinstance(self.block_rows, bool) or not isinstance(self.block_rows, int) or self.block_rows < 1:
            raise WebsemError(f"websem: manifest.index.ivf.block_rows {self.block_rows!r} is not an integer >= 1 "
                              f"(a partitioned bundle from an older websem?); {_REBUILD}")
        self.record = record_size(self.vector_dtype, self.dims)
        if not (isinstance(self.nprobe, int) and 1 <= self.nprobe <= self.nlist):
            raise WebsemError(f"websem: nprobe={nprobe!r}; it must be an integer from 1 to nlist ({self.nlist})")
        self.cache = ShardCache(cache_bytes)
        files = index["files"]
        try:
            table = json.loads(read_verified(self.bundle, files["table"], self.files))
        except (ValueError, UnicodeDecodeError) as e:
            raise WebsemError(f"websem: {files['table']} is not valid JSON ({e}); {_REBUILD}") from None
        self._check_table(table, files["table"])
        self.table = table
        self.sizes = [int(x) for x in table["ivf"]["sizes"]]
        lex = table["lexical"]
        self.k1, self.b, self.avgdl = lex["k1"], lex["b"], lex["avgdl"]
        self.analyzer = lex.get("analyzer")
        self._first_terms = [s[0] for s in lex["shards"]]
        self._shard_start = [0]
        for _, n in lex["shards"]:
            self._shard_start.append(self._shard_start[-1] + int(n))
        self._fragments = [int(x) for x in table["fragments"]]
        self.facets = table.get("facets") or {}
        raw = read_verified(self.bundle, files["centroids"], self.files)
        if len(raw) != self.nlist * self.dims * 2:
            raise WebsemError(f"websem: {files['centroids']} has {len(raw)} bytes, expected "
                              f"{self.nlist}x{self.dims}x2 (float16); {_REBUILD}")
        self._centroids_t = np.ascontiguousarray(
            np.frombuffer(raw, dtype="<f2").reshape(self.nlist, self.dims).astype(np.float64).T)
        raw = read_verified(self.bundle, files["docmap"], self.files)
        docmap = np.frombuffer(raw, dtype="<u4").astype(np.int64)
        if (len(docmap) != self.n_docs + 1 or docmap[0] != 0 or docmap[-1] != self.n_chunks
                or np.any(np.diff(docmap) < 1)):
            raise WebsemError(f"websem: {files['docmap']} is not {self.n_docs + 1} ascending chunk offsets "
                              f"from 0 to {self.n_chunks}; {_REBUILD}")
        self.docmap = docmap
        self.chunk_doc = np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(docmap))
        self._chunk_doc_list = array("q", self.chunk_doc.tobytes())  # Python ints for aggregate_docs

    def _check_table(self, t: object, rel: str) -> None:
        ok = (isinstance(t, dict) and t.get("format") == TABLE_FORMAT and t.get("format_version") == TABLE_VERSION)
        if not ok:
            got = (t.get("format"), t.get("format_version")) if isinstance(t, dict) else None
            old = isinstance(t, dict) and t.get("format") == TABLE_FORMAT and t.get("format_version") == 1
            why = " (version 1 came from an older websem: its rows shards have no blocks)" if old else ""
            raise WebsemError(f"websem: {rel} is not a websem-partitioned version {TABLE_VERSION} table "
                              f"(got {got!r}){why}; {_REBUILD}")
        try:
            ivf, lex, frags = t["ivf"], t["lexical"], t["fragments"]
            good = (t["chunks"] == self.n_chunks and t["docs"] == self.n_docs and t["dims"] == self.dims
                    and t["vector_dtype"] == self.vector_dtype and ivf["nlist"] == self.nlist
                    and len(ivf["sizes"]) == self.nlist and sum(ivf["sizes"]) == self.n_chunks
                    and lex["n_chunks"] == self.n_chunks and frags and frags[0] == 0
                    and all(a < b for a, b in zip(frags, frags[1:], strict=False)) and frags[-1] < max(self.n_docs, 1)
                    and sum(int(n) for _, n in lex["shards"]) == lex["n_terms"]
                    and isinstance(lex["avgdl"], (int, float)))
        except (KeyError, TypeError, ValueError):
            good = False
        if not good:
            raise WebsemError(f"websem: {rel} does not match manifest.index (counts, dims, dtype or lists) "
                              f"or misses an entry; {_REBUILD}")
        if self.vector_dtype not in IVF_DTYPES.values():
            raise WebsemError(f"websem: a partitioned index stores float16 or int8 vectors, not "
                              f"{self.vector_dtype!r}; {_REBUILD}")

    # ------------------------------------------------------------------ shards

    def _shard(self, kind: str, number: int, parse: Callable[[bytes, str], tuple[object, int]]) -> object:
        rel = self.shards[kind].replace("{}", str(number))

        def load() -> tuple[object, int, int]:
            data = read_verified(self.bundle, rel, self.files)
            value, held = parse(data, rel)
            return value, max(held, len(data)), len(data)

        return self.cache.get(rel, load)

    def ivf_list(self, lst: int) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk ids, rows transposed)`` of IVF list ``lst``'s whole rows shard (code "rows";
        verified, cached)."""
        def parse(data: bytes, rel: str):
            chunks, rows_t = parse_ivf(data, rel, lst=lst, dims=self.dims, dtype=self.vector_dtype,
                                       count=self.sizes[lst], block_rows=self.block_rows, n_chunks=self.n_chunks)
            return (chunks, rows_t), chunks.nbytes + rows_t.nbytes

        return self._shard("ivf", lst, parse)

    def codes_list(self, lst: int) -> tuple[np.ndarray, np.ndarray, bytes]:
        """``(chunk ids, codes, block sha256s)`` of IVF list ``lst``'s codes shard (verified, cached)."""
        def parse(data: bytes, rel: str):
            chunks, codes, digests = parse_codes(data, rel, lst=lst, dims=self.dims, count=self.sizes[lst],
                                                 block_rows=self.block_rows, n_chunks=self.n_chunks)
            return (chunks, codes, digests), chunks.nbytes + codes.nbytes + len(digests)

        return self._shard("codes", lst, parse)

    def block_range(self, lst: int, k: int) -> tuple[int, int]:
        """The inclusive byte range ``(start, end)`` of block ``k`` in list ``lst``'s rows shard."""
        count, b = self.sizes[lst], self.block_rows
        base = IVF_HEADER + 4 * count
        return base + k * b * self.record, base + min((k + 1) * b, count) * self.record - 1

    def row_blocks(self, lst: int, blocks: Sequence[int]) -> dict[int, np.ndarray]:
        """Blocks ``blocks`` (ascending, distinct) of list ``lst``'s rows: ``{k: float64 rows
        [rows in block, dims]}``. Cached blocks come from the cache; the others are read from the
        rows shard by byte range, one read per run of consecutive blocks, and each is checked
        against the sha256 the (verified) codes shard lists for it before it is used or cached."""
        rel = self.shards["ivf"].replace("{}", str(lst))
        out: dict[int, np.ndarray] = {}
        missing = []
        for k in blocks:
            got = self.cache.peek(f"{rel}#{k}")
            if got is None:
                missing.append(k)
            else:
                out[k] = got
        if not missing:
            return out
        info = self.files.get(rel)
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str) and isinstance(info.get("size"), int)):
            raise WebsemError(f"websem: {self.bundle / 'manifest.json'} lists no file {rel!r} (with its sha256 "
                              f"and size); the bundle is incomplete, {_REBUILD}")
        digests = self.codes_list(lst)[2]
        code_rel = self.shards["codes"].replace("{}", str(lst))
        runs: list[list[int]] = []
        for k in missing:  # runs of consecutive block numbers: one read (one HTTP range) each
            if runs and runs[-1][-1] == k - 1:
                runs[-1].append(k)
            else:
                runs.append([k])
        try:
            f = open(self.bundle / rel, "rb")
        except FileNotFoundError:
            raise WebsemError(f"websem: bundle file {rel} is missing from {self.bundle}; upload the complete "
                              "bundle folder (`websem build` output), or rebuild it with `websem build`") from None
        with f:
            for run in runs:
                start, end = self.block_range(lst, run[0])[0], self.block_range(lst, run[-1])[1]
                f.seek(start)
                data = f.read(end - start + 1)
                self.cache.note_read(rel, len(data), (start, end))
                if len(data) != end - start + 1:
                    raise WebsemError(f"websem: {rel} bytes {start}-{end} (blocks {run[0]}-{run[-1]}) came back "
                                      f"as {len(data)} bytes; the file is truncated or from another build: copy "
                                      f"the whole bundle folder again or {_REBUILD}")
                for k in run:
                    a, b = self.block_range(lst, k)
                    raw = data[a - start: b - start + 1]
                    if hashlib.sha256(raw).digest() != digests[32 * k: 32 * k + 32]:
                        raise WebsemError(f"websem: {rel} block {k} (bytes {a}-{b}) does not match the sha256 in "
                                          f"{code_rel}; the file is corrupt, tampered with or from another build: "
                                          f"copy the whole bundle folder again or {_REBUILD}")
                    rows = parse_records(raw, len(raw) // self.record, dims=self.dims, dtype=self.vector_dtype)
                    out[k] = rows
                    self.cache.put(f"{rel}#{k}", rows, max(rows.nbytes, len(raw)))
        return out

    def lex_shard(self, j: int) -> LexShard:
        """Lexical shard ``j`` (verified, cached)."""
        n_terms = self._shard_start[j + 1] - self._shard_start[j]

        def parse(data: bytes, rel: str):
            return LexShard(data, rel, shard=j, first_term=self._shard_start[j], n_terms=n_terms), 2 * len(data)

        return self._shard("lexical", j, parse)

    def fragment(self, f: int) -> dict:
        """Fragment ``f``: ``{"first", "docs": [...]}`` (verified, cached)."""
        first = self._fragments[f]
        last = self._fragments[f + 1] if f + 1 < len(self._fragments) else self.n_docs

        def parse(data: bytes, rel: str):
            try:
                frag = json.loads(data)
                ok = frag["first"] == first and len(frag["docs"]) == last - first and all(
                    len(doc["chunks"]) == self.docmap[first + i + 1] - self.docmap[first + i]
                    for i, doc in enumerate(frag["docs"]))
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise _bad(rel, f"not the documents {first}..{last - 1} table.json places there")
            return frag, 3 * len(data)

        return self._shard("fragments", f, parse)

    # ------------------------------------------------------------------ queries

    def probe(self, q: np.ndarray) -> list[int]:
        """The lists to score for query vector ``q``: top ``nprobe`` centroid scores, ties to
        the lower list."""
        s = ordered_dots(self._centroids_t, np.asarray(q, dtype=np.float32).astype(np.float64))
        order = np.lexsort((np.arange(self.nlist), -s))
        return [int(x) for x in order[: self.nprobe]]

    def dense_docs(self, q: np.ndarray, limit: int, allowed: Iterable[int] | None = None) -> list[DocHit]:
        """Top ``limit`` documents by their best scored chunk in the probed lists, best first
        (ties: lower document), documents outside ``allowed`` (None = all) dropped before the
        cut; a document's chunk is the lowest-numbered chunk reaching its score."""
        q64 = np.asarray(q, dtype=np.float32).astype(np.float64)
        allowed_ids = None if allowed is None else np.fromiter(allowed, dtype=np.int64)
        if self.code == "binary":
            chunks, scores = self._reranked(q64, max(self.rerank, limit), allowed_ids)
        else:
            chunk_parts, score_parts = [], []
            for lst in self.probe(q):
                lchunks, rows_t = self.ivf_list(lst)
                if len(lchunks):
                    chunk_parts.append(lchunks)
                    score_parts.append(ordered_dots(rows_t, q64))
            if not chunk_parts:
                return []
            chunks = np.concatenate(chunk_parts)
            scores = np.concatenate(score_parts)
        docs = self.chunk_doc[chunks]
        if allowed_ids is not None:
            keep = np.isin(docs, allowed_ids)
            chunks, scores, docs = chunks[keep], scores[keep], docs[keep]
        by_doc = np.lexsort((chunks, -scores, docs))  # per document: best score, then lowest chunk
        firsts = by_doc[np.r_[True, docs[by_doc][1:] != docs[by_doc][:-1]]] if len(by_doc) else by_doc
        order = firsts[np.lexsort((docs[firsts], -scores[firsts]))][:limit]
        return [DocHit(int(docs[i]), float(scores[i]), int(chunks[i])) for i in order]

    def _reranked(self, q64: np.ndarray, n_candidates: int,
                  allowed_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk ids, exact scores)`` of the best ``n_candidates`` probed rows by code score
        (score descending, then chunk ascending; rows of documents outside ``allowed_ids``
        dropped first), rescored from the rows blocks that hold them."""
        lut = code_lut(q64, (self.dims + 7) // 8)
        chunk_parts, score_parts, list_parts, pos_parts = [], [], [], []
        for lst in self.probe(q64):
            lchunks, codes, _ = self.codes_list(lst)
            if len(lchunks):
                chunk_parts.append(lchunks)
                score_parts.append(code_scores(codes, lut))
                list_parts.append(np.full(len(lchunks), lst, dtype=np.int64))
                pos_parts.append(np.arange(len(lchunks), dtype=np.int64))
        if not chunk_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        chunks, approx, lists, pos = (np.concatenate(p) for p in (chunk_parts, score_parts, list_parts, pos_parts))
        if allowed_ids is not None:
            keep = np.isin(self.chunk_doc[chunks], allowed_ids)
            chunks, approx, lists, pos = chunks[keep], approx[keep], lists[keep], pos[keep]
        top = np.lexsort((chunks, -approx))[:n_candidates]  # chunk ids are unique: a total order
        chunks, lists, pos = chunks[top], lists[top], pos[top]
        exact = np.empty(len(chunks), dtype=np.float64)
        for lst in sorted(set(lists.tolist())):  # each list's needed blocks at once
            sel = np.flatnonzero(lists == lst)
            blocks = pos[sel] // self.block_rows
            got = self.row_blocks(lst, sorted(set(blocks.tolist())))
            rows = np.stack([got[int(k)][int(p) - int(k) * self.block_rows] for k, p in zip(blocks, pos[sel],
                                                                                           strict=True)])
            exact[sel] = ordered_dots(np.ascontiguousarray(rows.T), q64)
        return chunks, exact

    def lexical_docs(self, terms: Sequence[str], allowed: Iterable[int] | None = None,
                     limit: int | None = None) -> list[DocHit]:
        """Documents matching at least one query term (analyzed ``terms``, repeats count), best
        first (ties: lower document); ``limit`` None = all of them. Scores equal the flat
        index's ``LexicalIndex.scores`` bit for bit (same idf, avgdl, order of additions)."""
        plan: dict[str, int] = {}
        for t in terms:
            plan[t] = plan.get(t, 0) + 1
        acc: dict[int, float] = {}
        k1, b, avgdl = self.k1, self.b, self.avgdl
        for term, qtf in plan.items():
            j = bisect.bisect_right(self._first_terms, term) - 1  # str order is code point order
            if j < 0:
                continue
            shard = self.lex_shard(j)
            tid = shard.term_ids.get(term)
            if tid is None:
                continue
            idf = shard.idf[tid]
            get = acc.get
            for c, tf, dl in zip(*shard.postings_of(tid), strict=True):
                norm = k1 * (1 - b + b * dl / avgdl) if avgdl > 0 else k1
                acc[c] = get(c, 0.0) + qtf * (idf * tf / (tf + norm))
        allowed_set = None if allowed is None else frozenset(allowed)
        return aggregate_docs(acc, self._chunk_doc_list, allowed=allowed_set, k=limit)

    def rows(self, hits: Sequence) -> list[dict]:
        """``{"id", "title", "url", "anchor", "text"}`` for each hit (``.doc``, ``.chunk``): its
        document from its fragment and its best chunk, what ``Ranker.render`` takes."""
        out = []
        for h in hits:
            d, c = int(h.doc), int(h.chunk)
            if not (0 <= d < self.n_docs and self.docmap[d] <= c < self.docmap[d + 1]):
                raise WebsemError(f"websem: hit (doc {d}, chunk {c}) is not a chunk of that document")
            f = bisect.bisect_right(self._fragments, d) - 1
            frag = self.fragment(f)
            doc = frag["docs"][d - frag["first"]]
            chunk = doc["chunks"][c - int(self.docmap[d])]
            out.append({"id": doc.get("id"), "title": doc.get("title"), "url": doc.get("url"),
                        "anchor": chunk.get("anchor"), "text": chunk.get("text")})
        return out

    def stats(self) -> dict:
        """The layout, IVF settings and shard cache counters."""
        return {"layout": "partitioned", "nlist": self.nlist, "nprobe": self.nprobe, "code": self.code,
                "rerank": self.rerank, "block_rows": self.block_rows,
                "cache_budget": self.cache.budget, **{f"cache_{k}": v for k, v in self.cache.stats().items()}}
