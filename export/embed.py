"""CPU embedding with onnxruntime, one text per run (batch size 1, no padding).

Batch 1 is the contract (docs/architecture.md): dynamic int8 quantizes activations with one
scale per run, so batching would make a vector depend on its neighbours; it is also exactly what
the browser runs for a query."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxEmbedder", "load_tokenizer"]


def load_tokenizer(tokenizer_json: Path | bytes, max_length: int) -> Any:
    """The package tokenizer: websem's stdlib WordPiece (what the browser runs) when available.

    Falls back to HF `tokenizers` on the same tokenizer.json (padding off, truncation at
    max_length, as written by `websem export`) only while the stdlib tokenizer is not there."""
    if isinstance(tokenizer_json, bytes):
        text = tokenizer_json.decode("utf-8")
    else:
        text = Path(tokenizer_json).read_text(encoding="utf-8")
    try:
        from websem.text.wordpiece import WordPieceTokenizer
    except ImportError:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(text)
        tok.no_padding()
        tok.enable_truncation(max_length)
        return tok
    return WordPieceTokenizer.from_json(text, max_length=max_length)


class OnnxEmbedder:
    """`sentence_embedding` of a websem model package (or a model.onnx / serialized model)."""

    def __init__(
        self,
        model: Path | str | bytes,
        threads: int | None = None,
        *,
        max_length: int | None = None,
        output: str = "sentence_embedding",
    ) -> None:
        import onnxruntime as ort

        self.model_dir: Path | None = None
        mode = None
        source: str | bytes
        if isinstance(model, bytes):
            source = model
        else:
            path = Path(model)
            if path.is_dir():
                self.model_dir = path
                path = path / "model.onnx"
                manifest = self.model_dir / "manifest.json"
                if manifest.is_file():
                    meta = json.loads(manifest.read_text())
                    max_length = max_length or meta["max_seq_length"]
                    mode = (meta.get("quantization") or {}).get("mode")
            source = str(path)
        self.max_length = max_length
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Let onnxruntime constant-fold DequantizeLinear (weight-int8 packages) once
        # at load; by default it keeps DQ nodes for QDQ fusion and re-dequantizes every run.
        # Same numbers either way (q * scale in fp32), fp32 speed instead of slower.
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        if mode == "dynamic-int8":
            # The x86 build fuses DynamicQuantizeLinear + MatMulInteger + Mul into
            # MatMulIntegerToFloat (extended level), which onnxruntime-web does not: cosine
            # 0.9964 against the browser on some queries. Basic level keeps the unfused ops, as
            # the browser runs them (cosine >= 0.9999, same speed here).
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        self.output = output
        self.input_names = [i.name for i in self.session.get_inputs()]
        outputs = {o.name: o for o in self.session.get_outputs()}
        self.dims = int(outputs[output].shape[-1])

    def embed_ids(self, ids: Sequence[int]) -> np.ndarray:
        """One ORT run on one token sequence (with [CLS]/[SEP]) → float32 [dims]."""
        arr = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        feeds = {
            "input_ids": arr,
            "attention_mask": np.ones_like(arr),
            "token_type_ids": np.zeros_like(arr),
        }
        feeds = {k: v for k, v in feeds.items() if k in self.input_names}
        return self.session.run([self.output], feeds)[0][0].astype(np.float32, copy=False)

    def embed_texts(
        self, texts: Iterable[str], tokenizer: Any = None, progress: bool = True
    ) -> np.ndarray:
        """Tokenize (default: the package's tokenizer) and embed each text → float32 [n, dims]."""
        texts = list(texts)
        if tokenizer is None:
            if self.model_dir is None:
                raise ValueError("embed_texts needs a tokenizer when the model is not a package folder")
            tokenizer = load_tokenizer(self.model_dir / "tokenizer.json", self.max_length or 512)
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if progress and len(texts) > 1:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("embedding", total=len(texts))
                for i, t in enumerate(texts):
                    out[i] = self.embed_ids(tokenizer.encode(t).ids)
                    bar.advance(task)
        else:
            for i, t in enumerate(texts):
                out[i] = self.embed_ids(tokenizer.encode(t).ids)
        return out
