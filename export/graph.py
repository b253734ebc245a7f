"""Step 2: append sentence-transformers pooling (+ L2 normalize) to the exported graph.

The package keeps `last_hidden_state` (so transformers.js can run the very same file) and adds
`sentence_embedding` [batch, dims], computed exactly like sentence-transformers does:
mean = sum(h * mask) / clamp(sum(mask), 1e-9); cls = h[:, 0]; normalize = x / max(||x||_2, 1e-12).
"""

from __future__ import annotations

import numpy as np
from websem.text.errors import WebsemError

__all__ = ["add_sentence_embedding", "canonicalize"]


def add_sentence_embedding(model, pooling: str, normalize: bool, dims: int):
    """Return `model` with the pooling (+ normalize) nodes and a `sentence_embedding` output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    hidden = "last_hidden_state"
    if [o.name for o in g.output] != [hidden]:
        raise WebsemError(f"websem: unexpected ONNX outputs {[o.name for o in g.output]}; expected [{hidden}]")
    consts = {
        "websem_axes_1": numpy_helper.from_array(np.array([1], dtype=np.int64), "websem_axes_1"),
        "websem_axes_m1": numpy_helper.from_array(np.array([-1], dtype=np.int64), "websem_axes_m1"),
        "websem_eps_count": numpy_helper.from_array(np.array(1e-9, dtype=np.float32), "websem_eps_count"),
        "websem_eps_norm": numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "websem_eps_norm"),
        "websem_cls_index": numpy_helper.from_array(np.array(0, dtype=np.int64), "websem_cls_index"),
    }
    nodes = []

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        out = f"websem/{name}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"websem/{name}", **attrs))
        return out

    if pooling == "mean":
        mask = node("Unsqueeze", ["attention_mask", "websem_axes_m1"], "pool/mask_unsqueeze")
        maskf = node("Cast", [mask], "pool/mask_float", to=TensorProto.FLOAT)
        masked = node("Mul", [hidden, maskf], "pool/masked")
        summed = node("ReduceSum", [masked, "websem_axes_1"], "pool/sum", keepdims=0)
        count = node("ReduceSum", [maskf, "websem_axes_1"], "pool/count", keepdims=0)
        count = node("Max", [count, "websem_eps_count"], "pool/count_clamp")
        pooled = node("Div", [summed, count], "pool/mean")
    elif pooling == "cls":
        pooled = node("Gather", [hidden, "websem_cls_index"], "pool/cls", axis=1)
    else:  # resolve_source already refused anything else
        raise WebsemError(f"websem: pooling '{pooling}' is not supported; supported: mean, cls")
    if normalize:
        sq = node("Mul", [pooled, pooled], "norm/square")
        ss = node("ReduceSum", [sq, "websem_axes_1"], "norm/sum", keepdims=1)
        n = node("Sqrt", [ss], "norm/sqrt")
        n = node("Max", [n, "websem_eps_norm"], "norm/clamp")
        pooled = node("Div", [pooled, n], "norm/div")
    nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"], name="websem/output"))
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    g.initializer.extend(t for name, t in consts.items() if name in used)
    g.output.append(
        helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch_size", dims])
    )
    onnx.checker.check_model(model)
    return model


def canonicalize(model, producer: str):
    """Strip everything that is not the computation, so two exports are byte-identical:
    doc strings (the torch exporter can put source locations there), metadata and value_info
    from a particular run; set a fixed producer."""
    model.doc_string = ""
    model.producer_name = "websem"
    model.producer_version = producer
    del model.metadata_props[:]
    g = model.graph
    g.doc_string = ""
    for n in g.node:
        n.doc_string = ""
    for coll in (g.input, g.output, g.value_info):
        for v in coll:
            v.doc_string = ""
    for t in g.initializer:
        t.doc_string = ""
    return model
