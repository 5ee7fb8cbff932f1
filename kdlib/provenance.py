"""Which code produced a result: kdlib's version and git commit, the library versions.

Every finished run records ``record()`` in its result, so a table of results can say
when its rows come from different code (a store filled by older code is otherwise reused
silently). The git commit is read once per process (the libraries are imported already
where a run finishes).
"""
from __future__ import annotations

import collections
import functools
import subprocess
import warnings
from typing import Any

from kdlib import __version__, paths

# The columns load_results always shows (None where a run predates them). ``device`` is
# recorded by the training loop, ``wall_seconds`` by the store.
COLUMNS = ("kdlib_version", "kdlib_commit", "kdlib_dirty", "torch_version", "torch_cuda", "torchvision_version",
           "timm_version", "device", "wall_seconds")
UNRECORDED = "unrecorded (a kdlib before provenance was kept)"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(paths.REPO_ROOT), *args], capture_output=True, text=True,
                             timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.lru_cache(maxsize=1)
def record() -> dict[str, Any]:
    """kdlib's version, commit and whether the tree had uncommitted changes; torch (and its CUDA), torchvision, timm."""
    import timm
    import torch
    import torchvision

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"kdlib_version": __version__, "kdlib_commit": commit or None,
            "kdlib_dirty": None if status is None else bool(status),
            "torch_version": torch.__version__, "torch_cuda": torch.version.cuda,
            "torchvision_version": torchvision.__version__, "timm_version": timm.__version__}


def code_version(row: Any) -> str:
    """One label per code version: ``kdlib 0.1.0 @ 1a2b3c4d5e (dirty), torch 2.14.1``."""
    version, commit = row.get("kdlib_version"), row.get("kdlib_commit")
    if not _present(version):
        return UNRECORDED
    label = f"kdlib {version}"
    if _present(commit):
        label += f" @ {str(commit)[:10]}" + (" (dirty)" if row.get("kdlib_dirty") is True else "")
    if _present(row.get("torch_version")):
        label += f", torch {row.get('torch_version')}"
    return label


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN from a frame is absent too


_warned: set[frozenset[str]] = set()


def complete(frame):
    """``frame`` with every provenance column (None where absent); warns once per mix of code versions."""
    for column in COLUMNS:
        if column not in frame:
            frame[column] = None
    warn_mixed_versions(frame)
    return frame


def versions(frame) -> dict[str, int]:
    """Finished rows per code version, most rows first."""
    if len(frame) == 0:
        return {}
    done = frame[frame["status"] == "done"] if "status" in frame else frame
    keys = ("kdlib_version", "kdlib_commit", "kdlib_dirty", "torch_version")
    columns = [done[k].tolist() if k in done else [None] * len(done) for k in keys]
    counts: dict[str, int] = {}
    for values, n in collections.Counter(zip(*columns)).items():  # one label per distinct version (10k rows: ms)
        label = code_version(dict(zip(keys, values)))
        counts[label] = counts.get(label, 0) + n
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def warn_mixed_versions(frame) -> dict[str, int]:
    """Warn (once per process and mix) when the finished rows come from more than one code version."""
    counts = versions(frame)
    key = frozenset(counts)
    if len(counts) > 1 and key not in _warned:
        _warned.add(key)
        listed = "; ".join(f"{n} run(s) from {label}" for label, n in counts.items())
        warnings.warn(f"these results come from {len(counts)} code versions: {listed}. Numbers may not be "
                      "comparable; rerun the older runs in a fresh store (KDLIB_OUTPUTS) to compare like with like",
                      stacklevel=3)
    return counts
