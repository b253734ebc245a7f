"""The bundle's model without its word-embedding table: a body graph plus rows read by byte range.

The default model (weight-int8) keeps its word embeddings as an int8 table of 30522 x 384 and one
float32 scale per row: 11.8 MB of the 23 MB model, of which a query uses the rows of its 10-60
token ids. ``split_model`` cuts the five nodes that turn ``input_ids`` into the embedding rows
(``Gather(int8 table) -> Cast -> Mul(Unsqueeze(Gather(scales)))``) and the two initializers out of
the graph, and makes their output a graph input the runtime feeds instead: the rows of the query's
ids, computed as ``float32(int8) * float32(scale)``, which is what the cut nodes computed (ORT's
Cast + Mul), so the sentence embedding is bit-identical (tests/test_model_split.py).

Files written (bundle layout, docs/architecture.md "Model files"):

- ``model.onnx``: the body (``input_ids`` stays an input: the position and attention parts read it;
  its dense layers as MatMulNBits unless ``matmul`` is "fp32", build/model_pack.py);
- ``word_rows.bin``: row ``i`` at byte ``i * row_bytes``: its ``dims`` int8 values, then its scale
  as a little-endian float32 (388 B a row);
- ``word_rows.sha256``: the sha256 of each block of ``block_rows`` consecutive rows (the last
  block shorter), truncated to its first ``hash_bytes`` bytes (16 a block; 32, the whole digest, in
  bundles whose section has no ``hash_bytes``), so a reader that fetches a block by HTTP byte range
  can check it alone; this file is listed in manifest.json with its full sha256 like every other.

``manifest.model.word_rows`` (``section``) tells readers the layout; a bundle without it ships the
whole model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError
from websem.web.verify import WORD_ROW_HASH_BYTES

from .model_optimize import GRAPH_OPTIMIZATION, optimize_graph
from .model_pack import DEFAULT_MATMUL, MODEL_MATMULS, check_matmul, consumers, pack_matmuls

__all__ = ["BLOCK_ROWS", "DEFAULT_MATMUL", "HASHES_FILE", "HASH_BYTES", "MODEL_LAYOUTS", "MODEL_MATMULS",
           "ROWS_FILE", "SplitModel", "find_word_rows", "install_model", "split_model", "word_rows_blocks"]

# Rows a block holds. A query reads the blocks holding its token ids, so bytes per query grow with
# the block, while the hash list every load fetches shrinks with it (HASH_BYTES a block). Over the
# 225 Cranfield queries (20 distinct ids median; ids of one query rarely share a block): 4 rows ->
# 28 KB a query + 122 KB of hashes, 8 -> 56 KB + 61 KB, 16 -> 106 KB + 31 KB, 32 -> 199 KB + 15 KB.
# 8 costs the first query 117 KB in all, the least (4: 150 KB, 16: 137 KB), and every later one
# half of 16's; the rows are read after tokenizing, on the path to the answer, the hashes in
# parallel with the 10 MB body. docs/architecture.md "Model files" has the table.
BLOCK_ROWS = 8
# Bytes of each block's sha256 the hash list keeps (manifest.model.word_rows.hash_bytes). The list
# itself is checked against its full sha256 in manifest.json, so a block's prefix only has to catch
# a corrupt or swapped block: 128 bits leave a second preimage at 2^128 work, and the list every
# cold load fetches (incompressible) is 61 KB, not 122 KB. Readers accept WORD_ROW_HASH_BYTES
# (web/verify.py).
HASH_BYTES = 16
ROWS_FILE = "word_rows.bin"
# --model-layout: "split" (the default: body + rows blocks, when the model has an int8 table) or
# "whole" (model.onnx as the package has it).
MODEL_LAYOUTS = ("split", "whole")
HASHES_FILE = "word_rows.sha256"


class SplitModel:
    """The five nodes and two initializers of the word-embedding lookup inside an ONNX graph."""

    def __init__(self, nodes: list, table: np.ndarray, scales: np.ndarray, output: str, ids_input: str,
                 initializers: list[str]) -> None:
        self.nodes = nodes
        self.table = table
        self.scales = scales
        self.output = output
        self.ids_input = ids_input
        self.initializers = initializers


def find_word_rows(model) -> SplitModel | None:
    """The int8 word-embedding lookup of ``model`` (an onnx ModelProto), or None when the graph
    does not hold one in the form websem's exporter writes (e.g. an fp32 model)."""
    from onnx import TensorProto, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    by_input = consumers(g)
    graph_inputs = {i.name for i in g.input}
    for gather in g.node:
        if gather.op_type != "Gather" or len(gather.input) != 2 or gather.input[1] not in graph_inputs:
            continue
        table_init = inits.get(gather.input[0])
        if table_init is None or table_init.data_type != TensorProto.INT8 or len(table_init.dims) != 2:
            continue
        casts = by_input.get(gather.output[0], [])
        if len(casts) != 1 or casts[0].op_type != "Cast":
            continue
        cast = casts[0]
        to = next((a.i for a in cast.attribute if a.name == "to"), None)
        muls = by_input.get(cast.output[0], [])
        if to != TensorProto.FLOAT or len(muls) != 1 or muls[0].op_type != "Mul":
            continue
        mul = muls[0]
        other = next((x for x in mul.input if x != cast.output[0]), None)
        unsq = next((n for n in g.node if other in n.output), None)
        if unsq is None or unsq.op_type != "Unsqueeze":
            continue
        sgather = next((n for n in g.node if unsq.input[0] in n.output), None)
        if (sgather is None or sgather.op_type != "Gather" or sgather.input[1] != gather.input[1]
                or sgather.input[0] not in inits):
            continue
        # The scales [batch, seq] become [batch, seq, 1] (axes given as an initializer, opset 13+).
        has_axes = len(unsq.input) > 1 and unsq.input[1] in inits
        axes = numpy_helper.to_array(inits[unsq.input[1]]).tolist() if has_axes else None
        if axes not in ([-1], [2]):
            continue
        table = numpy_helper.to_array(table_init)
        scales = numpy_helper.to_array(inits[sgather.input[0]])
        if scales.dtype != np.float32 or scales.shape != (table.shape[0],):
            continue
        # Every cut node's output must feed only the other cut nodes (the Mul's output aside).
        cut = [gather, sgather, cast, unsq, mul]
        inner = {gather.output[0], sgather.output[0], cast.output[0], unsq.output[0]}
        if any(n not in cut for name in inner for n in by_input.get(name, [])):
            continue
        return SplitModel(cut, table, scales, mul.output[0], gather.input[1],
                          [gather.input[0], sgather.input[0]])
    return None


