"""Fit the ranking settings (title weight, hybrid fusion) on training queries, report held-out.

Run from the repository root::

    .venv/bin/python bench/fit_fusion.py                 # the four judged sets in ../shared/data
    .venv/bin/python bench/fit_fusion.py --sets cranfield cisi --no-write
    .venv/bin/python bench/fit_fusion.py --beir DIR      # any BEIR-layout set with a train split
    .venv/bin/python bench/fit_fusion.py --site django   # real site: lexical weights on its dev split

What is fitted, on training queries only (the product ships ONE setting for every site):

- ``title_weight`` (the document title repeated w times in every chunk's BM25 text,
  build/lexical.py ``chunk_lexical_text``) and the fusion: RRF (k=60, the ranking before the
  fitted settings) or the convex combination ``alpha * dense + (1 - alpha) * BM25`` of each
  side's scores normalized over its top-N candidates (``minmax``, ``max`` or ``zscore``,
  web/text/fusion.py ``convex``), alpha on a 0.05 grid, N = 100 (the product's candidate depth).
- Objective: the mean over the fitted sets of training nDCG@10 (each set weighs the same, so
  SciFact's 809 queries do not drown Medline's 30).

Splits (``query_split``): ``qrels/train.tsv`` or ``qrels/dev.tsv`` = training, ``qrels/test.tsv``
= held out. A set with one qrels file is split in two by a hash of the query id (sha256, first
byte even = train): deterministic and independent of file order. ``scifact-train`` holds
SciFact's *train* queries only, so it is all training and its numbers are in-sample (said in
the report). Reported: held-out nDCG@10 per set (and on all queries), the chosen settings, and
the training curve.

Every ranking is made by the shipped code: ``websem.text.analyze.Analyzer``, ``LexicalIndex``
(the serialized index), ``aggregate_docs`` and ``fuse`` from web/text/bm25.py. Dense vectors are
bench/bench_quality.py's cached websem embeddings (``.cache/quality/``; whole documents).

``--site NAME`` (bench/realsite/NAME: queries.jsonl, qrels/dev.tsv, qrels/test.tsv, judged to the
site's page paths): the site's HTML is read and chunked by websem's own build code
(build/sources.py, build/chunk.py), and title/heading weights are fitted for the lexical side on
the dev split (no embeddings: a site has thousands of chunks and this box is shared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # noqa: E402
from common import machine_info  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SETS = bq.SETS
N = 100  # candidates per side (manifest search.n)
RRF_K = 60
TITLE_WEIGHTS = [1, 2, 3, 4]
HEADING_WEIGHTS = [0, 1, 2, 3]
ALPHAS = [round(0.05 * i, 2) for i in range(21)]
NORMS = ["minmax", "max", "zscore"]
SITES = {"django": "/usr/share/doc/python-django-doc/html", "postgres": "/usr/share/doc/postgresql-doc-15/html"}


# --------------------------------------------------------------------------- data


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if i == 0 or not line.strip():
            continue
        qid, did, grade = line.split("\t")
        out.setdefault(qid, {})[did] = int(grade)
    return out


def query_split(root: Path) -> tuple[dict[str, dict[str, int]], set[str], set[str], str]:
    """(qrels of every split, training query ids, held-out query ids, how it was split)."""
    files = {p.stem: p for p in sorted((root / "qrels").glob("*.tsv"))}
    train_name = next((s for s in ("train", "dev") if s in files), None)
    if train_name and "test" in files:
        tr, te = _qrels(files[train_name]), _qrels(files["test"])
        return tr | te, set(tr), set(te), f"qrels/{train_name}.tsv = train, qrels/test.tsv = held out"
    if len(files) != 1:
        sys.exit(f"fit_fusion: {root}/qrels: want train.tsv or dev.tsv + test.tsv, or one file; got {sorted(files)}")
    (name, path), = files.items()
    qrels = _qrels(path)
    if name == "train":
        return qrels, set(qrels), set(), "qrels/train.tsv only: all queries train (in-sample numbers)"
    train = {q for q in qrels if hashlib.sha256(q.encode()).digest()[0] % 2 == 0}
    return qrels, train, set(qrels) - train, (f"qrels/{name}.tsv split by sha256(query id): first byte even "
                                               "= train, odd = held out")


def load_beir(root: Path) -> dict:
    """A BEIR-layout set in the shape bench_quality uses (same texts and query lists, so its
    embedding cache applies) plus titles, bodies and the split."""
    corpus = bq.read_jsonl(root / "corpus.jsonl")
    qrels, train, test, how = query_split(root)
    queries = [q for q in bq.read_jsonl(root / "queries.jsonl")
               if any(g > 0 for g in qrels.get(str(q["_id"]), {}).values())]
    titles = [(d.get("title") or "").strip() for d in corpus]
    bodies = [d.get("text") or "" for d in corpus]
    return {
        "name": root.name,
        "doc_ids": [str(d["_id"]) for d in corpus],
        "titles": titles,
        "bodies": bodies,
        "texts": [(t + " " + b).strip() for t, b in zip(titles, bodies, strict=True)],
        "qids": [str(q["_id"]) for q in queries],
        "queries": [q["text"] for q in queries],
        "qrels": qrels,
        "train": [i for i, q in enumerate(queries) if str(q["_id"]) in train],
        "test": [i for i, q in enumerate(queries) if str(q["_id"]) in test],
        "split": how,
    }


# --------------------------------------------------------------------------- rankings


def lexical_rankings(chunks: list[dict], docs: list[dict], queries: Sequence[str], *, title_weight: int,
                     heading_weight: int = 0, depth: int = N) -> list[list]:
    """Top-``depth`` ``DocHit`` documents per query, exactly as a bundle ranks them (the
    shipped build code, serialized index, max over chunks)."""
    from websem.build.lexical import build_lexical_index
    from websem.text.analyze import Analyzer
    from websem.text.bm25 import LexicalIndex, aggregate_docs

    index = LexicalIndex.from_bytes(build_lexical_index(chunks, docs, title_weight=title_weight,
                                                        heading_weight=heading_weight, progress=False))
    analyzer = Analyzer.from_config(index.analyzer)
    chunk_doc = [int(c["doc"]) for c in chunks]
    return [aggregate_docs(index.scores(analyzer.terms(q)), chunk_doc, k=depth) for q in queries]


def bm25f_rankings(titles: Sequence[str], bodies: Sequence[str], queries: Sequence[str], *, title_weight: float,
                   k1: float = 1.2, b: float = 0.75, depth: int = N) -> list[list[int]]:
    """The alternative to field repetition, for comparison only (never shipped): BM25F with
    per-field length normalisation (Robertson & Zaragoza 2009): ``tf~ = sum_f w_f * tf_f /
    (1 - b + b * len_f / avglen_f)``, ``score = idf * tf~ / (k1 + tf~)``, Lucene idf over
    documents containing the term in any field. Top-``depth`` document indices per query."""
    import math

    from websem.text.analyze import Analyzer

    a = Analyzer()
    fields = [[a.terms(t) for t in titles], [a.terms(t) for t in bodies]]
    weights = [title_weight, 1.0]
    n_docs = len(titles)
    post: dict[str, dict[int, list[int]]] = {}
    for f, docs in enumerate(fields):
        for d, terms in enumerate(docs):
            for t in terms:
                post.setdefault(t, {}).setdefault(d, [0, 0])[f] += 1
    avg = [sum(len(x) for x in docs) / n_docs or 1.0 for docs in fields]
    norm = [[1 - b + b * len(x) / avg[f] for x in docs] for f, docs in enumerate(fields)]
    out = []
    for q in queries:
        acc: dict[int, float] = {}
        for t in a.terms(q):
            p = post.get(t)
            if not p:
                continue
            idf = math.log(1 + (n_docs - len(p) + 0.5) / (len(p) + 0.5))
            for d, tfs in p.items():
                tf = sum(weights[f] * tfs[f] / norm[f][d] for f in (0, 1))
                acc[d] = acc.get(d, 0.0) + idf * tf / (k1 + tf)
        out.append([d for d, _ in sorted(acc.items(), key=lambda x: (-x[1], x[0]))[:depth]])
    return out


def dense_rankings(qv: np.ndarray, dv: np.ndarray, depth: int = N) -> list[list]:
    """Top-``depth`` ``DocHit`` documents per query: float64 dot products, score descending then
    document ascending (web/query.py ``semantic_docs`` on one-chunk documents)."""
    from websem.text.bm25 import DocHit

    scores = qv.astype(np.float32).astype(np.float64) @ dv.astype(np.float32).astype(np.float64).T
    out = []
    for row in scores:
        idx = np.lexsort((np.arange(row.size), -row))[:depth]
        out.append([DocHit(int(d), float(row[d]), int(d)) for d in idx])
    return out


def fused(lex: list, sem: list, fusion: dict | None, mode: str = "hybrid", k: int = 100) -> list[list[int]]:
    from websem.text.bm25 import fuse

    return [[h.doc for h in fuse(mode, lexical=lx, semantic=sm, k=k, n=N, fusion=fusion)]
            for lx, sm in zip(lex, sem, strict=True)]


def per_query(data: dict, runs: list[list[int]], metric: str = "ndcg@10") -> np.ndarray:
    ids = data["doc_ids"]
    vals = []
    for qid, r in zip(data["qids"], runs, strict=True):
        ranked = [ids[i] for i in r]
        judged = data["qrels"][qid]
        vals.append(bq.ndcg_at(ranked, judged, 10) if metric == "ndcg@10" else bq.recall_at(ranked, judged, 100))
    return np.asarray(vals)


def mean_over(vals: np.ndarray, idx: Sequence[int]) -> float | None:
    return round(float(vals[list(idx)].mean()), 4) if len(idx) else None


def fusion_grid() -> list[dict]:
    grid: list[dict] = [{"method": "rrf", "rrf_k": RRF_K}]
    grid += [{"method": "rrf", "rrf_k": RRF_K, "alpha": a} for a in ALPHAS if 0 < a < 1 and a != 0.5]
    for norm in NORMS:
        grid += [{"method": "convex", "norm": norm, "alpha": a} for a in ALPHAS]
    return grid


def label(fusion: dict) -> str:
    if fusion["method"] == "rrf":
        return "rrf" if "alpha" not in fusion else f"wrrf-{fusion['alpha']:.2f}"
    return f"convex-{fusion['norm']}-{fusion['alpha']:.2f}"


# --------------------------------------------------------------------------- judged sets


def fit_sets(names: Sequence[str], roots: Sequence[Path], title_weight: int | None = None) -> dict:
    """Fit on the sets' training queries; ``title_weight`` fixes the title weight (chosen on
    other data, e.g. the real sites' dev split) and fits the fusion for it."""
    model_dir = bq.model_package_dir()
    if model_dir is None:
        sys.exit("fit_fusion: no model package at .cache/model (export one: see bench_quality.py)")
    sets = {}
    for name, root in zip(names, roots, strict=True):
        data = load_beir(root)
        d = bq.websem_embed(data, "docs", model_dir)
        q = bq.websem_embed(data, "queries", model_dir)
        sem = dense_rankings(q, d)
        chunks = [{"doc": i, "anchor": "", "text": b} for i, b in enumerate(data["bodies"])]
        docs = [{"title": t} for t in data["titles"]]
        lex = {}
        for w in TITLE_WEIGHTS:
            t0 = time.perf_counter()
            lex[w] = lexical_rankings(chunks, docs, data["queries"], title_weight=w)
            print(f"{name}: BM25 title weight {w} in {time.perf_counter() - t0:.1f} s", flush=True)
        sets[name] = {"data": data, "sem": sem, "lex": lex}

    # Per-query nDCG@10 of every (title weight, fusion) on every set.
    grid = fusion_grid()
    table: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for w in TITLE_WEIGHTS:
        for f in grid:
            table[(w, label(f))] = {n: per_query(s["data"], fused(s["lex"][w], s["sem"], f, k=10))
                                    for n, s in sets.items()}
    sem_nd = {n: per_query(s["data"], [[h.doc for h in r] for r in s["sem"]]) for n, s in sets.items()}
    lex_nd = {(w, n): per_query(s["data"], [[h.doc for h in r] for r in s["lex"][w]])
              for w in TITLE_WEIGHTS for n, s in sets.items()}

    def train_mean(vals: dict[str, np.ndarray]) -> float:
        return float(np.mean([vals[n][sets[n]["data"]["train"]].mean() for n in sets]))

    curve = {f"w{w}/{lab}": round(train_mean(v), 5) for (w, lab), v in table.items()}
    best_w, best_lab = max((key for key in table if title_weight in (None, key[0])),
                           key=lambda key: (round(train_mean(table[key]), 6), -key[0]))
    best = next(f for f in grid if label(f) == best_lab)
    # The best rank-only fusion (weighted RRF): its scores depend on ranks alone, so they stay
    # bit-identical between runtimes whose dense scores differ in the last bits.
    rank_lab = max((lab for w_, lab in table if w_ == best_w and lab.startswith(("rrf", "wrrf"))),
                   key=lambda lab: round(train_mean(table[(best_w, lab)]), 6))
    lex_train = {w: round(train_mean({n: lex_nd[(w, n)] for n in sets}), 5) for w in TITLE_WEIGHTS}
    # BM25F (per-field length normalisation) on the same queries: is it worth a format change?
    bm25f_train = {}
    for w in TITLE_WEIGHTS:
        vals = {n: per_query(s["data"], bm25f_rankings(s["data"]["titles"], s["data"]["bodies"],
                                                      s["data"]["queries"], title_weight=w))
                for n, s in sets.items()}
        bm25f_train[w] = {"train_mean": round(train_mean(vals), 5),
                          **{n: round(float(v.mean()), 4) for n, v in vals.items()}}
    # Per-set optimum (information only: the product ships one global setting).
    per_set_best = {}
    for n in sets:
        tr = sets[n]["data"]["train"]
        key = max(table, key=lambda k_: (round(float(table[k_][n][tr].mean()), 6), -k_[0]))
        per_set_best[n] = {"title_weight": key[0], "fusion": key[1],
                           "train_ndcg@10": round(float(table[key][n][tr].mean()), 4)}

    report_sets = {}
    for n, s in sets.items():
        data = s["data"]
        rows = {
            "bm25 (title x1)": lex_nd[(1, n)],
            f"bm25 (title x{best_w})": lex_nd[(best_w, n)],
            "dense": sem_nd[n],
            "rrf (title x1, today)": table[(1, "rrf")][n],
            f"rrf (title x{best_w})": table[(best_w, "rrf")][n],
            f"rank-only: {rank_lab} (title x{best_w})": table[(best_w, rank_lab)][n],
            f"fitted: {best_lab} (title x{best_w})": table[(best_w, best_lab)][n],
        }
        # recall@100 of the fused lists (up to 2N candidates) for the two hybrid rankings.
        rec = {
            "rrf (title x1, today)": per_query(data, fused(s["lex"][1], s["sem"], {"method": "rrf", "rrf_k": RRF_K}),
                                              "recall@100"),
            "fitted": per_query(data, fused(s["lex"][best_w], s["sem"], best), "recall@100"),
        }
        report_sets[n] = {
            "docs": len(data["doc_ids"]), "queries": len(data["qids"]), "train": len(data["train"]),
            "test": len(data["test"]), "split": data["split"],
            "ndcg@10": {r: {"test": mean_over(v, data["test"]), "train": mean_over(v, data["train"]),
                            "all": round(float(v.mean()), 4)} for r, v in rows.items()},
            "recall@100 (all)": {r: round(float(v.mean()), 4) for r, v in rec.items()},
        }
    return {
        "fitted": {"title_weight": best_w, "title_weight_given": title_weight is not None, "fusion": best, "n": N,
                   "objective": "mean over sets of training nDCG@10 (each set weighs the same)",
                   "train_objective": round(train_mean(table[(best_w, best_lab)]), 5)},
        "bm25_train_by_title_weight": lex_train,
        "bm25_all_by_title_weight": {w: {n: round(float(lex_nd[(w, n)].mean()), 4) for n in sets}
                                     for w in TITLE_WEIGHTS},
        "bm25f_by_title_weight": bm25f_train,
        "per_set_best": per_set_best,
        "curve": curve,
        "sets": report_sets,
    }


