// Uses websem's public JS API the way README.md, docs/architecture.md and docs/edge.md show it.
// tests/test_types.py compiles it with `tsc --strict` against the .d.ts files laid out as in a
// bundle (./_websem/websem.d.ts, ./_websem/runtime/*.d.ts): it must compile without an error.

import { WebsemError, load } from "./_websem/websem.js";
import type { Engine, Filters, Hit, LoadOptions, ProgressEvent, SearchMode, SearchResult, Tier } from "./_websem/websem.js";
import { WebsemSearch, highlighted } from "./_websem/runtime/component.js";
import { createHandler } from "./_websem/runtime/handler.js";
import type { ErrorResponse, HealthResponse, SearchResponse } from "./_websem/runtime/handler.js";
import { fileFetch, serveNode } from "./_websem/runtime/node.js";

export async function browser(): Promise<void> {
  const stages: string[] = [];
  const options: LoadOptions = {
    threads: 2,
    onProgress: (event: ProgressEvent) => {
      stages.push(event.stage);
      if (event.stage === "verified") console.log(event.file, event.bytes, event.ms);
    },
    snapshot: false,
    cacheBytes: 32 * 1024 * 1024,
  };
  const engine: Engine = await load("/_websem/", options);
  const hits: Hit[] = await engine.search("how do I parse json", {
    k: 10,
    mode: "hybrid",
    filters: { section: ["library"] },
  });
  for (const { id, score, title, url, snippet, highlights } of hits) {
    const parts = highlights.map(([start, end]) => snippet.slice(start, end));
    console.log(id, score.toFixed(3), title, new URL(url, location.href).href, parts.join(" "));
  }
  const defaultMode: SearchMode = engine.info.modes[0];
  const filters: Filters = { tags: ["a", "b"], section: "x" };
  const full: SearchResult = await engine.searchFull("query", { mode: "lexical", filters });
  const { facets, mode } = full;
  for (const [field, counts] of Object.entries(facets)) {
    for (const [value, count] of counts) console.log(field, value, count + 1);
  }
  console.log(defaultMode === mode, engine.info.model.dims, engine.info.index.chunks, engine.info.pyodide_snapshot);
  console.log(engine.info.timings["ready"], engine.info.load_ms, engine.info.model.quantization.mode);
  const memory = await engine.memory();
  console.log((memory.ort_wasm_bytes ?? 0) + (memory.pyodide_wasm_bytes ?? 0) + memory.shard_cache_bytes);
  // Tiers: a hybrid answer may come from the lexical tier until `ready`.
  const early = await engine.searchFull("query", { mode: "hybrid", wait: false });
  const tier: Tier = early.tier;
  await engine.ready;
  const threads: number = engine.info.threads ?? 1;
  console.log(tier === "lexical", engine.info.tier, threads, engine.info.ready_ms ?? 0);
  const { layout, ivf } = engine.info.index;
  if (layout === "partitioned") console.log(ivf?.nlist, ivf?.nprobe);
  await engine.close();

  try {
    await engine.search("q", { mode: engine.info.search.modes[0], k: engine.info.search.k });
  } catch (e) {
    if (e instanceof WebsemError) console.warn(e.message.startsWith("websem:"), e.name);
  }
  const fusion = engine.info.search.fusion;
  console.log(fusion.method === "convex" ? fusion.norm : fusion.rrf_k, engine.info.search.snippet_chars);

  // In-process (Node, Deno, edge runtimes): same API.
  const local = await load(new URL("./", import.meta.url), { worker: false, fetch: fileFetch });
  await local.search("x");
}

export function component(): void {
  const box = document.querySelector("websem-search");
  if (!box) return;
  const typed: WebsemSearch = box;
  typed.addEventListener("websem-ready", (event) => console.log(event.detail.modes));
  typed.addEventListener("websem-results", (event) => {
    const { query, hits, facets, mode } = event.detail;
    const first = hits[0];
    if (first) document.body.append(...highlighted(first.snippet, first.highlights));
    console.log(query, mode, Object.keys(facets));
  });
  typed.addEventListener("websem-error", (event) => console.warn(event.detail.message));
  console.log(typed.engine?.info.modes, typed.getAttribute("state"));
}

export async function edge(bundleUrl: string): Promise<void> {
  const handler = createHandler(bundleUrl, { engineOptions: { fetch }, prefix: "/api", maxK: 50, cors: null });
  const worker = { fetch: handler };
  const response = await worker.fetch(new Request("https://example.org/api/search?q=boundary+layer&k=3"));
  if (response.ok) {
    const body = (await response.json()) as SearchResponse;
    console.log(body.hits.map((h) => h.url), body.took_ms, body.facets, body.filters?.["tags"]);
  } else {
    const body = (await response.json()) as ErrorResponse;
    if (body.error.code === "bad_k") console.log(body.error.message);
  }
  const health = (await (await handler(new Request("https://example.org/api/healthz"))).json()) as HealthResponse;
  console.log(health.default_mode, health.memory.js_heap_bytes, handler.state().starts);
  await handler.warmup();
  const withOptions = createHandler({ url: bundleUrl, threads: 1 }, { k: 5 });
  await withOptions(new Request("https://example.org/search?q=x"), {}, { waitUntil: (p) => void p.catch(() => {}) });
  await handler.close();

  const served = await serveNode("bundle", { port: 0, lazy: true, prefix: "/api" });
  console.log(served.url);
  await served.close();
}
