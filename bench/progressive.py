"""websem's first lexical result against transformers.js's first result, same Chromium, same run.

Stacks (one `BenchServer` origin, the mounts of bench/browser.py, fresh profile per run, alternated
A B A B ..., medians):
  websem-lexical  BUNDLE/websem.js `load()` (resolves on the lexical tier) -> a hybrid search,
                  answered with the lexical ranking (`tier: "lexical"`); then, in the same page,
                  `engine.ready` and the same query from the full tier (bench/pages/progressive.js)
  peer-tuned      transformers.js web bundle + ORT's plain wasm build (bench/browser.py's strongest
                  peer): cold start to its first result

Bytes to the first lexical result, two ways, brotli q9 of each file (as bench/results/browser.md):
  needed   every file requested before `load()` resolved (the page, the runtime modules, the
           manifest, chunks.json, docs.json, lexical.bin): what the lexical tier waits for (the
           full tier's files, requested right after it is up, are left out: see FULL_TIER);
  arrived  every response complete before the first result (on loopback the full tier's first
           files may already be in).
And per judged set (cranfield, cisi, medline, scifact-train), without a browser: the same runtime
and page bytes as measured, plus that set's index/chunks.json, docs.json and lexical.bin, written
by the build's own code (read_source, chunk_documents, write_index, the BM25 writer; the vectors
do not enter these three files, so they are not computed) and its manifest (estimated by the
measured bundle's).

Targets (issue #12): time to the first lexical result <= 0.5x peer-tuned's cold start; bytes to it
<= 2 MB brotli on the judged-set bundles.

    nice -n 10 .venv/bin/python bench/progressive.py [--rounds 3] [--bundle DIR] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import CHROMIUM, CHROMIUM_ARGS, mounts, peer_model_root  # noqa: E402
from common import (  # noqa: E402
    RESULTS,
    SHARED_DATA,
    brotli_size,
    default_bundle,
    median,
    model_package,
    read_queries,
    write_result,
)
from server import BenchServer  # noqa: E402

STACKS = {"websem-lexical": "/pages/progressive.html", "peer-tuned": "/peer/peer-tuned.html"}
JUDGED = ("cranfield", "cisi", "medline", "scifact-train")
LEXICAL_FILES = ("chunks", "docs", "lexical")
# Files only the full tier reads (the engine requests them after the lexical tier is up).
FULL_TIER = re.compile(r"^/websem/(model/|vendor/|py/|runtime/pyodide-snapshot\.bin$|index/(vectors|scales)\.bin$)")
TARGET_TIME_RATIO = 0.5
TARGET_BYTES = 2_000_000


def _measure(pw, server: BenchServer, stack: str, query: str, timeout_s: float = 300) -> dict:
    """One cold run of one stack in a fresh profile: its timings and every request's timing."""
    url = f"{server.url}{STACKS[stack]}?q={quote(query)}"
    profile = Path(tempfile.mkdtemp(prefix="websem-progressive-"))
    requests: list[dict] = []
    ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                args=CHROMIUM_ARGS)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()

        def finished(req) -> None:
            t = req.timing
            if t.get("startTime", -1) >= 0 and t.get("responseEnd", -1) >= 0:
                requests.append({"path": urlparse(req.url).path, "start": t["startTime"],
                                 "end": t["startTime"] + t["responseEnd"]})

        # Requests of the page and of its module workers (reported on the context).
        ctx.on("requestfinished", finished)
        page.goto(url, wait_until="commit")
        done = ("window.__bench && (window.__bench.error !== undefined || "
                + ("window.__bench.done === true" if stack == "websem-lexical"
                   else "window.__bench.firstResultMs !== undefined") + ")")
        page.wait_for_function(f"() => {done}", polling=25, timeout=timeout_s * 1000)
        b = page.evaluate("() => ({...window.__bench, run: undefined, breakdown: undefined})")
        if b.get("error"):
            raise RuntimeError(f"{stack}: page error: {b['error']}")
        origin = page.evaluate("() => performance.timeOrigin")
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    run = {"stack": stack, "first_ms": b["firstResultMs"], "requests": requests}
    if stack == "websem-lexical":
        run.update(load_ms=b["loadMs"], first_tier=b["firstTier"], ready_ms=b["readyMs"],
                   full_ms=b["fullResultMs"], full_tier=b["fullTier"], stages=b.get("stages"))
        load_at, first_at = origin + b["loadMs"], origin + b["firstResultMs"]
        # The full tier's first requests leave the worker right after `lexical-ready`, before the
        # page hears that load() resolved: they are not what the lexical tier waited for.
        run["needed"] = sorted({r["path"] for r in requests
                                if r["start"] <= load_at and not FULL_TIER.search(r["path"])})
        run["arrived"] = sorted({r["path"] for r in requests if r["end"] <= first_at})
    return run


