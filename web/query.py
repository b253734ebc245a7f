"""`websem query`: the CPU reference search over a bundle (what the browser must match).

Same bundle files as the browser: ``model/tokenizer.json`` through the bundle's own copy of
websem's stdlib WordPiece tokenizer (``py/websem_text``, exactly the code Pyodide runs),
``model/model.onnx`` through onnxruntime (CPU, one query per run), and the index files.
Scoring follows docs/architecture.md "Search semantics" (see ``websem.build.index.chunk_scores``):
float64 dot products, document score = max over its chunks (the first chunk reaching the max
wins), order by score descending then document index ascending.

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
    "SUPPORTED_FORMAT_VERSIONS",
    "Searcher",
    "load_bundle",
    "verify_bundle",
    "search",
    "query_cmd",
]

SUPPORTED_FORMAT_VERSIONS = (1,)
SNIPPET_CHARS = 240  # same as web/src/engine.js


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


def _bundle_tokenizer(bundle: Path, manifest: dict):
    """The WordPiece tokenizer from the bundle's own ``py/websem_text`` (the code the browser runs
    in Pyodide), so the reference tokenizes exactly like the bundle even when the installed websem
    is newer or older. Loaded under a name derived from the files' sha256 (verified already)."""
    import hashlib
    import importlib
    import importlib.util

    pkg = bundle / "py" / "websem_text"
    text = (bundle / "model" / "tokenizer.json").read_text("utf-8")
    max_len = int(manifest["model"]["max_seq_length"])
    py_files = manifest.get("runtime", {}).get("python_files", [])
    if not (pkg / "wordpiece.py").is_file() or "py/websem_text/wordpiece.py" not in py_files:
        from websem.text.wordpiece import WordPieceTokenizer

        return WordPieceTokenizer.from_json(text, max_length=max_len)
    digest = hashlib.sha256("".join(manifest["files"][f]["sha256"] for f in sorted(py_files))
                            .encode()).hexdigest()[:16]
    name = f"_websem_bundle_text_{digest}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, pkg / "__init__.py", submodule_search_locations=[str(pkg)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    wordpiece = importlib.import_module(f"{name}.wordpiece")
    return wordpiece.WordPieceTokenizer.from_json(text, max_length=max_len)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= SNIPPET_CHARS:
        return flat
    cut = flat.rfind(" ", 0, SNIPPET_CHARS + 1)
    return flat[: cut if cut > SNIPPET_CHARS // 2 else SNIPPET_CHARS] + "…"


class Searcher:
    """A verified bundle loaded for repeated queries."""

    def __init__(self, bundle: Path, *, threads: int | None = None) -> None:
        from websem.build.index import read_index
        from websem.export.embed import OnnxEmbedder

        self.bundle = Path(bundle)
        self.manifest = verify_bundle(self.bundle)
        m = self.manifest
        self.index = read_index(self.bundle, m["index"])
        model_dir = self.bundle / "model"
        self.tokenizer = _bundle_tokenizer(self.bundle, m)
        self.embedder = OnnxEmbedder(model_dir, threads=threads)
        if self.embedder.dims != self.index.vectors.shape[1]:
            raise WebsemError(f"websem: the model makes {self.embedder.dims}-d vectors but the "
                              f"index holds {self.index.vectors.shape[1]}-d ones; rebuild with "
                              "`websem build`")
        self._doc_of = self.index.doc_of_chunk()
        # float32-dequantized rows, widened once: scoring is then one float64 mat-vec per query
        from websem.build.index import dequantize

        self._rows = dequantize(self.index.vectors, self.index.scales)

    def embed(self, query: str) -> np.ndarray:
        """The float32 query embedding (tokenizer → one ORT run, batch 1)."""
        return self.embedder.embed_ids(self.tokenizer.encode(query).ids)

    def search_vector(self, qvec: np.ndarray, k: int = 10) -> list[dict]:
        """Rank documents for one query embedding."""
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
        order = cand[np.lexsort((cand, -best[cand]))][:k]
        hits = []
        for d in order:
            doc = self.index.docs[d]
            chunk = self.index.chunks[best_chunk[d]]
            hits.append({
                "id": doc["id"],
                "score": float(best[d]),
                "title": doc.get("title", ""),
                "url": (doc.get("url") or "") + (chunk.get("anchor") or ""),
                "snippet": _snippet(chunk.get("text", "")),
            })
        return hits

    def search(self, queries: list[str], k: int = 10) -> list[list[dict]]:
        """Top-``k`` hits ``{id, score, title, url, snippet}`` for each query."""
        if k < 1:
            raise WebsemError(f"websem: k={k}; k must be at least 1")
        return [self.search_vector(self.embed(q), k) for q in queries]


def load_bundle(bundle: Path, *, threads: int | None = None) -> Searcher:
    """Verify and load a bundle for searching."""
    return Searcher(bundle, threads=threads)


def search(bundle: Path, queries: list[str], k: int = 10) -> list[list[dict]]:
    """Search ``bundle`` for each query (loads and verifies the bundle once)."""
    return load_bundle(bundle).search(list(queries), k)


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
@click.option("--json", "as_json", is_flag=True,
              help='One JSON line per query: {"query_id", "hits": [{"id", "score"}]}.')
def query_cmd(bundle: Path, query: str | None, queries_file: Path | None, k: int,
              as_json: bool) -> None:
    """Search BUNDLE on the CPU for QUERY, or for every query of --queries."""
    try:
        if (query is None) == (queries_file is None):
            raise WebsemError("websem: pass either a QUERY argument or --queries FILE "
                              "(exactly one of them)")
        qs = _read_queries(queries_file) if queries_file else [("0", query)]
        searcher = load_bundle(bundle)
        for qid, text in qs:
            hits = searcher.search([text], k)[0]
            if as_json:
                click.echo(json.dumps({"query_id": qid, "hits": [
                    {"id": h["id"], "score": h["score"]} for h in hits]}, ensure_ascii=False))
            else:
                _print_table(qid, text, hits)
    except WebsemError as e:
        click.echo(str(e), err=True)
        sys.exit(2)


def _print_table(qid: str, text: str, hits: list[dict]) -> None:
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
        body.append("\n" + h["snippet"], style="dim")
        table.add_row(str(i), f"{h['score']:.4f}", Text(h["id"]), body)
    Console().print(table)

