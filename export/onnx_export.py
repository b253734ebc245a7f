"""Step 1: export the transformer to ONNX with Hugging Face Optimum (fp32, dynamic axes)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from websem.text.errors import WebsemError

from .source import SourceModel

__all__ = ["OPSET", "export_fp32"]

# opset 17: first opset with LayerNormalization (one fused node instead of ~9), supported by
# onnxruntime 1.30 and onnxruntime-web 1.30 alike; Optimum warns that it recommends 18 for
# BERT, but the graph it produces at 17 is identical apart from ReduceMean's axes input.
OPSET = 17


def _quiet_hf_logging() -> None:
    """Optimum/transformers log deprecation notes and an opset advice on every export; websem
    prints its own progress, so only their errors get through."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    for name in ("optimum", "optimum.exporters", "optimum.onnxruntime"):
        logging.getLogger(name).setLevel(logging.ERROR)


def export_fp32(src: SourceModel):
    """Run Optimum's `main_export` (library_name="transformers", task feature-extraction) into a
    private temp dir and return the loaded `onnx.ModelProto` (weights inlined, < 2 GB)."""
    try:
        import onnx
        from optimum.exporters.onnx import main_export
    except ImportError as e:
        raise WebsemError(
            "websem: `websem export` needs optimum-onnx and torch; run "
            "`pip install torch==2.13.0 'websem[export]'`"
        ) from e
    # The model folder is local by now (hub ids were downloaded in resolve_source).
    os.environ["HF_HUB_OFFLINE"] = "1"
    _quiet_hf_logging()
    with tempfile.TemporaryDirectory(prefix="websem-export-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main_export(
            str(src.path),
            tmp,
            task="feature-extraction",
            library_name="transformers",
            opset=OPSET,
            device="cpu",
            do_validation=False,  # we validate ourselves, against sentence-transformers semantics
            local_files_only=True,
        )
        path = Path(tmp) / "model.onnx"
        if not path.is_file():
            raise WebsemError(f"websem: Optimum produced no model.onnx for {src.model_id}")
        model = onnx.load(str(path), load_external_data=True)
    return model
