"""`websem query`: the CPU reference search over a bundle (what the browser must match).

Same bundle files as the browser: ``model/tokenizer.json`` through the bundle's own copy of
websem's stdlib WordPiece tokenizer (``py/websem_text``, exactly the code Pyodide runs),
``model/model.onnx`` through onnxruntime (CPU, one query per run), and the index files. A bundle
whose model is split (``manifest.model.word_rows``, build/model_split.py) has its word-embedding
rows read like the browser reads them: the blocks holding the query's token ids, each checked
against its sha256 in the (manifest-verified) hash list, the rows computed as
``float32(int8) * float32(scale)`` and fed to the body model (``WordRows``).
Dense scoring follows docs/architecture.md "Search semantics": float64 dot products of the
dequantized rows accumulated in index order, document score = max over its chunks (the first
chunk reaching the max wins), order by score descending then document index ascending.
Everything after the dense ranking (BM25 over ``index/lexical.bin``, filters, rank fusion,
facets, snippets, highlights) is the bundle's own ``py/websem_text`` ``Ranker``, with the rules of
the bundle's ``manifest.search``: the code and the table the browser uses, so both rank
identically (docs/hybrid.md).

A partitioned bundle (``manifest.index.layout``) is read by web/partitioned.py: the probed IVF
lists, the query terms' BM25 shards and the result documents' fragments, each verified when
first read; the Ranker then ranks (``rank``) and renders the rows fetched for the top hits
(``render``).

Before anything is used, the bundle is verified (web/verify.py: the checks the JS runtime makes).
The command line is web/query_cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError
from websem.text.rules import check_mode, check_search
from websem.web.verify import REBUILD, check_manifest, verify_bundle

# check_manifest and verify_bundle (verify.py) stay importable from here: the reference's API.
__all__ = [
    "Searcher",
    "SplitEmbedder",
    "WordRows",
    "check_manifest",
    "load_bundle",
    "verify_bundle",
    "search",
    "parse_filters",
    "search_results",
]

EMBED_CACHE = 1024  # query embeddings kept per Searcher (384 float32 = 1.5 KB each)


def _bundle_text(bundle: Path, manifest: dict) -> tuple:
    """``(wordpiece, bm25)`` modules from the bundle's own ``py/websem_text`` (the code the
    browser runs in Pyodide), so the reference tokenizes and ranks exactly like the bundle even
    when the installed websem is newer or older. Loaded under a name derived from the files'
    sha256 (verified already)."""
    import hashlib
    import importlib
    import importlib.util

    pkg = bundle / "py" / "websem_text"
    py_files = manifest.get("runtime", {}).get("python_files", [])
    for rel in ("py/websem_text/wordpiece.py", "py/websem_text/bm25.py"):
        if rel not in py_files:
            raise WebsemError(f"websem: manifest.runtime.python_files does not list {rel}; {REBUILD}")
    digest = hashlib.sha256("".join(manifest["files"][f]["sha256"] for f in sorted(py_files))
                            .encode()).hexdigest()[:16]
    name = f"_websem_bundle_text_{digest}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, pkg / "__init__.py", submodule_search_locations=[str(pkg)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        # The bundle's modules raise `.errors.WebsemError`: make that the installed class, so
        # callers (and the CLI, which prints WebsemError without a traceback) catch it.
        import websem.text.errors

        sys.modules[f"{name}.errors"] = websem.text.errors
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            sys.modules.pop(f"{name}.errors", None)
            raise
    # analyze.py imports `snowballstemmer`: in CPython that is the installed package (the
    # bundle's py/snowballstemmer holds the same upstream files, trimmed to English)
    return importlib.import_module(f"{name}.wordpiece"), importlib.import_module(f"{name}.bm25")


def _bundle_tokenizer(bundle: Path, manifest: dict):
    """The WordPiece tokenizer from the bundle's own ``py/websem_text`` (see ``_bundle_text``)."""
    wordpiece, _ = _bundle_text(bundle, manifest)
    text = (bundle / "model" / "tokenizer.json").read_text("utf-8")
    max_len = int(manifest["model"]["max_seq_length"])
    return wordpiece.WordPieceTokenizer.from_json(text, max_length=max_len)


