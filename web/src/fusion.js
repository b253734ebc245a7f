// websem rank fusion in JS: the twin of web/text/fusion.py (`rrf`, `normalized`, `convex`,
// `fuse`) and of the fusion rules of web/text/rules.py (`check_fusion`, `DEFAULT_FUSION`).
//
// A flat bundle's full tier fuses in JS (search.js, lexical-tier.js createFlatRanker), so these
// functions must give the CPU reference's bits: the same IEEE 754 double operations (+ - * / and
// Math.sqrt, all correctly rounded) in the same order, the same `max`/`min` (Python keeps the
// first of equal values, which decides the sign of a zero), and the same order of results: fused
// score descending, then document ascending. Proven against fusion.py (run by Pyodide) on
// generated inputs by tests/js/fusion.test.mjs, and whole queries against `websem query --json`
// by tests/test_full_tier.py.
//
// Rankings are columnar, as lexical.js `lexicalDocs` and dense.js `denseDocs` return them:
// `{docs, scores, chunks}` (typed or plain arrays, best first), one entry per document.
import { WebsemError } from "./errors.js";

/** `rules.MODES`: every search mode. */
export const MODES = Object.freeze(["hybrid", "semantic", "lexical"]);
/** `rules.FUSION_METHODS`. */
export const FUSION_METHODS = Object.freeze(["rrf", "convex"]);
/** `rules.NORMALIZATIONS`. */
export const NORMALIZATIONS = Object.freeze(["minmax", "max", "zscore"]);
/** `rules.DEFAULT_RRF_K`: the RRF constant when an rrf fusion table omits rrf_k. */
export const DEFAULT_RRF_K = 60;
/** `rules.DEFAULT_FUSION`: what `fuse` uses without settings (a bundle's table always has them). */
export const DEFAULT_FUSION = Object.freeze({ method: "convex", norm: "max", alpha: 0.6 });

const EMPTY = Object.freeze({ docs: [], scores: [], chunks: [] });

/** Python's `repr()` of a JSON value, for messages worded like fusion.py's. */
export function pyRepr(v) {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    const body = v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
    return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
}

const isInt = (v) => typeof v === "number" && Number.isInteger(v);

function alphaOf(alpha, what) {
  if (typeof alpha !== "number" || !(alpha >= 0 && alpha <= 1)) {
    throw new WebsemError(`websem: ${what} needs a weight 0 <= alpha <= 1 (dense side), got alpha=${pyRepr(alpha)}`);
  }
  return alpha;
}

/**
 * `rules.check_fusion`: validated fusion settings (`manifest.search.fusion`), `{method: "rrf",
 * rrf_k[, alpha]}` or `{method: "convex", alpha, norm}`, or a WebsemError worded as Python's.
 * (A JSON number is one JS type: `2.0` passes as an integer here, where Python's json reads a
 * float; build writes integers.)
 */
export function checkFusion(fusion) {
  if (fusion === null || typeof fusion !== "object" || Array.isArray(fusion)) {
    throw new WebsemError("websem: fusion settings must be an object like " +
      `{'method': 'convex', 'alpha': 0.6, 'norm': 'max'}, got ${pyRepr(fusion)}`);
  }
  const method = fusion.method;
  if (!FUSION_METHODS.includes(method)) {
    throw new WebsemError(`websem: unknown fusion method ${pyRepr(method)}; use one of ${FUSION_METHODS.join(", ")}`);
  }
  if (method === "rrf") {
    const k = "rrf_k" in fusion ? fusion.rrf_k : DEFAULT_RRF_K;
    if (!isInt(k) || k < 0) throw new WebsemError(`websem: RRF needs an integer rrf_k >= 0, got rrf_k=${pyRepr(k)}`);
    if (!("alpha" in fusion)) return { method: "rrf", rrf_k: k };
    return { method: "rrf", rrf_k: k, alpha: alphaOf(fusion.alpha, "weighted RRF") };
  }
  const alpha = alphaOf(fusion.alpha, "convex fusion");
  const norm = "norm" in fusion ? fusion.norm : "minmax";
  if (!NORMALIZATIONS.includes(norm)) {
    throw new WebsemError(`websem: unknown score normalization ${pyRepr(norm)}; use one of ${NORMALIZATIONS.join(", ")}`);
  }
  return { method: "convex", alpha, norm };
}

