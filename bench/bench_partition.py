"""The partitioned index against the flat one (issue targets): quality on every judged set and
bytes, memory and speed at 1k / 10k / 100k (/ 1M) chunks, through the real code.

    .venv/bin/python bench/bench_partition.py [--quick | --full] [--browser [--browser-sizes N ...]]
                                              [--sizes 1000 10000 100000]

Writes bench/results/partition.{json,md}.

* **Quality** (``quality``): each judged set in ../shared/data is built flat (float16, the flat
  default: the reference) and partitioned with the default settings (``websem.build.partition``
  ``default_ivf``; rows of ``--vector-dtype``, default the build's) via ``convert_bundle`` of a
  flat bundle of that dtype. Every judged query runs through ``websem.web.query.Searcher`` on both
  in all three modes: recall@10 = share of the flat top-10 documents the partitioned top-10 holds;
  nDCG@10 of each against the qrels.
* **Bytes per query**: each query starts with an empty shard cache; a query's bytes are the
  brotli sizes (the bundle's .br copies, or the file when the build kept none) of the whole
  shards it reads (codes shards, lexical shards, fragments) plus the raw bytes of the rows-shard
  byte ranges it reads (a range is sent without Content-Encoding); requests = whole files + ranges.
  **Always-loaded**: brotli bytes of ``manifest.index.files`` (table, centroids, docmap): what
  ``load()`` fetches besides model and runtime.
* **Scale** (``scale``): synthetic flat bundles (bench/partition_data.py says how the vectors are
  made) converted with the defaults in a child process (peak RSS and time of the conversion),
  then always-loaded bytes, cold bytes per query (median, p90) over real query texts, recall@10
  of the semantic top-10 against the exhaustive flat search of the same bundle, and the CPU
  (``websem query``) warm p50 of both layouts. Bundles above 10k chunks are converted without
  precompression; their brotli sizes are the raw sizes times the brotli q9 ratio of a sample of 40
  shards per kind.
* **Browser** (``--browser``, bench/partition_browser.py, every scale point or ``--browser-sizes``):
  flat vs partitioned vs transformers.js tuned in one Chromium run (at 1M the partitioned bundle
  alone: a flat one of 1.4 GB does not fit a tab): warm p50, renderer RSS after 200 different
  queries, cold start, and cold-cache queries under network emulation.
* **Row blocks** (``--blocks 4 8 16 --orders pca chunk``): at every scale point, the bytes and
  requests per query of each (block_rows, row order) variant of the same bundle; the ranking is
  the same in every variant (checked: the same top-10 ids), only the bytes read change.
* ``--append`` keeps the parts of bench/results/partition.json a run does not measure (e.g. a
  later ``--skip-quality --sizes 1000000``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, REPO, RESULTS, SHARED_DATA, bundle_key, machine_info, model_package, write_result  # noqa: E402
from partition_data import (  # noqa: E402
    JUDGED,
    SIGMA,
    always_loaded_bytes,
    brotli_of,
    shard_ratios,
    source_vectors,
    synthetic_flat_bundle,
)
from partition_report import markdown  # noqa: E402

MODES = ("semantic", "hybrid", "lexical")
QUICK_SIZES = [1000, 10000, 100000]
FULL_SIZES = [1000, 10000, 100000, 1000000]
SCALE_QUERIES = 200  # real query texts per scale point (cranfield, then scifact-train)
PRECOMPRESS_MAX = 10000  # bundles up to this many chunks get .br copies (exact brotli sizes)
CODE = {"code": "binary"}  # the partitioned bundles' dense code (--code): binary (default) or rows
KINDS = ("total", "ivf", "code", "lex", "frag", "requests")


def _variant(block_rows: int | None = None, order: str | None = None) -> tuple[int, str]:
    """(block_rows, order): None = the build's default."""
    from websem.build.ivf import BLOCK_ROWS, DEFAULT_ORDER

    return (BLOCK_ROWS if block_rows is None else block_rows), (DEFAULT_ORDER if order is None else order)


