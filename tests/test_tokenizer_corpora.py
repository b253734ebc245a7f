"""Parity with HF `tokenizers` on every document of every judged corpus under ../shared/data.

A document's text is ``title + " " + text`` (BEIR fields), the string websem build embeds for
a corpus.jsonl source. ids, offsets and the untruncated wordpiece count must all be equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websem.text.wordpiece import WordPieceTokenizer

CORPORA = ("scifact-train", "cranfield", "cisi", "medline")
MAX_LENGTH = 256


def doc_text(doc: dict) -> str:
    return (doc.get("title") or "") + " " + (doc.get("text") or "")


@pytest.fixture(scope="module")
def pair(source_model_dir: Path):
    import tokenizers

    path = source_model_dir / "tokenizer.json"
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.no_padding()
    hf.enable_truncation(MAX_LENGTH)
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
