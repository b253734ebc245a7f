"""Renderer process memory from /proc (Linux): the page's real footprint, wasm heaps included,
which the JS-heap metrics of CDP do not count."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["chromium_processes", "renderer_memory"]


def _cmdline(pid: int) -> str:
    # Chromium rewrites the argv of its child processes into one space-joined string, so match
    # on the joined text rather than on argv elements.
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
    except OSError:
        return ""


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # comm may contain spaces/parens: the fields after the last ')' are fixed.
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return out


def chromium_processes(profile_dir: Path) -> list[dict]:
    """All processes of the Chromium launched with `--user-data-dir=profile_dir`: the browser
    process (found by its command line) and every descendant, with their `--type=`."""
    needle = f"--user-data-dir={profile_dir}"
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    parent = {pid: _ppid(pid) for pid in pids}
    roots = {pid for pid in pids if needle in _cmdline(pid) and "--type=" not in _cmdline(pid)}
    # Descendants of the browser process (zygote-forked renderers do not carry the flag).
    family = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, pp in parent.items():
            if pp in family and pid not in family:
                family.add(pid)
                changed = True
    out = []
    for pid in sorted(family):
        cmd = _cmdline(pid)
        m = re.search(r"--type=(\S+)", cmd)
        kind = m.group(1) if m else "browser"
        if kind == "renderer" and "--top-chrome-webui" in cmd:
            kind = "renderer-webui"  # browser UI, not a page
        out.append({"pid": pid, "type": kind, **_status_kb(pid)})
    return out


def renderer_memory(profile_dir: Path) -> dict:
    """RSS and peak RSS (VmHWM) in MB of the largest renderer (the benchmarked page; a spare
    renderer may exist), plus the number of renderers seen."""
    procs = [p for p in chromium_processes(profile_dir) if p["type"] == "renderer"]
    if not procs:
        return {"renderer_rss_mb": None, "renderer_hwm_mb": None, "renderers": 0}
    top = max(procs, key=lambda p: p.get("VmRSS", 0))
    return {
        "renderer_rss_mb": round(top.get("VmRSS", 0) / 1024, 1),
        "renderer_hwm_mb": round(top.get("VmHWM", 0) / 1024, 1),
        "renderer_anon_mb": round(top.get("RssAnon", 0) / 1024, 1),
        "renderers": len(procs),
    }
