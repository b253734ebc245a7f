// web/src/errors.js: every runtime error message starts with `websem:`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError, errorMessage, pythonErrorMessage } from "../../web/src/errors.js";

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
