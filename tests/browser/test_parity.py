"""The page (Pyodide tokenizer + onnxruntime-web in real Chromium) against the CPU reference, on a
real bundle built from ../shared/data/cranfield. One cold load per module; the tests share it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from websem.web.query import WordRows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
N_QUERIES = 40  # >= 30 real Cranfield queries

SEARCH_FULL_JS = """async ([xs, opts]) => {
    const out = [];
    for (const x of xs) out.push(await window.engine.searchFull(x, opts));
    return out;
}"""

EACH_JS = """async ([method, xs]) => {
    const out = [];
    for (const x of xs) out.push(await window.engine.debug[method](x));
    return out;
}"""


def page_each(page, method: str, xs: list[str]) -> list:
    """Run `engine.debug.tokenize|embed` over `xs` in the page, in order."""
    return page.evaluate(EACH_JS, [method, xs])


@pytest.fixture(scope="module")
def search_page(browser_context, cranfield_url, bt):
    page, log = bt.open_search_page(browser_context, cranfield_url)
    yield page, log
    page.close()


@pytest.fixture(scope="module")
def cranfield_queries(shared_data: Path) -> list[dict]:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:N_QUERIES]]


def _golden() -> list[dict]:
    """tests/fixtures golden strings with their HF token ids: [{name, text, ids}] (empty if absent)."""
    strings_path, tokens_path = FIXTURES / "golden_strings.json", FIXTURES / "golden_tokens.json"
    if not strings_path.is_file():
        return []
    strings = json.loads(strings_path.read_text(encoding="utf-8"))
    ids = {}
    if tokens_path.is_file():
        ids = {t["name"]: t["ids"] for t in json.loads(tokens_path.read_text(encoding="utf-8"))["items"]}
    return [{"name": s["name"], "text": s["text"], "ids": ids.get(s["name"])} for s in strings]


# Always checked, whether or not the tokenizer fixtures exist: accents, CJK, emoji, control
# characters, punctuation runs, and a text far beyond the 256-token cap (truncation).
EXTRA_STRINGS = [
    "Hello, world!",
    "naïve café Ångström résumé",
    "東京タワーの高さは？",
    "emoji 🚀🔥 and symbols ±∞≈ ©®",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u200bzero-width",
    "don't stop--believing... (really?!) [x] {y} <z>",
    "unaffable unbelievably antidisestablishmentarianism",
    " ".join(["supersonic boundary-layer transition"] * 120),
]


def test_token_ids_equal_hf_tokenizers(search_page, browser_bundle: Path, cranfield_queries):
    tokenizers = pytest.importorskip("tokenizers")
    page, _ = search_page
    hf = tokenizers.Tokenizer.from_file(str(browser_bundle / "model" / "tokenizer.json"))
    golden = _golden()
    strings = [g["text"] for g in golden] + EXTRA_STRINGS + [q["text"] for q in cranfield_queries]
    got = page_each(page, "tokenize", strings)
    mismatches = [(s, g, hf.encode(s).ids) for s, g in zip(strings, got, strict=True) if g != hf.encode(s).ids]
    assert not mismatches, f"{len(mismatches)} strings tokenize differently, first: {mismatches[0]}"
    # The tokenizer engineer's fixtures (HF ids recorded with the same tokenizer.json).
    for g, ids in zip(golden, got, strict=False):
        if g["ids"] is not None:
            assert ids == g["ids"], f"golden string {g['name']!r}"


# 2026-11-28: on x86 CPU, onnxruntime's QDQ fusions (ORT_ENABLE_EXTENDED and up) rewrite
# DequantizeLinear -> MatMul into an integer MatMul that also quantizes the activations: faster,
# but no longer the graph's math (cosine 0.9993 to the unfused result on short strings).
# onnxruntime-web's wasm EP computes the graph as written, exactly like CPU onnxruntime with
# `session.disable_quant_qdq` (max abs diff ~1e-7), which is what websem's own CPU embedder
# (websem.export.embed.OnnxEmbedder: `websem build`, `websem query`) sets. That is the reference.


def _cpu_embeddings(bundle: Path, texts: list[str], *, disable_quant_qdq: bool) -> np.ndarray:
    """CPU onnxruntime on the same model file, batch 1, HF tokenizers ids."""
    import onnxruntime as ort
    import tokenizers

    hf = tokenizers.Tokenizer.from_file(str(bundle / "model" / "tokenizer.json"))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if disable_quant_qdq:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(str(bundle / "model" / "model.onnx"), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    # A split model (the default) is fed its word-embedding rows, read from the bundle's rows file.
    rows = WordRows(bundle, manifest) if manifest["model"].get("word_rows") else None
    out = []
    for text in texts:
        ids = np.array([hf.encode(text).ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        if rows is not None:
            feeds[rows.input] = rows.embeddings(ids[0])[None]
        out.append(session.run(["sentence_embedding"], feeds)[0][0])
    return np.array(out, dtype=np.float32)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_query_embeddings_match_cpu_onnxruntime(search_page, browser_bundle: Path, cranfield_queries, record_property):
    page, _ = search_page
    texts = [q["text"] for q in cranfield_queries] + EXTRA_STRINGS
    browser = np.array(
        page_each(page, "embed", texts),
        dtype=np.float64,
    )
    cpu = _cpu_embeddings(browser_bundle, texts, disable_quant_qdq=True).astype(np.float64)
    assert browser.shape == cpu.shape
    cos = _cosines(browser, cpu)
    max_abs = float(np.abs(browser - cpu).max())
    record_property("embedding_min_cosine", float(cos.min()))
    record_property("embedding_max_abs_diff", max_abs)
    print(f"\nbrowser vs CPU onnxruntime: min cosine {cos.min():.8f}, max abs diff {max_abs:.3g}")
    # For the record: CPU onnxruntime with every default optimisation (the fused integer MatMul).
    fused = _cpu_embeddings(browser_bundle, texts, disable_quant_qdq=False).astype(np.float64)
    fcos = _cosines(browser, fused)
    record_property("embedding_min_cosine_vs_cpu_default_opts", float(fcos.min()))
    print(f"browser vs CPU onnxruntime (default optimisations): min cosine {fcos.min():.8f}")
    assert cos.min() >= 0.9999, f"min cosine {cos.min()} for {texts[int(cos.argmin())]!r}"

    golden = FIXTURES / "golden_vectors.json"
    data = json.loads(golden.read_text(encoding="utf-8")) if golden.is_file() else {}
    manifest = json.loads((browser_bundle / "manifest.json").read_text(encoding="utf-8"))
    # Checked only when the fixture was made from this very model file (same export mode).
    if data.get("model_sha256") == manifest["model"]["sha256"]:
        texts_by_name = {g["name"]: g["text"] for g in _golden()}
        gtexts = [texts_by_name[it["name"]] for it in data["items"]]
        gvecs = np.array([it["vector"] for it in data["items"]], dtype=np.float64)
        bvecs = np.array(page_each(page, "embed", gtexts), dtype=np.float64)
        gcos = _cosines(bvecs, gvecs)
        record_property("golden_min_cosine", float(gcos.min()))
        print(f"browser vs golden_vectors.json: min cosine {gcos.min():.8f}")
        assert gcos.min() >= 0.9999


def test_top10_equals_websem_query(search_page, browser_bundle: Path, cranfield_queries, bt, search_mode: str):
    """Every mode: the page's top 10 (ids, scores, titles, urls, snippets, highlights, facets) equal
    `websem query --json`'s, on 40 real queries plus `LATE_QUERIES` (matches past the first
    snippet window). A mode the engine does not offer fails here."""
    page, _ = search_page
    assert page.evaluate("() => window.engine.info.modes") == list(bt.MODES)
    texts = [q["text"] for q in cranfield_queries] + list(bt.LATE_QUERIES)
    browser = page.evaluate(SEARCH_FULL_JS, [texts, {"k": 10, "mode": search_mode}])
    want = bt.websem_query_json(browser_bundle, texts, search_mode)
    if search_mode == "lexical":
        bt.assert_snippets_past_window(browser_bundle, want[-len(bt.LATE_QUERIES):])
    worst = bt.assert_same_results(browser_bundle, search_mode, texts, browser, want, engine="chromium")
    assert sum(len(r["hits"]) for r in browser) >= 10 * len(cranfield_queries) - 5
    print(f"\n{search_mode}: top-10 of {len(texts)} queries identical; max score diff {worst:.3g}")


def test_ui_search_shows_results(search_page):
    page, _ = search_page
    box = page.locator("websem-search input")
    box.fill("heat transfer in hypersonic flow")
    hits = page.locator("websem-search li")
    hits.first.wait_for()
    expected = page.evaluate(
        "async () => (await window.engine.search('heat transfer in hypersonic flow', {k: 10})).map(h => h.id)"
    )
    page.wait_for_function(
        "(n) => document.querySelector('websem-search').shadowRoot.querySelectorAll('li').length === n",
        arg=len(expected),
    )
    shown = page.evaluate(
        "() => [...document.querySelector('websem-search').shadowRoot.querySelectorAll('li')].map(li => li.dataset.id)"
    )
    assert shown == expected
    assert page.locator("websem-search").get_attribute("state") == "ready"


def test_console_clean_and_no_foreign_requests(search_page):
    """Runs last in this module: covers the load, every search and the UI above."""
    _, log = search_page
    assert log.requests, "no requests recorded"
    assert not log.errors(), f"console errors: {log.errors()}"
    assert not log.foreign_requests(), f"requests left 127.0.0.1: {log.foreign_requests()}"
