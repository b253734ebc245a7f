"""GPTQ rounding for weight-int8's dense weights (`--quantization-option rounding=gptq`).

Round-to-nearest rounds every weight on its own. GPTQ (Frantar et al. 2022, "GPTQ: Accurate
Post-Training Quantization for Generative Pre-trained Transformers") rounds the weight one input
row at a time and moves each row's rounding error onto the rows not yet rounded, weighted by how
the layer's inputs correlate, so the layer *output* X·Ŵ stays close to X·W on real activations:

- X: the inputs of the MatMul on the calibration text (export/data/calibration.txt, generated
  by export/data/make_calibration.py from CPython's docstrings; never the gate sentences or a
  judged set), one text per fp32 onnxruntime run, as the model is used;
- H = 2·XᵀX / n + damp·mean(diag)·I;
- U = the upper Cholesky factor of H⁻¹; for row k: q_k = round(w_k / s), e = (w_k − s·q_k) / U_kk,
  and w_j −= U_kj·e for every later row j (in blocks of 128 rows, the paper's lazy updates).

ONNX MatMul is x @ W with W[K, N]: the paper's "column" (an input channel) is a K-row here, and
the per-output-channel scale s (one per N column, MSE-chosen clipping on the fp32 weight, as for
round-to-nearest) stays fixed. The graph, ops and raw size are those of weight-int8: only the int8
values change. Pure numpy in float64; the same inputs give the same bytes.

Options (recorded in the manifest when given): `gptq_damp` (default 0.01), `gptq_act_order`
(round the rows with the largest diag(H) first), `gptq_sequential` (calibrate each transformer
layer on the outputs of the already-quantized layers before it, one calibration pass per layer)."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
from websem.text.errors import WebsemError

__all__ = ["calibration_texts", "collect_hessians", "gptq_rows", "gptq_weights"]

BLOCK = 128  # rows per lazy batch update: same result as row-by-row, fewer passes over W


def calibration_texts() -> list[str]:
    """The committed calibration text (export/data/calibration.txt, one text per line)."""
    text = resources.files("websem.export").joinpath("data/calibration.txt").read_text("utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


# The last calibration (key → Hessians): one process that quantizes several GPTQ variants of
# the same model (bench/bench_quant.py) calibrates once; the slow part is XᵀX, not the rounding.
_LAST: dict[tuple, dict[str, np.ndarray]] = {}


def collect_hessians(model_bytes: bytes, inputs: list[str], tokenizer, texts: list[str],
                     threads: int | None = None) -> dict[str, np.ndarray]:
    """2·XᵀX / n for each activation tensor in `inputs`, over every token of `texts` (fp32 CPU
    onnxruntime, one text per run, no padding, exactly as the model embeds a text)."""
    import hashlib

    key = (hashlib.sha256(model_bytes).hexdigest(), tuple(inputs),
           hashlib.sha256("\n".join(texts).encode()).hexdigest())
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = _collect(model_bytes, inputs, tokenizer, texts, threads)
    return _LAST[key]


def _collect(model_bytes: bytes, inputs: list[str], tokenizer, texts: list[str],
             threads: int | None) -> dict[str, np.ndarray]:
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load_from_string(model_bytes)
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(
        helper.make_empty_tensor_value_info(name) for name in inputs if name not in have
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or 0
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    sums: dict[str, np.ndarray] = {}
    n = 0
    for text in texts:
        ids = np.asarray(tokenizer.encode(text).ids, dtype=np.int64).reshape(1, -1)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        outs = sess.run(inputs, {k: v for k, v in feeds.items() if k in names})
        for name, x in zip(inputs, outs, strict=True):
            # float32 products per text (at most 256 tokens), float64 sums across texts: half
            # the time of float64 products, the Hessian itself needs no more precision
            x = x.reshape(-1, x.shape[-1])
            sums[name] = sums.get(name, 0) + (x.T @ x).astype(np.float64)
        n += ids.shape[1]
    return {name: 2.0 * s / n for name, s in sums.items()}


def gptq_rows(w: np.ndarray, h: np.ndarray, scale: np.ndarray, qmax: int, *, damp: float = 0.01,
              act_order: bool = False) -> np.ndarray:
    """int8 values in [-qmax, qmax] for the MatMul weight `w` [K, N] with per-column `scale` [N],
    rounded row by row with GPTQ error feedback under the input Hessian `h` [K, K]."""
    if damp <= 0:
        raise WebsemError(f"websem: gptq_damp {damp!r} must be > 0 (a fraction of mean(diag(H)), e.g. 0.01)")
    k = w.shape[0]
    W = w.astype(np.float64).copy()
    H = np.array(h, dtype=np.float64, copy=True)
    s = scale.astype(np.float64)[None, :]
    dead = np.diag(H) == 0  # an input that is always 0: its row never reaches the output
    H[dead, dead] = 1.0
    W[dead] = 0.0
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(k)
    W, H = W[perm], H[np.ix_(perm, perm)]
    H[np.diag_indices(k)] += damp * float(np.mean(np.diag(H)))
    try:
        # upper Cholesky factor of H⁻¹ (the paper's Hinv): H⁻¹ = Uᵀ·U
        U = np.linalg.cholesky(np.linalg.inv(H)).T
    except np.linalg.LinAlgError as e:
        raise WebsemError(
            f"websem: GPTQ Hessian is not positive definite at gptq_damp {damp}; raise gptq_damp (e.g. 0.1)"
        ) from e
    Q = np.zeros(W.shape, dtype=np.int8)
    for i1 in range(0, k, BLOCK):
        i2 = min(i1 + BLOCK, k)
        W1, U1 = W[i1:i2].copy(), U[i1:i2, i1:i2]
        err = np.zeros_like(W1)
        for i in range(i2 - i1):
            q = np.clip(np.rint(W1[i] / s[0]), -qmax, qmax)
            Q[i1 + i] = q
            err[i] = (W1[i] - q * s[0]) / U1[i, i]
            W1[i + 1:] -= np.outer(U1[i, i + 1:], err[i])
        W[i2:] -= U[i1:i2, i2:].T @ err
    out = np.empty_like(Q)
    out[perm] = Q
    return out


def _matmul_inputs(model, weights: list[str]) -> dict[str, str]:
    """weight initializer → its MatMul's activation input, for the names in `weights`."""
    want = set(weights)
    return {n.input[1]: n.input[0] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in want}