def _brotli(server: BenchServer, paths: list[str]) -> dict:
    files = {}
    for p in paths:
        f = server.resolve(p)
        if f is not None and f.is_file():
            files[p] = brotli_size(f)
    return {"brotli": sum(files.values()), "files": files}


def judged_set_bytes(dataset: str, model: Path, work: Path) -> dict:
    """Brotli bytes of a judged set's index/chunks.json, docs.json and lexical.bin as `websem
    build` writes them (its own functions; the vectors are zeros: they are not in these files)."""
    import numpy as np
    from websem.build.bundle import _write_lexical
    from websem.build.chunk import chunk_documents, default_overlap
    from websem.build.embed import load_package_tokenizer
    from websem.build.index import write_index
    from websem.build.sources import read_source

    manifest = json.loads((model / "manifest.json").read_text())
    max_len = int(manifest["max_seq_length"])
    docs, _ = read_source(SHARED_DATA / dataset / "corpus.jsonl", progress=False)
    tokenizer = load_package_tokenizer(model, max_len)
    chunks = chunk_documents(docs, tokenizer.count_tokens, max_len - 2, default_overlap(max_len - 2))
    root = work / dataset
    (root / "index").mkdir(parents=True, exist_ok=True)
    vectors = np.zeros((len(chunks), int(manifest["dims"])), dtype=np.float32)
    section = write_index(root, docs, chunks, vectors, "float16")
    _write_lexical(root, False)
    files = {**section["files"], "lexical": "index/lexical.bin"}
    sizes = {key: {"raw": (root / files[key]).stat().st_size, "brotli": brotli_size(root / files[key])}
             for key in LEXICAL_FILES}
    return {"docs": len(docs), "chunks": len(chunks), "files": sizes,
            "brotli": sum(v["brotli"] for v in sizes.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    ap.add_argument("--bundle", type=Path, help="websem bundle (default: build cranfield once)")
    ap.add_argument("--name", default="progressive")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--no-judged", action="store_true", help="skip the per-judged-set byte counts")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    bundle = (args.bundle or default_bundle("cranfield")).resolve()
    query = read_queries("cranfield")[0]
    runs: list[dict] = []
    with BenchServer(mounts(bundle, peer_model_root(bundle))) as server, sync_playwright() as pw:
        for rnd in range(args.rounds):
            for stack in STACKS:
                t = time.perf_counter()
                r = _measure(pw, server, stack, query)
                r["round"] = rnd
                runs.append(r)
                extra = (f", load {r['load_ms']:.0f} ms, tier {r['first_tier']}, full result {r['full_ms']:.0f} ms"
                         if stack == "websem-lexical" else "")
                print(f"[progressive] round {rnd + 1}/{args.rounds} {stack}: first result {r['first_ms']:.0f} ms"
                      f"{extra} ({time.perf_counter() - t:.0f} s)", flush=True)
        ws = [r for r in runs if r["stack"] == "websem-lexical"]
        needed = _brotli(server, ws[0]["needed"])
        arrived = [_brotli(server, r["arrived"])["brotli"] for r in ws]
    first = median([r["first_ms"] for r in ws])
    peer = median([r["first_ms"] for r in runs if r["stack"] == "peer-tuned"])
    bman = json.loads((bundle / "manifest.json").read_text())
    index_paths = {"/websem/" + bman["index"]["files"][k] for k in LEXICAL_FILES}
    runtime_bytes = sum(v for p, v in needed["files"].items() if p not in index_paths)
    judged = {}
    if not args.no_judged:
        model = model_package()
        with tempfile.TemporaryDirectory(prefix="websem-judged-") as tmp:
            for ds in JUDGED:
                j = judged_set_bytes(ds, model, Path(tmp))
                j["total_brotli"] = runtime_bytes + j["brotli"]
                judged[ds] = j
                print(f"[progressive] {ds}: lexical files {j['brotli']:,} B brotli, with runtime and page "
                      f"{j['total_brotli']:,} B", flush=True)
    data = {
        "name": args.name,
        "rounds": args.rounds,
        "query": query,
        "bundle": {"path": str(bundle), "chunks": bman["index"]["chunks"], "docs": bman["index"]["docs"]},
        "summary": {
            "websem_first_lexical_ms": first,
            "websem_load_ms": median([r["load_ms"] for r in ws]),
            "websem_ready_ms": median([r["ready_ms"] for r in ws]),
            "websem_full_result_ms": median([r["full_ms"] for r in ws]),
            "peer_tuned_first_ms": peer,
            "ratio_first_lexical_over_peer": first / peer if first and peer else None,
            "target_ratio": TARGET_TIME_RATIO,
            "bytes_needed_brotli": needed["brotli"],
            "bytes_arrived_brotli_median": median(arrived),
            "runtime_and_page_brotli": runtime_bytes,
            "target_bytes": TARGET_BYTES,
            "tiers": sorted({r["first_tier"] for r in ws}),
        },
        "needed_files": needed["files"],
        "judged_sets": judged,
        "runs": runs,
    }
    path = write_result(args.name, data, args.results)
    md = write_markdown(json.loads(path.read_text()), args.results)
    print(f"[progressive] wrote {path}, {md}")
    return 0


def write_markdown(data: dict, results: Path = RESULTS) -> Path:
    s = data["summary"]
    m = data.get("machine", {})
    mb = 1_000_000
    lines = [
        "# Progressive results: websem's first lexical result vs transformers.js's first result",
        "",
        f"{data['date']} · {m.get('cpu_model', '')} · {m.get('nproc', '?')} cores · load "
        f"{', '.join(f'{x:.1f}' for x in m.get('loadavg', []))} · {data['rounds']} alternated rounds · "
        f"bundle: {data['bundle']['chunks']} chunks (cranfield) · first query: {data['query'][:60]!r}",
        "",
        "Both stacks run in the same Chromium, in turn, on the same box: on a busy box (a load above the "
        "core count) every absolute time stretches, the ratio is the comparison.",
        "",
        "| stack | first result ms (median) | ratio to peer-tuned | target |",
        "|---|---|---|---|",
        f"| websem-lexical (hybrid search answered by the lexical tier) | {s['websem_first_lexical_ms']:,.0f} | "
        f"{s['ratio_first_lexical_over_peer']:.2f} | ≤ {s['target_ratio']} |",
        f"| peer-tuned (transformers.js cold start) | {s['peer_tuned_first_ms']:,.0f} | 1.00 | |",
        "",
        f"websem in the same pages (medians, ms since navigation): `load()` resolved {s['websem_load_ms']:,.0f}, "
        f"first (lexical) result {s['websem_first_lexical_ms']:,.0f}, `engine.ready` {s['websem_ready_ms']:,.0f}, "
        f"the same query from the full tier {s['websem_full_result_ms']:,.0f}. First-result tiers: "
        f"{', '.join(s['tiers'])}.",
        "",
        f"Bytes to the first lexical result (brotli q9): **{s['bytes_needed_brotli'] / mb:.2f} MB** needed (every "
        f"file requested before `load()` resolved; target ≤ {s['target_bytes'] / mb:.0f} MB), "
        f"{s['bytes_arrived_brotli_median'] / mb:.2f} MB arrived before the first result (median; on loopback "
        "the full tier's first files are already coming in).",
        "",
        "Needed files: " + ", ".join(f"`{p}` {b:,}" for p, b in sorted(data["needed_files"].items(),
                                                                        key=lambda x: -x[1])),
    ]
    if data.get("judged_sets"):
        lines += ["", "Per judged set: the runtime and page bytes above (" + f"{s['runtime_and_page_brotli']:,} B"
                  + ") plus the set's own lexical files (brotli q9; the manifest as measured on cranfield):", "",
                  "| set | docs | chunks | chunks.json | docs.json | lexical.bin | bytes to first lexical result | "
                  "≤ 2 MB |", "|---|---|---|---|---|---|---|---|"]
        for ds, j in data["judged_sets"].items():
            f = j["files"]
            lines.append(f"| {ds} | {j['docs']:,} | {j['chunks']:,} | {f['chunks']['brotli']:,} | "
                         f"{f['docs']['brotli']:,} | {f['lexical']['brotli']:,} | {j['total_brotli'] / mb:.2f} MB | "
                         f"{'yes' if j['total_brotli'] <= s['target_bytes'] else 'no'} |")
    lines += ["", "Rerun: `nice -n 10 .venv/bin/python bench/progressive.py --rounds 3` (bench/progressive.py)."]
    out = results / f"{data['name']}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    sys.exit(main())
