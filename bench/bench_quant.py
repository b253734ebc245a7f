"""Smaller weights for all-MiniLM-L6-v2: what each quantization candidate costs.

Run from the repository root::

    nice -n 15 .venv/bin/python bench/bench_quant.py            # every candidate, every judged set
    .venv/bin/python bench/bench_quant.py --candidates weight-int8 int4-b32 --sets medline
    .venv/bin/python bench/bench_quant.py --resume --cached-only  # re-rank from cached vectors only

For each candidate (a `websem export` quantization mode plus settings, see CANDIDATES) it
measures:
- model.onnx bytes, raw and brotli (quality 9, like bench/common.brotli_size);
- the export quality gate: cosine vs the fp32 export on export/data/sentences.txt, batch 1
  (export/quality.sentence_quality), and whether mean ≥ 0.999 and min ≥ 0.99;
- nDCG@10 of the candidate and of fp32 on every judged set in ../shared/data (read in place),
  whole documents (``title + " " + text``) truncated at 256 tokens, one text per ORT run, the
  same ranking code as `websem export --eval` (export/quality.py);
- onnxruntime-web 1.30 (plain wasm build, Node, tests/js/run_ort_web.mjs): does it load and run
  the model, and the max abs diff / min cosine of its vectors against CPU onnxruntime on the
  golden strings (tests/fixtures/golden_strings.json), plus its ms per run.

A candidate may replace the default only if it passes the gate AND loses at most 0.005 nDCG@10
against fp32 on every set (the `default_ok` column).

Embeddings are cached per (model sha256, set) under --cache (default .cache/quant/, gitignored):
one full run embeds ~10k texts per candidate. Writes bench/results/quant.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, machine_info, versions, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ORT_WEB_SCRIPT = REPO / "tests" / "js" / "run_ort_web.mjs"
SETS = ["scifact-train", "cranfield", "cisi", "medline"]
MAX_NDCG_DROP = 0.005

# name -> (mode, settings overrides). fp32 is the reference everything is compared with.
CANDIDATES: dict[str, tuple[str, dict]] = {
    "fp32": ("none", {}),
    "weight-int8": ("weight-int8", {}),
    "weight-int8-packed": ("weight-int8-packed", {}),
    # (a) 4-bit dense MatMuls (MatMulNBits), embedding table as today (int8 rows)
    "int4-b32": ("weight-int4", {"block_size": 32}),
    "int4-b128": ("weight-int4", {"block_size": 128}),
    "int4-b32-asym": ("weight-int4", {"block_size": 32, "symmetric": False}),
    "int4-b128-asym": ("weight-int4", {"block_size": 128, "symmetric": False}),
    "int4-b32-max": ("weight-int4", {"block_size": 32, "scale": "max"}),
    # (b) + (c) embedding table as GatherBlockQuantized, dense layers as today's default
    "weight-int8+emb8": ("weight-int8", {"embeddings": "block8"}),
    "weight-int8+emb8-b128": ("weight-int8", {"embeddings": "block8", "embedding_block_size": 128}),
    "weight-int8+emb4-b16": ("weight-int8", {"embeddings": "block4", "embedding_block_size": 16}),
    "weight-int8+emb4": ("weight-int8", {"embeddings": "block4"}),
    "weight-int8+emb4-b128": ("weight-int8", {"embeddings": "block4", "embedding_block_size": 128}),
    "weight-int8-packed+emb4": ("weight-int8-packed", {"embeddings": "block4"}),
    # (d) today's weight-int8 graph and ops, fewer levels in its int8 containers (smaller after
    # brotli): embedding rows at 7 or 6 bits, dense weights at 7 bits (5-bit rows and 6-bit dense
    # weights are not listed: 6-bit rows and 7-bit dense weights already fail the gate)
    "weight-int8+emb7": ("weight-int8", {"embedding_bits": 7}),
    "weight-int8+emb6": ("weight-int8", {"embedding_bits": 6}),
    "weight-int8+w7": ("weight-int8", {"weight_bits": 7}),
    "weight-int8+emb7+w7": ("weight-int8", {"embedding_bits": 7, "weight_bits": 7}),
    # (e) the same fewer-level dense weights, rounded with GPTQ error compensation (export/gptq.py,
    # calibrated on export/data/calibration.txt) instead of round-to-nearest
    "weight-int8+w7-gptq": ("weight-int8", {"weight_bits": 7, "rounding": "gptq"}),
    "weight-int8+w7-gptq-act": ("weight-int8", {"weight_bits": 7, "rounding": "gptq", "gptq_act_order": True}),
    "weight-int8+w7-gptq-d0.1": ("weight-int8", {"weight_bits": 7, "rounding": "gptq", "gptq_damp": 0.1}),
    "weight-int8+w7-gptq-max": ("weight-int8", {"weight_bits": 7, "rounding": "gptq", "scale": "max"}),
    "weight-int8+w7-gptq-max-act": ("weight-int8", {"weight_bits": 7, "rounding": "gptq", "scale": "max",
                                                    "gptq_act_order": True}),
    "weight-int8+w6-gptq-max": ("weight-int8", {"weight_bits": 6, "rounding": "gptq", "scale": "max"}),
    # 7-bit FFN weights (2/3 of the dense bytes), 8-bit attention weights
    "weight-int8+w7ffn": ("weight-int8", {"weight_bits": 7, "weight_bits_keep": ["/attention/"]}),
    "weight-int8+w7ffn-gptq-max-act": ("weight-int8", {"weight_bits": 7, "weight_bits_keep": ["/attention/"],
                                                       "rounding": "gptq", "scale": "max", "gptq_act_order": True}),
    # everything 4-bit
    "int4-b32+emb4": ("weight-int4", {"block_size": 32, "embeddings": "block4"}),
    "int4-b128+emb4-b128": ("weight-int4", {"block_size": 128, "embeddings": "block4", "embedding_block_size": 128}),
}


def _fp32_model():
    """The fp32 export of the embedded all-MiniLM-L6-v2 (the package's graph before quantize)."""
    from websem.export.graph import add_sentence_embedding, canonicalize
    from websem.export.onnx_export import export_fp32
    from websem.export.package import package_tokenizer_json
    from websem.export.source import resolve_source

    src = resolve_source(None)
    model = add_sentence_embedding(export_fp32(src), src.pooling, src.normalize, src.dims)
    model = canonicalize(model, "websem bench")
    return model, package_tokenizer_json(src.tokenizer_json, src.max_seq_length), src.max_seq_length


def _quantized_bytes(fp32_bytes: bytes, mode: str, overrides: dict, tokenizer) -> tuple[bytes, dict, list[str]]:
    import onnx
    from websem.export.graph import canonicalize
    from websem.export.ops import graph_ops
    from websem.export.quantize import default_settings, quantize

    settings = default_settings(mode, overrides)
    model = onnx.load_from_string(fp32_bytes)
    if mode != "none":
        model = canonicalize(quantize(model, settings, tokenizer=tokenizer), "websem bench")
    ops = sorted(f"{d}:{o}" if d else o for d, o in graph_ops(model))
    return (fp32_bytes if mode == "none" else model.SerializeToString()), settings, ops


def _dense_brotli(model_bytes: bytes) -> int:
    """Brotli bytes of the model without its word-embedding table: what a bundle's visitor downloads
    at load (`websem build` cuts the table out and reads rows by byte range, docs/architecture.md)."""
    import brotli
    import onnx

    model = onnx.load_from_string(model_bytes)
    ids = model.graph.input[0].name  # input_ids
    # the word table and (int8-rows / GatherBlockQuantized) its scales: what the Gathers on the ids read
    table = {i for n in model.graph.node if n.op_type in ("Gather", "GatherBlockQuantized")
             and len(n.input) > 1 and n.input[1] == ids for i in n.input if i != ids}
    keep = [t for t in model.graph.initializer if t.name not in table]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return len(brotli.compress(model.SerializeToString(), quality=9))


def _cache_path(cache: Path, name: str, sha: str, texts: list[str]) -> Path:
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    return cache / name / f"{sha[:16]}-{key}.npy"


def _embed_set(emb, tokenizer, name: str, sha: str, texts: list[str], cache: Path) -> np.ndarray:
    path = _cache_path(cache, name, sha, texts)
    if path.is_file():
        return np.load(path)
    vecs = np.stack([emb.embed_ids(tokenizer.encode(t).ids) for t in texts])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def _ndcg(vecs: np.ndarray, n_docs: int, doc_ids: list[str], q_ids: list[str], qrels: dict) -> tuple[float, np.ndarray]:
    from websem.export.quality import _ndcg10, _top10

    top = _top10(vecs[:n_docs], vecs[n_docs:])
    ndcg = float(np.mean([_ndcg10([doc_ids[j] for j in top[k]], qrels[q]) for k, q in enumerate(q_ids)]))
    return ndcg, top


def _ort_web(model_path: Path, ids: list[list[int]], cpu: np.ndarray, scratch: Path) -> dict:
    node = shutil.which("node")
    if not node:
        return {"runs": False, "error": "node not found"}
    ids_file = scratch / "golden_ids.json"
    ids_file.write_text(json.dumps(ids))
    res = subprocess.run([node, str(ORT_WEB_SCRIPT), str(model_path), str(ids_file)],
                         capture_output=True, text=True, timeout=1200, check=False)
    if res.returncode != 0:
        return {"runs": False, "error": res.stderr.strip().splitlines()[-1][:300] if res.stderr.strip() else "failed"}
    out = json.loads(res.stdout)
    web = np.array(out["embeddings"], dtype=np.float32)
    cos = (web.astype(np.float64) * cpu).sum(1) / (np.linalg.norm(web, axis=1) * np.linalg.norm(cpu, axis=1))
    return {"runs": True, "max_abs_diff": float(np.abs(web - cpu).max()), "min_cos": round(float(cos.min()), 8),
            "ms_per_run": round(out["ms_per_run"], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    ap.add_argument("--sets", nargs="+", choices=SETS, default=SETS)
    ap.add_argument("--eval-candidates", nargs="+", choices=list(CANDIDATES), default=None,
                    help="measure nDCG@10 only for these (default: every candidate); the rest get bytes, gate, ORT-web")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "quant")
    ap.add_argument("--scratch", type=Path, default=None, help="where model files are written (default: a temp dir)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ort-web", action="store_true")
    ap.add_argument("--resume", action="store_true",
                    help="take bytes, gate and ORT-web rows (and model sha256, the vector cache key) from "
                    "bench/results/<out>.json instead of re-measuring, and keep its rows of unselected "
                    "candidates; not after changing export/quantize.py")
    ap.add_argument("--cached-only", action="store_true",
                    help="nDCG@10 only for (candidate, set) pairs whose vectors are already in --cache")
    ap.add_argument("--out", default="quant", help="results name under bench/results/")
    args = ap.parse_args(argv)

    import tempfile

    import brotli
    from websem.export.embed import OnnxEmbedder, load_tokenizer
    from websem.export.quality import DEFAULT_THRESHOLD, load_beir, sentence_quality
    from websem.export.quantize import default_settings

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="websem-quant-"))
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fp32, tok_bytes, max_len = _fp32_model()
    fp32_bytes = fp32.SerializeToString()
    tokenizer = load_tokenizer(tok_bytes, max_len)
    golden = json.loads((REPO / "tests" / "fixtures" / "golden_strings.json").read_text())
    golden_ids = [tokenizer.encode(g["text"]).ids for g in golden]
    data = {}
    for name in args.sets:
        corpus, queries, qrels = load_beir(SHARED_DATA / name)
        data[name] = (list(corpus), list(corpus.values()), list(queries), list(queries.values()), qrels)
    ref = OnnxEmbedder(fp32_bytes, threads=args.threads)
    fp32_sha = hashlib.sha256(fp32_bytes).hexdigest()
    rows = []
    models = {}
    previous = {}
    if args.resume:
        old = json.loads((REPO / "bench" / "results" / f"{args.out}.json").read_text())
        previous = {r["candidate"]: r for r in old["rows"]}
    # Phase 1 (minutes): bytes, gate and ORT-web for every candidate.
    for cname in args.candidates:
        mode, overrides = CANDIDATES[cname]
        if cname in previous and previous[cname]["settings"] == default_settings(mode, overrides):
            # the model is rebuilt only if phase 2 needs vectors that are not cached
            # nDCG@10 cells measured before are kept unless phase 2 measures them again
            rows.append({k: v for k, v in previous[cname].items() if k not in ("max_drop", "default_ok")})
            rows[-1].setdefault("eval", {})
            if "dense_brotli_bytes" not in rows[-1] and mode == "weight-int8":
                q_bytes = _quantized_bytes(fp32_bytes, mode, overrides, tokenizer)[0]
                rows[-1]["dense_brotli_bytes"] = _dense_brotli(q_bytes)
            continue
        q_bytes, settings, ops = _quantized_bytes(fp32_bytes, mode, overrides, tokenizer)
        path = scratch / f"{cname}.onnx"
        path.write_bytes(q_bytes)
        models[cname] = q_bytes
        cand = OnnxEmbedder(q_bytes, threads=args.threads)
        row = {
            "candidate": cname, "mode": mode, "settings": settings, "ops": ops,
            "sha256": hashlib.sha256(q_bytes).hexdigest(),
            "bytes": len(q_bytes), "brotli_bytes": len(brotli.compress(q_bytes, quality=9)),
            "dense_brotli_bytes": _dense_brotli(q_bytes),
            "sentences": sentence_quality(ref, cand, tokenizer), "eval": {},
        }
        s = row["sentences"]
        row["gate"] = s["mean"] >= DEFAULT_THRESHOLD["mean"] and s["min"] >= DEFAULT_THRESHOLD["min"]
        if not args.no_ort_web:
            cpu = np.stack([OnnxEmbedder(q_bytes, threads=1).embed_ids(i) for i in golden_ids]).astype(np.float64)
            row["ort_web"] = _ort_web(path, golden_ids, cpu, scratch)
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("candidate", "bytes", "brotli_bytes", "dense_brotli_bytes",
                                                   "sentences", "gate",
                                                   "ort_web")}), flush=True)
    if args.resume:
        # rows measured before and not selected this time stay in the results as they were
        done = {r["candidate"] for r in rows}
        rows += [{k: v for k, v in r.items() if k not in ("max_drop", "default_ok")}
                 for c, r in previous.items() if c not in done and c in CANDIDATES]
        rows.sort(key=lambda r: list(CANDIDATES).index(r["candidate"]))
    result = {
        "bench": "quant",
        "machine": machine_info(),
        "versions": versions(),
        "settings": {"sets": args.sets, "threads": args.threads, "max_ndcg_drop": MAX_NDCG_DROP,
                     "gate": {k: DEFAULT_THRESHOLD[k] for k in ("mean", "min")},
                     "golden_strings": len(golden_ids), "batch": 1, "truncation_tokens": max_len},
        "fp32_ndcg@10": dict(old["fp32_ndcg@10"]) if args.resume else {},
        "rows": rows,
    }
    for row in rows:
        _verdict(row)
    # Phase 2 (hours on a busy box): nDCG@10 per set, smallest set first; results are written
    # after every (set, candidate) so an interrupted run still leaves what it measured.
    for name in sorted(args.sets, key=lambda n: len(data[n][1])):
        doc_ids, docs, q_ids, qs, qrels = data[name]
        if args.cached_only and not _cache_path(args.cache, name, fp32_sha, docs + qs).is_file():
            continue
        ref_vecs = _embed_set(ref, tokenizer, name, fp32_sha, docs + qs, args.cache)
        ref_ndcg, ref_top = _ndcg(ref_vecs, len(docs), doc_ids, q_ids, qrels)
        result["fp32_ndcg@10"][name] = round(ref_ndcg, 6)
        print(f"fp32 {name}: nDCG@10 {ref_ndcg:.4f}", flush=True)
        for row in rows:
            if args.eval_candidates is not None and row["candidate"] not in args.eval_candidates:
                continue
            if args.cached_only and not _cache_path(args.cache, name, row["sha256"], docs + qs).is_file():
                continue
            if row["candidate"] == "fp32":
                vecs = ref_vecs
            else:
                kept = scratch / f"{row['candidate']}.onnx"  # written by an earlier run with --scratch
                if row["candidate"] not in models and kept.is_file():
                    data_bytes = kept.read_bytes()
                    if hashlib.sha256(data_bytes).hexdigest() == row["sha256"]:
                        models[row["candidate"]] = data_bytes
                if row["candidate"] not in models:
                    mode, overrides = CANDIDATES[row["candidate"]]
                    models[row["candidate"]] = _quantized_bytes(fp32_bytes, mode, overrides, tokenizer)[0]
                cand = OnnxEmbedder(models[row["candidate"]], threads=args.threads)
                vecs = _embed_set(cand, tokenizer, name, row["sha256"], docs + qs, args.cache)
            ndcg, top = _ndcg(vecs, len(docs), doc_ids, q_ids, qrels)
            overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_top, top, strict=True)]))
            row["eval"][name] = {
                "docs": len(docs), "queries": len(q_ids), "ndcg@10": round(ndcg, 6),
                "ndcg@10_fp32": round(ref_ndcg, 6), "drop": round(ref_ndcg - ndcg, 6),
                "top10_overlap": round(overlap, 4),
            }
            _verdict(row)
            print(f"  {row['candidate']} {name}: nDCG@10 {ndcg:.4f} (drop {ref_ndcg - ndcg:+.4f})", flush=True)
            _write(args.out, result, t0)
    _write(args.out, result, t0)
    print(render_md(result))
    return 0


