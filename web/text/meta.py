"""Page metadata: Markdown front matter and the facet fields (tags, section, language) read from
front matter or HTML ``<meta>`` tags; extract.py uses it for every format. Stdlib only: `websem
build` and the in-page index (inpage.py, in Pyodide) run this one copy."""

from __future__ import annotations

import re

__all__ = ["FACET_FIELDS", "facet_meta", "front_matter"]


_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def front_matter(md: str) -> tuple[dict, str]:
    """Split simple YAML-style front matter (``key: value`` lines) off a Markdown text."""
    m = _FRONT.match(md)
    if not m:
        return {}, md
    meta: dict = {}
    key = None
    for line in m.group(1).splitlines():
        item = line.strip()
        # YAML block list under the previous key ("tags:" then "  - a" lines)
        if key is not None and item.startswith("- ") and line[:1] in (" ", "\t", "-"):
            prev = meta.get(key)
            meta[key] = ([] if prev in ("", None) else prev if isinstance(prev, list)
                         else [prev]) + [_unquote(item[2:].strip())]
            continue
        if ":" in line and not line.startswith((" ", "\t", "#")):
            k, v = line.split(":", 1)
            key = k.strip()
            meta[key] = _unquote(v.strip())
    return meta, md[m.end():]


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


# Where each filter field comes from, first non-empty wins (docs/hybrid.md "Filters").
_FACET_SOURCES = {
    "tags": ("tags", "websem:tags", "keywords"),
    "section": ("section", "websem:section", "article:section", "category"),
    "language": ("language", "lang", "websem:language", "content-language"),
}
FACET_FIELDS = tuple(_FACET_SOURCES)


def _split_list(v) -> list[str]:
    """``"a, b"``, ``"[a, b]"`` or a list → ``["a", "b"]`` (stripped, empty and repeats dropped)."""
    if isinstance(v, (list, tuple)):
        items = [str(x) for x in v]
    else:
        s = str(v).strip()
        if s.startswith("[") and s.endswith("]"):
            s = s[1:-1]
        items = s.split(",")
    out: list[str] = []
    for x in items:
        x = _unquote(x.strip()).strip()
        if x and x not in out:
            out.append(x)
    return out


def facet_meta(meta: dict, html_lang: str | None = None) -> dict:
    """Normalize the filter fields of ``meta`` in place: ``tags`` a list of strings (from
    ``tags``/``keywords``, comma-separated or a list), ``section`` and ``language`` strings
    (``language`` falls back to ``<html lang>``). Other keys are kept as they are."""
    for fld, keys in _FACET_SOURCES.items():
        value = next((meta[k] for k in keys if meta.get(k) not in (None, "", [])), None)
        if value is None and fld == "language" and html_lang:
            value = html_lang
        if value is None:
            continue
        if fld == "tags":
            tags = _split_list(value)
            if tags:
                meta["tags"] = tags
        else:
            if isinstance(value, (list, tuple)):
                value = value[0] if value else ""
            value = str(value).strip()
            if value:
                meta[fld] = value
    return meta