def _layer_groups(model, weights: list[str]) -> list[list[str]]:
    """`weights` in graph order, grouped by transformer layer (`layer.N` in the node name);
    one group when names carry no layer number."""
    want = set(weights)
    groups: dict[str, list[str]] = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[1] in want:
            want.discard(n.input[1])
            m = re.search(r"layers?[._/](\d+)", n.name)
            groups.setdefault(m.group(1) if m else "", []).append(n.input[1])
    return list(groups.values())


def gptq_weights(model, weights: list[str], scales: dict[str, np.ndarray], qmax: dict[str, int], tokenizer,
                 settings: dict) -> dict[str, np.ndarray]:
    """GPTQ int8 values for each MatMul weight initializer in `weights` of the fp32 `model`
    (left unchanged), with the fixed per-column `scales` and each weight's largest level `qmax`."""
    from onnx import numpy_helper

    if tokenizer is None:
        raise WebsemError("websem: rounding=gptq needs the package tokenizer to calibrate; "
                          "call quantize(model, settings, tokenizer=...) or use rounding=nearest")
    damp = float(settings.get("gptq_damp", 0.01))
    act_order = bool(settings.get("gptq_act_order", False))
    texts = calibration_texts()
    act = _matmul_inputs(model, weights)
    inits = {t.name: t for t in model.graph.initializer}
    groups = _layer_groups(model, weights) if settings.get("gptq_sequential") else [list(weights)]
    work = model.__class__()
    work.CopyFrom(model)
    work_inits = {t.name: t for t in work.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for group in groups:
        hessians = collect_hessians(work.SerializeToString(), sorted({act[w] for w in group}), tokenizer, texts)
        for name in group:
            w = numpy_helper.to_array(inits[name]).astype(np.float32)
            out[name] = gptq_rows(w, hessians[act[name]], scales[name], qmax[name], damp=damp,
                                  act_order=act_order)
            if len(groups) > 1:
                # later layers calibrate on what the quantized model computes here
                deq = (out[name].astype(np.float32) * scales[name][None, :]).astype(np.float32)
                work_inits[name].CopyFrom(numpy_helper.from_array(deq, name))
    return out
