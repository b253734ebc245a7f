// web/src/analyze-tables.js (generated from CPython by web/tools/analyze_tables.py; its freshness
// is checked in tests/test_analyzer_twin.py): well formed and holding the known cases.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CASEFOLD, SPACE, UNASSIGNED_MARKS, UNICODE_VERSION, WORD } from "../../web/src/analyze-tables.js";

function ranges(table) {
  return table.split(",").map((r) => {
    const [a, b = a] = r.split("-").map((h) => parseInt(h, 16));
    return [a, b];
  });
}

const has = (table, c) => ranges(table).some(([a, b]) => a <= c && c <= b);

test("range tables are sorted, disjoint and in range", () => {
  for (const table of [WORD, SPACE, UNASSIGNED_MARKS]) {
    let last = -2;
    for (const [a, b] of ranges(table)) {
      assert.ok(Number.isInteger(a) && a > last + 1 && b >= a && b <= 0x10ffff, `${a}-${b}`);
      last = b;
    }
  }
});

test("known members", () => {
  assert.equal(UNICODE_VERSION, "14.0.0");
  for (const c of "_09azAZéßΣ漢𝐚٣½²") assert.ok(has(WORD, c.codePointAt(0)), c);
  for (const c of " -'.\u0301😀\u200b") assert.ok(!has(WORD, c.codePointAt(0)), c);
  for (const c of [0x1c, 0x85, 0xa0, 0x3000]) assert.ok(has(SPACE, c));
  assert.ok(!has(SPACE, 0xfeff) && !has(SPACE, 0x180e)); // JS \s has U+FEFF; Python does not
  assert.ok(has(UNASSIGNED_MARKS, 0x1aff) && !has(UNASSIGNED_MARKS, 0x301));
  const entries = CASEFOLD.split(",");
  assert.ok(entries.includes("df=73.73")); // ß -> ss
  assert.ok(entries.some((e) => e.startsWith("3c2:"))); // final sigma folds to σ
});