# --------------------------------------------------------------------------- real sites (lexical)


def site_corpus(site_dir: Path) -> tuple[list[dict], list[dict]]:
    """(chunks.json-like rows, docs.json-like rows) of a site, made by websem's build code."""
    from websem.build.chunk import chunk_documents, default_overlap
    from websem.build.embed import load_package_tokenizer
    from websem.build.sources import read_source

    model_dir = bq.model_package_dir()
    if model_dir is None:
        sys.exit("fit_fusion: no model package at .cache/model (its tokenizer sizes the chunks)")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    docs, _ = read_source(site_dir)
    tok = load_package_tokenizer(model_dir, int(manifest["max_seq_length"]))
    budget = int(manifest["max_seq_length"]) - 2
    chunks = chunk_documents(docs, tok.count_tokens, budget, default_overlap(budget))
    rows = [{"doc": c.doc, "anchor": c.anchor, "text": c.text, **({"heading": c.heading} if hasattr(c, "heading")
                                                                  else {})} for c in chunks]
    return rows, [{"id": d.id, "title": d.title, "url": d.url} for d in docs]


def fit_site(name: str, site_dir: Path) -> dict:
    root = REPO / "bench" / "realsite" / name
    qrels, train, test, how = query_split(root)
    queries = [q for q in bq.read_jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels]
    t0 = time.perf_counter()
    chunks, docs = site_corpus(site_dir)
    print(f"{name}: {len(docs)} documents, {len(chunks)} chunks in {time.perf_counter() - t0:.0f} s", flush=True)
    data = {"doc_ids": [str(d["id"]).split("#")[0] for d in docs], "qids": [str(q["_id"]) for q in queries],
            "qrels": qrels}
    tr = [i for i, q in enumerate(queries) if str(q["_id"]) in train]
    te = [i for i, q in enumerate(queries) if str(q["_id"]) in test]
    out = {}
    for wt in TITLE_WEIGHTS:
        for wh in HEADING_WEIGHTS:
            runs = lexical_rankings(chunks, docs, [q["text"] for q in queries], title_weight=wt, heading_weight=wh)
            v = per_query(data, [[h.doc for h in r] for r in runs])
            out[f"title x{wt}, heading +{wh}"] = {"dev": mean_over(v, tr), "test": mean_over(v, te)}
            print(name, wt, wh, out[f"title x{wt}, heading +{wh}"], flush=True)
    return {"documents": len(docs), "chunks": len(chunks), "split": how, "queries_dev": len(tr),
            "queries_test": len(te), "bm25_ndcg@10": out}


