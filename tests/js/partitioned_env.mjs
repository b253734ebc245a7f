// Shared set-up for the node tests of a partitioned index (shards, ivf, lexshards, partitioned):
// a small partitioned bundle written here byte by byte from the contract (docs/architecture.md
// "Bundle"), served from memory by a fetch that logs requests and can fail on demand. The
// writers encode; the runtime's readers (web/src/*.js) decode; the expected values come from
// websem_text in Pyodide (BM25) or plain loops in Python (dense), never from the code under test.
import { createHash } from "node:crypto";
import { bootPython } from "./pyodide_env.mjs";

export const BASE = "https://bundle.test/_websem/";
const enc = new TextEncoder();
export const sha = (bytes) => createHash("sha256").update(bytes).digest("hex");

export function rng(seed) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** The value of float16 bits `h` (sign, exponent, mantissa; no NaN/Inf in these corpora). */
function half16(h) {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e ? (1 + m / 1024) * 2 ** (e - 15) : (m / 1024) * 2 ** -14;
  return h & 0x8000 ? -v : v;
}

function u32(values) {
  return new Uint8Array(Uint32Array.from(values).buffer);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function varints(out, v) {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/**
 * index/ivf/{list}.bin (v2): `rows` are float16 bits (Uint16Array) or int8 (Int8Array + `scales`),
 * written as records (int8: f32 scale + the row), `blockRows` rows a block.
 */
export function ivfBytes(list, chunks, dims, rows, scales = null, blockRows = 2) {
  const dtype = scales ? 1 : 0;
  const head = concat([enc.encode("WSIVF\x00\x00\x02"), u32([chunks.length, dims, list, dtype, blockRows]), u32(chunks)]);
  const records = [];
  for (let r = 0; r < chunks.length; r++) {
    const row = rows.subarray(r * dims, (r + 1) * dims);
    if (scales) records.push(new Uint8Array(Float32Array.from([scales[r]]).buffer));
    records.push(new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
  }
  return concat([head, ...records]);
}

/** The sha256 digests (32 bytes each) of the blocks of rows shard `rowsFile` (ivfBytes). */
export function blockHashes(rowsFile) {
  const dv = new DataView(rowsFile.buffer, rowsFile.byteOffset, rowsFile.byteLength);
  const [count, dims, , dtype, blockRows] = [8, 12, 16, 20, 24].map((o) => dv.getUint32(o, true));
  const rec = dtype === 1 ? 4 + dims : 2 * dims;
  const at = 28 + 4 * count;
  const out = [];
  for (let k = 0; k * blockRows < count; k++) {
    const block = rowsFile.subarray(at + k * blockRows * rec, at + Math.min((k + 1) * blockRows, count) * rec);
    out.push(createHash("sha256").update(block).digest());
  }
  return concat(out.map((b) => new Uint8Array(b)));
}

/**
 * index/code/{list}.bin (v2): `codes` = ceil(dims / 8) bytes a row (sign bits, little-endian),
 * then the sha256 of each block of the list's rows shard `rowsFile` (whose block_rows it repeats).
 */
export function codesBytes(list, chunks, dims, codes, rowsFile) {
  const blockRows = new DataView(rowsFile.buffer, rowsFile.byteOffset).getUint32(24, true);
  return concat([enc.encode("WSCOD\x00\x00\x02"), u32([chunks.length, dims, list, blockRows]), u32(chunks), codes,
    blockHashes(rowsFile)]);
}

/** The sign-bit codes of `count` stored rows (float16 bits or int8): bit j set when row[j] > 0. */
export function signCodes(rows, dims, count) {
  const width = (dims + 7) >> 3;
  const out = new Uint8Array(count * width);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dims; j++) {
      const v = rows[r * dims + j];
      const positive = rows instanceof Uint16Array ? (v & 0x8000) === 0 && (v & 0x7fff) !== 0 : v > 0;
      if (positive) out[r * width + (j >> 3)] |= 1 << (j & 7);
    }
  }
  return out;
}

/**
 * index/lex/{shard}.bin of `terms` ([{term, idf, postings: [[chunk, tf, dl], ...]}], sorted by
 * code point), `first` the global index of its first term.
 */
export function lexShardBytes(shard, first, terms) {
  const text = enc.encode(terms.map((t) => t.term).join("\n"));
  const pad4 = (n) => (n + 3) & ~3;
  const postings = [];
  const offsets = [0];
  for (const t of terms) {
    let prev = -1;
    for (const [c, tf, dl] of t.postings) {
      varints(postings, (c - prev - 1) * 2 + (tf === 1 ? 1 : 0));
      if (tf >= 2) varints(postings, tf - 2);
      varints(postings, dl);
      prev = c;
    }
    offsets.push(postings.length);
  }
  const m = terms.length;
  const idfAt = pad4(text.length);
  const offAt = idfAt + 4 * m;
  const postAt = offAt + 4 * (m + 1);
  const header = {
    format: "websem-bm25-shard", format_version: 1, shard, first_term: first, n_terms: m,
    sections: { terms: [0, text.length], idf: [idfAt, 4 * m], offsets: [offAt, 4 * (m + 1)], postings: [postAt, postings.length] },
  };
  let h = JSON.stringify(header);
  h += " ".repeat(pad4(h.length) - h.length);
  const body = new Uint8Array(postAt + postings.length);
  body.set(text, 0);
  body.set(new Uint8Array(Float32Array.from(terms.map((t) => t.idf)).buffer), idfAt);
  body.set(u32(offsets), offAt);
  body.set(postings, postAt);
  return concat([enc.encode("WSLEX\x00\x00\x01"), u32([h.length]), enc.encode(h), body]);
}

/**
 * A fetch over `files` (Map path -> bytes) under BASE that logs every request (`log`: paths;
 * `ranges`: [path, Range header or null]) and fails as `faults` says: path -> "reject" |
 * "reject-once" | HTTP status number | `${status}-once` | "short" (a 206 one byte short) |
 * "tamper" (a 206 with its last byte flipped). It answers a single `Range: bytes=a-b` with 206 +
 * Content-Range (as `websem serve` does) unless `served.honourRanges` is set false (then 200 and
 * the whole file, as a server that ignores Range).
 */
export function memoryFetch(files, manifest) {
  const log = [];
  const ranges = [];
  const faults = new Map();
  const served = { log, ranges, faults, honourRanges: true };
  served.fetchFn = async (url, init = undefined) => {
    const path = String(url).slice(BASE.length);
    const range = new Headers(init?.headers).get("range");
    log.push(path);
    ranges.push([path, range]);
    const fault = faults.get(path);
    if (fault !== undefined && fault !== "short" && fault !== "tamper") {
      if (String(fault).endsWith("-once")) faults.delete(path);
      const kind = String(fault).replace("-once", "");
      if (kind === "reject") throw new TypeError("network error");
      return new Response("fault", { status: Number(kind) });
    }
    if (path === "manifest.json") return new Response(JSON.stringify(manifest));
    const bytes = files.get(path);
    if (!bytes) return new Response(null, { status: 404 });
    const m = range && served.honourRanges ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (!m) return new Response(bytes);
    const [a, b] = [Number(m[1]), Math.min(Number(m[2]), bytes.length - 1)];
    if (a > b) return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${bytes.length}` } });
    let body = bytes.slice(a, b + 1);
    if (fault === "short") body = body.subarray(0, body.length - 1);
    if (fault === "tamper") body[body.length - 1] ^= 1;
    return new Response(body, { status: 206, headers: { "Content-Range": `bytes ${a}-${b}/${bytes.length}` } });
  };
  return served;
}

export function fileTable(files) {
  const table = {};
  for (const [path, bytes] of files) table[path] = { sha256: sha(bytes), size: bytes.length };
  return table;
}

const TEXTS = [
  "The boundary layer thickens downstream of the leading edge of a flat plate.",
  "Heat transfer in a laminar boundary layer at high Mach number.",
  "Skin friction and heat transfer were measured; the heat flux was higher.",
  "Cutting tools and subroutines for the organization of machining.",
  "Boundary conditions for the heat equation on a cylinder.",
  "Supersonic flow over a wedge produces an oblique shock wave.",
  "Shock wave boundary layer interaction causes separation.",
  "Wind tunnel tests of a swept wing at transonic speeds.",
  "The wing flutter speed depends on the torsional stiffness.",
  "Hypersonic heat transfer to a blunt body stagnation point.",
  "Panel flutter of a heated plate in supersonic flow.",
  "Turbulent mixing downstream of a rearward facing step.",
  "Stagnation point heat flux measured in a shock tube.",
  "Aeroelastic models of heated high speed aircraft structures.",
  "Transition of the boundary layer on a cone at Mach six.",
  "Organization of computer subroutines for structural analysis.",
  "Oblique shock reflection from a flat plate boundary layer.",
  "Flutter of cylindrical shells in supersonic flow.",
  "Wind tunnel interference on a swept wing model.",
  "Laminar separation bubble on an airfoil leading edge.",
  "Heat shield ablation at hypersonic reentry speeds.",
  "Thin airfoil theory for a flapped wing section.",
  "Turbulent boundary layer skin friction at high Reynolds number.",
  "Cutting speed effects on machining subroutines, briefly.",
  `${"Padding words about nothing in particular. ".repeat(7)}The shock tube is finally mentioned past the snippet limit.`,
];
// chunk -> document (documents hold 1 to 4 consecutive chunks), and each document's meta.
const CHUNK_DOC = [0, 0, 1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 7, 7, 7, 8, 9, 9, 10, 11, 12, 13, 13, 14, 15];
const SECTIONS = ["guide", "reference", "howto"];
const TAGS = ["aero", "heat", "flow", "code"];

/** The documents' {id, title, url, meta} (ids "d0".., meta from the index: deterministic). */
export function corpusDocs() {
  const n = CHUNK_DOC.at(-1) + 1;
  return Array.from({ length: n }, (_, d) => ({
    id: `d${d}`,
    title: `Doc ${d}`,
    url: `d${d}.html`,
    meta: { section: SECTIONS[d % 3], tags: d % 4 === 3 ? [TAGS[d % 4], TAGS[0]] : [TAGS[d % 4]] },
  }));
}

/**
 * A partitioned bundle of TEXTS: `nlist` lists (chunk c goes to a list picked by `rng`), `nprobe`
 * probed, float16 or int8 rows, lexical shards of `termsPerShard` terms, fragments of `docsPerFragment`.
 * Returns what tests need: the files, the manifest, the search table, and the flat data for the
 * reference computations (vectors as float16 bits or int8 + scales, lexical.bin bytes).
 */
export async function partitionedCorpus({ nlist = 4, nprobe = 2, dtype = "float16", dims = 8, seed = 7,
  termsPerShard = 5, docsPerFragment = 4, code = "rows", rerank = 3, blockRows = 2 } = {}) {
  const { pyodide } = await bootPython();
  const r = rng(seed);
  const n = TEXTS.length;
  const docs = corpusDocs();
  const chunks = TEXTS.map((text, c) => ({ doc: CHUNK_DOC[c], text, anchor: c % 2 ? `#c${c}` : "", start: 0, end: text.length }));
  // float16 rows: random bits with exponents 11..16 (|v| in [2^-4, 4)); int8 rows: -127..127.
  const half = () => ((r() < 0.5 ? 0x8000 : 0) | ((11 + Math.floor(r() * 6)) << 10) | Math.floor(r() * 1024));
  const rows16 = Uint16Array.from({ length: n * dims }, half);
  const rows8 = Int8Array.from({ length: n * dims }, () => Math.floor(r() * 255) - 127);
  const scales = Float32Array.from({ length: n }, () => Math.fround(0.001 + r() / 64));
  // Exact tie: chunk 7 repeats chunk 3 (another document).
  for (let j = 0; j < dims; j++) {
    rows16[7 * dims + j] = rows16[3 * dims + j];
    rows8[7 * dims + j] = rows8[3 * dims + j];
  }
  scales[7] = scales[3];
  const centroids = Uint16Array.from({ length: nlist * dims }, half);
  const assign = Int32Array.from({ length: n }, () => Math.floor(r() * nlist));
  assign[0] = nlist - 1; // some list beyond 0 is non-empty; list sizes may be 0
  const files = new Map();
  const sizes = [];
  const order = []; // order[l]: list l's chunks in list order
  for (let l = 0; l < nlist; l++) {
    // Rows in list order: not chunk order (the build orders them by vector-space locality);
    // here by the first stored component, then chunk.
    const first = (c) => (dtype === "int8" ? rows8[c * dims] : half16(rows16[c * dims]));
    const members = [...assign.keys()].filter((c) => assign[c] === l).sort((a, b) => first(a) - first(b) || a - b);
    sizes.push(members.length);
    order.push(members);
    const pick = (src) => {
      const out = new src.constructor(members.length * dims);
      members.forEach((c, i) => out.set(src.subarray(c * dims, (c + 1) * dims), i * dims));
      return out;
    };
    const rowsFile = dtype === "int8"
      ? ivfBytes(l, members, dims, pick(rows8), members.map((c) => scales[c]), blockRows)
      : ivfBytes(l, members, dims, pick(rows16), null, blockRows);
    files.set(`index/ivf/${l}.bin`, rowsFile);
    if (code === "binary") {
      const stored = dtype === "int8" ? pick(rows8) : pick(rows16);
      files.set(`index/code/${l}.bin`, codesBytes(l, members, dims, signCodes(stored, dims, members.length), rowsFile));
    }
  }
  // Lexical: the flat index websem_text builds, re-cut into shards (with each chunk's length).
  pyodide.globals.set("texts_json", JSON.stringify(TEXTS));
  const lex = JSON.parse(pyodide.runPython(`
import json
from websem_text.analyze import Analyzer
from websem_text.bm25 import LexicalIndex
_a = Analyzer()
_ix = LexicalIndex.build([_a.terms(t) for t in json.loads(texts_json)], analyzer=_a.config())
_terms = sorted(_ix.terms)
json.dumps({"k1": _ix.k1, "b": _ix.b, "avgdl": _ix.avgdl, "analyzer": _ix.analyzer, "lengths": list(_ix.lengths),
            "terms": [{"term": t, "idf": float(_ix.idf[_ix.term_ids[t]]),
                       "postings": [list(p) for p in zip(*_ix.postings_of(_ix.term_ids[t]))]} for t in _terms]})
`));
  const lexBytes = new Uint8Array(pyodide.runPython("_ix.to_bytes()").toJs());
  const shards = [];
  for (let first = 0, j = 0; first < lex.terms.length; first += termsPerShard, j++) {
    const part = lex.terms.slice(first, first + termsPerShard).map((t) => ({
      ...t, postings: t.postings.map(([c, tf]) => [c, tf, lex.lengths[c]]),
    }));
    files.set(`index/lex/${j}.bin`, lexShardBytes(j, first, part));
    shards.push([part[0].term, part.length]);
  }
  const fragments = [];
  for (let d0 = 0, f = 0; d0 < docs.length; d0 += docsPerFragment, f++) {
    fragments.push(d0);
    const group = docs.slice(d0, d0 + docsPerFragment).map((doc, i) => ({
      ...doc, chunks: chunks.filter((c) => c.doc === d0 + i).map(({ anchor, start, end, text }) => ({ anchor, start, end, text })),
    }));
    files.set(`index/frag/${f}.json`, enc.encode(JSON.stringify({ first: d0, docs: group })));
  }
  const docmap = [];
  for (let d = 0; d < docs.length; d++) docmap.push(CHUNK_DOC.indexOf(d));
  docmap.push(n);
  const facets = {};
  for (const field of ["section", "tags"]) {
    facets[field] = {};
    docs.forEach((doc, d) => [doc.meta[field]].flat().forEach((v) => (facets[field][v] ??= []).push(d)));
  }
  const table = {
    format: "websem-partitioned", format_version: 2, chunks: n, docs: docs.length, dims, vector_dtype: dtype,
    ivf: { nlist, nprobe, sizes },
    lexical: { format: "websem-bm25", k1: lex.k1, b: lex.b, avgdl: lex.avgdl, n_chunks: n, n_terms: lex.terms.length,
      analyzer: lex.analyzer, fields: {}, shards },
    fragments,
    facets,
  };
  files.set("index/part/table.json", enc.encode(JSON.stringify(table)));
  files.set("index/part/centroids.bin", new Uint8Array(centroids.buffer));
  files.set("index/part/docmap.bin", u32(docmap));
  const search = JSON.parse(pyodide.runPython("import json; from websem_text.rules import search_table; json.dumps(search_table(facets=['section', 'tags']))"));
  search.n = 6; // smaller than the corpus, so hybrid fuses cut lists
  const manifest = {
    format: "websem-bundle", format_version: 2,
    index: {
      layout: "partitioned", docs: docs.length, chunks: n, dims, vector_dtype: dtype,
      files: { table: "index/part/table.json", centroids: "index/part/centroids.bin", docmap: "index/part/docmap.bin" },
      shards: { ivf: "index/ivf/{}.bin", lexical: "index/lex/{}.bin", fragments: "index/frag/{}.json",
        ...(code === "binary" ? { codes: "index/code/{}.bin" } : {}) },
      ivf: { nlist, nprobe, block_rows: blockRows, ...(code === "binary" ? { code, rerank } : {}) },
      lexical: { shards: shards.length }, fragments: fragments.length,
    },
    search,
    files: fileTable(files),
  };
  return { files, manifest, search, docs, chunks, rows16, rows8, scales, centroids, assign, order, lexBytes, dims, pyodide };
}
