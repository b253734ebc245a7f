"""Step 3: quantize the fp32 graph.

Public modes (`--quantization`):
- ``weight-int8``: int8 weights (per output channel for MatMul, per row for embedding tables)
  feeding fp32 compute through DequantizeLinear. Written here with `onnx`, because neither
  Optimum's ORTQuantizer nor onnxruntime.quantization offers a weight-only int8 mode for the
  CPU/WASM EPs (their weight-only paths are 4-bit MatMulNBits, a contrib op, or QDQ with
  activation Q/DQ pairs). Batch-independent and bit-exact between CPU ORT and ORT-web.
- ``dynamic-int8``: Optimum's ORTQuantizer, dynamic (IntegerOps) per-channel int8 weights,
  uint8 activations quantized per run (DynamicQuantizeLinear → MatMulInteger). Fast on CPUs
  with VNNI, but the activation scale is per tensor and per run (batch 1 rule, see
  docs/architecture.md). Only MatMuls with a constant weight are quantized: quantizing the two
  activation×activation MatMuls of attention (QK^T, softmax·V) too measured slower (1.39x vs
  1.82x over fp32) at the same quality, see docs/quantization.md. Embedding tables get the
  weight-int8 per-row treatment. Misses the default gate on MiniLM (mean cosine 0.9928).
- ``weight-int8-packed``: the same int8 weights, but they *stay* int8 in onnxruntime's memory
  (issue #7, edge memory). Dense layers become com.microsoft ``MatMulNBits`` (bits=8, symmetric,
  one scale per block of ``block_size`` input rows, accuracy_level 0 = fp32 compute): no
  DequantizeLinear for onnxruntime to constant-fold into an fp32 copy of the weights. Embedding
  tables are gathered as int8 rows and dequantized after the Gather (as weight-int8 does).
  Batch-independent and deterministic (no activation quantization). Packed by hand with numpy,
  so the export does not need onnxruntime's `onnx_ir`-based MatMulNBitsQuantizer.
- ``none``: fp32.

`settings` (internal/advanced, recorded in the manifest; `--quantization-option KEY=JSON`, hidden)
exist for the measurements and the quality-gate test. Both modes: exclude (substrings of node
names kept in fp32), embeddings (int8 Gather tables). weight-int8: scale ("mse"|"max").
dynamic-int8: per_channel, reduce_range, attention (also act×act MatMuls); activations is
uint8 only (onnxruntime's dynamic quantization has no int8 activations). weight-int8-packed:
scale ("mse"|"max", per block), block_size (16..256, a power of two), accuracy_level (0 only:
fp32 compute; 4 would quantize activations per run, i.e. batch-dependent)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

__all__ = ["MODES", "DEFAULT_MODE", "default_settings", "quantize", "weight_matmuls"]

MODES = ("weight-int8", "weight-int8-packed", "dynamic-int8", "none")
DEFAULT_MODE = "weight-int8"

_DEFAULTS: dict[str, dict] = {
    "none": {},
    "weight-int8": {
        "weights": "int8",
        "per_channel": True,
        "symmetric": True,
        "scale": "mse",
        "embeddings": True,
        "exclude": [],
    },
    "weight-int8-packed": {
        "weights": "int8",
        "symmetric": True,
        "scale": "mse",
        # 2026-11-28: block 128 measured best for the edge (bench/results/lean_model.md): 8% faster
        # short queries in ORT-web than 32, 2.4 MB less wasm memory, 1 MB smaller file, and still
        # better quality than weight-int8's per-channel scales (mean 0.99961 vs 0.99939).
        "block_size": 128,
        "accuracy_level": 0,
        "embeddings": True,
        "exclude": [],
    },
    "dynamic-int8": {
        "weights": "int8",
        # uint8 only: onnxruntime's dynamic quantization (DynamicQuantizeLinear) has no int8
        # activations, so S8S8 is not an option here (Optimum refuses QInt8 activations).
        "activations": "uint8",
        "per_channel": True,
        "reduce_range": False,
        "attention": False,
        "exclude": [],
        "embeddings": True,
    },
}


def default_settings(mode: str, overrides: dict | None = None) -> dict:
    """Settings of `mode` with `overrides` applied; refuses unknown modes and keys."""
    if mode not in MODES:
        raise WebsemError(
            f"websem: unknown quantization '{mode}'; choose one of {', '.join(MODES)}"
        )
    settings = {"mode": mode, **_DEFAULTS[mode]}
    for key, value in (overrides or {}).items():
        if key not in _DEFAULTS[mode]:
            raise WebsemError(
                f"websem: quantization option '{key}' does not apply to mode '{mode}'; "
                f"options: {', '.join(_DEFAULTS[mode]) or 'none'}"
            )
        settings[key] = value
    return settings


def weight_matmuls(model) -> list[str]:
    """Names of MatMul nodes whose second input is a constant initializer (the dense layers)."""
    inits = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def _channel_scales(w: np.ndarray, axis: int, method: str) -> np.ndarray:
    """Symmetric int8 scale per channel (`axis` = the channel axis of the 2-D weight `w`).

    "max": amax / 127. "mse": the clipping ratio in [0.5, 1] (per channel) that minimises the
    squared rounding + clipping error; a few outliers per channel otherwise waste most of the
    int8 grid (measured in docs/quantization.md)."""
    wc = w if axis == 0 else w.T  # rows = channels
    amax = np.abs(wc).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0).astype(np.float64)
    if method == "max":
        return (amax / 127.0).astype(np.float32)
    if method != "mse":
        raise WebsemError(f"websem: weight-int8 scale '{method}' is unknown; choose max or mse")
    best = amax / 127.0
    best_err = np.full(len(amax), np.inf)
    for ratio in np.linspace(0.5, 1.0, 26):
        s = (amax * ratio / 127.0)[:, None]
        err = ((np.clip(np.rint(wc / s), -127, 127) * s - wc) ** 2).sum(axis=1)
        better = err < best_err
        best = np.where(better, s[:, 0], best)
        best_err = np.where(better, err, best_err)
    return best.astype(np.float32)


def _weight_int8(model, settings: dict):
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    exclude = list(settings.get("exclude") or [])
    matmul_w: set[str] = set()
    tables: set[str] = set()
    for n in g.node:
        if any(pat in n.name for pat in exclude):
            continue
        if (
            settings.get("matmul", True)
            and n.op_type == "MatMul"
            and n.input[1] in inits
            and len(inits[n.input[1]].dims) == 2
        ):
            matmul_w.add(n.input[1])
        elif (
            settings.get("embeddings")
            and n.op_type == "Gather"
            and n.input[0] in inits
            and len(inits[n.input[0]].dims) == 2
            and all(a.i == 0 for a in n.attribute if a.name == "axis")
        ):
            tables.add(n.input[0])
    head, new_inits = [], []

    def q8(name: str, axis: int) -> tuple[str, str, np.ndarray]:
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        scale = _channel_scales(w, axis, settings.get("scale", "max"))
        shape = (1, -1) if axis == 1 else (-1, 1)
        q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        g.initializer.remove(inits[name])
        new_inits.append(numpy_helper.from_array(q, f"{name}_int8"))
        new_inits.append(numpy_helper.from_array(scale, f"{name}_scale"))
        return f"{name}_int8", f"{name}_scale", scale

    for name in sorted(matmul_w):
        # W is [K, N]: one scale per output column. The DequantizeLinear output keeps the
        # original initializer name, so the MatMul is untouched and computes in fp32.
        # 2026-11-28: onnxruntime does not constant-fold DequantizeLinear by default (it keeps
        # QDQ units for its int8 kernels); OnnxEmbedder sets session.disable_quant_qdq=1 so
        # these are folded once at session load instead of re-run on every call.
        qn, sn, scale = q8(name, 1)
        zp = f"{name}_zero_point"
        new_inits.append(numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), zp))
        head.append(
            helper.make_node("DequantizeLinear", [qn, sn, zp], [name], name=f"websem/dequantize/{name}", axis=1)
        )
    gathers: list[tuple] = []
    for name in sorted(tables):
        # Embedding table [V, D], one scale per row (token). Gather the int8 rows first and
        # dequantize only those (Cast * gathered scale): dequantizing the whole 30522 x 384 table
        # on every run would cost more than the model's first layer for a short query.
        qn, sn, _ = q8(name, 0)
        gathers.append((name, qn, sn))
    body = []
    for n in g.node:
        hit = next((t for t in gathers if n.op_type == "Gather" and n.input[0] == t[0]), None)
        if hit is None or any(pat in n.name for pat in exclude):
            body.append(n)
            continue
        name, qn, sn = hit
        base = n.name or n.output[0]
        rows, srows, rowsf = f"{base}/int8_rows", f"{base}/row_scales", f"{base}/rows_float"
        body += [
            helper.make_node("Gather", [qn, n.input[1]], [rows], name=f"{base}/int8", axis=0),
            helper.make_node("Gather", [sn, n.input[1]], [srows], name=f"{base}/scale", axis=0),
            helper.make_node("Cast", [rows], [rowsf], name=f"{base}/cast", to=onnx.TensorProto.FLOAT),
            helper.make_node("Unsqueeze", [srows, "websem_axes_m1"], [f"{srows}/u"], name=f"{base}/unsqueeze"),
            helper.make_node("Mul", [rowsf, f"{srows}/u"], [n.output[0]], name=f"{base}/dequantize"),
        ]
    if gathers and "websem_axes_m1" not in {t.name for t in g.initializer}:
        new_inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "websem_axes_m1"))
    g.initializer.extend(new_inits)
    del g.node[:]
    g.node.extend(head + body)
    onnx.checker.check_model(model)
    return model


def _pack_nbits8(w: np.ndarray, block_size: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Pack a MatMul weight `w` [K, N] for com.microsoft MatMulNBits with bits=8.

    Returns (B uint8 [N, k_blocks, block_size], scales float32 [N * k_blocks]). Symmetric: values
    are stored as q + 128 in [1, 255], so the op's default zero point (2^(bits-1) = 128) applies
    and no zero_points input is written. K is zero-padded up to a whole number of blocks."""
    k, n = w.shape
    k_blocks = -(-k // block_size)
    wt = np.zeros((n, k_blocks * block_size), dtype=np.float32)
    wt[:, :k] = w.T  # MatMulNBits stores B transposed: one row per output column n
    blocks = wt.reshape(n * k_blocks, block_size)
    scale = _channel_scales(blocks, 0, method)  # one scale per (column, block)
    q = np.clip(np.rint(blocks / scale[:, None]), -127, 127).astype(np.int16) + 128
    return q.astype(np.uint8).reshape(n, k_blocks, block_size), scale.astype(np.float32)


def _weight_int8_packed(model, settings: dict):
    import onnx
    from onnx import helper, numpy_helper

    block_size = int(settings.get("block_size", 32))
    if block_size < 16 or block_size > 256 or block_size & (block_size - 1):
        raise WebsemError(
            f"websem: weight-int8-packed block_size {block_size} is not supported; "
            "choose a power of two from 16 to 256 (MatMulNBits)"
        )
    if int(settings.get("accuracy_level", 0)) != 0:
        raise WebsemError(
            f"websem: weight-int8-packed accuracy_level {settings['accuracy_level']} is not allowed: "
            "levels > 0 quantize activations per run (batch-dependent); use accuracy_level=0"
        )
    if not settings.get("symmetric", True):
        raise WebsemError("websem: weight-int8-packed is symmetric only; use symmetric=true")
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    exclude = list(settings.get("exclude") or [])
    users: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    new_inits, nodes, packed = [], [], []
    for n in g.node:
        w_name = n.input[1] if n.op_type == "MatMul" and len(n.input) == 2 else None
        if (
            w_name is None
            or w_name not in inits
            or len(inits[w_name].dims) != 2
            or any(pat in n.name for pat in exclude)
        ):
            nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[w_name]).astype(np.float32)
        k, cols = w.shape
        b, scales = _pack_nbits8(w, block_size, settings.get("scale", "mse"))
        base = n.name or n.output[0]
        # Names derive from the MatMul node, so a weight shared by two MatMuls is packed twice
        # (never happens in BERT; correct either way).
        bn, sn = f"{base}/B_nbits8", f"{base}/scales"
        new_inits += [numpy_helper.from_array(b, bn), numpy_helper.from_array(scales, sn)]
        nodes.append(
            helper.make_node(
                "MatMulNBits", [n.input[0], bn, sn], list(n.output), name=f"{base}/nbits8",
                domain="com.microsoft", K=k, N=cols, bits=8, block_size=block_size,
                accuracy_level=0,
            )
        )
        packed.append(w_name)
    for name in packed:
        users[name] -= 1
        if users[name] == 0 and inits[name] in g.initializer:
            g.initializer.remove(inits[name])
    g.initializer.extend(new_inits)
    del g.node[:]
    g.node.extend(nodes)
    if packed and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    if settings.get("embeddings"):
        model = _weight_int8(
            model,
            {"matmul": False, "embeddings": True, "scale": settings.get("scale", "mse"), "exclude": exclude},
        )
    onnx.checker.check_model(model)
    return model


