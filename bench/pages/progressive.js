// websem's progressive start through its public API (bench/progressive.py reads window.__bench):
//   loadMs:        performance.now() when load() resolved (the lexical tier is up)
//   firstResultMs: when the first query's hits exist (a hybrid search: tier "lexical")
//   firstTier:     that result's tier
//   readyMs:       when engine.ready resolved (Pyodide and the model are up)
//   fullResultMs:  when the same query's hybrid hits exist from the full tier
//   typed:         ?typing=1: searches asked between the first result and readyMs [{at_ms, ms, tier}]
// performance.now() counts from the navigation start, as for every stack of bench/browser.py.
import { reportError } from "/pages/harness.js";

const bench = (window.__bench = window.__bench || {});
bench.timeOrigin = performance.timeOrigin;
const stages = (bench.stages = []);
const onProgress = (ev) => {
  if (ev.stage !== "verified" && ev.stage !== "bytes") stages.push({ stage: ev.stage, at_ms: performance.now() });
};
const params = new URLSearchParams(location.search);
const q = params.get("q") || "what is the boundary layer";
const TYPING_GAP_MS = 100;
try {
  const { load } = await import("/websem/websem.js");
  const engine = await load(new URL("/websem/", location.href), { onProgress });
  bench.loadMs = performance.now();
  const first = await engine.searchFull(q, { k: 10 });
  bench.firstResultMs = performance.now();
  bench.firstTier = first.tier;
  bench.firstHits = first.hits.map((h) => ({ id: h.id, score: h.score }));
  // ?typing=1: a visitor who keeps typing while the model loads. A hybrid search every
  // TYPING_GAP_MS (the query's first word, its first two, ..., the whole query, then over again)
  // until engine.ready: how long each answer took, and from which tier.
  if (params.get("typing") === "1") {
    let up = false;
    engine.ready.then(() => (up = true), () => (up = true));
    const words = q.split(/\s+/);
    const typed = (bench.typed = []);
    for (let i = 0; !up; i++) {
      await new Promise((resolve) => setTimeout(resolve, TYPING_GAP_MS));
      const text = words.slice(0, 1 + (i % words.length)).join(" ");
      const t0 = performance.now();
      const r = await engine.searchFull(text, { k: 10 });
      typed.push({ at_ms: t0, ms: performance.now() - t0, tier: r.tier });
    }
  }
  await engine.ready;
  bench.readyMs = performance.now();
  const full = await engine.searchFull(q, { k: 10 });
  bench.fullResultMs = performance.now();
  bench.fullTier = full.tier;
  document.getElementById("out").textContent = full.hits.map((h) => `${h.score.toFixed(4)}  ${h.id}`).join("\n");
  await engine.close();
  bench.done = true;
} catch (err) {
  reportError(err);
}
