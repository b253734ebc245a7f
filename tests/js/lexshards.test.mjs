// web/src/lexshards.js: code point order (the order Python sorts the term table in, which JS's
// `<` on UTF-16 units breaks for characters above U+FFFF) and the parse of a lexical shard
// written from the contract by partitioned_env.mjs, with its refusals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { eachPosting } from "../../web/src/lexical.js";
import { compareCodePoints, parseLexShard } from "../../web/src/lexshards.js";
import { lexShardBytes, rng } from "./partitioned_env.mjs";

/** The definition: compare the arrays of code points. */
function byCodePoints(a, b) {
  const x = Array.from(a, (ch) => ch.codePointAt(0));
  const y = Array.from(b, (ch) => ch.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

test("compareCodePoints orders like Python's str comparison, astral characters included", () => {
  // U+FF21 (fullwidth A) sorts before U+1D400 (math bold A) by code point, after it in UTF-16.
  assert.ok("\uff21" > "\u{1d400}");
  assert.ok(compareCodePoints("\uff21", "\u{1d400}") < 0);
  assert.ok(compareCodePoints("abc", "abd") < 0 && compareCodePoints("ab", "abc") < 0 && compareCodePoints("x", "x") === 0);
  const pool = ["a", "z", "é", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{1f600}", "\u{10ffff}", "東"];
  const r = rng(5);
  for (let i = 0; i < 2000; i++) {
    const word = () => Array.from({ length: 1 + Math.floor(r() * 3) }, () => pool[Math.floor(r() * pool.length)]).join("");
    const a = word();
    const b = word();
    assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(byCodePoints(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});

test("a shard parses to its terms, idf and postings with each chunk's length", () => {
  const terms = [
    { term: "alpha", idf: 1.5, postings: [[0, 1, 7], [3, 2, 12]] },
    { term: "beta", idf: 0.25, postings: [[2, 300, 100000]] },
    { term: "\u{1d400}", idf: 2, postings: [[1, 1, 1]] },
  ];
  const sh = parseLexShard(lexShardBytes(4, 17, terms), "index/lex/4.bin", { shard: 4, terms: 3 });
  assert.deepEqual([...sh.termIds], [["alpha", 0], ["beta", 1], ["\u{1d400}", 2]]);
  assert.deepEqual(Array.from(sh.idf), [1.5, 0.25, 2]);
  for (const [i, t] of terms.entries()) {
    const got = [];
    eachPosting(sh.postings, sh.offsets[i], sh.offsets[i + 1], true, (c, tf, dl) => got.push([c, tf, dl]));
    assert.deepEqual(got, t.postings, t.term);
  }
});

test("a shard that is not the expected one is refused, naming the file", () => {
  const bytes = lexShardBytes(2, 0, [{ term: "a", idf: 1, postings: [[0, 1, 1]] }]);
  const bad = bytes.slice();
  bad[1] ^= 1;
  assert.throws(() => parseLexShard(bad, "index/lex/2.bin", { shard: 2, terms: 1 }), /^WebsemError: websem: index\/lex\/2\.bin is not a websem lexical shard \(bad magic bytes\); rebuild/);
  assert.throws(() => parseLexShard(bytes, "index/lex/2.bin", { shard: 3, terms: 1 }), /index\/lex\/2\.bin holds shard 2 \(1 terms\) but the term table expects shard 3 \(1 terms\)/);
});
