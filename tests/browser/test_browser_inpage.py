"""In-page indexing (`createIndex`, web/src/inpage.js) in real Chromium.

- The demo page (demo/site/private.html): files chosen and dropped are indexed in the page,
  searched, still there after a reload (OPFS), and cleared; every request stays on 127.0.0.1, is a
  bodiless GET, and after the runtime files have loaded the page makes no request at all.
- Parity: the first 300 Cranfield documents indexed in the page give the chunks (text, offsets,
  anchors) and documents of `websem build` on the same records, the token ids of the build's
  tokenizer, vectors within 1e-6 of the CPU embedder on those ids, and the same top-10 (ids,
  scores, snippets, highlights, facets) as `websem query` on that bundle in all three modes.
- Bad input: an empty file, a binary file, invalid UTF-8, a 20 MB file and a duplicate id get the
  same skip or `websem:` error as `websem build`, and the index stays usable.
- Storage: the IndexedDB fallback also survives a reload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_SITE = REPO / "demo" / "site"
N_QUERIES = 20
LOAD_MS = 300_000

# Notes a visitor might drop, with one question each whose answer only that note holds.
NOTES = {
    "tides.md": "# Tides\n\nThe moon's gravity pulls the oceans towards it, so the sea rises and falls twice a day.\n",
    "bread.txt": "Sourdough bread\n\nMix flour, water and a starter; let the dough ferment overnight before baking.\n",
    "garden.html": ("<!doctype html><html><head><title>Tomatoes</title></head><body><main><h1>Growing tomatoes</h1>"
                    "<p>Tomato plants need full sun, deep watering and a stake to climb.</p></main></body></html>"),
}
QUESTIONS = {
    "why does the sea level go up and down": "tides.md",
    "how long should dough ferment": "bread.txt",
    "what do tomato plants need": "garden.html",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser_bundle: Path, serve, bt) -> str:
    """The demo's private page and a blank page beside the Cranfield bundle (as `_websem/`), served."""
    root = tmp_path_factory.mktemp("inpage-site")
    bt.linked_copy(browser_bundle, root / "_websem")
    for name in ("private.html", "style.css"):
        shutil.copyfile(DEMO_SITE / name, root / name)
    blank = "<!doctype html><meta charset=utf-8><link rel=icon href='data:,'><title>blank</title>"
    (root / "blank.html").write_text(blank, encoding="utf-8")
    return serve(root)


class RequestLog:
    """Every request of the context (pages and workers), with a mark for "runtime loaded"."""

    def __init__(self, context) -> None:
        self.all: list[dict] = []
        self.mark = 0
        context.on("request", self._on)

    def _on(self, request) -> None:
        self.all.append({"url": request.url, "method": request.method, "body": request.post_data})

    def set_mark(self) -> None:
        self.mark = len(self.all)

    def since_mark(self) -> list[dict]:
        return self.all[self.mark:]


def wait_ready(page) -> dict:
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.state)", timeout=LOAD_MS)
    status = page.text_content("#status")
    assert page.evaluate("() => document.body.dataset.state") == "ready", status
    return page.evaluate("() => window.websemIndex.info")


def wait_status(page, prefix: str) -> None:
    page.wait_for_function("(p) => document.getElementById('status').textContent.startsWith(p)", arg=prefix,
                           timeout=LOAD_MS)


def top_ids(page, query: str) -> list[str]:
    return page.evaluate("async (q) => (await window.websemIndex.search(q, {k: 3})).map((h) => h.id)", query)


