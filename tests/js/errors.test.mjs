// web/src/errors.js: every runtime error message starts with `websem:`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError, errorMessage, pythonErrorMessage, cspError } from "../../web/src/errors.js";

test("WebsemError adds the websem: prefix once", () => {
  const e = new WebsemError("k must be a positive integer, got 0");
  assert.equal(e.message, "websem: k must be a positive integer, got 0");
  assert.equal(e.name, "WebsemError");
  assert.ok(e instanceof Error);
  assert.equal(new WebsemError("websem: already prefixed").message, "websem: already prefixed");
});

test("errorMessage prefixes any thrown value", () => {
  assert.equal(errorMessage(new Error("boom")), "websem: boom");
  assert.equal(errorMessage("plain string"), "websem: plain string");
  assert.equal(errorMessage(new WebsemError("x")), "websem: x");
});

test("pythonErrorMessage keeps the last websem: line of a traceback", () => {
  const traceback = [
    "Traceback (most recent call last):",
    '  File "/websem/py/websem_text/rules.py", line 63, in check_mode',
    "websem_text.errors.WebsemError: websem: unknown search mode 'x'; use one of hybrid, semantic, lexical",
  ].join("\n");
  assert.equal(pythonErrorMessage(new Error(traceback)), "websem: unknown search mode 'x'; use one of hybrid, semantic, lexical");
  assert.equal(
    pythonErrorMessage(new Error("Traceback ...\nZeroDivisionError: division by zero\n")),
    "websem: search failed in Pyodide: ZeroDivisionError: division by zero",
  );
});

test("cspError names the missing directive for a WebAssembly compile refused by the page's policy", () => {
  // Chromium's words when script-src lacks 'wasm-unsafe-eval' (seen through ORT's wrapper).
  const chromium =
    "websem: onnxruntime-web could not load model/model.onnx (no available backend found. ERR: [wasm] " +
    "RuntimeError: Aborted(CompileError: WebAssembly.instantiate(): Compiling or instantiating WebAssembly " +
    "module violates the following Content Security policy directive because 'unsafe-eval' is not an " +
    "allowed source of script in the following Content Security Policy directive: \"script-src 'self'\".))";
  const e = cspError(new WebsemError(chromium));
  assert.ok(e instanceof WebsemError);
  assert.match(e.message, /^websem: the page's Content-Security-Policy forbids compiling WebAssembly/);
  assert.match(e.message, /add 'wasm-unsafe-eval' to its script-src/);
  assert.match(e.message, /the browser said: onnxruntime-web could not load/);
  assert.equal(cspError(new Error("websem: bundle file index/ivf/3.bin is missing")), null);
});
