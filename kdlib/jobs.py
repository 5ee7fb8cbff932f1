"""What one job does: train a supervised run (and its init chain), or one shared distillation pass.

The executors (``kdlib.executors``) decide where a job runs; the bodies here are the same
in this process, in a submitit subprocess and on a Slurm node. Each body works under the
runs' file locks, so two jobs never train the same run, and records every failure in the
store (``error.json``) before raising it.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import torch

from kdlib import data, models, specs, train
from kdlib.io import atomic_torch_save
from kdlib.store import RunDir, Untrusted


# Set in a job that Slurm is stopping (SIGTERM: requeue, preemption, scancel, time limit): errors
# from then on (its data loader workers die first) are the kill's, not the run's, so none is recorded.
TERMINATING = threading.Event()


def materialize(spec: specs.Init, root: str | Path | None = None, *, device=None, progress: bool = True,
                retry_failed: bool = True):
    """Weights of a supervised run (training it, and its own init, first if missing); None for hub/random.

    ``retry_failed=False``: a run that failed before raises instead of training again
    (the jobs of a grid leave retrying a teacher to the one job that owns it).
    """
    if isinstance(spec, str):
        return None
    run = RunDir(spec, root)
    for attempt in range(2):  # weights that fail verification are set aside: train once more
        if not run.done:
            init_state = materialize(spec.init, root, device=device, progress=progress, retry_failed=retry_failed)
            with run.lock():
                if not run.done and run.failed and not retry_failed:
                    why = "" if run.retryable else " (for a reason retrying cannot fix: fix it first)"
                    raise RuntimeError(f"{spec.arch} run {run.id} on {spec.dataset} failed{why}: {run.error()['error']} "
                                       "(traceback: RunDir(spec).error()); ensure(..., retry_failed=True) retries it")
                if not run.done:  # another process may have finished it while we waited
                    try:
                        train.supervised(spec, run, init_state=init_state, device=device, progress=progress)
                    except Exception as e:  # an interrupt or a preemption is not a failure of the run
                        if not TERMINATING.is_set():
                            run.fail(e)
                        raise
        try:
            return run.weights()
        except Untrusted:
            if attempt:
                raise


def load_model(spec: specs.Supervised, root: str | Path | None = None, *, device=None, progress: bool = True,
               retry_failed: bool = True):
    """The trained model of a supervised spec (a teacher), trained now if missing."""
    state = materialize(spec, root, device=device, progress=progress, retry_failed=retry_failed)
    info = data.dataset_info(spec.dataset, spec.preset)
    return models.create(spec.arch, info.num_classes, preset=spec.preset, state=state)


def teacher_logits(teacher: specs.Supervised, split: str = "train", root: str | Path | None = None, *,
                   seed: int | None = None, device=None, progress: bool = True,
                   train_missing: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's logits and the labels on the plain (un-augmented) ``split`` of its dataset.

    Computed once (the teacher trained first if missing) and cached in the teacher's run
    folder as ``logits-<split>-seed<seed>.pt``, so every notebook, explorer and advisor
    call reads the same tensors. ``seed`` picks the mini world the split is drawn from
    (``data.build_dataset(..., seed=seed)``; the paper's datasets ignore it); None, the
    default, is the world the teacher trained on (its preset's ``data_seed``), never the
    teacher's run seed.
    ``train_missing=False``: a teacher not in the store is a ValueError, so a notebook whose
    executor trains elsewhere (submitit, Slurm) never trains in its own process.
    """
    if not isinstance(teacher, specs.Supervised):
        raise ValueError(f"teacher={teacher!r} must be a Supervised spec (kdlib.specs.teacher(...))")
    if split not in data.SPLITS:
        raise ValueError(f"split={split!r}; choose one of {list(data.SPLITS)}")
    if seed is None:
        seed = specs.preset(teacher.preset).data_seed
    run = RunDir(teacher, root)
    file = run.path / f"logits-{split}-seed{seed}.pt"
    if run.done:
        cached = _read_logits(file)
        if cached is not None:
            return cached
    elif not train_missing:
        raise ValueError(f"teacher {teacher.arch} on {teacher.dataset} (run {run.id}) is not in the store yet; "
                         "run runs.ensure([teacher], executor=...) first")
    model = load_model(teacher, root, device=device, progress=progress)
    dataset = data.build_dataset(teacher.dataset, split, preset=teacher.preset, seed=seed, train_transform=False)
    logits, labels = train.predict(model, dataset, device=device, progress=progress)
    atomic_torch_save({"logits": logits, "labels": labels}, file)
    return logits, labels


def _read_logits(file: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A cached pair, or None when the file is missing or unreadable (then it is computed again)."""
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
        return saved["logits"], saved["labels"]
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - a damaged cache is recomputed, never trusted
        print(f"[kdlib] cached teacher logits {file} unusable ({e}); computing them again", flush=True)
        return None


def run_supervised(spec: specs.Supervised, root: str | Path | None = None, *, device=None,
                   progress: bool = True) -> None:
    """The body of a supervised job: the run, after its init chain."""
    materialize(spec, root, device=device, progress=progress)


def run_group(group: list[specs.Distill], root: str | Path | None = None, *, device=None,
              progress: bool = True, logit_cache: bool | None = None) -> None:
    """The body of one job: distil every unfinished run of ``group`` in one shared pass.

    Members whose newest good checkpoints differ (a kill between two members' checkpoint
    writes, a corrupt file set aside) join the pass when it reaches their epoch.
    ``logit_cache``: read/write the teacher's logits on the stream (default
    ``KDLIB_LOGIT_CACHE``, on). Any failure is recorded in every run it stopped, then raised.
    """
    runs = sorted((RunDir(s, root) for s in group), key=lambda r: r.id)
    try:  # teacher and initializations: trained here if missing, but not retried if they failed
        teacher = load_model(group[0].teacher, root, device=device, progress=progress, retry_failed=False)
        inits = {specs.run_id(s.student_init): materialize(s.student_init, root, device=device, progress=progress,
                                                           retry_failed=False)
                 for s in group if isinstance(s.student_init, specs.Supervised)}
    except Exception as e:
        for r in runs:
            with r.lock(blocking=False) as held:
                if held and not r.done and not TERMINATING.is_set():  # a run someone else holds is theirs
                    r.fail(e)
        raise
    with contextlib.ExitStack() as stack:
        for run in runs:  # sorted order: two jobs never wait on each other
            stack.enter_context(run.lock())
        todo = [r for r in runs if not r.done]
        for r in todo:  # members resuming from different epochs join the pass at their own
            if epoch := r.checkpoint_epoch():
                print(f"[kdlib] resuming {r.id} from epoch {epoch}", flush=True)
        try:
            train.distill_pass([r.spec for r in todo], todo, teacher,
                               student_states=[inits.get(specs.run_id(r.spec.student_init)) for r in todo],
                               device=device, progress=progress, use_cache=logit_cache)
        except Exception as e:  # recorded in every run it stopped (unless the job is terminating), then raised
            for r in todo:
                if not r.done and not TERMINATING.is_set():
                    r.fail(e)
            raise


def run_job(todo: list[specs.Spec], root: str | Path | None = None, *, device=None, progress: bool = True) -> None:
    """One job's payload: supervised runs one by one, or one distillation group in one pass."""
    if isinstance(todo[0], specs.Supervised):
        for spec in todo:
            run_supervised(spec, root, device=device, progress=progress)
    else:
        run_group(todo, root, device=device, progress=progress)