def _part_name(base: str, block_rows: int | None = None, order: str | None = None) -> str:
    b, o = _variant(block_rows, order)
    return f"{base}-{CODE['code']}-b{b}-{o}"


def proposed_ivf(n_chunks: int) -> tuple[int, int]:
    """The formula this benchmark argued for (docs/partitioned.md), written out independently of
    build/partition.py so ``--settings proposed`` can measure it against a changed product default
    (``settings_equal_default`` in the results says whether the two agree): nlist = 4 sqrt(n),
    nprobe so that a query scores about 4,000 rows (every list below 4,000 chunks), >= 32 lists."""
    import math

    n = max(1, n_chunks)
    nlist = min(16384, n, max(1, round(4 * math.sqrt(n))))
    return nlist, min(nlist, max(32, math.ceil(4000 * nlist / n)))


def ivf_settings(n_chunks: int, which: str) -> tuple[int | None, int | None]:
    """(nlist, nprobe) to convert with: None = the product's ``default_ivf``."""
    return proposed_ivf(n_chunks) if which == "proposed" else (None, None)


def judged_flat(name: str, dtype: str) -> Path:
    """The flat bundle of a judged set with ``dtype`` rows, built through the public API and
    cached by the model, the websem code and the dtype."""
    from websem.build.bundle import build_bundle

    key = bundle_key(name) | {"vector_dtype": dtype, "layout": "flat"}
    out = CACHE / "partition" / f"{name}-flat-{dtype}"
    key_file = out.with_name(out.name + ".key.json")
    if (out / "manifest.json").is_file() and key_file.is_file() and json.loads(key_file.read_text()) == key:
        return out
    print(f"[partition] building {name} flat {dtype}", file=sys.stderr, flush=True)
    build_bundle(SHARED_DATA / name / "corpus.jsonl", out, model=model_package(), force=True,
                 vector_dtype=dtype, index="flat", progress=False)
    key_file.write_text(json.dumps(key) + "\n")
    return out


def convert(flat: Path, out: Path, *, precompress: bool, nlist: int | None = None,
            nprobe: int | None = None, block_rows: int | None = None, order: str | None = None) -> dict:
    """``convert_bundle`` in a child process: ``{"seconds", "peak_rss_mb"}`` (cached next to the
    bundle, keyed by the flat manifest and the partition code)."""
    import hashlib

    # The build code's hash, minus the lines that only name the default block size and row order:
    # every conversion passes both explicitly (they are in the key), so choosing another default
    # must not make every cached variant convert again.
    src = b"".join((REPO / "build" / f).read_bytes() for f in ("partition.py", "ivf.py", "shards.py", "index.py"))
    src = b"\n".join(x for x in src.split(b"\n") if not x.startswith((b"BLOCK_ROWS =", b"DEFAULT_ORDER =")))
    code = hashlib.sha256(src).hexdigest()[:16]
    key = {"flat": hashlib.sha256((flat / "manifest.json").read_bytes()).hexdigest()[:16], "code": code,
           "precompress": precompress, "nlist": nlist, "nprobe": nprobe, "rss": "VmHWM", "dense_code": CODE["code"],
           "block_rows": _variant(block_rows, order)[0], "order": _variant(block_rows, order)[1]}
    stamp = out.with_name(out.name + ".convert.json")
    if (out / "manifest.json").is_file() and stamp.is_file():
        got = json.loads(stamp.read_text())
        if got.get("key") == key:
            return got["measured"]
    # Peak RSS = the child's VmHWM: ru_maxrss would carry the parent's peak across fork + exec.
    script = ("import json, time\nfrom pathlib import Path\n"
              "from websem.build.partition import convert_bundle\n"
              "t = time.perf_counter()\n"
              f"convert_bundle(Path({str(flat)!r}), Path({str(out)!r}), nlist={nlist!r}, nprobe={nprobe!r}, "
              f"precompress={precompress!r}, code={CODE['code']!r}, "
              f"block_rows={_variant(block_rows, order)[0]!r}, order={_variant(block_rows, order)[1]!r})\n"
              "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
              "print(json.dumps({'seconds': round(time.perf_counter() - t, 1), "
              "'peak_rss_mb': round(int(hwm) / 1024, 1)}))\n")
    print(f"[partition] converting {flat.name} -> {out.name}", file=sys.stderr, flush=True)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"convert_bundle failed for {flat}: {res.stderr[-2000:]}")
    measured = json.loads(res.stdout.strip().splitlines()[-1])
    stamp.write_text(json.dumps({"key": key, "measured": measured}) + "\n")
    return measured


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def cold_query(searcher, query: str, mode: str, k: int = 10) -> tuple[list[str], list[tuple]]:
    """``(hit ids, reads)`` for one query with an empty shard cache: every read as ``(path,
    bytes, inclusive byte range or None for the whole file)``."""
    from websem.web.partitioned import CACHE_BYTES, ShardCache

    cache = ShardCache(CACHE_BYTES)
    cache.log = []
    searcher.part.cache = cache
    hits = searcher.query(query, k, mode=mode)["hits"]
    return [h["id"] for h in hits], cache.log


