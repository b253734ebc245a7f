// web/src/inpage-store.js under Node: index names, the backend choice (Node has neither OPFS nor
// IndexedDB, so "auto" keeps the index in memory and an explicit backend is refused). The two
// real backends are exercised in Chromium (tests/browser/test_browser_inpage.py: reload, IndexedDB).
import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKENDS, checkName, chooseBackend, openStore } from "../../web/src/inpage-store.js";

test("index names become file names: only a safe alphabet", () => {
  for (const ok of ["default", "notes-2024", "a.b_c", "x".repeat(64)]) assert.equal(checkName(ok), ok);
  for (const bad of ["", ".hidden", "../etc", "a/b", "x".repeat(65), "ünï", 7, null]) {
    assert.throws(() => checkName(bad), (e) => e.name === "WebsemError" && /^websem: index name .* is not allowed/.test(e.message));
  }
});

test("Node: auto means memory only, an explicit backend is refused, an unknown one too", () => {
  assert.deepEqual(BACKENDS, ["opfs", "indexeddb"]);
  for (const p of [undefined, true, "auto", false, "none"]) assert.equal(chooseBackend(p), null);
  for (const p of BACKENDS) {
    assert.throws(() => chooseBackend(p), new RegExp(`websem: persist "${p}" is not available in this runtime; use persist: false`));
  }
  assert.throws(() => chooseBackend("localStorage"), /websem: persist "localStorage" is unknown; use true, false, "auto", "opfs", "indexeddb"$/);
});

test("a scope that has the APIs gets them, OPFS first", () => {
  // Real objects of the shape the browser exposes, only to read the feature test (never called).
  const opfs = { navigator: { storage: { getDirectory() {} } } };
  const idb = { indexedDB: { open() {} } };
  assert.equal(chooseBackend("auto", { ...opfs, ...idb }), "opfs");
  assert.equal(chooseBackend(true, idb), "indexeddb");
  assert.equal(chooseBackend("indexeddb", { ...opfs, ...idb }), "indexeddb");
  assert.throws(() => chooseBackend("opfs", idb), /not available/);
});

test("openStore(null) is no store; a bad name is refused before any storage is touched", async () => {
  assert.equal(await openStore(null, "default"), null);
  await assert.rejects(openStore(null, "../x"), /index name/);
});
