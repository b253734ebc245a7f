// Mount the websem fetch handler inside your own Node 20 http server, under /api.
//
//   websem build SITE --out bundle
//   MALLOC_ARENA_MAX=1 node demo/edge/node/server.mjs bundle   # then GET http://127.0.0.1:8787/api/search?q=...
//
// (`node bundle/runtime/node.js bundle` does the same without your own server code. Memory
// knobs, MALLOC_ARENA_MAX=1 and `node --liftoff-only`, are measured in docs/edge.md.)
import { createServer } from "node:http";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const bundleDir = resolve(process.argv[2] ?? "bundle");
// The runtime ships inside the bundle, next to the engine it was built with.
const { createHandler } = await import(pathToFileURL(`${bundleDir}/runtime/handler.js`).href);
const { fileFetch } = await import(pathToFileURL(`${bundleDir}/runtime/node.js`).href);

const search = createHandler(pathToFileURL(`${bundleDir}/`).href, {
  prefix: "/api",
  engineOptions: { fetch: fileFetch }, // Node's fetch cannot read file: URLs
});
search.warmup(); // load at boot, not on the first request

createServer(async (req, res) => {
  if (!req.url.startsWith("/api/")) {
    res.writeHead(404).end("only /api/search and /api/healthz live here\n");
    return;
  }
  const response = await search(new Request(new URL(req.url, "http://127.0.0.1"), { method: req.method }));
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}).listen(8787, "127.0.0.1", () => console.log("http://127.0.0.1:8787/api/search?q=boundary+layer"));