/** Score descending, then document ascending (`fusion._hit_key` / the sorts of rrf and convex). */
function byScoreThenDoc(a, b) {
  if (a[1] > b[1]) return -1;
  if (a[1] < b[1]) return 1;
  return a[0] - b[0];
}

/**
 * `fusion.rrf`: score(d) = sum over rankings of 1 / (k + rank) (rank 1-based), or of
 * `weights[i] / (k + rank)`. `rankings`: lists of documents, best first.
 * @returns {[number, number][]} `[doc, score]`, score descending, then document ascending
 */
export function rrf(rankings, k = DEFAULT_RRF_K, weights = null) {
  const fused = new Map();
  rankings.forEach((ranking, i) => {
    const w = weights === null ? null : weights[i];
    let r = 0;
    for (const d of ranking) {
      r += 1;
      fused.set(d, (fused.get(d) ?? 0) + (w === null ? 1 / (k + r) : w / (k + r)));
    }
  });
  return [...fused].sort(byScoreThenDoc);
}

/** Python's `max(xs)` / `min(xs)`: the first of equal values is kept (so -0.0 vs 0.0 matches). */
function pyMax(xs) {
  let m = xs[0];
  for (let i = 1; i < xs.length; i++) if (xs[i] > m) m = xs[i];
  return m;
}

function pyMin(xs) {
  let m = xs[0];
  for (let i = 1; i < xs.length; i++) if (xs[i] < m) m = xs[i];
  return m;
}

/**
 * `fusion.normalized`: one side's scores on a common scale, in the given order: `minmax`
 * (`(s - min) / (max - min)`, all 1 when equal), `max` (`s / max`, all 1 when max <= 0) or
 * `zscore` (`(s - mean) / std`, population std summed in order, all 0 when it is 0).
 * @param {ArrayLike<number>} scores
 * @returns {number[]}
 */
export function normalized(scores, norm = "minmax") {
  if (!NORMALIZATIONS.includes(norm)) {
    throw new WebsemError(`websem: unknown score normalization ${pyRepr(norm)}; use one of ${NORMALIZATIONS.join(", ")}`);
  }
  const xs = Array.from(scores);
  if (!xs.length) return [];
  if (norm === "max") {
    const hi = pyMax(xs);
    if (hi <= 0) return xs.map(() => 1);
    return xs.map((s) => s / hi);
  }
  if (norm === "minmax") {
    const lo = pyMin(xs);
    const hi = pyMax(xs);
    if (hi === lo) return xs.map(() => 1);
    return xs.map((s) => (s - lo) / (hi - lo));
  }
  let mean = 0;
  for (const s of xs) mean += s;
  mean /= xs.length;
  let variance = 0;
  for (const s of xs) variance += (s - mean) * (s - mean);
  const std = Math.sqrt(variance / xs.length);
  if (std === 0) return xs.map(() => 0);
  return xs.map((s) => (s - mean) / std);
}

/**
 * `fusion.convex`: `alpha * dense + (1 - alpha) * lexical` over each side's normalized scores; a
 * document missing from a side gets that side's floor (0, or the lowest z-score with `zscore`).
 * @param {[number, number][]} semantic `[doc, score]` pairs, best first
 * @param {[number, number][]} lexical the same for the lexical side
 * @returns {[number, number][]} `[doc, fused]`, score descending, then document ascending
 */