def test_demo_page_drop_search_reload_clear(browser_context, site: str, tmp_path: Path) -> None:
    paths = []
    for name, text in NOTES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(tmp_path / name)
    log = RequestLog(browser_context)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site + "private.html")
    info = wait_ready(page)
    assert info["index"]["docs"] == 0 and info["storage"] == "opfs", info
    assert "nothing leaves this computer" in page.text_content("#privacy")
    log.set_mark()

    # Two files through the file chooser, the third dropped on the drop zone as a real DataTransfer.
    page.set_input_files("#files", [str(p) for p in paths[:2]])
    wait_status(page, "Added 2.")
    page.evaluate(
        """([name, text]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], name, {type: 'text/html'}));
            const drop = new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true});
            document.getElementById('drop').dispatchEvent(drop);
        }""",
        ["garden.html", NOTES["garden.html"]],
    )
    wait_status(page, "Added 1.")
    info = page.evaluate("() => window.websemIndex.info")
    assert info["index"]["docs"] == 3, page.text_content("#status")
    for question, want in QUESTIONS.items():
        assert top_ids(page, question)[0] == want, question
    # The search box renders the hits (text only).
    page.fill("#q", "why does the sea level go up and down")
    page.wait_for_function("() => document.querySelector('#results li')?.dataset.id === 'tides.md'", timeout=LOAD_MS)
    assert log.since_mark() == [], f"the page made requests after its runtime loaded: {log.since_mark()}"

    # Reload: the index comes back from OPFS, searches the same, and again nothing is sent.
    page.reload()
    log.mark = len(log.all)
    info = wait_ready(page)
    assert info["restored"] == 3 and info["index"]["docs"] == 3 and info["storage_error"] is None, info
    log.set_mark()
    for question, want in QUESTIONS.items():
        assert top_ids(page, question)[0] == want, question
    assert log.since_mark() == [], f"requests after the reload's runtime loaded: {log.since_mark()}"

    # Every request of the whole session: this origin, GET, no body.
    for r in log.all:
        assert r["url"].startswith(site) or r["url"].startswith(("blob:", "data:")), r
        assert r["method"] == "GET" and not r["body"], r

    # Clear deletes the stored index too.
    page.click("#clear")
    wait_status(page, "Cleared.")
    page.reload()
    info = wait_ready(page)
    assert info["restored"] == 0 and info["index"]["docs"] == 0, info
    assert top_ids(page, "tides") == []
    assert not errors, errors
    page.close()


# --------------------------------------------------------------------------- parity with websem build


@pytest.fixture(scope="module")
def records(faceted_corpus: Path) -> list[dict]:
    """The first 300 Cranfield records (with section/tags metadata, so facets are compared too), as
    the in-page API's records `{id, title, text, meta}`."""
    lines = [json.loads(line) for line in faceted_corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"id": r["_id"], "title": r["title"], "text": r["text"], "meta": r["metadata"]} for r in lines]


