"""Make sure runs exist: train only the missing ones, on this process, local workers or Slurm.

The flow of every notebook is ``specs -> ensure(specs) -> load_results() -> chart``.
``ensure`` skips finished runs, groups distillation runs that share teacher and batches
(they differ only in temperature or loss) into one job that trains them in one pass, and
materializes teachers and student initializations first, each once, under a file lock.

Executors: ``local`` (this process, tqdm progress), ``submitit-local`` (submitit's
LocalExecutor: real subprocesses through the same job protocol as Slurm) and ``slurm``
(submitit's AutoExecutor; a preempted or timed-out job is requeued and resumes from the
run's last epoch checkpoint).
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import torch
from tqdm.auto import tqdm

from kdlib import data, models, specs, train
from kdlib.store import RunDir, check_root, load_results

EXECUTORS = ("local", "submitit-local", "slurm")


def materialize(spec: specs.Init, root: str | Path | None = None, *, device=None, progress: bool = True):
    """Weights of a supervised run (training it, and its own init, first if missing); None for hub/random."""
    if isinstance(spec, str):
        return None
    run = RunDir(spec, root)
    if not run.done:
        init_state = materialize(spec.init, root, device=device, progress=progress)
        with run.lock():
            if not run.done:
                try:
                    train.supervised(spec, run, init_state=init_state, device=device, progress=progress)
                except BaseException as e:
                    run.fail(e)
                    raise
    return run.weights()


def load_model(spec: specs.Supervised, root: str | Path | None = None, *, device=None, progress: bool = True):
    """The trained model of a supervised spec (a teacher), trained now if missing."""
    state = materialize(spec, root, device=device, progress=progress)
    info = data.dataset_info(spec.dataset, spec.preset)
    return models.create(spec.arch, info.num_classes, preset=spec.preset, state=state)


def _checkpoint_epoch(run: RunDir) -> int:
    entries = run._state()["checkpoints"]
    return entries[-1]["epoch"] if entries else 0


def run_group(group: list[specs.Distill], root: str | Path | None = None, *, device=None,
              progress: bool = True) -> None:
    """The body of one job: distil every unfinished run of ``group`` in one shared pass."""
    teacher = load_model(group[0].teacher, root, device=device, progress=progress)
    inits = {specs.run_id(s.student_init): materialize(s.student_init, root, device=device, progress=progress)
             for s in group if isinstance(s.student_init, specs.Supervised)}
    runs = sorted((RunDir(s, root) for s in group), key=lambda r: r.id)
    with contextlib.ExitStack() as stack:
        for run in runs:  # sorted order: two jobs never wait on each other
            stack.enter_context(run.lock())
        todo = [r for r in runs if not r.done]
        by_epoch: dict[int, list[RunDir]] = defaultdict(list)
        for r in todo:
            by_epoch[_checkpoint_epoch(r)].append(r)
        for same in by_epoch.values():
            try:
                train.distill([r.spec for r in same], same, teacher,
                              student_states=[inits.get(specs.run_id(r.spec.student_init)) for r in same],
                              device=device, progress=progress)
            except BaseException as e:
                for r in same:
                    r.fail(e)
                raise


def run_supervised(spec: specs.Supervised, root: str | Path | None = None, *, device=None,
                   progress: bool = True) -> None:
    materialize(spec, root, device=device, progress=progress)


def plan(spec_list: Iterable[specs.Spec], root: str | Path | None = None, *,
         retry_failed: bool = False) -> tuple[list[specs.Supervised], list[list[specs.Distill]]]:
    """What is missing: supervised runs, and distillation groups that share a pass."""
    sup, groups = [], defaultdict(list)
    for spec in spec_list:
        run = RunDir(spec, root)
        if run.done or (run.failed and not retry_failed):
            continue
        if isinstance(spec, specs.Supervised):
            sup.append(spec)
        elif isinstance(spec, specs.Distill):
            groups[spec.share_key].append(spec)
        else:
            raise ValueError(f"not a run spec: {spec!r}; build specs with kdlib.specs")
    return sup, list(groups.values())


def ensure(spec_list: Iterable[specs.Spec], *, executor: str = "local", root: str | Path | None = None,
           wait: bool = True, progress: bool = True, retry_failed: bool = False, device=None,
           max_parallel: int = 2, slurm: dict[str, Any] | None = None):
    """Make every run of ``spec_list`` exist in the store; return their rows of ``load_results``.

    Finished runs are skipped; failed runs are skipped unless ``retry_failed``. With
    ``wait=False`` (submitit executors) it returns after submitting, and a later call
    collects whatever has landed.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    spec_list = list(spec_list)
    if not spec_list:
        raise ValueError("the grid has zero cells: check the lists in the parameters cell (none may be empty)")
    root = check_root(root)
    ids = {specs.run_id(s) for s in spec_list}
    sup, groups = plan(spec_list, root, retry_failed=retry_failed)
    total = sum(len(g) for g in groups) + len(sup)
    if total:
        if executor == "local":
            _run_local(sup, groups, root, device=device, progress=progress)
        else:
            from kdlib import cluster
            cluster.submit(sup, groups, root, executor=executor, wait=wait, progress=progress,
                           max_parallel=max_parallel, slurm=slurm)
    frame = load_results(root, kind="all")
    if len(frame):
        frame = frame[frame["run_id"].isin(ids)].reset_index(drop=True)
    return frame


def _run_local(sup, groups, root, *, device, progress):
    total = len(sup) + sum(len(g) for g in groups)
    with tqdm(total=total, desc="runs", disable=not progress) as bar:
        for spec in sup:
            run_supervised(spec, root, device=device, progress=progress)
            bar.update(1)
        for group in groups:
            run_group(group, root, device=device, progress=progress)
            bar.update(len(group))
