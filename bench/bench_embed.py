"""CPU embedding throughput: websem's build path against sentence-transformers fp32.

    .venv/bin/python bench/bench_embed.py [--quick | --full] [--model DIR ...]

A (websem): the exported model package (default: bench/common.model_package()), onnxruntime
CPU, one text per run (batch 1, the contract), intra_op threads = 2, tokenized by websem's stdlib
WordPiece tokenizer: exactly what `websem build` runs.
B (peer): sentence-transformers `encode` of the source model, fp32, torch threads = 2, its default
batch_size=32 (what users run), plus batch 1 for reference.
Same real texts (SciFact abstracts, title + text) on both sides, alternated A B A B, one warm-up
pass each, medians of the rounds. Every extra `--model` is measured in the same rounds.
Writes bench/results/embed.json and bench/results/embed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import RESULTS, SHARED_DATA, median, model_package, write_result  # noqa: E402

THREADS = 2


def texts(n: int) -> list[str]:
    out = []
    with open(SHARED_DATA / "scifact-train" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append((d.get("title", "") + " " + d.get("text", "")).strip())
            if len(out) == n:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 texts, 2 rounds (default)")
    ap.add_argument("--full", action="store_true", help="500 texts, 3 rounds")
    ap.add_argument("--model", action="append", type=Path, help="model package(s); default: the default one")
    ap.add_argument("--n", type=int, default=None, help="number of texts (overrides the mode)")
    args = ap.parse_args(argv)
    n, rounds = (500, 3) if args.full else (60, 2)
    n = args.n or n
    docs = texts(n)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from websem.export.embed import OnnxEmbedder, load_tokenizer
    from websem.export.package import load_model_package
    from websem.export.source import default_model_dir

    torch.set_num_threads(THREADS)
    packages = args.model or [model_package()]
    sides: dict[str, dict] = {}
    for pkg in packages:
        m = load_model_package(pkg)
        emb = OnnxEmbedder(pkg, threads=THREADS)
        tok = load_tokenizer(pkg / "tokenizer.json", m["max_seq_length"])
        label = f"websem {m['quantization']['mode']}"
        sides[label] = {
            "run": (lambda e=emb, t=tok: e.embed_texts(docs, tokenizer=t, progress=False)),
            "package": str(pkg),
            "model_sha256": m["files"]["model.onnx"]["sha256"],
            "quantization": m["quantization"]["mode"],
        }
    st = SentenceTransformer(str(default_model_dir()), device="cpu")
    sides["sentence-transformers fp32 (batch 32)"] = {
        "run": lambda: st.encode(docs, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    }
    sides["sentence-transformers fp32 (batch 1)"] = {
        "run": lambda: st.encode(docs, batch_size=1, convert_to_numpy=True, show_progress_bar=False)
    }
    vecs = {}
    for name, side in sides.items():  # warm-up (and the vectors, for a sanity check)
        vecs[name] = np.asarray(side["run"]())
        side["docs_per_s"] = []
    for r in range(rounds):
        for name, side in sides.items():  # alternated: A B [C] A B [C] ...
            t0 = time.perf_counter()
            side["run"]()
            side["docs_per_s"].append(len(docs) / (time.perf_counter() - t0))
            print(f"round {r + 1}/{rounds} {name}: {side['docs_per_s'][-1]:.1f} docs/s", flush=True)
    peer = "sentence-transformers fp32 (batch 32)"
    ref = vecs[peer]
    result: dict = {}
    rows = []
    for name, side in sides.items():
        med = median(side["docs_per_s"])
        v = vecs[name]
        cos = float(((v * ref).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(ref, axis=1))).mean())
        rows.append({
            "side": name,
            "docs_per_s_median": round(med, 2),
            "docs_per_s_rounds": [round(x, 2) for x in side["docs_per_s"]],
            "ratio_vs_peer": round(med / median(sides[peer]["docs_per_s"]), 3),
            "mean_cosine_vs_peer": round(cos, 6),
            **{k: side[k] for k in ("package", "model_sha256", "quantization") if k in side},
        })
    default = rows[0]
    result["ratio"] = default["ratio_vs_peer"]  # the target row: default package vs the peer
    result["target"] = ">= 2.5x docs/s vs sentence-transformers fp32 encode"
    result["met"] = result["ratio"] >= 2.5
    result.update({
        "texts": f"SciFact abstracts (title + text), first {len(docs)}",
        "n_texts": len(docs), "rounds": rounds, "threads": THREADS,
        "mode": "full" if args.full else "quick", "rows": rows,
    })
    out = write_result("embed", result)
    md = [
        "# embed: CPU embedding throughput (batch 1 websem vs sentence-transformers fp32)",
        "",
        f"{len(docs)} SciFact abstracts, {THREADS} threads, {rounds} alternated rounds, medians. "
        f"Load average at the end: {os.getloadavg()[0]:.1f} (shared box). Ratio = docs/s ÷ "
        f"`{peer}` docs/s. Target ≥ 2.5x: **{'met' if result['met'] else 'not met'}** "
        f"(default package {result['ratio']:.2f}x).",
        "",
        "| side | docs/s (median) | rounds | ratio vs peer | mean cosine vs peer |",
        "|---|---:|---|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['side']} | {r['docs_per_s_median']:.1f} | {', '.join(f'{x:.1f}' for x in r['docs_per_s_rounds'])} "
            f"| {r['ratio_vs_peer']:.2f}x | {r['mean_cosine_vs_peer']:.4f} |"
        )
    (RESULTS / "embed.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
