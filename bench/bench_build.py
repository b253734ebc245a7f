"""Build at scale: full build vs incremental rebuild, and peak build memory at 100k / 1M chunks.

    .venv/bin/python bench/bench_build.py [--quick | --full] [--skip-rebuild] [--scale N ...]

1. **Rebuild after changing 1% of the documents** (real embedding, real SciFact documents): a full
   build with an empty embedding cache, then 1% of the documents edited (a sentence appended) and
   `websem build` run again on the same --out with the same cache. Both wall times are end to end
   (`websem build` in its own process: reading, chunking, embedding, index, BM25, copying the
   runtime, hashing). Target: rebuild ≤ 5% of the full build. The Pyodide snapshot is on (the
   rebuild reuses it). Quick: 1,000 documents, 1 round; full: all 5,183, 2 rounds (alternated).
2. **Peak RSS at scale**: synthetic corpora of N one-chunk documents (sentences of real SciFact
   abstracts, shuffled, so every chunk is distinct), built with `websem build` in its own process.
   Embedding 1M chunks takes days on this 2-core box, so the benchmark first seeds the embedding
   cache with *synthetic* unit vectors for those exact chunks (random numbers, not model output):
   the build then really tokenizes, looks up, streams and writes every vector, and runs every other
   step for real, only the model runs are skipped. Peak RSS is ``ru_maxrss`` of the build process
   (and, separately, of its largest child). Quick: 100k chunks (the 1M row is carried over from the
   last run that measured it, marked so); full: 100k and 1M. The snapshot is off here
   (Node's memory is not the build's, and it does not depend on N).

Writes bench/results/build.json and bench/results/build.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import CACHE, RESULTS, SHARED_DATA, median, model_package, write_result  # noqa: E402

WORK = CACHE / "build"

# Runs one build in a fresh interpreter and reports its own peak RSS and its children's.
_BUILD = r"""
import json, resource, sys, time
from pathlib import Path
from rich.console import Console
from websem.build.bundle import build_bundle
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
m = build_bundle(Path(a["source"]), Path(a["out"]), model=Path(a["model"]), cache=Path(a["cache"]),
                 progress=False, console=Console(stderr=True, width=200))
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "chunks": m["index"]["chunks"], "docs": m["index"]["docs"],
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_build(source: Path, out: Path, model: Path, cache: Path, env: dict | None = None) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _BUILD, json.dumps(
        {"source": str(source), "out": str(out), "model": str(model), "cache": str(cache)})],
        capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"build failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = time.perf_counter() - t0  # incl. interpreter start and imports
    res["log"] = [x for x in proc.stderr.splitlines() if x.startswith(("embedding:", "bundle"))]
    return res


