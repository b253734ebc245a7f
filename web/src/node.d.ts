// Types of the Node adapter (runtime/node.js in a bundle; docs/edge.md). No dependency on
// @types/node: the server is typed by the two calls a caller needs.
//
//   import { serveNode } from "./bundle/runtime/node.js";
//   const { url, close } = await serveNode("bundle", { port: 0 });

import type { Handler, HandlerOptions } from "./handler.js";

/**
 * A fetch that also reads `file:` URLs (Node's own fetch does not); other URLs go to the global fetch.
 * A GET with one `Range` reads only those bytes: 206 with `Content-Range`, 416 when unsatisfiable
 * (like `websem serve`); otherwise 200 with the whole file, 404 for a missing file or a folder.
 */
export function fileFetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;

/**
 * The inclusive `[first, last]` byte a `Range` header asks of a file of `size` bytes (`bytes=a-b`,
 * `bytes=a-`, `bytes=-n`); null for no header, several ranges or a malformed one (whole file);
 * "unsatisfiable" when it starts past the end or asks for the last 0 bytes (416).
 */
export function byteRange(header: string | null, size: number): [number, number] | null | "unsatisfiable";

/** Options of {@link serveNode}: where to listen, plus every createHandler option. */
export interface ServeNodeOptions extends HandlerOptions {
  /** TCP port, 0 for any free one (default 8787). */
  port?: number;
  /** Interface to bind (default "127.0.0.1"). */
  host?: string;
  /** Start the engine on the first request instead of right away (default false). */
  lazy?: boolean;
}

/** A running server. */
export interface NodeServer {
  /** The node:http server. */
  server: { address(): unknown; close(callback?: (err?: Error) => void): unknown };
  /** Its base URL, e.g. "http://127.0.0.1:8787/". */
  url: string;
  handler: Handler;
  /** Stop listening, drop connections and release the engine. */
  close(): Promise<void>;
}

/** Serve a bundle folder on disk with the fetch handler over node:http. */
export function serveNode(bundleDir: string, options?: ServeNodeOptions): Promise<NodeServer>;
