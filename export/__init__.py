"""websem.export: `websem export`: Optimum ONNX export, int8 quantization with a measured
quality gate, and the versioned model package (see docs/architecture.md)."""

from __future__ import annotations

from .pipeline import export_model

__all__ = ["export_model"]
