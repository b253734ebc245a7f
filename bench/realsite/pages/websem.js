// websem through its public API, the way a site embeds it: the bundle lives under /_websem/ beside the
// pages, load() it, then engine.search(q, {k: 10, mode}). bench_realsite.py reads window.__rs:
//   readyMs / firstMs: performance.now() (ms since navigation start) when load() resolved / when the
//                      first query's hits existed (?q=..., ?mode=...)
//   run(queries, mode): [{ms, urls}] for each query, run one after another
//   error: a string if anything failed
import { load } from "/_websem/websem.js";

const K = 10;
const rs = (window.__rs = window.__rs || {});
const params = new URLSearchParams(location.search);
try {
  const engine = await load(new URL("/_websem/", location.href));
  rs.readyMs = performance.now();
  // wait: the mode's own ranking, not the lexical tier's stand-in (bench/progressive.py measures that).
  const first = await engine.search(params.get("q") || "", { k: K, mode: params.get("mode") || "hybrid", wait: true });
  rs.firstMs = performance.now();
  rs.firstUrls = first.map((h) => h.url);
  rs.info = { modes: engine.info?.modes ?? null, pyodide_snapshot: engine.info?.pyodide_snapshot ?? null };
  rs.run = async (queries, mode) => {
    const out = [];
    for (const q of queries) {
      const t0 = performance.now();
      const hits = await engine.search(q, { k: K, mode, wait: true });
      out.push({ ms: performance.now() - t0, urls: hits.map((h) => h.url) });
    }
    return out;
  };
  document.getElementById("out").textContent = rs.firstUrls.join("\n");
} catch (err) {
  rs.error = String((err && err.stack) || err);
  document.getElementById("out").textContent = "error: " + rs.error;
}
