"""The bundle body's graph optimized once, at build time, instead of in every visitor's browser.

onnxruntime-web creates the model's session with graph optimization level "basic" (constant
folding, redundant-node elimination), which for the default body folds its 156 ``Constant`` nodes
and the shape arithmetic around them: 544 nodes become 339. In a cold visit every optimizer pass
runs in freshly compiled wasm (V8 compiles each function lazily, at its first call) on the page's
critical path, so the build does it instead, with the same onnxruntime version (pyproject pins
onnxruntime to onnxruntime-web's) and the same session settings the runtime uses
(``session.disable_quant_qdq``), and saves the optimized graph. The runtime then creates the
session with optimization "disabled" when ``manifest.model.graph_optimization`` says "basic"
(web/src/model.js); the session runs the very nodes it would have made itself, so embeddings are
bit-identical (tests/test_model_split.py, with onnxruntime and onnxruntime-web).

Level "basic" only: its rewrites are execution-provider independent, so a graph saved on the CPU
EP holds for the wasm one (the "extended" and "all" levels insert EP-specific fused ops).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from websem.text.errors import WebsemError

__all__ = ["GRAPH_OPTIMIZATION", "optimize_graph"]

# manifest.model.graph_optimization for a body optimized here.
GRAPH_OPTIMIZATION = "basic"
# A folded graph must not cost visitors bytes: one that grows (e.g. DequantizeLinear weights folded
# into float32, 4x their int8 size) by more than this is not used.
MAX_GROWTH = 1.01


def optimize_graph(model_bytes: bytes, name: str = "model.onnx") -> bytes | None:
    """``model_bytes`` optimized at onnxruntime level "basic" with the runtime's session settings,
    serialized; or None when that graph would be larger than ``MAX_GROWTH`` times the input (the
    runtime then optimizes the original graph itself, as before). ``name`` is for errors."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a dependency of websem itself
        raise WebsemError("websem: optimizing the model graph needs onnxruntime; "
                          "install websem with its dependencies (pip install -e .)") from e
    with tempfile.TemporaryDirectory(prefix="websem-graph-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        # As web/src/model.js creates the session: weight DequantizeLinear nodes are folded, not
        # kept for QDQ fusion.
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(out)
        try:
            ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise WebsemError(f"websem: onnxruntime could not optimize {name} ({e}); re-export the model "
                              "with `websem export`, or build with --model-layout whole") from e
        optimized = out.read_bytes()
    return optimized if len(optimized) <= len(model_bytes) * MAX_GROWTH else None
