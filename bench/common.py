"""Shared helpers for the benchmark scripts: machine info, versions, result files, statistics,
brotli sizes (cached) and the websem artefacts the browser benchmarks need (model package, bundle).

Every result file is `bench/results/<name>.json` with the raw numbers plus `machine`, `versions`
and `date`, so a number can always be traced to the box and the code that produced it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "BENCH",
    "REPO",
    "RESULTS",
    "CACHE",
    "SHARED_DATA",
    "machine_info",
    "versions",
    "write_result",
    "median",
    "percentile",
    "brotli_size",
    "wire_quality",
    "read_queries",
    "model_package",
    "default_bundle",
    "bundle_key",
    "websem_code_version",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
CACHE = REPO / ".cache" / "bench"  # gitignored: bundles, peer model folder, brotli sizes


def _shared_data() -> Path:
    env = os.environ.get("WEBSEM_SHARED_DATA")
    for c in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (c / "cranfield" / "corpus.jsonl").is_file():
            return c
    return REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()


def machine_info() -> dict:
    """CPU model, core count, memory, load: the context every number needs on a shared box."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "nproc": os.cpu_count(),
        "mem_total_mb": round(mem_kb / 1024) if mem_kb else None,
        "loadavg": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def _npm_version(package_json: Path) -> str | None:
    try:
        return json.loads(package_json.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _chromium_version() -> str | None:
    try:
        out = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    """Versions of everything that can move a number."""
    from importlib import metadata

    def pyver(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        dirty = bool(subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    peer = BENCH / "peer" / "node_modules"
    web = REPO / "web" / "node_modules"
    return {
        "websem": pyver("websem"),
        "websem_code": websem_code_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "onnxruntime": pyver("onnxruntime"),
        "playwright": pyver("playwright"),
        "chromium": _chromium_version(),
        "node_pyodide": _npm_version(web / "pyodide" / "package.json"),
        "node_onnxruntime_web": _npm_version(web / "onnxruntime-web" / "package.json"),
        "peer_transformers_js": _npm_version(peer / "@huggingface" / "transformers" / "package.json"),
        "peer_onnxruntime_web": _npm_version(peer / "onnxruntime-web" / "package.json"),
    }


def write_result(name: str, data: dict, results: Path = RESULTS) -> Path:
    """Write bench/results/<name>.json (or ``results``/<name>.json: a trial run's scratch folder)
    atomically with machine, versions and date added."""
    results.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        **data,
    }
    out = results / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    tmp.replace(out)
    return out


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def percentile(xs: list[float], p: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), p in [0, 100]."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    pos = (len(xs) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def wire_quality(path: Path) -> int:
    """The brotli quality websem's build gives a file of this kind (build/compress.py
    ``brotli_quality``), applied alike to every stack's files: the runtime's files (wasm and JS
    binaries, anything under a bundle's ``vendor/`` or ``runtime/``, e.g. the Pyodide snapshot) at
    11 whatever their size; other files at 11 up to ``BIG`` (4 MB) and 9 above (the model body)."""
    from websem.build.compress import brotli_quality

    runtime = path.suffix in (".wasm", ".mjs", ".js") or {"vendor", "runtime"} & set(path.parts)
    return brotli_quality(path.stat().st_size, "runtime/" + path.name if runtime else path.name)


def brotli_size(path: Path, quality: int | None = None) -> int:
    """Brotli-compressed size of a file, cached by sha256; ``quality`` None: ``wire_quality``,
    what websem's build ships (quality 11 on a 10-15 MB wasm file takes ~35 s once, then the cache)."""
    import brotli

    if quality is None:
        quality = wire_quality(path)
    data = path.read_bytes()
    key = f"{hashlib.sha256(data).hexdigest()}-q{quality}"
    cache_file = CACHE / "brotli-sizes.json"
    cache: dict[str, int] = {}
    if cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except ValueError:
            cache = {}
    if key not in cache:
        cache[key] = len(brotli.compress(data, quality=quality))
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    return cache[key]


def scifact_texts(n: int, sep: str = " ") -> list[str]:
    """The first ``n`` SciFact documents as ``title + sep + text`` (the embedding benchmarks' workload)."""
    out = []
    with (SHARED_DATA / "scifact-train" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append((d.get("title", "") + sep + d.get("text", "")).strip())
            if len(out) == n:
                break
    return out


def read_queries(dataset: str) -> list[str]:
    """Real query texts of a judged set in ../shared/data (BEIR queries.jsonl), in file order."""
    path = SHARED_DATA / dataset / "queries.jsonl"
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)["text"].strip())
    return out


def model_package() -> Path:
    """The default model package: WEBSEM_BENCH_MODEL, else .cache/model (the lead's shared
    export), else export once into .cache/bench/model through the public API."""
    env = os.environ.get("WEBSEM_BENCH_MODEL")
    candidates = ([Path(env)] if env else []) + [REPO / ".cache" / "model", CACHE / "model"]
    for c in candidates:
        if (c / "manifest.json").is_file():
            return c
    from websem.export import export_model

    out = CACHE / "model"
    export_model(None, out)
    return out


# The websem code a bundle is made of (build step, browser runtime, Pyodide-side Python): its hash
# is part of the cached bundle's key, so a bundle built by older code is never measured.
CODE_GLOBS = ("build/*.py", "web/src/*.js", "web/text/*.py", "web/tools/*.mjs")
# Files the current build_bundle must produce (the Pyodide memory snapshot for the cold start, the
# BM25 index that bundle format 2 requires); a cached bundle without them is stale by definition.
REQUIRED_BUNDLE_FILES = ("runtime/pyodide-snapshot.bin", "index/lexical.bin")


def websem_code_version() -> str:
    """sha256 (first 16 hex) over the websem code that goes into a bundle (CODE_GLOBS)."""
    h = hashlib.sha256()
    for pattern in CODE_GLOBS:
        for f in sorted(REPO.glob(pattern)):
            h.update(f.relative_to(REPO).as_posix().encode() + b"\x00" + f.read_bytes() + b"\x00")
    return h.hexdigest()[:16]


def bundle_key(dataset: str = "cranfield") -> dict:
    """What the cached bench bundle of `dataset` must have been built from."""
    model = model_package()
    model_sha = json.loads((model / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
    return {"dataset": dataset, "model_sha256": model_sha, "code_version": websem_code_version()}


def default_bundle(dataset: str = "cranfield") -> Path:
    """A websem bundle of a judged set built with the default model package through the public
    Python API (`websem.build.bundle.build_bundle`), cached under .cache/bench/bundles and
    rebuilt when the model package or the websem code (CODE_GLOBS) changes: the key is kept in
    .cache/bench/bundles/<dataset>.key.json next to the bundle."""
    from websem.build.bundle import build_bundle

    model = model_package()
    key = bundle_key(dataset)
    out = CACHE / "bundles" / dataset
    key_file = out.with_name(f"{dataset}.key.json")
    if (out / "manifest.json").is_file() and key_file.is_file():
        try:
            if (json.loads(key_file.read_text()) == key
                    and all((out / f).is_file() for f in REQUIRED_BUNDLE_FILES)):
                return out
        except ValueError:
            pass
    out.parent.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    print(f"[bench] building the {dataset} bundle (websem code {key['code_version']}, model "
          f"{key['model_sha256'][:12]})", file=sys.stderr, flush=True)
    build_bundle(SHARED_DATA / dataset / "corpus.jsonl", out, model=model, force=True)
    missing = [f for f in REQUIRED_BUNDLE_FILES if not (out / f).is_file()]
    if missing:
        raise RuntimeError(f"websem: the bench bundle {out} lacks {', '.join(missing)}; the "
                           "benchmark must measure what the current build ships (is Node "
                           "available for the Pyodide snapshot?)")
    key_file.write_text(json.dumps(key, indent=1) + "\n")
    return out
