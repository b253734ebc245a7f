"""The judged real-site questions (bench/realsite/<site>/, BEIR layout) are well formed.

Cheap checks only (no build, no browser): every judged id is a page path that exists in the
installed Debian package (skipped when the package is not installed), ids are unique, grades are 1
or 2, dev and test are disjoint and cover every question, and each site has enough questions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REALSITE = Path(__file__).resolve().parent.parent / "bench" / "realsite"
SITES = {
    "django": Path("/usr/share/doc/python-django-doc/html"),
    "postgres": Path("/usr/share/doc/postgresql-doc-15/html"),
}


def _queries(site: str) -> list[dict]:
    lines = (REALSITE / site / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _qrels(site: str, split: str) -> list[tuple[str, str, int]]:
    lines = (REALSITE / site / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["query-id", "corpus-id", "score"], f"{site}/{split}: BEIR header"
    rows = []
    for line in lines[1:]:
        if line.strip():
            qid, page, grade = line.split("\t")
            rows.append((qid, page, int(grade)))
    return rows


@pytest.mark.parametrize("site", sorted(SITES))
def test_questions_and_splits(site: str) -> None:
    queries = _queries(site)
    ids = [q["_id"] for q in queries]
    texts = [q["text"].strip().lower() for q in queries]
    assert len(ids) == len(set(ids)), "query ids are unique"
    assert len(texts) == len(set(texts)), "no question is asked twice"
    assert len(queries) >= 60, f"{site}: at least 60 questions"
    assert all(q["text"].strip() for q in queries)
    split_ids = {}
    for split in ("dev", "test"):
        rows = _qrels(site, split)
        pairs = [(qid, page) for qid, page, _ in rows]
        assert len(pairs) == len(set(pairs)), f"{site}/{split}: a page is judged once per question"
        assert {g for _, _, g in rows} <= {1, 2}, "grades are 1 (partly answers) or 2 (answers)"
        per_q: dict[str, list[int]] = {}
        for qid, _, g in rows:
            per_q.setdefault(qid, []).append(g)
        assert all(2 in gs for gs in per_q.values()), f"{site}/{split}: every question has a page that answers it"
        split_ids[split] = set(per_q)
    assert not split_ids["dev"] & split_ids["test"], "dev and test are disjoint"
    assert split_ids["dev"] | split_ids["test"] == set(ids), "every question is judged, in one split"
    # About a third is the training split (fitting weights), the rest is what numbers are reported on.
    assert 0.25 <= len(split_ids["dev"]) / len(ids) <= 0.4


@pytest.mark.parametrize("site", sorted(SITES))
def test_judged_pages_exist(site: str) -> None:
    root = SITES[site]
    if not root.is_dir():
        pytest.skip(f"{root} not installed (apt-get install the docs package; .ci/setup does)")
    for split in ("dev", "test"):
        for qid, page, _ in _qrels(site, split):
            # A folder build's doc id is the page's path relative to the site root (docs/architecture.md).
            assert not page.startswith("/") and "#" not in page, f"{qid}: {page} is a relative page path"
            assert page.endswith(".html") and (root / page).is_file(), f"{qid}: {page} is not a page of {root}"
