// web/src/fusion.js against web/text/fusion.py (websem_text.fusion, run by Pyodide) on generated
// inputs: `normalized`, `rrf`, `convex` and `fuse` in every mode and with every fusion setting,
// over ties, single candidates, all-equal scores, empty sides, zeros of both signs and negative
// scores. Floats cross between JS and Python as the hex of their IEEE 754 bits, so equal means
// the same bits (a -0.0 against a 0.0 fails); errors must carry the same message.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError } from "../../web/src/errors.js";
import { DEFAULT_FUSION, DEFAULT_RRF_K, checkFusion, convex, fuse, normalized, rrf } from "../../web/src/fusion.js";
import { bootPython } from "./pyodide_env.mjs";

/** The hex of a double's bits (big-endian), as Python's struct.pack('>d', x).hex(). */
function f2h(x) {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  return [...new Uint8Array(dv.buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const PY = `
import json, struct
from websem_text import fusion, rules
from websem_text.errors import WebsemError

def _f(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]

def _h(x):
    return struct.pack(">d", float(x)).hex()

def _hits(rows):
    return [fusion.DocHit(d, _f(s), c) for d, s, c in rows]

def _one(c):
    fn = c["fn"]
    if fn == "normalized":
        return [_h(v) for v in fusion.normalized([_f(x) for x in c["scores"]], c["norm"])]
    if fn == "rrf":
        w = None if c["weights"] is None else [_f(x) for x in c["weights"]]
        return [[d, _h(s)] for d, s in fusion.rrf(c["rankings"], c["k"], w)]
    if fn == "convex":
        return [[d, _h(s)] for d, s in fusion.convex([(d, _f(s)) for d, s in c["sem"]],
                                                     [(d, _f(s)) for d, s in c["lex"]], _f(c["alpha"]), c["norm"])]
    if fn == "fuse":
        hits = fusion.fuse(c["mode"], lexical=_hits(c["lex"]), semantic=_hits(c["sem"]), k=c["k"], n=c["n"],
                           fusion=c["fusion"])
        return [[h.doc, _h(h.score), h.chunk, h.lexical_rank, h.semantic_rank] for h in hits]
    if fn == "check_fusion":
        return rules.check_fusion(c["fusion"])
    raise ValueError(fn)

def _run(cases_json):
    out = []
    for c in json.loads(cases_json):
        try:
            out.append({"ok": _one(c)})
        except WebsemError as e:
            out.append({"error": str(e)})
    return json.dumps(out)
`;

/** What fusion.js gives for the same cases, in the same shape. */
function jsOne(c) {
  const fx = (h) => new DataView(Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16)).buffer).getFloat64(0);
  const columns = (rows) => ({ docs: rows.map((r) => r[0]), scores: rows.map((r) => fx(r[1])), chunks: rows.map((r) => r[2]) });
  switch (c.fn) {
    case "normalized":
      return normalized(c.scores.map(fx), c.norm).map(f2h);
    case "rrf":
      return rrf(c.rankings, c.k, c.weights === null ? null : c.weights.map(fx)).map(([d, s]) => [d, f2h(s)]);
    case "convex":
      return convex(c.sem.map(([d, s]) => [d, fx(s)]), c.lex.map(([d, s]) => [d, fx(s)]), fx(c.alpha), c.norm).map(([d, s]) => [d, f2h(s)]);
    case "fuse":
      return fuse(c.mode, { lexical: columns(c.lex), semantic: columns(c.sem), k: c.k, n: c.n, fusion: c.fusion })
        .map((h) => [h.doc, f2h(h.score), h.chunk, h.lexical_rank, h.semantic_rank]);
    case "check_fusion":
      return checkFusion(c.fusion);
    default:
      throw new Error(c.fn);
  }
}

function jsRun(cases) {
  return cases.map((c) => {
    try {
      return { ok: jsOne(c) };
    } catch (e) {
      if (!(e instanceof WebsemError)) throw e;
      return { error: e.message };
    }
  });
}

async function pyRun(cases) {
  const { pyodide } = await bootPython();
  pyodide.runPython(PY);
  pyodide.globals.set("cases_json", JSON.stringify(cases));
  return JSON.parse(pyodide.runPython("_run(cases_json)"));
}

/** A seeded generator (mulberry32): the same cases on every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NORMS = ["minmax", "max", "zscore"];
const FUSIONS = [
  null,
  { method: "convex", norm: "max", alpha: 0.6 },
  { method: "convex", norm: "minmax", alpha: 0.3 },
  { method: "convex", norm: "zscore", alpha: 0.5 },
  { method: "convex", alpha: 0.7 }, // norm defaults to minmax
  { method: "convex", norm: "max", alpha: 0 },
  { method: "convex", norm: "zscore", alpha: 1 },
  { method: "rrf" }, // rrf_k defaults to 60
  { method: "rrf", rrf_k: 0 },
  { method: "rrf", rrf_k: 10, alpha: 0.25 },
  { method: "rrf", rrf_k: 60, alpha: 1 },
];

/** Score lists that stress the edge cases: ties, one value, all equal, zeros of both signs, negatives. */
function scoreLists(next) {
  const lists = [[], [0.5], [0], [-0], [-0.25], [3, 3, 3, 3], [0, -0, 0], [-0, 0], [0, -0, 1], [-0, 0, 2], [1, 0, -0], [0.1, -0.2, 0.3], [-1, -2, -3],
    [1e-300, 2e-300], [12.5, 7.25, 7.25, 1e-9, 0], [0.1 + 0.2, 0.3, 0.3000000000000001]];
  for (let i = 0; i < 40; i++) {
    const m = 1 + Math.floor(next() * 30);
    const tied = next() < 0.4;
    lists.push(Array.from({ length: m }, () => (tied ? Math.floor(next() * 4) / 4 : (next() - 0.2) * 20)));
  }
  return lists;
}

/** A ranking of `m` distinct documents out of `pool`, best first, as `[doc, hexScore, chunk]`. */
function ranking(next, m, pool, tied, negative) {
  const docs = [];
  while (docs.length < Math.min(m, pool)) {
    const d = Math.floor(next() * pool);
    if (!docs.includes(d)) docs.push(d);
  }
  const scores = docs.map(() => (tied ? Math.floor(next() * 3) / 2 : next() * 10) - (negative ? 5 : 0));
  const rows = docs.map((d, i) => [d, scores[i], d * 3 + Math.floor(next() * 3)]);
  rows.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return rows.map(([d, s, c]) => [d, f2h(s), c]);
}

function cases() {
  const next = rng(20240611);
  const out = [];
  for (const scores of scoreLists(next)) for (const norm of NORMS) out.push({ fn: "normalized", scores: scores.map(f2h), norm });
  for (let i = 0; i < 60; i++) {
    const pool = 1 + Math.floor(next() * 25);
    const sem = ranking(next, Math.floor(next() * 20), pool, next() < 0.4, next() < 0.3).map(([d, s]) => [d, s]);
    const lex = ranking(next, Math.floor(next() * 20), pool, next() < 0.4, false).map(([d, s]) => [d, s]);
    for (const norm of NORMS) out.push({ fn: "convex", sem, lex, alpha: f2h([0, 0.6, 1, next()][i % 4]), norm });
    out.push({ fn: "rrf", rankings: [sem.map((r) => r[0]), lex.map((r) => r[0])], k: [0, 1, 60][i % 3], weights: i % 2 ? null : [f2h(0.6), f2h(0.4)] });
  }
  // All-equal and single-candidate sides, empty sides, one side only.
  const one = [[4, f2h(0.7), 12]];
  const equal = [[1, f2h(2), 3], [2, f2h(2), 6], [5, f2h(2), 15]];
  const special = [[[], []], [one, []], [[], one], [one, one], [equal, equal], [equal, one], [[[3, f2h(-0), 9]], [[3, f2h(0), 10]]]];
  for (let i = 0; i < 80; i++) {
    const pool = 1 + Math.floor(next() * 40);
    special.push([ranking(next, Math.floor(next() * 30), pool, next() < 0.5, next() < 0.3),
      ranking(next, Math.floor(next() * 30), pool, next() < 0.5, false)]);
  }
  for (const [sem, lex] of special) {
    for (const mode of ["hybrid", "semantic", "lexical"]) {
      for (const fusion of mode === "hybrid" ? FUSIONS : [null]) {
        for (const [k, n] of [[1, 1], [3, 2], [10, 100], [50, 5]]) out.push({ fn: "fuse", mode, sem, lex, k, n, fusion });
      }
    }
  }
  return out;
}

test("normalized, rrf, convex and fuse give fusion.py's bits on generated inputs", async () => {
  const all = cases();
  const want = await pyRun(all);
  const got = jsRun(all);
  assert.equal(got.length, want.length);
  let fused = 0;
  for (let i = 0; i < all.length; i++) {
    assert.deepEqual(got[i], want[i], `case ${i}: ${JSON.stringify(all[i])}`);
    if (all[i].fn === "fuse") fused += want[i].ok.length;
  }
  assert.ok(all.length > 2000 && fused > 10000, `${all.length} cases, ${fused} fused hits`);
  // The generated cases do reach the corners: ties broken by document, hybrid hits from one side only.
  const hybrid = all.map((c, i) => [c, want[i]]).filter(([c]) => c.fn === "fuse" && c.mode === "hybrid");
  assert.ok(hybrid.some(([, w]) => w.ok.some((h, j) => j > 0 && h[1] === w.ok[j - 1][1])), "no tied fused scores");
  assert.ok(hybrid.some(([, w]) => w.ok.some((h) => h[3] === null)) && hybrid.some(([, w]) => w.ok.some((h) => h[4] === null)));
});

test("refusals carry fusion.py's and rules.py's messages", async () => {
  const base = { fn: "fuse", sem: [], lex: [], k: 3, n: 3 };
  const bad = [
    { ...base, mode: "fuzzy", fusion: null },
    { ...base, mode: "hybrid", k: 0, fusion: null },
    { ...base, mode: "lexical", n: 0, fusion: null },
    { ...base, mode: "hybrid", fusion: { method: "borda" } },
    { ...base, mode: "hybrid", fusion: { alpha: 0.5 } },
    { ...base, mode: "hybrid", fusion: { method: "convex", alpha: 1.5, norm: "max" } },
    { ...base, mode: "hybrid", fusion: { method: "convex", alpha: true, norm: "max" } },
    { ...base, mode: "hybrid", fusion: { method: "convex", norm: "max" } },
    { ...base, mode: "hybrid", fusion: { method: "convex", alpha: 0.5, norm: "l2" } },
    { ...base, mode: "hybrid", fusion: { method: "convex", alpha: 0.5, norm: null } },
    { ...base, mode: "hybrid", fusion: { method: "rrf", rrf_k: -1 } },
    { ...base, mode: "hybrid", fusion: { method: "rrf", rrf_k: 1.5 } },
    { ...base, mode: "hybrid", fusion: { method: "rrf", rrf_k: "60" } },
    { ...base, mode: "hybrid", fusion: { method: "rrf", alpha: null } },
    { ...base, mode: "hybrid", fusion: "convex" },
    { ...base, mode: "hybrid", fusion: ["convex"] },
    { fn: "normalized", scores: [], norm: "l2" },
    { fn: "check_fusion", fusion: { method: "rrf", rrf_k: 7, alpha: 0, extra: 1 } },
    { fn: "check_fusion", fusion: { method: "convex", alpha: 1 } },
  ];
  const want = await pyRun(bad);
  assert.deepEqual(jsRun(bad), want);
  assert.equal(want.filter((w) => w.error).length, bad.length - 2);
  assert.ok(want.every((w) => !w.error || w.error.startsWith("websem: ")));
});

test("DEFAULT_FUSION and DEFAULT_RRF_K are rules.py's", async () => {
  const { pyodide } = await bootPython();
  const py = JSON.parse(pyodide.runPython(
    "import json; from websem_text import rules; json.dumps([rules.DEFAULT_FUSION, rules.DEFAULT_RRF_K, rules.MODES])",
  ));
  assert.deepEqual([{ ...DEFAULT_FUSION }, DEFAULT_RRF_K], py.slice(0, 2));
});
