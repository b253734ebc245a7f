// websem end to end through its public API: BUNDLE/websem.js load() -> engine.search(query, {k}).
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
  const search = (q) => engine.search(q, { k: K });
  installHarness(search, { stack: "websem", engineInfo: engine.info ?? null });
  await firstQuery(search);
} catch (err) {
  reportError(err);
}
