"""The split model layout (build/model_split.py): the body model fed the word-embedding rows
computes bit-identical sentence embeddings, bundles carry it by default, `websem query` reads the
rows block by block and refuses a tampered, truncated or mislisted rows file."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _build(model_package: Path, out: Path, **kwargs) -> Path:
    from websem.build.bundle import build_bundle

    mp = pytest.MonkeyPatch()
    mp.setenv("WEBSEM_NO_SNAPSHOT", "1")  # verification and the CPU path do not need one
    try:
        build_bundle(FIXTURES / "sites" / "mkdocs", out, model=model_package, progress=False,
                     precompress=False, **kwargs)
    finally:
        mp.undo()
    return out


@pytest.fixture(scope="module")
def split_bundle(model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(model_package, tmp_path_factory.mktemp("split") / "bundle")


@pytest.fixture(scope="module")
def split_fp32_bundle(model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The split with the body's dense layers left as DequantizeLinear -> MatMul: the same graph
    as the whole model's but for the cut lookup, so bit-identical to a whole bundle."""
    return _build(model_package, tmp_path_factory.mktemp("split_fp32") / "bundle", model_matmul="fp32")


@pytest.fixture(scope="module")
def whole_bundle(model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(model_package, tmp_path_factory.mktemp("whole") / "bundle", model_layout="whole")


def _copy(bundle: Path, dst: Path) -> Path:
    """A hard-linked copy of ``bundle`` (a changed file must be replaced, not written through)."""
    shutil.copytree(bundle, dst, copy_function=os.link)
    return dst


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _block_digests(bundle: Path, spec: dict) -> list[bytes]:
    """The full sha256 of each rows block of ``bundle``'s rows file."""
    import hashlib

    data = (bundle / spec["file"]).read_bytes()
    block = spec["block_rows"] * spec["row_bytes"]
    return [hashlib.sha256(data[at:at + block]).digest() for at in range(0, len(data), block)]


@pytest.fixture(scope="module", params=["absent", 32])
def full_hash_bundle(request: pytest.FixtureRequest, split_bundle: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The split bundle as a build before ``hash_bytes`` wrote it: whole 32-byte digests in the
    hash list, the key absent (or 32), the list's manifest entry to match."""
    import hashlib

    b = _copy(split_bundle, tmp_path_factory.mktemp("full_hash") / "bundle")
    m = json.loads((b / "manifest.json").read_text("utf-8"))
    spec = m["model"]["word_rows"]
    if request.param == "absent":
        del spec["hash_bytes"]
    else:
        spec["hash_bytes"] = request.param
    hashes = b"".join(_block_digests(b, spec))
    _replace(b / spec["hashes"], hashes)
    m["files"][spec["hashes"]] = {**m["files"][spec["hashes"]], "size": len(hashes),
                                  "sha256": hashlib.sha256(hashes).hexdigest()}
    _replace(b / "manifest.json", json.dumps(m).encode())
    return b


def test_split_embeddings_are_bitwise_equal_to_the_whole_model(split_bundle: Path, model_package: Path) -> None:
    from websem.export.embed import OnnxEmbedder
    from websem.web.query import SplitEmbedder, _bundle_tokenizer, verify_bundle

    manifest = verify_bundle(split_bundle)
    tokenizer = _bundle_tokenizer(split_bundle, manifest)
    whole = OnnxEmbedder(model_package)
    if manifest["model"].get("matmul") == "nbits8":
        import onnx
        from websem.build.model_pack import pack_matmuls

        # The body's dense layers are MatMulNBits (build/model_pack.py): compare with the whole
        # model rewritten the same way (test_model_pack.py compares the two forms).
        packed = onnx.load(str(model_package / "model.onnx"))
        assert pack_matmuls(packed) == 36
        whole = OnnxEmbedder(packed.SerializeToString())
    split = SplitEmbedder(split_bundle, manifest)
    strings = [s["text"] for s in json.loads((FIXTURES / "golden_strings.json").read_text("utf-8"))]
    assert len(strings) > 10
    for text in strings:
        ids = tokenizer.encode(text).ids
        a, b = whole.embed_ids(ids), split.embed_ids(ids)
        assert a.tobytes() == b.tobytes(), (text, float(np.abs(a - b).max()))


def test_split_bundle_layout_and_manifest(split_bundle: Path, model_package: Path) -> None:
    from websem.build.model_split import BLOCK_ROWS, HASH_BYTES

    m = json.loads((split_bundle / "manifest.json").read_text("utf-8"))
    package = json.loads((model_package / "manifest.json").read_text("utf-8"))
    spec = m["model"]["word_rows"]
    # The index's model is the package's model.onnx; the bundle ships its body.
    assert m["model"]["sha256"] == m["index"]["model_sha256"] == package["files"]["model.onnx"]["sha256"]
    assert m["model"]["body_sha256"] == m["files"]["model/model.onnx"]["sha256"] != m["model"]["sha256"]
    assert spec["block_rows"] == BLOCK_ROWS and spec["row_bytes"] == spec["dims"] + 4 == 388
    assert spec["preload_ids"] == [101, 102]  # [CLS] and [SEP]
    assert m["files"][spec["file"]]["size"] == spec["rows"] * spec["row_bytes"]
    # The hash list: the first 16 bytes of each block's sha256, 61,056 B for the 3,816 blocks.
    blocks = -(-spec["rows"] // spec["block_rows"])
    assert spec["hash_bytes"] == HASH_BYTES == 16
    assert m["files"][spec["hashes"]]["size"] == 16 * blocks == 61_056
    hashes = (split_bundle / spec["hashes"]).read_bytes()
    assert hashes == b"".join(d[:16] for d in _block_digests(split_bundle, spec))
    # The body is the package's model without the table (11.8 MB smaller).
    body = m["files"]["model/model.onnx"]["size"]
    assert body < package["files"]["model.onnx"]["size"] - 11_000_000


def test_split_and_whole_bundles_answer_identically(split_fp32_bundle: Path, whole_bundle: Path) -> None:
    from websem.web.query import Searcher

    split_bundle = split_fp32_bundle
    whole_m = json.loads((whole_bundle / "manifest.json").read_text("utf-8"))
    assert "word_rows" not in whole_m["model"] and "body_sha256" not in whole_m["model"]
    assert whole_m["files"]["model/model.onnx"]["sha256"] == whole_m["model"]["sha256"]
    a, b = Searcher(split_bundle), Searcher(whole_bundle)
    for q in ("install the plugin", "configuration options for the theme", "zzzz unknown words"):
        assert a.embed(q).tobytes() == b.embed(q).tobytes(), q
        assert a.query(q, mode="hybrid") == b.query(q, mode="hybrid"), q
    # Only the blocks of the queries' token ids were read.
    assert 0 < len(a.embedder.rows.blocks) < 40


def _query_error(bundle: Path, text: str = "install the plugin") -> str:
    from websem.text.errors import WebsemError
    from websem.web.query import Searcher

    s = Searcher(bundle)
    with pytest.raises(WebsemError) as e:
        s.embed(text)
    return str(e.value)


def _block_of_query(bundle: Path, text: str = "install the plugin") -> tuple[int, dict]:
    from websem.web.query import _bundle_tokenizer, verify_bundle

    m = verify_bundle(bundle)
    spec = m["model"]["word_rows"]
    ids = _bundle_tokenizer(bundle, m).encode(text).ids
    return ids[1] // spec["block_rows"], spec


def _tamper_block_of_query(bundle: Path) -> tuple[int, dict]:
    """Flip one bit in the rows block the default query reads first; returns (block, word_rows spec)."""
    k, spec = _block_of_query(bundle)
    path = bundle / spec["file"]
    data = bytearray(path.read_bytes())
    data[k * spec["block_rows"] * spec["row_bytes"] + 3] ^= 1
    _replace(path, bytes(data))
    return k, spec


def test_a_tampered_rows_block_fails_the_query_naming_file_and_block(split_bundle: Path, tmp_path: Path) -> None:
    b = _copy(split_bundle, tmp_path / "b")
    k, spec = _tamper_block_of_query(b)
    msg = _query_error(b)
    assert msg.startswith("websem: ") and f"{spec['file']} block {k} " in msg, msg
    assert spec["hashes"] in msg and "re-upload the whole bundle folder" in msg, msg
    # The 16-byte prefixes of the default hash list are what is compared.
    assert spec["hash_bytes"] == 16
    assert re.search(r"\(got [0-9a-f]{32}, expected [0-9a-f]{32}\)", msg), msg


def test_a_hash_list_of_whole_digests_still_verifies_and_checks_blocks(full_hash_bundle: Path,
                                                                      split_bundle: Path, tmp_path: Path) -> None:
    """A bundle built before ``hash_bytes`` (32-byte digests, the key absent) or with it 32 loads,
    answers like the 16-byte bundle, and still refuses a tampered block."""
    from websem.web.query import Searcher, verify_bundle

    spec = verify_bundle(full_hash_bundle)["model"]["word_rows"]
    assert spec.get("hash_bytes", 32) == 32
    assert (full_hash_bundle / spec["hashes"]).stat().st_size == 32 * -(-spec["rows"] // spec["block_rows"])
    q = "configuration options for the theme"
    assert Searcher(full_hash_bundle).embed(q).tobytes() == Searcher(split_bundle).embed(q).tobytes()
    b = _copy(full_hash_bundle, tmp_path / "b")
    k, spec = _tamper_block_of_query(b)
    msg = _query_error(b)
    assert msg.startswith("websem: ") and f"{spec['file']} block {k} " in msg, msg
    assert re.search(r"\(got [0-9a-f]{64}, expected [0-9a-f]{64}\)", msg), msg


def test_split_model_refuses_a_bad_hash_bytes(tmp_path: Path) -> None:
    from websem.build.model_split import split_model
    from websem.text.errors import WebsemError

    for bad in (24, 0, True, "16"):
        with pytest.raises(WebsemError, match=r"^websem: hash_bytes .* is not allowed; pass one of 16, 32$"):
            split_model(b"", tmp_path, hash_bytes=bad)


def test_a_truncated_rows_file_fails_the_query(split_bundle: Path, tmp_path: Path) -> None:
    b = _copy(split_bundle, tmp_path / "b")
    path = b / "model" / "word_rows.bin"
    _replace(path, path.read_bytes()[:1000])
    msg = _query_error(b)
    assert msg.startswith("websem: model/word_rows.bin bytes ") and "truncated" in msg, msg


def test_a_tampered_hash_list_is_refused_at_load(split_bundle: Path, tmp_path: Path) -> None:
    from websem.text.errors import WebsemError
    from websem.web.query import verify_bundle

    b = _copy(split_bundle, tmp_path / "b")
    path = b / "model" / "word_rows.sha256"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    _replace(path, bytes(data))
    with pytest.raises(WebsemError, match="model/word_rows.sha256 failed its integrity check"):
        verify_bundle(b)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m["model"].update(body_sha256="0" * 64), "manifest.model.body_sha256 0000"),
    (lambda m: m["model"]["word_rows"].update(block_rows=16),
     "model/word_rows.sha256 is listed with 61056 bytes but manifest.model.word_rows makes it 30528"),
    (lambda m: m["model"]["word_rows"].pop("hash_bytes"),
     "model/word_rows.sha256 is listed with 61056 bytes but manifest.model.word_rows makes it 122112"),
    (lambda m: m["model"]["word_rows"].update(hash_bytes=24),
     r"^websem: manifest\.model\.word_rows\.hash_bytes is 24 but must be 16 or 32; rebuild the bundle"),
    (lambda m: m["model"]["word_rows"].update(hash_bytes=16.0), "hash_bytes is 16.0 but must be 16 or 32"),
    (lambda m: m["model"]["word_rows"].update(hash_bytes=None), "hash_bytes is null but must be 16 or 32"),
    (lambda m: m["model"]["word_rows"].update(row_bytes=384), "row_bytes 384"),
    (lambda m: m["files"].pop("model/word_rows.bin"), "lists no file 'model/word_rows.bin'"),
    (lambda m: m["model"].pop("word_rows"), "index built with model"),
    (lambda m: m["model"]["word_rows"].update(preload_ids=[30522]), "preload_ids must be a list of token ids below"),
])
def test_manifest_word_rows_checks(split_bundle: Path, tmp_path: Path, edit, message: str) -> None:
    from websem.text.errors import WebsemError
    from websem.web.query import verify_bundle

    b = _copy(split_bundle, tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text("utf-8"))
    edit(m)
    _replace(b / "manifest.json", json.dumps(m).encode())
    with pytest.raises(WebsemError, match=message):
        verify_bundle(b)


def test_a_model_without_an_int8_table_is_not_split(tmp_path: Path) -> None:
    """An fp32 embedding lookup (a plain Gather of a float table) has nothing to cut out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from websem.build.model_split import split_model

    table = numpy_helper.from_array(np.zeros((10, 4), dtype=np.float32), "table")
    graph = helper.make_graph([helper.make_node("Gather", ["table", "input_ids"], ["out"])], "g",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, None])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, None, 4])], [table])
    assert split_model(onnx.helper.make_model(graph).SerializeToString(), tmp_path) is None
    assert not any(tmp_path.iterdir())


# The runtime under Node (tests/js/model_split_driver.mjs): the same rows, the same embeddings.

def _node(bundle: Path, queries: list[str], server: str = "ranges", word_rows: str = "on-demand") -> dict:
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found; install Node 20 (see .ci/setup)")
    driver = Path(__file__).parent / "js" / "model_split_driver.mjs"
    proc = subprocess.run([node, str(driver), str(bundle), json.dumps(queries), server, word_rows],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


QUERIES = ["install the plugin", "configuration options for the theme", "install"]


def test_node_runtime_embeds_split_bundles_like_whole_ones(split_bundle: Path, split_fp32_bundle: Path,
                                                          whole_bundle: Path) -> None:
    """Bit-identical to the whole model under the same onnxruntime-web (the fp32 body); like CPU
    onnxruntime within the wasm-vs-CPU difference the parity tests allow. The default MatMulNBits
    body agrees with the whole model to float rounding."""
    from websem.web.query import Searcher

    whole = _node(whole_bundle, QUERIES)
    packed = _node(split_bundle, QUERIES)
    for q, got, want in zip(QUERIES, packed["results"], whole["results"], strict=True):
        diff = np.abs(np.array(got["embedding"], dtype=np.float32) - np.array(want["embedding"], dtype=np.float32))
        assert float(diff.max()) <= 1e-6, q
    split_bundle = split_fp32_bundle
    out = _node(split_bundle, QUERIES)
    assert whole["stats"] is None and whole["requests"] == []
    cpu = Searcher(split_bundle)
    for q, got, want in zip(QUERIES, out["results"], whole["results"], strict=True):
        assert "embedding" in got, got
        vec = np.array(got["embedding"], dtype=np.float32)
        assert vec.tobytes() == np.array(want["embedding"], dtype=np.float32).tobytes(), q
        assert float(np.abs(vec - cpu.embed(q)).max()) < 1e-5, q
    spec = json.loads((split_bundle / "manifest.json").read_text("utf-8"))["model"]["word_rows"]
    block = spec["block_rows"] * spec["row_bytes"]
    stats = out["stats"]
    # Only the blocks of the queries' ids were read, by range; the third query's were all held.
    assert all(r and r.startswith("bytes=") for r in out["requests"]), out["requests"]
    assert stats["fetched_bytes"] == stats["misses"] * block and stats["misses"] < 30, stats
    assert stats["hits"] > 0, stats
    # Loading reads the hash list, not the rows.
    assert "verified model/word_rows.sha256" in out["progress"]
    assert "verified model/word_rows.bin" not in out["progress"]


def test_node_runtime_fills_the_rows_after_the_first_answer(split_bundle: Path) -> None:
    """load()'s default wordRows "fill": after the first answer the rest of the rows arrive in the
    background, every block verified, and later queries read nothing more; same embeddings."""
    on_demand = _node(split_bundle, QUERIES)
    out = _node(split_bundle, QUERIES, word_rows="fill")
    for q, got, want in zip(QUERIES, out["results"], on_demand["results"], strict=True):
        assert got == want, q
    spec = json.loads((split_bundle / "manifest.json").read_text("utf-8"))["model"]["word_rows"]
    blocks = -(-spec["rows"] // spec["block_rows"])
    filled = out["afterFill"]
    assert filled["stats"]["files"] == blocks, filled
    assert filled["stats"]["fetched_bytes"] == spec["rows"] * spec["row_bytes"], filled
    assert all(r and r.startswith("bytes=") for r in out["requests"]), out["requests"]
    # Segments of ~400 KB, not one request for the whole file, not one per block.
    assert 10 <= filled["requests"] < 100, filled
    assert len(out["requests"]) == filled["requests"], out["requests"]  # nothing read after the fill


def test_node_runtime_reads_the_whole_rows_file_from_a_server_without_ranges(split_bundle: Path) -> None:
    from websem.web.query import Searcher

    out = _node(split_bundle, QUERIES, server="whole")
    cpu = Searcher(split_bundle)
    for q, got in zip(QUERIES, out["results"], strict=True):
        assert float(np.abs(np.array(got["embedding"], dtype=np.float32) - cpu.embed(q)).max()) < 1e-5, q
    # One 200 answer (to the load's read of the [CLS]/[SEP] block), verified whole and kept:
    # no second download, not even by the first query's parallel reads.
    assert len(out["requests"]) == 1, out["requests"]


def test_node_runtime_retries_a_transient_rows_failure_once(split_bundle: Path) -> None:
    out = _node(split_bundle, QUERIES[:1], server="flaky")
    assert "embedding" in out["results"][0], out["results"][0]


def test_node_runtime_refuses_a_tampered_or_truncated_rows_block(split_bundle: Path, tmp_path: Path) -> None:
    b = _copy(split_bundle, tmp_path / "tampered")
    k, spec = _tamper_block_of_query(b)
    out = _node(b, ["install the plugin", "zebra"])
    bad, good = out["results"]
    assert bad["error"].startswith("websem: ") and f"model/word_rows.bin block {k} " in bad["error"], bad
    assert "model/word_rows.sha256" in bad["error"], bad
    assert re.search(r"\(got [0-9a-f]{32}, expected [0-9a-f]{32}\)", bad["error"]), bad  # 16-byte prefixes
    assert "embedding" in good, good  # a bad block fails the query that needs it, not the engine

    # Cut inside the query's block (after the [CLS]/[SEP] block the load reads).
    t = _copy(split_bundle, tmp_path / "truncated")
    assert k > 102 // spec["block_rows"]
    _replace(t / spec["file"], (t / spec["file"]).read_bytes()[:k * spec["block_rows"] * spec["row_bytes"] + 100])
    out = _node(t, ["install the plugin"])
    err = out["results"][0]["error"]
    assert err.startswith("websem: model/word_rows.bin bytes ") and "truncated" in err, err


def test_node_runtime_reads_a_hash_list_of_whole_digests(full_hash_bundle: Path, tmp_path: Path) -> None:
    """A bundle with 32-byte digests (``hash_bytes`` absent or 32) loads in the runtime, embeds
    like CPU onnxruntime, and a tampered block is refused against the whole digest."""
    from websem.web.query import Searcher

    b = _copy(full_hash_bundle, tmp_path / "tampered")
    k, spec = _block_of_query(b, "install the plugin")
    path = b / spec["file"]
    data = bytearray(path.read_bytes())
    data[k * spec["block_rows"] * spec["row_bytes"] + 3] ^= 1
    _replace(path, bytes(data))
    out = _node(b, ["install the plugin", "zebra"])
    bad, good = out["results"]
    assert bad["error"].startswith("websem: ") and f"model/word_rows.bin block {k} " in bad["error"], bad
    assert re.search(r"\(got [0-9a-f]{64}, expected [0-9a-f]{64}\)", bad["error"]), bad
    vec = np.array(good["embedding"], dtype=np.float32)
    assert float(np.abs(vec - Searcher(full_hash_bundle).embed("zebra")).max()) < 1e-5


def test_an_unknown_model_layout_is_refused_before_any_work(model_package: Path, tmp_path: Path) -> None:
    from websem.build.bundle import build_bundle
    from websem.text.errors import WebsemError

    with pytest.raises(WebsemError, match="websem: --model-layout 'half' is unknown; allowed: split, whole"):
        build_bundle(FIXTURES / "sites" / "mkdocs", tmp_path / "out", model=model_package, model_layout="half")
    assert not (tmp_path / "out").exists()


def _unoptimized_body(model_package: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The split body as the build wrote it before build/model_optimize.py: packed, not optimized."""
    import websem.build.model_split as model_split

    monkeypatch.setattr(model_split, "optimize_graph", lambda body, name="": None)
    section = model_split.split_model((model_package / "model.onnx").read_bytes(), tmp)
    assert section is not None and section["graph_optimization"] is None
    return (tmp / "model.onnx").read_bytes()


def test_the_body_ships_optimized_and_the_fp32_body_does_not(split_bundle: Path, split_fp32_bundle: Path) -> None:
    """The default body is saved at onnxruntime level "basic" (Constant nodes and shape arithmetic
    folded); a DequantizeLinear body is not, since folding would store its weights as float32."""
    import onnx

    m = json.loads((split_bundle / "manifest.json").read_text("utf-8"))
    assert m["model"]["graph_optimization"] == "basic"
    ops = [n.op_type for n in onnx.load(str(split_bundle / "model" / "model.onnx")).graph.node]
    assert "Constant" not in ops and ops.count("MatMulNBits") == 36
    fp32 = json.loads((split_fp32_bundle / "manifest.json").read_text("utf-8"))
    assert "graph_optimization" not in fp32["model"]
    fp32_ops = [n.op_type for n in onnx.load(str(split_fp32_bundle / "model" / "model.onnx")).graph.node]
    assert fp32_ops.count("DequantizeLinear") >= 36


def test_the_optimized_body_run_unoptimized_embeds_bit_identically(split_bundle: Path, model_package: Path,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU onnxruntime: the shipped body with graph optimization disabled (as web/src/model.js
    creates its session) gives the same bytes as the unoptimized body optimized at load."""
    import onnxruntime as ort
    from websem.web.query import WordRows, _bundle_tokenizer, verify_bundle

    manifest = verify_bundle(split_bundle)
    tokenizer = _bundle_tokenizer(split_bundle, manifest)
    rows = WordRows(split_bundle, manifest)

    def session(model: bytes, level) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    level = ort.GraphOptimizationLevel
    shipped = session((split_bundle / "model" / "model.onnx").read_bytes(), level.ORT_DISABLE_ALL)
    loaded = session(_unoptimized_body(model_package, tmp_path, monkeypatch), level.ORT_ENABLE_BASIC)
    output = manifest["model"].get("output", "sentence_embedding")
    names = {i.name for i in shipped.get_inputs()}
    strings = [s["text"] for s in json.loads((FIXTURES / "golden_strings.json").read_text("utf-8"))]
    for text in strings:
        ids = np.asarray(tokenizer.encode(text).ids, dtype=np.int64).reshape(1, -1)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
                 rows.input: rows.embeddings(ids[0])[None]}
        feeds = {k: v for k, v in feeds.items() if k in names}
        a = shipped.run([output], feeds)[0]
        b = loaded.run([output], feeds)[0]
        assert a.tobytes() == b.tobytes(), (text, float(np.abs(a - b).max()))


def test_node_runtime_embeds_the_optimized_body_like_the_unoptimized_one(split_bundle: Path, model_package: Path,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime-web through the runtime: the shipped body (session created with optimization
    "disabled") and the unoptimized body (the runtime optimizes it at "basic", as for a bundle
    without manifest.model.graph_optimization) embed every query to the same bytes."""
    import hashlib

    body = _unoptimized_body(model_package, tmp_path / "body", monkeypatch)
    b = _copy(split_bundle, tmp_path / "bundle")
    _replace(b / "model" / "model.onnx", body)
    m = json.loads((b / "manifest.json").read_text("utf-8"))
    sha = hashlib.sha256(body).hexdigest()
    m["files"]["model/model.onnx"] = {**m["files"]["model/model.onnx"], "size": len(body), "sha256": sha}
    m["model"]["body_sha256"] = sha
    del m["model"]["graph_optimization"]
    _replace(b / "manifest.json", json.dumps(m).encode())
    want = _node(b, QUERIES)
    got = _node(split_bundle, QUERIES)
    for q, g, w in zip(QUERIES, got["results"], want["results"], strict=True):
        got_vec, want_vec = (np.array(r["embedding"], dtype=np.float32) for r in (g, w))
        assert got_vec.tobytes() == want_vec.tobytes(), q
