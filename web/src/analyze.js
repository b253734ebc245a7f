// The lexical analyzer's JS twin: `websem_text.analyze.Analyzer` (web/text/analyze.py) in plain JS,
// so query terms can be computed before Pyodide has arrived.
//
// Same pipeline, same decisions, per token: the token regex (`\w` runs with combining marks inside,
// CJK ideographs alone), snake_case/camelCase parts, `str.casefold`, accent folding (NFKD, keep
// `isalnum()` or "_", the Latin letters NFKD leaves alone, casefold again), the 64-character cap,
// stopwords, Snowball English stemming (stem-english.js, a port of snowballstemmer 3.1.1).
// Python's `\w`, `casefold` and `isspace` come from tables dumped from the CPython that builds the
// index (analyze-tables.js, Unicode 14.0), not from the JS engine (whose Unicode is newer and has
// no casefold); NFKD comes from the engine, which Unicode's stability policy makes equal for
// every character assigned in 14.0 (analyze-tables.js says how the rest is handled).
//
// Units: `tokens()` returns spans in UTF-16 code units (JS string indices); Python's are code
// points. `codePointSpans()` converts. Proven equal to Python on the judged corpora and on
// generated strings by tests/test_analyzer_twin.py (docs/hybrid.md, "The analyzer's JS twin").

import { CASEFOLD, UNASSIGNED_MARKS, WORD } from "./analyze-tables.js";
import { WebsemError } from "./errors.js";
import { stemEnglish } from "./stem-english.js";

/** The analyzer version this twin implements (`analyze.ANALYZER_VERSION`). */
export const ANALYZER_VERSION = 1;

/** Lucene's English stopwords (`analyze.ENGLISH_STOPWORDS`). */
export const ENGLISH_STOPWORDS = new Set(
  ("a an and are as at be but by for if in into is it no not of on or such that the their then " +
    "there these they this to was will with").split(" "),
);

/** "a-b,c" hex ranges (analyze-tables.js) -> a regex character-class body with \u{...} escapes. */
export function classBody(ranges) {
  return ranges
    .split(",")
    .map((r) => r.split("-").map((h) => `\\u{${h}}`).join("-"))
    .join("");
}

// analyze._CJK and analyze._MARKS, the same ranges.
const CJK = "\\u{3400}-\\u{4dbf}\\u{4e00}-\\u{9fff}\\u{f900}-\\u{faff}\\u{20000}-\\u{2a6df}" +
  "\\u{2a700}-\\u{2b73f}\\u{2b740}-\\u{2b81f}\\u{2b820}-\\u{2ceaf}\\u{2f800}-\\u{2fa1f}";
const MARKS = "\\u{300}-\\u{36f}\\u{1ab0}-\\u{1aff}\\u{1dc0}-\\u{1dff}\\u{20d0}-\\u{20ff}\\u{fe20}-\\u{fe2f}";
const W = classBody(WORD);
// `[^\W_]`: the word ranges without "_" (U+005F is a range of its own in WORD).
const W_NO_US = classBody(WORD.split(",").filter((r) => r !== "5f").join(","));

// analyze._TOKEN_RE, analyze._CAMEL_RE (the `u` flag: classes and indices over code points).
const TOKEN_RE = new RegExp(`[${CJK}]|(?:(?![${CJK}])[${W}])(?:(?![${CJK}])[${W}${MARKS}])*`, "gu");
const CAMEL_RE = new RegExp(`[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[${W_NO_US}]+`, "gu");
const NOT_WORD_RE = new RegExp(`[^${W}]`, "gu");
const UNASSIGNED_RE = new RegExp(`[${classBody(UNASSIGNED_MARKS)}]`, "gu");
const NON_ASCII_RE = /[^\x00-\x7f]/;
const INNER_UNDERSCORE_RE = /[^_]_+[^_]/;
const UPPER_RE = /[A-Z]/;
const LOWER_RE = /[a-z]/;
const SURROGATE_RE = /[\ud800-\udfff]/;

