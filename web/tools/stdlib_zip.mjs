// Pyodide standard-library zip helpers shared by the build tools (stdlib_modules.mjs, which
// measures what the trimmed zip keeps, and make_snapshot.mjs, which writes the zip a snapshot
// restore mounts): which zip members the loaded modules came from, and a zip of some members.

/**
 * Python source defining `_websem_loaded_members()`: the sorted members of the stdlib zip on
 * sys.path that a module in sys.modules came from. Frozen modules (os, codecs, ...) need no zip
 * member to import, but their __file__ points into the zip: they count as loaded too. Imports
 * only sys, which is always loaded, so calling it loads nothing new.
 */
export const LOADED_MEMBERS_PY = `
def _websem_loaded_members():
    import sys
    zips = [p for p in sys.path if p.endswith(".zip")]
    found = set()
    for mod in list(sys.modules.values()):
        spec = getattr(mod, "__spec__", None)
        for origin in (getattr(spec, "origin", None), getattr(mod, "__file__", None)):
            for z in zips:
                if isinstance(origin, str) and origin.startswith(z + "/"):
                    found.add(origin[len(z) + 1:])
    return sorted(found)
`;

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/**
 * The zip of the members of `zip` (bytes) for which `keep(name)` is true, in the source's order:
 * each member's local header and data are copied byte for byte and the central directory is
 * rewritten with the new offsets. For a zip that Python's zipfile wrote (build/stdlib.py
 * write_trimmed: names sorted, fixed times) the result is the very bytes write_trimmed would
 * write for the kept members (tests/test_stdlib.py checks it), so the same inputs give the same
 * bytes. Members with a data descriptor, ZIP64 archives and multi-disk archives are refused:
 * neither Pyodide's python_stdlib.zip nor write_trimmed produces them.
 *
 * @returns {{bytes: Uint8Array, names: string[]}}
 */
export function zipSubset(zip, keep) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let eocd = -1;
  for (let at = zip.byteLength - 22; at >= Math.max(0, zip.byteLength - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw new Error("websem: not a zip file (no end-of-central-directory record); pass Pyodide's python_stdlib.zip");
  const entries = view.getUint16(eocd + 10, true);
  const cdOffset = view.getUint32(eocd + 16, true);
  if (view.getUint16(eocd + 4, true) !== 0 || entries === 0xffff || cdOffset === 0xffffffff) {
    throw new Error("websem: multi-disk and ZIP64 archives are not supported; pass Pyodide's python_stdlib.zip");
  }
  const decoder = new TextDecoder();
  const locals = [];
  const centrals = [];
  const names = [];
  let size = 0;
  let at = cdOffset;
  for (let i = 0; i < entries; i++) {
    if (view.getUint32(at, true) !== CENTRAL) throw new Error(`websem: zip central directory entry ${i} is corrupt`);
    const flags = view.getUint16(at + 8, true);
    const compressed = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const recordLength = 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    const offset = view.getUint32(at + 42, true);
    const name = decoder.decode(zip.subarray(at + 46, at + 46 + nameLength));
    if (keep(name)) {
      if (flags & 8) throw new Error(`websem: zip member ${name} has a data descriptor, which is not supported`);
      if (view.getUint32(offset, true) !== LOCAL) throw new Error(`websem: zip member ${name} has no local header at ${offset}`);
      const localLength = 30 + view.getUint16(offset + 26, true) + view.getUint16(offset + 28, true) + compressed;
      const central = zip.slice(at, at + recordLength);
      new DataView(central.buffer).setUint32(42, size, true);
      locals.push(zip.subarray(offset, offset + localLength));
      centrals.push(central);
      names.push(name);
      size += localLength;
    }
    at += recordLength;
  }
  const cdSize = centrals.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(size + cdSize + 22);
  let w = 0;
  for (const part of [...locals, ...centrals]) {
    out.set(part, w);
    w += part.byteLength;
  }
  const end = new DataView(out.buffer, w, 22);
  end.setUint32(0, EOCD, true);
  end.setUint16(8, names.length, true);
  end.setUint16(10, names.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, size, true);
  return { bytes: out, names };
}
