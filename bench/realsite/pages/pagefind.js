// Pagefind 1.6 through its documented JS API (https://pagefind.app/docs/api/): import
// /pagefind/pagefind.js, init(), search(q), then data() of the top 10 results, which is what a
// results list needs to show a title and link. Same window.__rs protocol as websem.js; each url
// entry is [page url, url of the page's best sub-result (with its #anchor) or null].
const K = 10;
const rs = (window.__rs = window.__rs || {});
const params = new URLSearchParams(location.search);

async function top(pagefind, q) {
  const search = await pagefind.search(q);
  const data = await Promise.all(search.results.slice(0, K).map((r) => r.data()));
  return data.map((d) => [d.url, d.sub_results && d.sub_results.length ? d.sub_results[0].url : null]);
}

try {
  const pagefind = await import("/pagefind/pagefind.js");
  await pagefind.init();
  rs.readyMs = performance.now();
  const first = await top(pagefind, params.get("q") || "");
  rs.firstMs = performance.now();
  rs.firstUrls = first.map((u) => u[0]);
  rs.run = async (queries) => {
    const out = [];
    for (const q of queries) {
      const t0 = performance.now();
      const urls = await top(pagefind, q);
      out.push({ ms: performance.now() - t0, urls: urls.map((u) => u[0]), subUrls: urls.map((u) => u[1]) });
    }
    return out;
  };
  document.getElementById("out").textContent = rs.firstUrls.join("\n");
} catch (err) {
  rs.error = String((err && err.stack) || err);
  document.getElementById("out").textContent = "error: " + rs.error;
}