# --------------------------------------------------------------------------- main


def markdown(report: dict) -> str:
    lines = ["# Ranking settings fitted on training queries (bench/fit_fusion.py)", "",
             f"Judged sets run {report.get('fit_date')}, real sites run {report.get('sites_date')}. N = {N} "
             "candidates per side; BM25 k1 1.2, b 0.75 (Lucene); dense = the websem "
             "int8 model package on whole documents (title + text, 256 tokens), as bench_quality.py.", ""]
    fit = report.get("fit")
    if fit:
        f = fit["fitted"]
        given = " (given, from the real sites' dev split)" if f.get("title_weight_given") else ""
        lines += [f"**Fitted** ({f['objective']}): title weight {f['title_weight']}{given}, fusion "
                  f"`{json.dumps(f['fusion'])}` (training objective {f['train_objective']}).", "",
                  "BM25 alone (field repetition, what ships), training objective by title weight: " + ", ".join(
                      f"x{w}: {v}" for w, v in fit["bm25_train_by_title_weight"].items())
                  + "; nDCG@10 on all queries per set: " + "; ".join(
                      f"x{w}: {v}" for w, v in fit["bm25_all_by_title_weight"].items()), "",
                  "BM25F (per-field length normalisation; not shipped) by title weight: " + "; ".join(
                      f"x{w}: {v}" for w, v in fit["bm25f_by_title_weight"].items()), "",
                  "nDCG@10 (held-out queries; `all` = every judged query; SciFact has only training queries, so its "
                  "numbers are in-sample):", ""]
        rows = list(next(iter(fit["sets"].values()))["ndcg@10"])
        lines += ["| set | split | " + " | ".join(rows) + " |", "|---|---|" + "---:|" * len(rows)]
        for n, s in fit["sets"].items():
            for part in ("test", "all"):
                cells = [s["ndcg@10"][r][part] for r in rows]
                if all(c is None for c in cells):
                    continue
                lines.append(f"| {n} | {part} ({s[part if part == 'test' else 'queries']} q) | "
                             + " | ".join("-" if c is None else f"{c:.4f}" for c in cells) + " |")
        lines += ["", "Mean over the four sets (all queries): " + ", ".join(
            f"{r}: {np.mean([s['ndcg@10'][r]['all'] for s in fit['sets'].values()]):.4f}" for r in rows), ""]
        lines += ["recall@100 (all queries): " + "; ".join(
            f"{n}: " + ", ".join(f"{r} {v}" for r, v in s["recall@100 (all)"].items()) for n, s in fit["sets"].items()),
            "", "Splits: " + "; ".join(f"{n}: {s['split']} ({s['train']} train / {s['test']} held out)"
                                       for n, s in fit["sets"].items()), "",
            "Per-set optimum (information only; the product ships the one global setting): " + "; ".join(
                f"{n}: title x{b['title_weight']}, {b['fusion']} ({b['train_ndcg@10']})"
                for n, b in fit["per_set_best"].items())]
        top = sorted(fit["curve"].items(), key=lambda x: -x[1])[:12]
        lines += ["", "Best 12 of the training curve: " + ", ".join(f"{k} {v}" for k, v in top)]
    for name, s in report.get("sites", {}).items():
        lines += ["", f"## {name}: BM25 only, {s['documents']} documents / {s['chunks']} chunks; {s['split']} "
                  f"({s['queries_dev']} dev / {s['queries_test']} test queries)", "",
                  "| weights | dev nDCG@10 | test nDCG@10 |", "|---|---:|---:|"]
        for k, v in s["bm25_ndcg@10"].items():
            lines.append(f"| {k} | {v['dev']} | {v['test']} |")
    sites = report.get("sites", {})
    if len(sites) > 1:
        keys = list(next(iter(sites.values()))["bm25_ndcg@10"])
        mean = {k: {part: round(float(np.mean([s["bm25_ndcg@10"][k][part] for s in sites.values()])), 4)
                    for part in ("dev", "test")} for k in keys}
        best = max(keys, key=lambda k: mean[k]["dev"])
        lines += ["", f"Mean over {', '.join(sites)}: best on dev = **{best}** (dev {mean[best]['dev']}, test "
                  f"{mean[best]['test']}); title x1, heading +0: dev {mean[keys[0]]['dev']}, test "
                  f"{mean[keys[0]]['test']}.", "", "| weights | mean dev | mean test |", "|---|---:|---:|"]
        lines += [f"| {k} | {mean[k]['dev']} | {mean[k]['test']} |" for k in keys]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="*", default=None, choices=SETS, help="judged sets in ../shared/data")
    ap.add_argument("--beir", nargs="*", type=Path, default=[], help="more BEIR-layout set folders")
    ap.add_argument("--site", nargs="*", default=[], choices=sorted(SITES),
                    help="real sites (bench/realsite/NAME): fit lexical field weights on the dev split")
    ap.add_argument("--title-weight", type=int, choices=TITLE_WEIGHTS, default=None,
                    help="fix the title weight (e.g. the one the real sites' dev split chose) and fit the fusion")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    sets = SETS if args.sets is None and not args.beir and not args.site else (args.sets or [])
    report: dict = {"name": "fusion", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "machine": machine_info(), "versions": bq.versions()}
    names = list(sets) + [p.name for p in args.beir]
    roots = [bq.shared_data() / s for s in sets] + list(args.beir)
    if names:
        report["fit"] = fit_sets(names, roots, args.title_weight)
    if args.site:
        report["sites"] = {s: fit_site(s, Path(SITES[s])) for s in args.site}
    out = RESULTS / "fusion.json"
    if not args.no_write and out.is_file():
        # A run of only the judged sets or only the sites keeps the other part's last results.
        previous = json.loads(out.read_text())
        for part in ("fit", "sites"):
            if part not in report and part in previous:
                report[part] = previous[part]
                report[f"{part}_date"] = previous.get(f"{part}_date", previous.get("date"))
    for part in ("fit", "sites"):
        if part in report:
            report.setdefault(f"{part}_date", report["date"])
    md = markdown(report)
    print(md)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        (RESULTS / "fusion.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