def parse_filters(items: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """``["section=library", "tags=a", "tags=b"]`` → ``{"section": ["library"], "tags": ["a",
    "b"]}`` (values of one field are OR-ed, fields AND-ed)."""
    out: dict[str, list[str]] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or not field.strip() or not value.strip():
            raise WebsemError(f"websem: --filter {item!r} is not FIELD=VALUE (for example "
                              "--filter section=library)")
        out.setdefault(field.strip(), []).append(value.strip())
    return out


class Searcher:
    """A verified bundle loaded for repeated queries (either index layout)."""

    def __init__(self, bundle: Path, *, threads: int | None = None, cache_bytes: int | None = None,
                 nprobe: int | None = None, index: Path | None = None, rerank: int | None = None) -> None:
        """``cache_bytes`` / ``nprobe`` / ``rerank``: a partitioned bundle's shard cache budget
        (None = 16 MiB, the browser's default), IVF lists probed per query and binary-code
        candidates rescored exactly (None = the manifest's).
        ``index``: an index exported by the page (``createIndex().export()``) searched instead of
        the bundle's own, with the bundle's model and text package (``_exported_index``)."""
        self.bundle = Path(bundle)
        self.manifest = verify_bundle(self.bundle)
        self._index_root = self.bundle
        if index is not None:
            self.manifest, self._index_root = _exported_index(self.manifest, Path(index))
        m = self.manifest
        self.layout: str = m["index"].get("layout", "flat")
        self.dims: int = int(m["index"]["dims"])
        _, self._bm25 = _bundle_text(self.bundle, m)
        self.tokenizer = _bundle_tokenizer(self.bundle, m)
        self._embedder = None
        self._embed_cache: dict[str, np.ndarray] = {}
        self._threads = threads
        self.index = self.part = None
        if self.layout == "partitioned":
            from websem.web.partitioned import CACHE_BYTES, PartitionedIndex

            self.part = PartitionedIndex(self.bundle, m, nprobe=nprobe, rerank=rerank,
                                         cache_bytes=CACHE_BYTES if cache_bytes is None else cache_bytes)
            if not hasattr(self._bm25, "meta_from_facets"):
                raise WebsemError("websem: this partitioned bundle's py/websem_text is older than the "
                                  f"partitioned layout (no meta_from_facets); {REBUILD}")
            meta = self._bm25.meta_from_facets(self.part.facets, self.part.n_docs)
            self.ranker = self._bm25.Ranker(None, search=m["search"], analyzer=self.part.analyzer, meta=meta)
        else:
            from websem.build.index import dequantize, read_index

            self.index = read_index(self._index_root, m["index"])
            self._doc_of = self.index.doc_of_chunk()
            # float32-dequantized rows widened to float64 once, stored transposed for
            # ``ordered_dots`` (the scores' float64 sums in index order, the browser's bits)
            self._rows_t = np.ascontiguousarray(dequantize(self.index.vectors, self.index.scales).T)
            lexical = (self._index_root / m["index"]["files"]["lexical"]).read_bytes()
            self.ranker = self._bm25.Ranker(lexical, self.index.chunks, self.index.docs, search=m["search"])
        # The bundle's rules (manifest.search): modes (the first is the default), k, n.
        self.modes: tuple[str, ...] = tuple(self.ranker.search["modes"])
        self.k: int = self.ranker.search["k"]
        self.n: int = self.ranker.search["n"]

    def info(self) -> dict:
        """What is loaded: the layout, counts, vector dtype and, for a partitioned bundle, its
        IVF settings and shard cache counters."""
        ix = self.manifest["index"]
        out = {"layout": self.layout, "docs": ix["docs"], "chunks": ix["chunks"], "dims": self.dims,
               "vector_dtype": ix["vector_dtype"]}
        if self.part is not None:
            out.update(self.part.stats())
        return out

    @property
    def embedder(self):
        """The CPU onnxruntime session, created on first use (lexical-only use never needs it)."""
        if self._embedder is None:
            from websem.export.embed import OnnxEmbedder

            spec = self.manifest["model"].get("word_rows")
            emb = (SplitEmbedder(self.bundle, self.manifest, threads=self._threads) if spec
                   else OnnxEmbedder(self.bundle / "model", threads=self._threads))
            if emb.dims != self.dims:
                raise WebsemError(f"websem: the model makes {emb.dims}-d vectors but the index "
                                  f"holds {self.dims}-d ones; rebuild with `websem build`")
            self._embedder = emb
        return self._embedder

    def embed(self, query: str) -> np.ndarray:
        """The float32 query embedding (tokenizer → one ORT run, batch 1). The last
        ``EMBED_CACHE`` queries are remembered: comparing modes runs the model once per query."""
        vec = self._embed_cache.pop(query, None)
        if vec is None:
            vec = self.embedder.embed_ids(self.tokenizer.encode(query).ids)
            vec.setflags(write=False)
        self._embed_cache[query] = vec  # most recent last
        if len(self._embed_cache) > EMBED_CACHE:
            del self._embed_cache[next(iter(self._embed_cache))]
        return vec

    def semantic_docs(self, qvec: np.ndarray, k: int, *, allowed=None) -> list:
        """Dense document ranking for one query embedding: top ``k`` ``DocHit(doc, score,
        chunk)``, best first (ties: lower document index), documents outside ``allowed``
        (``Ranker.allowed(filters)``, None = all) dropped *before* the cut. A partitioned
        bundle scores the chunks of its probed IVF lists only."""
        if self.part is not None:
            return self.part.dense_docs(qvec, k, allowed)
        from websem.web.partitioned import ordered_dots

        scores = ordered_dots(self._rows_t, np.asarray(qvec, dtype=np.float32).astype(np.float64))
        n_docs = len(self.index.docs)
        best = np.full(n_docs, -np.inf)
        np.maximum.at(best, self._doc_of, scores)
        # first chunk (index order) reaching its document's best score
        hit_idx = np.flatnonzero(scores == best[self._doc_of])
        docs_hit, first = np.unique(self._doc_of[hit_idx], return_index=True)
        best_chunk = np.full(n_docs, -1)
        best_chunk[docs_hit] = hit_idx[first]
        cand = np.flatnonzero(best_chunk >= 0)
        if allowed is not None:
            cand = cand[np.isin(cand, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))]
        order = cand[np.lexsort((cand, -best[cand]))][:k]
        return [self._bm25.DocHit(int(d), float(best[d]), int(best_chunk[d])) for d in order]

    def _results(self, query: str, *, mode: str, semantic: list, filters: dict | None, k: int,
                 allowed=None) -> dict:
        """``Ranker.results``: in one step over a flat bundle's in-memory chunks; for a
        partitioned bundle BM25 over its shards, ``rank``, the top documents' fragments, ``render``."""
        if self.part is None:
            return self.ranker.results(query, mode=mode, semantic=semantic, filters=filters, k=k)
        lex = None
        if mode != "semantic":
            # lexical mode ranks (and counts facets over) every match; hybrid fuses the top n
            lex = self.part.lexical_docs(self.ranker.analyzer.terms(query), allowed,
                                         None if mode == "lexical" else self.n)
        hits, facets = self.ranker.rank(query, mode=mode, semantic=semantic, lexical=lex, filters=filters, k=k)
        return {"hits": self.ranker.render(query, hits, self.part.rows(hits)), "facets": facets}

    def search_vector(self, qvec: np.ndarray, k: int | None = None, *, query: str = "",
                      filters: dict | None = None) -> list[dict]:
        """Semantic-mode hits for one query embedding (``query`` only picks the snippet)."""
        k = self._check_k(k)
        allowed = self.ranker.allowed(filters)
        sem = self.semantic_docs(qvec, max(k, self.n), allowed=allowed)
        return self._results(query, mode="semantic", semantic=sem, filters=filters, k=k, allowed=allowed)["hits"]

    def _check_k(self, k: int | None) -> int:
        if k is None:
            return self.k
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise WebsemError(f"websem: k={k!r}; k must be an integer >= 1")
        return k

    def query(self, query: str, k: int | None = None, *, mode: str | None = None,
              filters: dict | None = None) -> dict:
        """``{"hits": [{id, score, title, url, snippet, highlights}], "facets": {field: [[value,
        count], ...]}}`` for one query. ``highlights`` are ``[start, end)`` code-point ranges
        into ``snippet`` (never HTML). ``mode``/``k`` None: the bundle's (``manifest.search``)."""
        mode = self.modes[0] if mode is None else check_mode(mode, self.modes)
        k = self._check_k(k)
        allowed = self.ranker.allowed(filters)  # validates the filter fields first
        sem = ([] if mode == "lexical"
               else self.semantic_docs(self.embed(query), max(k, self.n), allowed=allowed))
        return self._results(query, mode=mode, semantic=sem, filters=filters, k=k, allowed=allowed)

    def search(self, queries: list[str], k: int | None = None, *, mode: str | None = None,
               filters: dict | None = None) -> list[list[dict]]:
        """Top-``k`` hits ``{id, score, title, url, snippet, highlights}`` for each query."""
        return [self.query(q, k, mode=mode, filters=filters)["hits"] for q in queries]


