"""Real-site evaluation (issue #15): websem against Pagefind 1.6 and the site's own search, in Chromium.

Two real generator outputs installed from Debian, each with judged natural-language questions
(bench/realsite/<site>/: BEIR layout, how they were written in bench/realsite/README.md):

  django    python-django-doc   Sphinx HTML   /usr/share/doc/python-django-doc/html
  postgres  postgresql-doc-15   DocBook HTML  /usr/share/doc/postgresql-doc-15/html

Per site:
  1. `websem build SITE --out CACHE/<site>/_websem` (the CLI, as a user runs it; cached per site, websem
     code version and model, so an unchanged checkout does not rebuild);
  2. `pagefind --site SITE --output-path CACHE/<site>/pagefind` (npm `pagefind` 1.6.0 from
     bench/peer, default settings);
  3. one origin on 127.0.0.1 serves the site at `/`, the bundle at `/_websem/`, Pagefind's index at
     `/pagefind/` and the harness pages at `/_realsite/` (nothing is copied into the site);
  4. in Chromium (fresh profile per run), every question goes through websem (modes hybrid, semantic,
     lexical: `load()` then `engine.search`), through Pagefind's JS API (`search(q)`, `data()` of the
     top 10) and through the site's built-in search where it has one (Sphinx's own search.html,
     driven in the page; the PostgreSQL offline docs have none). Hit URLs are mapped to pages
     (`#anchor` stripped, `dir/` -> `dir/index.html`) and scored against the test qrels: nDCG@10
     (linear gains), MRR@10, success@1 and success@10 (relevant = grade >= 1; a page listed twice
     counts once, at its first rank).
  5. Cold start (navigation to the first result, fresh profile) and cold bytes are measured in
     `--rounds` alternated rounds (websem hybrid, Pagefind, built-in, then again), medians reported;
     bytes per query after load come from the server's log while the questions run.
Also reported: the fraction of hits that are not HTML pages of the site (must be 0) and the
fraction of websem's (and Pagefind's sub-result) #anchors that do not exist in their page.

    .venv/bin/python bench/bench_realsite.py [--sites django postgres] [--rounds 3] [--reuse]

Results: bench/results/realsite.json (raw, per query) and realsite.md.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    CACHE,
    REPO,
    RESULTS,
    brotli_size,
    median,
    websem_code_version,
    write_result,
)
from server import BenchServer  # noqa: E402

__all__ = ["SITES", "Site", "load_questions", "page_of", "score_run", "main"]

CHROMIUM = os.environ.get("WEBSEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REALSITE = BENCH / "realsite"
PAGES = REALSITE / "pages"
PAGEFIND_BIN = BENCH / "peer" / "node_modules" / ".bin" / "pagefind"
WORK = CACHE / "realsite"
MODES = ("hybrid", "semantic", "lexical")
K = 10


@dataclass(frozen=True)
class Site:
    name: str
    package: str  # the Debian package that installs it
    root: Path
    generator: str
    builtin: str | None  # "sphinx" when the site ships its own client-side search


SITES: dict[str, Site] = {
    "django": Site("django", "python-django-doc", Path("/usr/share/doc/python-django-doc/html"),
                   "Sphinx (Django 3.2 docs)", "sphinx"),
    "postgres": Site("postgres", "postgresql-doc-15", Path("/usr/share/doc/postgresql-doc-15/html"),
                     "DocBook XSL (PostgreSQL 15 docs)", None),
}


# --------------------------------------------------------------------------- questions and metrics


def load_questions(site: str) -> tuple[dict[str, str], dict[str, dict[str, dict[str, int]]]]:
    """(query id -> text, split -> query id -> page -> grade) of a site's judged questions."""
    folder = REALSITE / site
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for split in ("dev", "test"):
        judged: dict[str, dict[str, int]] = {}
        lines = (folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        for line in lines[1:]:  # header: query-id corpus-id score
            if line.strip():
                qid, page, grade = line.split("\t")
                judged.setdefault(qid, {})[page] = int(grade)
        qrels[split] = judged
    return queries, qrels


def page_of(url: str) -> tuple[str, str]:
    """(page path relative to the site root, anchor without '#') of a hit URL, whatever its form:
    websem's relative `ref/x.html#a`, Pagefind's `/ref/x.html`, an absolute `http://host/dir/`."""
    parts = urlsplit(url)
    path = unquote(parts.path).lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path, unquote(parts.fragment)


def _dedupe_pages(urls: list[str]) -> list[str]:
    out: list[str] = []
    for u in urls:
        p = page_of(u)[0]
        if p not in out:
            out.append(p)
    return out


def score_run(pages: list[str], judged: dict[str, int], k: int = K) -> dict[str, float]:
    """nDCG@k (linear gains, as trec_eval), MRR@k, success@1, success@k of one ranked page list."""
    import math

    ranked = pages[:k]
    dcg = sum(judged.get(p, 0) / math.log2(i + 2) for i, p in enumerate(ranked))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    first = next((i for i, p in enumerate(ranked) if judged.get(p, 0) > 0), None)
    return {
        "ndcg@10": dcg / idcg if idcg else 0.0,
        "mrr@10": 0.0 if first is None else 1.0 / (first + 1),
        "success@1": 1.0 if first == 0 else 0.0,
        "success@10": 0.0 if first is None else 1.0,
    }


def mean_scores(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = ("ndcg@10", "mrr@10", "success@1", "success@10")
    n = len(per_query)
    return {k: round(sum(s[k] for s in per_query.values()) / n, 4) if n else 0.0 for k in keys}


class _Ids(html.parser.HTMLParser):
    """Every fragment target of a page: element ids and <a name> (both are what a browser scrolls to)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if v and (k == "id" or (k == "name" and tag == "a")):
                self.ids.add(v)


_IDS_CACHE: dict[Path, set[str]] = {}


def page_ids(path: Path) -> set[str]:
    if path not in _IDS_CACHE:
        p = _Ids()
        p.feed(path.read_text(encoding="utf-8", errors="replace"))
        _IDS_CACHE[path] = p.ids
    return _IDS_CACHE[path]


def hit_audit(site: Site, urls: list[str]) -> dict:
    """Non-page hits (not an existing .html/.htm file of the site) and anchors missing from their page."""
    not_page: list[str] = []
    anchored = 0
    missing: list[str] = []
    for u in urls:
        page, anchor = page_of(u)
        f = site.root / page
        if not (f.suffix.lower() in (".html", ".htm") and f.is_file()):
            not_page.append(u)
            continue
        if anchor:
            anchored += 1
            if anchor not in page_ids(f):
                missing.append(u)
    return {"hits": len(urls), "not_page": len(not_page), "not_page_examples": not_page[:5],
            "anchored": anchored, "anchor_missing": len(missing), "anchor_missing_examples": missing[:5]}


# --------------------------------------------------------------------------- builds


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


def _bundle_facts(bundle: Path) -> dict:
    m = json.loads((bundle / "manifest.json").read_text())
    docs = json.loads((bundle / "index" / "docs.json").read_text())
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


# --------------------------------------------------------------------------- browser


def _launch(pw, profile: Path):
    return pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)


# Sphinx's search.html renders results one <li> at a time; this init script stamps the first one
# (or the "did not match" status when the query has no result: the answer the visitor gets).
SPHINX_FIRST = """
window.__rs = window.__rs || {};
new MutationObserver((_, obs) => {
  const li = document.querySelector('#search-results ul.search li');
  const status = document.querySelector('#search-results p.search-summary');
  const none = status && status.textContent.startsWith('Your search did not match');
  if ((li || none) && window.__rs.firstMs === undefined) {
    window.__rs.firstMs = performance.now();
    obs.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""

# Run questions through the page's own Sphinx search (searchtools.js): performSearch(q) renders into
# #search-results and ends with a status line; the links are read in display order.
SPHINX_RUN = """
async (queries) => {
  const out = [];
  for (const q of queries) {
    const box = document.getElementById('search-results');
    box.innerHTML = '';
    Search.stopPulse();
    const t0 = performance.now();
    Search.performSearch(q);
    await new Promise((resolve) => {
      const tick = () => {
        const s = Search.status && Search.status.innerText;
        if (s && (s.startsWith('Search finished') || s.startsWith('Your search did not match'))) resolve();
        else setTimeout(tick, 5);
      };
      tick();
    });
    const ms = performance.now() - t0;
    const urls = [...box.querySelectorAll('ul.search > li > a')].map((a) => a.href);
    out.push({ms, urls});
  }
  return out;
}
"""


def _system_url(server: BenchServer, system: str, query: str, mode: str = "hybrid") -> str:
    q = quote(query)
    if system == "websem":
        return f"{server.url}/_realsite/websem.html?mode={mode}&q={q}"
    if system == "pagefind":
        return f"{server.url}/_realsite/pagefind.html?q={q}"
    if system == "sphinx":
        return f"{server.url}/search.html?q={q}"
    raise ValueError(system)


def _wait(page, timeout_s: float) -> dict:
    page.wait_for_function(
        "() => window.__rs && (window.__rs.firstMs !== undefined || window.__rs.error !== undefined)",
        polling=20, timeout=timeout_s * 1000)
    return page.evaluate("() => ({first: window.__rs.firstMs, ready: window.__rs.readyMs ?? null,"
                         " error: window.__rs.error ?? null})")


def _bytes(server: BenchServer, log: list[dict]) -> dict:
    served = [e for e in log if e["status"] == 200]
    raw = sum(e["bytes"] for e in served)
    br = 0
    for e in served:
        f = server.resolve(e["path"])
        if f is not None and f.is_file():
            br += brotli_size(f)
    return {"requests": len(log), "bytes": raw, "brotli_bytes": br}


def _settle(server: BenchServer, quiet_s: float = 0.3, max_s: float = 10.0) -> list[dict]:
    """Collect the server log until no request arrived for quiet_s (late fetches of a query)."""
    got: list[dict] = []
    t_end = time.perf_counter() + max_s
    last = time.perf_counter()
    while time.perf_counter() < t_end:
        time.sleep(0.05)
        new = server.take_log()
        if new:
            got += new
            last = time.perf_counter()
        elif time.perf_counter() - last >= quiet_s:
            break
    return got


def run_system(pw, server: BenchServer, system: str, first_query: str, *,
               queries: list[str] | None, timeout_s: float = 600) -> dict:
    """One fresh-profile visit: cold start to the first result, then (if queries) every question
    (websem: in all three modes), with per-query time and the bytes fetched after load."""
    profile = Path(tempfile.mkdtemp(prefix="websem-realsite-profile-"))
    console: list[str] = []
    out: dict = {"system": system}
    ctx = _launch(pw, profile)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        if system == "sphinx":
            page.add_init_script(SPHINX_FIRST)
        server.take_log()
        t0 = time.perf_counter()
        page.goto(_system_url(server, system, first_query), wait_until="commit")
        res = _wait(page, timeout_s)
        out["cold_wall_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if res["error"]:
            raise RuntimeError(f"{system}: page error: {res['error']}\n" + "\n".join(console[-20:]))
        out["cold_ms"] = round(res["first"], 1)
        out["ready_ms"] = None if res["ready"] is None else round(res["ready"], 1)
        out["cold_network"] = _bytes(server, server.take_log())
        # Late requests of the first query (Sphinx's per-result summaries) belong to neither phase.
        _settle(server)
        if queries is None:
            return out
        out["runs"] = {}
        modes = MODES if system == "websem" else (None,)
        for mode in modes:
            server.take_log()
            if system == "sphinx":
                rows = page.evaluate(SPHINX_RUN, queries)
            elif system == "websem":
                rows = page.evaluate("([qs, m]) => window.__rs.run(qs, m)", [queries, mode])
            else:
                rows = page.evaluate("qs => window.__rs.run(qs)", queries)
            log = server.take_log() + _settle(server)
            label = f"websem-{mode}" if mode else system
            out["runs"][label] = {"rows": rows, "after_load": _bytes(server, log)}
        if console:
            out["console_errors"] = console[-10:]
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- one site


def run_site(pw, site: Site, *, rounds: int, reuse: bool, max_queries: int | None,
             only: list[str] | None = None) -> dict:
    queries, qrels = load_questions(site.name)
    qids = sorted(queries)
    if max_queries:
        qids = qids[:max_queries]
    texts = [queries[q] for q in qids]
    systems = ["websem", "pagefind"] + (["sphinx"] if site.builtin == "sphinx" else [])
    systems = [s for s in systems if not only or s in only]
    websem_build = build_websem(site, reuse=reuse) if "websem" in systems else None
    pagefind_build = build_pagefind(site) if "pagefind" in systems else None
    mounts = {
        "/": site.root,
        "/_websem/": WORK / site.name / "_websem",
        "/pagefind/": WORK / site.name / "pagefind",
        "/_realsite/": PAGES,
    }
    test_ids = [q for q in qids if q in qrels["test"]]
    cold: dict[str, list[dict]] = {s: [] for s in systems}
    runs: dict[str, dict] = {}
    with BenchServer(mounts) as server:
        # Round 0 runs every question (and is also a cold sample); further rounds are cold-only.
        # Systems alternate within each round; each round's first query is a different test question.
        for r in range(max(rounds, 1)):
            first = queries[test_ids[r % len(test_ids)]]
            order = systems if r % 2 == 0 else list(reversed(systems))
            for system in order:
                print(f"[realsite] {site.name}: round {r + 1}/{rounds} {system}"
                      f"{' (all questions)' if r == 0 else ''}", flush=True)
                res = run_system(pw, server, system, first, queries=texts if r == 0 else None)
                cold[system].append({k: res[k] for k in ("cold_ms", "ready_ms", "cold_wall_ms", "cold_network")})
                if r == 0:
                    for label, run in res["runs"].items():
                        runs[label] = run | ({"console_errors": res["console_errors"]}
                                             if res.get("console_errors") else {})
    return {"site": site, "qids": qids, "texts": texts, "qrels": qrels, "runs": runs, "cold": cold,
            "builds": {"websem": websem_build, "pagefind": pagefind_build}}


def summarize_site(raw: dict) -> dict:
    site: Site = raw["site"]
    qids, qrels = raw["qids"], raw["qrels"]
    systems: dict[str, dict] = {}
    for label, run in raw["runs"].items():
        rows = run["rows"]
        pages_by_q = {}
        all_urls: list[str] = []
        sub_urls: list[str] = []
        for qid, row in zip(qids, rows, strict=True):
            pages = _dedupe_pages(row["urls"])[:K]
            pages_by_q[qid] = pages
            all_urls += row["urls"][:K]
            sub_urls += [u for u in (row.get("subUrls") or [])[:K] if u]
        scores = {split: {q: score_run(pages_by_q[q], qrels[split][q]) for q in qids if q in qrels[split]}
                  for split in ("test", "dev")}
        n = len(rows)
        entry = {
            "test": mean_scores(scores["test"]), "dev": mean_scores(scores["dev"]),
            "n_test": len(scores["test"]), "n_dev": len(scores["dev"]),
            "query_ms_median": round(median([r["ms"] for r in rows]) or 0, 1),
            "bytes_per_query": round(run["after_load"]["bytes"] / n) if n else None,
            "brotli_bytes_per_query": round(run["after_load"]["brotli_bytes"] / n) if n else None,
            "audit": hit_audit(site, all_urls),
            "no_results": sum(1 for r in rows if not r["urls"]),
            "per_query": {q: {"pages": pages_by_q[q], **{k: round(v, 4) for k, v in s.items()}}
                          for split in ("test", "dev") for q, s in scores[split].items()},
        }
        if sub_urls:
            entry["subresult_audit"] = hit_audit(site, sub_urls)
        if run.get("console_errors"):
            entry["console_errors"] = run["console_errors"]
        systems[label] = entry
    cold = {}
    for system, xs in raw["cold"].items():
        cold[system] = {
            "cold_ms_median": round(median([x["cold_ms"] for x in xs]), 1),
            "cold_ms": [x["cold_ms"] for x in xs],
            "cold_bytes_median": median([x["cold_network"]["bytes"] for x in xs]),
            "cold_brotli_bytes_median": median([x["cold_network"]["brotli_bytes"] for x in xs]),
            "cold_requests_median": median([x["cold_network"]["requests"] for x in xs]),
        }
    return {"site": site.name, "package": site.package, "root": str(site.root), "generator": site.generator,
            "builtin": site.builtin or "none (the offline DocBook HTML ships no search)",
            "questions": len(qids), "builds": raw["builds"], "systems": systems, "cold": cold}


# --------------------------------------------------------------------------- report


def _mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1e6:.2f} MB"


def _kb(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1e3:.1f} kB"


def write_markdown(result: dict) -> Path:
    lines = ["# Real sites: websem vs Pagefind vs the site's own search (issue #15)", "",
             "Chromium, one 127.0.0.1 origin (no compression; brotli sizes computed per file). "
             "Questions and judgments: bench/realsite/ (test split only below; relevant = grade >= 1). Method: "
             "bench/bench_realsite.py docstring.", ""]
    for s in result["sites"]:
        wb = s["builds"]["websem"] or {}
        pb = s["builds"]["pagefind"] or {}
        run = s["run"]
        lines += [f"## {s['site']}: {s['package']} ({s['generator']})", "",
                  f"Run {run['date_utc']}, websem code {run['code_version']}, {run['rounds']} alternated cold "
                  "round(s) per system.", "",
                  f"websem bundle: {wb['docs']} documents, {wb['chunks']} chunks, "
                  f"{_mb(wb['bundle_bytes'])}; build {wb.get('seconds', 'n/a')} s"
                  + (" (reused: built earlier by code " + str(wb.get('reused_code_version')) + ")"
                     if wb.get("reused") else "")
                  + "".join(f" ({ln.strip()})" for ln in wb.get("log_tail") or [] if ln.startswith("embedding:"))
                  + f". Pagefind ({pb.get('version')}): {pb.get('pages')} pages indexed in {pb.get('seconds')} s. "
                  f"Built-in search: {s['builtin']}.", "",
                  f"| system ({s['systems'][next(iter(s['systems']))]['n_test']} test questions) | nDCG@10 "
                  "| MRR@10 | success@1 | success@10 | no results | non-page hits | missing anchors "
                  "| query p50 | bytes/query after load |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for label, e in s["systems"].items():
            t, a = e["test"], e["audit"]
            anchors = f"{a['anchor_missing']}/{a['anchored']}"
            if "subresult_audit" in e:
                sa = e["subresult_audit"]
                anchors += f" (sub-results {sa['anchor_missing']}/{sa['anchored']})"
            lines.append(f"| {label} | {t['ndcg@10']:.3f} | {t['mrr@10']:.3f} | {t['success@1']:.3f} | "
                         f"{t['success@10']:.3f} | {e['no_results']} | {a['not_page']}/{a['hits']} | "
                         f"{anchors} | {e['query_ms_median']:.1f} ms | {_kb(e['bytes_per_query'])} "
                         f"(br {_kb(e['brotli_bytes_per_query'])}) |")
        lines += ["", "| system | cold start to first result (median) | runs | cold bytes (br) | requests |",
                  "|---|---|---|---|---|"]
        for system, c in s["cold"].items():
            lines.append(f"| {system} | {c['cold_ms_median']:,.0f} ms | "
                         f"{', '.join(f'{x:,.0f}' for x in c['cold_ms'])} | {_mb(c['cold_bytes_median'])} "
                         f"({_mb(c['cold_brotli_bytes_median'])}) | {c['cold_requests_median']:.0f} |")
        h = s["systems"].get("websem-hybrid", {}).get("test")
        p = s["systems"].get("pagefind", {}).get("test")
        if h and p:
            dm, ds = h["mrr@10"] - p["mrr@10"], h["success@1"] - p["success@1"]
            met = dm >= 0.10 and ds >= 0.10 and s["systems"]["websem-hybrid"]["audit"]["not_page"] == 0
            lines += ["", f"Target (hybrid above Pagefind by >= 0.10 in MRR@10 and success@1, no non-page hit): "
                      f"MRR@10 {dm:+.3f}, success@1 {ds:+.3f}: **{'met' if met else 'not met'}**."]
        for label, e in s["systems"].items():
            ex = e["audit"]["anchor_missing_examples"] + e["audit"]["not_page_examples"]
            if ex:
                lines.append(f"- {label} examples of missing anchors / non-page hits: "
                             + ", ".join(f"`{x}`" for x in ex[:4]))
        lines.append("")
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    out = RESULTS / "realsite.md"
    out.write_text("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", nargs="+", choices=list(SITES), default=list(SITES))
    ap.add_argument("--rounds", type=int, default=3, help="cold-start rounds per system (alternated)")
    ap.add_argument("--reuse", action="store_true",
                    help="use an existing websem bundle even if the websem code changed since it was built")
    ap.add_argument("--max-queries", type=int, default=None, help="only the first N questions (smoke test)")
    ap.add_argument("--systems", nargs="+", choices=["websem", "pagefind", "sphinx"], default=None,
                    help="only these systems (smoke tests; a results file needs all of them)")
    ap.add_argument("--build-only", action="store_true",
                    help="build (or refresh) the websem bundles and Pagefind indexes, measure nothing")
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite results/realsite.md from results/realsite.json, run nothing")
    ap.add_argument("--note", action="append", default=[], help="a note for the results file")
    args = ap.parse_args(argv)
    if args.markdown_only:
        result = json.loads((RESULTS / "realsite.json").read_text())
        result["notes"] = list(dict.fromkeys(result.get("notes") or []))
        print(f"[realsite] wrote {write_markdown(result)}")
        return 0
    missing = [s for s in args.sites if not SITES[s].root.is_dir()]
    if missing:
        print("websem: site(s) not installed: " + ", ".join(
            f"{s} (apt-get install {SITES[s].package})" for s in missing), file=sys.stderr)
        return 2
    if args.build_only:
        for name in args.sites:
            facts = build_websem(SITES[name], reuse=args.reuse)
            print(f"[realsite] {name}: websem bundle {facts['docs']} docs, {facts['chunks']} chunks, "
                  f"{facts.get('seconds')} s", flush=True)
        return 0
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    summaries = []
    with sync_playwright() as pw:
        for name in args.sites:
            raw = run_site(pw, SITES[name], rounds=args.rounds, reuse=args.reuse, max_queries=args.max_queries,
                           only=args.systems)
            summary = summarize_site(raw)
            # Each site carries its own run facts: a run of one site keeps the other's last results.
            summary["run"] = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "rounds": args.rounds, "code_version": websem_code_version(),
                              "notes": args.note}
            summaries.append(summary)
    result = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": args.rounds,
              "seconds": round(time.perf_counter() - t0, 1), "code_version": websem_code_version(),
              "max_queries": args.max_queries, "notes": args.note, "sites": summaries}
    if args.max_queries or args.systems:
        # A smoke run must not overwrite the real results.
        out = WORK / "realsite-smoke.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        print(f"[realsite] smoke run written to {out}")
        for s in summaries:
            for label, e in s["systems"].items():
                print(s["site"], label, e["test"], e["audit"]["not_page"], e["audit"]["anchor_missing"],
                      e["audit"]["anchored"])
        return 0
    try:
        previous = json.loads((RESULTS / "realsite.json").read_text())["sites"]
    except (OSError, ValueError, KeyError):
        previous = []
    ran = {s["site"] for s in summaries}
    kept = [s for s in previous if s.get("site") not in ran and s.get("run")]
    result["sites"] = sorted(kept + summaries, key=lambda s: list(SITES).index(s["site"]))
    result["notes"] = list(dict.fromkeys(n for s in result["sites"] for n in s["run"]["notes"]))
    write_result("realsite", result)
    print(f"[realsite] wrote {write_markdown(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
