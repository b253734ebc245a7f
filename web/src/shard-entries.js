// websem shard entries: the manifest.json entries of a partitioned bundle's shard files, held
// compactly once the manifest is parsed.
//
// A partitioned bundle lists every shard in manifest.files (sha256 + size, the integrity rule),
// about 31,000 files at 1M chunks: as parsed JSON that is one object, one path string and one
// 64-character hex string per file, several MB of the tab's heap for as long as the engine
// lives. The entries whose path is a shard template (manifest.index.shards: "index/ivf/{}.bin"
// ...) with a plain shard number are moved here instead, per template, as a Float64Array of
// sizes and a Uint8Array of raw 32-byte digests indexed by the shard number; the parsed objects
// are dropped. `get(path)` gives back the same `{sha256, size}` the manifest listed, so a shard
// is still verified against manifest.json before use (bundle.js manifestEntry). Entries that do
// not fit the compact form (another path, a malformed sha256 or size, extra fields) stay in
// manifest.files as they were, so every check behaves exactly as on the parsed manifest.

const SHA256_HEX = /^[0-9a-f]{64}$/;
const NUMBER = /^(0|[1-9][0-9]{0,8})$/;

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

function hex(bytes, at) {
  let out = "";
  for (let i = at; i < at + 32; i++) out += HEX[bytes[i]];
  return out;
}

/** The shard number of `path` under template `t` ({prefix, suffix}), or -1. */
function numberOf(t, path) {
  if (path.length <= t.prefix.length + t.suffix.length || !path.startsWith(t.prefix) || !path.endsWith(t.suffix)) return -1;
  const middle = path.slice(t.prefix.length, path.length - t.suffix.length);
  return NUMBER.test(middle) ? Number(middle) : -1;
}

/** Whether `entry` is exactly `{sha256: 64 lowercase hex, size: non-negative integer}`. */
function compactable(entry) {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) return false;
  const keys = Object.keys(entry);
  return keys.length === 2 && typeof entry.sha256 === "string" && SHA256_HEX.test(entry.sha256) &&
    Number.isSafeInteger(entry.size) && entry.size >= 0;
}

export class ShardEntries {
  /** @param {string[]} templates shard path templates, each with one "{}" */
  constructor(templates) {
    this.templates = [...new Set(templates)].map((t) => {
      const at = t.indexOf("{}");
      return { prefix: t.slice(0, at), suffix: t.slice(at + 2), sizes: new Float64Array(0), digests: new Uint8Array(0) };
    });
    this.count = 0;
  }

  /**
   * Moves the shard entries of `manifest.files` into a ShardEntries (a non-enumerable
   * `manifest.shardEntries`: structured clones and JSON of the manifest leave it out) and
   * replaces `manifest.files` by a new object holding the other entries. A no-op for a manifest
   * without shard templates (a flat bundle).
   * @returns {ShardEntries|null}
   */
  static take(manifest) {
    const shards = manifest?.index?.shards;
    const files = manifest?.files;
    if (shards === null || typeof shards !== "object" || files === null || typeof files !== "object") return null;
    const templates = Object.values(shards).filter((t) => typeof t === "string" && t.indexOf("{}") >= 0 &&
      t.indexOf("{}") === t.lastIndexOf("{}"));
    if (!templates.length) return null;
    const table = new ShardEntries(templates);
    // Pass 1: which entries move, and each template's highest shard number.
    const moved = [];
    const highest = new Float64Array(table.templates.length).fill(-1);
    for (const [path, entry] of Object.entries(files)) {
      if (!compactable(entry)) continue;
      for (let k = 0; k < table.templates.length; k++) {
        const n = numberOf(table.templates[k], path);
        if (n < 0) continue;
        moved.push([path, k, n]);
        if (n > highest[k]) highest[k] = n;
        break;
      }
    }
    // The arrays are indexed by shard number: a template whose numbers are sparse (a hand-made
    // manifest listing shard 10^8) keeps its entries in manifest.files instead.
    const counts = new Float64Array(table.templates.length);
    for (const [, k] of moved) counts[k]++;
    const dense = table.templates.map((_, k) => highest[k] + 1 <= 4 * counts[k] + 64);
    table.templates.forEach((t, k) => {
      if (!dense[k]) return;
      t.sizes = new Float64Array(highest[k] + 1).fill(-1); // -1: no such shard listed
      t.digests = new Uint8Array(32 * (highest[k] + 1));
    });
    const gone = new Set();
    for (const [path, k, n] of moved) {
      if (!dense[k]) continue;
      const t = table.templates[k];
      const { sha256, size } = files[path];
      t.sizes[n] = size;
      for (let i = 0; i < 32; i++) t.digests[32 * n + i] = parseInt(sha256.slice(2 * i, 2 * i + 2), 16);
      gone.add(path);
    }
    if (!gone.size) return null;
    table.count = gone.size;
    const kept = {};
    for (const [path, entry] of Object.entries(files)) if (!gone.has(path)) kept[path] = entry;
    manifest.files = kept;
    Object.defineProperty(manifest, "shardEntries", { value: table, enumerable: false, configurable: true, writable: true });
    return table;
  }

  /** The manifest's `{sha256, size}` for shard `path`, or undefined when it listed none. */
  get(path) {
    if (typeof path !== "string") return undefined;
    for (const t of this.templates) {
      const n = numberOf(t, path);
      if (n < 0) continue;
      if (n >= t.sizes.length || t.sizes[n] < 0) return undefined;
      return { sha256: hex(t.digests, 32 * n), size: t.sizes[n] };
    }
    return undefined;
  }

  /** Bytes the table holds (sizes and digests). */
  get heldBytes() {
    return this.templates.reduce((n, t) => n + t.sizes.byteLength + t.digests.byteLength, 0);
  }
}
