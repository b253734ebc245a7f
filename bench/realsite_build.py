"""The two indexes bench/bench_realsite.py compares, built per site: the websem bundle through the
CLI (cached on site, websem code and model) and a fresh Pagefind index (npm `pagefind` from
bench/peer, default settings)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from common import BENCH, CACHE, REPO, websem_code_version
from realsite_score import Site

PAGEFIND_BIN = BENCH / "peer" / "node_modules" / ".bin" / "pagefind"
WORK = CACHE / "realsite"


def _site_fingerprint(site: Site) -> dict:
    files = [p for p in site.root.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def build_websem(site: Site, *, reuse: bool) -> dict:
    """`websem build SITE --out WORK/<site>/_websem` through the CLI, cached on (site, websem code,
    model); returns build facts (seconds, docs, chunks, what it skipped)."""
    out = WORK / site.name / "_websem"
    key_file = WORK / site.name / "websem.key.json"
    # No --model: the CLI's default model package, as a user runs it (the bundle records its sha256).
    key = {"site": str(site.root), **_site_fingerprint(site), "code_version": websem_code_version(),
           "model": os.environ.get("WEBSEM_MODEL", "default")}
    facts: dict = {}
    if (out / "manifest.json").is_file() and key_file.is_file():
        old = json.loads(key_file.read_text())
        if reuse or old.get("key") == key:
            facts = old.get("facts", {})
            facts["reused"] = True
            facts["reused_code_version"] = old.get("key", {}).get("code_version")
            print(f"[realsite] {site.name}: reusing websem bundle {out} "
                  f"(built {facts.get('built')}, code {facts['reused_code_version']})", flush=True)
            return facts | _bundle_facts(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = WORK / site.name / "websem-build.log"
    cmd = [str(REPO / ".venv" / "bin" / "websem"), "build", str(site.root), "--out", str(out)]
    print(f"[realsite] {site.name}: {' '.join(cmd)} (log: {log})", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    secs = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"websem build failed ({rc}); see {log}:\n" + log.read_text()[-2000:])
    facts = {"seconds": round(secs, 1), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "command": " ".join(cmd), "reused": False,
             # The build's own summary (documents, chunks, skipped files by reason, cache hits).
             "log_tail": [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-8:]}
    key_file.write_text(json.dumps({"key": key, "facts": facts}, indent=1))
    return facts | _bundle_facts(out)


def _bundle_docs(bundle: Path, index: dict) -> list[dict]:
    """The bundle's documents: index/docs.json of a flat index, or every document fragment of a
    partitioned one (`--index auto` partitions both sites)."""
    if index.get("layout") != "partitioned":
        return json.loads((bundle / "index" / "docs.json").read_text())
    pattern = index["shards"]["fragments"]
    return [d for i in range(index["fragments"])
            for d in json.loads((bundle / pattern.format(i)).read_text())["docs"]]


def _bundle_facts(bundle: Path) -> dict:
    m = json.loads((bundle / "manifest.json").read_text())
    docs = _bundle_docs(bundle, m["index"])
    not_html = [d["id"] for d in docs if not d["id"].lower().endswith((".html", ".htm"))]
    source = dict(m.get("source") or {})
    skipped = source.pop("skipped", None)
    return {"docs": m["index"]["docs"], "chunks": m["index"]["chunks"], "source": source,
            "model_sha256": m["model"]["sha256"], "websem_version": m.get("websem_version"),
            "skipped": len(skipped) if isinstance(skipped, list) else skipped,
            "docs_not_html": len(not_html), "docs_not_html_examples": not_html[:5],
            "bundle_bytes": sum(f["size"] for f in m["files"].values())}


def build_pagefind(site: Site) -> dict:
    """Pagefind 1.6 with default settings into WORK/<site>/pagefind (a fresh index each run: ~1 min)."""
    if not PAGEFIND_BIN.exists():
        raise RuntimeError("websem: Pagefind is not installed in bench/peer; run `bash .ci/setup` "
                           "(npm ci --ignore-scripts in bench/peer)")
    out = WORK / site.name / "pagefind"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(PAGEFIND_BIN), "--site", str(site.root), "--output-path", str(out)]
    print(f"[realsite] {site.name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"pagefind failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    m = re.search(r"Indexed (\d+) pages?", res.stdout)
    version = subprocess.run([str(PAGEFIND_BIN), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    return {"seconds": round(secs, 1), "pages": int(m.group(1)) if m else None, "version": version,
            "command": " ".join(cmd)}
