"""The analyzer's JS twin (web/src/analyze.js) and the JS snippet cutter (web/src/snippet.js)
against the Python analyzer and `snippet` (web/text), the ones that build the index.

Equal means the same tokens, in order, with the same term and the same span (Python's code-point
spans converted to UTF-16 units), on: every document (title + text) and every query of the four
judged corpora in ../shared/data; 10,000 seeded generated strings (identifiers, composed and
decomposed accents, ß/ſ/İ/ı/sigmas, CJK, astral letters, emoji, digits, 64/65-character tokens,
random code points); every code point alone and inside a word; the generated strings again under
four non-default configs; and for snippets, 500 (query, relevant document) pairs of Cranfield plus
600 generated texts with astral characters and other window sizes. All inputs go through one node
process (tests/js/analyze_twin.mjs)."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from websem.text.analyze import Analyzer
from websem.text.errors import WebsemError
from websem.text.snippets import snippet, utf16_ranges

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "js" / "analyze_twin.mjs"
CORPORA = ("cranfield", "cisi", "medline", "scifact-train")
N_GENERATED = 10_000
N_SNIPPETS = 500

OTHER_CONFIGS = (
    {"lowercase": False},
    {"fold_accents": False},
    {"stopwords": ["foo", "the", "ǆ", "straße"], "stemmer": None},
    {"split_identifiers": False, "max_token_chars": 8},
)

# ---------------------------------------------------------------- generated strings

_WORDS = (
    "the a of running runner's runners' generously generous past pasta sky skies news only early "
    "boundary layer heat transfer flows flowing hypersonic aeroelastic communication universal "
    "organization emergency interest later lateral arsenal caresses ponies cats feed agreed "
    "hopping hoping controlling rolling dying lying tying yes yellow say sayings crying by "
    "is was will with T C API vitamin D Python 3 x y z"
).split()
_ACCENTED = (
    "café", "naïve", "résumé", "Ångström", "Zürich", "façade", "coöperate", "Øresund", "Łódź",
    "Đorđe", "Þórr", "æther", "Œuvre", "Ĳssel", "ħbar", "Tromsø", "Ŋ", "kĸ", "Ŧ", "ƀ", "ɨ",
    "São Paulo", "Ελληνικά", "русский", "Dvořák", "ﬁnance", "Ǆemal", "ǅ", "Ⅻ", "①②", "½", "x²",
)
_SPECIAL = (
    "ß", "Straße", "STRASSE", "ẞ", "ſ", "ſtuff", "İstanbul", "İ", "ı", "ıi", "ΣΊΣΥΦΟΣ",
    "ὈΔΥΣΣΕΎΣ", "σς", "ΌΣΟΣ", "Σ", "ς", "\u212a", "\u212b", "ŉ", "ǰ", "ΐ", "ﬀ", "ﬃ", "Ꭰᏸ",
    "ᏸᏹ", "Ａｂｃ１２", "𝐀𝐁𝐂𝐝", "𝔘𝔫𝔦", "𐐀𐐨", "𞤀𞤢", "٣٤٥", "۱۲", "߀", "𝟘𝟙", "İ̇",
    "\u0345", "ͅ", "ﷺ", "㎏", "ℌ", "ℵ", "ǈ", "ʼn",
)
_CJK = "漢字語言中文日本語한국어かなカナ𠀀𠀁𪜀𫝀𫠠𬺰丽"
_EMOJI = ("😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "#\ufe0f\u20e3", "❤\ufe0f", "🚀x", "a😀b")
_IDENT_PARTS = ("get", "element", "by", "id", "html", "parser", "x", "y", "utf", "8", "decoder",
                "my", "var", "init", "A", "B", "io", "url", "http", "request", "v2", "ßa", "é")
_SEPS = (" ", " ", " ", "\n", "\t", "-", ".", ", ", "'", "\u2019", "/", "\u00a0", "\u3000", "",
         "\u200b", "\u00ad", "\x1c", "\u0085", "(", ")", "\u0301", ":", "_")
_MARK_RANGES = ((0x300, 0x36F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F))


def _random_cp(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        a, b = rng.choice(_MARK_RANGES)
        c = rng.randint(a, b)
    elif r < 0.8:
        c = rng.randint(0x80, 0xFFFF)
    else:
        c = rng.randint(0x10000, 0x10FFFF)
    if 0xD800 <= c <= 0xDFFF:
        c = 0x10000 + c
    return chr(c)


def _identifier(rng: random.Random) -> str:
    parts = [rng.choice(_IDENT_PARTS) for _ in range(rng.randint(1, 4))]
    style = rng.randrange(7)
    if style == 0:
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    if style == 1:
        return "".join(p[:1].upper() + p[1:] for p in parts)
    if style == 2:
        return "_".join(parts)
    if style == 3:
        return "_".join(p.upper() for p in parts)
    if style == 4:
        return "_" * rng.randint(1, 2) + "_".join(parts) + "_" * rng.randint(0, 2)
    if style == 5:
        return "".join(p.upper() for p in parts[:-1]) + parts[-1].capitalize()
    return rng.choice(("mRNA", "HbA1c", "iPhone", "getElementById", "HTMLParser", "XMLHttpRequest",
                       "utf8Decoder", "v2_0", "a_b", "__init__", "IOError", "aB", "ABc", "AbC"))


def _fragment(rng: random.Random) -> str:
    kind = rng.randrange(11)
    if kind == 0:
        return rng.choice(_WORDS)
    if kind == 1:
        return _identifier(rng)
    if kind == 2:
        w = rng.choice(_ACCENTED)
        return unicodedata.normalize(rng.choice(("NFC", "NFD", "NFKD", "NFKC")), w)
    if kind == 3:
        return rng.choice(_SPECIAL)
    if kind == 4:
        return "".join(rng.choice(_CJK) for _ in range(rng.randint(1, 4)))
    if kind == 5:
        return rng.choice(_EMOJI)
    if kind == 6:
        return rng.choice(("3.14", "2024", "1e10", "0x1F", "42", "٣", "½", "10⁻³", "C++", "C#"))
    if kind == 7:
        n = rng.choice((63, 64, 65, 66))
        base = rng.choice(("a", "é", "e\u0301", "𝐚", "X", "ab_"))
        return (base * n)[: n if rng.random() < 0.5 else len(base * n)]
    if kind == 8:
        return "".join(_random_cp(rng) for _ in range(rng.randint(1, 5)))
    if kind == 9:
        return rng.choice(_WORDS) + _random_cp(rng) + rng.choice(_WORDS)
    return rng.choice(_WORDS).upper()


def generated_strings(n: int = N_GENERATED, seed: int = 20240611) -> list[str]:
    """`n` strings, each a few fragments joined by random separators (seeded: always the same)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 12)
        out.append("".join(_fragment(rng) + rng.choice(_SEPS) for _ in range(k)))
    return out


