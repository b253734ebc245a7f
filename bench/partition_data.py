"""Bundles and measurements for bench/bench_partition.py: synthetic flat bundles of any size and
the per-query byte counting of a partitioned bundle.

Synthetic vectors (no judged set here has 100k chunks, and this 2-core box cannot embed a million
texts): every real chunk vector we have (the four judged sets' bundles and the two real-site
bundles under .cache/bench/realsite) is a *source*; chunk i is source ``i mod S`` plus Gaussian
noise ``N(0, SIGMA^2 I)``, renormalised. ``SIGMA = sqrt((1/0.81 - 1) / 384)`` makes a copy's
cosine to its source 0.90 (for a unit source and 384-d noise, cos = 1/sqrt(1 + 384 SIGMA^2)), so
the copies of one source are distinct points near it, not duplicates (exact duplicates would tie
and make any index look perfect). Chunk text: three random sentences of the judged corpora (BM25
needs text; the text does not follow the vector). One chunk per document.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
from common import CACHE, REPO, SHARED_DATA, brotli_size

__all__ = ["SIGMA", "JUDGED", "source_vectors", "synthetic_vectors", "synthetic_flat_bundle",
           "Recorder", "brotli_of", "always_loaded_bytes"]

SIGMA = math.sqrt((1 / 0.81 - 1) / 384)
JUDGED = ["cranfield", "cisi", "medline", "scifact-train"]
REALSITES = ["django", "postgres"]


def _bundle_vectors(bundle: Path) -> np.ndarray:
    m = json.loads((bundle / "manifest.json").read_text())
    ix = m["index"]
    n, dims = int(ix["chunks"]), int(ix["dims"])
    if ix["vector_dtype"] == "int8":
        q = np.fromfile(bundle / ix["files"]["vectors"], dtype="<i1").reshape(n, dims).astype(np.float32)
        return q * np.fromfile(bundle / ix["files"]["scales"], dtype="<f4")[:, None]
    return np.fromfile(bundle / ix["files"]["vectors"], dtype="<f2").reshape(n, dims).astype(np.float32)


def source_vectors(judged_bundles: list[Path]) -> np.ndarray:
    """The real chunk vectors the synthetic ones are made from (unit rows)."""
    parts = [_bundle_vectors(b) for b in judged_bundles]
    for site in REALSITES:
        b = CACHE / "realsite" / site / "_websem"
        if (b / "manifest.json").is_file():
            parts.append(_bundle_vectors(b))
    v = np.concatenate(parts)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def synthetic_vectors(sources: np.ndarray, n: int, seed: int = 7):
    """Yield float32 blocks of the n synthetic rows (source i mod S + noise, renormalised)."""
    rng = np.random.default_rng(seed)
    for s in range(0, n, 65536):
        e = min(n, s + 65536)
        v = sources[np.arange(s, e) % len(sources)] + rng.standard_normal(
            (e - s, sources.shape[1]), dtype=np.float32) * np.float32(SIGMA)
        yield v / np.linalg.norm(v, axis=1, keepdims=True)


def _sentences() -> list[str]:
    out = []
    for name in JUDGED:
        with (SHARED_DATA / name / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                out += [s.strip() for s in (d.get("text") or "").split(". ") if len(s.strip()) > 30]
    return out


def synthetic_flat_bundle(template: Path, sources: np.ndarray, n: int, dtype: str = "float16") -> Path:
    """A flat bundle of ``n`` synthetic one-chunk documents (``dtype`` rows) under
    .cache/bench/partition (cached by size, source count and dtype); non-index files are copied
    from the flat bundle ``template``."""
    from websem.build.bundle import _file_table
    from websem.build.index import quantize
    from websem.build.lexical import write_lexical_index

    out = CACHE / "partition" / f"synthetic-{n}-{len(sources)}-{dtype}"
    if (out / "manifest.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    m = json.loads((template / "manifest.json").read_text())
    for rel in m["files"]:
        if not rel.startswith("index/"):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template / rel, tmp / rel)
    (tmp / "index").mkdir(parents=True)
    with open(tmp / "index/vectors.bin", "wb") as f, open(tmp / "index/scales.bin", "wb") as sf:
        for block in synthetic_vectors(sources, n):
            stored, scales = quantize(block, dtype)
            f.write(np.ascontiguousarray(stored).tobytes())
            if scales is not None:
                sf.write(scales.tobytes())
    if dtype != "int8":
        (tmp / "index/scales.bin").unlink()
    sents, rng = _sentences(), random.Random(0)
    docs, chunks = [], []
    for i in range(n):
        text = ". ".join(rng.sample(sents, 3)) + "."
        docs.append({"id": f"s{i}", "title": text[:60], "url": f"#s{i}"})
        chunks.append({"doc": i, "anchor": "", "start": 0, "end": len(text), "text": text})
    with open(tmp / "index/chunks.json", "w", encoding="utf-8") as f:
        json.dump(chunks, f, ensure_ascii=False, separators=(",", ":"))
    (tmp / "index/docs.json").write_text(json.dumps(docs, ensure_ascii=False, separators=(",", ":")))
    lex = write_lexical_index(tmp, chunks, docs, progress=False)
    del chunks, docs
    idx = dict(m["index"])
    files = {"chunks": "index/chunks.json", "docs": "index/docs.json", "lexical": "index/lexical.bin",
             "vectors": "index/vectors.bin"} | ({"scales": "index/scales.bin"} if dtype == "int8" else {})
    idx.update(layout="flat", docs=n, chunks=n, vector_dtype=dtype, files=files,
               lexical={"k1": lex["k1"], "b": lex["b"], "terms": lex["terms"], "fields": lex["fields"]})
    m["index"] = idx
    m["files"] = _file_table(tmp)
    m.pop("encodings", None)
    (tmp / "manifest.json").write_text(json.dumps(m, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out


def brotli_of(bundle: Path, manifest: dict, rel: str, ratios: dict[str, float] | None = None) -> int:
    """What a browser downloads for ``rel`` with brotli: the bundle's .br copy when the build
    kept one (manifest.encodings), else the file itself when the build found no copy worth it;
    for a bundle built without precompression, the file's size times ``ratios[kind]`` (measured
    on a sample of that kind's files) or its own brotli size (common.brotli_size)."""
    enc = (manifest.get("encodings") or {}).get(rel) or {}
    if "br" in enc:
        return int(enc["br"]["size"])
    if manifest.get("encodings") is not None:
        return int(manifest["files"][rel]["size"])
    if ratios is not None:
        kind = _kind(rel)
        if kind in ratios:
            return round(manifest["files"][rel]["size"] * ratios[kind])
    return brotli_size(bundle / rel)


