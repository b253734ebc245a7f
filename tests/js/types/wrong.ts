// Misuses of websem's public JS API. tests/test_types.py compiles this file with `tsc --strict`
// and requires an error on exactly the lines marked `// error TSnnnn` (and that code), so the
// types cannot silently become too loose (e.g. `any`) without the test failing.

import { WebsemError, load } from "./_websem/websem.js";
import type { Hit } from "./_websem/websem.js";
import { highlighted } from "./_websem/runtime/component.js";
import { createHandler } from "./_websem/runtime/handler.js";

export async function misuse(): Promise<void> {
  const engine = await load("/_websem/", { threads: "2" }); // error TS2322
  await load("/_websem/", { onProgress: (event) => event.stage === "booting" }); // error TS2367
  await load(42); // error TS2345
  await engine.search("q", { mode: "keyword" }); // error TS2322
  await engine.search("q", { k: "10" }); // error TS2322
  await engine.search("q", { filters: { section: 3 } }); // error TS2322
  await engine.search(["q"]); // error TS2345
  await engine.search("q", { wait: "yes" }); // error TS2322
  engine.ready = Promise.resolve(); // error TS2540
  const hits = await engine.search("q");
  const first: Hit | undefined = hits[0];
  const snippetHtml: number = first?.snippet ?? 0; // error TS2322
  const range: [number, number, number] = first!.highlights[0]; // error TS2322
  const facets: string[] = (await engine.searchFull("q")).facets; // error TS2740
  engine.info.modes.push("bm25"); // error TS2345
  engine.rank("q"); // error TS2339
  engine.debug.tokenize("q"); // error TS2339
  engine.info = engine.info; // error TS2540
  highlighted("text", [[0, "1"]]); // error TS2322
  createHandler("/b", { cors: false }); // error TS2322
  const handler = createHandler("/b");
  await handler("https://example.org/search?q=x"); // error TS2345
  const fusion = engine.info.search.fusion;
  const rrfK: number = fusion.rrf_k; // error TS2339
  await load("/_websem/", { cacheBytes: "64MB" }); // error TS2322
  const layout: "ivf" = engine.info.index.layout; // error TS2322
  throw new WebsemError(); // error TS2554
  console.log(snippetHtml, range, facets, rrfK, layout);
}
