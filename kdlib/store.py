"""The results store: one folder per run id, written so that nothing is lost or trusted half-done.

Layout of ``<root>/<run_id>/``::

    spec.json      the spec (written first)
    state.json     the last two epoch checkpoints with their sha256, newest last
    ckpt-<e>.pt    model, optimizer, scheduler and loss state after epoch e
    result.json    final metrics and per-epoch history; its presence means "done"
    model.pt       final weights of supervised runs (teachers, pretrained/finetuned students)
    error.json     the traceback of the last failure

Every file is written to a temp file and moved into place with ``os.replace``, so a
process killed at any instant leaves the old file or the new one. A checkpoint whose hash
or load fails is moved aside and the previous one is used instead.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

import torch

from kdlib import paths, specs
from kdlib.models import atomic_torch_save

KEEP_CHECKPOINTS = 2


def atomic_write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_root(root: str | Path | None) -> Path:
    """The store folder, created and checked writable before anything is submitted."""
    root = Path(root) if root is not None else paths.store_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"results folder {root} is not writable ({e.strerror}); pass another root= "
                         "or set KDLIB_OUTPUTS to a writable folder") from e
    return root


class RunDir:
    """The folder of one run: its spec, checkpoints, result and lock."""

    def __init__(self, spec: specs.Spec, root: str | Path | None = None):
        self.spec = spec
        self.id = specs.run_id(spec)
        self.path = (Path(root) if root is not None else paths.store_dir()) / self.id

    def __repr__(self) -> str:
        return f"RunDir({self.id}, done={self.done})"

    @property
    def done(self) -> bool:
        return (self.path / "result.json").is_file()

    def result(self) -> dict[str, Any]:
        return json.loads((self.path / "result.json").read_text())

    def begin(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / "spec.json").is_file():
            atomic_write_json(self.path / "spec.json", specs.to_dict(self.spec))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes (and Slurm jobs on a shared file system with flock)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- checkpoints -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"checkpoints": []}

    def save_checkpoint(self, state: dict[str, Any], epoch: int) -> None:
        """Write ckpt-<epoch>.pt, then record it (with its hash) in state.json; keep the last two."""
        file = self.path / f"ckpt-{epoch}.pt"
        atomic_torch_save(state, file)
        entries = [c for c in self._state()["checkpoints"] if c["epoch"] != epoch]
        entries.append({"epoch": epoch, "file": file.name, "sha256": _sha256(file)})
        keep, drop = entries[-KEEP_CHECKPOINTS:], entries[:-KEEP_CHECKPOINTS]
        atomic_write_json(self.path / "state.json", {"checkpoints": keep})
        for c in drop:
            (self.path / c["file"]).unlink(missing_ok=True)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """Newest checkpoint that passes its hash and loads; bad ones are set aside."""
        entries = self._state()["checkpoints"]
        for entry in reversed(entries):
            file = self.path / entry["file"]
            try:
                if _sha256(file) != entry["sha256"]:
                    raise ValueError("sha256 mismatch")
                return torch.load(file, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is distrusted
                if file.exists():
                    os.replace(file, file.with_name(f"{file.name}.corrupt-{int(time.time())}"))
                entries = [c for c in entries if c is not entry]
                atomic_write_json(self.path / "state.json", {"checkpoints": entries})
                print(f"[kdlib] run {self.id}: checkpoint {entry['file']} unusable ({e}); falling back")
        return None

    # -- the end of a run --------------------------------------------------------------
    def finish(self, result: dict[str, Any], weights: torch.nn.Module | None = None) -> None:
        if weights is not None:
            from kdlib.models import save_weights
            save_weights(weights, self.path / "model.pt")
        atomic_write_json(self.path / "result.json", result)
        (self.path / "error.json").unlink(missing_ok=True)
        for c in self._state()["checkpoints"]:
            (self.path / c["file"]).unlink(missing_ok=True)
        (self.path / "state.json").unlink(missing_ok=True)

    def fail(self, exc: BaseException) -> None:
        self.begin()
        atomic_write_json(self.path / "error.json", {
            "error": repr(exc), "traceback": "".join(traceback.format_exception(exc)), "time": time.time()})

    @property
    def failed(self) -> bool:
        return not self.done and (self.path / "error.json").is_file()

    def weights(self) -> dict[str, torch.Tensor]:
        from kdlib.models import load_weights
        return load_weights(self.path / "model.pt")


# ----------------------------------------------------------------------------- reading it back

def _status(path: Path) -> str:
    if (path / "result.json").is_file():
        return "done"
    if (path / "error.json").is_file():
        return "failed"
    return "running" if (path / "state.json").is_file() else "pending"


def _read(path: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((path / name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def variant(method: str, args: dict[str, Any]) -> str:
    """A legend label for a loss and its non-default arguments: ``kd[k=5,targets=bottom-k]``."""
    if not args:
        return method
    return f"{method}[{','.join(f'{k}={v}' for k, v in sorted(args.items()))}]"


def describe(spec: specs.Spec) -> dict[str, Any]:
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
            "seed": spec.seed,
        }
    return {
        "kind": "supervised", "preset": spec.preset, "dataset": spec.dataset, "arch": spec.arch,
        "origin": spec.origin, "init": specs.origin(spec.init), "optimizer": spec.optimizer, "lr": spec.lr,
        "weight_decay": spec.weight_decay, "batch_size": spec.batch_size, "epochs": spec.epochs, "seed": spec.seed,
    }


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
        spec = specs.from_dict(json.loads(path.read_text()))
        row = {"run_id": run.name, **describe(spec), "status": _status(run)}
        if kind != "all" and row["kind"] != kind:
            continue
        result = _read(run, "result.json")
        row.update({k: v for k, v in result.items() if k != "history"})
        if row["status"] == "failed":
            row["error"] = _read(run, "error.json").get("error")
        if row["kind"] == "distill":
            tid = row["teacher_id"]
            if tid not in teachers:
                teachers[tid] = _read(root / tid, "result.json")
            t = teachers[tid]
            row.update({"teacher_acc": t.get("test_acc"), "teacher_h_all": t.get("train_h_all"),
                        "teacher_h_minus_max": t.get("train_h_minus_max")})
        rows.append(row)
    return pd.DataFrame(rows)


def load_history(root: str | Path | None = None, run_ids: list[str] | None = None):
    """Per-epoch history, long format: one row per (run, evaluated epoch)."""
    import pandas as pd

    root = Path(root) if root is not None else paths.store_dir()
    ids = run_ids if run_ids is not None else [p.parent.name for p in root.glob("*/result.json")]
    rows = []
    for rid in ids:
        for h in _read(root / rid, "result.json").get("history", []):
            rows.append({"run_id": rid, **h})
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "epoch", "test_acc", "train_loss"])
