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
  await firstQuery(search);
} catch (err) {
  reportError(err);
}
