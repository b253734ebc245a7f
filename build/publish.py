"""The last step of `websem build` (and of ``convert_bundle``, build/partition.py): put a finished
bundle at ``out``, atomically.

Everything is written into a temporary sibling folder ``.<name>.websem-tmp-<pid>``
(:func:`make_staging`); only when it is complete does it replace ``out`` (:func:`install`), with
one ``renameat2(RENAME_EXCHANGE)`` on Linux (falling back to two renames elsewhere). Any failure
(exception, Ctrl-C) removes the temporary folder and leaves the previous bundle byte-identical; a
killed build leaves only a stale temporary folder, which the next build of the same ``out``
removes (:func:`clean_stale`).

``out`` may be an existing websem bundle (replaced) or an empty folder; anything else (a file, a
non-empty folder that is not a bundle) is refused unless ``force=True`` (:func:`check_out`), so a
typo cannot replace someone's directory.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
from pathlib import Path

from websem.text.errors import WebsemError

__all__ = ["TMP_TAG", "check_out", "clean_stale", "install", "is_bundle", "make_staging"]

# The temporary folder of a build of OUT is .OUT<TMP_TAG><pid>: a sibling, so the final rename
# stays on one filesystem, and named by pid, so a later build can tell a killed build's leftovers
# from a running one's.
TMP_TAG = ".websem-tmp-"


def is_bundle(path: Path) -> bool:
    """True if ``path`` holds a websem bundle (a manifest.json of format websem-bundle)."""
    try:
        return json.loads((path / "manifest.json").read_text()).get("format") == "websem-bundle"
    except (OSError, ValueError, AttributeError):
        return False


def check_out(out: Path, force: bool) -> None:
    """Refuse an ``out`` that exists and is neither a websem bundle nor an empty folder, unless ``force``."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_dir() and not out.is_symlink() and (is_bundle(out) or not any(out.iterdir())):
        return
    if not force:
        raise WebsemError(f"websem: --out {out} exists and is not a websem bundle; choose another "
                          "path, or pass --force to replace it")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> None:
    """Remove temporary folders left by killed builds of the same ``out``."""
    for p in out.parent.glob(f".{out.name}{TMP_TAG}*"):
        tail = p.name.rsplit("-", 1)[-1]
        if tail.isdigit() and not _pid_alive(int(tail)):
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.endswith("-old"):
            shutil.rmtree(p, ignore_errors=True)


def make_staging(out: Path) -> Path:
    """A fresh, empty temporary folder beside ``out`` for this process's build of it (stale ones
    from killed builds removed first)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    tmp = out.parent / f".{out.name}{TMP_TAG}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE). False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def install(tmp: Path, out: Path) -> None:
    """Put the finished ``tmp`` at ``out``; the old ``out`` (if any) is removed afterwards."""
    if not out.exists() and not out.is_symlink():
        os.rename(tmp, out)
        return
    if out.is_dir() and not out.is_symlink() and _exchange(tmp, out):
        shutil.rmtree(tmp)  # tmp now holds the previous bundle
        return
    # Fallback: two renames; the previous bundle is restored if the second one fails.
    old = out.parent / f".{out.name}{TMP_TAG}{os.getpid()}-old"
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()
