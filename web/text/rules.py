"""The query-time rules of a bundle, defined once: search modes, result and candidate counts,
snippet length, filter fields and hybrid fusion.

``websem build`` writes ``search_table()`` into the bundle as ``manifest.search``; from then on the
CPU reference (``web/query.py``), the browser runtime and the edge handler all read the rules from
that table (``check_search`` validates it), never from a constant of their own. So changing a
default here changes every reader of the next bundle, and an old bundle keeps the rules it was
built and measured with.

Stdlib only: this module ships in bundles as ``websem_text.rules`` and runs inside Pyodide.
The fitted fusion and how it was chosen: docs/hybrid.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import WebsemError

__all__ = [
    "DEFAULT_FUSION",
    "DEFAULT_RRF_K",
    "DEFAULTS",
    "FACETS",
    "FUSION_METHODS",
    "MODES",
    "NORMALIZATIONS",
    "check_fusion",
    "check_mode",
    "check_search",
    "search_table",
]

# Every search mode; the first is the default mode of a bundle whose table does not reorder them.
MODES = ("hybrid", "semantic", "lexical")
# Filter (facet) fields a document may carry; build/meta.py reads them from pages.
FACETS = ("tags", "section", "language")
FUSION_METHODS = ("rrf", "convex")
NORMALIZATIONS = ("minmax", "max", "zscore")
DEFAULT_RRF_K = 60  # the usual RRF constant, used when an rrf fusion table omits rrf_k
# Fitted by bench/fit_fusion.py on training queries only (docs/hybrid.md "Quality"): the convex
# combination of max-normalised scores, alpha = the dense side's weight.
DEFAULT_FUSION = {"method": "convex", "norm": "max", "alpha": 0.6}
# k: hits per query; n: candidates per side fused in hybrid mode (docs/hybrid.md: N = 100 measured
# on SciFact/Cranfield/CISI/Medline); snippet_chars: the longest snippet, in code points.
DEFAULTS = {"k": 10, "n": 100, "snippet_chars": 240}

_KEYS = ("modes", "k", "n", "snippet_chars", "facets", "fusion")
_REBUILD = "rebuild the bundle with `websem build`"


def search_table(*, facets: Sequence[str] = FACETS, modes: Sequence[str] = MODES) -> dict:
    """The ``manifest.search`` table a build writes: every key of ``_KEYS``, JSON-ready.
    ``facets``: the filter fields the bundle's documents carry (in ``FACETS`` order)."""
    return check_search({"modes": list(modes), **DEFAULTS, "facets": list(facets),
                         "fusion": dict(DEFAULT_FUSION)})


def check_mode(mode: object, allowed: Sequence[str] = MODES) -> str:
    """``mode`` if it is one of ``allowed`` (a bundle's ``search.modes``), else THE unknown-mode
    error every reader raises."""
    if not isinstance(mode, str) or mode not in allowed:
        raise WebsemError(f"websem: unknown search mode {mode!r}; use one of {', '.join(allowed)}")
    return mode


def _bad(key: str, value: object, want: str) -> WebsemError:
    return WebsemError(f"websem: manifest.search.{key} is {value!r} but must be {want}; {_REBUILD}")


def _count(table: Mapping, key: str) -> int:
    v = table[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise _bad(key, v, "an integer >= 1")
    return v


def _names(table: Mapping, key: str, allowed: Sequence[str], *, empty: bool) -> list[str]:
    v = table[key]
    want = f"a list of distinct names from {', '.join(allowed)}" + ("" if empty else " (at least one)")
    if (not isinstance(v, list) or (not v and not empty) or len(set(map(str, v))) != len(v)
            or any(x not in allowed for x in v)):
        raise _bad(key, v, want)
    return list(v)


def check_search(table: object) -> dict:
    """A validated copy of a bundle's ``manifest.search`` table (see ``search_table``); any
    missing, unknown or out-of-range entry is a ``websem:`` error naming it."""
    if table is None:
        raise WebsemError(f"websem: manifest.json has no search table (manifest.search); {_REBUILD}")
    if not isinstance(table, Mapping):
        raise WebsemError(f"websem: manifest.search must be an object, got {table!r}; {_REBUILD}")
    for key in _KEYS:
        if key not in table:
            raise WebsemError(f"websem: manifest.search.{key} is missing; {_REBUILD}")
    extra = sorted(set(table) - set(_KEYS))
    if extra:
        raise WebsemError(f"websem: manifest.search.{extra[0]} is unknown (known: {', '.join(_KEYS)}); "
                          f"{_REBUILD}")
    return {
        "modes": _names(table, "modes", MODES, empty=False),
        "k": _count(table, "k"),
        "n": _count(table, "n"),
        "snippet_chars": _count(table, "snippet_chars"),
        "facets": _names(table, "facets", FACETS, empty=True),
        "fusion": check_fusion(table["fusion"]),
    }


def check_fusion(fusion: object) -> dict:
    """Validated fusion settings (``manifest.search.fusion``): ``{"method": "rrf", "rrf_k"}``
    (plus ``"alpha"``, the dense side's weight, for weighted RRF) or ``{"method": "convex",
    "alpha", "norm"}``."""
    if not isinstance(fusion, Mapping):
        raise WebsemError("websem: fusion settings must be an object like "
                          f"{{'method': 'convex', 'alpha': 0.6, 'norm': 'max'}}, got {fusion!r}")
    method = fusion.get("method")
    if method not in FUSION_METHODS:
        raise WebsemError(f"websem: unknown fusion method {method!r}; use one of {', '.join(FUSION_METHODS)}")
    if method == "rrf":
        k = fusion.get("rrf_k", DEFAULT_RRF_K)
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise WebsemError(f"websem: RRF needs an integer rrf_k >= 0, got rrf_k={k!r}")
        if "alpha" not in fusion:
            return {"method": "rrf", "rrf_k": k}
        return {"method": "rrf", "rrf_k": k, "alpha": _alpha(fusion.get("alpha"), "weighted RRF")}
    alpha = _alpha(fusion.get("alpha"), "convex fusion")
    norm = fusion.get("norm", "minmax")
    if norm not in NORMALIZATIONS:
        raise WebsemError(f"websem: unknown score normalization {norm!r}; use one of {', '.join(NORMALIZATIONS)}")
    return {"method": "convex", "alpha": alpha, "norm": norm}


def _alpha(alpha: object, what: str) -> float:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 <= alpha <= 1:
        raise WebsemError(f"websem: {what} needs a weight 0 <= alpha <= 1 (dense side), got alpha={alpha!r}")
    return float(alpha)
