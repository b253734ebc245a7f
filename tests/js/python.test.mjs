// web/src/python.js under Node: Pyodide booted from a bundle-shaped folder (vendor files from
// web/node_modules, web/text as py/websem_text, the default model's tokenizer), from scratch and
// from a memory snapshot made by web/tools/make_snapshot.mjs, and the fallback when a snapshot
// does not fit, or fails its integrity check. The tokenizer's ids must be the same across the
// boots (their equality with HF tokenizers is tests/test_tokenizer*.py's job).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { VerifiedFiles } from "../../web/src/bundle.js";
import { loadPython } from "../../web/src/python.js";
import { SNAPSHOT_PATH, SNAPSHOT_STDLIB_PATH } from "../../web/src/snapshot.js";
import { REPO, tokenizerJson } from "./pyodide_env.mjs";

const VENDOR = {
  module: "vendor/pyodide/pyodide.mjs", asm: "vendor/pyodide/pyodide.asm.mjs", wasm: "vendor/pyodide/pyodide.asm.wasm",
  stdlib: "vendor/pyodide/python_stdlib.zip", lock: "vendor/pyodide/pyodide-lock.json",
};
const dir = mkdtempSync(join(tmpdir(), "websem-python-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function sha(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** A folder shaped like a bundle (only what python.js reads) and its manifest. */
function bundle(maxLength) {
  mkdirSync(join(dir, "vendor", "pyodide"), { recursive: true });
  for (const rel of Object.values(VENDOR)) {
    try {
      symlinkSync(join(REPO, "web", "node_modules", "pyodide", rel.split("/").pop()), join(dir, rel));
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
  }
  cpSync(join(REPO, "web", "text"), join(dir, "py", "websem_text"), { recursive: true, filter: (p) => !p.includes("__pycache__") });
  const snowball = execFileSync(join(REPO, ".venv", "bin", "python"), ["-c", "import snowballstemmer, os; print(os.path.dirname(snowballstemmer.__file__))"]).toString().trim();
  cpSync(snowball, join(dir, "py", "snowballstemmer"), { recursive: true, filter: (p) => !p.includes("__pycache__") });
  cpSync(join(REPO, "web", "src"), join(dir, "runtime"), { recursive: true });
  mkdirSync(join(dir, "model"), { recursive: true });
  writeFileSync(join(dir, "model", "tokenizer.json"), tokenizerJson());
  const pythonFiles = ["websem_text", "snowballstemmer"].flatMap((pkg) =>
    readdirSync(join(dir, "py", pkg)).filter((f) => f.endsWith(".py")).map((f) => `py/${pkg}/${f}`));
  const files = {};
  for (const rel of [...pythonFiles, "model/tokenizer.json", ...Object.values(VENDOR)]) {
    files[rel] = { sha256: sha(join(dir, rel)), size: readFileSync(join(dir, rel)).length };
  }
  return { model: { max_seq_length: maxLength }, runtime: { python_files: pythonFiles, vendor: { pyodide: VENDOR } }, files };
}

/** The manifest with a make_snapshot.mjs snapshot and the stdlib zip its restore mounts. */
function withSnapshot(manifest, maxLength) {
  execFileSync("node", [join(REPO, "web", "tools", "make_snapshot.mjs"), dir, String(maxLength), VENDOR.module, VENDOR.lock, VENDOR.stdlib, "[]"]);
  const entry = (rel) => ({ sha256: sha(join(dir, rel)), size: readFileSync(join(dir, rel)).length });
  return {
    ...manifest,
    runtime: { ...manifest.runtime, snapshot_stdlib: SNAPSHOT_STDLIB_PATH },
    files: { ...manifest.files, [SNAPSHOT_PATH]: entry(SNAPSHOT_PATH), [SNAPSHOT_STDLIB_PATH]: entry(SNAPSHOT_STDLIB_PATH) },
  };
}

async function boot(manifest, opts = {}) {
  const base = pathToFileURL(`${dir}/`).href;
  const fetched = [];
  const fetchFn = async (url) => {
    fetched.push(url.slice(base.length));
    return new Response(readFileSync(fileURLToPath(url)));
  };
  const stages = [];
  const files = new VerifiedFiles(base, manifest, fetchFn);
  const python = await loadPython(files, manifest, base, (e) => stages.push(e.stage === "snapshot-fallback" ? `${e.stage}: ${e.reason}` : e.stage), opts);
  return { python, stages, fetched };
}

const TEXT = "How do I parse JSON with the stdlib? Überprüfung naïve café 東京";
let scratchIds = null;

test("boots from scratch: [CLS]-first ids as BigInt64Arrays, ranker steps refused before init", async () => {
  const { python, stages } = await boot(bundle(256), { useSnapshot: false });
  assert.equal(python.snapshot, false);
  assert.deepEqual(stages.filter((s) => !s.startsWith("verified")), ["pyodide-boot", "pyodide-ready", "tokenizer-ready"]);
  const [ids, mask, types] = python.encode(TEXT);
  assert.ok(ids instanceof BigInt64Array && mask instanceof BigInt64Array && types instanceof BigInt64Array);
  assert.equal(ids[0], 101n);
  assert.deepEqual(Array.from(mask), Array(ids.length).fill(1n));
  scratchIds = Array.from(ids);
  assert.ok(python.memoryBytes() > 1e6);
  assert.throws(() => python.ranker("fuse", []), /websem: unknown ranker step "fuse"; use one of init, initPartitioned, plan, finish, rank, render$/);
  assert.throws(() => python.ranker("plan", ["x", ""]), /websem: the ranker is not set up/);
});

test("restores a make_snapshot.mjs snapshot: same ids, no interpreter start, the snapshot's stdlib zip", async () => {
  const manifest = withSnapshot(bundle(256), 256);
  const { python, stages, fetched } = await boot(manifest);
  assert.equal(python.snapshot, true, stages.join("; "));
  assert.deepEqual(Array.from(python.encode(TEXT)[0]), scratchIds);
  // The zip of the members the snapshot has not loaded, not the whole one.
  assert.ok(fetched.includes(SNAPSHOT_STDLIB_PATH) && !fetched.includes(VENDOR.stdlib), fetched.join(", "));
  assert.ok(readFileSync(join(dir, SNAPSHOT_STDLIB_PATH)).length < readFileSync(join(dir, VENDOR.stdlib)).length);
});

test("a snapshot made for another max_length is not used: the boot falls back and still works", async () => {
  const manifest = withSnapshot(bundle(8), 8); // snapshot for 8 tokens, manifest says 256
  manifest.model.max_seq_length = 256;
  const { python, stages, fetched } = await boot(manifest);
  assert.equal(python.snapshot, false);
  assert.ok(stages.some((s) => s.includes("snapshot-fallback: the snapshot was made for max_length 8, the manifest says 256")), stages.join("; "));
  assert.deepEqual(Array.from(python.encode(TEXT)[0]), scratchIds);
  // The normal boot after it mounts the whole zip.
  assert.ok(fetched.includes(VENDOR.stdlib), fetched.join(", "));
});

test("a snapshot that fails its integrity check is refused, not skipped", async () => {
  const manifest = withSnapshot(bundle(256), 256);
  manifest.files[SNAPSHOT_PATH].sha256 = "0".repeat(64);
  await assert.rejects(boot(manifest), /websem: runtime\/pyodide-snapshot.bin failed its integrity check/);
});

test("a snapshot stdlib zip that fails its integrity check is refused, not skipped", async () => {
  const manifest = withSnapshot(bundle(256), 256);
  manifest.files[SNAPSHOT_STDLIB_PATH].sha256 = "0".repeat(64);
  await assert.rejects(boot(manifest), /websem: runtime\/pyodide-snapshot.stdlib.zip failed its integrity check/);
});