export function convex(semantic, lexical, alpha, norm = "minmax") {
  const sides = [semantic, lexical].map((pairs) => {
    const vals = normalized(pairs.map((p) => p[1]), norm);
    const floor = vals.length && norm === "zscore" ? pyMin(vals) : 0;
    const byDoc = new Map();
    pairs.forEach((p, i) => byDoc.set(p[0], vals[i]));
    return [byDoc, floor];
  });
  const [[sem, semFloor], [lex, lexFloor]] = sides;
  const fused = new Map();
  const score = (d) => alpha * (sem.has(d) ? sem.get(d) : semFloor) + (1 - alpha) * (lex.has(d) ? lex.get(d) : lexFloor);
  for (const d of sem.keys()) fused.set(d, score(d));
  for (const d of lex.keys()) if (!sem.has(d)) fused.set(d, score(d));
  return [...fused].sort(byScoreThenDoc);
}

/** The first `n` entries of a columnar ranking as `[doc, score, chunk]` triples. */
function head(ranking, n) {
  const m = Math.min(n, ranking.docs.length);
  const out = new Array(m);
  for (let i = 0; i < m; i++) out[i] = [ranking.docs[i], ranking.scores[i], ranking.chunks[i]];
  return out;
}

/**
 * `fusion.fuse`: the final ranking of one mode from each side's document ranking (already
 * filtered, best first): lexical / semantic = that side's top k as is; hybrid = the fusion
 * (`fusion`, checked by `checkFusion`; null = DEFAULT_FUSION) of each side's top n, a hit
 * keeping the best chunk of the side where it ranks better (lexical on a tie).
 *
 * @param {string} mode
 * @param {{lexical?: object|null, semantic?: object|null, k?: number, n?: number, fusion?: object|null}} [p]
 *   rankings as `{docs, scores, chunks}`
 * @returns {{doc: number, score: number, chunk: number, lexical_rank: number|null, semantic_rank: number|null}[]}
 */
export function fuse(mode, { lexical = null, semantic = null, k = 10, n = 100, fusion = null } = {}) {
  if (!MODES.includes(mode)) {
    throw new WebsemError(`websem: unknown search mode ${pyRepr(mode)}; use one of ${MODES.join(", ")}`);
  }
  if (k < 1 || n < 1) throw new WebsemError(`websem: k and n must be >= 1, got k=${k}, n=${n}`);
  const settings = checkFusion(fusion ?? DEFAULT_FUSION);
  lexical ??= EMPTY;
  semantic ??= EMPTY;
  const hit = (doc, score, chunk, lr, sr) => ({ doc, score, chunk, lexical_rank: lr, semantic_rank: sr });
  if (mode === "lexical") return head(lexical, k).map(([d, s, c], i) => hit(d, s, c, i + 1, null));
  if (mode === "semantic") return head(semantic, k).map(([d, s, c], i) => hit(d, s, c, null, i + 1));
  const lexTop = head(lexical, n);
  const semTop = head(semantic, n);
  // doc -> [rank, chunk]; a repeated document keeps its last entry, as Python's dict does.
  const lex = new Map(lexTop.map(([d, , c], i) => [d, [i + 1, c]]));
  const sem = new Map(semTop.map(([d, , c], i) => [d, [i + 1, c]]));
  let fused;
  if (settings.method === "rrf") {
    const a = settings.alpha;
    fused = rrf([semTop.map((h) => h[0]), lexTop.map((h) => h[0])], settings.rrf_k, a === undefined ? null : [a, 1 - a]);
  } else {
    fused = convex(semTop.map((h) => [h[0], h[1]]), lexTop.map((h) => [h[0], h[1]]), settings.alpha, settings.norm);
  }
  const out = [];
  for (const [d, score] of fused.slice(0, k)) {
    const l = lex.get(d);
    const s = sem.get(d);
    const chunk = l !== undefined && (s === undefined || l[0] <= s[0]) ? l[1] : s[1];
    out.push(hit(d, score, chunk, l?.[0] ?? null, s?.[0] ?? null));
  }
  return out;
}
