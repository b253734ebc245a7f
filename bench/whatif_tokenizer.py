"""What if a flat bundle's query tokenizer were JavaScript instead of Pyodide? (issue #12)

Issue #12 keeps the model's WordPiece tokenizer in Pyodide. For a flat bundle that is Pyodide's
only job at query time (the ranker is plain JS), so its boot (pyodide.asm.wasm compiled on every
visit, the snapshot restored: ~0.7 to 1 s of CPU) is on the path to the first hybrid result, and
its files are ~5.4 MB of the cold download. This measures what leaving Pyodide out of a flat
bundle's query path would buy, before anyone writes a JS WordPiece twin and its parity suite.

The stand-in: a copy of the benchmark's Cranfield bundle whose engine (runtime/worker.js) gets a
"python" object that never starts Pyodide. It reads model/tokenizer.json and parses it (the bytes
and the parse a JS WordPiece would need for its vocabulary) and answers `encode` from a table of
the token ids websem's own tokenizer (websem.text.bridge) gives every query the benchmark asks.
Everything else (lexical tier, ORT, word rows, ranking, verification) is the shipped runtime. The
stand-in cannot tokenize anything outside that table: it measures, it is not a product.

bench/browser.py runs it as the `--baseline` twin of websem-hybrid, alternated with the shipped
bundle and tuned transformers.js in every round; this script writes the summary.

    .venv/bin/python bench/whatif_tokenizer.py [--quick|--full] [--rounds N]

Results: bench/results/whatif_tokenizer.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import browser  # noqa: E402
from common import CACHE, RESULTS, default_bundle, read_queries  # noqa: E402

# The one place the engine starts Pyodide (web/src/engine.js createEngine), as the runtime's
# bundled worker.js spells it. The stand-in replaces that call; if the bundler's output changes,
# the replacement finds nothing and this script stops instead of measuring the shipped runtime.
START_PYTHON = "=preparePython(files,manifest,base,onProgress,opts)"
STAND_IN = (
    "=(async()=>{"
    'const [table]=await Promise.all(['
    '(await fetch(new URL("runtime/standin-ids.json",base))).json(),'
    '(await fetch(new URL("model/tokenizer.json",base))).json()]);'
    "return {snapshot:false,"
    'encode:(t)=>{const a=table[t];if(!a)throw new Error("stand-in tokenizer: no ids for "+JSON.stringify(t));'
    "const n=a.length;return [BigInt64Array.from(a,BigInt),new BigInt64Array(n).fill(1n),new BigInt64Array(n)];},"
    'ranker:()=>{throw new Error("stand-in: no Python ranker")},'
    "inpage(){},addFiles(){},memoryBytes:()=>null,close(){}};})"
)
STACK = "websem-hybrid"
STANDIN = f"{STACK}-baseline"
PEER = "peer-tuned"


def make_standin(bundle: Path, out: Path, queries: list[str]) -> Path:
    """The stand-in bundle: `bundle` hard-linked into `out`, with the patched worker.js, the ids
    table, and manifest.json's entry for worker.js updated (its precompressed copies dropped)."""
    from websem.text import bridge

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(bundle, out, copy_function=os.link)
    manifest = json.loads((bundle / "manifest.json").read_text())
    bridge.setup(int(manifest["model"].get("max_seq_length") or 256), str(bundle / "model" / "tokenizer.json"))
    ids = {q: list(bridge.encode_arrays(q)[0]) for q in queries}
    (out / "runtime" / "standin-ids.json").write_text(json.dumps(ids))
    worker = out / "runtime" / "worker.js"
    text = worker.read_text()
    if text.count(START_PYTHON) != 1:
        raise SystemExit(f"websem bench: {worker} no longer starts Pyodide with {START_PYTHON!r}; "
                         "update START_PYTHON in bench/whatif_tokenizer.py")
    worker.unlink()  # a hard link: do not write through to the cached bundle
    worker.write_text(text.replace(START_PYTHON, STAND_IN))
    data = worker.read_bytes()
    entry = manifest["files"]["runtime/worker.js"]
    for enc in ("br", "gz"):
        entry.pop(enc, None)
        (out / f"runtime/worker.js.{enc}").unlink(missing_ok=True)
    entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (out / "manifest.json").unlink()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for enc in ("br", "gz"):
        (out / f"manifest.json.{enc}").unlink(missing_ok=True)
    return out