// analyze._FOLD_EXTRA.
const FOLD_EXTRA = new Map(Object.entries({
  "ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b", "ɨ": "i",
  "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ĳ": "ij", "ŋ": "n", "ĸ": "q",
}));
const FOLD_EXTRA_RE = new RegExp(`[${[...FOLD_EXTRA.keys()].join("")}]`, "gu");

/** `str.casefold` per code point, decoded from CASEFOLD runs. */
const CASEFOLD_MAP = (() => {
  const map = new Map();
  for (const run of CASEFOLD.split(",")) {
    if (run.includes("=")) {
      const [start, to] = run.split("=");
      map.set(parseInt(start, 16), String.fromCodePoint(...to.split(".").map((h) => parseInt(h, 16))));
    } else {
      const [start, count, step, delta] = run.split(":");
      const s = parseInt(start, 16);
      for (let i = 0; i < parseInt(count, 16); i++) {
        const c = s + i * Number(step);
        map.set(c, String.fromCodePoint(c + Number(delta)));
      }
    }
  }
  return map;
})();

const CACHE_LIMIT = 200_000;
// `Analyzer.config()` keys besides "version" (`Analyzer.from_config` reads them all).
const CONFIG_KEYS = ["lowercase", "fold_accents", "stopwords", "stemmer", "split_identifiers", "max_token_chars"];

/** Python `str.casefold()`: per code point (so both sigmas give σ; no final-sigma rule). */
export function casefold(s) {
  if (!NON_ASCII_RE.test(s)) return s.toLowerCase();
  let out = "";
  for (const ch of s) out += CASEFOLD_MAP.get(ch.codePointAt(0)) ?? ch;
  return out;
}

