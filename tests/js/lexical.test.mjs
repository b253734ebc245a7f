// web/src/lexical.js: the JS BM25 scorer over index/lexical.bin against websem_text's own
// LexicalIndex (scores + aggregate_docs) in Pyodide on the same bytes, and its refusals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chunkScores, lexicalDocs, openLexical } from "../../web/src/lexical.js";
import { bootPython } from "./pyodide_env.mjs";

const TEXTS = [
  "The boundary layer thickens downstream of the leading edge.",
  "Heat transfer in a laminar boundary layer at high Mach number.",
  "Skin friction and heat transfer, measured; heat flux was higher.",
  "Unrelated text about cutting tools and subroutines.",
  "Boundary conditions for the heat equation.",
];
const CHUNK_DOC = [0, 0, 1, 2, 3];

async function built() {
  const { pyodide } = await bootPython();
  pyodide.globals.set("texts_json", JSON.stringify(TEXTS));
  const bytes = new Uint8Array(pyodide.runPython(`
import json
from websem_text.analyze import Analyzer
from websem_text.bm25 import LexicalIndex
_a = Analyzer()
_ix = LexicalIndex.build([_a.terms(t) for t in json.loads(texts_json)], analyzer=_a.config())
_ix.to_bytes()
`).toJs());
  return { pyodide, bytes };
}

test("scores and document rankings equal LexicalIndex in Python, bit for bit", async () => {
  const { pyodide, bytes } = await built();
  const ix = openLexical(bytes, TEXTS.length);
  for (const query of ["heat transfer", "boundary layer heat heat", "cutting", "nothing matches this"]) {
    pyodide.globals.set("q", query);
    pyodide.globals.set("chunk_doc_json", JSON.stringify(CHUNK_DOC));
    const want = JSON.parse(pyodide.runPython(`
from websem_text.bm25 import aggregate_docs
_terms = _a.terms(q)
_s = _ix.scores(_terms)
json.dumps({"terms": _terms, "scores": sorted(_s.items()),
            "docs": [list(h) for h in aggregate_docs(_s, json.loads(chunk_doc_json))]})
`));
    const scores = [...chunkScores(ix, want.terms)].sort((a, b) => a[0] - b[0]);
    assert.deepEqual(scores, want.scores, query);
    const docs = lexicalDocs(ix, want.terms, CHUNK_DOC);
    assert.deepEqual(Array.from(docs.docs, (d, i) => [d, docs.scores[i], docs.chunks[i]]), want.docs, query);
  }
});

test("allowed and limit cut the document ranking", async () => {
  const { bytes } = await built();
  const ix = openLexical(bytes);
  const terms = ["heat", "boundari"];
  const all = lexicalDocs(ix, terms, CHUNK_DOC);
  assert.ok(all.docs.length >= 3);
  assert.deepEqual(Array.from(lexicalDocs(ix, terms, CHUNK_DOC, null, 2).docs), Array.from(all.docs.slice(0, 2)));
  const allowed = Uint8Array.from([0, 1, 1, 1]);
  assert.ok(!Array.from(lexicalDocs(ix, terms, CHUNK_DOC, allowed).docs).includes(0));
});

test("a damaged or mismatched index is refused with a websem: message", async () => {
  const { bytes } = await built();
  const bad = bytes.slice();
  bad[0] ^= 1;
  assert.throws(() => openLexical(bad), /^WebsemError: websem: index\/lexical.bin is not a websem lexical index/);
  assert.throws(() => openLexical(bytes, TEXTS.length + 1), /has 5 chunks but index\/chunks.json has 6/);
});
