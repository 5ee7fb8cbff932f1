"""The benchmark's whole-sweep measures: notebook 02's grid both ways, a bare step, compiling.

``grid02`` trains notebook 02's mini grid (3 temperatures x 2 optimizers x 2 batch sizes x
the five durations) twice in one run, in fresh stores, one batch size at a time,
alternating: as today (one pass per (optimizer, batch size, duration), i.e. per run
differing only in temperature; no logit cache; a checkpoint every epoch) and as now (one
pass per data stream, at most ``runs.MAX_MEMBERS`` students; the logit cache; checkpoints
on budget). Both use this version's loop, so the difference is the grouping, the cache
and the checkpoint cadence. Models are random (speed does not depend on what they know).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from kdlib import data, jobs, losses, models, runs, specs, store, studies, train

GRID02 = dict(temperatures=(1.0, 4.0, 40.0), optimizers=("adamw", "sgd"), batch_sizes=(32, 128),
              fractions=(0.0625, 0.125, 0.25, 0.5, 1.0))


def grid02_specs(longest: int, teacher: specs.Supervised) -> list[specs.Distill]:
    out = []
    for opt in GRID02["optimizers"]:
        for bs in GRID02["batch_sizes"]:
            for epochs in studies.scaled_epochs(longest, list(GRID02["fractions"])):
                base = specs.distill(teacher, "resnet18", temperature=1.0, epochs=epochs, optimizer=opt,
                                     batch_size=bs)
                out += specs.grid(base, temperature=list(GRID02["temperatures"]))
    return out


@contextlib.contextmanager
def _counting_streams(found: list) -> Iterator[None]:
    """Keep every pass's stream (they count their teacher forwards)."""
    original = train._Stream

    class Counted(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            found.append(self)

    train._Stream = Counted
    try:
        yield
    finally:
        train._Stream = original


@contextlib.contextmanager
def _every_epoch() -> Iterator[None]:
    """A checkpoint every epoch (today's cadence): ``KDLIB_CHECKPOINT_BUDGET=inf`` for the duration, which
    wins over a value the user set (restored afterwards; ``train.checkpoint_budget`` reads it each epoch)."""
    before = os.environ.get("KDLIB_CHECKPOINT_BUDGET")
    os.environ["KDLIB_CHECKPOINT_BUDGET"] = "inf"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KDLIB_CHECKPOINT_BUDGET", None)
        else:
            os.environ["KDLIB_CHECKPOINT_BUDGET"] = before


def _timed(fn: Callable[[], None]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def _add(into: dict[str, float], more: dict[str, float]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0.0) + v


def grid02(longest: int, instrument: Callable) -> dict[str, Any]:
    """Today's passes and the new ones on notebook 02's grid, side by side; seconds and teacher forwards."""
    teacher = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=0)
    grid = grid02_specs(longest, teacher)
    out: dict[str, Any] = {"longest_epochs": longest, "runs": len(grid),
                           "durations": studies.scaled_epochs(longest, list(GRID02["fractions"]))}
    with tempfile.TemporaryDirectory(prefix="kdlib-grid02-") as tmp:
        roots = {way: Path(tmp) / way for way in ("today", "new")}
        for root in roots.values():
            jobs.materialize(teacher, root, progress=False)
        totals = {way: {} for way in roots}
        streams: dict[str, list] = {way: [] for way in roots}
        passes = {"today": 0, "new": 0}
        for bs in GRID02["batch_sizes"]:
            cells = [s for s in grid if s.batch_size == bs]
            today = {}
            for s in cells:  # today's share key: everything but the loss
                today.setdefault(specs.run_id(dataclasses.replace(s, temperature=1.0)), []).append(s)
            passes["today"] += len(today)
            passes["new"] += len(runs.plan(cells, roots["new"])[1])
            with _counting_streams(streams["today"]), _every_epoch(), instrument(totals["today"]):
                _add(totals["today"], _timed(lambda: [runs.ensure(g, root=roots["today"], progress=False,
                                                                  logit_cache=False) for g in today.values()]))
            with _counting_streams(streams["new"]), instrument(totals["new"]):
                _add(totals["new"], _timed(lambda: runs.ensure(cells, root=roots["new"], progress=False)))
        for way in roots:
            out[way] = {**totals[way], "passes": passes[way],
                        "teacher_forwards": sum(s.teacher_forwards for s in streams[way])}
        out["cache_bytes"] = sum(f.stat().st_size for f in roots["new"].rglob("logits/*/epoch-*.bin"))
        for s in grid[:3]:  # the two ways give the same numbers
            assert store.RunDir(s, roots["today"]).result()["history"][-1]["train_loss"] == \
                store.RunDir(s, roots["new"]).result()["history"][-1]["train_loss"]
    return out


def bare_step_s(batch_size: int, repeat: int = 20) -> float:
    """Median seconds of a bare eager student step (forward, KD loss, backward, AdamW) on one mini batch."""
    info = data.dataset_info("fmnist-fine")
    torch.manual_seed(0)
    student = models.create("resnet18", info.num_classes)
    teacher = models.create("resnet50", info.num_classes).eval()
    x = torch.rand(batch_size, 1, 32, 32)
    with torch.no_grad():
        t_logits = teacher(x)
    loss_fn = losses.build("kd", temperature=4.0)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.05)
    times = []
    for i in range(repeat + 3):
        start = time.process_time()
        loss = loss_fn(student(x), t_logits, t_logits.argmax(1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:  # the first steps allocate
            times.append(time.process_time() - start)
    return statistics.median(times)


def compile_speedup(group: list[specs.Distill], teacher: torch.nn.Module) -> dict[str, float]:
    """A pass eager and compiled (``KDLIB_COMPILE``), compile time included: CPU seconds of each."""
    out = {}
    for name, flag in (("eager_s", False), ("compiled_s", True)):
        with tempfile.TemporaryDirectory(prefix="kdlib-compile-") as root:
            rds = [store.RunDir(s, root) for s in group]
            torch._dynamo.reset()
            out[name] = _timed(lambda: train.distill_pass(group, rds, teacher, student_states=[None] * len(group),
                                                          device=torch.device("cpu"), progress=False,
                                                          use_cache=False, compile=flag))["cpu_s"]
    out["compile_speedup"] = out["eager_s"] / out["compiled_s"]
    return out
