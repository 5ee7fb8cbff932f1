"""The results store: one folder per run id, written so that nothing is lost or trusted half-done.

Layout of ``<root>/<run_id>/``::

    spec.json      the spec (written first)
    state.json     the last two epoch checkpoints with their sha256, newest last
    ckpt-<e>.pt    model, optimizer, scheduler and loss state after epoch e
    result.json    final metrics and per-epoch history; its presence means "done"
    model.pt       final weights of supervised runs (teachers, pretrained/finetuned students)
    weights.json   model.pt's sha256, size, run id and class count
    error.json     the traceback of the last failure (and whether retrying can fix it)
    lease, lock    the run's lock: a lease file (``kdlib.lease``) and an ``flock`` guard

Every file is written to a temp file and moved into place with ``os.replace``, so a
process killed at any instant leaves the old file or the new one (plus, at worst, a
``.<name>.*.tmp`` that is never read and is removed by the next process that takes the
run's lock). A checkpoint's sha256 is taken from the bytes in memory before they are
written, so a checkpoint whose file does not hash to it (a torn or bit-rotted write) or
does not load is moved aside (``*.corrupt-<time>``) and the previous one is used instead.
Checkpoints and model.pt also hold their run id: a file copied in from another run is set
aside (``*.foreign-<time>``) and reported once. Work on a run happens under
``RunDir.lock``: two processes asked for the same run, on one node or several sharing
the store over NFS/Lustre, never train it twice, and its record is written once (what
the file system must provide: ``kdlib.lease``). A full disk or quota raises ``DiskFull``
naming the folder and the space needed, leaves no partial file and keeps the previous
checkpoint: the next ``ensure`` resumes.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

import torch

from kdlib import history, paths, provenance, records, store_index
from kdlib.io import TMP_SUFFIX, DiskFull, atomic_torch_save, atomic_write_json
from kdlib.lease import Lease

KEEP_CHECKPOINTS = 2
SPEC_KEY = "kdlib.spec_id"  # the run id stored inside every checkpoint and weights file
_STALE_SPEC_TMP_S = 3600  # a spec.json temp file may belong to a live writer that holds no lock


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

    def __init__(self, spec: Any, root: str | Path | None = None):
        self.spec = spec
        self.id = records.record_id(spec)
        self.path = (Path(root) if root is not None else paths.store_dir()) / self.id
        self._lease: Lease | None = None  # set while this object holds lock()

    def __repr__(self) -> str:
        return f"RunDir({self.id}, done={self.done})"

    @property
    def done(self) -> bool:
        return (self.path / "result.json").is_file()

    @property
    def status(self) -> str:
        """``done``, ``failed``, ``running`` (has a checkpoint) or ``pending``."""
        return status_of(self.path)

    def result(self) -> dict[str, Any]:
        return json.loads((self.path / "result.json").read_text())

    def error(self) -> dict[str, Any] | None:
        """The last failure: ``{"error", "traceback", "time"}``, or None."""
        return read_json(self.path, "error.json") or None

    def declare(self) -> None:
        """Create the folder and its spec.json (safe without the lock: the spec never changes)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / "spec.json").is_file():
            atomic_write_json(self.path / "spec.json", records.to_dict(self.spec))

    def begin(self) -> None:
        """Start (or resume) work on the run; the caller holds ``lock()``.

        Removes what a killed writer left (temp files, checkpoints state.json does not
        list) and the record of an earlier failure: the run is being retried.
        """
        self.declare()
        now = self._began = time.time()
        for tmp in self.path.glob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if not tmp.name.startswith(".spec.json.") or now - tmp.stat().st_mtime > _STALE_SPEC_TMP_S:
                    tmp.unlink()
        self._drop_unlisted_checkpoints()
        (self.path / "error.json").unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, blocking: bool = True) -> Iterator[bool]:
        """Exclusive across processes and nodes: a lease file (``kdlib.lease``), plus ``flock``.

        Yields True once held; with ``blocking=False`` yields False at once if another
        process holds it. The lease holds on NFS and Lustre, where ``flock`` may lock
        only within a node; ``flock`` is kept as a second guard where it works.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        held = Lease(self.path / "lease")
        if not held.acquire(blocking):
            yield False
            return
        try:
            with open(self.path / "lock", "a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                except OSError:  # no flock on this file system: the lease alone guards the run
                    pass
                self._lease = held
                try:
                    yield True
                finally:
                    self._lease = None
                    with contextlib.suppress(OSError):
                        fcntl.flock(f, fcntl.LOCK_UN)
        finally:
            held.release()

    def _check_lease(self) -> None:
        """Refuse to write a run whose lease another process broke (it took this one for dead)."""
        held = self._lease
        if held is not None and not held.refresh():
            raise RuntimeError(f"run {self.id}: its lock {held.path} was taken over by another process while this "
                               "one worked (a stalled node?); this process stops without writing. "
                               f"Raise KDLIB_LEASE_S (now {held.lease_s:g} s) if the nodes are slow.")

    # -- checkpoints -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"checkpoints": []}

    def save_checkpoint(self, state: dict[str, Any], epoch: int) -> None:
        """Write ckpt-<epoch>.pt, then record it (with its hash) in state.json; keep the last two.

        A kill before state.json is replaced leaves the previous state.json, which does
        not list the new file: it is never loaded, and the next save or ``begin`` removes it.
        """
        self._check_lease()
        file = self.path / f"ckpt-{epoch}.pt"
        data = atomic_torch_save({**state, SPEC_KEY: self.id}, file)
        entries = [c for c in self._state()["checkpoints"] if c["epoch"] != epoch]
        entries.append({"epoch": epoch, "file": file.name, "sha256": hashlib.sha256(data).hexdigest()})
        atomic_write_json(self.path / "state.json", {"checkpoints": entries[-KEEP_CHECKPOINTS:]})
        self._drop_unlisted_checkpoints()

    def _drop_unlisted_checkpoints(self) -> None:
        listed = {c["file"] for c in self._state()["checkpoints"]}
        for file in self.path.glob("ckpt-*.pt"):
            if file.name not in listed:
                file.unlink(missing_ok=True)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """Newest checkpoint that passes its hash and loads; bad ones are set aside."""
        return self._newest_good()[1]

    def checkpoint_epoch(self) -> int:
        """Epoch of the newest checkpoint that passes its hash and loads (0: none); bad ones are set aside."""
        entry, _ = self._newest_good()
        return entry["epoch"] if entry else 0

    def _newest_good(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        entries = self._state()["checkpoints"]
        for entry in reversed(entries):
            file = self.path / entry["file"]
            try:
                data = file.read_bytes()
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise ValueError("sha256 mismatch")
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                self._check_owner(state, file)
                return entry, state
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is distrusted
                self._set_aside(file, e)
                entries = [c for c in entries if c is not entry]
                atomic_write_json(self.path / "state.json", {"checkpoints": entries})
                print(f"[kdlib] run {self.id}: checkpoint {entry['file']} unusable ({e}); falling back", flush=True)
        return None, None

    def _check_owner(self, state: dict[str, Any], file: Path) -> None:
        owner = state.pop(SPEC_KEY, self.id)  # files of older kdlib versions carry no id: trusted by hash
        if owner != self.id:
            raise Foreign(f"{file.name} belongs to run {owner}, not {self.id} (a file copied between run folders?)")

    def _set_aside(self, file: Path, why: Exception) -> None:
        """Keep a distrusted file for inspection (``*.foreign-<t>`` / ``*.corrupt-<t>``); it is never read again."""
        kind = "foreign" if isinstance(why, Foreign) else "corrupt"
        with contextlib.suppress(FileNotFoundError):
            os.replace(file, file.with_name(f"{file.name}.{kind}-{time.time_ns()}"))

    # -- the end of a run --------------------------------------------------------------
    def finish(self, result: dict[str, Any], weights: torch.nn.Module | None = None) -> None:
        """Write the final weights (sha256 in weights.json), then the result with its provenance: the run is done.

        Provenance: code and library versions, wall time since ``begin``.
        """
        self._check_lease()
        began = getattr(self, "_began", None)
        result = {**provenance.record(), "wall_seconds": None if began is None else time.time() - began, **result}
        if weights is not None:
            state = {k: v.detach().cpu() for k, v in weights.state_dict().items()}
            data = atomic_torch_save({**state, SPEC_KEY: self.id}, self.path / "model.pt")
            atomic_write_json(self.path / "weights.json", {
                "file": "model.pt", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "spec_id": self.id, "num_classes": getattr(weights, "num_classes", None)})
        atomic_write_json(self.path / "result.json", result)
        store_index.note_change(self.path.parent, self.id)  # an indexed older result of this run is stale now
        (self.path / "error.json").unlink(missing_ok=True)
        for c in self._state()["checkpoints"]:
            (self.path / c["file"]).unlink(missing_ok=True)
        (self.path / "state.json").unlink(missing_ok=True)

    def fail(self, exc: BaseException, text: str | None = None) -> None:
        """Record a failure (the caller holds the lock): load_results shows it until a retry.

        A ``ValueError`` (bad input, data that does not fit the spec) is marked not
        retryable: it is not retried implicitly, only by ``ensure(..., retry_failed=True)``
        once its cause is fixed. A full disk is not the run's failure: nothing is recorded,
        and the next ``ensure`` resumes it.
        """
        if isinstance(exc, DiskFull):
            print(f"[kdlib] run {self.id} stopped: {exc}", flush=True)
            return
        self.declare()
        try:
            atomic_write_json(self.path / "error.json", {
                "error": repr(exc), "traceback": text or "".join(traceback.format_exception(exc)), "time": time.time(),
                "retryable": not isinstance(exc, ValueError)})
        except DiskFull as full:
            print(f"[kdlib] run {self.id} failed ({exc!r}) and its error could not be recorded: {full}", flush=True)

    @property
    def failed(self) -> bool:
        return not self.done and (self.path / "error.json").is_file()

    @property
    def retryable(self) -> bool:
        """False for a failure retrying cannot fix (bad input, a mismatch), until its cause is fixed."""
        return bool((self.error() or {}).get("retryable", True))

    def weights(self) -> dict[str, torch.Tensor]:
        """The final weights, verified: sha256 (weights.json) and the run id inside the file.

        Weights that fail are set aside with the result (the run is no longer done, so
        it is trained again) and ``Untrusted`` is raised; the report is printed once.
        """
        file, meta = self.path / "model.pt", read_json(self.path, "weights.json")
        try:
            data = file.read_bytes()
            if meta and hashlib.sha256(data).hexdigest() != meta.get("sha256"):
                raise ValueError("sha256 mismatch")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            self._check_owner(state, file)
            return state
        except Exception as e:  # noqa: BLE001 - unreadable weights are distrusted
            for f in (file, self.path / "weights.json", self.path / "result.json"):
                self._set_aside(f, e)
            store_index.note_change(self.path.parent, self.id)
            print(f"[kdlib] run {self.id}: final weights model.pt unusable ({e}); set aside with its result, "
                  "the run will be trained again", flush=True)
            raise Untrusted(f"run {self.id}: model.pt unusable ({e})") from e


class Untrusted(RuntimeError):
    """A file of the store failed verification and was set aside; retrying (retraining) fixes it."""


class Foreign(ValueError):
    """A file that belongs to another run (its stored run id differs)."""


# ----------------------------------------------------------------------------- reading it back

def status_of(path: Path) -> str:
    """A run folder's state: ``done``, ``failed``, ``running`` (has a checkpoint) or ``pending``."""
    path = str(path)  # plain strings: a big store's table checks these for every run
    if os.path.isfile(f"{path}/result.json"):
        return "done"
    if os.path.isfile(f"{path}/error.json"):
        return "failed"
    return "running" if os.path.isfile(f"{path}/state.json") else "pending"


def read_json(path: Path, name: str) -> dict[str, Any]:
    """A run folder's JSON file, or {} when it is missing or torn."""
    try:
        with open(f"{path}/{name}", "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return {}


def finished(frame, kind: str | None = None):
    """The rows of ``frame`` whose run is done (and of ``kind``, e.g. ``"distill"``); any frame of results."""
    if "status" in frame:
        frame = frame[frame["status"] == "done"]
    if kind is not None and "kind" in frame:
        frame = frame[frame["kind"] == kind]
    return frame


def load_history(root: str | Path | None = None, run_ids: list[str] | None = None):
    """Per-epoch history, long format: one row per (run, epoch); runs still training too (``in_flight``)."""
    import pandas as pd

    root = Path(root) if root is not None else paths.store_dir()
    ids = run_ids if run_ids is not None else sorted({p.parent.name for n in ("result.json", history.FILE)
                                                      for p in root.glob(f"*/{n}")})
    rows = [{"run_id": rid, **h} for rid in ids for h in history.rows(root / rid, read_json(root / rid, "result.json"))]
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "epoch", "test_acc", "train_loss", "in_flight"])
