"""The split body's dense layers as MatMulNBits bits=8 (build/model_pack.py): the same int8
weights and scales, so the dequantized weights are bit-identical and the sentence embeddings
agree to float rounding on CPU onnxruntime and onnxruntime-web; other layer forms are left alone;
--model-matmul refuses unknown values."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
ORT_WEB_SCRIPT = REPO / "tests" / "js" / "run_ort_web.mjs"


def _golden_ids(model_package: Path) -> list[list[int]]:
    from websem.export.embed import load_tokenizer

    tok = load_tokenizer(model_package / "tokenizer.json", 256)
    strings = [s["text"] for s in json.loads((FIXTURES / "golden_strings.json").read_text("utf-8"))]
    assert len(strings) > 10
    return [tok.encode(s).ids for s in strings]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def packed(model_package: Path):
    """(original ModelProto, packed ModelProto, layers packed): the whole default model packed,
    so the same graph can be run by both runtimes with and without the rewrite."""
    import onnx
    from websem.build.model_pack import pack_matmuls

    original = onnx.load(str(model_package / "model.onnx"))
    model = onnx.load(str(model_package / "model.onnx"))
    return original, model, pack_matmuls(model)


def test_packed_weights_dequantize_to_the_same_floats(packed) -> None:
    from onnx import helper, numpy_helper

    original, model, count = packed
    dqs = [n for n in original.graph.node if n.op_type == "DequantizeLinear"]
    assert count == len(dqs) == 36  # MiniLM-L6: 6 layers x (q, k, v, out, up, down)
    assert not any(n.op_type == "DequantizeLinear" for n in model.graph.node)
    a = {t.name: numpy_helper.to_array(t) for t in original.graph.initializer}
    b = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    by_b = {n.input[1]: n for n in model.graph.node if n.op_type == "MatMulNBits"}
    for dq in dqs:
        # What DequantizeLinear computes: float32(q) * scale (zero point 0).
        want = a[dq.input[0]].astype(np.float32) * a[dq.input[1]][None, :]
        node = by_b[f"{dq.output[0]}/B_nbits8"]
        attrs = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        k, n = want.shape
        assert attrs == {"K": k, "N": n, "bits": 8, "block_size": 128, "accuracy_level": 0}
        assert len(node.input) == 3 and node.domain == "com.microsoft"  # no zero_points: 128
        q, s = b[node.input[1]], b[node.input[2]]
        assert q.dtype == np.uint8 and q.shape == (n, k // 128, 128) and s.shape == (n * (k // 128),)
        # What MatMulNBits computes per block: (q - 128) * scale of (column, block).
        got = ((q.astype(np.float32) - 128) * s.reshape(n, -1, 1)).reshape(n, k).T
        assert got.tobytes() == want.tobytes(), dq.output[0]
        assert dq.input[0] not in b and dq.input[1] not in b  # the int8 copy is gone
    assert any(o.domain == "com.microsoft" for o in model.opset_import)


def test_packed_model_embeds_like_the_original_on_cpu_and_ort_web(packed, model_package: Path,
                                                                  tmp_path: Path) -> None:
    from websem.export.embed import OnnxEmbedder

    original, model, _ = packed
    ids = _golden_ids(model_package)
    ref = np.stack([OnnxEmbedder(original.SerializeToString(), threads=1).embed_ids(i) for i in ids])
    cpu = np.stack([OnnxEmbedder(model.SerializeToString(), threads=1).embed_ids(i) for i in ids])
    assert float(np.abs(cpu - ref).max()) <= 1e-6
    assert float(_cosines(cpu, ref).min()) >= 0.999999

    node = shutil.which("node")
    assert node, "Node 20 is required to run onnxruntime-web"
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))
    web = {}
    for name, m in (("original", original), ("packed", model)):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(m.SerializeToString())
        res = subprocess.run([node, str(ORT_WEB_SCRIPT), str(path), str(ids_file)],
                             capture_output=True, text=True, timeout=600, check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        web[name] = np.array(json.loads(res.stdout)["embeddings"], dtype=np.float32)
    for got in web.values():
        assert float(np.abs(got - ref).max()) <= 1e-6
        assert float(_cosines(got, ref).min()) >= 0.999999


def _dq_graph(weight: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, reader: str = "MatMul"):
    """A one-layer graph x[1, K] -> DequantizeLinear(weight) -> ``reader``."""
    from onnx import TensorProto, helper, numpy_helper

    k, n = weight.shape
    inits = [numpy_helper.from_array(weight, "w_q"), numpy_helper.from_array(scale, "w_scale")]
    dq_inputs = ["w_q", "w_scale"]
    if zero_point is not None:
        inits.append(numpy_helper.from_array(zero_point, "w_zp"))
        dq_inputs.append("w_zp")
    nodes = [helper.make_node("DequantizeLinear", dq_inputs, ["w"], axis=1)]
    if reader == "MatMul":
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    else:  # the float weight read by an Add as well: it must survive
        nodes += [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["w", "w"], ["y"])]
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [k, n])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])], [y],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("k, block", [(384, 128), (1536, 128), (48, 16), (96, 32), (40, None)])
def test_block_size_is_the_largest_power_of_two_dividing_k(k: int, block: int | None) -> None:
    from websem.build.model_pack import nbits_block_size

    assert nbits_block_size(k) == block


def test_layers_in_other_forms_are_left_alone(packed, model_package: Path) -> None:
    import onnx
    from websem.build.model_pack import pack_matmuls

    _, model, _ = packed
    again = onnx.ModelProto()
    again.CopyFrom(model)
    assert pack_matmuls(again) == 0 and again.SerializeToString() == model.SerializeToString()

    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, size=(64, 8)).astype(np.int8)
    scale = rng.random(8).astype(np.float32)
    cases = {
        "nonzero zero point": _dq_graph(q, scale, np.full(8, 3, dtype=np.int8)),
        "uint8 weights": _dq_graph(q.view(np.uint8), scale, np.zeros(8, dtype=np.uint8)),
        "weight read by another op": _dq_graph(q, scale, None, reader="Add"),
        "K not a multiple of 16": _dq_graph(q[:40], scale, None),
    }
    for what, m in cases.items():
        before = m.SerializeToString()
        assert pack_matmuls(m) == 0 and m.SerializeToString() == before, what
    ok = _dq_graph(q, scale, np.zeros(8, dtype=np.int8))
    assert pack_matmuls(ok) == 1 and [n.op_type for n in ok.graph.node] == ["MatMulNBits"]
    assert {t.name for t in ok.graph.initializer} == {"w/B_nbits8", "w/nbits_scales"}


def test_fp32_model_body_is_not_packed(tmp_path: Path) -> None:
    """A float32 dense layer (no DequantizeLinear) stays a MatMul."""
    from onnx import TensorProto, helper, numpy_helper
    from websem.build.model_pack import pack_matmuls

    w = numpy_helper.from_array(np.ones((32, 4), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    before = m.SerializeToString()
    assert pack_matmuls(m) == 0 and m.SerializeToString() == before


def test_unknown_model_matmul_is_refused(model_package: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from websem.build.bundle import build_bundle
    from websem.build.command import build_cmd
    from websem.build.model_split import install_model
    from websem.text.errors import WebsemError

    for call in (
        lambda: build_bundle(FIXTURES / "sites" / "mkdocs", tmp_path / "out", model=model_package,
                             model_matmul="int4"),
        lambda: install_model(model_package, tmp_path / "model", layout="split", package_sha256="x",
                              matmul="int4"),
    ):
        with pytest.raises(WebsemError, match=r"websem: --model-matmul 'int4' is unknown; allowed: nbits8, fp32"):
            call()
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(build_cmd, [str(FIXTURES / "sites" / "mkdocs"), "--out", str(tmp_path / "cli"),
                                         "--model", str(model_package), "--model-matmul", "int4"])
    assert res.exit_code == 2 and "websem: --model-matmul 'int4' is unknown; allowed: nbits8, fp32" in res.output


@pytest.mark.parametrize("matmul", ["nbits8", "fp32"])
def test_bundle_records_the_body_matmul(matmul: str, model_package: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from websem.build.bundle import build_bundle
    from websem.export.embed import OnnxEmbedder
    from websem.web.query import SplitEmbedder, verify_bundle

    monkeypatch.setenv("WEBSEM_NO_SNAPSHOT", "1")  # the CPU path does not need one
    out = tmp_path / "bundle"
    build_bundle(FIXTURES / "sites" / "mkdocs", out, model=model_package, progress=False, precompress=False,
                 model_matmul=matmul)
    manifest = verify_bundle(out)
    ops = {n.op_type for n in onnx.load(str(out / "model" / "model.onnx")).graph.node}
    if matmul == "nbits8":
        assert manifest["model"]["matmul"] == "nbits8"
        assert "MatMulNBits" in ops and "DequantizeLinear" not in ops
    else:
        assert "matmul" not in manifest["model"]
        assert "MatMulNBits" not in ops and "DequantizeLinear" in ops
    assert "matmul" not in manifest["model"]["word_rows"]
    split = SplitEmbedder(out, manifest)
    whole = OnnxEmbedder(model_package, threads=1)
    ids = _golden_ids(model_package)
    a = np.stack([whole.embed_ids(i) for i in ids])
    b = np.stack([split.embed_ids(i) for i in ids])
    assert float(np.abs(a - b).max()) <= 1e-6
