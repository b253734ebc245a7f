// The in-page index's Python side (websem_text.bridge inpage_*) inside real Pyodide under Node,
// with a built bundle's own py/ files: runtime.python_files first, then
// runtime.extract_python_files (bs4, markdown-it-py, ...) as the page writes them before reading
// HTML or Markdown. tests/test_inpage.py compares the output with CPython's.
//
// Usage: node tests/js/pyodide_inpage.mjs JOB_JSON
//   JOB_JSON: {"bundle": "path", "items": [{"item": {...}, "data": hex | null}], "vectors": {id: hex float32}}
//   stdout:   {"prepared": [...], "files": {path: sha256}, "export": sha256, "imported": n,
//              "imported_vectors": sha256, "modules": [...]}
// The vectors are held here, as the page's worker holds them: inpage_add returns each document's
// stored rows, inpage_files_list / inpage_export read them back from a Uint8Array.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pyodideDir = join(repo, "web", "node_modules", "pyodide");
const { loadPyodide } = await import(join(pyodideDir, "pyodide.mjs"));

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const manifestText = readFileSync(join(job.bundle, "manifest.json"), "utf8");
const manifest = JSON.parse(manifestText);
const pyodide = await loadPyodide({ indexURL: `${pyodideDir}/`, stdout: () => {}, stderr: (s) => process.stderr.write(`${s}\n`) });

function write(paths) {
  for (const rel of paths) {
    const dest = `/websem/${rel}`;
    pyodide.FS.mkdirTree(dest.slice(0, dest.lastIndexOf("/")));
    pyodide.FS.writeFile(dest, new Uint8Array(readFileSync(join(job.bundle, rel))));
  }
}
write(manifest.runtime.python_files);
write(["model/tokenizer.json"]);
pyodide.runPython("import sys; sys.path.insert(0, '/websem/py')");
const bridge = pyodide.pyimport("websem_text.bridge");
bridge.setup(manifest.model.max_seq_length);
bridge.inpage_reset(manifestText);

const hex = (h) => Uint8Array.from(Buffer.from(h, "hex"));
const sha = (b) => createHash("sha256").update(b).digest("hex");
let extractWritten = false;
const prepared = [];
const stored = new Map();
for (const { item, data } of job.items) {
  const name = item.name ?? "";
  if (!extractWritten && /\.(html?|md|markdown)$/i.test(name)) {
    write(manifest.runtime.extract_python_files);
    extractWritten = true;
  }
  const res = JSON.parse(bridge.inpage_prepare(JSON.stringify(item), data === null ? null : hex(data)));
  prepared.push(res);
  if (res.skipped === null) {
    const rows = bridge.inpage_add(res.id, hex(job.vectors[res.id]));
    stored.set(res.id, rows.toJs());
    rows.destroy();
  }
}
const order = JSON.parse(bridge.inpage_doc_ids());
const vectorsBin = Buffer.concat(order.map((id) => stored.get(id)));
const files = {};
const list = bridge.inpage_files_list(new Uint8Array(vectorsBin));
for (const pair of list.toJs()) files[pair[0]] = sha(pair[1]);
list.destroy();
const exported = bridge.inpage_export(new Uint8Array(vectorsBin)).toJs();
bridge.inpage_reset(manifestText);
const back = bridge.inpage_import(exported);
const restored = back.toJs({ dict_converter: Object.fromEntries });
back.destroy();
const imported = JSON.parse(restored.docs).length;
const modules = pyodide.runPython("import sys; sorted(m for m in sys.modules if m.split('.')[0] in ('bs4', 'markdown_it'))").toJs();
process.stdout.write(JSON.stringify({ prepared, files, export: sha(exported), imported, imported_vectors: sha(restored.vectors), modules }));
