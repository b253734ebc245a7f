// websem end to end through its public API: BUNDLE/websem.js load() -> engine.search(query, {k}).
import { load } from "/websem/websem.js";
import { installHarness, firstQuery, reportError } from "/pages/harness.js";

const K = 10;
try {
  const engine = await load(new URL("/websem/", location.href));
  window.__bench = window.__bench || {};
  window.__bench.readyMs = performance.now();
  const search = (q) => engine.search(q, { k: K });
  installHarness(search, { stack: "websem", engineInfo: engine.info ?? null });
  await firstQuery(search);
} catch (err) {
  reportError(err);
}
