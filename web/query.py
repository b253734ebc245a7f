"""`websem query`: the CPU reference search over a bundle (what the browser must match).

Same bundle files as the browser: ``model/tokenizer.json`` through the bundle's own copy of
websem's stdlib WordPiece tokenizer (``py/websem_text``, exactly the code Pyodide runs),
``model/model.onnx`` through onnxruntime (CPU, one query per run), and the index files.
Scoring follows docs/architecture.md "Search semantics" (see ``websem.build.index.chunk_scores``):
float64 dot products, document score = max over its chunks (the first chunk reaching the max
wins), order by score descending then document index ascending. Everything after the dense
ranking (BM25 over ``index/lexical.bin``, filters, rank fusion, facets, snippets, highlights) is
the bundle's own ``py/websem_text/bm25.py`` ``Ranker.results``: the code the browser runs in
Pyodide, so both rank identically (docs/hybrid.md). Modes: ``hybrid`` (default, RRF of both
sides), ``semantic``, ``lexical`` (no model run).

Before anything is used, the bundle is verified like the browser does: known ``format_version``,
every file's sha256 and size against ``manifest.json``, and the index's ``model_sha256`` against
the shipped model. Each failure is a ``WebsemError`` that says what to do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from websem.text.errors import WebsemError

__all__ = [
    "MODES",
    "SUPPORTED_FORMAT_VERSIONS",
    "Searcher",
    "load_bundle",
    "verify_bundle",
    "search",
    "parse_filters",
    "search_results",
    "query_cmd",
]

SUPPORTED_FORMAT_VERSIONS = (1,)
SNIPPET_CHARS = 240  # same as web/src/engine.js
MODES = ("hybrid", "semantic", "lexical")  # first = default
DEFAULT_FACETS = ("tags", "section", "language")
EMBED_CACHE = 1024  # query embeddings kept per Searcher (384 float32 = 1.5 KB each)


def _sha256(path: Path) -> str:
    from websem.build.bundle import sha256_file

    return sha256_file(path)


def verify_bundle(bundle: Path) -> dict:
    """The bundle's manifest after checking format, every file's sha256/size and the model match."""
    bundle = Path(bundle)
    mpath = bundle / "manifest.json"
    if not mpath.is_file():
        raise WebsemError(f"websem: {bundle} has no manifest.json, so it is not a websem bundle; "
                          "build one with `websem build SOURCE --out BUNDLE`")
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise WebsemError(f"websem: {mpath} is not valid JSON ({e}); rebuild the bundle with "
                          "`websem build`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "websem-bundle":
        raise WebsemError(f"websem: {mpath} is not a websem bundle manifest (format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else None!r}); "
                          "build one with `websem build`")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise WebsemError(f"websem: bundle format_version {version!r} is not supported (this "
                          f"websem reads {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}); rebuild "
                          "the bundle with this websem's `websem build`, or upgrade websem")
    files = manifest.get("files") or {}
    needed = ["model/model.onnx", "model/tokenizer.json",
              *manifest.get("index", {}).get("files", {}).values()]
    for rel in needed:
        if rel not in files:
            raise WebsemError(f"websem: {mpath} does not list {rel}; rebuild the bundle with "
                              "`websem build`")
    for rel, info in files.items():
        p = bundle / rel
        if not p.is_file():
            raise WebsemError(f"websem: bundle file {rel} is missing from {bundle}; copy the "
                              "complete bundle folder, or rebuild it with `websem build`")
        if p.stat().st_size != info.get("size") or _sha256(p) != info.get("sha256"):
            raise WebsemError(f"websem: bundle file {rel} does not match its sha256 in "
                              "manifest.json (corrupt or modified); rebuild the bundle with "
                              "`websem build`, or copy it again")
    model_sha = files["model/model.onnx"]["sha256"]
    shipped = manifest.get("model", {}).get("sha256")
    index_sha = manifest.get("index", {}).get("model_sha256")
    if index_sha != model_sha or shipped != model_sha:
        raise WebsemError(f"websem: index built with model {index_sha} but bundle ships model "
                          f"{model_sha}; rebuild with `websem build`")
    return manifest


def _bundle_text(bundle: Path, manifest: dict) -> tuple:
    """``(wordpiece, bm25)`` modules from the bundle's own ``py/websem_text`` (the code the
    browser runs in Pyodide), so the reference tokenizes and ranks exactly like the bundle even
    when the installed websem is newer or older. Loaded under a name derived from the files'
    sha256 (verified already). Bundles without ``bm25.py`` (built before hybrid search) get the
    installed ``websem.text.bm25``."""
    import hashlib
    import importlib
    import importlib.util

    pkg = bundle / "py" / "websem_text"
    py_files = manifest.get("runtime", {}).get("python_files", [])
    if not (pkg / "wordpiece.py").is_file() or "py/websem_text/wordpiece.py" not in py_files:
        import websem.text.bm25 as bm25
        import websem.text.wordpiece as wordpiece

        return wordpiece, bm25
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
    wordpiece = importlib.import_module(f"{name}.wordpiece")
    if "py/websem_text/bm25.py" in py_files:
        # analyze.py imports `snowballstemmer`: in CPython that is the installed package (the
        # bundle's py/snowballstemmer holds the same upstream files, trimmed to English)
        bm25 = importlib.import_module(f"{name}.bm25")
    else:
        import websem.text.bm25 as bm25
    return wordpiece, bm25


def _bundle_tokenizer(bundle: Path, manifest: dict):
    """The WordPiece tokenizer from the bundle's own ``py/websem_text`` (see ``_bundle_text``)."""
    wordpiece, _ = _bundle_text(bundle, manifest)
    text = (bundle / "model" / "tokenizer.json").read_text("utf-8")
    max_len = int(manifest["model"]["max_seq_length"])
    return wordpiece.WordPieceTokenizer.from_json(text, max_length=max_len)


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise WebsemError(f"websem: unknown search mode {mode!r}; allowed: {', '.join(MODES)}")
    return mode


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
    """A verified bundle loaded for repeated queries."""

    def __init__(self, bundle: Path, *, threads: int | None = None) -> None:
        from websem.build.index import read_index

        self.bundle = Path(bundle)
        self.manifest = verify_bundle(self.bundle)
        m = self.manifest
        self.index = read_index(self.bundle, m["index"])
        _, self._bm25 = _bundle_text(self.bundle, m)
        self.tokenizer = _bundle_tokenizer(self.bundle, m)
        self._embedder = None
        self._embed_cache: dict[str, np.ndarray] = {}
        self._threads = threads
        self._doc_of = self.index.doc_of_chunk()
        # float32-dequantized rows, widened once: scoring is then one float64 mat-vec per query
        from websem.build.index import dequantize

        self._rows = dequantize(self.index.vectors, self.index.scales)
        lex_rel = m["index"].get("files", {}).get("lexical")
        lexical = (self.bundle / lex_rel).read_bytes() if lex_rel else None
        # manifest.index.fusion (hybrid fusion settings); bundles without it rank by RRF, and
        # their own bm25.py (which this runs) predates the keyword.
        fusion = m["index"].get("fusion")
        self.ranker = self._bm25.Ranker(lexical, self.index.chunks, self.index.docs,
                                        facet_fields=m["index"].get("facets", DEFAULT_FACETS),
                                        **({} if fusion is None else {"fusion": fusion}))
        settings = m["index"].get("lexical") or {}
        self.n = int(settings.get("n", 100))
        self.rrf_k = int(settings.get("rrf_k", self._bm25.DEFAULT_RRF_K))
        # Like the browser's info.modes: the first is the default; bundles built before hybrid
        # search (no lexical index) are semantic-only.
        self.modes: tuple[str, ...] = MODES if lex_rel else ("semantic",)

    @property
    def embedder(self):
        """The CPU onnxruntime session, created on first use (lexical-only use never needs it)."""
        if self._embedder is None:
            from websem.export.embed import OnnxEmbedder

            emb = OnnxEmbedder(self.bundle / "model", threads=self._threads)
            if emb.dims != self.index.vectors.shape[1]:
                raise WebsemError(f"websem: the model makes {emb.dims}-d vectors but the index "
                                  f"holds {self.index.vectors.shape[1]}-d ones; rebuild with "
                                  "`websem build`")
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
        (``Ranker.allowed(filters)``, None = all) dropped *before* the cut."""
        scores = self._rows @ np.asarray(qvec, dtype=np.float32).astype(np.float64)
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

    def search_vector(self, qvec: np.ndarray, k: int = 10, *, query: str = "",
                      filters: dict | None = None) -> list[dict]:
        """Semantic-mode hits for one query embedding (``query`` only picks the snippet)."""
        sem = self.semantic_docs(qvec, max(k, self.n), allowed=self.ranker.allowed(filters))
        return self.ranker.results(query, mode="semantic", semantic=sem, filters=filters, k=k,
                                   n=self.n, rrf_k=self.rrf_k,
                                   snippet_chars=SNIPPET_CHARS)["hits"]

    def query(self, query: str, k: int = 10, *, mode: str | None = "hybrid",
              filters: dict | None = None) -> dict:
        """``{"hits": [{id, score, title, url, snippet, highlights}], "facets": {field: [[value,
        count], ...]}}`` for one query. ``highlights`` are ``[start, end)`` code-point ranges
        into ``snippet`` (never HTML). ``mode=None``: the bundle's default (``self.modes[0]``)."""
        mode = self.modes[0] if mode is None else _check_mode(mode)
        if k < 1:
            raise WebsemError(f"websem: k={k}; k must be at least 1")
        allowed = self.ranker.allowed(filters)  # validates the filter fields first
        sem = ([] if mode == "lexical"
               else self.semantic_docs(self.embed(query), max(k, self.n), allowed=allowed))
        return self.ranker.results(query, mode=mode, semantic=sem, filters=filters, k=k,
                                   n=self.n, rrf_k=self.rrf_k, snippet_chars=SNIPPET_CHARS)

    def search(self, queries: list[str], k: int = 10, *, mode: str = "hybrid",
               filters: dict | None = None) -> list[list[dict]]:
        """Top-``k`` hits ``{id, score, title, url, snippet, highlights}`` for each query."""
        return [self.query(q, k, mode=mode, filters=filters)["hits"] for q in queries]


