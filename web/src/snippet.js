// Snippets in plain JS: `websem_text.snippets.snippet` + `utf16_ranges` (web/text/snippets.py),
// so a lexical result can be rendered before Pyodide has arrived.
//
// The window is chosen exactly as in Python, which counts code points (the window length, the
// 40-character lead, the 20-character snap to a word boundary), with Python's `str.isspace`
// (analyze-tables.js: it differs from JS `\s`, e.g. U+001C..U+001F, U+0085, U+FEFF). So the
// arithmetic runs over code points and only the result is converted to UTF-16 code units.
// Tested equal to Python on Cranfield chunks (tests/test_analyzer_twin.py).

import { SPACE } from "./analyze-tables.js";
import { codePointSpans } from "./analyze.js";
import { compareCodePoints } from "./lexshards.js";

/** `rules.DEFAULTS["snippet_chars"]`: the longest snippet, in code points. */
export const SNIPPET_CHARS = 240;

const SPACE_SET = new Set(
  SPACE.split(",").flatMap((r) => {
    const [a, b = a] = r.split("-").map((h) => parseInt(h, 16));
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }),
);

function greater(key, best) {
  for (let i = 0; i < key.length; i++) {
    if (key[i] !== best[i]) return key[i] > best[i];
  }
  return false;
}

/**
 * A window of `text` around the densest group of query-term matches, as Python's `snippet`.
 *
 * Returns `{text, start, end, highlights}`, all in UTF-16 code units: `start`/`end` locate the
 * window in `text`, `highlights` are sorted, merged `[start, end]` ranges into the window text
 * (Python's code-point highlights passed through `utf16_ranges`). Never HTML.
 *
 * @param {string} text the chunk text
 * @param {{tokens(text: string): {term: string, start: number, end: number}[]}} analyzer from
 *   `createAnalyzer` (analyze.js)
 * @param {Iterable<string>} queryTerms the query's terms (`analyzer.terms(query)`)
 * @param {{maxChars?: number, lead?: number}} [options] `maxChars` = manifest.search.snippet_chars
 */
export function snippet(text, analyzer, queryTerms, { maxChars = SNIPPET_CHARS, lead = 40 } = {}) {
  const qset = new Set(queryTerms);
  const matches = codePointSpans(text, analyzer.tokens(text).filter((t) => qset.has(t.term)));
  const chars = Array.from(text, (c) => c.codePointAt(0));
  const n = chars.length;
  const isSpace = (i) => SPACE_SET.has(chars[i]);
  let s;
  let e;
  if (n <= maxChars) {
    s = 0;
    e = n;
  } else {
    let anchor = 0;
    if (matches.length) {
      // The window [m.start, m.start + maxChars - lead) with the most distinct terms, then the
      // most matches, then the earliest.
      let best = [-1, -1, 0];
      let j = 0;
      const width = maxChars - lead;
      for (let i = 0; i < matches.length; i++) {
        while (j < matches.length && matches[j].end <= matches[i].start + width) j++;
        const window = matches.slice(i, j);
        const key = [new Set(window.map((m) => m.term)).size, window.length, -matches[i].start];
        if (greater(key, best)) best = key;
      }
      anchor = Math.max(0, -best[2] - lead);
    }
    s = snapStart(n, isSpace, anchor);
    e = snapEnd(n, isSpace, Math.min(n, s + maxChars));
  }
  // Merge overlapping spans: identifier parts overlap their whole identifier.
  const sorted = [...matches].sort((a, b) => a.start - b.start || a.end - b.end || compareCodePoints(a.term, b.term));
  const merged = [];
  for (const { start: a, end: b } of sorted) {
    if (a < s || b > e) continue;
    const last = merged[merged.length - 1];
    if (last && a - s <= last[1]) last[1] = Math.max(last[1], b - s);
    else merged.push([a - s, b - s]);
  }
  // Code points -> UTF-16 units.
  const u16 = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) u16[i + 1] = u16[i] + (chars[i] > 0xffff ? 2 : 1);
  const base = u16[s];
  return {
    text: text.slice(u16[s], u16[e]),
    start: u16[s],
    end: u16[e],
    highlights: merged.map(([a, b]) => [u16[s + a] - base, u16[s + b] - base]),
  };
}

/** Move a window start back to the beginning of the word it cuts (at most 20 chars). */
function snapStart(n, isSpace, i) {
  if (i <= 0) return 0;
  let j = i;
  while (j > 0 && i - j < 20 && !isSpace(j - 1)) j--;
  return j === 0 || isSpace(j - 1) ? j : i;
}

/** Move a window end back to a word boundary (at most 20 chars). */
function snapEnd(n, isSpace, i) {
  if (i >= n) return n;
  let j = i;
  while (j > 0 && i - j < 20 && !isSpace(j)) j--;
  return isSpace(j) ? j : i;
}
