"""CPU embedding throughput: websem's build engine against sentence-transformers fp32 at its best batch.

    .venv/bin/python bench/bench_embed.py [--quick | --full] [--model DIR ...]

Sides, all on the same real texts (SciFact abstracts, title + text, truncated at the model's
256-token cap like sentence-transformers does), measured in the same run, alternated A B C ...
per round after one warm-up pass each, medians of the rounds:

* ``websem engine (jobs=J)``: what `websem build` runs (build/embed.py ``LocalEngine``): chunks
  grouped by token length, the trunk batched, the pooling tail at batch 1, J worker processes with
  one onnxruntime thread each (J = the default, one per core). Worker start-up (spawning, loading
  the model) is timed separately and reported; a build pays it once.
* ``websem engine (jobs=1, threads=2)`` and ``websem batch 1 (threads=2)`` (the previous build path,
  ``OnnxEmbedder.embed_ids`` one chunk per run): how much each change brings.
* ``sentence-transformers fp32 (batch B)`` for several B with torch threads = 2; the peer is the
  fastest of them (its best batch size, in this run).

Every websem side's vectors are checked bit-identical to the batch-1 vectors (the determinism
contract, docs/build.md). Each extra ``--model`` package gets its own engine and batch-1 rows.

The compute ceiling: the texts' transformer FLOPs (from the model's config and each text's token
count; the dense MatMuls and the two attention products) divided by each side's time gives its
achieved GFLOP/s, compared with the fp32 matrix-multiply rate of this machine measured in the same
run (torch and numpy, 2 threads, best of a few large square products, once per round between the
sides). It says how far fp32 compute, the only arithmetic that keeps the build's vectors equal to
the browser's (docs/build.md), can still go.
Writes bench/results/embed.json and bench/results/embed.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import RESULTS, median, model_package, scifact_texts, write_result  # noqa: E402

THREADS = 2  # the box has 2 cores; both sides get all of them
GEMM_N = 2048  # square fp32 products for the machine's ceiling: big enough to run at peak


def transformer_flops(lengths: list[int], config: dict) -> float:
    """Multiply-add FLOPs (2 per MAC) of a BERT encoder over texts of ``lengths`` tokens: per layer
    the Q, K, V and output projections (4 L h^2), the feed-forward pair (2 L h i) and the two
    attention products (QK^T and softmax V: 2 L^2 h). Embedding lookups, LayerNorm, GELU and
    softmax are memory-bound and left out (so the achieved rate is a slight under-estimate)."""
    h, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    return float(sum(2 * n * (4 * L * h * h + 2 * L * h * i + 2 * L * L * h) for L in lengths))


def gemm_gflops(repeats: int = 5) -> dict:
    """The best fp32 GEMM rate (GFLOP/s) of torch and numpy with THREADS threads on this machine."""
    import numpy as np
    import torch

    out = {}
    a, b = np.random.default_rng(0).random((2, GEMM_N, GEMM_N), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for name, mm in (("torch", lambda: ta @ tb), ("numpy", lambda: a @ b)):
        mm()
        best = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            mm()
            best = max(best, 2 * GEMM_N ** 3 / (time.perf_counter() - t0) / 1e9)
        out[name] = best
    return out




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="96 texts, 2 rounds, ST batch 16/32/64 (default)")
    ap.add_argument("--full", action="store_true", help="500 texts, 3 rounds, ST batch 8/16/32/64/128")
    ap.add_argument("--model", action="append", type=Path, help="model package(s); default: the default one")
    ap.add_argument("--n", type=int, default=None, help="number of texts (overrides the mode)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (overrides the mode)")
    args = ap.parse_args(argv)
    n, rounds, st_batches = (500, 3, (8, 16, 32, 64, 128)) if args.full else (96, 2, (16, 32, 64))
    n, rounds = args.n or n, args.rounds or rounds
    docs = scifact_texts(n)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from websem.build.embed import LocalEngine, default_jobs, load_package_tokenizer
    from websem.export.embed import OnnxEmbedder
    from websem.export.package import load_model_package
    from websem.export.source import default_model_dir

    torch.set_num_threads(THREADS)
    jobs = default_jobs()
    packages = args.model or [model_package()]
    sides: dict[str, dict] = {}
    engines = []
    startup: dict[str, float] = {}
    for pkg in packages:
        m = load_model_package(pkg)
        mode = m["quantization"]["mode"]
        tok = load_package_tokenizer(pkg, m["max_seq_length"])
        ids = [tok.encode(t).ids for t in docs]
        lengths = [len(x) for x in ids]
        meta = {"package": str(pkg), "model_sha256": m["files"]["model.onnx"]["sha256"], "quantization": mode}

        def run_engine(engine, ids=ids, lengths=lengths, dims=int(m["dims"])):
            out = np.zeros((len(ids), dims), dtype=np.float32)
            for rows, vecs in engine.embed(ids.__getitem__, range(len(ids)), lengths):
                out[rows] = vecs
            return out

        for label, j, th in ((f"websem engine {mode} (jobs={jobs})", jobs, 1),
                             (f"websem engine {mode} (jobs=1, threads={THREADS})", 1, THREADS)):
            t0 = time.perf_counter()
            eng = LocalEngine(pkg, jobs=j, threads=th)
            eng.start()
            startup[label] = round(time.perf_counter() - t0, 2)
            engines.append(eng)
            sides[label] = {"run": (lambda e=eng, r=run_engine: r(e)), "group": mode, **meta}
        emb = OnnxEmbedder(pkg, threads=THREADS)
        sides[f"websem batch 1 {mode} (threads={THREADS})"] = {
            "run": (lambda e=emb, ids=ids: np.stack([e.embed_ids(x) for x in ids])),
            "group": mode, "reference": True, **meta}
    st = SentenceTransformer(str(default_model_dir()), device="cpu")
    for b in st_batches:
        sides[f"sentence-transformers fp32 (batch {b})"] = {
            "run": (lambda b=b: st.encode(docs, batch_size=b, convert_to_numpy=True, show_progress_bar=False)),
            "peer": True}
    import json

    config = json.loads((default_model_dir() / "config.json").read_text("utf-8"))
    st_lengths = [min(len(x), st.max_seq_length) for x in st.tokenizer(docs)["input_ids"]]
    flops = transformer_flops(st_lengths, config)
    vecs = {}
    gemm: dict[str, list[float]] = {"torch": [], "numpy": []}
    try:
        for name, side in sides.items():  # warm-up (and the vectors, for the checks)
            vecs[name] = np.asarray(side["run"]())
            side["docs_per_s"] = []
        for r in range(rounds):
            for name, side in sides.items():  # alternated: A B C ... A B C ...
                t0 = time.perf_counter()
                side["run"]()
                side["docs_per_s"].append(len(docs) / (time.perf_counter() - t0))
                print(f"round {r + 1}/{rounds} {name}: {side['docs_per_s'][-1]:.1f} docs/s", flush=True)
            for k, v in gemm_gflops().items():  # the machine's fp32 ceiling, once per round
                gemm[k].append(v)
            print(f"round {r + 1}/{rounds} fp32 GEMM: torch {gemm['torch'][-1]:.0f}, numpy "
                  f"{gemm['numpy'][-1]:.0f} GFLOP/s", flush=True)
    finally:
        for eng in engines:
            eng.close()
    peers = {k: median(v["docs_per_s"]) for k, v in sides.items() if v.get("peer")}
    peer = max(peers, key=peers.get)
    ref = vecs[peer]
    refs = {v["group"]: vecs[k] for k, v in sides.items() if v.get("reference")}
    rows = []
    for name, side in sides.items():
        med = median(side["docs_per_s"])
        v = vecs[name]
        cos = float(((v * ref).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(ref, axis=1))).mean())
        row = {
            "side": name,
            "docs_per_s_median": round(med, 2),
            "docs_per_s_rounds": [round(x, 2) for x in side["docs_per_s"]],
            "ratio_vs_peer": round(med / peers[peer], 3),
            "mean_cosine_vs_peer": round(cos, 6),
            **{k: side[k] for k in ("package", "model_sha256", "quantization") if k in side},
        }
        if "group" in side:
            row["bit_identical_to_batch1"] = bool(np.array_equal(v, refs[side["group"]]))
        if name in startup:
            row["startup_s"] = startup[name]
        row["gflops"] = round(med * flops / len(docs) / 1e9, 1)
        rows.append(row)
    default = rows[0]  # the default package's engine at the default jobs: what `websem build` runs
    result: dict = {
        "ratio": default["ratio_vs_peer"],
        "target": ">= 2.5x docs/s vs sentence-transformers fp32 at its best batch size",
        "met": default["ratio_vs_peer"] >= 2.5,
        "peer": peer,
        "bit_identical": all(r.get("bit_identical_to_batch1", True) for r in rows),
        "texts": f"SciFact abstracts (title + text), first {len(docs)}, truncated at 256 tokens",
        "n_texts": len(docs), "rounds": rounds, "threads": THREADS, "jobs": jobs,
        "mode": "full" if args.full else "quick", "rows": rows,
    }
    ceiling = max(median(v) for v in gemm.values())
    need = 2.5 * peers[peer] * flops / len(docs) / 1e9
    result["compute"] = {
        "gflop_per_text": round(flops / len(docs) / 1e9, 3),
        "mean_tokens": round(sum(st_lengths) / len(st_lengths), 1),
        "gemm_gflops_median": {k: round(median(v), 1) for k, v in gemm.items()},
        "ceiling_gflops": round(ceiling, 1),
        "target_needs_gflops": round(need, 1),
        "target_over_ceiling": round(need / ceiling, 2),
    }
    out = write_result("embed", result)
    md = [
        "# embed: CPU embedding throughput (websem build engine vs sentence-transformers fp32)",
        "",
        f"{len(docs)} SciFact abstracts (truncated at 256 tokens on both sides), {THREADS} cores, {rounds} "
        f"alternated rounds, medians. Load average at the end: {os.getloadavg()[0]:.1f} (shared box). "
        f"Ratio = docs/s ÷ the best sentence-transformers batch size of this run (`{peer}`). "
        f"Target ≥ 2.5x: **{'met' if result['met'] else 'not met'}** ({default['side']}: "
        f"{result['ratio']:.2f}x). Every websem side bit-identical to its batch-1 vectors: "
        f"**{'yes' if result['bit_identical'] else 'NO'}**.",
        "",
        "| side | docs/s (median) | rounds | ratio vs peer | mean cosine vs peer | bit-identical to batch 1 "
        "| start-up s |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    for r in rows:
        bit = {True: "yes", False: "no"}.get(r.get("bit_identical_to_batch1"), "")
        md.append(
            f"| {r['side']} | {r['docs_per_s_median']:.1f} | {', '.join(f'{x:.1f}' for x in r['docs_per_s_rounds'])} "
            f"| {r['ratio_vs_peer']:.2f}x | {r['mean_cosine_vs_peer']:.4f} | {bit} | {r.get('startup_s', '')} |"
        )
    c = result["compute"]
    md += [
        "",
        "## Compute ceiling",
        "",
        f"{c['gflop_per_text']} GFLOP per text (mean {c['mean_tokens']} tokens; dense projections and "
        "attention products from the model's config). This machine's fp32 matrix multiply, same run, "
        f"median of the rounds' best: torch {c['gemm_gflops_median']['torch']} GFLOP/s, numpy "
        f"{c['gemm_gflops_median']['numpy']} GFLOP/s. Achieved by each side (column above ÷ ceiling):",
        "",
        "| side | achieved GFLOP/s | share of the fp32 ceiling |",
        "|---|---:|---:|",
    ]
    md += [f"| {r['side']} | {r['gflops']} | {r['gflops'] / c['ceiling_gflops']:.0%} |" for r in rows]
    md += [
        "",
        f"2.5x the peer needs {c['target_needs_gflops']} GFLOP/s: **{c['target_over_ceiling']}x** the fastest "
        "fp32 matrix multiply this machine runs. Vectors that stay equal to the browser's need fp32 "
        "arithmetic (docs/build.md); int8 or bf16 compute would change them and fails the quality "
        "gate (docs/quantization.md).",
    ]
    (RESULTS / "embed.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
