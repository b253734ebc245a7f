"""Bundle verification for the CPU reference (`websem query`): the checks the JS runtime makes
(``web/src/bundle.js``; both are pinned by
``tests/fixtures/bad_bundles.json``), in its order: the manifest's format and
``format_version``, its ``search`` table, model and index agreement, the index layout and its
entries, the vendor entries, the file table and a split model's ``word_rows`` section, then
every file's size and sha256 (a partitioned index's shards when they are read, by
web/partitioned.py; a split model's word rows block by block, by web/query.py ``WordRows``).
Each failure is a ``WebsemError`` that says what to do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from websem.text.errors import WebsemError
from websem.text.rules import check_search

__all__ = ["LAYOUTS", "REBUILD", "WORD_ROW_HASH_BYTES", "check_manifest", "verify_bundle", "word_rows_hash_bytes"]

LAYOUTS = ("flat", "partitioned")  # manifest.index.layout; a manifest without one is flat
REBUILD = "rebuild the bundle with `websem build`"
# manifest.model.word_rows.hash_bytes: bytes of each block's sha256 the hash list keeps (a prefix;
# build/model_split.py writes 16). Absent means 32, the whole digest, what bundles before the key
# carry, so they still load without a format_version bump.
WORD_ROW_HASH_BYTES = (16, 32)


def check_manifest(manifest: object, where: str) -> dict:
    """The checks on ``manifest.json`` alone (no file read), in the order web/src/bundle.js
    makes them; ``where`` names the manifest in messages."""
    from websem.build.bundle import FORMAT_VERSION, VENDOR
    from websem.build.index import VECTOR_DTYPES

    if not isinstance(manifest, dict) or manifest.get("format") != "websem-bundle":
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise WebsemError(f"websem: {where} is not a websem bundle manifest (format {got!r}, expected "
                          "'websem-bundle'); point at the folder written by `websem build`")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise WebsemError(f"websem: bundle format_version {version!r} is not supported (this websem "
                          f"reads {FORMAT_VERSION}); {REBUILD}")
    check_search(manifest.get("search"))
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    index = manifest.get("index") if isinstance(manifest.get("index"), dict) else {}
    if not model.get("sha256") or index.get("model_sha256") != model.get("sha256"):
        raise WebsemError(f"websem: index built with model {index.get('model_sha256')} but bundle ships "
                          f"model {model.get('sha256')}; {REBUILD}")
    if index.get("dims") != model.get("dims"):
        raise WebsemError(f"websem: index dims {index.get('dims')} differ from model dims "
                          f"{model.get('dims')}; {REBUILD}")
    if index.get("vector_dtype") not in VECTOR_DTYPES:
        raise WebsemError(f"websem: index vector_dtype {index.get('vector_dtype')!r} is unknown "
                          f"(allowed: {', '.join(VECTOR_DTYPES)}); {REBUILD}")
    files = index.get("files") if isinstance(index.get("files"), dict) else {}
    layout = index.get("layout", "flat")
    if layout not in LAYOUTS:
        raise WebsemError(f"websem: index.layout {json.dumps(layout)} is unknown; allowed: "
                          f"{', '.join(LAYOUTS)}; {REBUILD}")
    if layout == "flat" and not isinstance(files.get("lexical"), str):
        raise WebsemError("websem: manifest.index.files.lexical is missing: the bundle has no lexical "
                          f"index (index/lexical.bin); {REBUILD}")
    if layout == "partitioned":
        _check_partitioned(index, files)
    vendor = (manifest.get("runtime") or {}).get("vendor")
    for pkg, roles in VENDOR.items():
        for role in roles:
            if not isinstance(((vendor or {}).get(pkg) or {}).get(role), str):
                raise WebsemError(f"websem: manifest.runtime.vendor.{pkg}.{role} is missing (where "
                                  f"the runtime finds {pkg}); {REBUILD}")
    table = manifest.get("files")
    if not isinstance(table, dict):
        raise WebsemError(f"websem: {where} has no file table (manifest.files); {REBUILD}")
    needed = ["model/model.onnx", "model/tokenizer.json", *files.values(),
              *(rel for roles in vendor.values() for rel in roles.values())]
    for rel in needed:
        entry = table.get(rel)
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("size"), int)):
            raise WebsemError(f"websem: {where} lists no file {rel!r} (with its sha256 and size); "
                              f"the bundle is incomplete, {REBUILD}")
    _check_word_rows(model, table, where)
    return manifest


def _check_word_rows(model: dict, table: dict, where: str) -> None:
    """The model the bundle ships: model/model.onnx is the model the index was made with
    (``model.sha256``), or, when ``model.word_rows`` is present, its body (``model.body_sha256``)
    with the word-embedding rows in the files that section names (web/src/bundle.js checkWordRows)."""
    body = table["model/model.onnx"]["sha256"]
    spec = model.get("word_rows")
    if spec is None:
        if model.get("sha256") != body:
            raise WebsemError(f"websem: index built with model {model.get('sha256')} but bundle ships "
                              f"model {body}; {REBUILD}")
        return
    if model.get("body_sha256") != body:
        raise WebsemError(f"websem: manifest.model.body_sha256 {model.get('body_sha256')} is not the sha256 of "
                          f"model/model.onnx ({body}) in {where}; {REBUILD}")
    if not isinstance(spec, dict):
        raise WebsemError(f"websem: manifest.model.word_rows must be an object; {REBUILD}")
    for key in ("rows", "dims", "row_bytes", "block_rows"):
        if not _is_int(spec.get(key)) or spec[key] < 1:
            raise WebsemError(f"websem: manifest.model.word_rows.{key} is {json.dumps(spec.get(key))} but must be "
                              f"an integer >= 1; {REBUILD}")
    for key in ("file", "hashes", "input"):
        if not isinstance(spec.get(key), str):
            raise WebsemError(f"websem: manifest.model.word_rows.{key} is missing (a string); {REBUILD}")
    if spec["dims"] != model.get("dims") or spec["row_bytes"] != spec["dims"] + 4:
        raise WebsemError(f"websem: manifest.model.word_rows has dims {spec['dims']} and row_bytes "
                          f"{spec['row_bytes']}, but the model makes {model.get('dims')}-d vectors "
                          f"(rows of dims int8 + a float32 scale); {REBUILD}")
    preload = spec.get("preload_ids", [])
    if not isinstance(preload, list) or not all(_is_int(i) and 0 <= i < spec["rows"] for i in preload):
        raise WebsemError(f"websem: manifest.model.word_rows.preload_ids must be a list of token ids below "
                          f"{spec['rows']}, got {json.dumps(preload)}; {REBUILD}")
    hash_bytes = word_rows_hash_bytes(spec)
    blocks = -(-spec["rows"] // spec["block_rows"])
    for key, size in (("file", spec["rows"] * spec["row_bytes"]), ("hashes", hash_bytes * blocks)):
        entry = table.get(spec[key])
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)):
            raise WebsemError(f"websem: {where} lists no file {spec[key]!r} (manifest.model.word_rows.{key}); "
                              f"the bundle is incomplete, {REBUILD}")
        if entry.get("size") != size:
            raise WebsemError(f"websem: {spec[key]} is listed with {entry.get('size')} bytes but "
                              f"manifest.model.word_rows makes it {size}; {REBUILD}")


def word_rows_hash_bytes(spec: dict) -> int:
    """``spec["hash_bytes"]`` (32 when absent), refused with a websem: error unless 16 or 32."""
    hash_bytes = spec.get("hash_bytes", 32)
    if not _is_int(hash_bytes) or hash_bytes not in WORD_ROW_HASH_BYTES:
        raise WebsemError(f"websem: manifest.model.word_rows.hash_bytes is {json.dumps(hash_bytes)} but must be "
                          f"{' or '.join(map(str, WORD_ROW_HASH_BYTES))}; {REBUILD}")
    return hash_bytes


def _check_partitioned(index: dict, files: dict) -> None:
    """The partitioned index's entries of ``manifest.index`` (the order web/src/bundle.js checks)."""
    for key in ("table", "centroids", "docmap"):
        if not isinstance(files.get(key), str):
            raise WebsemError(f"websem: manifest.index.files.{key} is missing (a partitioned index loads it "
                              f"at start); {REBUILD}")
    shards = index.get("shards") if isinstance(index.get("shards"), dict) else {}
    for key in ("ivf", "lexical", "fragments"):
        if not (isinstance(shards.get(key), str) and "{}" in shards[key]):
            raise WebsemError(f"websem: manifest.index.shards.{key} is missing (a path template with {{}} for "
                              f"the shard number); {REBUILD}")
    ivf = index.get("ivf") if isinstance(index.get("ivf"), dict) else {}
    nlist, nprobe = ivf.get("nlist"), ivf.get("nprobe")
    if nlist is None:
        raise WebsemError(f"websem: manifest.index.ivf.nlist is missing (a positive integer); {REBUILD}")
    if not _is_int(nlist) or nlist < 1:
        raise WebsemError(f"websem: manifest.index.ivf.nlist is {json.dumps(nlist)} but must be an integer "
                          f">= 1; {REBUILD}")
    if nprobe is None:
        raise WebsemError(f"websem: manifest.index.ivf.nprobe is missing (an integer from 1 to nlist); {REBUILD}")
    if not _is_int(nprobe) or not 1 <= nprobe <= nlist:
        raise WebsemError(f"websem: manifest.index.ivf.nprobe is {json.dumps(nprobe)} but must be an integer "
                          f"from 1 to nlist ({nlist}); {REBUILD}")
    code = ivf.get("code", "rows")
    if code not in ("binary", "rows"):
        raise WebsemError(f"websem: manifest.index.ivf.code {json.dumps(code)} is unknown; allowed: binary, rows; "
                          f"{REBUILD}")
    if code == "binary":
        if not (isinstance(shards.get("codes"), str) and "{}" in shards["codes"]):
            raise WebsemError(f"websem: manifest.index.shards.codes is missing (a path template with {{}} for the "
                              f"list number; ivf.code is binary); {REBUILD}")
        rerank = ivf.get("rerank")
        if rerank is None:
            raise WebsemError(f"websem: manifest.index.ivf.rerank is missing (an integer >= 1; ivf.code is "
                              f"binary); {REBUILD}")
        if not _is_int(rerank) or rerank < 1:
            raise WebsemError(f"websem: manifest.index.ivf.rerank is {json.dumps(rerank)} but must be an integer "
                              f">= 1 (ivf.code is binary); {REBUILD}")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _shard_pattern(index: dict):
    """A regex of a partitioned index's shard paths (None for a flat index): the files a reader
    verifies when it first reads them, not at load."""
    if index.get("layout") != "partitioned":
        return None
    number = "(?:0|[1-9][0-9]*)"
    return re.compile("|".join(re.escape(t).replace(re.escape("{}"), number) for t in index["shards"].values()))


def verify_bundle(bundle: Path) -> dict:
    """The bundle's manifest after ``check_manifest`` and checking every file's size and sha256
    (a partitioned bundle's shards excepted: ``PartitionedIndex`` checks each when it reads it)."""
    bundle = Path(bundle)
    mpath = bundle / "manifest.json"
    if not mpath.is_file():
        raise WebsemError(f"websem: {bundle} has no manifest.json, so it is not a websem bundle; "
                          "build one with `websem build SOURCE --out BUNDLE`")
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise WebsemError(f"websem: {mpath} is not valid JSON ({e}); {REBUILD}") from None
    check_manifest(manifest, str(mpath))
    from websem.web.shards import check_file

    lazy = _shard_pattern(manifest["index"])
    # A split model's rows are read (and checked) a block at a time, like the browser reads them.
    rows = (manifest["model"].get("word_rows") or {}).get("file")
    for rel, info in manifest["files"].items():
        if rel != rows and (lazy is None or not lazy.fullmatch(rel)):
            check_file(bundle, rel, info)
    return manifest
