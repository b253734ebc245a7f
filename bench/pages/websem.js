// websem end to end through its public API: BUNDLE/websem.js load() -> engine.search(query, {k, mode}).
// ?bundle=/websem-baseline/ measures another bundle folder of the same origin (browser.py
// --baseline: a bundle built by an earlier runtime, with its own runtime/ and websem.js).
import { installHarness, firstQuery, reportError } from "/pages/harness.js";

const K = 10;
window.__bench = window.__bench || {};
// Loading stages (navigation-relative ms), to say what limits the cold start.
const stages = (window.__bench.stages = []);
// "bytes" events (many per load) are left out; "compiled" ones carry each wasm file's compile time.
const onProgress = (ev) => {
  if (ev.stage === "verified" || ev.stage === "bytes") return;
  const stage = ev.stage === "compiled" ? `compiled ${ev.file.split("/").pop()}` : ev.stage;
  // Python-worker events carry their own clock (`at`): the engine's thread may receive them late.
  const own = ev.at != null ? { own_ms: ev.at - performance.timeOrigin } : {};
  stages.push({ stage, at_ms: performance.now(), ...own, ...(ev.compile_ms != null ? { compile_ms: ev.compile_ms } : {}) });
};
const params = new URLSearchParams(location.search);
const bundlePath = params.get("bundle") || "/websem/";
try {
  if (!/^\/[\w-]+\/$/.test(bundlePath)) throw new Error(`bench: ?bundle=${bundlePath} is not a mount like /websem/`);
  // Imported, not statically: which bundle's public module to load is a page parameter. Both
  // the new and the baseline stack pay the same dynamic import in their cold start.
  const { load } = await import(`${bundlePath}websem.js`);
  const engine = await load(new URL(bundlePath, location.href), { onProgress });
  window.__bench.readyMs = performance.now();
  // The runtime defaults to hybrid (BM25 + dense fusion). The same job as the peers (embed the
  // query, brute-force cosine top-10) is mode "semantic", the default here; ?mode=hybrid
  // measures the product default as an extra row (not in the ratios).
  const mode = params.get("mode") || "semantic";
  // wait: the first result is the mode's own (load() resolves on the lexical tier, where a
  // hybrid search would answer lexically; bench/progressive.py measures that first result).
  const search = (q) => engine.search(q, { k: K, mode, wait: true });
  const stack = (mode === "semantic" ? "websem" : `websem-${mode}`) + (bundlePath === "/websem/" ? "" : "-baseline");
  installHarness(search, { stack, mode, bundle: bundlePath, engineInfo: engine.info ?? null });
  // Where a warm query's time goes (diagnostics only, through the engine's test hook, not
  // public API): tokenize (Pyodide), tokenize + embed (ORT); the rest of search() is ranking and
  // result assembly. browser.py calls it after the measured queries, outside the timed run.
  if (engine.debug?.tokenize && engine.debug?.embed) window.__bench.breakdown = async (queries) => {
    const tokenize = [];
    const embed = [];
    for (const q of queries) {
      const t0 = performance.now();
      await engine.debug.tokenize(q);
      const t1 = performance.now();
      await engine.debug.embed(q);
      tokenize.push(t1 - t0);
      embed.push(performance.now() - t1);
    }
    return { tokenize_ms: tokenize, tokenize_embed_ms: embed };
  };
  await firstQuery(search);
} catch (err) {
  reportError(err);
}