def _kind_bytes(bundle: Path, manifest: dict, reads: list[tuple], ratios=None) -> dict:
    """Bytes a browser downloads for ``reads`` by shard kind: a whole file at its brotli size, a
    byte range at its raw size (ranges are of the identity bytes); ``requests``: one per read."""
    out = {"ivf": 0, "code": 0, "lex": 0, "frag": 0}
    for rel, size, byte_range in reads:
        kind = rel.split("/")[1]
        out[kind] += size if byte_range is not None else brotli_of(bundle, manifest, rel, ratios)
    out["total"] = sum(out.values())
    out["requests"] = len(reads)
    return out


def _summary(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"median": statistics.median(xs), "p90": xs[min(len(xs) - 1, int(0.9 * len(xs)))], "max": xs[-1]}


def run_quality(sets: list[str], dtype: str, settings: str = "default") -> dict:
    from bench_quality import load_set, ndcg_at
    from websem.web.query import Searcher

    out = {}
    for name in sets:
        data = load_set(name)
        ref = judged_flat(name, "float16")
        src = ref if dtype == "float16" else judged_flat(name, dtype)
        part_dir = CACHE / "partition" / _part_name(f"{name}-part-{dtype}-{settings}")
        nlist, nprobe = ivf_settings(_manifest(src)["index"]["chunks"], settings)
        conv = convert(src, part_dir, precompress=True, nlist=nlist, nprobe=nprobe)
        flat_s, part_s = Searcher(ref), Searcher(part_dir)
        man = part_s.manifest
        res = {"docs": man["index"]["docs"], "chunks": man["index"]["chunks"], "queries": len(data["queries"]),
               "nlist": man["index"]["ivf"]["nlist"], "nprobe": man["index"]["ivf"]["nprobe"],
               "vector_dtype": man["index"]["vector_dtype"], "code": man["index"]["ivf"].get("code", "rows"),
               "rerank": man["index"]["ivf"].get("rerank"), "convert": conv,
               "always_loaded": always_loaded_bytes(part_dir, man), "modes": {}}
        for mode in MODES:
            rec, nd_f, nd_p, byts = [], [], [], []
            for qid, q in zip(data["qids"], data["queries"], strict=True):
                f_ids = [h["id"] for h in flat_s.query(q, 10, mode=mode)["hits"]]
                p_ids, rels = cold_query(part_s, q, mode)
                if f_ids:
                    rec.append(len(set(f_ids) & set(p_ids)) / len(f_ids))
                nd_f.append(ndcg_at(f_ids, data["qrels"][qid]))
                nd_p.append(ndcg_at(p_ids, data["qrels"][qid]))
                byts.append(_kind_bytes(part_dir, man, rels))
            res["modes"][mode] = {
                "recall@10": round(statistics.fmean(rec), 4), "recall@10_min": round(min(rec), 2),
                "ndcg@10_flat": round(statistics.fmean(nd_f), 4), "ndcg@10_part": round(statistics.fmean(nd_p), 4),
                "ndcg@10_delta": round(statistics.fmean(nd_p) - statistics.fmean(nd_f), 4),
                "bytes_per_query": {k: _summary([b[k] for b in byts]) for k in KINDS}}
            print(name, mode, json.dumps({k: v for k, v in res["modes"][mode].items() if k != "bytes_per_query"}),
                  "bytes median", res["modes"][mode]["bytes_per_query"]["total"]["median"], flush=True)
        out[name] = res
    return out