def _verdict(row: dict) -> None:
    """max_drop and default_ok (gate passed and every set within MAX_NDCG_DROP) from row["eval"]."""
    drops = [e["drop"] for e in row["eval"].values()]
    if not drops:
        return
    row["max_drop"] = max(drops)
    row["default_ok"] = bool(row["gate"] and max(drops) <= MAX_NDCG_DROP and set(row["eval"]) == set(SETS))


def _write(out: str, result: dict, t0: float) -> None:
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_result(out, result)
    (REPO / "bench" / "results" / f"{out}.md").write_text(render_md(result), encoding="utf-8")


def _default_cell(row: dict) -> str:
    if not row["gate"]:
        return "no (gate)"
    if set(row["eval"]) != set(SETS):
        return "not all sets measured"
    return "yes" if row["default_ok"] else "no (nDCG)"


def render_md(result: dict) -> str:
    """The results table (bench/results/quant.md)."""
    # every set measured in this run or kept from an earlier one (--resume --sets ...)
    sets = [s for s in SETS if s in result["settings"]["sets"] or any(s in r["eval"] for r in result["rows"])]
    lines = [
        "# Quantization candidates for all-MiniLM-L6-v2 (`bench/bench_quant.py`)",
        "",
        f"Gate: mean cosine ≥ {result['settings']['gate']['mean']} and min ≥ {result['settings']['gate']['min']} "
        "vs the fp32 export (238 sentences, batch 1). Default candidate: gate passed AND nDCG@10 drop ≤ "
        f"{result['settings']['max_ndcg_drop']} vs fp32 on every set. ORT-web: onnxruntime-web plain wasm "
        f"build under Node, {result['settings']['golden_strings']} golden strings, vs CPU onnxruntime.",
        "",
        "fp32 nDCG@10: " + (", ".join(f"{k} {v:.4f}" for k, v in result["fp32_ndcg@10"].items()) or "not measured"),
        "",
        "| candidate | MB | MB brotli | dense MB brotli | mean cos | min cos | gate | "
        + " | ".join(f"Δ nDCG {s}" for s in sets)
        + " | default ok | ORT-web | max abs diff | ms/run (web) |",
        "|---|---:|---:|---:|---:|---:|---|" + "---:|" * len(sets) + "---|---|---:|---:|",
    ]
    for r in result["rows"]:
        web = r.get("ort_web") or {}
        if not web:
            web_cells = ["not run", "—", "—"]
        elif web.get("runs"):
            web_cells = ["runs", f"{web['max_abs_diff']:.1e}", f"{web['ms_per_run']}"]
        else:
            web_cells = [f"fails: {web.get('error', '')}", "—", "—"]
        cells = [
            r["candidate"], f"{r['bytes'] / 1e6:.1f}", f"{r['brotli_bytes'] / 1e6:.1f}",
            f"{r['dense_brotli_bytes'] / 1e6:.2f}" if "dense_brotli_bytes" in r else "—",
            f"{r['sentences']['mean']:.6f}", f"{r['sentences']['min']:.6f}", "yes" if r["gate"] else "no",
            *(f"{r['eval'][s]['drop']:+.4f}" if s in r["eval"] else "—" for s in sets),
            _default_cell(r), *web_cells,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Δ nDCG = fp32 minus candidate (positive = the candidate is worse). dense MB brotli: "
              "model.onnx without the word-embedding table, what a bundle's visitor downloads at load.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