@pytest.fixture(scope="module")
def bundle300(tmp_path_factory: pytest.TempPathFactory, faceted_corpus: Path, model_package: Path) -> Path:
    """`websem build` of the same 300 records (the CLI, as a user runs it)."""
    out = tmp_path_factory.mktemp("inpage-build") / "bundle"
    proc = subprocess.run([sys.executable, "-m", "websem.build.cli", "build", str(faceted_corpus), "--out", str(out),
                           "--model", str(model_package), "--no-precompress"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def parity_page(browser_context, site: str, records: list[dict]):
    page = browser_context.new_page()
    page.goto(site + "blank.html")
    result = page.evaluate(
        """async (records) => {
            const m = await import('./_websem/websem.js');
            window.ix = await m.createIndex(new URL('./_websem/', location.href), {persist: false, debugKeep: true});
            const r = await window.ix.add(records);
            return {added: r.added.length, skipped: r.skipped, failed: r.failed, info: r.info};
        }""",
        records,
    )
    assert result["failed"] == [] and result["skipped"] == [], result
    assert result["added"] == len(records)
    yield page
    page.close()


def _page_files(page) -> dict:
    return page.evaluate(
        """async () => {
            const f = await window.ix.debug.files();
            const text = (p) => new TextDecoder().decode(f[p]);
            return {chunks: JSON.parse(text('index/chunks.json')), docs: JSON.parse(text('index/docs.json')),
                    index: JSON.parse(text('index.json'))};
        }"""
    )


def test_chunks_docs_tokens_vectors_equal_the_build(parity_page, bundle300: Path, model_package: Path) -> None:
    from websem.build.embed import load_package_tokenizer
    from websem.export.embed import OnnxEmbedder

    manifest = json.loads((bundle300 / "manifest.json").read_text(encoding="utf-8"))
    want_chunks = json.loads((bundle300 / manifest["index"]["files"]["chunks"]).read_text(encoding="utf-8"))
    want_docs = json.loads((bundle300 / manifest["index"]["files"]["docs"]).read_text(encoding="utf-8"))
    got = _page_files(parity_page)
    assert got["docs"] == want_docs
    assert len(got["chunks"]) == len(want_chunks)
    for i, (g, w) in enumerate(zip(got["chunks"], want_chunks, strict=True)):
        assert g == w, f"chunk {i}: {g} != {w}"
    assert got["index"]["chunks"] == manifest["index"]["chunks"]

    kept = parity_page.evaluate(
        "async () => (await window.ix.debug.kept())"
        ".map((d) => ({id: d.id, ids: d.input_ids, v: Array.from(d.vectors)}))")
    assert [d["id"] for d in kept] == [d["id"] for d in want_docs]
    tokenizer = load_package_tokenizer(model_package, manifest["model"]["max_seq_length"])
    embedder = OnnxEmbedder(model_package, threads=1)
    dims = manifest["model"]["dims"]
    texts = [c["text"] for c in want_chunks]
    worst = 0.0
    row = 0
    for d in kept:
        vectors = np.asarray(d["v"], dtype=np.float32).reshape(-1, dims)
        assert len(d["ids"]) == len(vectors)
        for ids, vec in zip(d["ids"], vectors, strict=True):
            assert ids == tokenizer.encode(texts[row]).ids, f"token ids of chunk {row} ({d['id']})"
            worst = max(worst, float(np.abs(vec - embedder.embed_ids(ids)).max()))
            row += 1
    assert row == len(want_chunks)
    assert worst <= 1e-6, f"in-page vectors differ from the CPU embedder by up to {worst}"


def test_top10_equals_websem_query(parity_page, bundle300: Path, shared_data: Path, bt, search_mode: str) -> None:
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in lines[:N_QUERIES]]
    got = parity_page.evaluate(
        """async ([qs, mode]) => {
            const out = [];
            for (const q of qs) out.push(await window.ix.searchFull(q, {k: 10, mode}));
            return out;
        }""",
        [queries, search_mode],
    )
    want = bt.websem_query_json(bundle300, queries, search_mode)
    assert any(r["hits"] for r in want), "the queries found nothing: the parity check would be empty"
    bt.assert_same_results(bundle300, search_mode, queries, got, want, engine="in-page index")


# --------------------------------------------------------------------------- bad input


def _build_outcome(tmp_path: Path, name: str, data: bytes) -> tuple[int, str]:
    """`websem build` of a folder holding good.txt and the file `name`: (exit code, output)."""
    src = tmp_path / f"src-{name}"
    src.mkdir()
    (src / "good.txt").write_text("Kites fly when the wind lifts them.\n", encoding="utf-8")
    (src / name).write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "websem.build.cli", "build", str(src),
                           "--out", str(tmp_path / f"out-{name}"), "--glob", "*.txt", "--verbose", "--no-precompress"],
                          capture_output=True, text=True, timeout=1800)
    return proc.returncode, proc.stdout + proc.stderr


BAD_FILES = {
    "empty.txt": b"",
    "binary.txt": b"GIF89a\x00\x01\x02 not text",
    "latin1.txt": "caf\u00e9 au lait".encode("latin-1"),
    "huge.txt": b"tide " * (4 * 1024 * 1024),  # 20 MiB, over the 16 MiB per-document limit
}


