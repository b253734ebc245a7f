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
  (edge memory). Dense layers become com.microsoft ``MatMulNBits`` (bits=8, symmetric,
  one scale per block of ``block_size`` input rows, accuracy_level 0 = fp32 compute): no
  DequantizeLinear for onnxruntime to constant-fold into an fp32 copy of the weights. Embedding
  tables are gathered as int8 rows and dequantized after the Gather (as weight-int8 does).
  Batch-independent and deterministic (no activation quantization). Packed by hand with numpy
  (export/nbits.py), so the export does not need onnxruntime's `onnx_ir`-based
  MatMulNBitsQuantizer.
- ``weight-int4``: as weight-int8-packed with bits=4 (symmetric, or asymmetric with a zero point
  per block); with ``scale="max"`` the packing is byte-identical to onnxruntime's
  MatMulNBitsQuantizer, "mse" (the default) picks each block's clipping ratio. 4.1 MB smaller
  than weight-int8 but far below the default gate on MiniLM (bench/results/quant.md), so the
  export refuses it unless the gate is relaxed.
- ``none``: fp32.

`settings` (internal/advanced, recorded in the manifest; `--quantization-option KEY=JSON`, hidden)
exist for the measurements and the quality-gate test. All modes: exclude (substrings of node
names kept in fp32). Weight-only modes: embeddings, how the 2-D Gather tables are stored: true or
"int8-rows" (int8 rows, one scale per row, Gather → Cast → Mul), "block8" / "block4"
(com.microsoft GatherBlockQuantized, one scale per `embedding_block_size` values, default 32),
false (fp32); embedding_bits (8|7|6|5) stores the int8-rows word table with values in
[-(2^(b-1) - 1), 2^(b-1) - 1], the same int8 rows and ops with fewer levels, so brotli shrinks
them. weight-int8: scale ("mse"|"max"), weight_bits (8|7|6|5, the same for its dense weights;
weight_bits_keep lists node-name substrings of MatMuls that keep 8 bits),
rounding ("nearest", or "gptq": error-compensated rounding calibrated on
export/data/calibration.txt, export/gptq.py; knobs gptq_damp, gptq_act_order, gptq_sequential).
dynamic-int8: per_channel, reduce_range, attention (also act×act MatMuls); activations is
uint8 only (onnxruntime's dynamic quantization has no int8 activations). weight-int8-packed:
scale ("mse"|"max", per block), block_size (16..256, a power of two), accuracy_level (0 only:
fp32 compute; 4 would quantize activations per run, i.e. batch-dependent). weight-int4: the
same, plus symmetric (false = a 4-bit zero point per block)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from websem.text.errors import WebsemError

from .nbits import channel_scales, ensure_ms_domain, gather_block, pack_nbits4, pack_nbits8

# tests/test_export.py packs by hand through this name
_pack_nbits8 = pack_nbits8

__all__ = ["MODES", "DEFAULT_MODE", "default_settings", "quantize", "weight_matmuls"]

MODES = ("weight-int8", "weight-int8-packed", "weight-int4", "dynamic-int8", "none")
# How weight-only modes store the embedding tables (`embeddings` setting). True = "int8-rows".
EMBEDDINGS = ("int8-rows", "block8", "block4")
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
        # Block 128 measured best for the edge (bench/results/lean_model.md): 8% faster
        # short queries in ORT-web than 32, 2.4 MB less wasm memory, 1 MB smaller file, and still
        # better quality than weight-int8's per-channel scales (mean 0.99961 vs 0.99939).
        "block_size": 128,
        "accuracy_level": 0,
        "embeddings": True,
        "exclude": [],
    },
    "weight-int4": {
        "weights": "int4",
        "symmetric": True,
        "scale": "mse",
        # Measured in bench/results/quant.md: block 32 keeps the most quality of the 4-bit
        # settings; none of them passes the default gate on all-MiniLM-L6-v2.
        "block_size": 32,
        "accuracy_level": 0,
        "embeddings": "int8-rows",
        "embedding_block_size": 32,
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


# Accepted by every mode that has `embeddings`, recorded only when given (so the default
# package's manifest does not change): the block of GatherBlockQuantized tables, and the levels of
# the int8-rows word table.
_OPTIONAL = ("embedding_block_size", "embedding_bits")
# Accepted by weight-int8 only, recorded only when given: the levels of its int8 dense weights
# (weight_bits_keep: MatMul node-name substrings whose weights keep 8 bits), and how they are
# rounded (`rounding`: "nearest", or "gptq" with its gptq_* knobs, export/gptq.py).
_OPTIONAL_WEIGHT_INT8 = ("weight_bits", "weight_bits_keep", "rounding", "gptq_damp", "gptq_act_order",
                         "gptq_sequential")
ROUNDINGS = ("nearest", "gptq")
# `embedding_bits` / `weight_bits`: how many levels the int8 containers use. b bits = values in
# [-(2^(b-1) - 1), 2^(b-1) - 1], still stored as int8 with the same graph and ops; fewer levels
# only make the file compress better (brotli), see docs/quantization.md.
BITS = (8, 7, 6, 5)


def default_settings(mode: str, overrides: dict | None = None) -> dict:
    """Settings of `mode` with `overrides` applied; refuses unknown modes and keys."""
    if mode not in MODES:
        raise WebsemError(
            f"websem: unknown quantization '{mode}'; choose one of {', '.join(MODES)}"
        )
    settings = {"mode": mode, **_DEFAULTS[mode]}
    allowed = list(_DEFAULTS[mode])
    if "embeddings" in _DEFAULTS[mode]:
        allowed += [k for k in _OPTIONAL if k not in allowed]
    if mode == "weight-int8":
        allowed += [k for k in _OPTIONAL_WEIGHT_INT8 if k not in allowed]
    for key, value in (overrides or {}).items():
        if key not in allowed:
            raise WebsemError(
                f"websem: quantization option '{key}' does not apply to mode '{mode}'; "
                f"options: {', '.join(allowed) or 'none'}"
            )
        settings[key] = value
    for key in ("embedding_bits", "weight_bits"):
        if key in settings:
            _qmax(settings, key)  # refuse a bad value here, before any export work
    _check_rounding(settings)
    if "embedding_bits" in settings and _embedding_format(settings) != "int8-rows":
        raise WebsemError(
            f"websem: embedding_bits applies to int8-rows embedding tables only, not "
            f"embeddings={settings.get('embeddings')!r}; use embeddings=true or drop embedding_bits"
        )
    return settings


def _check_rounding(settings: dict) -> None:
    """Refuse a bad `rounding` or a gptq_* knob without rounding=gptq, before any export work."""
    rounding = settings.get("rounding", "nearest")
    if rounding not in ROUNDINGS:
        raise WebsemError(
            f"websem: rounding {rounding!r} is not supported; choose one of {', '.join(ROUNDINGS)}"
        )
    keep = settings.get("weight_bits_keep", [])
    if not isinstance(keep, list) or not all(isinstance(k, str) and k for k in keep):
        raise WebsemError(f"websem: weight_bits_keep {keep!r} must be a list of MatMul node-name substrings, "
                          'e.g. ["/attention/"]')
    knobs = [k for k in settings if k.startswith("gptq_")]
    if knobs and rounding != "gptq":
        raise WebsemError(f"websem: {', '.join(knobs)} apply to rounding=gptq only; add rounding=gptq or drop them")
    damp = settings.get("gptq_damp", 0.01)
    if isinstance(damp, bool) or not isinstance(damp, int | float) or not 0 < damp <= 1:
        raise WebsemError(f"websem: gptq_damp {damp!r} is not supported; choose a number in (0, 1], e.g. 0.01")


def _qmax(settings: dict, key: str) -> int:
    """The largest int8 magnitude for `settings[key]` bits (8 → 127, 7 → 63, 6 → 31, 5 → 15)."""
    bits = settings.get(key, 8)
    if isinstance(bits, bool) or bits not in BITS:
        raise WebsemError(
            f"websem: {key} {bits!r} is not supported; choose one of {', '.join(map(str, BITS))}"
        )
    return 2 ** (bits - 1) - 1


def weight_matmuls(model) -> list[str]:
    """Names of MatMul nodes whose second input is a constant initializer (the dense layers)."""
    inits = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def _weight_int8(model, settings: dict, tokenizer=None):
    import onnx
    from onnx import helper, numpy_helper

    # per_channel and symmetric are recorded in the package manifest as facts of this mode, not
    # knobs: refuse an override rather than ignore it.
    for key in ("per_channel", "symmetric"):
        if settings.get(key, True) is not True:
            raise WebsemError(f"websem: weight-int8 is per-channel symmetric only, got {key}="
                              f"{settings[key]!r}; use {key}=true, or weight-int4 for asymmetric blocks")
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    exclude = list(settings.get("exclude") or [])
    matmul_w: set[str] = set()
    keep8: set[str] = set()  # MatMul weights that keep 8 bits under weight_bits (weight_bits_keep)
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
            if any(pat in n.name for pat in settings.get("weight_bits_keep") or []):
                keep8.add(n.input[1])
        elif (
            _embedding_format(settings) == "int8-rows"
            and n.op_type == "Gather"
            and n.input[0] in inits
            and len(inits[n.input[0]].dims) == 2
            and all(a.i == 0 for a in n.attribute if a.name == "axis")
        ):
            tables.add(n.input[0])
    head, new_inits = [], []
    weight_qmax, table_qmax = _qmax(settings, "weight_bits"), _qmax(settings, "embedding_bits")
    solved: dict[str, np.ndarray] = {}
    if settings.get("rounding", "nearest") == "gptq" and matmul_w:
        from .gptq import gptq_weights

        # the scales stay those of round-to-nearest; GPTQ only chooses the int8 values
        qmaxes = {n: 127 if n in keep8 else weight_qmax for n in matmul_w}
        scales = {n: channel_scales(numpy_helper.to_array(inits[n]).astype(np.float32), 1,
                                    settings.get("scale", "max"), qmaxes[n]) for n in sorted(matmul_w)}
        solved = gptq_weights(model, sorted(matmul_w), scales, qmaxes, tokenizer, settings)

    def q8(name: str, axis: int, qmax: int) -> tuple[str, str, np.ndarray]:
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        scale = channel_scales(w, axis, settings.get("scale", "max"), qmax)
        shape = (1, -1) if axis == 1 else (-1, 1)
        q = solved.get(name)
        if q is None:
            q = np.clip(np.rint(w / scale.reshape(shape)), -qmax, qmax).astype(np.int8)
        g.initializer.remove(inits[name])
        new_inits.append(numpy_helper.from_array(q, f"{name}_int8"))
        new_inits.append(numpy_helper.from_array(scale, f"{name}_scale"))
        return f"{name}_int8", f"{name}_scale", scale

    for name in sorted(matmul_w):
        # W is [K, N]: one scale per output column. The DequantizeLinear output keeps the
        # original initializer name, so the MatMul is untouched and computes in fp32.
        # onnxruntime does not constant-fold DequantizeLinear by default (it keeps
        # QDQ units for its int8 kernels); OnnxEmbedder sets session.disable_quant_qdq=1 so
        # these are folded once at session load instead of re-run on every call.
        qn, sn, scale = q8(name, 1, 127 if name in keep8 else weight_qmax)
        zp = f"{name}_zero_point"
        new_inits.append(numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), zp))
        head.append(
            helper.make_node("DequantizeLinear", [qn, sn, zp], [name], name=f"websem/dequantize/{name}", axis=1)
        )
    gathers: list[tuple] = []
    # embedding_bits applies to the word table only (the largest: 11.7M of MiniLM's 12M table
    # values). The position and token-type rows are added to every token's input, so fewer levels
    # there cost as much quality as in the word table, for 0.03 MB of brotli (docs/quantization.md).
    word = max(tables, key=lambda t: inits[t].dims[0], default=None)
    for name in sorted(tables):
        # Embedding table [V, D], one scale per row (token). Gather the int8 rows first and
        # dequantize only those (Cast * gathered scale): dequantizing the whole 30522 x 384 table
        # on every run would cost more than the model's first layer for a short query.
        qn, sn, _ = q8(name, 0, table_qmax if name == word else 127)
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
    if _embedding_format(settings) in ("block8", "block4"):
        model = _quantize_tables(model, settings)
    onnx.checker.check_model(model)
    return model


