"""Packers for onnxruntime's block-quantized contrib ops, written with numpy (so the export
does not need onnxruntime's `onnx_ir`-based MatMulNBitsQuantizer): com.microsoft ``MatMulNBits``
weights (8 and 4 bits) and ``GatherBlockQuantized`` embedding tables (8 and 4 bits), plus the
int8 scale search shared with export/quantize.py. Layouts follow the op schemas of onnxruntime
1.30; tests/test_export.py checks each against onnxruntime's own kernels."""

from __future__ import annotations

import numpy as np
from websem.text.errors import WebsemError

__all__ = ["channel_scales", "pack_nbits8", "pack_nbits4", "gather_block", "ensure_ms_domain"]


def channel_scales(w: np.ndarray, axis: int, method: str, qmax: int = 127) -> np.ndarray:
    """Symmetric scale per channel (`axis` = the channel axis of the 2-D weight `w`) for values
    in [-qmax, qmax] (127 for int8; fewer levels in the same int8 container compress better).

    "max": amax / qmax. "mse": the clipping ratio in [0.5, 1] (per channel) that minimises the
    squared rounding + clipping error; a few outliers per channel otherwise waste most of the
    int8 grid (measured in docs/quantization.md)."""
    wc = w if axis == 0 else w.T  # rows = channels
    amax = np.abs(wc).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0).astype(np.float64)
    if method == "max":
        return (amax / qmax).astype(np.float32)
    if method != "mse":
        raise WebsemError(f"websem: weight-int8 scale '{method}' is unknown; choose max or mse")
    best = amax / qmax
    best_err = np.full(len(amax), np.inf)
    for ratio in np.linspace(0.5, 1.0, 26):
        s = (amax * ratio / qmax)[:, None]
        err = ((np.clip(np.rint(wc / s), -qmax, qmax) * s - wc) ** 2).sum(axis=1)
        better = err < best_err
        best = np.where(better, s[:, 0], best)
        best_err = np.where(better, err, best_err)
    return best.astype(np.float32)


