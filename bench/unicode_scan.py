"""Scan every Unicode code point through HF `tokenizers` and through the Unicode tables of
CPython (this interpreter) and Pyodide (via Node), and generate the override tables that make
websem's stdlib tokenizer agree with HF in both runtimes.

    .venv/bin/python bench/unicode_scan.py            # rewrites web/text/_unicode_overrides.py
                                                      # and bench/results/unicode_scan.json

For each tokenizer component the HF truth is probed one code point at a time with the Rust
normalizer / pre-tokenizer objects themselves (BertNormalizer with one option on, NFD,
BertPreTokenizer), so it reflects the tables compiled into the installed `tokenizers` wheel.
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from unicode_props import dump  # noqa: E402

ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# HF's `is_other` keeps unassigned (Cn) code points: measured, see docs/tokenizer.md.
OTHER_CATEGORIES = ("Cc", "Cf", "Co", "Cs")
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def code_points() -> list[int]:
    return [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def hf_truth(cps: list[int]) -> dict:
    """Per code point HF behaviour of each component."""
    from rich.progress import track
    from tokenizers import normalizers, pre_tokenizers

    clean = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False
    ).normalize_str
    cjk = normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False
    ).normalize_str
    strip = normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False
    ).normalize_str
    lower = normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True
    ).normalize_str
    nfd = normalizers.NFD().normalize_str
    pre = pre_tokenizers.BertPreTokenizer().pre_tokenize_str
    t: dict = {"other": set(), "space": set(), "cjk": set(), "punct": set(), "mn": set(),
               "nfd": {}, "lower": {}}
    for cp in track(cps, description="HF tokenizers, per code point"):
        ch = chr(cp)
        c = clean(ch)
        if c == "" and cp not in (0, 0xFFFD):
            t["other"].add(cp)
        elif c == " " and ch != " ":
            t["space"].add(cp)
        if cjk(ch) != ch:
            t["cjk"].add(cp)
        d = nfd(ch)
        if d != ch:
            t["nfd"][cp] = d
        elif strip(ch) == "":
            t["mn"].add(cp)
        lo = lower(ch)
        if lo != ch:
            t["lower"][cp] = lo
        n = len(pre("a" + ch + "a"))
        if n == 3:
            t["punct"].add(cp)
    return t


def runtime_view(props: dict, cps: list[int]) -> dict:
    """What the tokenizer decides from a runtime's unicodedata alone (no overrides)."""
    starts = [c[0] for c in props["categories"]]
    cats = [c[1] for c in props["categories"]]
    nfd = {int(k): v for k, v in props["nfd"].items()}
    lower = {int(k): v for k, v in props["lower"].items()}
    v: dict = {"other": set(), "space": set(), "cjk": set(), "punct": set(), "mn": set(),
               "nfd": nfd, "lower": lower, "ccc": {int(k): c for k, c in props["ccc"].items()}}
    for cp in cps:
        cat = cats[bisect.bisect_right(starts, cp) - 1]
        ch = chr(cp)
        if cat in OTHER_CATEGORIES and ch not in "\t\n\r" and cp not in (0, 0xFFFD):
            v["other"].add(cp)
        elif ch in WHITESPACE and ch != " ":
            v["space"].add(cp)
        if any(lo <= cp <= hi for lo, hi in CJK_RANGES):
            v["cjk"].add(cp)
        if cat == "Mn":
            v["mn"].add(cp)
        if ch in ASCII_PUNCT or cat[0] == "P":
            v["punct"].add(cp)
    return v


def diff(truth: dict, view: dict) -> dict:
    out = {}
    for k in ("other", "space", "cjk", "punct", "mn"):
        v = view[k]
        if k == "mn":
            # Mn is only asked of characters that HF's NFD leaves alone.
            v = {cp for cp in v if cp not in truth["nfd"]}
        out[k] = {"hf_only": sorted(truth[k] - v), "runtime_only": sorted(v - truth[k])}
    for k in ("nfd", "lower"):
        keys = set(truth[k]) | set(view[k])
        out[k] = sorted(cp for cp in keys if truth[k].get(cp, chr(cp)) != view[k].get(cp, chr(cp)))
    return out


PROBE_MARKS = (0x334, 0x5B0, 0x316, 0x301, 0x345, 0x1D165)


def probe_ccc(cands: list[int], c311: dict, c316: dict, hf_nfd: dict) -> tuple[dict, list[int]]:
    """HF's canonical combining class for each candidate, inferred from its NFD reordering."""
    from tokenizers import normalizers

    nfd = normalizers.NFD().normalize_str
    base = {0x334: 1, 0x5B0: 10, 0x316: 220, 0x301: 230, 0x345: 240, 0x1D165: 216}

    def reorder(chars: list[str], ccc: dict) -> str:
        out, i = list(chars), 0
        while i < len(out):
            if ccc(out[i]) == 0:
                i += 1
                continue
            j = i
            while j < len(out) and ccc(out[j]) != 0:
                j += 1
            out[i:j] = sorted(out[i:j], key=ccc)
            i = j
        return "".join(out)

    found, unresolved = {}, []
    for x in cands:
        probes = []
        for m in PROBE_MARKS:
            for s in ("a" + chr(m) + chr(x), "a" + chr(x) + chr(m)):
                probes.append((s, nfd(s)))
        for v in dict.fromkeys((0, c311.get(x, 0), c316.get(x, 0))):
            def ccc(ch: str, v: int = v, x: int = x) -> int:
                cp = ord(ch)
                return v if cp == x else base.get(cp, c311.get(cp, 0))

            ok = all(
                reorder(list("".join(hf_nfd.get(ord(c), c) for c in s)), ccc) == h
                for s, h in probes
            )
            if ok:
                found[x] = v
                break
        else:
            unresolved.append(x)
    return found, unresolved


