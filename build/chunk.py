"""Step 2 of `websem build`, chunking: ``websem.text.chunk``, re-exported.

The chunker lives in the stdlib text package so that the in-page index (Pyodide) cuts documents
exactly like `websem build`; see that module for the rules.
"""

from websem.text.chunk import Chunk, chunk_document, chunk_documents, default_overlap

__all__ = ["Chunk", "chunk_document", "chunk_documents", "default_overlap"]