def code_point_strings() -> list[str]:
    """Every non-surrogate code point alone and inside a word ("a{c}b"), 2048 per string."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    out = []
    for i in range(0, len(cps), 2048):
        block = cps[i : i + 2048]
        out.append(" ".join(chr(c) for c in block))
        out.append(" ".join(f"a{chr(c)}b" for c in block))
    return out


# ---------------------------------------------------------------- expected (Python) side


def _utf16(text: str, spans: list[list]) -> list[list]:
    """[term, start, end] code-point spans -> UTF-16 units."""
    if len(text.encode("utf-16-le")) == 2 * len(text):
        return spans
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return [[t, prefix[a], prefix[b]] for t, a, b in spans]


def _expected_tokens(analyzer: Analyzer, strings: list[str]) -> list[list]:
    return [_utf16(s, [[t.term, t.start, t.end] for t in analyzer.tokens(s)]) for s in strings]


def _corpus(shared_data: Path, name: str) -> tuple[list[dict], list[dict]]:
    def load(file: str) -> list[dict]:
        with open(shared_data / name / file, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    return load("corpus.jsonl"), load("queries.jsonl")


def _snippet_items(shared_data: Path, analyzer: Analyzer) -> list[dict]:
    docs, queries = _corpus(shared_data, "cranfield")
    by_id = {d["_id"]: d for d in docs}
    query_text = {q["_id"]: q["text"] for q in queries}
    pairs = []
    with open(shared_data / "cranfield" / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, _ = line.rstrip("\n").split("\t")
            if qid in query_text and did in by_id:
                pairs.append((qid, did))
    items = [{"text": by_id[d].get("text") or "", "terms": analyzer.terms(query_text[q]), "max_chars": 240}
             for q, d in pairs[:N_SNIPPETS]]
    assert len(items) == N_SNIPPETS
    # Generated texts longer than the window, with astral characters, other window sizes and
    # terms taken from the text itself (so there is something to highlight).
    rng = random.Random(7)
    gen = generated_strings(3000, seed=99)
    for i in range(600):
        text = " ".join(gen[i * 5 : i * 5 + 5]) + " 𝐚𝐛 " + " ".join(rng.choice(_WORDS) for _ in range(40))
        terms = analyzer.terms(text)
        picked = rng.sample(terms, min(len(terms), rng.randint(1, 4))) if terms else ["zzz"]
        items.append({"text": text, "terms": picked, "max_chars": rng.choice((240, 120, 60))})
    return items


@pytest.fixture(scope="module")
def twin(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One node run over every input; returns {"job", "out", "groups"}."""
    default = Analyzer().config()
    groups: dict[str, tuple[int, int]] = {}  # name -> (first, count) within run 0
    strings: list[str] = []

    def add(name: str, items: list[str]) -> None:
        groups[name] = (len(strings), len(items))
        strings.extend(items)

    for name in CORPORA:
        docs, queries = _corpus(shared_data, name)
        add(f"{name}/corpus", [(d.get("title") or "") + " " + (d.get("text") or "") for d in docs])
        add(f"{name}/queries", [q["text"] for q in queries])
    add("generated", generated_strings())
    add("code points", code_point_strings())
    generated = strings[groups["generated"][0] : groups["generated"][0] + N_GENERATED]
    runs = [{"config": default, "strings": strings}]
    runs += [{"config": {**default, **change}, "strings": generated} for change in OTHER_CONFIGS]
    refuse = [{**default, "version": 2}, {**default, "stopwords": "french"},
              {**default, "stemmer": "french"}]
    job = {"runs": runs, "refuse": refuse,
           "snippets": {"config": default, "items": _snippet_items(shared_data, Analyzer())}}
    tmp = tmp_path_factory.mktemp("twin")
    (tmp / "in.json").write_text(json.dumps(job), encoding="utf-8")
    node = shutil.which("node")
    assert node, "websem tests: `node` (v20) is needed to run the analyzer's JS twin"
    proc = subprocess.run([node, str(DRIVER), str(tmp / "in.json"), str(tmp / "out.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp / "out.json").read_text(encoding="utf-8"))
    return {"job": job, "out": out, "groups": groups}


def _diff(strings: list[str], got: list, want: list) -> str:
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    if not bad:
        return ""
    i = bad[0]
    pairs = enumerate(zip(got[i], want[i], strict=False))
    first = next((k for k, (g, w) in pairs if g != w), min(len(got[i]), len(want[i])))
    return (f"{len(bad)} of {len(strings)} differ; first {strings[i][:200]!r}: at token {first} "
            f"JS {got[i][first:first + 3]} vs Python {want[i][first:first + 3]}")


@pytest.mark.parametrize("group", [f"{c}/{p}" for c in CORPORA for p in ("corpus", "queries")]
                         + ["generated", "code points"])
def test_same_tokens_as_python(twin: dict, group: str) -> None:
    first, count = twin["groups"][group]
    strings = twin["job"]["runs"][0]["strings"][first : first + count]
    got = twin["out"]["runs"][0][first : first + count]
    if group.endswith("/corpus"):
        assert count > 1000
    if group == "generated":
        assert count == N_GENERATED
    want = _expected_tokens(Analyzer(), strings)
    assert sum(map(len, want)) > count  # real work: tokens, not empty lists
    assert not _diff(strings, got, want), f"{group}: " + _diff(strings, got, want)


@pytest.mark.parametrize("index", range(len(OTHER_CONFIGS)), ids=[json.dumps(c) for c in OTHER_CONFIGS])
def test_same_tokens_under_other_configs(twin: dict, index: int) -> None:
    run = twin["job"]["runs"][index + 1]
    want = _expected_tokens(Analyzer.from_config(run["config"]), run["strings"])
    got = twin["out"]["runs"][index + 1]
    assert not _diff(run["strings"], got, want), _diff(run["strings"], got, want)


def test_same_snippets_as_python(twin: dict) -> None:
    analyzer = Analyzer()
    items = twin["job"]["snippets"]["items"]
    bad = []
    highlighted = 0
    for i, (item, got) in enumerate(zip(items, twin["out"]["snippets"], strict=True)):
        sn = snippet(item["text"], analyzer, item["terms"], max_chars=item["max_chars"])
        text = item["text"]
        want = {"text": sn["text"], "start": len(text[: sn["start"]].encode("utf-16-le")) // 2,
                "end": len(text[: sn["end"]].encode("utf-16-le")) // 2,
                "highlights": utf16_ranges(sn["text"], sn["highlights"])}
        highlighted += bool(sn["highlights"])
        if got != want:
            bad.append((i, got, want))
    assert not bad, f"{len(bad)} of {len(items)} snippets differ; first: {bad[0]}"
    # The pairs are judged relevant: most snippets must highlight something, or nothing was tested.
    assert highlighted > 0.8 * len(items)


def test_refusals_say_what_python_says(twin: dict) -> None:
    refuse = twin["job"]["refuse"]
    errors = twin["out"]["errors"]
    for config, message in zip(refuse[:2], errors[:2], strict=True):
        with pytest.raises(WebsemError) as e:
            Analyzer.from_config(config)
        assert message == str(e.value)
    # The twin stems English only (Python could load any snowballstemmer language).
    assert errors[2].startswith("websem:") and "'french'" in errors[2] and "'english'" in errors[2]


def test_unicode_tables_are_current() -> None:
    """web/src/analyze-tables.js is what web/tools/analyze_tables.py writes from this CPython."""
    spec = importlib.util.spec_from_file_location("analyze_tables", REPO / "web" / "tools" / "analyze_tables.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.OUT.read_text(encoding="utf-8") == mod.generate(), (
        "web/src/analyze-tables.js is stale: run `.venv/bin/python web/tools/analyze_tables.py`")


def test_stemmer_port_matches_the_installed_snowballstemmer() -> None:
    """stem-english.js is a port of one snowballstemmer release: upgrading the Python package
    without re-porting must fail here (and in the corpus comparisons above)."""
    import importlib.metadata
    import re

    js = (REPO / "web" / "src" / "stem-english.js").read_text(encoding="utf-8")
    ported = re.search(r'SNOWBALL_VERSION = "([^"]+)"', js)
    assert ported and ported.group(1) == importlib.metadata.version("snowballstemmer")
