"""The in-page index's pieces that need no built bundle (web/text/inpage.py, inpage_rows.py):
float16 rows rounded like numpy, the memory breakdown's size walk, and the rule for record text
that is not valid Unicode. Parity with `websem build` on real documents: tests/test_inpage.py.
"""

from __future__ import annotations

import json
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest
from websem.text.errors import WebsemError
from websem.text.inpage import InPageIndex, deep_sizeof, float16_bytes
from websem.text.wordpiece import WordPieceTokenizer

# ----------------------------------------------------------------------------- float16


def test_float16_rounds_like_numpy() -> None:
    """struct's IEEE half equals numpy's astype(float16) bit for bit: random values over every
    exponent, exact ties between neighbouring halves, subnormals, the overflow edge, ±0, ±inf, NaN."""
    rng = np.random.default_rng(14)
    parts = [rng.standard_normal(20000).astype(np.float32),
             (rng.standard_normal(20000) * 2.0 ** rng.integers(-30, 17, 20000)).astype(np.float32),
             rng.uniform(-1, 1, 20000).astype(np.float32)]
    halves = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    mids = ((halves[:-1] + halves[1:]) / 2).astype(np.float32)  # exact ties (float32 holds them)
    parts += [mids, -mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf))]
    parts.append(np.array([0.0, -0.0, 65504.0, 65519.996, 65520.0, -65520.0, 1e9, -1e9, np.inf, -np.inf,
                           np.nan, -np.nan, 2.0 ** -24, 2.0 ** -25, 2.0 ** -26, -(2.0 ** -25), 6.1e-5,
                           np.finfo(np.float32).tiny, np.finfo(np.float32).max], dtype=np.float32))
    values = np.concatenate(parts).astype("<f4")
    got = float16_bytes(array("f", values.tobytes()))
    with np.errstate(over="ignore"):  # the overflow edge is the point
        want = values.astype("<f2").tobytes()
    assert got == want


def test_deep_sizeof_counts_each_object_once() -> None:
    """The memory breakdown's Python sizes: shared objects once, exclusions and what an earlier
    walk counted left out, code objects never."""
    text = "x" * 1000
    rows = [text, text, (text, 7)]
    assert deep_sizeof(rows) == sys.getsizeof(rows) + sys.getsizeof(text) + sys.getsizeof(rows[2]) + sys.getsizeof(7)
    assert deep_sizeof(rows, exclude=[text]) == deep_sizeof(rows) - sys.getsizeof(text)
    seen: set[int] = set()
    first = deep_sizeof(rows, seen=seen)
    holder = {"rows": rows, "f": deep_sizeof}
    assert deep_sizeof(holder, seen=seen) == sys.getsizeof(holder) + sys.getsizeof("rows") + sys.getsizeof("f")
    assert first == deep_sizeof(rows)

    class Slotted:
        __slots__ = ("a", "b")

    obj = Slotted()
    obj.a = text
    assert deep_sizeof(obj) == sys.getsizeof(obj) + sys.getsizeof(text)  # slots are walked; unset ones skipped


# ----------------------------------------------------------------------------- text that is not Unicode


def _index(model_package: Path, **options) -> InPageIndex:
    manifest = json.loads((model_package / "manifest.json").read_text("utf-8"))
    tok = WordPieceTokenizer.from_json((model_package / "tokenizer.json").read_text("utf-8"), max_length=256)
    return InPageIndex(tok, model_sha256=manifest["files"]["model.onnx"]["sha256"], dims=384, max_seq_length=256,
                       **options)


@pytest.mark.parametrize("record,field,at", [
    ({"id": "a", "title": "T", "text": "bad \ud800 text"}, "text", 4),
    ({"id": "b", "title": "x\udfff", "text": "fine"}, "title", 1),
    ({"id": "c", "text": "fine", "url": "/p\udc80"}, "url", 2),
    ({"id": "d", "text": "fine", "meta": {"tags": ["ok", "\ud83d"]}}, "meta", 0),
])
def test_a_lone_surrogate_gets_the_builds_invalid_text_rule(model_package: Path, record: dict, field: str,
                                                            at: int) -> None:
    """JSON can spell a UTF-16 surrogate alone ("\\ud800"), which no UTF-8 text holds: strict, a
    `websem:` error naming the document, the field and where (as invalid UTF-8 gets from the
    build), and nothing is left pending; with encoding_errors "replace", U+FFFD in its place and
    the document reported, as the build reports a file it decoded that way."""
    ix = _index(model_package)
    with pytest.raises(WebsemError) as e:
        ix.prepare(record)
    bad = next(c for c in json.dumps(record, ensure_ascii=False) if "\ud800" <= c <= "\udfff")
    assert str(e.value) == (
        f"websem: document {record['id']!r} field {field!r} is not valid Unicode (a lone surrogate "
        f"U+{ord(bad):04X} at character {at}), so it cannot be written as UTF-8; remove or replace that "
        'character, or index with encoding_errors "replace" to store U+FFFD for it')
    assert ix.info()["pending"] == 0
    # the same id is still free, and the index still works
    assert ix.prepare({"id": record["id"], "text": "Boundary layers."})["skipped"] is None

    lenient = _index(model_package, encoding_errors="replace")
    p = lenient.prepare(record)
    assert p["skipped"] is None and lenient.report.replaced == [f"document {record['id']!r}"]
    lenient.add(p["id"], bytes(p["n_chunks"] * 384 * 4))
    files = lenient.files()
    text = files["index/chunks.json"].decode("utf-8") + files["index/docs.json"].decode("utf-8")
    assert "\ufffd" in text and not any("\ud800" <= c <= "\udfff" for c in text)