class WordRows:
    """The word-embedding rows of a split model (``manifest.model.word_rows``), read block by
    block as a query needs them, each block checked against its sha256 (its first ``hash_bytes``
    bytes, as the hash list keeps them) before use and kept."""

    def __init__(self, bundle: Path, manifest: dict) -> None:
        """``manifest``: verified (``verify_bundle`` checked the hash list, not the rows file)."""
        spec = manifest["model"]["word_rows"]
        self.path = Path(bundle) / spec["file"]
        self.rel, self.hashes_rel = spec["file"], spec["hashes"]
        self.rows, self.dims = int(spec["rows"]), int(spec["dims"])
        self.row_bytes, self.block_rows = int(spec["row_bytes"]), int(spec["block_rows"])
        self.input = spec["input"]
        self.hashes = (Path(bundle) / spec["hashes"]).read_bytes()
        self.hash_bytes = int(spec.get("hash_bytes", 32))  # verify_bundle allowed it
        self.size = int(manifest["files"][spec["file"]]["size"])
        self.blocks: dict[int, np.ndarray] = {}  # block -> its rows as [n, row_bytes] uint8

    def _block(self, k: int) -> np.ndarray:
        import hashlib

        held = self.blocks.get(k)
        if held is not None:
            return held
        start = k * self.block_rows * self.row_bytes
        end = min(start + self.block_rows * self.row_bytes, self.size)
        try:
            with self.path.open("rb") as f:
                f.seek(start)
                data = f.read(end - start)
        except OSError as e:
            raise WebsemError(f"websem: could not read {self.rel} block {k} ({e}); re-upload the whole "
                              f"bundle folder or {REBUILD}") from None
        if len(data) != end - start:
            raise WebsemError(f"websem: {self.rel} bytes {start}-{end - 1} (block {k}) came back as {len(data)} "
                              f"bytes, not {end - start}; the file is truncated: re-upload the whole bundle "
                              f"folder or {REBUILD}")
        n = self.hash_bytes
        got, want = hashlib.sha256(data).digest()[:n].hex(), self.hashes[n * k:n * k + n].hex()
        if got != want:
            raise WebsemError(f"websem: {self.rel} block {k} (bytes {start}-{end - 1}) does not match the sha256 "
                              f"in {self.hashes_rel} (got {got}, expected {want or 'none'}); the file is corrupt, "
                              f"tampered with or from another build: re-upload the whole bundle folder or {REBUILD}")
        block = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.row_bytes)
        self.blocks[k] = block
        return block

    def embeddings(self, ids) -> np.ndarray:
        """The float32 rows of ``ids``: ``[len(ids), dims]``, each ``float32(int8) * float32(scale)``."""
        out = np.empty((len(ids), self.dims), dtype=np.float32)
        for j, i in enumerate(ids):
            i = int(i)
            if not 0 <= i < self.rows:
                raise WebsemError(f"websem: token id {i} is outside the model's {self.rows} word rows; "
                                  "the tokenizer and model do not match, rebuild with `websem build`")
            row = self._block(i // self.block_rows)[i % self.block_rows]
            scale = row[self.dims:].view("<f4")[0]
            out[j] = row[:self.dims].view(np.int8).astype(np.float32) * np.float32(scale)
        return out


class SplitEmbedder:
    """``OnnxEmbedder``'s ``embed_ids`` for a split model: the body model fed the word rows."""

    def __init__(self, bundle: Path, manifest: dict, *, threads: int | None = None) -> None:
        from websem.export.embed import OnnxEmbedder

        self.rows = WordRows(bundle, manifest)
        self.body = OnnxEmbedder(Path(bundle) / "model", threads=threads)
        if self.rows.input not in self.body.input_names:
            raise WebsemError(f"websem: model/model.onnx has no input {self.rows.input!r} although "
                              f"manifest.model.word_rows names it; {REBUILD}")
        self.dims = self.body.dims
        self.session = self.body.session

    def embed_ids(self, ids) -> np.ndarray:
        """One ORT run on one token sequence (with [CLS]/[SEP]) → float32 [dims]."""
        arr = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        feeds = {"input_ids": arr, "attention_mask": np.ones_like(arr), "token_type_ids": np.zeros_like(arr),
                 self.rows.input: self.rows.embeddings(arr[0])[None]}
        feeds = {k: v for k, v in feeds.items() if k in self.body.input_names}
        return self.session.run([self.body.output], feeds)[0][0].astype(np.float32, copy=False)


def _exported_index(manifest: dict, path: Path) -> tuple[dict, Path]:
    """The bundle manifest with its ``index`` and ``search`` taken from the exported index at
    ``path`` (verified, and made with the bundle's model), and the folder holding its files."""
    import atexit
    import shutil
    import tempfile

    from websem.text.inpage import read_export

    try:
        data = path.read_bytes()
    except OSError as e:
        raise WebsemError(f"websem: --index {path} cannot be read ({e.strerror}); pass the file the page's "
                          "export() wrote") from None
    meta, files = read_export(data, model_sha256=manifest["model"]["sha256"], model_id=manifest["model"].get("id", ""))
    root = Path(tempfile.mkdtemp(prefix="websem-index-"))
    atexit.register(shutil.rmtree, root, True)
    for rel, blob in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(blob)
    return {**manifest, "index": meta["index"], "search": check_search(meta["search"])}, root


def load_bundle(bundle: Path, *, threads: int | None = None, cache_bytes: int | None = None,
                nprobe: int | None = None, index: Path | None = None, rerank: int | None = None) -> Searcher:
    """Verify and load a bundle for searching (``Searcher`` says what the options do)."""
    return Searcher(bundle, threads=threads, cache_bytes=cache_bytes, nprobe=nprobe, index=index, rerank=rerank)


def search(bundle: Path, queries: list[str], k: int | None = None, mode: str | None = None,
           filters: dict | None = None) -> list[list[dict]]:
    """Search ``bundle`` for each query (loads and verifies the bundle once); ``mode`` is one of
    the bundle's modes (None: its default, hybrid), ``filters`` ``{field: value or [values]}``."""
    if mode is not None:
        check_mode(mode)
    return load_bundle(bundle).search(list(queries), k, mode=mode, filters=filters)


def search_results(bundle: Path, queries: list[str], k: int | None = None, mode: str | None = None,
                   filters: dict | None = None) -> list[dict]:
    """Like ``search`` but each query's full result ``{"hits", "facets"}``."""
    if mode is not None:
        check_mode(mode)
    searcher = load_bundle(bundle)
    return [searcher.query(q, k, mode=mode, filters=filters) for q in queries]
