"""Snippets past the first window: the runtime under Node and `websem query --json` cut the same
snippet and highlight the same ranges, in every mode, when the query terms lie past character 240
of the chunk (the snippet window, manifest.search.snippet_chars).

Ids alone cannot catch a second snippet implementation: a JS cut of the first 240 characters
(no highlights) ranks the same documents as `websem query`'s window around the terms. Here every
hit's snippet and highlights must be equal.

`python tests/test_snippet_parity.py SITE_DIR` writes the test site (to reproduce with another
websem version)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NODE_ENGINE = REPO / "tests" / "browser" / "node_engine.mjs"
MODES = ("hybrid", "semantic", "lexical")
DENSE_TOL = 1e-5  # ORT wasm vs CPU: query embeddings differ by ~2e-7 (tests/browser)

# Each page opens with ~350 characters that share no term with the queries; the terms come after.
_INTRO = {
    "garden": "The allotment sits behind the old railway embankment, where the afternoon light stays "
              "late into September. Most beds are raised, edged with reclaimed timber, and watered from "
              "two butts that fill quickly after a storm. Compost is turned every fortnight, leaf mould "
              "is kept apart, and the paths are mown short so that wheelbarrows run easily between rows.",
    "workshop": "The shed workshop is heated by a small stove in winter and ventilated through a louvred "
                "door in summer. Benches line three walls; hand tools hang above them on pegboard, grouped "
                "by task, and offcuts are sorted into bins by species and thickness. A dust extractor "
                "runs whenever anything is sanded, and the floor is swept before the lights go off.",
    "harbour": "The harbour master keeps a daily diary of arrivals, departures and the state of the tide. "
               "Mornings start with the weather forecast read aloud on the quay, then the fuel berth "
               "opens and the ice plant is checked. Visiting yachts moor on the outer pontoon, and the "
               "lifeboat crew trains on Thursday evenings whatever the season brings to the coast.",
}
_LATE = {
    "garden": "Zygomorphic florets of the snapdragon attract bumblebees, which pry open the lips of the "
              "corolla to reach the nectar.",
    "workshop": "The lathe chuck seized because the dovetail gib was overtightened after lubrication, so "
                "the saddle no longer slid freely.",
    "harbour": "Barnacle fouling on the trawler hull slowed her by two knots until a dry-dock cleaning "
               "restored her speed.",
}
QUERIES = ["zygomorphic florets snapdragon", "dovetail gib lathe chuck", "barnacle fouling trawler hull"]


def write_site(root: Path) -> Path:
    """Three one-paragraph Markdown pages (one chunk each) whose query terms lie past char 240."""
    root.mkdir(parents=True, exist_ok=True)
    for name, intro in _INTRO.items():
        (root / f"{name}.md").write_text(f"# {name.title()} notes\n\n{intro} {_LATE[name]}\n", "utf-8")
    return root


@pytest.fixture(scope="module")
def late_bundle(tmp_path_factory: pytest.TempPathFactory, model_package: Path) -> Path:
    from websem.build.bundle import build_bundle

    root = tmp_path_factory.mktemp("late-snippets")
    out = root / "bundle"
    build_bundle(write_site(root / "site"), out, model=model_package, progress=False, globs=("*.md",))
    return out


def _websem_query(bundle: Path, mode: str) -> list[dict]:
    lines = []
    for q in QUERIES:
        proc = subprocess.run([sys.executable, "-m", "websem.build.cli", "query", str(bundle), q,
                               "--mode", mode, "--json"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines.append(json.loads(proc.stdout))
    return lines


def test_node_engine_cuts_late_snippets_like_websem_query(late_bundle: Path) -> None:
    from websem.text.snippets import utf16_ranges

    manifest = json.loads((late_bundle / "manifest.json").read_text("utf-8"))
    window = manifest["search"]["snippet_chars"]
    chunks = json.loads((late_bundle / manifest["index"]["files"]["chunks"]).read_text("utf-8"))
    node = shutil.which("node")
    assert node, "node is missing: run .ci/setup"
    proc = subprocess.run([node, str(NODE_ENGINE), str(late_bundle), json.dumps(QUERIES), json.dumps(MODES)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a mode the engine lacks fails here
    got = json.loads(proc.stdout)["results"]
    for mode in MODES:
        want = _websem_query(late_bundle, mode)
        for q, g, w in zip(QUERIES, got[mode], want, strict=True):
            top = w["hits"][0]
            # the premise: the reference's snippet is a window past the first `window` characters
            starts = [c["text"].find(top["snippet"]) for c in chunks if top["snippet"] in c["text"]]
            assert starts and min(starts) >= window and top["highlights"], (mode, q, top)
            # JS highlights are UTF-16 ranges, the reference's code points
            want_hits = [{"id": h["id"], "url": h["url"], "snippet": h["snippet"],
                          "highlights": utf16_ranges(h["snippet"], h["highlights"])} for h in w["hits"]]
            got_hits = [{k: h.get(k) for k in ("id", "url", "snippet", "highlights")} for h in g["hits"]]
            assert got_hits == want_hits, f"mode {mode}, query {q!r}"
            tol = 0.0 if mode == "lexical" else DENSE_TOL
            assert all(abs(a["score"] - b["score"]) <= tol for a, b in zip(g["hits"], w["hits"], strict=True))


if __name__ == "__main__":
    print(write_site(Path(sys.argv[1])))
