// websem end to end through its public API: BUNDLE/websem.js load() -> engine.search(query, {k, mode}).
import { load } from "/websem/websem.js";
import { installHarness, firstQuery, reportError } from "/pages/harness.js";

const K = 10;
window.__bench = window.__bench || {};
// Loading stages (navigation-relative ms), to say what limits the cold start.
const stages = (window.__bench.stages = []);
const onProgress = (ev) => {
  if (ev.stage !== "verified") stages.push({ stage: ev.stage, at_ms: performance.now() });
};
try {
  const engine = await load(new URL("/websem/", location.href), { onProgress });
  window.__bench.readyMs = performance.now();
  // 2026-11-28: the runtime defaults to hybrid (BM25 + dense RRF). The same job as the peers
  // (embed the query, brute-force cosine top-10) is mode "semantic", the default here;
  // ?mode=hybrid measures the product default as an extra row (not in the ratios).
  const mode = new URLSearchParams(location.search).get("mode") || "semantic";
  const search = (q) => engine.search(q, { k: K, mode });
  installHarness(search, { stack: mode === "semantic" ? "websem" : `websem-${mode}`, mode,
                           engineInfo: engine.info ?? null });
  // Where a warm query's time goes (diagnostics only, through the engine's test hook, not
  // public API): tokenize (Pyodide), tokenize + embed (ORT); the rest of search() is ranking and
  // result assembly. browser.py calls it after the measured queries, outside the timed run.
  window.__bench.breakdown = async (queries) => {
    const tokenize = [];
    const embed = [];
    for (const q of queries) {
      const t0 = performance.now();
      await engine.debug.tokenize(q);
      const t1 = performance.now();
      await engine.debug.embed(q);
      tokenize.push(t1 - t0);
      embed.push(performance.now() - t1);
    }
    return { tokenize_ms: tokenize, tokenize_embed_ms: embed };
  };
  await firstQuery(search);
} catch (err) {
  reportError(err);
}