def test_bad_input_like_the_build_and_the_index_stays_usable(browser_context, site: str, tmp_path: Path) -> None:
    page = browser_context.new_page()
    page.goto(site + "blank.html")
    page.evaluate(
        """async () => {
            const m = await import('./_websem/websem.js');
            window.bad = await m.createIndex(new URL('./_websem/', location.href), {persist: false});
            await window.bad.add([{name: 'good.txt', data: 'Kites fly when the wind lifts them.\\n'}]);
        }"""
    )
    for name, data in BAD_FILES.items():
        code, output = _build_outcome(tmp_path, name, data)
        res = page.evaluate(
            "async ([name, bytes]) => window.bad.add([{name, data: new Uint8Array(bytes)}])", [name, list(data)]
        ) if len(data) < 1_000_000 else page.evaluate(
            "async ([name, n]) => window.bad.add([{name, data: new TextEncoder().encode('tide '.repeat(n))}])",
            [name, len(data) // 5],
        )
        assert res["added"] == [], (name, res)
        if code != 0:  # the build refuses it: the page gives the same websem: message
            assert len(res["failed"]) == 1, (name, res, output)
            message = res["failed"][0]["error"]
            assert message.startswith("websem: ") and message in output, (name, message, output[-2000:])
        else:  # the build skips it: the page skips it for the reason the build prints
            assert len(res["skipped"]) == 1, (name, res, output)
            assert res["skipped"][0]["reason"] in output, (name, res, output[-2000:])
        assert res["info"]["index"]["docs"] == 1, (name, res)
    # A duplicate id: refused like a corpus.jsonl that repeats an _id.
    corpus = tmp_path / "dup.jsonl"
    corpus.write_text('{"_id": "k", "title": "Kites", "text": "Kites fly."}\n'
                      '{"_id": "k", "title": "Again", "text": "x"}\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "websem.build.cli", "build", str(corpus),
                           "--out", str(tmp_path / "dup")],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode != 0 and "duplicate document id 'k'" in proc.stderr, proc.stderr[-2000:]
    res = page.evaluate("""async () => {
        await window.bad.add([{id: 'k', title: 'Kites', text: 'Kites fly.'}]);
        return window.bad.add([{id: 'k', title: 'Again', text: 'x'}]);
    }""")
    assert res["added"] == [] and len(res["failed"]) == 1, res
    assert res["failed"][0]["error"].startswith("websem: duplicate document id 'k'"), res
    # Within one add() (the second is read while the first is embedded): the same refusal.
    res = page.evaluate("""async () => window.bad.add([{id: 'm', title: 'Tides', text: 'Tides turn.'},
                                                        {id: 'm', title: 'Again', text: 'x'}])""")
    assert res["added"] == ["m"] and len(res["failed"]) == 1, res
    assert res["failed"][0]["error"].startswith("websem: duplicate document id 'm'"), res
    # A lone surrogate (JSON.stringify writes it as an escape, as a corpus.jsonl may): the same
    # websem: error as InPageIndex gives in CPython, not a Python exception.
    res = page.evaluate("async () => window.bad.add([{id: 's', title: 'S', text: 'bad \\ud800 text'}])")
    assert res["added"] == [] and len(res["failed"]) == 1, res
    assert res["failed"][0]["error"].startswith(
        "websem: document 's' field 'text' is not valid Unicode (a lone surrogate U+D800 at character 4)"), res
    assert page.evaluate("async () => (await window.bad.add([{id: 's', text: 'Surf.'}])).added") == ["s"]
    # Still usable: the good documents are found, nothing else was added.
    hits = page.evaluate("async () => (await window.bad.search('kites wind', {k: 5})).map((h) => h.id)")
    assert set(hits) == {"good.txt", "k", "m", "s"}, hits
    page.close()


# --------------------------------------------------------------------------- export / import, IndexedDB


def test_indexeddb_fallback_survives_a_reload_and_export_imports(browser_context, site: str) -> None:
    page = browser_context.new_page()
    page.goto(site + "blank.html")
    open_index = """async () => {
        const m = await import('./_websem/websem.js');
        window.ix = await m.createIndex(new URL('./_websem/', location.href), {persist: 'indexeddb', name: 'idb-test'});
        return window.ix.info;
    }"""
    info = page.evaluate(open_index)
    assert info["storage"] == "indexeddb" and info["index"]["docs"] == 0, info
    page.evaluate("async (notes) => window.ix.add(Object.entries(notes).map(([name, data]) => ({name, data})))", NOTES)
    archive = page.evaluate("async () => Array.from(await window.ix.export())")
    page.reload()
    info = page.evaluate(open_index)
    assert info["restored"] == 3 and info["index"]["docs"] == 3, info
    hits = page.evaluate("async () => (await window.ix.search('what do tomato plants need', {k: 1})).map((h) => h.id)")
    assert hits == ["garden.html"]
    # The export restores into an empty index (another name: another stored index).
    res = page.evaluate(
        """async (bytes) => {
            const m = await import('./_websem/websem.js');
            const other = await m.createIndex(new URL('./_websem/', location.href), {persist: false});
            const r = await other.import(new Uint8Array(bytes));
            const hits = (await other.search('how long should dough ferment', {k: 1})).map((h) => h.id);
            await other.close();
            return {docs: r.docs, hits};
        }""",
        archive,
    )
    assert res == {"docs": 3, "hits": ["bread.txt"]}
    page.evaluate("async () => { await window.ix.clear(); await window.ix.close(); }")
    page.close()


@pytest.fixture(scope="module")
def exported(parity_page, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parity page's index, exported (createIndex().export()) to a file."""
    data = parity_page.evaluate("async () => Array.from(await window.ix.export())")
    out = tmp_path_factory.mktemp("inpage-export") / "index.tar"
    out.write_bytes(bytes(data))
    return out


def test_export_ranks_the_same_in_websem_query(parity_page, exported: Path, browser_bundle: Path, bundle300: Path,
                                               shared_data: Path, bt, search_mode: str, tmp_path: Path) -> None:
    """`websem query BUNDLE --index EXPORT` (the page's bundle for the model) ranks the export as the page does."""
    lines = (shared_data / "cranfield" / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:N_QUERIES]
    queries = [json.loads(line)["text"] for line in lines]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"_id": str(i), "text": q}) + "\n" for i, q in enumerate(queries)),
                     encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "websem.build.cli", "query", str(browser_bundle),
                           "--index", str(exported), "--queries", str(qfile), "--mode", search_mode, "-k", "10",
                           "--json"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    got = parity_page.evaluate(
        """async ([qs, mode]) => {
            const out = [];
            for (const q of qs) out.push(await window.ix.searchFull(q, {k: 10, mode}));
            return out;
        }""",
        [queries, search_mode],
    )
    # bundle300's docs.json is the page's (test above): it supplies the titles to compare.
    bt.assert_same_results(bundle300, search_mode, queries, got, want, engine="in-page index vs its export")


