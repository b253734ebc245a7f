// web/src/analyze.js (the analyzer's JS twin) against websem_text.analyze.Analyzer in Pyodide, on
// hand-picked strings; the large-scale proof (corpora, 10k generated strings, every code point,
// against CPython) is tests/test_analyzer_twin.py.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ANALYZER_VERSION, casefold, codePointLength, codePointSpans, createAnalyzer } from "../../web/src/analyze.js";
import { bootPython } from "./pyodide_env.mjs";

const STRINGS = [
  "The Runners' running shoes",
  "getElementById HTMLParser mRNA HbA1c iPhone __init__ snake_case_name XMLHttpRequest v2_0",
  "café cafe\u0301 naïve Ångström Øresund Łódź Þórr æther ĳssel ﬁnance",
  "Straße STRASSE ẞ ſtuff İstanbul ıi ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ σς \u212a \u212b",
  "漢字語言 中文 かなカナ 한국어 𠀀𠀁 x𠀀y",
  "𝐀𝐁𝐂𝐝 𝔘𝔫𝔦 𐐀𐐨 𞤀𞤢 😀 a😀b 👍🏽 🇫🇷",
  "٣٤٥ ½ x² ① Ⅻ 3.14 1e10 C++ C#",
  `${"a".repeat(64)} ${"b".repeat(65)} ${"e\u0301".repeat(40)} ${"𝐚".repeat(64)} ${"𝐚".repeat(65)}`,
  "vitamin D, Python 3, T cell, the C API is not which",
  "",
];

async function python(config, strings) {
  const { pyodide } = await bootPython();
  pyodide.globals.set("cfg_json", JSON.stringify(config ?? null));
  pyodide.globals.set("strings_json", JSON.stringify(strings));
  return JSON.parse(pyodide.runPython(`
import json
from websem_text.analyze import Analyzer
_cfg = json.loads(cfg_json)
_a = Analyzer.from_config(_cfg) if _cfg else Analyzer()
json.dumps({"config": _a.config(),
            "tokens": [[[t.term, t.start, t.end] for t in _a.tokens(s)] for s in json.loads(strings_json)]})
`));
}

test("tokens equal the Python analyzer's (code-point spans via codePointSpans)", async () => {
  const want = await python(null, STRINGS);
  const analyzer = createAnalyzer(want.config);
  STRINGS.forEach((s, i) => {
    const got = codePointSpans(s, analyzer.tokens(s)).map((t) => [t.term, t.start, t.end]);
    assert.deepEqual(got, want.tokens[i], s);
  });
});

test("non-default configs equal Python's", async () => {
  const base = (await python(null, [])).config;
  for (const change of [{ lowercase: false }, { fold_accents: false }, { stopwords: ["shoes", "the"], stemmer: null },
    { split_identifiers: false, max_token_chars: 5 }]) {
    const config = { ...base, ...change };
    const want = await python(config, STRINGS);
    const analyzer = createAnalyzer(config);
    STRINGS.forEach((s, i) => {
      const got = codePointSpans(s, analyzer.tokens(s)).map((t) => [t.term, t.start, t.end]);
      assert.deepEqual(got, want.tokens[i], `${JSON.stringify(change)}: ${s}`);
    });
  }
});

test("spans are UTF-16 units: they slice the JS string", async () => {
  const { config } = await python(null, []);
  const analyzer = createAnalyzer(config);
  const text = "𝐚𝐛 getElementById 😀 cafe\u0301";
  const tokens = analyzer.tokens(text);
  assert.deepEqual(tokens.map((t) => text.slice(t.start, t.end)),
    ["𝐚𝐛", "getElementById", "get", "Element", "Id", "cafe\u0301"]); // "by": a stopword
  assert.deepEqual(tokens.map((t) => t.term), ["ab", "getelementbyid", "get", "element", "id", "cafe"]);
  assert.deepEqual(analyzer.terms("The Runners' running shoes"), ["runner", "run", "shoe"]);
});

test("casefold is Python's, per character", () => {
  assert.equal(casefold("ΣΊΣΥΦΟΣ"), "σίσυφοσ"); // both sigmas -> σ (JS toLowerCase gives a final ς)
  assert.equal(casefold("Straße ẞ"), "strasse ss");
  assert.equal(casefold("İ"), "i\u0307");
  assert.equal(casefold("ſ\u212a"), "sk");
  assert.equal(casefold("𐐀"), "𐐨");
  assert.equal(casefold("Ꭰ"), "Ꭰ"); // Cherokee: casefold maps to the capital, lowercase would not
  assert.equal(casefold("ᏸ"), "Ᏸ");
  assert.equal(codePointLength("a𝐚b"), 3);
});

test("refusals use Python's words", async () => {
  const { config } = await python(null, []);
  assert.throws(() => createAnalyzer({ ...config, version: 2 }), {
    message: "websem: lexical index uses analyzer version 2, this runtime knows version 1; rebuild the bundle with `websem build`",
  });
  assert.throws(() => createAnalyzer({ ...config, version: undefined }), /analyzer version None/);
  assert.throws(() => createAnalyzer({ ...config, stopwords: "french" }),
    { message: "websem: unknown stopword list 'french'; use 'english', a list of words, or None" });
  assert.throws(() => createAnalyzer({ ...config, stemmer: "porter" }), /websem: unknown stemmer 'porter'.*'english'/);
  const { max_token_chars: _, ...partial } = config;
  assert.throws(() => createAnalyzer(partial), /websem: the lexical index's analyzer config has no "max_token_chars"/);
  assert.equal(ANALYZER_VERSION, config.version);
});
