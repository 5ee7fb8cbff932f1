"""Atomic files: every byte kdlib writes goes to a temp file that ``os.replace`` moves into place.

A process killed at any instant leaves the old file or the new one, plus at worst a
``.<name>.*.tmp`` that is never read (the store removes it under the run's lock). A full
disk or quota raises ``DiskFull`` naming the folder and the space needed, and leaves no
partial file. The store, the datasets, the models, the charts and the scorecard all write
through here: one place to get it right, and the one place the fault tests interrupt.
"""
from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _write(f, data: bytes) -> None:
    """The one place bytes reach kdlib's files (the fault tests interrupt it)."""
    f.write(data)


class DiskFull(OSError):
    """A write refused for want of space (ENOSPC) or quota (EDQUOT); nothing half-written is left."""

    def __init__(self, path: Path, size: int, err: OSError):
        try:
            st = os.statvfs(path.parent)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = 0
        what = "the disk quota is exceeded" if err.errno == errno.EDQUOT else "the file system is full"
        super().__init__(err.errno, f"cannot write {path.name} in {path.parent}: {what} ({_size(size)} to write, "
                         f"{_size(free)} free there). Make room for at least {_size(2 * size)} (this file and the "
                         "next checkpoint): free space, raise the quota, or move the store (KDLIB_OUTPUTS / root=); "
                         "then rerun: the run resumes from its last checkpoint, which is intact")
        self.path, self.size, self.free = path, size, free


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``data`` to ``path`` via a temp file in the same folder, fsync and ``os.replace``.

    A full disk or quota raises ``DiskFull`` (the temp file removed, ``path`` untouched).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as e:
        raise (DiskFull(path, len(data), e) if e.errno in _NO_SPACE else e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, DiskFull) and e.errno in _NO_SPACE:
            raise DiskFull(path, len(data), e) from e
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> bytes:
    """``torch.save`` through ``atomic_write_bytes``; returns the bytes written (to hash them)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(Path(path), data)
    return data
