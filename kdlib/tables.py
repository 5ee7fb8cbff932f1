"""The store's runs as one table, in the paper's vocabulary: a row per run, spec columns flat.

Things layer: it reads specs back from their ``spec.json`` (the store below knows folders
and files, not what a spec is).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from kdlib import history, paths, provenance, specs, store, store_index


def variant(method: str, args: dict[str, Any]) -> str:
    """A legend label for a loss and its non-default arguments: ``kd[k=5,targets=bottom-k]``."""
    if not args:
        return method
    return f"{method}[{','.join(f'{k}={v}' for k, v in sorted(args.items()))}]"


@functools.lru_cache(maxsize=256)
def _spec_id(spec: specs.Spec) -> str:
    """``specs.run_id``, once per teacher of a table (thousands of students share a few)."""
    return specs.run_id(spec)


def row_of(spec: specs.Spec) -> dict[str, Any]:
    """The columns a results frame shows for a spec: the paper's vocabulary, flat."""
    if isinstance(spec, specs.Distill):
        t = spec.teacher
        return {
            "kind": "distill", "preset": spec.preset, "dataset": spec.dataset,
            "teacher": t.arch, "teacher_origin": "finetuned" if t.origin == "finetuned" else "scratch",
            "teacher_epochs": t.epochs, "teacher_id": _spec_id(t),
            "pretrain_corpus": t.init.dataset if isinstance(t.init, specs.Supervised) else t.init,
            "student": spec.student, "student_init": specs.origin(spec.student_init),
            "method": spec.method, "method_args": json.dumps(dict(spec.method_args), sort_keys=True),
            "variant": variant(spec.method, dict(spec.method_args)),
            "temperature": spec.temperature, "optimizer": spec.optimizer, "lr": spec.lr,
            "weight_decay": spec.weight_decay, "batch_size": spec.batch_size, "epochs": spec.epochs,
            "seed": spec.seed, **_late(spec),
        }
    return {
        "kind": "supervised", "preset": spec.preset, "dataset": spec.dataset, "arch": spec.arch,
        "origin": spec.origin, "init": specs.origin(spec.init), "optimizer": spec.optimizer, "lr": spec.lr,
        "weight_decay": spec.weight_decay, "batch_size": spec.batch_size, "epochs": spec.epochs, "seed": spec.seed,
        **_late(spec),
    }


def _late(spec: specs.Spec) -> dict[str, Any]:
    """Late spec fields as columns, only when set (a frame of older runs keeps its columns)."""
    return {k: getattr(spec, k) for k, default in specs.LATE_FIELDS.items() if getattr(spec, k, default) != default}


ROWS_VERSION = "1"  # the index's rows are what row_of/_row build: bump when they change


def _stored_spec(d: Any, run_id: str) -> Any:
    """The spec of a run folder, without re-validating one whose dict hashes to the folder's name.

    Such a dict is exactly ``specs.to_dict`` of a spec that was validated when it was
    built (rebuilding it runs every check again, ~1 ms a run: seconds for a big store).
    Anything else (another kdlib version, a hand edit) goes through ``specs.from_dict``.
    """
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    if hashlib.sha256(text.encode()).hexdigest()[:16] == run_id:
        spec = _rebuild(d)
        if spec is not None:
            return spec
    return specs.from_dict(d)


def _rebuild(d: Any) -> Any:
    """A spec from its dict without ``__post_init__`` (None: not a spec dict of this kdlib's shape)."""
    cls = {"Supervised": specs.Supervised, "Distill": specs.Distill}.get(d.get("kind")) if isinstance(d, dict) else None
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    values = {**{k: v for k, v in cls.late_fields.items() if k in names}, **{k: v for k, v in d.items() if k != "kind"}}
    if set(values) != names:
        return None
    spec = object.__new__(cls)
    for name, value in values.items():
        if isinstance(value, dict):
            value = _rebuild(value)
            if value is None:
                return None
        elif name == "method_args":
            value = tuple(tuple(kv) for kv in value)
        object.__setattr__(spec, name, value)
    return spec


def _row(run: Path) -> dict[str, Any] | None:
    """One run's row, read from its folder (None: no spec, or a spec this kdlib cannot read)."""
    try:
        with open(f"{run}/spec.json", "rb") as f:
            spec = _stored_spec(json.loads(f.read()), run.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (ValueError, TypeError) as e:  # a spec of another kdlib version: say so, keep going
        warnings.warn(f"skipping run {run.name}: its spec.json does not load ({e})")
        return None
    row = {"run_id": run.name, **row_of(spec), "status": store.status_of(run)}
    result = store.read_json(run, "result.json")
    row.update({k: v for k, v in result.items() if k != "history"}, **history.columns(run, row["status"], result))
    if row["status"] == "failed":
        row["error"] = store.read_json(run, "error.json").get("error")
    return row


def load_results(root: str | Path | None = None, kind: str = "distill", run_ids: list[str] | None = None,
                 verify: bool = False):
    """One row per run: spec columns, status, final metrics (and the teacher's, for distillation).

    ``kind``: ``"distill"``, ``"supervised"`` or ``"all"``; ``run_ids``: only these runs
    (no look at the rest of the store). Finished runs come from the store's index
    (``kdlib.store_index``; ``verify``: check each against its result.json's mtime and
    size, for hand-edited stores), the others from their folders; runs still training have
    ``in_flight`` and ``epochs_done``. Failed runs are rows with ``status == "failed"``
    and their ``error``; retry them with ``runs.ensure(..., retry_failed=True)``.
    """
    import pandas as pd

    if kind not in ("distill", "supervised", "all"):
        raise ValueError(f"kind={kind!r}; choose 'distill', 'supervised' or 'all'")
    root = Path(root) if root is not None else paths.store_dir()
    parts = store_index.rows(root, run_ids, ("distill", "supervised"), _row, ROWS_VERSION, verify)
    frame = parts[kind] if kind != "all" else pd.concat([p for p in parts.values() if len(p)] or [pd.DataFrame()])
    if kind == "all" and len(frame):
        frame = frame.sort_values("run_id", kind="stable").reset_index(drop=True)
    if "teacher_id" in frame:
        is_distill = frame["kind"] == "distill"
        teachers = {t: store.read_json(root / t, "result.json") for t in frame.loc[is_distill, "teacher_id"].unique()}
        for column, key in (("teacher_acc", "test_acc"), ("teacher_h_all", "train_h_all"),
                            ("teacher_h_minus_max", "train_h_minus_max")):
            frame[column] = [teachers[t].get(key) if d else None for t, d in zip(frame["teacher_id"], is_distill)]
    return provenance.complete(_numbers_as_floats(frame.copy()))


def _numbers_as_floats(frame):
    """Object columns that hold only numbers and None become float columns with NaN: ``t:g`` needs a number.
    ``store_index.rows`` already gives its rows so; the teacher lookup above adds lists with None."""
    import pandas as pd

    for column in frame.columns[frame.dtypes == object]:
        values = frame[column].dropna()
        if len(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            frame[column] = pd.to_numeric(frame[column])  # None -> NaN
    return frame
