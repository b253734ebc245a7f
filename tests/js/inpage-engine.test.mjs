// web/src/inpage-engine.js under Node: the option checks before anything loads. Its data pieces
// are tested in inpage-data.test.mjs; whole indexing (documents prepared ahead while the current
// one is embedded, abort, searches between documents) runs in Chromium
// (tests/browser/test_browser_inpage.py), against `websem build`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createInpageEngine } from "../../web/src/inpage-engine.js";

test("options are checked before anything is fetched", async () => {
  const url = new URL("file:///nonexistent-websem-bundle/");
  await assert.rejects(createInpageEngine(url, { persist: "opfs" }), /persist "opfs" is not available in this runtime/);
  await assert.rejects(createInpageEngine(url, { persist: false, name: "../up" }), /index name "..\/up" is not allowed/);
});
