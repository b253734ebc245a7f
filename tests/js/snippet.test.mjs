// web/src/snippet.js against websem_text.snippets (snippet + utf16_ranges) in Pyodide: the same
// window and highlights, in UTF-16 units. 500 Cranfield pairs are compared with CPython in
// tests/test_analyzer_twin.py.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createAnalyzer } from "../../web/src/analyze.js";
import { SNIPPET_CHARS, snippet } from "../../web/src/snippet.js";
import { bootPython } from "./pyodide_env.mjs";

const FILLER = "The allotment sits behind the old railway embankment, where the afternoon light stays " +
  "late into September. Most beds are raised, edged with reclaimed timber, and watered from two butts. ";
const CASES = [
  ["short text about boundary layers", "boundary layer"],
  [`${FILLER}${FILLER}Zygomorphic florets of the snapdragon attract bumblebees. ${FILLER}`, "zygomorphic snapdragon florets"],
  [`${FILLER}𝐚𝐛𝐜 😀 ${FILLER}getElementById returns the element 😀 with that id. ${FILLER}`, "element id"],
  [`${"x".repeat(30)}\u001c${FILLER}${FILLER}heat\u0085transfer heat transfer ${FILLER}`, "heat transfer"],
  [`${"wordwithoutanyspacesatall".repeat(20)} heat`, "heat"],
  [`${FILLER}${FILLER}`, "nothing matches"],
];

test("snippets equal Python's snippet + utf16_ranges", async () => {
  const { pyodide } = await bootPython();
  pyodide.globals.set("cases_json", JSON.stringify(CASES));
  const want = JSON.parse(pyodide.runPython(`
import json
from websem_text.analyze import Analyzer
from websem_text.snippets import snippet, utf16_ranges
_a = Analyzer()
def _u(t, i):
    return len(t[:i].encode("utf-16-le")) // 2
_out = []
for text, query in json.loads(cases_json):
    for max_chars in (240, 80):
        sn = snippet(text, _a, _a.terms(query), max_chars=max_chars)
        _out.append({"terms": _a.terms(query), "max_chars": max_chars,
                     "snippet": {"text": sn["text"], "start": _u(text, sn["start"]), "end": _u(text, sn["end"]),
                                 "highlights": utf16_ranges(sn["text"], sn["highlights"])}})
json.dumps({"config": _a.config(), "out": _out})
`));
  const analyzer = createAnalyzer(want.config);
  let k = 0;
  let highlighted = 0;
  for (const [text] of CASES) {
    for (const maxChars of [240, 80]) {
      const w = want.out[k++];
      assert.equal(w.max_chars, maxChars);
      const got = snippet(text, analyzer, w.terms, { maxChars });
      assert.deepEqual(got, w.snippet, `${text.slice(0, 40)}... (${maxChars})`);
      for (const [a, b] of got.highlights) assert.ok(b > a && got.text.slice(a, b).trim());
      highlighted += got.highlights.length > 0;
    }
  }
  assert.ok(highlighted >= 8);
  assert.equal(SNIPPET_CHARS, 240);
});