def _scale_queries() -> list[str]:
    from common import read_queries

    qs = read_queries("cranfield") + read_queries("scifact-train")
    return qs[:SCALE_QUERIES]


def _sweep(flat: Path, n: int, settings: str, qs: list[str], default_ids: dict, variants: list[tuple[int, str]],
           precompress: bool, ratios: dict | None) -> dict:
    """Bytes and requests per cold query of each (block_rows, order) variant of ``flat``'s
    partitioned bundle, and whether it ranks exactly as the default variant (``default_ids``:
    mode -> top-10 ids per query)."""
    from websem.web.query import Searcher

    nlist, nprobe = ivf_settings(n, settings)
    out = {}
    for b, o in variants:
        part_dir = CACHE / "partition" / _part_name(f"{flat.name}-part-{settings}", b, o)
        conv = convert(flat, part_dir, precompress=precompress, nlist=nlist, nprobe=nprobe, block_rows=b, order=o)
        s = Searcher(part_dir)
        # the codes shards' sha256 tables (incompressible) differ by block size: own ratios
        v_ratios = None if ratios is None else shard_ratios(part_dir, s.manifest)
        res = {"block_rows": b, "order": o, "convert": conv, "brotli_ratios": v_ratios, "modes": {}}
        for mode in ("semantic", "hybrid"):
            byts, same = [], True
            for q, want in zip(qs, default_ids[mode], strict=True):
                ids, reads = cold_query(s, q, mode)
                byts.append(_kind_bytes(part_dir, s.manifest, reads, v_ratios))
                same &= ids == want
            res["modes"][mode] = {"bytes_per_query": {k: _summary([x[k] for x in byts]) for k in KINDS},
                                  "same_ranking": same}
            print(n, f"b{b}-{o}", mode, "bytes median", res["modes"][mode]["bytes_per_query"]["total"]["median"],
                  "requests", res["modes"][mode]["bytes_per_query"]["requests"]["median"], "same", same, flush=True)
        out[f"b{b}-{o}"] = res
        del s
    return out