def _weight_int8_packed(model, settings: dict):
    return _weight_nbits(model, settings, 8)


def _weight_int4(model, settings: dict):
    return _weight_nbits(model, settings, 4)


def _weight_nbits(model, settings: dict, bits: int):
    """Dense MatMuls → com.microsoft MatMulNBits (`bits` 8 or 4), embeddings per `embeddings`."""
    import onnx
    from onnx import helper, numpy_helper

    mode = settings.get("mode", f"{bits}-bit")
    block_size = int(settings.get("block_size", 32))
    if block_size < 16 or block_size > 256 or block_size & (block_size - 1):
        raise WebsemError(
            f"websem: {mode} block_size {block_size} is not supported; "
            "choose a power of two from 16 to 256 (MatMulNBits)"
        )
    if int(settings.get("accuracy_level", 0)) != 0:
        raise WebsemError(
            f"websem: {mode} accuracy_level {settings['accuracy_level']} is not allowed: "
            "levels > 0 quantize activations per run (batch-dependent); use accuracy_level=0"
        )
    symmetric = bool(settings.get("symmetric", True))
    if bits == 8 and not symmetric:
        raise WebsemError(f"websem: {mode} is symmetric only; use symmetric=true")
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
        method = settings.get("scale", "mse")
        if bits == 8:
            b, scales = pack_nbits8(w, block_size, method)
            zp = None
        else:
            b, scales, zp = pack_nbits4(w, block_size, method, symmetric)
        base = n.name or n.output[0]
        # Names derive from the MatMul node, so a weight shared by two MatMuls is packed twice
        # (never happens in BERT; correct either way).
        bn, sn = f"{base}/B_nbits{bits}", f"{base}/scales"
        new_inits += [numpy_helper.from_array(b, bn), numpy_helper.from_array(scales, sn)]
        inputs = [n.input[0], bn, sn]
        if zp is not None:
            new_inits.append(numpy_helper.from_array(zp, f"{base}/zero_points"))
            inputs.append(f"{base}/zero_points")
        nodes.append(
            helper.make_node(
                "MatMulNBits", inputs, list(n.output), name=f"{base}/nbits{bits}",
                domain="com.microsoft", K=k, N=cols, bits=bits, block_size=block_size,
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
    ensure_ms_domain(model)
    model = _quantize_tables(model, settings)
    onnx.checker.check_model(model)
    return model


def _embedding_format(settings: dict) -> str | None:
    """The `embeddings` setting as one of EMBEDDINGS, or None (tables stay fp32)."""
    value = settings.get("embeddings")
    if value is True:
        return "int8-rows"
    if value in (False, None):
        return None
    if value not in EMBEDDINGS:
        raise WebsemError(
            f"websem: embeddings '{value}' is unknown; choose true (= int8-rows), false, "
            + ", ".join(EMBEDDINGS)
        )
    return value


def _quantize_tables(model, settings: dict):
    """Quantize the 2-D constant Gather tables (word, position, token-type embeddings)."""
    fmt = _embedding_format(settings)
    exclude = list(settings.get("exclude") or [])
    if fmt == "int8-rows":
        return _weight_int8(
            model,
            {"matmul": False, "embeddings": True, "scale": settings.get("scale", "mse"), "exclude": exclude,
             "embedding_bits": settings.get("embedding_bits", 8)},
        )
    if fmt in ("block8", "block4"):
        return gather_block(
            model, 8 if fmt == "block8" else 4, int(settings.get("embedding_block_size", 32)),
            settings.get("scale", "mse"), exclude,
        )
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
        qmodel = _weight_int8(qmodel, {"matmul": False, "embeddings": True, "scale": "mse",
                                       "embedding_bits": settings.get("embedding_bits", 8)})
    return qmodel


def quantize(model, settings: dict, tokenizer=None):
    """Quantize `model` (an onnx.ModelProto) per `settings` (see default_settings). `tokenizer`
    (the package's, export/embed.load_tokenizer) is needed by rounding=gptq only, to calibrate."""
    mode = settings["mode"]
    if mode == "none":
        return model
    if mode == "weight-int8":
        return _weight_int8(model, settings, tokenizer)
    if mode == "weight-int8-packed":
        return _weight_int8_packed(model, settings)
    if mode == "weight-int4":
        return _weight_int4(model, settings)
    if mode == "dynamic-int8":
        return _dynamic_int8(model, settings)
    raise WebsemError(f"websem: unknown quantization '{mode}'; choose one of {', '.join(MODES)}")
