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
    vecs = {}
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
    (RESULTS / "embed.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
