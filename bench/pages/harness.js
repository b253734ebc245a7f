// Shared page-side glue for the browser benchmarks (websem page and peer pages alike).
// The Python driver (bench/browser.py) reads window.__bench:
//   firstResultMs: performance.now() when the first query's hits exist; performance.now() counts from
//                  the navigation start (timeOrigin), so this is "navigation to first result".
//   readyMs:       engine/pipeline ready (before the first query)
//   firstHits:     [{id, score}] of the first query
//   error:         a string if anything failed
//   run(queries, withHits): run queries one after another, return {times: [ms...], hits: [[id...]...]}

export function installHarness(search, info = {}) {
  const bench = (window.__bench = window.__bench || {});
  bench.info = info;
  bench.run = async (queries, withHits) => {
    const times = [];
    const hits = [];
    for (const q of queries) {
      const t0 = performance.now();
      const res = await search(q);
      times.push(performance.now() - t0);
      if (withHits) hits.push(res.map((h) => h.id));
    }
    return { times, hits };
  };
  return bench;
}

export async function firstQuery(search) {
  const bench = (window.__bench = window.__bench || {});
  const q = new URLSearchParams(location.search).get("q") || "what is the boundary layer";
  const hits = await search(q);
  bench.firstResultMs = performance.now();
  bench.firstHits = hits.map((h) => ({ id: h.id, score: h.score }));
  const out = document.getElementById("out");
  if (out) out.textContent = hits.map((h) => `${h.score.toFixed(4)}  ${h.id}`).join("\n");
  return hits;
}

export function reportError(err) {
  const bench = (window.__bench = window.__bench || {});
  bench.error = String((err && err.stack) || err);
  const out = document.getElementById("out");
  if (out) out.textContent = "error: " + bench.error;
}
