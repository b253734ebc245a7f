"""The bundle body's dense layers as com.microsoft ``MatMulNBits`` (bits=8), losslessly.

The default model (weight-int8) stores each dense weight as int8 ``W_q`` [K, N] plus one float32
scale per output column, read by ``DequantizeLinear -> MatMul``. onnxruntime (CPU and
onnxruntime-web) constant-folds the DequantizeLinear when the session loads, so the browser holds
every weight as float32: ~100 MB of ORT wasm heap for the 36 dense layers of MiniLM-L6.
``MatMulNBits`` keeps its weights as bytes and dequantizes them inside the kernel, so the heap
holds them once, as int8 (docs/quantization.md, "weight-int8-packed in the runtime").

``pack_matmuls`` rewrites each ``DequantizeLinear(W_q int8 [K, N], scale [N], zero point 0,
axis=1) -> MatMul(A, W)`` into ``MatMulNBits(A, B, scales)`` with

- ``B`` uint8 [N, K/bs, bs] = ``W_q``ᵀ + 128 (the op's default zero point for bits=8 is 128, so
  no zero_points input is written: ``B - 128`` is ``W_q`` again, for every int8 value);
- ``scales`` float32 [N * K/bs]: each column's scale repeated once per block of that column;
- ``block_size`` the largest power of two from 16 to 128 that divides K (128 for MiniLM's K of
  384 and 1536), ``accuracy_level`` 0 (activations stay float32).

Each dequantized weight ``(B - 128) * scale`` is therefore the very float32 ``W_q * scale`` that
DequantizeLinear produced; only the kernel's summation order differs (tests/test_model_pack.py:
weights equal bit for bit, outputs within float rounding). Layers in any other form (float32
weights, already MatMulNBits, a nonzero zero point, another axis, K not a multiple of 16) are left
as they are.

The op layout is the one export/nbits.py writes for the weight-int8-packed mode (``pack_nbits8``
there quantizes float weights with one scale per block; here the int8 values and column scales
already exist and are kept, so only the byte layout is shared, checked against onnxruntime's
kernel by both modules' tests).
"""

from __future__ import annotations

from websem.text.errors import WebsemError

__all__ = ["DEFAULT_MATMUL", "MODEL_MATMULS", "check_matmul", "consumers", "nbits_block_size", "pack_matmuls"]

# --model-matmul: "nbits8" (the body's weight-int8 dense layers as MatMulNBits) or "fp32" (the
# body keeps DequantizeLinear -> MatMul, which the runtimes fold to float32 weights at load).
# No numpy at import: build/command.py reads these for the CLI's option list.
MODEL_MATMULS = ("nbits8", "fp32")
DEFAULT_MATMUL = "nbits8"
# MatMulNBits block sizes: powers of two from 16 (the op's minimum) up to this one. Every block of
# a column carries the same scale here, so the size changes only the scales' length (N * K/bs).
MAX_BLOCK = 128


def check_matmul(matmul: str) -> None:
    if matmul not in MODEL_MATMULS:
        raise WebsemError(f"websem: --model-matmul {matmul!r} is unknown; allowed: {', '.join(MODEL_MATMULS)}")


def nbits_block_size(k: int) -> int | None:
    """The largest power of two from 16 to ``MAX_BLOCK`` dividing ``k``, or None."""
    bs = MAX_BLOCK
    while bs >= 16:
        if k % bs == 0:
            return bs
        bs //= 2
    return None


def _attr(node, name: str, default):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def consumers(graph) -> dict[str, list]:
    """Tensor name -> the nodes of ``graph`` that read it (the graph walks of this module and
    model_split.py both need it)."""
    users: dict[str, list] = {}
    for n in graph.node:
        for name in n.input:
            users.setdefault(name, []).append(n)
    return users


def pack_matmuls(model) -> int:
    """Rewrite the weight-int8 dense layers of ``model`` (an onnx ModelProto, changed in place)
    as MatMulNBits bits=8; return how many MatMuls were rewritten (0: the model is unchanged)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from websem.export.nbits import ensure_ms_domain

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    users = consumers(g)
    outputs = {o.name for o in g.output}
    replace: dict[int, object] = {}  # id(MatMul) -> its MatMulNBits
    drop: set[int] = set()  # id(DequantizeLinear) of the rewritten layers
    for dq in g.node:
        if dq.op_type != "DequantizeLinear" or dq.domain not in ("", "ai.onnx") or len(dq.input) < 2:
            continue
        wq, sc = inits.get(dq.input[0]), inits.get(dq.input[1])
        zp = inits.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
        if (wq is None or sc is None or wq.data_type != TensorProto.INT8 or len(wq.dims) != 2
                or sc.data_type != TensorProto.FLOAT or list(sc.dims) != [wq.dims[1]]
                or (len(dq.input) > 2 and dq.input[2] and zp is None)):
            continue
        if _attr(dq, "axis", 1) not in (1, -1) or _attr(dq, "block_size", 0):
            continue
        if zp is not None and (zp.data_type != TensorProto.INT8 or numpy_helper.to_array(zp).any()):
            continue
        out = dq.output[0]
        readers = users.get(out, [])
        # Every reader must be a MatMul taking the weight as its B input: the float32 weight then
        # no longer exists anywhere in the graph.
        if (out in outputs or not readers
                or any(r.op_type != "MatMul" or r.domain not in ("", "ai.onnx") or list(r.input[1:]) != [out]
                       or r.input[0] == out for r in readers)):
            continue
        k, n = (int(d) for d in wq.dims)
        bs = nbits_block_size(k)
        if bs is None:
            continue
        q = numpy_helper.to_array(wq)
        scale = numpy_helper.to_array(sc).astype(np.float32)
        k_blocks = k // bs
        # int16 first: int8 + 128 would wrap; every int8 value lands in 0..255.
        b = (q.T.astype(np.int16) + 128).astype(np.uint8).reshape(n, k_blocks, bs)
        scales = np.repeat(scale, k_blocks).astype(np.float32)  # index n * k_blocks + block
        bn, sn = f"{out}/B_nbits8", f"{out}/nbits_scales"
        g.initializer.extend([numpy_helper.from_array(b, bn), numpy_helper.from_array(scales, sn)])
        for r in readers:
            base = r.name or r.output[0]
            replace[id(r)] = helper.make_node(
                "MatMulNBits", [r.input[0], bn, sn], list(r.output), name=f"{base}/nbits8",
                domain="com.microsoft", K=k, N=n, bits=8, block_size=bs, accuracy_level=0)
        drop.add(id(dq))
    if not replace:
        return 0
    dropped = [n for n in g.node if id(n) in drop]
    nodes = [replace.get(id(n), n) for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    # The int8 weights, scales and zero points are dropped unless another node still reads them.
    still_read = {name for n in g.node for name in n.input}
    unused = {name for n in dropped for name in n.input if name and name not in still_read}
    kept = [t for t in g.initializer if t.name not in unused]
    del g.initializer[:]
    g.initializer.extend(kept)
    ensure_ms_domain(model)
    return len(replace)