def test_abort_stops_after_the_current_document_and_searches_interleave(browser_context, site: str,
                                                                        records: list[dict]) -> None:
    page = browser_context.new_page()
    page.goto(site + "blank.html")
    res = page.evaluate(
        """async (records) => {
            const m = await import('./_websem/websem.js');
            const ix = await m.createIndex(new URL('./_websem/', location.href), {persist: false});
            const order = [];
            const controller = new AbortController();
            let searched = null;
            let embedMs = 0;
            const r = await ix.add(records, {signal: controller.signal, onProgress: (e) => {
                order.push(`doc ${e.index}`);
                embedMs += e.embed_ms;
                // A search while indexing runs between two documents, not after the whole batch.
                if (e.index === 0) {
                    searched = ix.search('boundary layer', {k: 3}).then((h) => { order.push('search'); return h; });
                }
                if (e.index === 4) controller.abort();
            }});
            order.push('add resolved');
            await searched;
            const after = await ix.search('boundary layer', {k: 3});
            // The document read ahead while the last one was embedded was never added: it can be now.
            const next = records[r.added.length];
            const again = await ix.add([next]);
            const info = ix.info;
            await ix.close();
            return {added: r.added.length, aborted: r.aborted, order, after: after.length, docs: info.index.docs,
                    embedMs, again: again.added, againFailed: again.failed, next: String(next.id)};
        }""",
        records,
    )
    assert res["aborted"] is True, res
    assert 5 <= res["added"] < len(records), res
    assert res["docs"] == res["added"] + 1 and res["after"] == 3, res
    assert res["again"] == [res["next"]] and res["againFailed"] == [], res
    assert res["embedMs"] > 0, res
    order = res["order"]
    assert order.index("search") < order.index("add resolved"), order
    page.close()