def load_bundle(bundle: Path, *, threads: int | None = None) -> Searcher:
    """Verify and load a bundle for searching."""
    return Searcher(bundle, threads=threads)


def search(bundle: Path, queries: list[str], k: int = 10, mode: str = "hybrid",
           filters: dict | None = None) -> list[list[dict]]:
    """Search ``bundle`` for each query (loads and verifies the bundle once); ``mode`` is one of
    ``MODES`` (default hybrid), ``filters`` ``{field: value or [values]}``."""
    _check_mode(mode)
    return load_bundle(bundle).search(list(queries), k, mode=mode, filters=filters)


def search_results(bundle: Path, queries: list[str], k: int = 10, mode: str = "hybrid",
                   filters: dict | None = None) -> list[dict]:
    """Like ``search`` but each query's full result ``{"hits", "facets"}``."""
    _check_mode(mode)
    searcher = load_bundle(bundle)
    return [searcher.query(q, k, mode=mode, filters=filters) for q in queries]


def _read_queries(path: Path) -> list[tuple[str, str]]:
    out = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise WebsemError(f"websem: {path} is not valid UTF-8 (offset {e.start}); queries.jsonl "
                          "must be UTF-8 JSON Lines") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append((str(obj["_id"]), str(obj["text"])))
        except (ValueError, KeyError, TypeError):
            raise WebsemError(f"websem: {path} line {n} is not a BEIR query "
                              '({"_id": ..., "text": ...})') from None
    if not out:
        raise WebsemError(f"websem: {path} holds no queries; expected BEIR JSON Lines "
                          '({"_id": ..., "text": ...})')
    return out


