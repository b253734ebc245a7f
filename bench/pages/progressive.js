// websem's progressive start through its public API (bench/progressive.py reads window.__bench):
//   loadMs:        performance.now() when load() resolved (the lexical tier is up)
//   firstResultMs: when the first query's hits exist (a hybrid search: tier "lexical")
//   firstTier:     that result's tier
//   readyMs:       when engine.ready resolved (Pyodide and the model are up)
//   fullResultMs:  when the same query's hybrid hits exist from the full tier
// performance.now() counts from the navigation start, as for every stack of bench/browser.py.
import { reportError } from "/pages/harness.js";

const bench = (window.__bench = window.__bench || {});
bench.timeOrigin = performance.timeOrigin;
const stages = (bench.stages = []);
const onProgress = (ev) => {
  if (ev.stage !== "verified" && ev.stage !== "bytes") stages.push({ stage: ev.stage, at_ms: performance.now() });
};
const q = new URLSearchParams(location.search).get("q") || "what is the boundary layer";
try {
  const { load } = await import("/websem/websem.js");
  const engine = await load(new URL("/websem/", location.href), { onProgress });
  bench.loadMs = performance.now();
  const first = await engine.searchFull(q, { k: 10 });
  bench.firstResultMs = performance.now();
  bench.firstTier = first.tier;
  bench.firstHits = first.hits.map((h) => ({ id: h.id, score: h.score }));
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