def _dynamic_int8(model, settings: dict):
    import onnx

    try:
        from onnxruntime.quantization import QuantFormat, QuantizationMode, QuantType
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import QuantizationConfig
    except ImportError as e:
        raise WebsemError(
            "websem: dynamic-int8 needs optimum-onnx; run `pip install 'websem[export]'`"
        ) from e
    if settings.get("activations", "uint8") != "uint8":
        raise WebsemError(
            f"websem: dynamic-int8 activations '{settings['activations']}' is not possible: onnxruntime's "
            "dynamic quantization (DynamicQuantizeLinear) produces uint8 only; use activations=uint8"
        )
    exclude = list(settings.get("exclude") or [])
    if settings.get("attention"):
        nodes = [n.name for n in model.graph.node if n.op_type == "MatMul"]
    else:
        nodes = weight_matmuls(model)
    nodes = [n for n in nodes if not any(pat in n for pat in exclude)]
    config = QuantizationConfig(
        is_static=False,
        format=QuantFormat.QOperator,
        mode=QuantizationMode.IntegerOps,
        activations_dtype=QuantType.QUInt8,
        activations_symmetric=False,
        weights_dtype=QuantType.QInt8,
        weights_symmetric=True,
        per_channel=bool(settings.get("per_channel", True)),
        reduce_range=bool(settings.get("reduce_range", False)),
        nodes_to_quantize=nodes,
        operators_to_quantize=["MatMul"],
    )
    with tempfile.TemporaryDirectory(prefix="websem-quant-") as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(model, str(src))
        quantizer = ORTQuantizer.from_pretrained(tmp, file_name="model.onnx")
        out = Path(tmp) / "out"
        quantizer.quantize(config, save_dir=out, file_suffix=None)
        files = sorted(out.glob("*.onnx"))
        if len(files) != 1:
            raise WebsemError(f"websem: ORTQuantizer wrote {len(files)} ONNX files, expected 1")
        qmodel = onnx.load(str(files[0]))
    if settings.get("embeddings"):
        # ORTQuantizer's Gather quantization is per tensor; the int8-rows gather of weight-int8
        # (one scale per token) shrinks the 47 MB table to 12 MB at a far smaller cost.
        qmodel = _weight_int8(qmodel, {"matmul": False, "embeddings": True, "scale": "mse"})
    return qmodel


def quantize(model, settings: dict):
    """Quantize `model` (an onnx.ModelProto) per `settings` (see default_settings)."""
    mode = settings["mode"]
    if mode == "none":
        return model
    if mode == "weight-int8":
        return _weight_int8(model, settings)
    if mode == "weight-int8-packed":
        return _weight_int8_packed(model, settings)
    if mode == "dynamic-int8":
        return _dynamic_int8(model, settings)
    raise WebsemError(f"websem: unknown quantization '{mode}'; choose one of {', '.join(MODES)}")
