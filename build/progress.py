"""Progress for the long steps of `websem build`: a bar on a terminal, plain lines elsewhere.

A CI log must show a 30-minute build moving, and a rich bar writes nothing useful when stderr is not
a terminal (it either stays silent or wraps at an arbitrary console width). So off a terminal this
prints one self-contained line per interval (``WEBSEM_PROGRESS_SECONDS``, default 10 s) and a last
line when the step ends.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress", "progress", "plain_interval"]


def plain_interval() -> float:
    """Seconds between plain progress lines (``$WEBSEM_PROGRESS_SECONDS``, default 10)."""
    try:
        return max(0.0, float(os.environ.get("WEBSEM_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


def _duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class Progress:
    """One step's progress; call :meth:`advance` as items finish."""

    def __init__(self, label: str, total: int | None, unit: str, stream: TextIO, interval: float,
                 bar) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self._stream, self._interval, self._bar = stream, interval, bar
        self._t0 = self._last = time.monotonic()
        self._task = bar.add_task(label, total=total) if bar is not None else None

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
            return
        if self._stream is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._line(now)

    def _line(self, now: float, final: bool = False) -> None:
        elapsed = now - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"websem: {self.label} {self.done}"]
        if self.total:
            parts[0] += f"/{self.total} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        parts.append(f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s")
        parts.append(f"{_duration(elapsed)} elapsed")
        if not final and self.total and rate > 0:
            parts.append(f"~{_duration((self.total - self.done) / rate)} left")
        print(", ".join(parts) + ("" if not final else ", done"), file=self._stream, flush=True)

    def _finish(self) -> None:
        if self._bar is None and self._stream is not None:
            self._line(time.monotonic(), final=True)


@contextmanager
def progress(label: str, total: int | None, *, unit: str = "items", enabled: bool = True,
             stream: TextIO | None = None) -> Iterator[Progress]:
    """Report a step's progress: a rich bar when ``stream`` (default stderr) is a terminal,
    otherwise a plain line every :func:`plain_interval` seconds and one at the end. With
    ``enabled=False`` nothing is printed (``--quiet``)."""
    stream = stream or sys.stderr
    if not enabled:
        yield Progress(label, total, unit, None, 0.0, None)
        return
    if stream.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        with Bar(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                 TimeElapsedColumn(), TimeRemainingColumn(), console=Console(file=stream),
                 transient=False) as bar:
            yield Progress(label, total, unit, stream, 0.0, bar)
        return
    p = Progress(label, total, unit, stream, plain_interval(), None)
    yield p
    p._finish()
