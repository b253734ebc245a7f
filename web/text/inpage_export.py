"""The in-page index's export archive: written by ``InPageIndex.export`` (inpage.py), read back by
``InPageIndex.load_export`` and by `websem query BUNDLE --index EXPORT` (web/query.py).

One uncompressed tar archive, deterministic (same documents, same bytes)::

    websem-index.json   format, format_version, the model (id, sha256, dims, max_seq_length),
                        the manifest's ``index`` section and ``search`` table, and every other
                        member's sha256 and size
    index/chunks.json, index/docs.json, index/lexical.bin, index/vectors.bin
                        the files `websem build` writes for the same documents
    index/state.json    what adding documents later needs besides them: each document's raw
                        title, where it came from, its body mark

:func:`write_tar` writes it into one buffer of its final size, from members given as functions
that produce their bytes in pieces: each member is produced twice (once hashed, for the header
file, once written), so no whole ``chunks.json`` or second copy of the archive is ever held
(Pyodide's heap keeps its high-water mark for good). The bytes equal those ``tarfile`` writes
for the same members (tests/test_inpage.py). Stdlib only.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping

from .chunk import Chunk
from .errors import WebsemError
from .extract import Document
from .inpage_rows import Entry

__all__ = ["EXPORT_FORMAT", "EXPORT_META", "EXPORT_VERSION", "STATE_FILE", "entries_from_export", "read_export",
           "tar_parts", "write_tar"]

EXPORT_FORMAT = "websem-index"
EXPORT_VERSION = 1
EXPORT_META = "websem-index.json"
STATE_FILE = "index/state.json"
INDEX_FILES = ("index/chunks.json", "index/docs.json", "index/lexical.bin", "index/vectors.bin")

Producer = Callable[[], Iterable[bytes]]


def _tar_header(name: str, size: int) -> bytes:
    """The header block(s) ``tarfile`` (PAX format) writes for a regular file: mode 0644,
    mtime 0, no owner."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def _layout(meta: dict, members: Mapping[str, Producer]) -> tuple[bytes, list[tuple[str, bytes, int]], int]:
    """The header file's bytes (``meta`` plus every member's sha256 and size: each member is
    produced once here), each file's ``(name, tar header, size)`` in archive order, and the
    archive's size."""
    table = {}
    for rel in sorted(members):
        digest, size = hashlib.sha256(), 0
        for part in members[rel]():
            digest.update(part)
            size += len(part)
        table[rel] = {"sha256": digest.hexdigest(), "size": size}
    head = json.dumps({**meta, "files": table}, indent=1, ensure_ascii=False).encode("utf-8")
    layout = [(EXPORT_META, _tar_header(EXPORT_META, len(head)), len(head))]
    layout += [(rel, _tar_header(rel, table[rel]["size"]), table[rel]["size"]) for rel in sorted(members)]
    end = sum(len(h) + -(-n // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE for _, h, n in layout) + 2 * tarfile.BLOCKSIZE
    end += -end % tarfile.RECORDSIZE  # tarfile pads the archive to whole records
    return head, layout, end


def write_tar(meta: dict, members: Mapping[str, Producer]) -> bytearray:
    """The export archive: ``meta`` (the header file's fields, ``files`` added: every member's
    sha256 and size) first, then ``members`` in name order, each a function giving its bytes
    in pieces (called twice). A ``bytearray`` of exactly the archive's size."""
    head, layout, end = _layout(meta, members)
    out = bytearray(end)  # zero-filled: the padding and end-of-archive blocks are NULs already
    view, at = memoryview(out), 0
    for rel, header, size in layout:
        view[at:at + len(header)] = header
        at += len(header)
        start = at
        for part in [head] if rel == EXPORT_META else members[rel]():
            view[at:at + len(part)] = part
            at += len(part)
        if at - start != size:
            raise WebsemError(f"websem: {rel} changed while the index was exported; export it again")
        at += -size % tarfile.BLOCKSIZE
    view.release()
    return out


def tar_parts(meta: dict, members: Mapping[str, Producer], external: Iterable[str]) -> tuple[int, list[list]]:
    """``write_tar``'s archive for a caller that assembles it: ``(size, parts)``, parts
    ``[offset, bytes]`` (headers and the members not in ``external``, adjacent ones joined) and
    ``[offset, name, size]`` (an ``external`` member: the caller writes its bytes there). Every
    other byte of the archive is NUL. The large members need never be held here whole."""
    head, layout, end = _layout(meta, members)
    external = set(external)
    parts: list[list] = []
    at = 0

    def put(data: bytes) -> None:
        if parts and len(parts[-1]) == 2 and parts[-1][0] + len(parts[-1][1]) == at:
            parts[-1][1] += data
        else:
            parts.append([at, bytearray(data)])

    for rel, header, size in layout:
        put(header)
        at += len(header)
        pad = -size % tarfile.BLOCKSIZE
        if rel in external:
            parts.append([at, rel, size])
            at += size + pad
            continue
        data = head if rel == EXPORT_META else b"".join(members[rel]())
        if len(data) != size:
            raise WebsemError(f"websem: {rel} changed while the index was exported; export it again")
        put(data + bytes(pad))
        at += size + pad
    return end, [[p[0], bytes(p[1])] if len(p) == 2 else p for p in parts]


def read_export(data: bytes, *, model_sha256: str | None = None, model_id: str = "") -> tuple[dict, dict[str, bytes]]:
    """``(websem-index.json, {path: bytes})`` of an exported index, every file checked against
    its sha256; with ``model_sha256``, an index made with another model is refused."""
    try:
        with tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:") as tar:
            files = {}
            for m in tar.getmembers():
                if m.isfile():
                    f = tar.extractfile(m)
                    files[m.name] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError) as e:
        raise WebsemError(f"websem: the data is not an exported websem index ({e}); pass a file written by "
                          "the page's export()") from None
    try:
        meta = json.loads(files.pop(EXPORT_META))
    except (KeyError, ValueError):
        raise WebsemError(f"websem: the archive has no valid {EXPORT_META}, so it is not an exported websem "
                          "index; pass a file written by the page's export()") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise WebsemError(f"websem: {EXPORT_META} has format {got!r}, "
                          f"expected {EXPORT_FORMAT!r}; pass a file written by the page's export()")
    if meta.get("format_version") != EXPORT_VERSION:
        raise WebsemError(f"websem: exported index format_version {meta.get('format_version')!r} is not supported "
                          f"(this websem reads {EXPORT_VERSION}); export it again with this version")
    model = meta.get("model") or {}
    if model_sha256 is not None and model.get("sha256") != model_sha256:
        raise WebsemError(f"websem: the exported index was made with model {model.get('id') or '?'} "
                          f"(sha256 {str(model.get('sha256'))[:12]}), not with this bundle's model "
                          f"{model_id or '?'} (sha256 {model_sha256[:12]}); use it with a bundle of that model, "
                          "or index the documents again with this one")
    table = meta.get("files") or {}
    for rel, want in table.items():
        got = files.get(rel)
        if got is None or hashlib.sha256(got).hexdigest() != want.get("sha256") or len(got) != want.get("size"):
            raise WebsemError(f"websem: {rel} of the exported index is missing or does not match its sha256; "
                              "the file is damaged, export it again")
    for rel in INDEX_FILES:
        if rel not in table:
            raise WebsemError(f"websem: the exported index lists no {rel}; export it again")
    return meta, {rel: files[rel] for rel in table}


def entries_from_export(files: Mapping[str, bytes], *, dims: int, dtype: str,
                        restore: Callable[[bytes], bytes]) -> dict[str, Entry]:
    """The documents of an exported index (``read_export``'s files), in index order, each with
    its rows converted by ``restore`` (from ``dtype`` to the importing index's)."""
    chunks = json.loads(files["index/chunks.json"])
    doc_rows = json.loads(files["index/docs.json"])
    state = json.loads(files.get(STATE_FILE, b"[]")) or [{"id": r["id"]} for r in doc_rows]
    raw = files["index/vectors.bin"]
    width = 2 if dtype == "float16" else 4
    if len(raw) != len(chunks) * dims * width or len(state) != len(doc_rows):
        raise WebsemError("websem: the exported index's vectors, chunks and documents do not match; "
                          "export it again from a page")
    row_bytes = dims * width
    by_doc: dict[int, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(int(c["doc"]), []).append(i)
    out: dict[str, Entry] = {}
    for i, (row, st) in enumerate(zip(doc_rows, state, strict=True)):
        own = by_doc.get(i, [])
        text_chunks = [Chunk(0, chunks[j]["anchor"], chunks[j]["start"], chunks[j]["end"], chunks[j]["text"])
                       for j in own]
        doc = Document(row["id"], st.get("title", row["title"]), row["url"], "", [], row.get("meta") or {},
                       st.get("title_from", ""), st.get("page_title", ""))
        vec = b"".join(raw[j * row_bytes:(j + 1) * row_bytes] for j in own) if own else b""
        out[row["id"]] = Entry(doc, bool(st.get("marked")), text_chunks, restore(vec))
    return out
