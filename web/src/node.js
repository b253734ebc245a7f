// websem Node adapter: serves the fetch handler (handler.js) with node:http.
//
//   MALLOC_ARENA_MAX=1 node web/src/node.js BUNDLE_DIR [--port 8787] [--host 127.0.0.1] [--prefix /api] [--lazy]
//   (or BUNDLE/runtime/node.js in a built bundle)
//
// Memory knobs (measured in docs/edge.md): MALLOC_ARENA_MAX=1 saves ~80 MB of peak RSS for free;
// `node --liftoff-only` saves ~140 MB more but makes queries ~2-2.4x slower.
//
// Prints one line `websem api: listening on http://HOST:PORT/` once the socket is bound, then
// starts the engine in the background (unless --lazy) so the first search does not pay for it.
//
// Also importable: `serveNode(bundleDir, {port, host, ...handlerOptions})`, `fileFetch` (reads
// `file:` URLs, honouring a single byte Range) and `byteRange` (its Range parser).

import { createServer } from "node:http";
import { open, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { createHandler } from "./handler.js";

// Node's default 16 KB header limit would answer a long `?q=` with a bare 431 and no JSON body;
// allow long URLs so handler.js can refuse them with its own JSON 400, and answer anything
// beyond even this with a JSON 431 from the clientError hook below.
const MAX_HEADER_BYTES = 1024 * 1024;

const RANGE = /^bytes=(\d*)-(\d*)$/;

/**
 * The inclusive `[first, last]` byte of a file of `size` bytes that a `Range` header asks for:
 * `bytes=a-b`, `bytes=a-` or `bytes=-n` (the last n), `b` clamped to the end; null for no header,
 * several ranges or a malformed one (send the whole file, as RFC 9110 allows); "unsatisfiable"
 * when the range starts past the end or asks for the last 0 bytes. The same rules as
 * `websem serve` (web/serve.py byte_range), so a bundle read from disk under Node is read like
 * one served over HTTP.
 *
 * @param {string|null} header
 * @param {number} size
 * @returns {[number, number] | null | "unsatisfiable"}
 */
export function byteRange(header, size) {
  if (!header) return null;
  const m = RANGE.exec(header.trim());
  if (!m || (!m[1] && !m[2])) return null;
  if (!m[1]) {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return [Math.max(0, size - n), size - 1];
  }
  const first = Number(m[1]);
  if (m[2] && Number(m[2]) < first) return null; // invalid: ignored, like a malformed header
  if (first >= size) return "unsatisfiable";
  return [first, m[2] ? Math.min(Number(m[2]), size - 1) : size - 1];
}

/** `count` bytes of the open file `fh` from byte `at` (a short read means the file shrank). */
async function readAt(fh, at, count) {
  const out = Buffer.alloc(count);
  let got = 0;
  while (got < count) {
    const { bytesRead } = await fh.read(out, got, count - got, at + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return out.subarray(0, got);
}

/**
 * A fetch that also reads `file:` URLs (Node's fetch does not), so the engine can load a bundle
 * straight from disk. Other URLs go to the global fetch.
 *
 * A GET with one `Range` (see {@link byteRange}) reads only those bytes from disk and answers
 * 206 with `Content-Range`, or 416 when no byte of the file satisfies it, like `websem serve`:
 * a partitioned bundle's row blocks are then read block by block (shards.js), not as whole
 * rows files. Anything else answers 200 with the whole file, 404 for a missing file or a folder.
 */
export async function fileFetch(input, init) {
  const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (!href.startsWith("file:")) return globalThis.fetch(input, init);
  const isRequest = typeof input === "object" && !(input instanceof URL);
  const method = (init?.method ?? (isRequest ? input.method : "GET")).toUpperCase();
  const header = method === "GET" ? new Headers(init?.headers ?? (isRequest ? input.headers : undefined)).get("range") : null;
  const path = fileURLToPath(href);
  let fh;
  try {
    fh = await open(path, "r");
    const st = await fh.stat();
    if (!st.isFile()) return new Response(`${path} is not a file`, { status: 404 });
    const size = st.size;
    const got = byteRange(header, size);
    if (got === "unsatisfiable") {
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}`, "content-length": "0" } });
    }
    if (got === null) {
      const bytes = await fh.readFile();
      return new Response(bytes, {
        status: 200,
        headers: { "content-length": String(bytes.length), "accept-ranges": "bytes" },
      });
    }
    const [first, last] = got;
    const bytes = await readAt(fh, first, last - first + 1);
    return new Response(bytes, {
      status: 206,
      headers: {
        "content-range": `bytes ${first}-${first + bytes.length - 1}/${size}`,
        "content-length": String(bytes.length),
        "accept-ranges": "bytes",
      },
    });
  } catch (err) {
    const status = err.code === "ENOENT" || err.code === "EISDIR" ? 404 : 500;
    return new Response(String(err.message), { status });
  } finally {
    await fh?.close();
  }
}

/** node:http IncomingMessage -> web Request (GET/HEAD carry no body; others are refused by the handler). */
function toRequest(req, origin) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  return new Request(new URL(req.url, origin), { method: req.method, headers });
}

async function sendResponse(res, response) {
  const headers = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : null;
  if (body) headers["content-length"] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(body);
}

function clientErrorBody(code, message) {
  return JSON.stringify({ error: { code, message: `websem: ${message}` } });
}

/**
 * Serve a bundle folder over HTTP with the fetch handler.
 *
 * @param {string} bundleDir path of a bundle folder (holding manifest.json)
 * @param {object} [options] {port=8787, host="127.0.0.1", lazy=false} plus createHandler options
 * @returns {Promise<{server: import("node:http").Server, url: string, handler: Function, close: () => Promise<void>}>}
 */
export async function serveNode(bundleDir, options = {}) {
  const { port = 8787, host = "127.0.0.1", lazy = false, ...handlerOptions } = options;
  const dir = resolve(bundleDir);
  try {
    await stat(resolve(dir, "manifest.json"));
  } catch {
    throw new Error(`websem: ${dir} holds no manifest.json; pass a bundle folder written by \`websem build\``);
  }
  const handler = createHandler(pathToFileURL(`${dir}/`).href, {
    ...handlerOptions,
    engineOptions: { fetch: fileFetch, ...(handlerOptions.engineOptions ?? {}) },
  });
  let origin = "http://127.0.0.1";
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    handler(toRequest(req, origin))
      .then((response) => sendResponse(res, response))
      .catch((err) => {
        // handler.js never rejects; this guards the adapter's own conversion code.
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
        res.end(clientErrorBody("internal", err?.message ?? String(err)));
      });
  });
  server.on("clientError", (err, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
    const body = clientErrorBody(
      status === 431 ? "request_too_large" : "bad_request",
      status === 431 ? `request headers/URL exceed ${MAX_HEADER_BYTES} bytes; send a shorter query` : `malformed HTTP request (${err.code ?? err.message})`,
    );
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `connection: close\r\n\r\n${body}`,
    );
  });
  // Keep-alive connections from load generators are normal; do not let idle timeouts reset them.
  server.keepAliveTimeout = 65_000;
  await new Promise((ok, bad) => {
    server.once("error", bad);
    server.listen(port, host, () => {
      server.off("error", bad);
      ok();
    });
  });
  const addr = server.address();
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  origin = `http://${shownHost}:${addr.port}`;
  if (!lazy) handler.warmup().catch(() => {}); // failures surface through /healthz and /search
  return {
    server,
    url: `${origin}/`,
    handler,
    async close() {
      await new Promise((ok) => server.close(() => ok()));
      server.closeAllConnections?.();
      await handler.close();
    },
  };
}

function parseArgs(argv) {
  const out = { port: 8787, host: "127.0.0.1", lazy: false, prefix: "" };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") out.port = Number(argv[++i]);
    else if (a === "--host") out.host = argv[++i];
    else if (a === "--prefix") out.prefix = argv[++i];
    else if (a === "--lazy") out.lazy = true;
    else if (a === "-h" || a === "--help") out.help = true;
    else rest.push(a);
  }
  out.bundle = rest[0];
  return out;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || !args.bundle || !Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    process.stderr.write(
      "usage: node node.js BUNDLE_DIR [--port N (0 = any free port)] [--host 127.0.0.1] [--prefix /api] [--lazy]\n",
    );
    process.exit(args.help ? 0 : 2);
  }
  let served;
  try {
    served = await serveNode(args.bundle, args);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stdout.write(`websem api: listening on ${served.url}\n`);
  const stop = () => served.close().finally(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
