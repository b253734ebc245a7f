"""`websem build --engine ray` vs the local engine: embedding throughput on this machine, per-actor
throughput, and a scaling estimate per added worker node.

    .venv/bin/python bench/bench_ray.py [--quick | --full] [--n N] [--rounds R]

Texts: SciFact abstracts (title + text), tokenized and truncated at 256 tokens, the same token ids
for every side. Sides, measured in the same run, alternated per round after a warm-up pass each,
medians of the rounds; each pass is what one build's embedding stage does:

* ``local``: build/embed.py ``LocalEngine`` with the default jobs (one process per core, one
  onnxruntime thread each), started fresh (spawning the workers, loading the model) every pass.
* ``ray``: build/ray_embed.py ``embed_on_ray`` on a Ray instance started once on this machine
  (``ray.init``, the instance `--engine ray` starts without --ray-address; its start-up is
  reported apart) with one actor per CPU, the actor pool started fresh every pass.
* ``ray, 1 actor``: the same with one actor, for the scaling estimate.

Per-actor throughput = chunks / the time the actor spent inside ``ChunkEmbedder.embed`` (its busy
time), with every CPU busy. Every side's vectors are checked bit-identical to the local engine's.
Writes bench/results/ray.json and bench/results/ray.md.
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
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting to a web service

from common import RESULTS, median, model_package, scifact_texts, write_result  # noqa: E402

TARGET = 1 / 1.3  # ray throughput >= local / 1.3




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 texts, 2 rounds (default)")
    ap.add_argument("--full", action="store_true", help="800 texts, 3 rounds")
    ap.add_argument("--n", type=int, default=None, help="number of texts (overrides the mode)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (overrides the mode)")
    args = ap.parse_args(argv)
    n, rounds = (800, 3) if args.full else (200, 2)
    n, rounds = args.n or n, args.rounds or rounds

    import numpy as np
    import ray
    from websem.build.embed import LocalEngine, default_jobs, load_package_tokenizer
    from websem.build.ray_embed import embed_on_ray
    from websem.export.package import load_model_package

    pkg = model_package()
    m = load_model_package(pkg)
    tok = load_package_tokenizer(pkg, m["max_seq_length"])
    docs = scifact_texts(n)
    t0 = time.perf_counter()
    ids = [tok.encode(t).ids for t in docs]
    tokenize_per_s = len(ids) / (time.perf_counter() - t0)  # the driver's serial share of a build
    lengths = [len(x) for x in ids]
    dims = int(m["dims"])
    jobs = default_jobs()
    cpus = os.cpu_count() or 1

    def local() -> tuple[np.ndarray, dict]:
        out = np.zeros((len(ids), dims), dtype=np.float32)
        t0 = time.perf_counter()
        with LocalEngine(pkg, jobs=jobs) as eng:
            eng.start()
            start_s = time.perf_counter() - t0
            for rows, vecs in eng.embed(ids.__getitem__, range(len(ids)), lengths):
                out[rows] = vecs
        return out, {"fixed_s": start_s}

    def on_ray(actors: int | None):
        def run() -> tuple[np.ndarray, dict]:
            r = embed_on_ray(ids, pkg, address=None, progress=False, actors=actors)
            # What the pass spent beyond its actors' compute: starting the actor pool (a worker
            # process each, importing onnxruntime, loading the model) and Ray Data's scheduling.
            steady = len(ids) / sum(a["rows"] / a["busy_s"] for a in r.actors)
            return r.vectors, {"actors": r.actors, "fixed_s": r.seconds - steady}
        return run

    t0 = time.perf_counter()
    # A loopback node address: Ray would otherwise bind the instance to the machine's network
    # address (it rewrites 127.0.0.1), and a benchmark talks to loopback only.
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             _node_ip_address="127.0.0.2")
    ray_start_s = time.perf_counter() - t0
    sides = {"local": local, "ray": on_ray(None), "ray, 1 actor": on_ray(1)}
    per_s: dict[str, list[float]] = {k: [] for k in sides}
    actor_rates: dict[str, list[float]] = {k: [] for k in sides}
    fixed: dict[str, list[float]] = {k: [] for k in sides}
    vecs: dict[str, np.ndarray] = {}
    try:
        for r in range(rounds + 1):  # round 0 = warm-up (and the vectors for the check)
            for name, fn in sides.items():  # alternated: A B C A B C ...
                t0 = time.perf_counter()
                v, info = fn()
                dt = time.perf_counter() - t0
                if r == 0:
                    vecs[name] = v
                    continue
                per_s[name].append(len(ids) / dt)
                fixed[name].append(info["fixed_s"])
                for a in info.get("actors", []):
                    actor_rates[name].append(a["rows"] / a["busy_s"])
                print(f"round {r}/{rounds} {name}: {per_s[name][-1]:.1f} chunks/s"
                      + (f" ({len(info['actors'])} actors)" if info.get("actors") else ""), flush=True)
    finally:
        ray.shutdown()

    med = {k: median(v) for k, v in per_s.items()}
    ratio = med["ray"] / med["local"]
    per_actor = median(actor_rates["ray"])  # every CPU busy: the per-core rate a node adds
    per_actor_alone = median(actor_rates["ray, 1 actor"])
    n_actors = cpus
    # Wall throughput over the sum of the actors' busy rates: what the actor pool's start-up, Ray's
    # scheduling, the transfer of ids and vectors and the driver leave of the actors' compute.
    efficiency = med["ray"] / (n_actors * per_actor) if per_actor else None
    fixed_med = {k: median(v) for k, v in fixed.items()}
    identical = {k: bool(np.array_equal(v, vecs["local"])) for k, v in vecs.items()}
    # Per added node: its cores × the per-actor rate, between the rate measured with every core of
    # this (shared) box busy and the rate of a lone actor.
    estimate = []
    for cores in (2, 8, 16):
        lo, hi = cores * per_actor, cores * max(per_actor, per_actor_alone)
        estimate.append({"cores_per_node": cores, "chunks_per_s_per_node": [round(lo, 1), round(hi, 1)],
                         "nodes_until_driver_tokenizer_bound": int(tokenize_per_s // hi) if hi else None})
    result = {
        "ratio": round(ratio, 3),
        "target": "ray throughput >= local / 1.3 (ratio >= 0.77)",
        "met": ratio >= TARGET,
        "bit_identical": all(identical.values()),
        "identical_to_local": identical,
        "texts": f"SciFact abstracts (title + text), first {len(ids)}, truncated at 256 tokens",
        "n_chunks": len(ids), "tokens": sum(lengths), "rounds": rounds, "cpus": cpus, "local_jobs": jobs,
        "mode": "full" if args.full else "quick",
        "command": " ".join(["python", "bench/bench_ray.py", *(argv if argv is not None else sys.argv[1:])]),
        "chunks_per_s_median": {k: round(v, 2) for k, v in med.items()},
        "chunks_per_s_rounds": {k: [round(x, 2) for x in v] for k, v in per_s.items()},
        "ray_start_s": round(ray_start_s, 2),
        "per_actor_chunks_per_s_busy": round(per_actor, 2) if per_actor else None,
        "per_actor_chunks_per_s_busy_alone": round(per_actor_alone, 2) if per_actor_alone else None,
        "ray_efficiency": round(efficiency, 3) if efficiency else None,
        "fixed_s_median": {k: round(v, 2) for k, v in fixed_med.items()},
        "driver_tokenize_chunks_per_s": round(tokenize_per_s, 1),
        "scaling_estimate": estimate,
        "loadavg_end": list(os.getloadavg()),
    }
    out = write_result("ray", result)
    md = [
        "# ray: `websem build --engine ray` vs the local engine",
        "",
        f"{len(ids)} SciFact abstracts ({sum(lengths)} tokens, truncated at 256), {cpus} cores, {rounds} alternated "
        f"rounds after a warm-up, medians; each pass starts its workers (local: {jobs} processes; Ray: the actor "
        f"pool on a Ray instance started once, in {ray_start_s:.1f} s, not counted). Load average at the end: "
        f"{os.getloadavg()[0]:.1f} (a shared box: only the ratio means anything). Target: Ray within 1.3x of the "
        f"local engine's throughput: **{'met' if result['met'] else 'not met'}** (ray / local = {ratio:.2f}). "
        f"Vectors bit-identical to the local engine's on every side: "
        f"**{'yes' if result['bit_identical'] else 'NO'}**. Command: `{result['command']}`.",
        "",
        "| side | chunks/s (median) | rounds | vs local | start-up per pass, s (median) |",
        "|---|---:|---|---:|---:|",
    ]
    for k in sides:
        md.append(f"| {k} | {med[k]:.1f} | {', '.join(f'{x:.1f}' for x in per_s[k])} | "
                  f"{med[k] / med['local']:.2f}x | {fixed_med[k]:.1f} |")
    md += [
        "",
        f"Per actor (one core, one onnxruntime thread, while every core is busy): **{per_actor:.1f} chunks/s** "
        f"of busy time; a lone actor: {per_actor_alone:.1f} chunks/s. Start-up per pass: local = spawning the "
        "worker processes and loading the model; Ray = the pass's time beyond its actors' busy time (starting "
        "the actor pool, loading the model, Ray Data's scheduling). Ray efficiency here (throughput ÷ the "
        f"actors' summed busy rates, start-up included): {efficiency:.2f}. The driver tokenizes "
        f"{tokenize_per_s:.0f} chunks/s in one process, which bounds a build however many nodes embed.",
        "",
        "Scaling estimate per added worker node, once the pool is up (its cores × the per-actor rate, same "
        "CPU kind; each build also pays the start-up above once; the nodes column uses the higher rate):",
        "",
        "| cores per node | + chunks/s per node (all cores busy – lone-actor rate) | nodes before the driver's "
        "tokenizer is the bound |",
        "|---:|---:|---:|",
    ]
    for e in estimate:
        lo, hi = e["chunks_per_s_per_node"]
        md.append(f"| {e['cores_per_node']} | {lo:.1f} – {hi:.1f} | {e['nodes_until_driver_tokenizer_bound']} |")
    (RESULTS / "ray.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