def _kind(rel: str) -> str:
    return rel.split("/")[1] if rel.startswith("index/") else rel.split("/")[0]


def shard_ratios(bundle: Path, manifest: dict, sample: int = 40) -> dict[str, float]:
    """Brotli (common.brotli_size) / raw size of an evenly spaced sample of each shard kind (ivf, code, lex, frag)."""
    out = {}
    for kind in ("ivf", "code", "lex", "frag"):
        rels = sorted(r for r in manifest["files"] if r.startswith(f"index/{kind}/"))
        pick = rels[:: max(1, len(rels) // sample)][:sample]
        raw = sum(manifest["files"][r]["size"] for r in pick)
        out[kind] = sum(brotli_size(bundle / r) for r in pick) / raw if raw else 1.0
    return out


def always_loaded_bytes(bundle: Path, manifest: dict) -> dict:
    """Raw and brotli bytes of the index files ``load()`` fetches (manifest.index.files)."""
    rels = list(manifest["index"]["files"].values())
    return {"raw": sum(manifest["files"][r]["size"] for r in rels),
            "brotli": sum(brotli_of(bundle, manifest, r) for r in rels)}


class Recorder:
    """Wraps a PartitionedIndex's shard cache and records every shard path a query asks for."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self.seen: list[str] = []

    def get(self, rel, load):
        self.seen.append(rel)
        return self.cache.get(rel, load)

    def __getattr__(self, name):
        return getattr(self.cache, name)


if __name__ == "__main__":  # pragma: no cover
    print(REPO)
