"""Scale curve: browser query latency and renderer memory at 1k, 10k and 100k chunks, plus index
bytes per chunk.

The bundles are derived from a real websem bundle (Cranfield, built once with `websem build`'s
Python API): the 1k bundle keeps the first 1,000 chunks; larger ones REPEAT the real chunks (and
their vectors) as copies of the corpus, each copy with its own documents ("<id>~2", "<id>~3", ...),
because no judged set here has 100k chunks. Embedding 100k chunks on a shared 2-core box would
take hours and would not change what is measured (brute-force cost depends only on the number of
rows). The manifest is rewritten with the new counts and sha256 of the changed index files; every
other file is a symlink to the source bundle.

    .venv/bin/python bench/scale.py [--quick|--full] [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from browser import STACKS, measure_stack, mounts, peer_model_root  # noqa: E402
from common import (  # noqa: E402
    CACHE,
    RESULTS,
    brotli_size,
    default_bundle,
    median,
    percentile,
    read_queries,
    write_result,
)
from server import BenchServer  # noqa: E402

__all__ = ["scaled_bundle", "main"]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _MemoAnalyzer:
    """websem's Analyzer with a cache by text: repeated chunks are analyzed once (same terms)."""

    def __init__(self) -> None:
        from websem.text.analyze import Analyzer

        self._a = Analyzer()
        self._memo: dict[str, list[str]] = {}

    def terms(self, text: str) -> list[str]:
        if text not in self._memo:
            self._memo[text] = self._a.terms(text)
        return self._memo[text]

    def config(self) -> dict:
        return self._a.config()


