"""Parity with HF `tokenizers` on every document of every judged corpus under ../shared/data.

A document's text is ``title + " " + text`` (BEIR fields), the string websem build embeds for
a corpus.jsonl source. ids, offsets and the untruncated wordpiece count must all be equal."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from websem.text.wordpiece import WordPieceTokenizer

CORPORA = ("scifact-train", "cranfield", "cisi", "medline")
NODE_SCRIPT = Path(__file__).resolve().parent / "js" / "pyodide_tokenize.mjs"
MAX_LENGTH = 256


def doc_text(doc: dict) -> str:
    return (doc.get("title") or "") + " " + (doc.get("text") or "")


@pytest.fixture(scope="module")
def pair(source_model_dir: Path, hf_tokenizer):
    import tokenizers

    path = source_model_dir / "tokenizer.json"
    hf = hf_tokenizer
    assert hf.truncation["max_length"] == MAX_LENGTH
    full = tokenizers.Tokenizer.from_file(str(path))
    full.no_padding()
    full.no_truncation()
    mine = WordPieceTokenizer.from_json(path.read_text(encoding="utf-8"), max_length=MAX_LENGTH)
    return hf, full, mine


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_document(corpus: str, shared_data: Path, pair) -> None:
    hf, full, mine = pair
    with open(shared_data / corpus / "corpus.jsonl", encoding="utf-8") as f:
        texts = [doc_text(json.loads(line)) for line in f if line.strip()]
    assert len(texts) > 1000
    ref = hf.encode_batch(texts)
    ref_full = full.encode_batch(texts, add_special_tokens=False)
    bad = []
    for i, (t, r, rf) in enumerate(zip(texts, ref, ref_full, strict=True)):
        e = mine.encode(t)
        if (e.ids, e.offsets) != (r.ids, [tuple(o) for o in r.offsets]):
            bad.append(i)
        elif mine.count_tokens(t) != len(rf.ids):
            bad.append(i)
    assert bad == [], f"{corpus}: {len(bad)} of {len(texts)} documents differ, first {bad[:5]}"


@pytest.mark.slow
def test_every_document_in_pyodide(shared_data: Path, pair, source_model_dir: Path, tmp_path) -> None:
    """The same ~9k documents through the same files in Pyodide 314 (Node): ids and offsets."""
    hf = pair[0]
    strings = []
    for corpus in CORPORA:
        with open(shared_data / corpus / "corpus.jsonl", encoding="utf-8") as f:
            strings += [
                {"name": f"{corpus}/{i}", "text": doc_text(json.loads(line))}
                for i, line in enumerate(f)
                if line.strip()
            ]
    path = tmp_path / "docs.json"
    path.write_text(json.dumps(strings), encoding="utf-8")
    node = shutil.which("node")
    assert node, "websem tests: `node` (v20) is needed to run the tokenizer in Pyodide"
    proc = subprocess.run(
        [node, str(NODE_SCRIPT), "tokenize", str(source_model_dir / "tokenizer.json"), str(path),
         str(MAX_LENGTH)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = json.loads(proc.stdout)["items"]
    assert len(items) == len(strings) > 9000
    ref = hf.encode_batch([s["text"] for s in strings])
    bad = [
        it["name"]
        for it, r in zip(items, ref, strict=True)
        if it["ids"] != r.ids or it["offsets"] != [list(o) for o in r.offsets]
    ]
    assert bad == [], f"{len(bad)} documents differ in Pyodide, first {bad[:5]}"
