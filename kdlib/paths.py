"""Where kdlib reads and writes: one place, so notebooks, tests and jobs agree.

Everything a run writes lives under ``outputs/`` at the repository root (git-ignored).
``KDLIB_OUTPUTS`` moves it (e.g. to a shared file system on a cluster); ``KDLIB_DATA``
points at datasets the user downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def outputs_dir() -> Path:
    """Root of everything kdlib writes (``$KDLIB_OUTPUTS`` or ``<repo>/outputs``)."""
    return Path(os.environ.get("KDLIB_OUTPUTS", REPO_ROOT / "outputs")).expanduser()


def cache_dir() -> Path:
    """Decompressed datasets and other derived files that can always be rebuilt."""
    return outputs_dir() / "cache"


def store_dir() -> Path:
    """The results store: one folder per run id."""
    return outputs_dir() / "store"


def data_dir() -> Path | None:
    """User-provided dataset root (``$KDLIB_DATA``), if set."""
    value = os.environ.get("KDLIB_DATA")
    return Path(value).expanduser() if value else None
