"""A run's live history: ``history.jsonl``, one JSON line per finished epoch, readable while it trains.

Why append, not rewrite: an epoch's line is one ``os.write`` of the whole line (newline
included) to a file opened ``O_APPEND``, so a reader sees the line whole or not yet; a
rewrite per epoch (temp + ``os.replace``) would copy the whole file every epoch. The
file has one writer, the process holding the run's lock. What an append cannot promise
(a kill or a full disk mid-write leaving a part of a line) the reader absorbs: it keeps
only newline-terminated lines that parse, and the last line of each epoch. On resume the
file is rewritten atomically (``reset``) from the checkpoint's history, so epochs trained
after the last checkpoint (and retrained now) and any torn tail are dropped: the file then
tells what the checkpoint knows. ``result.json`` stays the record of a finished run; this
file only shows runs in flight, and nothing exact (resume, results) is read from it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from kdlib.io import atomic_write_text

FILE = "history.jsonl"


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, default=str) + "\n").encode()


def append(folder: Path, record: dict[str, Any]) -> None:
    """Add one epoch's record to ``folder/history.jsonl``: one ``write`` of the full line, ``O_APPEND``."""
    data = _line(record)
    fd = os.open(Path(folder) / FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # a short write (signal, nearly full disk): the rest, the reader waits for "\n"
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def reset(folder: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace the file with ``records`` (a resumed run's checkpointed history), atomically."""
    atomic_write_text(Path(folder) / FILE, "".join(_line(r).decode() for r in records))


def read(folder: Path) -> list[dict[str, Any]]:
    """The epochs recorded so far, by epoch; a trailing partial line and lines that do not parse are ignored."""
    try:
        raw = (Path(folder) / FILE).read_bytes()
    except FileNotFoundError:
        return []
    by_epoch: dict[Any, dict[str, Any]] = {}
    for chunk in raw.split(b"\n")[:-1]:  # the last piece has no newline yet: not a whole line
        try:
            record = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(record, dict):
            by_epoch[record.get("epoch")] = record
    return sorted(by_epoch.values(), key=lambda r: (r.get("epoch") is None, r.get("epoch") or 0))


def columns(folder: Path, status: str, result: dict[str, Any]) -> dict[str, Any]:
    """``load_results``' live columns: ``in_flight`` (started, not finished, not failed) and ``epochs_done``."""
    done = result.get("history") if status == "done" else read(folder)
    epochs = [r["epoch"] for r in done or () if isinstance(r.get("epoch"), int)]
    return {"in_flight": status not in ("done", "failed") and bool(epochs), "epochs_done": max(epochs, default=0)}


def rows(folder: Path, result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A run's epochs for ``load_history``: the result's when finished, else the live file's (``in_flight``)."""
    if result:
        return [{**r, "in_flight": False} for r in result.get("history", [])]
    return [{**r, "in_flight": True} for r in read(folder)]
