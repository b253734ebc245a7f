"""websem's stdlib-only text pipeline: reading, extraction and chunking of documents, the
tokenizer, the lexical analyzer and BM25, ranking, and the in-page index.

The same files run in CPython at build time (as ``websem.text``) and inside Pyodide in the
browser (as ``websem_text``): relative imports only, stdlib only (plus the pure-Python
snowballstemmer, and bs4 / markdown-it-py for extraction, imported lazily).
"""