def word_rows_blocks(n_rows: int, block_rows: int) -> int:
    """How many blocks ``n_rows`` rows make, ``block_rows`` a block."""
    return -(-n_rows // block_rows)


def split_model(src: bytes, out_dir: Path, *, block_rows: int = BLOCK_ROWS, name: str = "model.onnx",
                matmul: str = DEFAULT_MATMUL, hash_bytes: int = HASH_BYTES) -> dict | None:
    """Write the body ``out_dir/model.onnx``, ``word_rows.bin`` and ``word_rows.sha256`` (each
    block's sha256 cut to ``hash_bytes`` bytes, one of ``WORD_ROW_HASH_BYTES``) for the
    model bytes ``src`` (``name`` in errors); return ``manifest.model.word_rows`` (file names
    relative to ``out_dir``) plus ``matmul``: "nbits8" when the body's dense layers were rewritten
    as MatMulNBits (``matmul`` "nbits8", build/model_pack.py), else None, and
    ``graph_optimization``: "basic" when the body was saved optimized (build/model_optimize.py),
    else None; or None (nothing written) when the model has no int8 word-embedding table to cut
    out."""
    import onnx
    from onnx import TensorProto, helper

    if not isinstance(block_rows, int) or block_rows < 1:
        raise WebsemError(f"websem: block_rows must be a positive integer, got {block_rows!r}")
    if not isinstance(hash_bytes, int) or isinstance(hash_bytes, bool) or hash_bytes not in WORD_ROW_HASH_BYTES:
        raise WebsemError(f"websem: hash_bytes {hash_bytes!r} is not allowed; pass one of "
                          f"{', '.join(map(str, WORD_ROW_HASH_BYTES))}")
    check_matmul(matmul)
    model = onnx.load_from_string(src)
    found = find_word_rows(model)
    if found is None:
        return None
    g = model.graph
    dims = int(found.table.shape[1])
    drop = {id(n) for n in found.nodes}
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep)
    # An initializer is dropped only when no remaining node reads it (the Unsqueeze axes constant
    # may be shared).
    still_read = {name for n in g.node for name in n.input}
    unused = set(found.initializers) | {n.input[1] for n in found.nodes if n.op_type == "Unsqueeze"}
    kept = [i for i in g.initializer if i.name not in unused or i.name in still_read]
    del g.initializer[:]
    g.initializer.extend(kept)
    g.input.append(helper.make_tensor_value_info(found.output, TensorProto.FLOAT, ["batch", "sequence", dims]))
    if found.ids_input not in still_read:
        raise WebsemError(f"websem: {name} reads {found.ids_input} only for its word embeddings, so the "
                          "split model would lose that input; build with --model-layout whole")
    packed = pack_matmuls(model) if matmul == "nbits8" else 0
    onnx.checker.check_model(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = model.SerializeToString()
    # Optimized here once rather than in every visitor's browser (build/model_optimize.py).
    optimized = optimize_graph(body, name)
    (out_dir / "model.onnx").write_bytes(optimized or body)
    n_rows = int(found.table.shape[0])
    rows = np.concatenate([found.table.view(np.uint8),
                           found.scales.astype("<f4").view(np.uint8).reshape(n_rows, 4)], axis=1)
    row_bytes = int(rows.shape[1])
    data = np.ascontiguousarray(rows).tobytes()
    (out_dir / ROWS_FILE).write_bytes(data)
    block = block_rows * row_bytes
    hashes = b"".join(hashlib.sha256(data[at:at + block]).digest()[:hash_bytes]
                      for at in range(0, len(data), block))
    (out_dir / HASHES_FILE).write_bytes(hashes)
    return {
        "input": found.output,
        "ids_input": found.ids_input,
        "rows": n_rows,
        "dims": dims,
        "row_bytes": row_bytes,
        "block_rows": block_rows,
        "hash_bytes": hash_bytes,
        "file": ROWS_FILE,
        "hashes": HASHES_FILE,
        "matmul": "nbits8" if packed else None,
        "graph_optimization": GRAPH_OPTIMIZATION if optimized else None,
    }


def install_model(package: Path, dest: Path, *, layout: str, package_sha256: str,
                  matmul: str = DEFAULT_MATMUL) -> dict | None:
    """Write the bundle's ``model/`` folder ``dest`` from the verified model ``package``: its
    tokenizer.json and manifest.json, and its model.onnx whole or split (``layout``; a split body's
    dense layers per ``matmul``, build/model_pack.py). Returns ``manifest.model.word_rows`` with
    bundle paths and the body's ``matmul`` ("nbits8" or None) under that key, or None for a whole
    model (layout "whole", or a model with no int8 word-embedding table), which ships as the
    package has it. ``package_sha256``: the package manifest's sha256 of model.onnx, checked
    against the bytes actually read."""
    import shutil

    if layout not in MODEL_LAYOUTS:
        raise WebsemError(f"websem: --model-layout {layout!r} is unknown; allowed: {', '.join(MODEL_LAYOUTS)}")
    check_matmul(matmul)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "manifest.json"):
        shutil.copyfile(package / name, dest / name)
    src = (package / "model.onnx").read_bytes()
    if hashlib.sha256(src).hexdigest() != package_sha256:
        raise WebsemError(f"websem: {package}/model.onnx changed while it was being copied; re-run `websem build`")
    section = split_model(src, dest, name=str(package / "model.onnx"), matmul=matmul) if layout == "split" else None
    if section is None:
        (dest / "model.onnx").write_bytes(src)
        return None
    prefix = dest.name + "/"
    return {**section, "file": prefix + section["file"], "hashes": prefix + section["hashes"],
            "preload_ids": _special_ids(dest / "tokenizer.json", section["rows"])}


def _special_ids(tokenizer_json: Path, rows: int) -> list[int]:
    """The ids of [CLS] and [SEP], which every query holds: the runtime reads their rows while
    the model loads, which also tells it early whether the server answers byte ranges (one that
    does not sends the whole rows file once, at load, instead of once per range of the first
    query)."""
    import json

    vocab = (json.loads(tokenizer_json.read_text("utf-8")).get("model") or {}).get("vocab") or {}
    return sorted({int(vocab[t]) for t in ("[CLS]", "[SEP]") if isinstance(vocab.get(t), int) and 0 <= vocab[t] < rows})
