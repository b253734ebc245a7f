// websem search API on Deno (Deno.serve + the web-standard fetch handler).
//
//   websem build SITE --out bundle
//   deno run --allow-read=bundle --allow-net=127.0.0.1 demo/edge/deno/main.ts bundle [PORT]
//   (add --v8-flags=--liftoff-only to trade query speed for ~140 MB less memory, docs/edge.md)
//
// Deno's own fetch reads file: URLs, so the engine needs no custom fetch here.
// @ts-nocheck: the runtime is plain JS without type declarations.
const dir = new URL(`${Deno.args[0] ?? "bundle"}/`, `file://${Deno.cwd()}/`);
const { createHandler } = await import(new URL("runtime/handler.js", dir).href);

const handler = createHandler(dir.href);
handler.warmup(); // one engine per isolate; concurrent first requests share this start

Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[1] ?? 8787) }, handler);
