"""Extraction for `websem build`: ``websem.text.extract``, re-exported.

The code lives in the stdlib text package so that the in-page index (Pyodide) runs the very same
extraction as `websem build`; see that module for what counts as content.
"""

from websem.text.extract import (
    FACET_FIELDS,
    FURNITURE_WORDS,
    Document,
    PageInfo,
    Section,
    extract_html,
    facet_meta,
    html_to_document,
    markdown_to_document,
    slugify,
    text_to_document,
)

__all__ = [
    "FACET_FIELDS",
    "FURNITURE_WORDS",
    "Document",
    "PageInfo",
    "Section",
    "extract_html",
    "facet_meta",
    "html_to_document",
    "markdown_to_document",
    "slugify",
    "text_to_document",
]
