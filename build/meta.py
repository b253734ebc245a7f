"""Page metadata (front matter, facet fields): ``websem.text.meta``, re-exported (the in-page
index runs the same copy in Pyodide)."""

from websem.text.meta import FACET_FIELDS, facet_meta, front_matter

__all__ = ["FACET_FIELDS", "facet_meta", "front_matter"]