def scifact_docs(n: int | None) -> list[dict]:
    out = []
    with open(SHARED_DATA / "scifact-train" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if n and len(out) == n:
                break
    return out


def write_jsonl(path: Path, docs: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")


def rebuild(model: Path, n_docs: int | None, rounds: int) -> dict:
    docs = scifact_docs(n_docs)
    rng = random.Random(1)
    changed = rng.sample(range(len(docs)), max(1, len(docs) // 100))
    root = WORK / "rebuild"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    fulls, rebuilds = [], []
    for r in range(rounds):
        v1, v2 = root / "v1.jsonl", root / "v2.jsonl"
        edited = [dict(d) for d in docs]
        for i in changed:
            edited[i]["text"] = edited[i]["text"] + f" Revised in round {r}."
        write_jsonl(v1, docs)
        write_jsonl(v2, edited)
        cache = root / f"cache-{r}"
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(root / "site", ignore_errors=True)
        full = run_build(v1, root / "site", model, cache)
        print(f"round {r + 1}: full build {full['wall_s']:.1f} s {full['log']}", flush=True)
        inc = run_build(v2, root / "site", model, cache)
        print(f"round {r + 1}: rebuild {inc['wall_s']:.1f} s {inc['log']}", flush=True)
        fulls.append(full)
        rebuilds.append(inc)
    f, i = median([x["wall_s"] for x in fulls]), median([x["wall_s"] for x in rebuilds])
    return {
        "docs": len(docs), "changed_docs": len(changed), "chunks": fulls[0]["chunks"], "rounds": rounds,
        "full_build_s": round(f, 2), "rebuild_s": round(i, 2), "ratio": round(i / f, 4),
        "target": "rebuild <= 5% of the full build's wall time", "met": i / f <= 0.05,
        "full_runs": fulls, "rebuild_runs": rebuilds, "loadavg_end": round(os.getloadavg()[0], 1),
    }


def synthetic_corpus(path: Path, n: int) -> None:
    """n distinct one-chunk documents (4-6 shuffled sentences of real SciFact abstracts)."""
    sents = []
    for d in scifact_docs(None):
        sents += [s.strip() + "." for s in d["text"].split(". ") if 20 < len(s) < 300]
    rng = random.Random(n)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(sents) for _ in range(rng.randint(2, 3)))
            f.write(json.dumps({"_id": f"s{i}", "title": f"synthetic {i}", "text": text}) + "\n")


def seed_cache(source: Path, cache: Path, model: Path) -> dict:
    """Put a synthetic unit vector for every chunk of ``source`` into the cache (the build's own
    reading, chunking and tokenizing code computes the keys, so every lookup hits)."""
    import numpy as np
    import onnxruntime
    from websem.build.cache import EmbeddingCache, chunk_key
    from websem.build.chunk import chunk_documents, default_overlap
    from websem.build.embed import load_package_tokenizer
    from websem.build.sources import read_source

    man = json.loads((model / "manifest.json").read_text())
    sha = man["files"]["model.onnx"]["sha256"] + f"+onnxruntime-{onnxruntime.__version__}"
    dims, max_len = int(man["dims"]), int(man["max_seq_length"])
    tok = load_package_tokenizer(model, max_len)
    t0 = time.perf_counter()
    docs, _ = read_source(source)
    chunks = chunk_documents(docs, tok.count_tokens, max_len - 2, default_overlap(max_len - 2))
    del docs
    rng = np.random.default_rng(0)
    with EmbeddingCache(cache, sha, dims) as c:
        for s in range(0, len(chunks), 10000):
            part = chunks[s:s + 10000]
            vecs = rng.standard_normal((len(part), dims)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            c.put_many([chunk_key(sha, tok.encode(ch.text).ids) for ch in part], vecs)
    return {"chunks": len(chunks), "seed_s": round(time.perf_counter() - t0, 1)}


def scale(model: Path, n: int) -> dict:
    root = WORK / f"scale-{n}"
    root.mkdir(parents=True, exist_ok=True)
    source, cache = root / "corpus.jsonl", root / "cache"
    if not source.is_file():
        synthetic_corpus(source, n)
    seeded = json.loads((root / "seeded.json").read_text()) if (root / "seeded.json").is_file() else None
    if seeded is None:
        shutil.rmtree(cache, ignore_errors=True)
        seeded = seed_cache(source, cache, model)
        (root / "seeded.json").write_text(json.dumps(seeded))
    print(f"scale {n}: cache seeded with {seeded['chunks']} synthetic vectors", flush=True)
    shutil.rmtree(root / "site", ignore_errors=True)
    res = run_build(source, root / "site", model, cache, env={"WEBSEM_NO_SNAPSHOT": "1"})
    size = sum(p.stat().st_size for p in (root / "site").rglob("*") if p.is_file())
    shutil.rmtree(root / "site", ignore_errors=True)
    print(f"scale {n}: {res['chunks']} chunks, peak RSS {res['maxrss_mb']:.0f} MB, {res['wall_s']:.0f} s "
          f"{res['log']}", flush=True)
    return {"docs_requested": n, **res, "bundle_mb": round(size / 1e6, 1), "seeded": seeded,
            "vectors": "synthetic (cache seeded with random unit vectors; model runs skipped)"}


def _first(lines: list[str]) -> str:
    return lines[0] if lines else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1,000 docs x 1 round; 100k chunks (1M kept from the last run that measured it) (default)")
    ap.add_argument("--full", action="store_true", help="all 5,183 SciFact docs x 2 rounds; 100k and 1M chunks")
    ap.add_argument("--skip-rebuild", action="store_true", help="keep the last rebuild result")
    ap.add_argument("--skip-scale", action="store_true", help="keep the last RSS results")
    ap.add_argument("--scale", type=int, action="append", help="chunk counts for the RSS part")
    args = ap.parse_args(argv)
    model = model_package()
    result: dict = {"mode": "full" if args.full else "quick"}
    # Each part's last result is also kept under .cache/bench/build/, so runs of one part (--skip-*)
    # never drop the other part's numbers, whichever finishes last.
    if not args.skip_rebuild:
        rb = rebuild(model, None if args.full else 1000, 2 if args.full else 1)
        (WORK / "last-rebuild.json").write_text(json.dumps(rb))
    sizes = [] if args.skip_scale else args.scale or ([100_000, 1_000_000] if args.full else [100_000])
    for n in sizes:
        row = scale(model, n)
        (WORK / f"last-scale-{n}.json").write_text(json.dumps({**row, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                              time.gmtime())}))
    last_rb = WORK / "last-rebuild.json"
    result["rebuild"] = json.loads(last_rb.read_text()) if last_rb.is_file() else None
    result["scale"] = []
    for p in sorted(WORK.glob("last-scale-*.json"), key=lambda q: int(q.stem.rsplit("-", 1)[1])):
        row = json.loads(p.read_text())
        if row["docs_requested"] not in sizes:
            row["from_earlier_run"] = row.get("date")  # e.g. quick mode keeps the last 1M row
        result["scale"].append(row)
    result["rss_target"] = "1M chunks within 24 GB"
    big = [s for s in result["scale"] if s["chunks"] >= 1_000_000]
    result["rss_met"] = bool(big) and all(s["maxrss_mb"] < 24 * 1024 for s in big)
    out = write_result("build", result)
    rb = result["rebuild"] or {}
    md = ["# build: incremental rebuilds and peak build memory", ""]
    if rb:
        md += [
            f"Rebuild after editing {rb['changed_docs']} of {rb['docs']} SciFact documents (1%), same --out, "
            f"same cache, {rb['rounds']} round(s), medians, `websem build` end to end in its own process. "
            f"Load average at the end: {rb.get('loadavg_end', '?')} (shared 2-core box).",
            "",
            "| build | wall s | embedding line |",
            "|---|---:|---|",
            f"| full (empty cache) | {rb['full_build_s']:.1f} | {_first(rb['full_runs'][0]['log'])} |",
            f"| rebuild (1% edited) | {rb['rebuild_s']:.1f} | {_first(rb['rebuild_runs'][0]['log'])} |",
            "",
            f"Rebuild / full = **{100 * rb['ratio']:.1f}%** (target ≤ 5%: **{'met' if rb['met'] else 'not met'}**).",
            "",
        ]
    md += [
        "Peak RSS of `websem build` (its own process; `ru_maxrss`) on synthetic one-chunk documents. The "
        "embedding cache was seeded with **synthetic random unit vectors** for exactly these chunks, so the "
        "model runs are skipped; reading, chunking, tokenizing, cache lookups, the vector memmap, the index "
        "and BM25 files run for real. Snapshot off.",
        "",
        "| chunks | docs | peak RSS MB (build) | largest child MB | wall s | bundle MB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["scale"]:
        when = f" (run of {s['from_earlier_run']})" if s.get("from_earlier_run") else ""
        md.append(f"| {s['chunks']:,}{when} | {s['docs']:,} | {s['maxrss_mb']:,.0f} | {s['children_maxrss_mb']:,.0f} | "
                  f"{s['wall_s']:.0f} | {s['bundle_mb']:,.0f} |")
    md += ["", f"1M chunks within 24 GB: **{'met' if result['rss_met'] else 'not measured / not met'}**."]
    (RESULTS / "build.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
