"""In-page indexing (createIndex) against transformers.js, in the same Chromium, same model file.

Throughput: websem indexes the first N Cranfield records in the page (`index.add(records)`: the
build's reading, chunking and tokenization in Pyodide, each chunk embedded by onnxruntime-web at
batch 1, the BM25 index rebuilt, search reloaded), timed from the call to its resolve; chunks/s =
chunks indexed / seconds. The peer, transformers.js (tuned: its web bundle + ORT's plain wasm build,
the strongest browser setup of bench/browser.py), embeds the very chunk texts websem made, with the
bundle's model.onnx, at batch 1 and at batch 16: embedding only, no extraction or index, so the
ratio is conservative for websem. Target: websem >= 1.0x the peer's best.

Memory: in a fresh profile of a Chromium driven over a bare DevTools pipe (bench/cdp_pipe.py
``PipeCdp``; no DevTools domain enabled: Playwright turns the Network domain on, and Chromium then
keeps every response body in the renderer, which no visitor's tab does: a split model's word rows,
fetched by range while chunks are embedded, would count), the renderer's RSS (Linux /proc; the
page's worker and wasm heaps are in it) once createIndex is ready and has indexed 10 warm-up
records (from the end of the corpus),
and after indexing M more and exporting the index (the save a persisting page makes after each
add; the bench page itself does not persist); the growth against the size of the index files it
holds then (inpage_files(): chunks, docs, vectors, lexical). Target: growth <= size + 10%. Before
and after, the breakdown: Pyodide's and ORT's wasm memory sizes, the JS heap of the page and of
each worker (CDP Runtime.getHeapUsage, workers attached through Target.setAutoAttach), and the
Python-side bytes of the in-page state and of the ranker (sys.getsizeof walks,
bridge.inpage_sizes), and the word rows a split model fetched and kept.

Stacks alternate per round (websem, peer / peer, websem / ...), each run in a fresh profile;
medians over rounds. Writes bench/results/inpage.{json,md} after every round.

    nice -n 10 .venv/bin/python bench/bench_inpage.py [--rounds 3] [--docs 300] [--memory-docs 1000]
        [--memory-rounds N] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import CHROMIUM, CHROMIUM_ARGS, mounts, peer_model_root  # noqa: E402
from cdp_pipe import PipeCdp  # noqa: E402
from common import RESULTS, SHARED_DATA, default_bundle, median, write_result  # noqa: E402
from procmem import renderer_memory  # noqa: E402
from server import BenchServer  # noqa: E402

TIMEOUT_MS = 1_800_000
PEER_BATCHES = (1, 16)


def records(n: int) -> list[dict]:
    """The first `n` Cranfield records as createIndex records."""
    out = []
    with (SHARED_DATA / "cranfield" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if len(out) == n:
                break
            r = json.loads(line)
            out.append({"id": r["_id"], "title": r.get("title", ""), "text": r.get("text", "")})
    return out


def _context(pw):
    profile = Path(tempfile.mkdtemp(prefix="websem-bench-inpage-"))
    ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                args=CHROMIUM_ARGS)
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx, profile


def _open(ctx, url: str):
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto(url)
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.state)", timeout=TIMEOUT_MS)
    if page.evaluate("() => document.body.dataset.state") != "ready":
        raise RuntimeError(f"{url}: {page.text_content('body')[:2000]}")
    return page


def run_websem(pw, server: BenchServer, recs: list[dict]) -> dict:
    ctx, _ = _context(pw)
    try:
        page = _open(ctx, f"{server.url}/pages/inpage.html")
        open_ms = page.evaluate("() => window.__inpage.open()")
        res = page.evaluate("(r) => window.__inpage.add(r)", recs)
        if res["failed"]:
            raise RuntimeError(f"websem in-page: documents failed: {res['failed'][:3]}")
        files = page.evaluate("() => window.__inpage.files()")
        chunks = res["info"]["index"]["chunks"]
        return {"stack": "websem", "open_ms": open_ms, "ms": res["ms"], "docs": res["added"], "chunks": chunks,
                "chunks_per_s": chunks / (res["ms"] / 1000), "embed_ms": res["embed_ms"],
                "model_chunks_per_s": chunks / (res["embed_ms"] / 1000), "threads": res["info"]["threads"],
                "isolated": page.evaluate("() => crossOriginIsolated"), "texts": files["chunks"]}
    finally:
        ctx.close()


def run_peer(pw, server: BenchServer, texts: list[str]) -> dict:
    ctx, _ = _context(pw)
    try:
        page = _open(ctx, f"{server.url}/pages/inpage-peer.html")
        page.evaluate("(t) => window.__peer.embed(t, 1)", texts[:8])  # warm-up: ORT's first runs
        out = {"stack": "transformers.js-tuned", "chunks": len(texts),
               "isolated": page.evaluate("() => crossOriginIsolated")}
        for batch in PEER_BATCHES:
            ms = page.evaluate("([t, b]) => window.__peer.embed(t, b)", [texts, batch])
            out[f"batch{batch}_ms"] = ms
            out[f"batch{batch}_chunks_per_s"] = len(texts) / (ms / 1000)
        return out
    finally:
        ctx.close()


class HeapPipe(PipeCdp):
    """``PipeCdp`` that notes the workers it attaches to (``Target.attachedToTarget`` events,
    flattened sessions) for their JS heaps."""

    def __init__(self, profile: Path) -> None:
        super().__init__(profile)
        self.workers: dict[str, str] = {}  # session id -> worker name

    def on_event(self, message: dict) -> None:
        if message.get("method") == "Target.attachedToTarget":
            info = message["params"]["targetInfo"]
            if info.get("type") == "worker":
                self.workers[message["params"]["sessionId"]] = info.get("title") or info.get("url")

    def attach_workers(self, page: str) -> None:
        """Attach to the page's workers and to theirs (Pyodide's worker is nested in the
        in-page one); none of them is paused or has a domain enabled."""
        auto = {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True}
        self.send("Target.setAutoAttach", auto, session=page)
        for sid in list(self.workers):
            self.send("Target.setAutoAttach", auto, session=sid)
        self.send("Runtime.evaluate", {"expression": "1"}, session=page)  # reads the events sent meanwhile

    def heaps(self, page: str) -> dict[str, int]:
        """``{"page": bytes, "<worker name>": bytes}``: V8 heap in use after a GC in each."""
        out = {}
        for name, sid in [("page", page), *((n, s) for s, n in self.workers.items())]:
            self.send("HeapProfiler.collectGarbage", session=sid)
            out[name] = self.send("Runtime.getHeapUsage", session=sid)["usedSize"]
        return out

    def call(self, session: str, fn: str, arg: object = None):
        """``fn`` (a JS function source) called with ``arg`` in the page (promises awaited): the
        argument crosses as a value, not as script source the page would keep."""
        this = self.send("Runtime.evaluate", {"expression": "globalThis"}, session=session)["result"]["objectId"]
        r = self.send("Runtime.callFunctionOn", {"functionDeclaration": fn, "objectId": this, "arguments": [
            {"value": arg}], "awaitPromise": True, "returnByValue": True}, session=session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"websem bench: {fn[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")


def _snapshot(profile: Path, cdp: HeapPipe, page: str) -> dict:
    """Everything the memory breakdown compares, at one moment."""
    heap = cdp.heaps(page)
    out = {**renderer_memory(profile), **{f"js_heap_{k}": v for k, v in heap.items()}}
    out.update(cdp.evaluate(page, "window.ix.memory()"))
    out.update(cdp.evaluate(page, "window.ix.debug.sizes()"))
    return out


# The breakdown's rows: (key in a snapshot, label). Sizes in bytes except the renderer's MB.
BREAKDOWN = [
    ("renderer_rss_mb", "renderer RSS (MB)"),
    ("renderer_anon_mb", "renderer anonymous RSS (MB)"),
    ("pyodide_wasm_bytes", "Pyodide wasm memory"),
    ("ort_wasm_bytes", "onnxruntime wasm memory"),
    ("word_rows_bytes", "split model's word rows fetched and kept"),
    ("js_heap_page", "JS heap: page"),
    ("js_heap_websem-inpage", "JS heap: in-page worker"),
    ("js_heap_websem-python", "JS heap: Pyodide worker"),
    ("python_inpage_bytes", "Python: in-page state (getsizeof walk)"),
    ("python_ranker_bytes", "Python: ranker state beyond the index's (getsizeof walk)"),
]


def run_memory(server: BenchServer, recs: list[dict], warmup: list[dict]) -> dict:
    """One memory run in a fresh profile, over a bare CDP pipe (module docstring)."""
    profile = Path(tempfile.mkdtemp(prefix="websem-bench-inpage-rss-"))
    cdp = HeapPipe(profile)
    try:
        target = cdp.send("Target.createTarget", {"url": f"{server.url}/pages/inpage.html"})["targetId"]
        page = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while cdp.evaluate(page, "document.body?.dataset.state ?? null") not in ("ready", "error"):
            if time.monotonic() > deadline:
                raise RuntimeError("websem bench: pages/inpage.html did not load")
            time.sleep(0.25)
        cdp.evaluate(page, "window.__inpage.open()")
        # Warm-up: a few other records first, so the baseline has the runtimes' working memory
        # (ORT's arena, Pyodide's heap at work, the modules the first add imports) and the growth
        # is what M more documents cost.
        add = "function (r) { return window.__inpage.add(r); }"
        cdp.call(page, add, warmup)
        cdp.attach_workers(page)
        time.sleep(3)
        before = _snapshot(profile, cdp, page)
        res = cdp.call(page, add, recs)
        if res["failed"]:
            raise RuntimeError(f"websem in-page: documents failed: {res['failed'][:3]}")
        # The save a persisting page makes after each add() (the page runs with persist: false,
        # so the export is asked for here): its transient memory is part of what a batch costs.
        export_bytes = cdp.evaluate(page, "window.ix.export().then((b) => b.byteLength)")
        time.sleep(3)
        after = _snapshot(profile, cdp, page)
        sizes = cdp.evaluate(page, "window.__inpage.files().then((f) => f.sizes)")
        index_bytes = sum(sizes.values())
        growth_mb = after["renderer_rss_mb"] - before["renderer_rss_mb"]
        return {"docs": res["added"], "chunks": res["info"]["index"]["chunks"],
                "rss_before_mb": before["renderer_rss_mb"], "rss_after_mb": after["renderer_rss_mb"],
                "hwm_after_mb": after["renderer_hwm_mb"], "growth_mb": round(growth_mb, 1),
                "index_mb": round(index_bytes / 2**20, 2), "index_files": sizes, "export_bytes": export_bytes,
                "growth_over_index": round(growth_mb / (index_bytes / 2**20), 2),
                "before": before, "after": after}
    finally:
        cdp.close()
        shutil.rmtree(profile, ignore_errors=True)


def summarize(runs: list[dict], memory: list[dict]) -> dict:
    ws = [r for r in runs if r["stack"] == "websem"]
    peer = [r for r in runs if r["stack"] != "websem"]
    out = {
        "websem_chunks_per_s": median([r["chunks_per_s"] for r in ws]),
        "websem_ms": median([r["ms"] for r in ws]),
        "websem_open_ms": median([r["open_ms"] for r in ws]),
        "chunks": ws[0]["chunks"] if ws else None,
        # Of websem's add(), the time its chunks spent in the model (ORT session runs, with the
        # split model's word-row lookup), as chunks/s and as a share of the whole.
        "websem_model_chunks_per_s": median([r["model_chunks_per_s"] for r in ws if "model_chunks_per_s" in r]),
        "websem_model_share": median([r["embed_ms"] / r["ms"] for r in ws if "embed_ms" in r]),
    }
    for b in PEER_BATCHES:
        out[f"peer_batch{b}_chunks_per_s"] = median([r[f"batch{b}_chunks_per_s"] for r in peer])
    best = max(out[f"peer_batch{b}_chunks_per_s"] or 0 for b in PEER_BATCHES)
    out["peer_best_chunks_per_s"] = best
    # The headline: per round, websem over the peer's best batch size in the run next to it
    # (the machine's load drifts between rounds more than between two adjacent runs), median.
    rounds = sorted({r["round"] for r in runs})
    paired = []
    for rnd in rounds:
        w = [r for r in ws if r["round"] == rnd]
        p = [r for r in peer if r["round"] == rnd]
        if w and p:
            peer_best = max(p[0][f"batch{b}_chunks_per_s"] for b in PEER_BATCHES)
            paired.append({"round": rnd, "ratio_vs_peer_best": w[0]["chunks_per_s"] / peer_best,
                           "ratio_vs_peer_batch1": w[0]["chunks_per_s"] / p[0]["batch1_chunks_per_s"],
                           **({"model_ratio_vs_peer_batch1": w[0]["model_chunks_per_s"] / p[0]["batch1_chunks_per_s"]}
                              if "model_chunks_per_s" in w[0] else {})})
    out["paired"] = paired
    out["ratio_vs_peer_best"] = median([x["ratio_vs_peer_best"] for x in paired])
    out["ratio_vs_peer_batch1"] = median([x["ratio_vs_peer_batch1"] for x in paired])
    out["model_ratio_vs_peer_batch1"] = median([x["model_ratio_vs_peer_batch1"] for x in paired
                                                if "model_ratio_vs_peer_batch1" in x])
    if memory:
        out["memory_growth_mb"] = median([m["growth_mb"] for m in memory])
        out["memory_index_mb"] = median([m["index_mb"] for m in memory])
        out["memory_growth_over_index"] = median([m["growth_over_index"] for m in memory])
    return out


def write_markdown(data: dict, path: Path) -> None:
    s = data["summary"]
    mem = data["memory"]
    lines = [
        "# In-page indexing: websem createIndex vs transformers.js",
        "",
        f"Chromium, same model file, {data['docs']} Cranfield records ({s['chunks']} chunks) for throughput, "
        f"{data['memory_docs']} for memory; {data['rounds']} alternated rounds, medians"
        + (f"; load average {data['loadavg']} (1/5/15 min) at the end" if data.get("loadavg") else "")
        + ". Rerun: `nice -n 10 .venv/bin/python bench/bench_inpage.py "
        f"--rounds {data['rounds']} --docs {data['docs']} --memory-rounds {len(mem)}`.",
        "",
        "| | chunks/s | note |",
        "|---|---|---|",
        f"| websem `index.add(records)` | {s['websem_chunks_per_s']:.1f} | end to end: read, chunk, tokenize "
        "(Pyodide), embed at batch 1 (ORT wasm), BM25 build, search reload |",
    ]
    if s.get("websem_model_chunks_per_s"):
        lines.append(f"| websem, its chunks' time in the model | {s['websem_model_chunks_per_s']:.1f} | the same "
                     "add(): ORT session runs at batch 1 with the split model's word-row lookup, "
                     f"{s['websem_model_share']:.0%} of its time |")
    for b in PEER_BATCHES:
        lines.append(f"| transformers.js tuned, batch {b} | {s[f'peer_batch{b}_chunks_per_s']:.1f} | "
                     "embedding the same chunk texts only |")
    ratio = s["ratio_vs_peer_best"]
    per_round = ", ".join(f"{x['ratio_vs_peer_best']:.2f}x" for x in s["paired"])
    lines += [
        "",
        f"websem / the peer's best batch size, per round (adjacent runs): {per_round}; median **{ratio:.2f}x** "
        f"(target >= 1.0x: {'met' if ratio >= 1.0 else 'not met'}); against the peer at batch 1: "
        f"{s['ratio_vs_peer_batch1']:.2f}x. The table's chunks/s are medians over rounds of a machine whose load "
        "varied a lot between rounds (the absolute numbers are low for that reason); the per-round ratios are the "
        "comparison.",
        "",
    ]
    runs = data["runs"]
    ws = [r for r in runs if r["stack"] == "websem" and "threads" in r]
    if ws and s.get("model_ratio_vs_peer_batch1"):
        isolated = {r.get("isolated") for r in runs}
        if isolated == {False}:
            threads = "one onnxruntime thread each (the pages are not cross-origin isolated, so ORT runs one thread)"
        else:
            threads = f"websem {ws[0]['threads']} ORT thread(s), cross-origin isolated: {isolated}"
        lines += [
            f"Where websem's time goes: {s['websem_model_share']:.0%} of add() is its chunks in the model; the rest is "
            "reading, chunking and tokenizing in Pyodide (in its own worker, the next document while this one's chunks "
            "are embedded), committing each document's vectors, the BM25 build and the search reload at the end. "
            f"The model alone runs at {s['model_ratio_vs_peer_batch1']:.2f}x the peer's batch-1 throughput (median of "
            f"the rounds): the same model file, {threads}. The difference is the session's options: websem's "
            "session (graph level basic, QDQ handling off; web/src/model.js) constant-folds the int8 weights' "
            "DequantizeLinear once at load, the computation `websem build`'s CPU session runs; transformers.js "
            "takes ORT's defaults, which keep them in the graph. Each round's two runs are minutes apart on a "
            "shared machine, so a change of its load between them moves that round's ratio, the model's alone "
            "included (per round: " + ", ".join(f"{x['model_ratio_vs_peer_batch1']:.2f}x" for x in s["paired"]
                                                if "model_ratio_vs_peer_batch1" in x) + ").",
            "",
        ]
    if mem:
        g = s["memory_growth_over_index"]
        lines += [
            "## Memory",
            "",
            "| round | docs | chunks | renderer RSS before | after | growth | index files | growth / index |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for i, m in enumerate(mem, 1):
            lines.append(f"| {i} | {m['docs']} | {m['chunks']} | {m['rss_before_mb']} MB | {m['rss_after_mb']} MB | "
                         f"{m['growth_mb']} MB | {m['index_mb']} MB | {m['growth_over_index']}x |")
        met = "met" if g <= 1.1 else "not met"
        lines += ["", f"Median growth / index size: **{g:.2f}x** (target <= 1.10x: {met}). Renderer RSS of a Chromium "
                  "driven over a bare DevTools pipe (no DevTools domain enabled, as in a visitor's tab: with "
                  "Playwright's Network domain on, Chromium keeps every response body in the renderer). RSS moves "
                  "by a few MB between runs (the runtimes free and reuse memory on their own schedule), so at "
                  "this size one round's ratio is noisy; the live data below is the stable measure.", ""]
        lines += breakdown_markdown(mem)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _mb(key: str, value: float | None) -> float | None:
    if not isinstance(value, (int, float)):
        return None
    return float(value) if key.endswith("_mb") else value / 2**20


def breakdown_markdown(mem: list[dict]) -> list[str]:
    """The memory breakdown table: each component before and after the measured add(), median
    over the memory rounds, in MB."""
    rounds = [m for m in mem if "before" in m and "after" in m]
    if not rounds:
        return []
    lines = [
        "### Where the memory goes",
        "",
        f"Before and after the measured `add()`, medians over {len(rounds)} memory round(s), MB. JS heaps: V8's "
        "`Runtime.getHeapUsage` after a GC, through CDP (typed-array backing stores, such as the search's "
        "float16 vectors and the BM25 index, are outside it but in the renderer's RSS). Python: `sys.getsizeof` "
        "over what the in-page index reaches, then what the ranker reaches beyond it.",
        "",
        "| component | before | after | growth |",
        "|---|---|---|---|",
    ]
    for key, label in BREAKDOWN:
        b = [_mb(key, m["before"].get(key)) for m in rounds]
        a = [_mb(key, m["after"].get(key)) for m in rounds]
        if any(x is None for x in b + a):
            continue
        d = [y - x for x, y in zip(b, a, strict=True)]
        lines.append(f"| {label} | {median(b):.2f} | {median(a):.2f} | {median(d):+.2f} |")
    ort = median([_mb("ort", m["after"].get("ort_wasm_bytes") or 0) - _mb("ort", m["before"].get("ort_wasm_bytes") or 0)
                  for m in rounds])
    rest = median([(m["growth_mb"] - ((m["after"].get("ort_wasm_bytes") or 0)
                                      - (m["before"].get("ort_wasm_bytes") or 0)) / 2**20) / m["index_mb"]
                   for m in rounds])
    live = []
    for m in rounds:
        b, a = m["before"], m["after"]
        py = sum((a.get(k) or 0) - (b.get(k) or 0) for k in ("python_inpage_bytes", "python_ranker_bytes"))
        js = (a.get("js_heap_websem-inpage") or 0) - (b.get("js_heap_websem-inpage") or 0)
        # The search's typed arrays: the float16 rows as index/vectors.bin holds them (dense.js
        # widens them through a table when scoring) and the BM25 bytes.
        typed = m["index_files"].get("index/vectors.bin", 0) + m["index_files"].get("index/lexical.bin", 0)
        live.append((py + js + typed) / 2**20)
    lines += ["", f"Live data the index adds (Python state and ranker, the in-page worker's JS heap, its typed "
              f"arrays: the float16 vectors and the BM25 index): {median(live):.2f} MB, "
              f"{median(live) / median([m['index_mb'] for m in rounds]):.2f}x the index files. The renderer's RSS "
              "also counts what the runtimes touched while working and did not give back: Pyodide's wasm memory "
              "only grows, in steps (Emscripten adds a fraction of its size when it runs out), and never returns "
              "pages, so its high-water mark (what the BM25 build and the reading touched at their peak) "
              "stays; elsewhere RSS grows by less where pages freed after the warm-up are reused."]
    lines += ["", f"Fixed, one-time parts: onnxruntime's wasm memory grew {ort:.2f} MB (its arena grows to the longest "
              f"sequence seen; the warm-up's chunks may be shorter). Growth without it / index size: {rest:.2f}x."]
    rows = median([_mb("w", (m["after"].get("word_rows_bytes") or 0) - (m["before"].get("word_rows_bytes") or 0))
                   for m in rounds])
    if rows:
        bare = median([(m["growth_mb"] - ((m["after"].get("word_rows_bytes") or 0)
                                          - (m["before"].get("word_rows_bytes") or 0)) / 2**20) / m["index_mb"]
                       for m in rounds])
        lines += ["", f"The bundle's model is split (manifest.model.word_rows): the add fetched and kept "
                  f"{rows:.2f} MB of word-embedding rows for the tokens its chunks use (up to the whole table, "
                  f"fetched by range while indexing). Growth without them / index size: {bare:.2f}x."]
    lines += ["", "Held once: the vectors in the in-page worker (the float16 rows dense.js scores, per document "
              "until the next reload, then as views of the one index/vectors.bin; Pyodide keeps none and reads "
              "them back a slice at a time for `files()` and the export); the chunk texts in Pyodide, "
              "zlib-compressed per document; the BM25 index in the worker. The export archive is assembled in the "
              "worker from parts Pyodide gives (headers and small files, chunks.json a few hundred rows per call), "
              "so Pyodide's heap never holds the archive, chunks.json or the vectors whole."]
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--docs", type=int, default=300, help="records indexed for throughput")
    ap.add_argument("--memory-docs", type=int, default=1000, help="records indexed for the memory run (0: skip)")
    ap.add_argument("--memory-rounds", type=int, default=None, help="rounds with a memory run (default: all)")
    ap.add_argument("--bundle", type=Path, default=None, help="a bundle with the default model (default: bench's)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--report-only", action="store_true", help="rewrite inpage.md from the last inpage.json")
    args = ap.parse_args(argv)
    if args.report_only:
        data = json.loads((args.results / "inpage.json").read_text(encoding="utf-8"))
        data["summary"] = summarize(data["runs"], data["memory"])
        write_result("inpage", {k: v for k, v in data.items() if k not in ("name", "date", "machine", "versions")},
                     args.results)
        write_markdown(data, args.results / "inpage.md")
        return 0
    from playwright.sync_api import sync_playwright

    bundle = args.bundle or default_bundle()
    models = peer_model_root(bundle)
    recs = records(args.docs)
    mem_recs = records(args.memory_docs) if args.memory_docs else []
    # Warm-up records for the memory run: from the end of the corpus, never among the measured ones.
    warmup = records(1400)[-10:]
    runs: list[dict] = []
    memory: list[dict] = []
    texts: list[str] | None = None
    data: dict = {"summary": None}
    with BenchServer(mounts(bundle, models)) as server, sync_playwright() as pw:
        for r in range(args.rounds):
            order = ["websem", "peer"] if r % 2 == 0 or texts is None else ["peer", "websem"]
            for stack in order:
                if stack == "websem":
                    res = run_websem(pw, server, recs)
                    texts = res.pop("texts")
                else:
                    res = run_peer(pw, server, texts)
                res["round"] = r
                runs.append(res)
                print(json.dumps(res), file=sys.stderr, flush=True)
            if mem_recs and r < (args.rounds if args.memory_rounds is None else args.memory_rounds):
                memory.append(run_memory(server, mem_recs, warmup))
                print(json.dumps(memory[-1]), file=sys.stderr, flush=True)
            # The results so far, after every round: a long run stopped early keeps its rounds.
            data = {"docs": args.docs, "memory_docs": args.memory_docs, "rounds": r + 1, "runs": runs,
                    "memory": memory, "summary": summarize(runs, memory),
                    "loadavg": [round(x, 1) for x in os.getloadavg()]}
            write_result("inpage", data, args.results)
            write_markdown(data, args.results / "inpage.md")
    print(json.dumps(data["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