def summarize(raw: dict) -> dict:
    per = raw["summary"]["per_stack"]
    rows = {}
    for stack, label in ((STACK, "websem-hybrid (Pyodide tokenizer, shipped)"),
                         (STANDIN, "websem-hybrid, stand-in JS tokenizer (no Pyodide)"),
                         (PEER, "transformers.js tuned")):
        p = per[stack]
        rows[label] = {
            "cold_ms": p["cold_ms_median"], "repeat_ms": p["repeat_ms_median"],
            "query_p50_ms": p["query_p50_ms"], "renderer_rss_mb": p["renderer_rss_mb_median"],
            "cold_bytes_brotli": raw["bytes"][stack]["brotli"],
        }
    peer = rows["transformers.js tuned"]
    for r in rows.values():
        r["vs_peer"] = {k: round(r[k] / peer[k], 2) for k in ("cold_ms", "repeat_ms", "query_p50_ms",
                                                              "renderer_rss_mb", "cold_bytes_brotli")}
    return {"date": raw["date"], "machine": raw["machine"], "rounds": raw["rounds"],
            "network": raw["network"], "queries": raw["queries"], "rows": rows}


def write_md(res: dict, path: Path) -> None:
    m = res["machine"]
    lines = [
        "# What if a flat bundle's query tokenizer were JavaScript? (stand-in, not a product)",
        "",
        f"{res['date']} · {m['cpu_model']} · {m['nproc']} cores · load "
        f"{', '.join(f'{x:.1f}' for x in m['loadavg'])} · {res['rounds']} alternated rounds · "
        f"network: {res['network']['name']} · bench/browser.py measurements (cold start and repeat visit "
        "to the first hybrid result, warm p50, renderer RSS over a bare CDP pipe, cold bytes)",
        "",
        "| stack | cold ms | repeat ms | p50 ms | renderer RSS MB | cold MB brotli | cold / peer | repeat / peer "
        "| RSS / peer | bytes / peer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in res["rows"].items():
        v = r["vs_peer"]
        lines.append(f"| {label} | {r['cold_ms']:,.0f} | {r['repeat_ms']:,.0f} | {r['query_p50_ms']:.1f} | "
                     f"{r['renderer_rss_mb']:.0f} | {r['cold_bytes_brotli'] / 1e6:.2f} | {v['cold_ms']:.2f} | "
                     f"{v['repeat_ms']:.2f} | {v['renderer_rss_mb']:.2f} | {v['cold_bytes_brotli']:.2f} |")
    lines += [
        "",
        "The stand-in answers `encode` from a table of websem's own token ids for the benchmark's queries, "
        "after fetching and parsing model/tokenizer.json (what a JS WordPiece would read); Pyodide is never "
        "started. A real JS tokenizer adds its per-query cost (well under 1 ms) and must first be proven equal "
        "to websem_text's WordPiece (issue #12 keeps the tokenizer in Pyodide). Partitioned bundles rank in "
        "Pyodide and are not covered.",
        "",
        "Rerun: `nice -n 10 .venv/bin/python bench/whatif_tokenizer.py --full` (bench/whatif_tokenizer.py).",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 rounds, 40 measured queries (default)")
    mode.add_argument("--full", action="store_true", help="5 rounds, 100 measured queries")
    ap.add_argument("--rounds", type=int, help="override the number of alternated rounds")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where whatif_tokenizer.{json,md} go")
    args = ap.parse_args(argv)
    rounds = args.rounds or (5 if args.full else 3)
    queries, warm = (100, 50) if args.full else (40, 20)
    bundle = default_bundle("cranfield")
    # Every query browser.py asks: the first-query pool (the judged set's) and the warm-up pool.
    asked = sorted(set(read_queries("cranfield")) | set(read_queries("cisi")))
    standin = make_standin(bundle, CACHE / "whatif" / "cranfield-js-tokenizer", asked)
    with tempfile.TemporaryDirectory() as tmp:
        rc = browser.main(["--rounds", str(rounds), "--stacks", STACK, PEER, "--queries", str(queries),
                           "--warm", str(warm), "--baseline", str(standin), "--results", tmp,
                           "--name", "whatif_raw"])
        if rc:
            return rc
        raw = json.loads((Path(tmp) / "whatif_raw.json").read_text())
    res = summarize(raw)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "whatif_tokenizer.json").write_text(json.dumps({**res, "runs": raw["runs"]}, indent=1) + "\n")
    write_md(res, args.results / "whatif_tokenizer.md")
    print(f"[whatif] wrote {args.results / 'whatif_tokenizer.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