def _lines(items: list[str], per_line: int = 8) -> str:
    rows = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "".join(f"    {r},\n" for r in rows)


def fmt_set(name: str, cps: set[int]) -> str:
    body = _lines([f"0x{c:X}" for c in sorted(cps)])
    if not body:
        return f"{name}: frozenset[int] = frozenset()\n"
    return f"{name}: frozenset[int] = frozenset(\n  {{\n{body}  }}\n)\n"


def fmt_map(name: str, m: dict, value_type: str) -> str:
    body = _lines([f"0x{c:X}: {ascii(m[c])}" for c in sorted(m)], per_line=4)
    return f"{name}: dict[int, {value_type}] = {{\n{body}}}\n"


def main() -> None:
    cps = code_points()
    truth = hf_truth(cps)
    props = {"cpython": dump()}
    node = subprocess.run(
        ["node", str(REPO / "tests/js/pyodide_tokenize.mjs"), "unicode-dump",
         str(REPO / "bench/unicode_props.py")],
        check=True, capture_output=True, text=True,
    )
    props["pyodide"] = json.loads(node.stdout)
    views = {name: runtime_view(p, cps) for name, p in props.items()}
    diffs = {name: diff(truth, v) for name, v in views.items()}

    # Overrides: every code point where either runtime disagrees with HF, set to HF's answer.
    ovr: dict = {}
    for k in ("other", "punct", "mn"):
        bad = set()
        for d in diffs.values():
            bad |= set(d[k]["hf_only"]) | set(d[k]["runtime_only"])
        ovr[k.upper() + "_ADD"] = {c for c in bad if c in truth[k]}
        ovr[k.upper() + "_REMOVE"] = {c for c in bad if c not in truth[k]}
    for k in ("nfd", "lower"):
        bad = set()
        for d in diffs.values():
            bad |= set(d[k])
        ovr[k.upper()] = {c: truth[k].get(c, chr(c)) for c in bad}
    # Combining classes: HF's table is older. For every code point that is a non-starter in
    # either runtime, find the class (0 or a runtime's value) that reproduces HF's NFD
    # reordering against marks of classes 1, 10, 220, 230, 240 and 216.
    c311, c316 = views["cpython"]["ccc"], views["pyodide"]["ccc"]
    ccc_hf, ccc_unresolved = probe_ccc(sorted(set(c311) | set(c316)), c311, c316, truth["nfd"])
    ccc_diff = sorted(c for c in ccc_hf if ccc_hf[c] != c311.get(c, 0) or ccc_hf[c] != c316.get(c, 0))
    ovr["CCC"] = {c: ccc_hf[c] for c in ccc_diff}

    import tokenizers

    header = (
        '"""GENERATED by bench/unicode_scan.py: do not edit.\n\n'
        "Code points where CPython's or Pyodide's unicodedata disagrees with the tables compiled\n"
        f"into HF tokenizers {tokenizers.__version__} (CPython unidata "
        f"{props['cpython']['unidata_version']}, Pyodide unidata "
        f"{props['pyodide']['unidata_version']}). Each value is HF's answer, so the stdlib\n"
        'tokenizer gives the same result in both runtimes. See docs/tokenizer.md.\n"""\n\n'
    )
    body = "".join(
        fmt_set(n, ovr[n]) for n in
        ("OTHER_ADD", "OTHER_REMOVE", "MN_ADD", "MN_REMOVE", "PUNCT_ADD", "PUNCT_REMOVE")
    )
    body += fmt_map("NFD", ovr["NFD"], "str") + fmt_map("CCC", ovr["CCC"], "int")
    body += fmt_map("LOWER", ovr["LOWER"], "str")
    (REPO / "web/text/_unicode_overrides.py").write_text(header + body)

    report = {
        "tokenizers": tokenizers.__version__,
        "code_points_scanned": len(cps),
        "runtimes": {n: {"python": p["python"], "unidata_version": p["unidata_version"]}
                     for n, p in props.items()},
        "differences_vs_hf": diffs,
        "ccc_overridden": ccc_diff,
        "ccc_unresolved": ccc_unresolved,
        "overrides": {k: (sorted(v) if isinstance(v, set) else {str(c): x for c, x in v.items()})
                      for k, v in ovr.items()},
        "hf_space_set": sorted(truth["space"]),
    }
    out = REPO / "bench/results/unicode_scan.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=True))
    for n, d in diffs.items():
        print(n, {k: (len(v) if isinstance(v, list) else {a: len(b) for a, b in v.items()})
                  for k, v in d.items()})
    print("ccc overridden", len(ccc_diff), "unresolved", ccc_unresolved)
    print("overrides", {k: len(v) for k, v in ovr.items()})


if __name__ == "__main__":
    main()