/** Python `len(s)`: code points (a lone surrogate counts one, as in Python). */
export function codePointLength(s) {
  if (!SURROGATE_RE.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function isCompound(raw) {
  // analyze._is_compound: snake_case, or ASCII camelCase whose parts all have >= 2 characters.
  if (INNER_UNDERSCORE_RE.test(raw)) return true; // "_" in raw.strip("_")
  // raw.islower() or raw.isupper() or not raw.isascii(): False. Without A-Z, ASCII raw is
  // lowercase or has no letter (then its one digit run is a single part): False as well.
  if (!UPPER_RE.test(raw) || !LOWER_RE.test(raw) || NON_ASCII_RE.test(raw)) return false;
  const parts = raw.match(CAMEL_RE) ?? [];
  return parts.length > 1 && parts.every((p) => p.length >= 2);
}

function refuse(message) {
  return new WebsemError(message);
}

/**
 * The analyzer an index was built with, from its header's `analyzer` (`Analyzer.config()`).
 * Refuses another analyzer version with Python's words. Stemmers: "english" or null.
 *
 * @param {{version: number, lowercase: boolean, fold_accents: boolean,
 *          stopwords: "english" | string[], stemmer: string | null,
 *          split_identifiers: boolean, max_token_chars: number}} config
 */
export function createAnalyzer(config) {
  const version = config?.version;
  if (version !== ANALYZER_VERSION) {
    throw refuse(
      `websem: lexical index uses analyzer version ${pyRepr(version)}, this runtime knows ` +
        `version ${ANALYZER_VERSION}; rebuild the bundle with \`websem build\``,
    );
  }
  for (const key of CONFIG_KEYS) {
    if (!(key in config)) {
      throw refuse(
        `websem: the lexical index's analyzer config has no ${JSON.stringify(key)} (it needs ` +
          `${CONFIG_KEYS.join(", ")}); rebuild the bundle with \`websem build\``,
      );
    }
  }
  let stop;
  if (typeof config.stopwords === "string") {
    if (config.stopwords !== "english") {
      throw refuse(
        `websem: unknown stopword list ${pyRepr(config.stopwords)}; use 'english', a list of words, or None`,
      );
    }
    stop = ENGLISH_STOPWORDS;
  } else {
    stop = new Set(config.stopwords ?? []);
  }
  let stem = null;
  if (config.stemmer !== null && config.stemmer !== undefined) {
    if (config.stemmer !== "english") {
      throw refuse(
        `websem: unknown stemmer ${pyRepr(config.stemmer)} for the JS analyzer; it knows 'english' or None`,
      );
    }
    stem = stemEnglish;
  }
  return new Analyzer({
    lowercase: Boolean(config.lowercase),
    foldAccents: Boolean(config.fold_accents),
    stop,
    stem,
    splitIdentifiers: Boolean(config.split_identifiers),
    maxTokenChars: config.max_token_chars,
  });
}

/** Python's repr of a JSON value, for messages that read like Python's. */
function pyRepr(v) {
  if (v === undefined || v === null) return "None";
  if (typeof v === "string") return `'${v}'`;
  if (v === true) return "True";
  if (v === false) return "False";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

class Analyzer {
  constructor({ lowercase, foldAccents, stop, stem, splitIdentifiers, maxTokenChars }) {
    this.lowercase = lowercase;
    this.foldAccents = foldAccents;
    this.stop = stop;
    this.stem = stem;
    this.splitIdentifiers = splitIdentifiers;
    this.maxTokenChars = maxTokenChars;
    // raw token -> term ("" = dropped), like the Python analyzer's cache.
    this.cache = new Map();
  }

  /**
   * All index terms of `text` in order, with their [start, end) spans in UTF-16 code units.
   * @param {string} text
   * @returns {{term: string, start: number, end: number}[]}
   */
  tokens(text) {
    const out = [];
    const re = new RegExp(TOKEN_RE); // own lastIndex: tokens() may be re-entered
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const raw = m[0];
      const start = m.index;
      const term = this.term(raw);
      if (term) out.push({ term, start, end: start + raw.length });
      if (this.splitIdentifiers && raw.length > 2 && codePointLength(raw) > 2 && isCompound(raw)) {
        for (const part of raw.matchAll(CAMEL_RE)) {
          const p = part[0];
          if (p.length === raw.length) break;
          const pterm = this.term(p);
          if (pterm) out.push({ term: pterm, start: start + part.index, end: start + part.index + p.length });
        }
      }
    }
    return out;
  }

  /** Index terms only (what BM25 counts). @param {string} text */
  terms(text) {
    return this.tokens(text).map((t) => t.term);
  }

  /** The term of one raw token ("" when it is dropped). */
  term(raw) {
    let term = this.cache.get(raw);
    if (term === undefined) {
      term = this.normalize(raw);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(raw, term);
    }
    return term;
  }

  normalize(raw) {
    if (codePointLength(raw) > this.maxTokenChars) return "";
    let t = this.lowercase ? casefold(raw) : raw;
    if (this.foldAccents && NON_ASCII_RE.test(t)) {
      // Characters unassigned in the tables' Unicode version are dropped here by CPython after
      // NFKD (not alphanumeric); dropping them first keeps a newer engine's NFKD out of it.
      t = t.replace(UNASSIGNED_RE, "").normalize("NFKD").replace(NOT_WORD_RE, "")
        .replace(FOLD_EXTRA_RE, (c) => FOLD_EXTRA.get(c));
      if (this.lowercase) t = casefold(t);
    }
    if (!t || this.stop.has(t)) return "";
    if (this.stem !== null) t = this.stem(t);
    return t;
  }
}

/**
 * Code-point spans of `tokens` (UTF-16 spans in `text`), as the Python analyzer reports them.
 * @param {string} text
 * @param {{term: string, start: number, end: number}[]} tokens
 */
export function codePointSpans(text, tokens) {
  if (!SURROGATE_RE.test(text)) return tokens.map((t) => ({ ...t }));
  const cpAt = utf16ToCodePoint(text);
  return tokens.map((t) => ({ term: t.term, start: cpAt[t.start], end: cpAt[t.end] }));
}

/** `cpAt[u]` = the code-point index of UTF-16 offset `u` (for u at a code point boundary). */
export function utf16ToCodePoint(text) {
  const cpAt = new Int32Array(text.length + 1);
  let n = 0;
  for (let u = 0; u < text.length; u++) {
    cpAt[u] = n;
    const c = text.charCodeAt(u);
    if (c >= 0xd800 && c <= 0xdbff && u + 1 < text.length) {
      const d = text.charCodeAt(u + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        cpAt[++u] = n;
      }
    }
    n++;
  }
  cpAt[text.length] = n;
  return cpAt;
}
