"""Step 5: refuse graphs that onnxruntime-web's WASM backend cannot run.

export/data/ortweb_wasm_ops.txt lists (domain, op_type) pairs that tests/js/run_ort_web.mjs has
actually run in onnxruntime-web 1.30 (wasm backend) for some mode, plus standard ONNX ops
websem may produce. Extend it only together with a test that runs the new op in ORT-web."""

from __future__ import annotations

from importlib import resources

from websem.text.errors import WebsemError

from .quantize import MODES

__all__ = ["allowed_ops", "graph_ops", "check_ops"]


def allowed_ops() -> set[tuple[str, str]]:
    text = resources.files("websem.export").joinpath("data/ortweb_wasm_ops.txt").read_text("utf-8")
    out = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            domain, op = line.split()
            out.add(("" if domain == "ai.onnx" else domain, op))
    return out


def graph_ops(model) -> list[tuple[str, str]]:
    """Sorted distinct (domain, op_type) of the main graph ('' = the default ONNX domain)."""
    return sorted({(n.domain, n.op_type) for n in model.graph.node})


def check_ops(model, mode: str) -> list[str]:
    """Return the op list (for the manifest); raise if any op is not in the allowlist."""
    ops = graph_ops(model)
    bad = [f"{d or 'ai.onnx'}:{o}" for d, o in ops if (d, o) not in allowed_ops()]
    if bad:
        raise WebsemError(
            f"websem: quantization '{mode}' produced ops that onnxruntime-web's WASM backend is not "
            f"verified to run: {', '.join(bad)}; choose another --quantization ({', '.join(MODES)})"
        )
    return [o if not d else f"{d}:{o}" for d, o in ops]
