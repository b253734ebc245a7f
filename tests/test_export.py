"""`websem export`: real exports of the embedded all-MiniLM-L6-v2, checked against
sentence-transformers, onnxruntime-web (WASM, under Node) and the golden vectors."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from websem.export import export_model
from websem.export.embed import OnnxEmbedder, load_tokenizer
from websem.export.package import load_model_package
from websem.export.quantize import DEFAULT_MODE
from websem.text.errors import WebsemError

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
ORT_WEB_SCRIPT = REPO / "tests" / "js" / "run_ort_web.mjs"
SENTENCES = [
    "How do I reset my password?",
    "Mitochondria are the powerhouse of the cell.",
    "Café, naïve, façade 東京 😀",
    "ok",
    "def embed_ids(self, ids: list[int]) -> np.ndarray:",
    " ".join(["long input that must be truncated at the model's 256 token cap"] * 40),
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def fp32_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp32") / "pkg"
    export_model(None, out, quantization="none", quiet=True)
    return out


@pytest.fixture(scope="module")
def dynamic_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # dynamic-int8 misses the default gate on MiniLM (docs/quantization.md); a configurable,
    # looser threshold lets it through, which is also what this checks.
    out = tmp_path_factory.mktemp("dyn") / "pkg"
    manifest = export_model(
        None, out, quantization="dynamic-int8", threshold={"mean": 0.98, "min": 0.9}, quiet=True
    )
    assert manifest["quality"]["threshold"]["mean"] == 0.98
    return out


@pytest.fixture(scope="module")
def packed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """weight-int8-packed (issue #7): exported for real; passes the default gate (~12 s)."""
    out = tmp_path_factory.mktemp("packed") / "pkg"
    export_model(None, out, quantization="weight-int8-packed", quiet=True)
    return out


@pytest.fixture(scope="module")
def scifact_small(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """SciFact-train subsample: 50 judged queries, all their relevant docs, 300 docs in all."""
    src = shared_data / "scifact-train"
    rng = random.Random(20261128)
    qrels = [ln.split("\t") for ln in (src / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    qids = sorted({q for q, _, _ in qrels}, key=lambda x: int(x))
    keep_q = set(rng.sample(qids, 50))
    rel = [r for r in qrels if r[0] in keep_q]
    corpus = [json.loads(ln) for ln in (src / "corpus.jsonl").read_text().splitlines() if ln.strip()]
    need = {d for _, d, _ in rel}
    others = [d for d in corpus if d["_id"] not in need]
    docs = [d for d in corpus if d["_id"] in need] + rng.sample(others, 300 - len(need))
    out = tmp_path_factory.mktemp("scifact") / "scifact-small"
    (out / "qrels").mkdir(parents=True)
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [json.loads(ln) for ln in (src / "queries.jsonl").read_text().splitlines() if ln.strip()]
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries if q["_id"] in keep_q))
    (out / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rel)
    )
    return out


def test_manifest_contract(model_package: Path) -> None:
    m = load_model_package(model_package)
    assert m["format"] == "websem-model" and m["format_version"] == 1
    assert m["source"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(m["source"]["weights_sha256"]) == 64
    assert (m["dims"], m["max_seq_length"], m["pooling"], m["normalize"]) == (384, 256, "mean", True)
    assert m["do_lower_case"] is True
    assert m["quantization"]["mode"] == DEFAULT_MODE
    assert m["onnx"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert m["onnx"]["output"] == "sentence_embedding"
    assert {"model.onnx", "tokenizer.json"} <= set(m["files"])
    q = m["quality"]["sentences"]
    assert q["n"] >= 200 and q["mean"] >= 0.999 and q["min"] >= 0.99 and q["p1"] >= q["min"]
    tok = json.loads((model_package / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"]["max_length"] == 256
    # int8 weights: the package is about a quarter of the fp32 model (90 MB)
    assert m["files"]["model.onnx"]["size"] < 30e6


def test_pooling_graph_matches_sentence_transformers(
    fp32_package: Path, model_package: Path, source_model_dir: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(source_model_dir), device="cpu")
    assert st.max_seq_length == 256
    ref = np.stack([st.encode([s], convert_to_numpy=True)[0] for s in SENTENCES])  # batch 1
    fp32 = OnnxEmbedder(fp32_package).embed_texts(SENTENCES, progress=False)
    assert _cos(fp32, ref).min() >= 0.99999
    assert np.abs(fp32 - ref).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-5)
    tok = load_tokenizer(fp32_package / "tokenizer.json", 256)
    assert len(tok.encode(SENTENCES[-1]).ids) == 256  # truncated at 256, not 128
    q = OnnxEmbedder(model_package).embed_texts(SENTENCES, progress=False)
    assert _cos(q, ref).min() >= 0.99


def test_golden_vectors(model_package: Path) -> None:
    golden = json.loads((FIXTURES / "golden_vectors.json").read_text())
    m = load_model_package(model_package)
    assert m["files"]["model.onnx"]["sha256"] == golden["model_sha256"], (
        "the default export changed; regenerate with tests/fixtures/make_golden_vectors.py"
    )
    emb = OnnxEmbedder(model_package)
    strings = {s["name"] for s in json.loads((FIXTURES / "golden_strings.json").read_text())}
    names = {it["name"] for it in golden["items"]}
    # The tokenizer engineer adds strings over time: vectors must exist for (nearly) all of them.
    assert names <= strings and len(names) >= 0.9 * len(strings), (
        "golden_strings.json changed; regenerate with tests/fixtures/make_golden_vectors.py"
    )
    got = np.stack([emb.embed_ids(it["ids"]) for it in golden["items"]])
    want = np.array([it["vector"] for it in golden["items"]], dtype=np.float32)
    assert _cos(got, want).min() >= 0.9999


def test_export_is_deterministic_and_eval_gate(
    model_package: Path, scifact_small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    # 50 queries: one swapped rank moves nDCG@10 by ~0.007, so the 0.005 default is noise at
    # this size (measured on the full set in docs/quantization.md); gate at 0.02 here.
    m = export_model(None, out, eval_dir=scifact_small, threshold={"ndcg_drop": 0.02}, quiet=True)
    first = load_model_package(model_package)
    assert (out / "model.onnx").read_bytes() == (model_package / "model.onnx").read_bytes()
    assert m["files"] == first["files"]
    ev = m["quality"]["eval"]
    assert ev["docs"] == 300 and ev["queries"] == 50
    assert ev["ndcg@10_fp32"] > 0.5  # MiniLM on SciFact is ~0.65
    assert ev["ndcg@10_drop"] <= 0.02 and ev["top10_overlap"] >= 0.85
    assert m["quality"]["sentences"] == first["quality"]["sentences"]


def _run_ort_web(model: Path, ids: list[list[int]], tmp_path: Path) -> np.ndarray:
    node = shutil.which("node")
    assert node, "Node 20 is required to run onnxruntime-web"
    ids_file = tmp_path / f"ids-{model.parent.name}.json"
    ids_file.write_text(json.dumps(ids))
    res = subprocess.run(
        [node, str(ORT_WEB_SCRIPT), str(model), str(ids_file)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return np.array(json.loads(res.stdout)["embeddings"], dtype=np.float32)


def test_ortweb_runs_every_mode(
    model_package: Path, fp32_package: Path, dynamic_package: Path, packed_package: Path, tmp_path: Path
) -> None:
    from websem.export.ops import allowed_ops

    allowed = {o if not d else f"{d}:{o}" for d, o in allowed_ops()}
    tok = load_tokenizer(model_package / "tokenizer.json", 256)
    ids = [tok.encode(s).ids for s in SENTENCES]
    # weight-int8 and fp32 compute in fp32 on both sides: the same numbers up to float rounding.
    # weight-int8-packed (com.microsoft MatMulNBits, 8 bits, accuracy_level 0) is fp32 compute too.
    # dynamic-int8 quantizes activations per run with int8 kernels that differ between x86 and
    # wasm, and between x86 CPUs (AVX2's u8s8 multiply saturates where AVX-512 VNNI does not):
    # ORT-web against CPU gave min cosine 0.9985 on one machine and 0.955 on an AVX2-only one, each
    # side 0.972 from fp32 there. So it is held to what it promises: it runs, and ORT-web's vectors
    # are as close to fp32's as the CPU's are (docs/quantization.md).
    ref = np.stack([OnnxEmbedder(fp32_package, threads=1).embed_ids(i) for i in ids])
    for pkg in (model_package, fp32_package, dynamic_package, packed_package):
        m = load_model_package(pkg)
        mode = m["quantization"]["mode"]
        assert set(m["ops"]) <= allowed
        cpu = np.stack([OnnxEmbedder(pkg, threads=1).embed_ids(i) for i in ids])
        web = _run_ort_web(pkg / "model.onnx", ids, tmp_path)
        cos = _cos(cpu, web)
        diff = float(np.abs(cpu - web).max())
        print(f"{mode}: ORT-web vs CPU min cosine {cos.min():.8f}, max abs diff {diff:.2e}")
        if mode == "dynamic-int8":
            web_fp32, cpu_fp32 = _cos(web, ref).min(), _cos(cpu, ref).min()
            print(f"{mode}: min cosine to fp32, ORT-web {web_fp32:.6f}, CPU {cpu_fp32:.6f}")
            assert web_fp32 >= m["quality"]["threshold"]["min"], (mode, web_fp32)
            assert web_fp32 >= cpu_fp32 - 0.01, (mode, web_fp32, cpu_fp32)
            continue
        assert cos.min() >= 0.9999, (mode, cos.min(), diff)
        assert diff < 1e-5, (mode, diff)


def test_packed_weights_stay_int8(packed_package: Path, fp32_package: Path) -> None:
    """weight-int8-packed: every dense layer is an 8-bit MatMulNBits with fp32 compute, and no
    fp32 weight (nor a DequantizeLinear that onnxruntime could constant-fold into one) is left."""
    import onnx
    from onnx import numpy_helper

    m = load_model_package(packed_package)
    assert m["quantization"]["mode"] == "weight-int8-packed"
    assert m["quantization"]["block_size"] == 128 and m["quantization"]["accuracy_level"] == 0
    assert "com.microsoft:MatMulNBits" in m["ops"] and "DequantizeLinear" not in m["ops"]
    q = m["quality"]["sentences"]
    assert q["mean"] >= 0.999 and q["min"] >= 0.99
    model = onnx.load(str(packed_package / "model.onnx"))
    nbits = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    fp32_dense = onnx.load(str(fp32_package / "model.onnx"))
    from websem.export.quantize import weight_matmuls

    assert len(nbits) == len(weight_matmuls(fp32_dense)) == 36  # 6 layers x (Q, K, V, out, FFN in, FFN out)
    assert weight_matmuls(model) == []
    for n in nbits:
        attrs = {a.name: a.i for a in n.attribute}
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 128, 0)
    big_float = [
        t.name for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT and numpy_helper.to_array(t).size > 100_000
    ]
    assert big_float == [], big_float
    assert m["files"]["model.onnx"]["size"] < 26e6


def test_matmul_nbits_packing_is_exact() -> None:
    """The hand-packed B/scales must mean (q - 128) * scale to onnxruntime, K padded to whole
    blocks; and the result must be batch-independent (no activation quantization)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from websem.export.quantize import _pack_nbits8, default_settings, quantize

    rng = np.random.default_rng(7)
    k, n = 80, 24  # K = 80 is not a multiple of the block size: exercises the zero padding
    w = rng.standard_normal((k, n)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", n])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")], "g", [x], [y],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    packed = quantize(model, default_settings("weight-int8-packed", {"block_size": 32}))
    assert [nd.op_type for nd in packed.graph.node] == ["MatMulNBits"]
    b, scales = _pack_nbits8(w, 32, "mse")
    assert b.shape == (n, 3, 32) and scales.shape == (n * 3,)
    deq = ((b.astype(np.float32) - 128) * scales.reshape(n, 3, 1)).reshape(n, 96)[:, :k].T
    assert np.abs(deq - w).max() < np.abs(w).max() / 127  # within one int8 step
    sess = ort.InferenceSession(packed.SerializeToString(), providers=["CPUExecutionProvider"])
    a = rng.standard_normal((5, k)).astype(np.float32)
    got = sess.run(None, {"x": a})[0]
    np.testing.assert_allclose(got, a @ deq, rtol=1e-5, atol=1e-5)
    one_by_one = np.concatenate([sess.run(None, {"x": a[i : i + 1]})[0] for i in range(5)])
    np.testing.assert_allclose(one_by_one, got, rtol=1e-6, atol=1e-6)
    with pytest.raises(WebsemError, match=r"accuracy_level 4 is not allowed.*batch-dependent"):
        quantize(model, default_settings("weight-int8-packed", {"accuracy_level": 4}))
    with pytest.raises(WebsemError, match=r"block_size 48 is not supported.*power of two"):
        quantize(model, default_settings("weight-int8-packed", {"block_size": 48}))
    # weight-int8 records per_channel/symmetric as facts: an override is refused, not ignored
    for key in ("per_channel", "symmetric"):
        with pytest.raises(WebsemError, match=rf"weight-int8 is per-channel symmetric only, got {key}=False"):
            quantize(model, default_settings("weight-int8", {key: False}))


def test_bad_quantization_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bad"
    with pytest.raises(WebsemError, match=r"fails the quality gate.*mean cosine .* < 0\.999.*nothing was written"):
        export_model(
            None, out, quantization="dynamic-int8",
            quantization_options={"per_channel": False, "reduce_range": True}, quiet=True,
        )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp folder left behind either


def test_threshold_checks_every_measure() -> None:
    from websem.export.quality import DEFAULT_THRESHOLD, check_threshold

    ok = {"sentences": {"mean": 0.9995, "min": 0.995}, "eval": None}
    assert check_threshold(ok, DEFAULT_THRESHOLD) == []
    ev = {"ndcg@10_fp32": 0.65, "ndcg@10_quantized": 0.64, "ndcg@10_drop": 0.01}
    fails = check_threshold({"sentences": {"mean": 0.998, "min": 0.98}, "eval": ev}, DEFAULT_THRESHOLD)
    assert len(fails) == 3 and "nDCG@10 0.6400 is 0.0100 below fp32" in fails[2]
    assert check_threshold({**ok, "eval": ev}, {**DEFAULT_THRESHOLD, "ndcg_drop": 0.02}) == []


def test_op_allowlist_refuses_unknown_ops() -> None:
    from onnx import TensorProto, helper
    from websem.export.ops import check_ops

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    with pytest.raises(WebsemError, match=r"com\.microsoft:FastGelu"):
        check_ops(model, "test")


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("/nonexistent/model/dir", r"model path '/nonexistent/model/dir' does not exist"),
        ("BAAI/bge-small-en-v1.5", r"cannot be reached.*pass the local folder"),
    ],
)
def test_bad_model_errors(model: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(WebsemError, match=match):
        export_model(model, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_non_bert_model_is_refused(source_model_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "gpt"
    fake.mkdir()
    cfg = json.loads((source_model_dir / "config.json").read_text())
    (fake / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt2"}))
    with pytest.raises(WebsemError, match=r"model_type 'gpt2'.*BERT/WordPiece"):
        export_model(str(fake), tmp_path / "out", quiet=True)
    (fake / "config.json").write_text(json.dumps(cfg))
    tok = json.loads((source_model_dir / "tokenizer.json").read_text())
    tok["model"]["type"] = "BPE"
    (fake / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(WebsemError, match=r"BPE, not WordPiece"):
        export_model(str(fake), tmp_path / "out", quiet=True)


def test_existing_output_and_unknown_mode(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(WebsemError, match=r"already exists; pass --force"):
        export_model(None, tmp_path / "out", quiet=True)
    with pytest.raises(WebsemError, match=r"unknown quantization 'int4'; choose one of weight-int8"):
        export_model(None, tmp_path / "new", quantization="int4", quiet=True)


def test_load_model_package_detects_tampering(model_package: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(model_package, pkg)
    load_model_package(pkg)
    with open(pkg / "tokenizer.json", "a") as f:
        f.write(" ")
    with pytest.raises(WebsemError, match=r"tokenizer\.json does not match its manifest.*websem export"):
        load_model_package(pkg)
    with pytest.raises(WebsemError, match=r"no manifest\.json"):
        load_model_package(tmp_path)


def test_cli_reports_errors_without_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from websem.build.cli import main

    res = CliRunner().invoke(main, ["export", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "websem: model path" in res.output and "Traceback" not in res.output
    env = dict(os.environ)
    assert env.get("HF_HUB_OFFLINE") == "1"


def test_cls_pooling_is_read_from_the_model_config(source_model_dir: Path, tmp_path: Path) -> None:
    """bge-style CLS pooling: the same weights with 1_Pooling set to CLS must export a graph that
    matches sentence-transformers on that folder (pooling is read, not hard-coded)."""
    from sentence_transformers import SentenceTransformer

    src = tmp_path / "cls-model"
    src.mkdir()
    for p in source_model_dir.iterdir():
        if p.name != "1_Pooling":
            (src / p.name).symlink_to(p)
    (src / "1_Pooling").mkdir()
    cfg = json.loads((source_model_dir / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (src / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    m = export_model(str(src), tmp_path / "pkg", quantization="none", quiet=True)
    assert m["pooling"] == "cls" and m["source"]["model_id"] == "cls-model"
    st = SentenceTransformer(str(src), device="cpu")
    ref = np.stack([st.encode([s], convert_to_numpy=True)[0] for s in SENTENCES[:4]])
    got = OnnxEmbedder(tmp_path / "pkg").embed_texts(SENTENCES[:4], progress=False)
    assert _cos(got, ref).min() >= 0.99999


def test_4bit_weights_and_block_tables(fp32_package: Path, tmp_path: Path) -> None:
    """weight-int4 with 4-bit GatherBlockQuantized tables: every dense layer becomes a 4-bit
    MatMulNBits and every embedding table a GatherBlockQuantized, onnxruntime-web runs it like CPU
    onnxruntime, and it fails the default gate as measured (bench/results/quant.md: mean cosine
    ~0.97 on the 238 sentences). 8-bit tables on today's default dense layers pass it."""
    import onnx
    from onnx import numpy_helper
    from websem.export.ops import check_ops
    from websem.export.quality import DEFAULT_THRESHOLD, builtin_sentences, check_threshold, sentence_quality
    from websem.export.quantize import default_settings, quantize, weight_matmuls

    fp32_bytes = (fp32_package / "model.onnx").read_bytes()
    tok = load_tokenizer(fp32_package / "tokenizer.json", 256)
    ref = OnnxEmbedder(fp32_bytes, threads=1)
    # every 6th built-in sentence: one-word strings, CJK, emoji and code are all in this subset
    subset = builtin_sentences()[::6]

    small = quantize(onnx.load_from_string(fp32_bytes), default_settings("weight-int4", {"embeddings": "block4"}))
    check_ops(small, "weight-int4")
    nbits = [n for n in small.graph.node if n.op_type == "MatMulNBits"]
    tables = [n for n in small.graph.node if n.op_type == "GatherBlockQuantized"]
    assert len(nbits) == 36 and weight_matmuls(small) == []
    assert {(a.name, a.i) for n in nbits for a in n.attribute if a.name in ("bits", "accuracy_level")} == {
        ("bits", 4), ("accuracy_level", 0)
    }
    assert len(tables) == 3  # word, position and token-type embeddings
    assert all({a.name: a.i for a in n.attribute}["bits"] == 4 for n in tables)
    big_float = [
        t.name for t in small.graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT and numpy_helper.to_array(t).size > 500_000
    ]
    assert big_float == [], big_float
    small_bytes = small.SerializeToString()
    assert len(small_bytes) < 15e6  # vs 23.0 MB for weight-int8

    q = sentence_quality(ref, OnnxEmbedder(small_bytes, threads=1), tok, subset)
    fails = check_threshold({"sentences": q, "eval": None}, DEFAULT_THRESHOLD)
    assert q["mean"] < 0.99 and any("mean cosine" in f for f in fails), q

    path = tmp_path / "int4" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(small_bytes)
    ids = [tok.encode(s).ids for s in SENTENCES]
    cpu = np.stack([OnnxEmbedder(small_bytes, threads=1).embed_ids(i) for i in ids])
    web = _run_ort_web(path, ids, tmp_path)
    assert float(np.abs(cpu - web).max()) < 1e-5

    table8 = quantize(onnx.load_from_string(fp32_bytes), default_settings("weight-int8", {"embeddings": "block8"}))
    assert sum(n.op_type == "GatherBlockQuantized" for n in table8.graph.node) == 3
    q8 = sentence_quality(ref, OnnxEmbedder(table8.SerializeToString(), threads=1), tok, subset)
    assert check_threshold({"sentences": q8, "eval": None}, DEFAULT_THRESHOLD) == [], q8
    path8 = tmp_path / "block8" / "model.onnx"
    path8.parent.mkdir()
    path8.write_bytes(table8.SerializeToString())
    cpu8 = np.stack([OnnxEmbedder(path8.read_bytes(), threads=1).embed_ids(i) for i in ids])
    assert float(np.abs(cpu8 - _run_ort_web(path8, ids, tmp_path)).max()) < 1e-5


def test_nbits4_packing_is_exact() -> None:
    """4-bit MatMulNBits B/scales/zero points and 4-bit GatherBlockQuantized tables mean to
    onnxruntime exactly what the packer meant (low nibble first, default zero point 8)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from websem.export.nbits import pack_nbits4
    from websem.export.quantize import default_settings, quantize

    rng = np.random.default_rng(11)
    k, n = 80, 24
    w = rng.standard_normal((k, n)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", n])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")], "g", [x], [y],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    a = rng.standard_normal((5, k)).astype(np.float32)
    for symmetric in (True, False):
        # quantize() rewrites the model it is given: hand it a copy each time
        packed = quantize(copy.deepcopy(model), default_settings("weight-int4", {"symmetric": symmetric}))
        b, scales, zp = pack_nbits4(w, 32, "mse", symmetric)
        assert b.shape == (n, 3, 16) and scales.shape == (n * 3,)
        q = np.stack([b & 15, b >> 4], -1).reshape(n, 3, 32).astype(np.float32)
        z = 8.0 if zp is None else np.stack([zp & 15, zp >> 4], -1).reshape(n, -1)[:, :3, None]
        deq = ((q - z) * scales.reshape(n, 3, 1)).reshape(n, 96)[:, :k].T
        assert np.abs(deq - w).max() < np.abs(w).max() / 7  # within one 4-bit step
        sess = ort.InferenceSession(packed.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(sess.run(None, {"x": a})[0], a @ deq, rtol=1e-5, atol=1e-5)
    table = rng.standard_normal((50, 64)).astype(np.float32)
    idx = helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 64])
    gmodel = helper.make_model(
        helper.make_graph([helper.make_node("Gather", ["t", "ids"], ["y"], name="emb")], "g", [idx], [out],
                          [numpy_helper.from_array(table, "t")]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
    )
    ids = np.array([[0, 3, 49, 7]], dtype=np.int64)
    for bits in (8, 4):
        settings = default_settings("weight-int8", {"embeddings": f"block{bits}", "embedding_block_size": 16})
        qm = quantize(copy.deepcopy(gmodel), settings)
        init = {t.name: numpy_helper.to_array(t) for t in qm.graph.initializer}
        data, sc = init[f"t_block{bits}"], init["t_block_scales"]
        vals = data if bits == 8 else np.stack([data & 15, data >> 4], -1).reshape(50, 64)
        deq = ((vals.astype(np.float32) - 2 ** (bits - 1)).reshape(50, 4, 16) * sc[..., None]).reshape(50, 64)
        sess = ort.InferenceSession(qm.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(sess.run(None, {"ids": ids})[0], deq[ids])
    with pytest.raises(WebsemError, match=r"embeddings 'block2' is unknown; choose true"):
        quantize(gmodel, default_settings("weight-int8", {"embeddings": "block2"}))


def test_fewer_levels_keep_the_weight_int8_graph() -> None:
    """embedding_bits / weight_bits (weight-int8): the same graph, ops and int8 containers as the
    default, values within ±(2^(bits-1) - 1) in the word table (the largest; the small position
    table keeps 8 bits) and the dense weights, and onnxruntime computes exactly the dequantized
    weights; a bad value is a websem: error listing the allowed ones."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from websem.export.quantize import default_settings, quantize

    rng = np.random.default_rng(5)
    table = rng.standard_normal((40, 32)).astype(np.float32)
    pos_table = rng.standard_normal((8, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    ids_info = helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])
    pos_info = helper.make_tensor_value_info("pos", TensorProto.INT64, ["b", "s"])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 16])
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Gather", ["t", "ids"], ["hw"], name="emb"),
             helper.make_node("Gather", ["p", "pos"], ["hp"], name="pos_emb"),
             helper.make_node("Add", ["hw", "hp"], ["h"], name="add"),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="dense")],
            "g", [ids_info, pos_info], [out],
            [numpy_helper.from_array(table, "t"), numpy_helper.from_array(pos_table, "p"),
             numpy_helper.from_array(w, "w")],
        ),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
    )
    ids = np.array([[0, 7, 39, 7]], dtype=np.int64)
    pos = np.array([[0, 1, 2, 3]], dtype=np.int64)

    def shape_of(m):
        return ([(n.op_type, n.name, list(n.input), list(n.output)) for n in m.graph.node],
                sorted((t.name, t.data_type, tuple(t.dims)) for t in m.graph.initializer))

    base = quantize(copy.deepcopy(model), default_settings("weight-int8"))
    for emb_bits, w_bits in ((8, 8), (7, 8), (6, 8), (5, 8), (8, 7), (6, 7), (8, 5)):
        settings = default_settings("weight-int8", {"embedding_bits": emb_bits, "weight_bits": w_bits})
        qm = quantize(copy.deepcopy(model), settings)
        assert shape_of(qm) == shape_of(base)
        init = {t.name: numpy_helper.to_array(t) for t in qm.graph.initializer}
        tq, wq = init["t_int8"], init["w_int8"]
        assert tq.dtype == wq.dtype == np.int8
        t_max, w_max = 2 ** (emb_bits - 1) - 1, 2 ** (w_bits - 1) - 1
        assert np.abs(tq.astype(int)).max() == t_max  # each row's largest value lands on the top level
        assert np.abs(init["p_int8"].astype(int)).max() == 127  # position rows: always 8 bits
        assert np.abs(wq.astype(int)).max() <= w_max and np.abs(wq.astype(int)).max() > w_max // 2
        deq_t = tq.astype(np.float32) * init["t_scale"][:, None]
        deq_w = wq.astype(np.float32) * init["w_scale"][None, :]
        # a 32-value row at b bits (mse scale) stays within one step of the fp32 value
        assert np.abs(deq_t - table).max() <= (np.abs(table).max(1) / t_max).max()
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.disable_quant_qdq", "1")  # as OnnxEmbedder does
        sess = ort.InferenceSession(qm.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        deq_p = init["p_int8"].astype(np.float32) * init["p_scale"][:, None]
        np.testing.assert_allclose(sess.run(None, {"ids": ids, "pos": pos})[0], (deq_t[ids] + deq_p[pos]) @ deq_w,
                                   rtol=1e-5, atol=1e-5)
        if (emb_bits, w_bits) == (8, 8):
            assert np.array_equal(tq, numpy_helper.to_array(
                next(t for t in base.graph.initializer if t.name == "t_int8")))

    for overrides, match in (
        ({"embedding_bits": 4}, r"embedding_bits 4 is not supported; choose one of 8, 7, 6, 5"),
        ({"weight_bits": 9}, r"weight_bits 9 is not supported; choose one of 8, 7, 6, 5"),
        ({"weight_bits": "7"}, r"weight_bits '7' is not supported"),
        ({"embedding_bits": 6, "embeddings": "block8"}, r"embedding_bits applies to int8-rows"),
    ):
        with pytest.raises(WebsemError, match=match):
            default_settings("weight-int8", overrides)
    with pytest.raises(WebsemError, match=r"'weight_bits' does not apply to mode 'weight-int8-packed'"):
        default_settings("weight-int8-packed", {"weight_bits": 7})
    # the int8-rows tables of the other modes take embedding_bits too
    assert default_settings("weight-int8-packed", {"embedding_bits": 6})["embedding_bits"] == 6
