"""build/progress.py: plain lines when output is not a terminal, nothing with --quiet."""

from __future__ import annotations

import io

from websem.build.progress import progress


def test_plain_lines_off_a_terminal(monkeypatch):
    monkeypatch.setenv("WEBSEM_PROGRESS_SECONDS", "0")  # a line on every advance
    out = io.StringIO()  # not a tty
    with progress("embedding", 4, unit="chunks", stream=out) as p:
        for _ in range(4):
            p.advance()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # one per advance, one closing line
    assert lines[0].startswith("websem: embedding 1/4 chunks (25%)")
    assert "left" in lines[0]
    assert lines[-1].startswith("websem: embedding 4/4 chunks (100%)") and lines[-1].endswith("done")
    assert all("\x1b" not in line for line in lines)  # no terminal control codes in a log


def test_interval_limits_lines(monkeypatch):
    monkeypatch.setenv("WEBSEM_PROGRESS_SECONDS", "3600")
    out = io.StringIO()
    with progress("reading", None, unit="files", stream=out) as p:
        for _ in range(1000):
            p.advance()
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert out.getvalue().startswith("websem: reading 1000 files")


def test_quiet_prints_nothing():
    out = io.StringIO()
    with progress("embedding", 3, stream=out, enabled=False) as p:
        p.advance(3)
    assert out.getvalue() == "" and p.done == 3
