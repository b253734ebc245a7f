"""websem's stdlib-only text pipeline (tokenizer, lexical analyzer).

The same files run in CPython at build time (as ``websem.text``) and inside Pyodide in the
browser (as ``websem_text``): relative imports only, stdlib only.
"""
