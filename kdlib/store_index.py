"""The store's index: parquet files of finished runs' rows, so a results table need not open every run.

``<store>/.index/<kind>.parquet`` holds one row per finished run (the columns
``load_results`` shows, without the teacher's, which are joined when read). It is never
the only copy of anything: a missing, unreadable or older-format index is rebuilt from
the run folders, and a run folder the index lacks (pending, training, failed, or
finished since) is read from its folder and, once finished, added. What can change a
finished run in place (``RunDir.finish`` again, its result set aside as untrusted) leaves
a marker in ``.index/changed/`` (one empty file, a unique name: no lock, no
read-modify-write, safe from any node); the reader reads those runs again. Only a hand
edit of a ``result.json`` goes unseen: ``verify=True`` compares each indexed row with its
file's (mtime, size), one ``stat`` per run. Whoever reads the store writes the index
(``load_results``, so also ``runs.ensure`` right after its runs finish), atomically
(temp + ``os.replace``); two readers at once lose nothing that matters: the last file
wins, and a run it lacks is read again and added next time.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from kdlib.io import atomic_write_bytes

DIR = ".index"
FORMAT = "1"  # raise when the rows change shape: an index of another format is rebuilt
STAMP = ("_result_mtime_ns", "_result_size")
CHANGED = "changed"


def path(root: Path, kind: str) -> Path:
    """One file per kind of run (``distill``, ``supervised``): each holds rows of one shape, so columns keep their types."""
    return Path(root) / DIR / f"{kind}.parquet"


def folders(root: Path) -> list[str]:
    """The run folders of the store (one ``scandir``; the index's own folder and temp files excluded)."""
    try:
        with os.scandir(root) as entries:
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
    except FileNotFoundError:
        return []


def note_change(root: Path, run_id: str) -> None:
    """Mark ``run_id``'s indexed row stale (its result was replaced or set aside); never raises."""
    folder = Path(root) / DIR / CHANGED
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(folder / f"{run_id}.{time.time_ns()}.{os.getpid()}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError as e:  # a full disk must not fail the run; say what to do
        print(f"[kdlib] could not mark run {run_id} in the store index ({e}); delete {folder.parent} "
              "to have it rebuilt", flush=True)


def _changes(root: Path) -> list[str]:
    try:
        with os.scandir(Path(root) / DIR / CHANGED) as entries:
            return [e.name for e in entries]
    except FileNotFoundError:
        return []


def stamp(folder: Path) -> tuple[int, int] | None:
    """``result.json``'s (mtime_ns, size), or None when the run has no result (not finished)."""
    try:
        st = os.stat(f"{folder}/result.json")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_mtime_ns, st.st_size


def load(root: Path, kind: str, version: str = ""):
    """The indexed rows of ``kind`` (a DataFrame by ``run_id``, stamps included), or None: absent, unreadable, stale."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path(root, kind))
    except (FileNotFoundError, OSError, ValueError):  # absent, or damaged by something outside kdlib: rebuild
        return None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("kdlib.index") != FORMAT + ":" + version:
        return None
    frame = table.to_pandas()
    for column in json.loads(meta.get("kdlib.json_columns", "[]")):
        frame[column] = [None if v is None else json.loads(v) for v in frame[column]]
    return frame.set_index("run_id", drop=False)


def trusted(index, root: Path, ids: Iterable[str]) -> list[str]:
    """The ids whose indexed row still matches its ``result.json`` (same mtime and size: ``verify=True``)."""
    if index is None or len(index) == 0:
        return []
    known = dict(zip(index["run_id"], zip(index[STAMP[0]].tolist(), index[STAMP[1]].tolist())))
    root = str(root)
    return [i for i in ids if i in known and stamp(f"{root}/{i}") == known[i]]


def save(root: Path, kind: str, frame, version: str = "") -> None:
    """Write ``frame`` (finished rows of ``kind`` with their stamp columns) as its index, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = frame.reset_index(drop=True)
    as_json = []
    for column in frame.columns:
        if frame[column].dtype == object:
            try:
                pa.array(frame[column], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                frame[column] = [None if _missing(v) else json.dumps(v, default=str) for v in frame[column]]
                as_json.append(column)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"kdlib.index": f"{FORMAT}:{version}",
                                           b"kdlib.json_columns": json.dumps(as_json)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(path(root, kind), buffer.getvalue())


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def rows(root: Path, ids: list[str] | None, kinds: tuple[str, ...],
         read_row: Callable[[Path], dict[str, Any] | None], version: str = "", verify: bool = False) -> dict[str, Any]:
    """The rows of ``ids`` (default: every run folder) by kind: indexed ones from the index, the rest via ``read_row``.

    ``read_row(folder)`` builds one run's row (None: skip it) with its ``kind`` and
    ``status``. Finished rows read now join the index; rows whose run changed or vanished
    leave it. Returns ``{kind: DataFrame}``, each sorted by run id.
    """
    import pandas as pd

    root = Path(root)
    wanted = folders(root) if ids is None else list(dict.fromkeys(ids))
    marks = _changes(root)
    changed = {m.split(".", 1)[0] for m in marks}
    index = {k: load(root, k, version) for k in kinds}
    fresh = {k: _fresh(index[k], root, wanted, changed, verify) for k in kinds}
    seen = set().union(*fresh.values())
    read: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    new: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for rid in wanted:
        if rid in seen:
            continue
        folder = f"{root}/{rid}"
        before = stamp(folder)  # taken before the read: a result replaced meanwhile is read again next time
        row = read_row(Path(folder))
        if row is None or row["kind"] not in read:
            continue
        read[row["kind"]].append(row)
        if row["status"] == "done" and before is not None and before == stamp(folder):
            new[row["kind"]].append({**row, STAMP[0]: before[0], STAMP[1]: before[1]})
    out = {k: _update(root, k, index[k], fresh[k], new[k], read[k], wanted if ids is None else None, changed,
                      version) for k in kinds}
    for m in marks:  # every index written above no longer holds these runs' old rows
        with contextlib.suppress(FileNotFoundError):
            os.unlink(root / DIR / CHANGED / m)
    return out


def _fresh(index, root: Path, wanted: list[str], changed: set[str], verify: bool) -> set[str]:
    if index is None or len(index) == 0:
        return set()
    if verify:
        return set(trusted(index, root, wanted)) - changed
    listed = set(index["run_id"])
    return {i for i in wanted if i in listed and i not in changed}


def _update(root, kind, index, fresh, new, read, every, changed, version):
    """Save the index of ``kind`` if it gained or lost rows; return the rows asked for."""
    import pandas as pd

    kept = index if index is not None else pd.DataFrame({"run_id": pd.Series([], dtype=object)})
    listed = set(kept["run_id"])
    dropped = (listed & changed) | (listed - set(every) if every is not None else set()) | (listed & {r["run_id"] for r in read})
    if new or dropped:
        kept = kept[~kept["run_id"].isin(dropped)].reset_index(drop=True)
        save(root, kind, pd.concat([kept, pd.DataFrame(new)], ignore_index=True) if len(kept) else pd.DataFrame(new),
             version)
    parts = [index.loc[sorted(fresh)].drop(columns=list(STAMP)).reset_index(drop=True)] if fresh else []
    parts += [pd.DataFrame(read)] if read else []
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else pd.DataFrame())
    return _tidy(frame.sort_values("run_id", kind="stable").reset_index(drop=True)) if len(frame) else frame


def _tidy(frame):
    """Number columns read as floats with NaN, whether a row came from the index (nulls) or from a folder
    (None in a dict), and so do columns with no value at all: concat keeps ``object`` when one part has None."""
    import pandas as pd

    for column in frame.columns[frame.dtypes == object]:
        values = frame[column].dropna()
        if not len(values):
            frame[column] = float("nan")
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            frame[column] = pd.to_numeric(frame[column])  # None -> NaN
    return frame