def scaled_bundle(base: Path, n: int) -> Path:
    """A bundle with exactly `n` chunks made from `base`'s real chunks (truncated or repeated)."""
    man = json.loads((base / "manifest.json").read_text())
    idx = man["index"]
    files = idx["files"]
    dims, n0 = idx["dims"], idx["chunks"]
    # 2026-11-28: keyed by the base bundle's whole manifest (model, code, every file's sha256), so
    # a rebuilt base bundle (new runtime, new snapshot) never leaves a stale derived bundle.
    out = CACHE / "scale" / f"{_sha(base / 'manifest.json')[:16]}-{n}"
    if (out / "manifest.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    row_dtype = {"int8": np.int8, "float16": np.float16, "float32": np.float32}[idx["vector_dtype"]]
    vectors = np.fromfile(base / files["vectors"], dtype=row_dtype).reshape(n0, dims)
    scales = (np.fromfile(base / files["scales"], dtype="<f4") if files.get("scales") else None)
    chunks = json.loads((base / files["chunks"]).read_text())
    docs = json.loads((base / files["docs"]).read_text())
    rows = np.arange(n) % n0
    copy = np.arange(n) // n0
    new_chunks, new_docs = [], []
    doc_map: dict[tuple[int, int], int] = {}
    for r, c in zip(rows.tolist(), copy.tolist(), strict=True):
        ch = dict(chunks[r])
        key = (c, ch["doc"])
        if key not in doc_map:
            d = dict(docs[ch["doc"]])
            if c:
                d["id"] = f"{d['id']}~{c + 1}"
            doc_map[key] = len(new_docs)
            new_docs.append(d)
        ch["doc"] = doc_map[key]
        new_chunks.append(ch)
    written = {
        files["vectors"]: vectors[rows].tobytes(),
        files["chunks"]: json.dumps(new_chunks, ensure_ascii=False, separators=(",", ":")).encode(),
        files["docs"]: json.dumps(new_docs, ensure_ascii=False, separators=(",", ":")).encode(),
    }
    if scales is not None:
        written[files["scales"]] = scales[rows].astype("<f4").tobytes()
    for rel, data in written.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
        man["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # Everything else (model, runtime, vendor files) is the source bundle's, by symlink.
    # 2026-11-28: the BM25 index (index/lexical.bin) describes the chunks, so a derived bundle gets
    # its own, built by websem's build code over the derived chunks: then `mode: "semantic"` runs
    # the very code path it runs on a real bundle, and hybrid can be measured at scale too.
    lexical = files.get("lexical")
    if lexical:
        from websem.build.lexical import write_lexical_index

        entry = write_lexical_index(tmp, new_chunks, new_docs, analyzer=_MemoAnalyzer(),
                                    progress=False)
        man["files"][lexical] = {"sha256": entry["sha256"], "size": entry["size"]}
    for f in base.rglob("*"):
        rel = f.relative_to(base).as_posix()
        if f.is_file() and rel not in written and rel != "manifest.json" and rel != lexical:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).symlink_to(f.resolve())
    idx["chunks"] = n
    idx["docs"] = len(new_docs)
    man["bench_note"] = (f"bench/scale.py: {n} chunks derived from {n0} real chunks "
                         f"({'repeated' if n > n0 else 'truncated'}); not a real corpus")
    (tmp / "manifest.json").write_text(json.dumps(man, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def index_bytes(bundle: Path, base: Path) -> dict:
    """Index bytes per chunk, raw and brotli q9. Repeated chunks compress unrealistically well
    (brotli finds the copies), so for a derived bundle the brotli size is *estimated* from the
    real base bundle's per-file compression ratio."""
    man = json.loads((bundle / "manifest.json").read_text())
    idx = man["index"]
    base_idx = json.loads((base / "manifest.json").read_text())["index"]
    real = idx["chunks"] <= base_idx["chunks"]
    out = {}
    for kind, rel in idx["files"].items():
        if not rel:
            continue
        raw = (bundle / rel).stat().st_size
        if real:
            br = brotli_size(bundle / rel, quality=9)
        else:
            b = base / base_idx["files"][kind]
            br = round(raw * brotli_size(b, quality=9) / b.stat().st_size)
        out[kind] = {"raw": raw, "brotli_q9": br}
    n = idx["chunks"]
    return {
        "files": out,
        "brotli_estimated": not real,
        "raw_per_chunk": sum(v["raw"] for v in out.values()) / n,
        "brotli_q9_per_chunk": sum(v["brotli_q9"] for v in out.values()) / n,
        "vectors_per_chunk": (out["vectors"]["raw"] + out.get("scales", {}).get("raw", 0)) / n,
    }


def plot(data: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"websem": "#1b7f5b", "websem-hybrid": "#7cc4a4", "peer-default": "#9e9e9e", "peer-tuned": "#5c6bc0"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    sizes = [p["chunks"] for p in data["points"]]
    for s in data["stacks"]:
        p50 = [p["per_stack"][s]["query_p50_ms"] for p in data["points"]]
        p95 = [p["per_stack"][s]["query_p95_ms"] for p in data["points"]]
        rss = [p["per_stack"][s]["renderer_rss_mb"] for p in data["points"]]
        axes[0].plot(sizes, p50, "o-", color=colors.get(s), label=f"{s} p50")
        axes[0].plot(sizes, p95, "v--", color=colors.get(s), alpha=0.6, label=f"{s} p95")
        axes[1].plot(sizes, rss, "o-", color=colors.get(s), label=s)
    per_chunk = [p["index_bytes"]["raw_per_chunk"] for p in data["points"]]
    per_chunk_br = [p["index_bytes"]["brotli_q9_per_chunk"] for p in data["points"]]
    axes[2].plot(sizes, per_chunk, "o-", label="raw", color="#616161")
    n0 = data["base"]["chunks"]
    axes[2].plot(sizes, per_chunk_br, "o-", label="brotli q9 (estimated from the real chunks "
                 f"above {n0:,})", color="#1b7f5b")
    for ax, title, ylab in zip(
        axes,
        ("Warm query latency", "Renderer RSS after queries", "Index bytes per chunk"),
        ("ms per query", "MB", "bytes / chunk"),
        strict=True,
    ):
        ax.set_xscale("log")
        ax.set_xlabel(f"chunks (repeated real Cranfield chunks above {n0:,})")
        ax.set_title(title)
        ax.set_ylabel(ylab)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"websem scale curve · {data['machine']['cpu_model']} · {data['machine']['nproc']} cores"
                 f" · {data['date'][:10]}", fontsize=10)
    fig.tight_layout()
    out = RESULTS / "scale.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_markdown(data: dict) -> Path:
    def f(x, nd=0):
        return "n/a" if x is None else f"{x:,.{nd}f}"

    lines = [
        "# Scale curve (browser, Chromium)",
        "",
        f"{data['date']} · mode `{data['mode']}` · {data['rounds']} round(s) · "
        f"{data['queries']['measured']} measured queries after {data['queries']['warm']} warm-up · "
        f"base bundle {data['base']['chunks']} real chunks ({data['base']['dataset']}); larger sizes "
        "repeat the real chunks (see scale.py).",
        "",
        "| chunks | stack | query p50 ms | query p95 ms | renderer RSS MB | cold start ms "
        "| index bytes/chunk raw | brotli q9 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in data["points"]:
        for s, v in p["per_stack"].items():
            lines.append(
                f"| {p['chunks']:,} | {s} | {f(v['query_p50_ms'], 1)} | {f(v['query_p95_ms'], 1)} | "
                f"{f(v['renderer_rss_mb'])} | {f(v['cold_ms'])} | "
                f"{f(p['index_bytes']['raw_per_chunk'])} | {f(p['index_bytes']['brotli_q9_per_chunk'])} |"
            )
    lines += ["", "Index bytes per chunk: every index file (vectors, scales, chunks.json with the chunk "
              "text, docs.json, lexical.bin: the BM25 index, rebuilt for each derived bundle). "
              "`websem` = `mode: \"semantic\"` (the peer's job), `websem-hybrid` = the runtime's "
              "default mode (BM25 over a repeated corpus: its timing counts, not its ranking). "
              "Brotli sizes of the repeated bundles are estimated from the real "
              "bundle's compression ratio (repeated text would compress unrealistically well). "
              "Plot: `scale.png`."]
    out = RESULTS / "scale.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1 round, 60 queries after 30 warm-up")
    mode.add_argument("--full", action="store_true", help="2 rounds, 200 queries after 100 warm-up")
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 100000])
    ap.add_argument("--stacks", nargs="+", default=["websem", "websem-hybrid", "peer-tuned"],
                    choices=list(STACKS))
    ap.add_argument("--bundle", type=Path, help="base websem bundle (default: cranfield)")
    args = ap.parse_args(argv)
    full = args.full
    rounds, n_warm, n_meas = (2, 100, 200) if full else (1, 30, 60)
    from playwright.sync_api import sync_playwright

    base = (args.bundle or default_bundle("cranfield")).resolve()
    bman = json.loads((base / "manifest.json").read_text())
    models = peer_model_root(base)
    pool = read_queries("cranfield")
    measured = [pool[i % len(pool)] for i in range(n_meas)]
    warm_pool = read_queries("cisi")
    warm = [warm_pool[i % len(warm_pool)] for i in range(n_warm)]
    points = []
    with sync_playwright() as pw:
        for n in args.sizes:
            bundle = scaled_bundle(base, n)
            runs: list[dict] = []
            with BenchServer(mounts(bundle, models)) as server:
                for _ in range(rounds):
                    for stack in args.stacks:
                        t = time.perf_counter()
                        r = measure_stack(pw, server, stack, first_query=measured[0], warm=warm,
                                          measured=measured, repeat_visit=False)
                        r["loadavg"] = list(os.getloadavg())  # shared box: load beside each run
                        runs.append(r)
                        print(f"[scale] {n} chunks {stack}: p50 {percentile(r['query_ms'], 50):.1f} ms,"
                              f" RSS {r.get('renderer_rss_mb')} MB ({time.perf_counter() - t:.0f} s)",
                              flush=True)
            per = {}
            for s in args.stacks:
                rs = [r for r in runs if r["stack"] == s]
                per[s] = {
                    "query_p50_ms": median([percentile(r["query_ms"], 50) for r in rs]),
                    "query_p95_ms": median([percentile(r["query_ms"], 95) for r in rs]),
                    "renderer_rss_mb": median([r.get("renderer_rss_mb") for r in rs]),
                    "renderer_hwm_mb": median([r.get("renderer_hwm_mb") for r in rs]),
                    "js_heap_used_mb": median([r.get("js_heap_used_mb") for r in rs]),
                    "cold_ms": median([r["cold_ms"] for r in rs]),
                }
            points.append({"chunks": n, "repeated": n > bman["index"]["chunks"],
                           "index_bytes": index_bytes(bundle, base), "per_stack": per, "runs": runs})
    data = {
        "mode": "full" if full else "quick",
        "rounds": rounds,
        "stacks": args.stacks,
        "base": {"path": str(base), "dataset": "cranfield", "chunks": bman["index"]["chunks"],
                 "vector_dtype": bman["index"]["vector_dtype"]},
        "queries": {"dataset": "cranfield", "measured": n_meas, "warm": n_warm, "warm_dataset": "cisi"},
        "points": points,
    }
    path = write_result("scale", data)
    data = json.loads(path.read_text())
    print(f"[scale] wrote {path}, {write_markdown(data)}, {plot(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
