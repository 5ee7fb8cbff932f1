"""The store's runs as one table, in the paper's vocabulary: a row per run, spec columns flat.

Things layer: it reads specs back from their ``spec.json`` (the store below knows folders
and files, not what a spec is).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from kdlib import paths, provenance, specs, store


def variant(method: str, args: dict[str, Any]) -> str:
    """A legend label for a loss and its non-default arguments: ``kd[k=5,targets=bottom-k]``."""
    if not args:
        return method
    return f"{method}[{','.join(f'{k}={v}' for k, v in sorted(args.items()))}]"


def row_of(spec: specs.Spec) -> dict[str, Any]:
    """The columns a results frame shows for a spec: the paper's vocabulary, flat."""
    if isinstance(spec, specs.Distill):
        t = spec.teacher
        return {
            "kind": "distill", "preset": spec.preset, "dataset": spec.dataset,
            "teacher": t.arch, "teacher_origin": "finetuned" if t.origin == "finetuned" else "scratch",
            "teacher_epochs": t.epochs, "teacher_id": specs.run_id(t),
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


def load_results(root: str | Path | None = None, kind: str = "distill"):
    """One row per run: spec columns, status, final metrics (and the teacher's, for distillation).

    ``kind``: ``"distill"``, ``"supervised"`` or ``"all"``. Failed runs are rows with
    ``status == "failed"`` and their ``error``; retry them with ``runs.ensure(..., retry_failed=True)``.
    """
    import pandas as pd

    if kind not in ("distill", "supervised", "all"):
        raise ValueError(f"kind={kind!r}; choose 'distill', 'supervised' or 'all'")
    root = Path(root) if root is not None else paths.store_dir()
    rows, teachers = [], {}
    for path in sorted(root.glob("*/spec.json")):
        run = path.parent
        try:
            spec = specs.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as e:  # a spec of another kdlib version: say so, keep going
            warnings.warn(f"skipping run {run.name}: its spec.json does not load ({e})")
            continue
        row = {"run_id": run.name, **row_of(spec), "status": store.status_of(run)}
        if kind != "all" and row["kind"] != kind:
            continue
        result = store.read_json(run, "result.json")
        row.update({k: v for k, v in result.items() if k != "history"})
        if row["status"] == "failed":
            row["error"] = store.read_json(run, "error.json").get("error")
        if row["kind"] == "distill":
            tid = row["teacher_id"]
            if tid not in teachers:
                teachers[tid] = store.read_json(root / tid, "result.json")
            t = teachers[tid]
            row.update({"teacher_acc": t.get("test_acc"), "teacher_h_all": t.get("train_h_all"),
                        "teacher_h_minus_max": t.get("train_h_minus_max")})
        rows.append(row)
    return provenance.complete(pd.DataFrame(rows))
