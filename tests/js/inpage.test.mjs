// web/src/inpage.js under Node: createIndex's entry (Node has no Worker, so the engine runs
// in-process) and its errors before and while loading a bundle. The worker path and the whole
// index run in Chromium (tests/browser/test_browser_inpage.py).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { createIndex } from "../../web/src/inpage.js";
import { fileFetch } from "../../web/src/node.js";

const dir = mkdtempSync(join(tmpdir(), "websem-inpage-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("without Worker, createIndex runs in-process and checks its options first", async () => {
  assert.equal(typeof globalThis.Worker, "undefined");
  await assert.rejects(createIndex(pathToFileURL(`${dir}/`), { persist: "indexeddb" }), (e) => {
    assert.equal(e.name, "WebsemError");
    assert.match(e.message, /^websem: persist "indexeddb" is not available in this runtime/);
    return true;
  });
});

test("a folder that is not a bundle is refused with the bundle error load() gives", async () => {
  writeFileSync(join(dir, "manifest.json"), JSON.stringify({ format: "something-else" }));
  await assert.rejects(createIndex(pathToFileURL(`${dir}/`), { fetch: fileFetch, persist: false }), (e) => {
    assert.equal(e.name, "WebsemError");
    assert.match(e.message, /manifest.json is not a websem bundle manifest \(format "something-else"/);
    return true;
  });
});
