"""Per-code-point decisions of websem's stdlib tokenizer, as compact JSON-able data.

Stdlib only. Run with a global ``w`` bound to the wordpiece module (``websem.text.wordpiece`` in
CPython, ``websem_text.wordpiece`` in Pyodide); ``components()`` returns the same shape as
``bench/unicode_scan.py:hf_truth`` (sets as sorted code-point lists, maps as {cp: str}).
"""


def _ranges(cps):
    out = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def components(w):
    other, space, cjk, punct, mn = [], [], [], [], []
    nfd, lower, ccc = {}, {}, {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        is_other = ch not in "\t\n\r" and cp not in (0, 0xFFFD) and w._is_other(ch)
        if is_other:
            other.append(cp)
        elif ch in w._WHITESPACE and ch != " ":
            space.append(cp)
        if w._is_cjk(cp):
            cjk.append(cp)
        d = w._nfd(ch)
        if d != ch:
            nfd[str(cp)] = d
        elif w._is_mn(ch):
            mn.append(cp)
        lo = w._lower(ch)
        if lo != ch:
            lower[str(cp)] = lo
        if ch not in w._WHITESPACE and w._is_punct(ch):
            punct.append(cp)
        c = w._ccc(ch)
        if c:
            ccc[str(cp)] = c
    return {
        "other": _ranges(other), "space": _ranges(space), "cjk": _ranges(cjk),
        "punct": _ranges(punct), "mn": _ranges(mn), "nfd": nfd, "lower": lower, "ccc": ccc,
    }
