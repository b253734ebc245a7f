// websem lexical shards of a partitioned index (index/lex/{j}.bin, docs/architecture.md
// "Bundle"): a range of the term table in code point order, each term's idf and postings with
// the chunk's length (decoded by lexical.js eachPosting):
//   b"WSLEX\x00\x00\x01" | u32 header_len | header JSON (space-padded to a multiple of 4)
//   | body: terms ("\n"-joined UTF-8) | idf f32[m] | offsets u32[m+1] | postings
import { WebsemError } from "./errors.js";

export const LEX_MAGIC = [0x57, 0x53, 0x4c, 0x45, 0x58, 0x00, 0x00, 0x01]; // b"WSLEX\x00\x00\x01"
export const LEX_SHARD_FORMAT = "websem-bm25-shard";
export const LEX_SHARD_FORMAT_VERSION = 1;
// What the term Map of a parsed shard costs per term beyond its bytes (strings, entries): an
// estimate, so the cache budget counts it.
const PER_TERM_BYTES = 64;

function bad(path, what) {
  return new WebsemError(`${path} ${what}; rebuild the bundle with \`websem build\``);
}

/**
 * Compare two strings by code point (the order Python sorts str in and the build splits the term
 * table in). JS `<` compares UTF-16 code units, which differs where a character above U+FFFF (a
 * surrogate pair) meets one in U+E000..U+FFFF: at the first differing unit, lift units from
 * U+E000 down below the surrogates' range and the surrogates above it.
 * @returns {number} < 0, 0 or > 0
 */
export function compareCodePoints(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/**
 * Parse the verified bytes of lexical shard `expect.shard`.
 *
 * @param {Uint8Array} bytes
 * @param {string} path the shard's bundle path (for messages)
 * @param {{shard: number, terms: number}} expect its number and term count (table.json)
 * @returns {{termIds: Map<string, number>, idf: Float32Array, offsets: Uint32Array,
 *   postings: Uint8Array, heldBytes: number}}
 */
export function parseLexShard(bytes, path, expect) {
  if (bytes.length < 12 || LEX_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw bad(path, "is not a websem lexical shard (bad magic bytes)");
  }
  const hlen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hlen)));
  } catch (e) {
    throw bad(path, `has a broken header (${e.message})`);
  }
  if (header.format !== LEX_SHARD_FORMAT || header.format_version !== LEX_SHARD_FORMAT_VERSION) {
    throw bad(path, `is format ${JSON.stringify(header.format)} version ${JSON.stringify(header.format_version)}, ` +
      `not ${LEX_SHARD_FORMAT} version ${LEX_SHARD_FORMAT_VERSION}`);
  }
  const m = header.n_terms;
  if (header.shard !== expect.shard || m !== expect.terms) {
    throw bad(path, `holds shard ${header.shard} (${m} terms) but the term table expects shard ${expect.shard} (${expect.terms} terms)`);
  }
  // Sections are 4-aligned relative to the body; copy the body once if the body itself is not.
  let body = bytes.subarray(12 + hlen);
  if (body.byteOffset % 4) body = body.slice();
  const sec = header.sections;
  const [to, tl] = sec.terms;
  const terms = tl ? new TextDecoder().decode(body.subarray(to, to + tl)).split("\n") : [];
  if (terms.length !== m) throw bad(path, `holds ${terms.length} terms, its header says ${m}`);
  const termIds = new Map();
  for (let i = 0; i < m; i++) termIds.set(terms[i], i);
  const idf = new Float32Array(body.buffer, body.byteOffset + sec.idf[0], m);
  const offsets = new Uint32Array(body.buffer, body.byteOffset + sec.offsets[0], m + 1);
  const [po, pl] = sec.postings;
  const postings = body.subarray(po, po + pl);
  if (offsets[m] > postings.length) throw bad(path, "is truncated");
  return { termIds, idf, offsets, postings, heldBytes: bytes.length + PER_TERM_BYTES * m };
}
