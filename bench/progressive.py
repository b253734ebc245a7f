"""websem's first lexical result against transformers.js's first result, same Chromium, same run.

Stacks (one `BenchServer` origin, the mounts of bench/browser.py, fresh profile per run, alternated
A B A B ..., medians):
  websem-lexical  BUNDLE/websem.js `load()` (resolves on the lexical tier) -> a hybrid search,
                  answered with the lexical ranking (`tier: "lexical"`); then, in the same page,
                  `engine.ready` and the same query from the full tier (bench/pages/progressive.js)
  peer-tuned      transformers.js web bundle + ORT's plain wasm build (bench/browser.py's strongest
                  peer): cold start to its first result
  websem-typing   the websem-lexical page with ?typing=1: after the first result, a visitor who
                  keeps typing while the model loads (a hybrid search every 100 ms, the query's
                  prefixes in turn, until `engine.ready`): how long each of those answers
                  took (the lexical tier answers them). Runs of its own, so the other stacks'
                  timings are not shared with its extra queries.

Bytes to the first lexical result, two ways, brotli of each file at the quality websem ships it
(as bench/results/browser.md):
  needed   every file requested before `load()` resolved (the page, the runtime modules, the
           manifest, chunks.json, docs.json, lexical.bin): what the lexical tier waits for (the
           full tier's files, requested right after it is up, are left out: see FULL_TIER);
  arrived  every response complete before the first result (the full tier's first files may
           already be in).
And per judged set (cranfield, cisi, medline, scifact-train): one visit of the same page to the
set's bundle as `websem build` writes it by default (`--index auto`: flat below
AUTO_PARTITION_CHUNKS chunks, else partitioned; judged_bundle), with the set's first query,
counting what that visitor fetched before the first lexical result: the page, the runtime, the
manifest and the index files `load()` waits for (flat: chunks.json, docs.json, lexical.bin;
partitioned: table.json, the centroids and the document map), plus, for a partitioned bundle, the
lexical term shards and document fragments the first query read (requested before its result).

Targets (issue #12): time to the first lexical result <= 0.5x peer-tuned's cold start; bytes to it
<= 2 MB brotli on the judged-set bundles.

--network 20mbit-40ms: the server emulates that link (bench/server.py Link, brotli bodies), where
a visitor's first result waits for the lexical tier's bytes on a real link; results in
progressive_20mbit-40ms.{json,md}, without the per-judged-set byte counts (they do not depend on
the link).

    nice -n 10 .venv/bin/python bench/progressive.py [--rounds 3] [--bundle DIR] [--results DIR]
        [--network loopback|20mbit-40ms]
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
    CACHE,
    RESULTS,
    SHARED_DATA,
    brotli_size,
    bundle_key,
    default_bundle,
    median,
    model_package,
    read_queries,
    write_result,
)
from server import NETWORKS, BenchServer, network_label, network_record  # noqa: E402
from websem.build.partition import AUTO_PARTITION_CHUNKS  # noqa: E402

STACKS = {"websem-lexical": "/pages/progressive.html", "peer-tuned": "/peer/peer-tuned.html",
          "websem-typing": "/pages/progressive.html?typing=1"}
JUDGED = ("cranfield", "cisi", "medline", "scifact-train")
LEXICAL_FILES = ("chunks", "docs", "lexical")
# Files only the full tier reads (the engine requests them after the lexical tier is up).
FULL_TIER = re.compile(
    r"^/websem/(model/|vendor/|py/|runtime/pyodide-snapshot\.(bin|stdlib\.zip)$|index/(vectors|scales)\.bin$)")
TARGET_TIME_RATIO = 0.5
TARGET_BYTES = 2_000_000


def lexical_shards(manifest: dict) -> re.Pattern | None:
    """The request paths of a partitioned bundle's per-query lexical-tier files (its term shards
    and document fragments, manifest.index.shards), or None for a flat bundle (no per-query file)."""
    shards = manifest["index"].get("shards") if manifest["index"].get("layout") == "partitioned" else None
    if not shards:
        return None
    alts = "|".join(re.escape(shards[k]).replace(r"\{\}", "[0-9]+") for k in ("lexical", "fragments"))
    return re.compile(rf"^/websem/({alts})$")


def _measure(pw, server: BenchServer, stack: str, query: str, timeout_s: float = 300,
             shards: re.Pattern | None = None) -> dict:
    """One cold run of one stack in a fresh profile: its timings and every request's timing.
    ``shards``: the per-query files of a partitioned bundle's lexical tier (lexical_shards)."""
    url = f"{server.url}{STACKS[stack]}{'&' if '?' in STACKS[stack] else '?'}q={quote(query)}"
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
                + ("window.__bench.done === true" if stack.startswith("websem")
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
    if stack == "websem-typing":
        run.update(ready_ms=b["readyMs"], typed=b.get("typed") or [])
    if stack == "websem-lexical":
        run.update(load_ms=b["loadMs"], first_tier=b["firstTier"], ready_ms=b["readyMs"],
                   full_ms=b["fullResultMs"], full_tier=b["fullTier"], stages=b.get("stages"))
        load_at, first_at = origin + b["loadMs"], origin + b["firstResultMs"]
        # The full tier's first requests leave the worker right after `lexical-ready`, before the
        # page hears that load() resolved: they are not what the lexical tier waited for. A
        # partitioned bundle's first query then reads its term shards and fragments.
        run["needed"] = sorted({r["path"] for r in requests if not FULL_TIER.search(r["path"]) and (
            r["start"] <= load_at or (shards is not None and r["start"] <= first_at and shards.search(r["path"])))})
        run["arrived"] = sorted({r["path"] for r in requests if r["end"] <= first_at})
    return run


def _lexical_typed(run: dict) -> list[float]:
    """The answer times (ms) of a websem-typing run's searches that the lexical tier answered."""
    return [t["ms"] for t in run["typed"] if t["tier"] == "lexical"]


def typing_line(run: dict) -> str:
    ms = sorted(_lexical_typed(run))
    if not ms:
        return ", no search answered before the model was ready"
    return (f", {len(ms)} searches while loading: median {median(ms):.0f} ms, slowest {ms[-1]:.0f} ms, "
            f"ready {run['ready_ms']:.0f} ms")


def typing_summary(runs: list[dict]) -> dict | None:
    """Answer times of the searches typed while the model loaded (websem-typing): every run's
    lexical-tier answers pooled; per run, the slowest (medians over runs)."""
    per_run = [_lexical_typed(r) for r in runs]
    pooled = sorted(ms for run in per_run for ms in run)
    if not pooled:
        return None
    return {
        "searches": len(pooled),
        "runs": len(runs),
        "median_ms": median(pooled),
        "p90_ms": pooled[min(len(pooled) - 1, int(0.9 * len(pooled)))],
        "slowest_per_run_median_ms": median([max(run) for run in per_run if run]),
        "over_100ms": sum(ms > 100 for ms in pooled),
        "ready_ms": median([r["ready_ms"] for r in runs]),
    }


def _brotli(server: BenchServer, paths: list[str]) -> dict:
    files = {}
    for p in paths:
        f = server.resolve(p)
        if f is not None and f.is_file():
            files[p] = brotli_size(f)
    return {"brotli": sum(files.values()), "files": files}


def judged_bundle(dataset: str) -> Path:
    """``dataset``'s bundle as `websem build` writes it by default (``--index auto``), through the
    public Python API, cached under .cache/bench/progressive/ with common.default_bundle's key (the
    model and the websem code, so a changed threshold rebuilds it). Not common.default_bundle
    itself: a partitioned bundle has no index/lexical.bin, which that cache requires."""
    from websem.build.bundle import build_bundle

    key = bundle_key(dataset)
    out = CACHE / "progressive" / dataset
    key_file = out.with_name(f"{dataset}.key.json")

    def complete() -> bool:
        if not (out / "manifest.json").is_file():
            return False
        files = json.loads((out / "manifest.json").read_text())["index"]["files"].values()
        return all((out / f).is_file() for f in ("runtime/pyodide-snapshot.bin", *files))

    if key_file.is_file() and json.loads(key_file.read_text()) == key and complete():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    print(f"[progressive] building the {dataset} bundle (--index auto, websem code {key['code_version']})",
          file=sys.stderr, flush=True)
    build_bundle(SHARED_DATA / dataset / "corpus.jsonl", out, model=model_package(), force=True)
    if not complete():
        raise RuntimeError(f"websem: the bench bundle {out} lacks its Pyodide snapshot or an index file; "
                           "the benchmark must measure what the current build ships (is Node available?)")
    key_file.write_text(json.dumps(key, indent=1) + "\n")
    return out


def judged_visit(pw, dataset: str) -> dict:
    """What a first visitor of ``dataset``'s default bundle (``--index auto``) fetches before the
    first lexical result of the set's first query: brotli bytes by part (see the module doc)."""
    bundle = judged_bundle(dataset)
    manifest = json.loads((bundle / "manifest.json").read_text())
    query = read_queries(dataset)[0]
    shards = lexical_shards(manifest)
    with BenchServer(mounts(bundle, peer_model_root(bundle))) as server:
        run = _measure(pw, server, "websem-lexical", query, shards=shards)
        got = _brotli(server, run["needed"])
    if run["first_tier"] != "lexical":  # then "before the first lexical result" means nothing
        raise RuntimeError(f"websem bench: {dataset}'s first result came from tier {run['first_tier']!r}, "
                           "not the lexical tier")
    loaded = {"/websem/" + r for r in manifest["index"]["files"].values()}
    parts = {"runtime_and_page": 0, "manifest": 0, "index_at_load": 0, "first_query_shards": 0}
    for path, size in got["files"].items():
        part = ("manifest" if path == "/websem/manifest.json" else "index_at_load" if path in loaded
                else "first_query_shards" if shards is not None and shards.search(path) else "runtime_and_page")
        parts[part] += size
    return {"docs": manifest["index"]["docs"], "chunks": manifest["index"]["chunks"],
            "layout": manifest["index"].get("layout", "flat"), "query": query, "first_tier": run["first_tier"],
            "first_query_shard_files": sum(1 for p in got["files"] if shards is not None and shards.search(p)),
            "parts": parts, "total_brotli": got["brotli"], "files": got["files"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    ap.add_argument("--bundle", type=Path, help="websem bundle (default: build cranfield once)")
    ap.add_argument("--name", default="progressive")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--no-judged", action="store_true", help="skip the per-judged-set byte counts")
    ap.add_argument("--network", choices=list(NETWORKS), default="loopback",
                    help="loopback (default) or a link the server emulates (results: progressive_NETWORK)")
    args = ap.parse_args(argv)
    link = NETWORKS[args.network]
    if link is not None:
        args.no_judged = True  # byte counts: the same on every link
        if args.name == "progressive":
            args.name = f"progressive_{args.network}"
    from playwright.sync_api import sync_playwright

    judged = {}
    if not args.no_judged:
        with sync_playwright() as pw:
            for ds in JUDGED:
                j = judged[ds] = judged_visit(pw, ds)
                print(f"[progressive] {ds}: {j['layout']}, {j['total_brotli']:,} B brotli to the first lexical "
                      f"result (tier {j['first_tier']})", flush=True)
    bundle = (args.bundle or default_bundle("cranfield")).resolve()
    query = read_queries("cranfield")[0]
    runs: list[dict] = []
    with BenchServer(mounts(bundle, peer_model_root(bundle)), link=link) as server, sync_playwright() as pw:
        if server.brotli:
            print(f"[progressive] brotli bodies ready for {server.prime()} files", flush=True)
        for rnd in range(args.rounds):
            for stack in STACKS:
                t = time.perf_counter()
                r = _measure(pw, server, stack, query)
                r["round"] = rnd
                runs.append(r)
                extra = (f", load {r['load_ms']:.0f} ms, tier {r['first_tier']}, full result {r['full_ms']:.0f} ms"
                         if stack == "websem-lexical" else typing_line(r) if stack == "websem-typing" else "")
                print(f"[progressive] round {rnd + 1}/{args.rounds} {stack}: first result {r['first_ms']:.0f} ms"
                      f"{extra} ({time.perf_counter() - t:.0f} s)", flush=True)
        ws = [r for r in runs if r["stack"] == "websem-lexical"]
        needed = _brotli(server, ws[0]["needed"])
        arrived = [_brotli(server, r["arrived"])["brotli"] for r in ws]
    typing = typing_summary([r for r in runs if r["stack"] == "websem-typing"])
    first = median([r["first_ms"] for r in ws])
    peer = median([r["first_ms"] for r in runs if r["stack"] == "peer-tuned"])
    bman = json.loads((bundle / "manifest.json").read_text())
    index_paths = {"/websem/" + bman["index"]["files"][k] for k in LEXICAL_FILES}
    runtime_bytes = sum(v for p, v in needed["files"].items() if p not in index_paths)
    data = {
        "name": args.name,
        "rounds": args.rounds,
        "query": query,
        "bundle": {"path": str(bundle), "chunks": bman["index"]["chunks"], "docs": bman["index"]["docs"]},
        "network": network_record(args.network),
        "summary": {
            "websem_first_lexical_ms": first,
            "websem_load_ms": median([r["load_ms"] for r in ws]),
            "websem_ready_ms": median([r["ready_ms"] for r in ws]),
            "websem_full_result_ms": median([r["full_ms"] for r in ws]),
            "peer_tuned_first_ms": peer,
            "ratio_first_lexical_over_peer": first / peer if first and peer else None,
            "target_ratio": TARGET_TIME_RATIO,
            "bytes_needed_brotli": needed["brotli"],
            "auto_partition_chunks": AUTO_PARTITION_CHUNKS,
            "bytes_arrived_brotli_median": median(arrived),
            "runtime_and_page_brotli": runtime_bytes,
            "target_bytes": TARGET_BYTES,
            "tiers": sorted({r["first_tier"] for r in ws}),
            "typing": typing,
        },
        "needed_files": needed["files"],
        "judged_sets": judged,
        "runs": runs,
    }
    path = write_result(args.name, data, args.results)
    md = write_markdown(json.loads(path.read_text()), args.results)
    print(f"[progressive] wrote {path}, {md}")
    return 0


def typing_paragraph(t: dict | None) -> list[str]:
    """The websem-typing result as a markdown paragraph (and its blank line)."""
    if not t:
        return []
    return [
        f"Typing while the model loads (websem-typing: after the first result, a hybrid search every 100 ms "
        f"until `engine.ready` at {t['ready_ms']:,.0f} ms; the {t['searches']} searches of {t['runs']} runs that "
        f"the lexical tier answered): median **{t['median_ms']:.0f} ms** per answer, p90 {t['p90_ms']:.0f} ms, "
        f"slowest per run {t['slowest_per_run_median_ms']:.0f} ms (median over runs), {t['over_100ms']} over "
        "100 ms. A lexical answer takes a few ms once the page is idle; the slow ones wait for the engine's "
        "thread, which also verifies the model's files and creates onnxruntime-web's session (one synchronous "
        "wasm call).",
        "",
    ]


def write_markdown(data: dict, results: Path = RESULTS) -> Path:
    s = data["summary"]
    m = data.get("machine", {})
    net = data.get("network") or {}
    mb = 1_000_000
    lines = [
        "# Progressive results: websem's first lexical result vs transformers.js's first result",
        "",
        f"{data['date']} · {m.get('cpu_model', '')} · {m.get('nproc', '?')} cores · load "
        f"{', '.join(f'{x:.1f}' for x in m.get('loadavg', []))} · {data['rounds']} alternated rounds · "
        f"bundle: {data['bundle']['chunks']} chunks (cranfield) · first query: {data['query'][:60]!r} · "
        + network_label(net),
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
        f"Bytes to the first lexical result (brotli): **{s['bytes_needed_brotli'] / mb:.2f} MB** needed (every "
        f"file requested before `load()` resolved; target ≤ {s['target_bytes'] / mb:.0f} MB), "
        f"{s['bytes_arrived_brotli_median'] / mb:.2f} MB arrived before the first result (median; the full "
        "tier's first files may already be in).",
        "",
        *typing_paragraph(s.get("typing")),
        "Needed files: " + ", ".join(f"`{p}` {b:,}" for p, b in sorted(data["needed_files"].items(),
                                                                        key=lambda x: -x[1])),
    ]
    if data.get("judged_sets"):
        lines += ["", "Per judged set: one visit of this page to the set's bundle as `websem build` writes it by "
                  f"default (`--index auto`: partitioned from {s['auto_partition_chunks']:,} chunks on) with the "
                  "set's first query; every file fetched before the first lexical result, brotli bytes. Index "
                  "at load: what `load()` waits for (flat: chunks.json, docs.json, lexical.bin; partitioned: "
                  "table.json, centroids, document map); first query: a partitioned bundle's term shards and "
                  "document fragments that query read.", "",
                  "| set | docs | chunks | layout | runtime + page | manifest.json | index at load | first query "
                  "(files) | bytes to first lexical result | ≤ 2 MB |", "|---|---|---|---|---|---|---|---|---|---|"]
        for ds, j in data["judged_sets"].items():
            p = j["parts"]
            lines.append(f"| {ds} | {j['docs']:,} | {j['chunks']:,} | {j['layout']} | {p['runtime_and_page']:,} | "
                         f"{p['manifest']:,} | {p['index_at_load']:,} | {p['first_query_shards']:,} "
                         f"({j['first_query_shard_files']}) | {j['total_brotli'] / mb:.2f} MB | "
                         f"{'yes' if j['total_brotli'] <= s['target_bytes'] else 'no'} |")
    flag = f" --network {net['name']}" if net.get("mbit") else ""
    lines += ["", f"Rerun: `nice -n 10 .venv/bin/python bench/progressive.py --rounds {data['rounds']}{flag}` "
              "(bench/progressive.py)."]
    out = results / f"{data['name']}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    sys.exit(main())