def run_scale(sizes: list[int], dtype: str, settings: str = "default", source_sets: list[str] = JUDGED,
              variants: list[tuple[int, str]] | None = None) -> dict:
    from websem.web.query import Searcher

    judged = [judged_flat(name, "float16") for name in source_sets]
    sources = source_vectors(judged)
    queries = _scale_queries()
    out = {"sources": len(sources), "source_sets": list(source_sets), "sigma": SIGMA, "queries": len(queries),
           "points": {}}
    for n in sizes:
        flat = synthetic_flat_bundle(judged[0], sources, n, dtype)
        part_dir = CACHE / "partition" / _part_name(f"{flat.name}-part-{settings}")
        nlist, nprobe = ivf_settings(n, settings)
        conv = convert(flat, part_dir, precompress=n <= PRECOMPRESS_MAX, nlist=nlist, nprobe=nprobe)
        part_s = Searcher(part_dir)
        man = part_s.manifest
        ratios = None if n <= PRECOMPRESS_MAX else shard_ratios(part_dir, man)
        point = {"chunks": n, "nlist": man["index"]["ivf"]["nlist"], "nprobe": man["index"]["ivf"]["nprobe"],
                 "vector_dtype": man["index"]["vector_dtype"], "code": man["index"]["ivf"].get("code", "rows"),
                 "block_rows": man["index"]["ivf"].get("block_rows"), "order": man["index"]["ivf"].get("order"),
               "rerank": man["index"]["ivf"].get("rerank"), "convert": conv, "brotli_ratios": ratios,
                 "always_loaded": always_loaded_bytes(part_dir, man), "modes": {}}
        if ratios is not None:  # always-loaded files of an uncompressed bundle: measured directly
            from common import brotli_size

            point["always_loaded"]["brotli"] = sum(brotli_size(part_dir / r) for r in man["index"]["files"].values())
        flat_s = Searcher(flat) if n <= 100000 else None
        # 1M: BM25 over a million chunks in CPython takes seconds per query; 50 queries say enough
        qs = queries if n < 1000000 else queries[:50]
        point["queries"] = len(qs)
        default_ids: dict[str, list] = {}
        for mode in ("semantic", "hybrid"):
            byts, rec, t_part = [], [], []
            default_ids[mode] = []
            for q in qs:
                ids, reads = cold_query(part_s, q, mode)
                default_ids[mode].append(ids)
                byts.append(_kind_bytes(part_dir, man, reads, ratios))
                if flat_s is not None and mode == "semantic":
                    f_ids = [h["id"] for h in flat_s.query(q, 10, mode=mode)["hits"]]
                    rec.append(len(set(f_ids) & set(ids)) / max(1, len(f_ids)))
            # warm CPU latency: the same queries again with every shard cached
            from websem.web.partitioned import CACHE_BYTES, ShardCache

            part_s.part.cache = ShardCache(1 << 40)
            for q in qs[:50]:
                part_s.query(q, 10, mode=mode)
            for q in qs[:50]:
                t = time.perf_counter()
                part_s.query(q, 10, mode=mode)
                t_part.append(1000 * (time.perf_counter() - t))
            part_s.part.cache = ShardCache(CACHE_BYTES)
            m = {"bytes_per_query": {k: _summary([b[k] for b in byts]) for k in KINDS},
                 "cpu_warm_p50_ms": round(statistics.median(t_part), 2)}
            if rec:
                m["recall@10_vs_flat"] = round(statistics.fmean(rec), 4)
            if flat_s is not None:
                t_flat = []
                for q in queries[:50]:
                    t = time.perf_counter()
                    flat_s.query(q, 10, mode=mode)
                    t_flat.append(1000 * (time.perf_counter() - t))
                m["cpu_warm_p50_ms_flat"] = round(statistics.median(t_flat), 2)
            point["modes"][mode] = m
            print(n, mode, json.dumps(m), flush=True)
        flat_man = _manifest(flat)
        point["flat_index_brotli"] = sum(brotli_of(flat, flat_man, r, None) if n <= PRECOMPRESS_MAX else 0
                                         for r in flat_man["index"]["files"].values()) or None
        point["bundles"] = {"flat": str(flat), "partitioned": str(part_dir)}
        del flat_s, part_s
        others = [v for v in (variants or []) if v != _variant()]
        if others:
            point["blocks"] = _sweep(flat, n, settings, qs, default_ids, others, n <= PRECOMPRESS_MAX, ratios)
        out["points"][str(n)] = point
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1k/10k/100k chunks (default)")
    ap.add_argument("--full", action="store_true", help="also 1M chunks")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--sets", nargs="+", default=JUDGED, choices=JUDGED)
    ap.add_argument("--vector-dtype", choices=["float16", "int8"], default=None,
                    help="rows of the partitioned bundles [default: websem build's for a partitioned index]")
    ap.add_argument("--settings", choices=["default", "proposed"], default="default",
                    help="IVF settings: build/partition.py default_ivf, or proposed_ivf above")
    ap.add_argument("--browser", action="store_true",
                    help="also the Chromium half (bench/partition_browser.py) at every scale point "
                         "(1M: partitioned only)")
    ap.add_argument("--rounds", type=int, default=1, help="browser rounds (stacks alternate)")
    ap.add_argument("--browser-sizes", type=int, nargs="+", default=None,
                    help="scale points the browser half runs [default: all of this report's]")
    ap.add_argument("--code", choices=["binary", "rows"], default="binary",
                    help="dense code of the partitioned bundles [default: binary, the build's]")
    ap.add_argument("--source-sets", nargs="+", default=JUDGED, choices=JUDGED,
                    help="judged sets whose chunk vectors the synthetic scale points are made from")
    ap.add_argument("--blocks", type=int, nargs="+", default=None,
                    help="block_rows values to sweep at every scale point (with --orders) [default: none]")
    ap.add_argument("--orders", nargs="+", default=None, choices=["pca", "chunk"],
                    help="row orders to sweep with --blocks [default: the build's]")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--append", action="store_true",
                    help="keep the parts and scale points of bench/results/partition.json this run does not measure")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--results-dir", type=Path, default=RESULTS,
                    help="where partition.{json,md} go [default: bench/results; a folder for a trial run]")
    args = ap.parse_args(argv)
    from websem.build.partition import default_ivf, default_vector_dtype

    dtype = args.vector_dtype or default_vector_dtype("partitioned")
    sizes = args.sizes or (FULL_SIZES if args.full else QUICK_SIZES)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    checked = [1000, 1416, 1597, 1778, 9764, 10000, 100000, 1000000]
    CODE["code"] = args.code
    report: dict = {"vector_dtype": dtype, "settings": args.settings, "code": args.code,
                    "block_rows": _variant()[0], "order": _variant()[1],
                    "settings_equal_default": all(proposed_ivf(n) == default_ivf(n) for n in checked),
                    "machine": machine_info(),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "notes": ["Browser half not run (pass --browser)."]}
    if args.append and (args.results_dir / "partition.json").is_file():
        old = json.loads((args.results_dir / "partition.json").read_text())
        for part in ("quality", "scale", "browser"):
            if part in old:
                report[part] = old[part]
        report["notes"] = old.get("notes", report["notes"])

    def save() -> None:  # after each part, so a late failure keeps what was measured
        report["load_after"] = os.getloadavg()
        if not args.no_write:
            write_result("partition", report, results=args.results_dir)
            (args.results_dir / "partition.md").write_text(markdown(report))

    if not args.skip_quality:
        quality = run_quality(args.sets, dtype, args.settings)
        report["quality"] = {**(report.get("quality") or {}), **quality} if args.append else quality
        save()
    if not args.skip_scale:
        variants = [(b, o) for o in (args.orders or [_variant()[1]]) for b in (args.blocks or [_variant()[0]])]
        scale = run_scale(sizes, dtype, args.settings, args.source_sets, variants)
        if args.append and "scale" in report:
            scale["points"] = {**report["scale"]["points"], **scale["points"]}
        report["scale"] = scale
        save()
    if args.browser and "scale" in report:
        from partition_browser import run_browser

        wanted = set(args.browser_sizes or [int(n) for n in report["scale"]["points"]])
        pts = [(int(n), Path(p["bundles"]["flat"]), Path(p["bundles"]["partitioned"]))
               for n, p in report["scale"]["points"].items() if int(n) in wanted]
        browser = run_browser(pts, _scale_queries(), rounds=args.rounds, partitioned_only_from=1_000_000)
        if args.append and report.get("browser"):
            browser["points"] = {**report["browser"]["points"], **browser["points"]}
            browser["points"] = dict(sorted(browser["points"].items(), key=lambda kv: int(kv[0])))
        report["browser"] = browser
        report["notes"] = [n for n in report["notes"] if not n.startswith("Browser half")]
        note = ("Browser bytes are raw (bench/server.py sends no Content-Encoding). At 1M chunks only the "
                "partitioned stack runs: the flat bundle (1.4 GB) does not fit a tab and the peer would load it.")
        rerun = f"Browser rerun: .venv/bin/python bench/bench_partition.py {' '.join(argv or sys.argv[1:])}"
        report["notes"] = [n for n in report["notes"]
                           if not n.startswith(("Browser bytes are raw", "Browser rerun:"))] + [note, rerun]
        save()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