@click.command("query")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@click.option("--queries", "queries_file", type=click.Path(path_type=Path), default=None,
              help='BEIR queries.jsonl ({"_id", "text"} per line).')
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Hits per query.")
@click.option("--mode", type=click.Choice(MODES), default=None,
              help="hybrid = rank fusion of BM25 and embeddings; semantic; lexical (BM25 only). "
                   "[default: hybrid; semantic for bundles built without a lexical index]")
@click.option("--filter", "filter_items", multiple=True, metavar="FIELD=VALUE",
              help="Only documents whose FIELD (tags, section, language: see the bundle's "
                   "manifest index.facets) has VALUE. Repeatable: values of one field are "
                   "OR-ed, fields AND-ed.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON line per query: {"query_id", "mode", "hits": [{"id", "score", '
                   '"url", "snippet", "highlights"}], "facets"}.')
def query_cmd(bundle: Path, query: str | None, queries_file: Path | None, k: int, mode: str | None,
              filter_items: tuple[str, ...], as_json: bool) -> None:
    """Search BUNDLE on the CPU for QUERY, or for every query of --queries."""
    try:
        if (query is None) == (queries_file is None):
            raise WebsemError("websem: pass either a QUERY argument or --queries FILE "
                              "(exactly one of them)")
        filters = parse_filters(filter_items) or None
        qs = _read_queries(queries_file) if queries_file else [("0", query)]
        searcher = load_bundle(bundle)
        mode = mode or searcher.modes[0]
        for qid, text in qs:
            res = searcher.query(text, k, mode=mode, filters=filters)
            if as_json:
                click.echo(json.dumps({"query_id": qid, "mode": mode, "hits": [
                    {"id": h["id"], "score": h["score"], "url": h["url"],
                     "snippet": h["snippet"], "highlights": h["highlights"]}
                    for h in res["hits"]], "facets": res["facets"]}, ensure_ascii=False))
            else:
                _print_table(qid, text, res["hits"], res["facets"])
    except WebsemError as e:
        click.echo(str(e), err=True)
        sys.exit(2)


def _print_table(qid: str, text: str, hits: list[dict], facets: dict | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{qid}: {text}"), show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id")
    table.add_column("title / snippet", overflow="fold")
    for i, h in enumerate(hits, 1):
        body = Text(h["title"], style="bold")
        body.append("\n")
        sn = Text(h["snippet"], style="dim")
        for start, end in h.get("highlights", ()):
            sn.stylize("bold yellow", start, end)
        body.append_text(sn)
        table.add_row(str(i), f"{h['score']:.4f}", Text(h["id"]), body)
    console = Console()
    console.print(table)
    for field, counts in (facets or {}).items():
        if counts:
            console.print(Text(f"{field}: " + ", ".join(f"{v} ({c})" for v, c in counts),
                               style="dim"))

