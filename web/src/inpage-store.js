// websem in-page index storage: where createIndex (inpage.js) keeps the index it builds, so it
// survives a reload. The stored value is the index's export archive (bridge.inpage_export), one
// per index name, written whole after every change.
//
//   "opfs":      the Origin Private File System (navigator.storage.getDirectory()), file
//                websem-inpage/NAME.websem; a writable stream commits atomically on close().
//   "indexeddb": database "websem-inpage", object store "indexes", key NAME (where OPFS is
//                missing or refused, e.g. some private windows).
// Both are this origin's storage in this browser profile: nothing is sent anywhere. The browser
// may evict it under storage pressure unless the page was granted persistent storage.
import { WebsemError } from "./errors.js";

/** Storage backends, in the order "auto" tries them. */
export const BACKENDS = ["opfs", "indexeddb"];
const DIR = "websem-inpage";
const DB = "websem-inpage";
const STORE = "indexes";
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** `name` if it is a valid index name (it becomes a file name), else a WebsemError. */
export function checkName(name) {
  if (typeof name !== "string" || !NAME.test(name) || name.startsWith(".")) {
    throw new WebsemError(
      `index name ${JSON.stringify(name)} is not allowed; use 1 to 64 letters, digits, ".", "_" or "-", ` +
        'not starting with "." (default "default")',
    );
  }
  return name;
}

/**
 * The backend `persist` asks for: "opfs", "indexeddb", or null (not persisted). `persist` is
 * true/"auto" (the first of BACKENDS this runtime has), false, or a backend name. Where neither
 * exists (Node, Deno, edge runtimes), "auto" means null and an explicit backend is an error.
 */
export function chooseBackend(persist, scope = globalThis) {
  if (persist === false || persist === "none") return null;
  const have = {
    opfs: typeof scope.navigator?.storage?.getDirectory === "function",
    indexeddb: typeof scope.indexedDB?.open === "function",
  };
  if (persist === true || persist === undefined || persist === "auto") return BACKENDS.find((b) => have[b]) ?? null;
  if (!BACKENDS.includes(persist)) {
    throw new WebsemError(`persist ${JSON.stringify(persist)} is unknown; use true, false, "auto", ${BACKENDS.map((b) => `"${b}"`).join(", ")}`);
  }
  if (!have[persist]) {
    throw new WebsemError(`persist "${persist}" is not available in this runtime; use persist: false (keep the index in memory) or "auto"`);
  }
  return persist;
}

/**
 * The store of index `name` on `backend` ("opfs" falls back to "indexeddb" when the browser
 * refuses OPFS, e.g. a SecurityError), or null for backend null.
 * @returns {Promise<{backend: string, load(): Promise<Uint8Array|null>, save(bytes: Uint8Array): Promise<void>, clear(): Promise<void>}|null>}
 */
export async function openStore(backend, name = "default") {
  checkName(name);
  if (backend === null) return null;
  if (backend === "opfs") {
    try {
      return await opfsStore(name);
    } catch (e) {
      if (typeof globalThis.indexedDB?.open !== "function") throw storageError("opfs", e);
      return idbStore(name);
    }
  }
  return idbStore(name);
}

function storageError(backend, e) {
  return new WebsemError(
    `the browser refused ${backend} storage for the in-page index (${e?.message ?? e}); ` +
      "use createIndex(url, {persist: false}) to keep the index in memory only",
  );
}

async function opfsStore(name) {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle(DIR, { create: true });
  const file = `${name}.websem`;
  return {
    backend: "opfs",
    async load() {
      let handle;
      try {
        handle = await dir.getFileHandle(file);
      } catch (e) {
        if (e?.name === "NotFoundError") return null;
        throw storageError("opfs", e);
      }
      return new Uint8Array(await (await handle.getFile()).arrayBuffer());
    },
    async save(bytes) {
      try {
        const handle = await dir.getFileHandle(file, { create: true });
        // The stream writes to a swap file; close() replaces the old contents in one step, so a
        // reload during a save finds the previous index, never half of the new one.
        const writable = await handle.createWritable();
        await writable.write(bytes);
        await writable.close();
      } catch (e) {
        throw storageError("opfs", e);
      }
    },
    async clear() {
      try {
        await dir.removeEntry(file);
      } catch (e) {
        if (e?.name !== "NotFoundError") throw storageError("opfs", e);
      }
    },
  };
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function idbStore(name) {
  let db;
  try {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    db = await request(open);
  } catch (e) {
    throw storageError("indexeddb", e);
  }
  const tx = async (mode, fn) => {
    try {
      const t = db.transaction(STORE, mode);
      // A readwrite transaction is durable only once it completes.
      const done = new Promise((resolve, reject) => {
        t.oncomplete = resolve;
        t.onerror = () => reject(t.error);
        t.onabort = () => reject(t.error ?? new Error("transaction aborted"));
      });
      const result = await request(fn(t.objectStore(STORE)));
      await done;
      return result;
    } catch (e) {
      throw storageError("indexeddb", e);
    }
  };
  return {
    backend: "indexeddb",
    async load() {
      const value = await tx("readonly", (s) => s.get(name));
      return value == null ? null : new Uint8Array(value);
    },
    save: (bytes) => tx("readwrite", (s) => s.put(bytes, name)).then(() => {}),
    clear: () => tx("readwrite", (s) => s.delete(name)).then(() => {}),
  };
}
