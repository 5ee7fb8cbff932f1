"""Jobs in flight: which runs a submitted job (this process's or another's) is still working on.

``<root>/_jobs/inflight.json`` maps run id -> job id, executor and submitit folder, so that
a later ``ensure`` (after ``wait=False``, or from another notebook) waits for a run whose job
is pending or running instead of submitting it again. Entries of runs that landed are
dropped whenever the file is rewritten.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import submitit

from kdlib import scheduler
from kdlib.io import atomic_write_json

JOBS: dict[str, Any] = {}  # job id -> submitit Job submitted by this process (its state is exact)


def registry_path(root: Path) -> Path:
    return root / "_jobs" / "inflight.json"


@contextlib.contextmanager
def registry(root: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """inflight.json under a lock: read, let the caller change it, write it back."""
    path = registry_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            entries = {}
        yield entries
        # forget runs that landed: their entries can never matter again
        entries = {rid: e for rid, e in entries.items() if not (root / rid / "result.json").is_file()}
        atomic_write_json(path, entries)


def pid_alive(pid: int) -> bool:
    proc = Path(f"/proc/{pid}")
    if proc.parent.is_dir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        # a zombie has ended; a reused pid runs something else than submitit's controller
        return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"submitit" in cmdline
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def still_running(entries: list[dict[str, Any]]) -> list[bool]:
    """Whether each entry's job is still pending or running."""
    out = []
    slurm_ids = {e["job_id"] for e in entries if e["executor"] == "slurm"}
    states = scheduler.states(slurm_ids) if slurm_ids else {}
    for e in entries:
        job = JOBS.get(e["job_id"])
        if submitit.core.utils.JobPaths(e["folder"], e["job_id"], 0).result_pickle.exists():
            out.append(False)
        elif e["executor"] == "submitit-local":
            out.append(not job.done() if job is not None else pid_alive(int(e["job_id"])))
        else:
            out.append(scheduler.alive(states.get(e["job_id"])))
    return out


def running(root: Path) -> dict[str, dict[str, Any]]:
    """Run ids whose submitted job is still pending or running."""
    try:
        entries = json.loads(registry_path(root).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    entries = {rid: e for rid, e in entries.items() if not (root / rid / "result.json").is_file()}
    return {rid: e for (rid, e), ok in zip(entries.items(), still_running(list(entries.values()))) if ok}


def note_submitted(root: Path, executor: str, folder: Path, pairs: list[tuple[Any, list[str]]]) -> None:
    """Note each submitted job and the run ids it works on."""
    with registry(root) as entries:
        for job, ids in pairs:
            JOBS[str(job.job_id)] = job
            for rid in ids:
                entries[rid] = {"job_id": str(job.job_id), "executor": executor, "folder": str(folder),
                                "time": time.time()}


def landed(path: Path) -> bool:
    """Done or failed: the run has its record, whatever its job does next."""
    return (path / "result.json").is_file() or (path / "error.json").is_file()


def error_line(path: Path) -> str:
    """The one-line error a failed run recorded."""
    try:
        return json.loads((path / "error.json").read_text()).get("error", "failed")
    except (OSError, json.JSONDecodeError):
        return "failed"