def pack_nbits8(w: np.ndarray, block_size: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Pack a MatMul weight `w` [K, N] for com.microsoft MatMulNBits with bits=8.

    Returns (B uint8 [N, k_blocks, block_size], scales float32 [N * k_blocks]). Symmetric: values
    are stored as q + 128 in [1, 255], so the op's default zero point (2^(bits-1) = 128) applies
    and no zero_points input is written. K is zero-padded up to a whole number of blocks."""
    k, n = w.shape
    k_blocks = -(-k // block_size)
    wt = np.zeros((n, k_blocks * block_size), dtype=np.float32)
    wt[:, :k] = w.T  # MatMulNBits stores B transposed: one row per output column n
    blocks = wt.reshape(n * k_blocks, block_size)
    scale = channel_scales(blocks, 0, method)  # one scale per (column, block)
    q = np.clip(np.rint(blocks / scale[:, None]), -127, 127).astype(np.int16) + 128
    return q.astype(np.uint8).reshape(n, k_blocks, block_size), scale.astype(np.float32)


def ensure_ms_domain(model) -> None:
    from onnx import helper

    uses = any(n.domain == "com.microsoft" for n in model.graph.node)
    if uses and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def _scales_4bit(blocks: np.ndarray, method: str) -> np.ndarray:
    """Signed symmetric 4-bit scale per row of `blocks`: the largest-magnitude value maps to -8
    (all 16 levels used, as onnxruntime's own quantizer does); "mse" also tries clipping ratios
    in [0.5, 1] and keeps the one with the least squared error per row."""
    idx = np.abs(blocks).argmax(axis=1)
    peak = blocks[np.arange(len(blocks)), idx].astype(np.float64)
    peak = np.where(peak != 0, peak, 1.0)
    ratios = [1.0] if method == "max" else list(np.linspace(0.5, 1.0, 26))
    if method not in ("max", "mse"):
        raise WebsemError(f"websem: scale '{method}' is unknown; choose max or mse")
    best, best_err = peak / -8.0, np.full(len(peak), np.inf)
    for ratio in ratios:
        s = (peak * ratio / -8.0)[:, None]
        err = ((np.clip(np.rint(blocks / s), -8, 7) * s - blocks) ** 2).sum(axis=1)
        better = err < best_err
        best = np.where(better, s[:, 0], best)
        best_err = np.where(better, err, best_err)
    return best.astype(np.float32)


def _pack_low_first(q: np.ndarray) -> np.ndarray:
    """Pack 4-bit values (uint8 0..15) along the last axis, two per byte, low nibble first."""
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), dtype=q.dtype)], axis=-1)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def pack_nbits4(
    w: np.ndarray, block_size: int, method: str, symmetric: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pack a MatMul weight `w` [K, N] for com.microsoft MatMulNBits with bits=4.

    Returns (B uint8 [N, k_blocks, block_size/2], scales float32 [N * k_blocks], zero points uint8
    [N, ceil(k_blocks/2)] or None). Symmetric: q in [-8, 7] stored as q + 8, the op's default zero
    point. Asymmetric: [min(w, 0), max(w, 0)] (shrunk by the MSE ratio) mapped onto 0..15 with a
    zero point per block, as onnxruntime's MatMulNBitsQuantizer does."""
    k, n = w.shape
    k_blocks = -(-k // block_size)
    wt = np.zeros((n, k_blocks * block_size), dtype=np.float32)
    wt[:, :k] = w.T
    blocks = wt.reshape(n * k_blocks, block_size)
    if symmetric:
        scale = _scales_4bit(blocks, method)
        q = (np.clip(np.rint(blocks / scale[:, None]), -8, 7) + 8).astype(np.uint8)
        zp = None
    else:
        lo = np.minimum(blocks.min(axis=1), 0).astype(np.float64)
        hi = np.maximum(blocks.max(axis=1), 0).astype(np.float64)
        best_err = np.full(len(lo), np.inf)
        scale, zpv = np.ones(len(lo)), np.zeros(len(lo))
        for ratio in [1.0] if method == "max" else np.linspace(0.5, 1.0, 26):
            s = np.where(hi > lo, (hi - lo) * ratio / 15.0, 1.0)
            z = np.clip(np.rint(-lo * ratio / s), 0, 15)
            deq = (np.clip(np.rint(blocks / s[:, None]) + z[:, None], 0, 15) - z[:, None]) * s[:, None]
            err = ((deq - blocks) ** 2).sum(axis=1)
            better = err < best_err
            scale, zpv, best_err = np.where(better, s, scale), np.where(better, z, zpv), np.where(better, err, best_err)
        scale = scale.astype(np.float32)
        q = np.clip(np.rint(blocks / scale[:, None]) + zpv[:, None], 0, 15).astype(np.uint8)
        zp = _pack_low_first(zpv.astype(np.uint8).reshape(n, k_blocks))
    b = _pack_low_first(q.reshape(n, k_blocks, block_size))
    return b, scale.astype(np.float32), zp


def gather_block(model, bits: int, block_size: int, method: str, exclude: list[str]):
    """Constant 2-D Gather tables → com.microsoft GatherBlockQuantized (uint8 data, `bits` 8 or 4,
    symmetric, one scale per `block_size` values of a row, the op's default zero point
    2^(bits-1)). The op gathers the packed rows and dequantizes only those."""
    from onnx import helper, numpy_helper

    if block_size < 16 or block_size & (block_size - 1):
        raise WebsemError(
            f"websem: embedding_block_size {block_size} is not supported; choose a power of two >= 16"
        )
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    done: dict[str, tuple[str, str]] = {}
    nodes = []
    for n in g.node:
        table = n.input[0] if n.op_type == "Gather" else None
        if (
            table is None
            or table not in inits
            or len(inits[table].dims) != 2
            or any(a.i != 0 for a in n.attribute if a.name == "axis")
            or inits[table].dims[1] % block_size
            or any(pat in n.name for pat in exclude)
        ):
            nodes.append(n)
            continue
        if table not in done:
            w = numpy_helper.to_array(inits[table]).astype(np.float32)
            rows, dim = w.shape
            blocks = w.reshape(rows * dim // block_size, block_size)
            if bits == 8:
                scale = channel_scales(blocks, 0, method)
                q = (np.clip(np.rint(blocks / scale[:, None]), -127, 127) + 128).astype(np.uint8)
                data = q.reshape(rows, dim)
            else:
                scale = _scales_4bit(blocks, method)
                q = (np.clip(np.rint(blocks / scale[:, None]), -8, 7) + 8).astype(np.uint8)
                data = _pack_low_first(q.reshape(rows, dim))
            dn, sn = f"{table}_block{bits}", f"{table}_block_scales"
            g.initializer.extend([
                numpy_helper.from_array(data, dn),
                numpy_helper.from_array(scale.reshape(rows, dim // block_size), sn),
            ])
            done[table] = (dn, sn)
        dn, sn = done[table]
        base = n.name or n.output[0]
        nodes.append(
            helper.make_node(
                "GatherBlockQuantized", [dn, n.input[1], sn], list(n.output), name=f"{base}/block{bits}",
                domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=block_size, bits=bits,
            )
        )
    for table in done:
        if not any(table in n.input for n in nodes):
            g.initializer.remove(inits[table])
    del g.node[:]
    g.node.extend(nodes)
    ensure_ms_domain(model)
    return model
