"""Bounded load test of the edge API (web/src/handler.js behind web/src/node.js), loopback only.

    .venv/bin/python bench/bench_edge.py BUNDLE [--connections 50] [--seconds 30]
        [--queries ../shared/data/cranfield/queries.jsonl] [--variants default,liftoff,deno,workerd]
        [--mode semantic|hybrid|lexical] [--lean-bundle BUNDLE2]

For each variant (Node V8 flag sets, and the Deno and Cloudflare Workers examples under Deno and
workerd; measured in the same run so they can be compared as ratios) it starts the API on
127.0.0.1, waits for /healthz, then

1. serves 1,000 sequential queries and records RSS and peak RSS (VmHWM) of the Node process
   (the issue's memory figure: "handler started and 1,000 queries served"), plus the engine's
   two wasm heaps from /healthz (what a Workers isolate's 128 MB limit counts with the JS heap);
2. runs `--connections` keep-alive connections for `--seconds` with a stdlib asyncio HTTP/1.1
   client, recording throughput, latency p50/p99 (medians of per-request times), the error
   count (any non-200, bad JSON or socket error) and peak RSS.

Results: bench/results/edge.json and bench/results/edge.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from websem.web.api_server import NODE_ENV, start_api_server, start_edge_example

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# Node flag sets compared in one run; every variant also gets api_server.NODE_ENV
# (MALLOC_ARENA_MAX=1), as `websem serve --api` does.
VARIANTS = {"default": [], "liftoff": ["--liftoff-only"]}
# The demo/edge examples, each under its own runtime with its defaults (no flags).
RUNTIMES = ("deno", "workerd")


def proc_mem(pid: int) -> dict[str, float]:
    """Current and peak RSS of a process in MB (Linux /proc)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[{"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}[key]] = round(int(value.split()[0]) / 1024, 1)
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def _request(reader, writer, host: str, path: str) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


async def load(url: str, paths: list[str], connections: int, seconds: float) -> dict:
    """`connections` keep-alive clients issuing requests back to back for `seconds`."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname, parsed.port
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    counter = 0

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def client(i: int) -> None:
        nonlocal counter
        reader = writer = None
        while time.perf_counter() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            path = paths[counter % len(paths)]
            counter += 1
            t0 = time.perf_counter()
            try:
                status, body = await _request(reader, writer, f"{host}:{port}", path)
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                error(type(e).__name__)
                writer.close()
                writer = None
                continue
            dt = time.perf_counter() - t0
            if status != 200:
                error(f"http_{status}")
                continue
            try:
                if not isinstance(json.loads(body)["hits"], list):
                    raise ValueError
            except (ValueError, KeyError):
                error("bad_json")
                continue
            latencies.append(dt * 1000)
        if writer is not None:
            writer.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - t_start
    return {
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests_ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2) if latencies else None,
        },
    }


async def sequential(url: str, paths: list[str], n: int) -> list[float]:
    parsed = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
    times = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            status, _ = await _request(reader, writer, parsed.netloc, paths[i % len(paths)])
            if status != 200:
                raise RuntimeError(f"sequential query {i} got HTTP {status}")
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        writer.close()
    return times


def run_variant(bundle: Path, name: str, paths: list[str], args: argparse.Namespace, label: str = "") -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if name in RUNTIMES:
            server = start_edge_example(name, bundle, Path(tmp))
        else:
            server = start_api_server(bundle, node_flags=VARIANTS[name])
        with server:
            ready_s = time.perf_counter() - t0
            pid = server.process.pid
            ready_mem = proc_mem(pid)
            seq = asyncio.run(sequential(server.url, paths, args.sequential))
            after_seq = proc_mem(pid)
            wasm = server.get("healthz")[1].get("memory") or {}
            result = asyncio.run(load(server.url, paths, args.connections, args.seconds))
            after_load = proc_mem(pid)
    row = {
        "variant": name + label,
        "runtime": name,
        "bundle": str(bundle),
        "model_quantization": json.loads((bundle / "manifest.json").read_text())["model"]["quantization"]["mode"],
        "node_flags": VARIANTS.get(name, []),
        # pyodide / ort: the two wasm linear memories; js_heap: V8 heap total (not on workerd).
        "engine_memory_mb": {k.removesuffix("_bytes").removesuffix("_wasm"): round(v / 2**20, 1)
                             for k, v in wasm.items() if v},
        "ready_s": round(ready_s, 2),
        "memory_mb": {"ready": ready_mem, f"after_{args.sequential}_queries": after_seq, "after_load": after_load},
        "sequential": {
            "queries": args.sequential,
            "p50_ms": round(statistics.median(seq), 2),
            "p99_ms": round(percentile(seq, 99), 2),
        },
        "load": result,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sequential", type=int, default=1000)
    ap.add_argument("--queries", type=Path, default=SHARED_DATA / "cranfield" / "queries.jsonl")
    ap.add_argument("--variants", default="default,liftoff,deno,workerd")
    ap.add_argument("--lean-bundle", type=Path, default=None,
                    help="a second bundle (e.g. `websem build --quantization weight-int8-packed`): "
                         "every variant runs on it too")
    # semantic by default: the results on file (before issue #6) were measured in that mode.
    ap.add_argument("--mode", choices=["semantic", "hybrid", "lexical"], default="semantic")
    ap.add_argument("--out", type=Path, default=RESULTS / "edge")
    args = ap.parse_args()
    queries = [json.loads(line)["text"] for line in args.queries.read_text().splitlines() if line.strip()]
    paths = ["/search?" + urllib.parse.urlencode({"q": q, "k": 10, "mode": args.mode}) for q in queries]
    rows = [run_variant(args.bundle, v, paths, args) for v in args.variants.split(",")]
    if args.lean_bundle:
        rows += [run_variant(args.lean_bundle, v, paths, args, " (packed)") for v in args.variants.split(",")]
    doc = {
        "benchmark": "edge API load test (Node adapter, Deno and workerd examples; loopback)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "bundle": str(args.bundle),
        "queries_file": str(args.queries),
        "mode": args.mode,
        "machine_note": "2 vCPUs shared with other jobs; compare variants as ratios within this run",
        "node_env": NODE_ENV,
        "variants": rows,
    }
    if len(rows) > 1:
        base = rows[0]
        base_peak = base["memory_mb"]["after_load"]["peak_rss_mb"]
        doc["ratios_vs_" + base["variant"]] = {
            r["variant"]: {
                "peak_rss": round(r["memory_mb"]["after_load"]["peak_rss_mb"] / base_peak, 3),
                "throughput": round(r["load"]["throughput_rps"] / base["load"]["throughput_rps"], 3),
                "seq_p50": round(r["sequential"]["p50_ms"] / base["sequential"]["p50_ms"], 3),
            }
            for r in rows[1:]
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    md = [
        "# Edge API load test (Node adapter, Deno and workerd examples, on 127.0.0.1)",
        "",
        f"{doc['date']}; {args.connections} keep-alive connections for {args.seconds:g} s; "
        f"queries cycled from `{args.queries}`, k=10, mode={args.mode}, every variant with "
        f"{' '.join(f'{k}={v}' for k, v in NODE_ENV.items())}. {doc['machine_note']}.",
        "",
        "| variant | ready s | RSS ready MB | peak RSS after "
        f"{args.sequential} queries MB | wasm Pyodide + wasm ORT + JS heap MB | seq p50 ms | load req/s | "
        "p50 ms | p99 ms | errors | peak RSS after load MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r["memory_mb"]
        flags = " ".join(r["node_flags"]) or "no flags"
        suffix = r["variant"][len(r["runtime"]):]
        label = (f"{r['runtime']} example" if r["runtime"] in RUNTIMES else f"node {r['runtime']} (`{flags}`)") + suffix
        heaps = r["engine_memory_mb"]
        heap_cell = f"{heaps['pyodide']} + {heaps['ort']}" if {"pyodide", "ort"} <= heaps.keys() else ""
        heap_cell += f" + {heaps['js_heap']}" if "js_heap" in heaps else " + ?"
        md.append(
            f"| {label} | {r['ready_s']} | {m['ready']['rss_mb']} | "
            f"{m[f'after_{args.sequential}_queries']['peak_rss_mb']} | {heap_cell} | {r['sequential']['p50_ms']} | "
            f"{r['load']['throughput_rps']} | {r['load']['latency_ms']['p50']} | {r['load']['latency_ms']['p99']} | "
            f"{r['load']['errors']} | {m['after_load']['peak_rss_mb']} |"
        )
    if "ratios_vs_" + rows[0]["variant"] in doc:
        md += ["", f"Ratios against `{rows[0]['variant']}`: `{json.dumps(doc['ratios_vs_' + rows[0]['variant']])}`"]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
