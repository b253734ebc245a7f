// websem errors: the runtime's one error type and the helpers that keep every message in the
// project's shape (starts with `websem:`, names the bad value, says what to do).

/** Error type of the runtime; its message starts with `websem:` and says what to do. */
export class WebsemError extends Error {
  constructor(message) {
    super(String(message).startsWith("websem:") ? String(message) : `websem: ${message}`);
    this.name = "WebsemError";
  }
}

/** The message of any thrown value, with the `websem:` prefix (for crossing postMessage). */
export function errorMessage(e) {
  const message = String(e?.message ?? e);
  return message.startsWith("websem:") ? message : `websem: ${message}`;
}

/**
 * The user-facing line of an error raised in Pyodide. A PythonError's message is the whole
 * traceback; the last `websem:` line is the one Python wrote for the user.
 */
export function pythonErrorMessage(e) {
  const text = String(e?.message ?? e);
  const m = text.match(/websem:[^\n]*/g);
  if (m) return m[m.length - 1];
  return `websem: search failed in Pyodide: ${text.trim().split("\n").pop()}`;
}

/**
 * A load error caused by the page's Content-Security-Policy (it forbids compiling WebAssembly:
 * Pyodide and onnxruntime-web both need it), as a WebsemError that names the missing directive;
 * null for any other error. Without this the user would read ORT's or Pyodide's own advice
 * ("rebuild the bundle"), which cannot help (docs/hosting.md, "Content-Security-Policy").
 */
export function cspError(e) {
  const detail = String(e?.message ?? e);
  if (!/Content Security Policy|'unsafe-eval'/i.test(detail)) return null;
  const cause = detail.replace(/^websem:\s*/, "").split("\n")[0];
  return new WebsemError(
    "the page's Content-Security-Policy forbids compiling WebAssembly, which the runtime needs: add " +
      `'wasm-unsafe-eval' to its script-src (docs/hosting.md, "Content-Security-Policy"); the browser said: ${cause}`,
  );
}
