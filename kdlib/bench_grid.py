"""The benchmark's whole-sweep measures: notebook 02's grid both ways, a bare step, compiling.

``grid02`` trains notebook 02's mini grid (3 temperatures x 2 optimizers x 2 batch sizes x
the five durations) twice in one run, in fresh stores, one batch size at a time,
alternating: as today (one pass per (optimizer, batch size, duration), i.e. per run
differing only in temperature; no logit cache; a checkpoint every epoch; students stepped
in turn) and as now (one pass per data stream, at most ``runs.MAX_MEMBERS`` students; the
logit cache; checkpoints on budget; students stepped at once on the CPU's cores). Both use
this version's loop, so the difference is the grouping, the cache, the checkpoint cadence
and the member threads. Models are random (speed does not depend on what they know).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from kdlib import data, jobs, models, numerics, runs, specs, store, studies, train

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
def _as_today() -> Iterator[None]:
    """Today's loop, where it differs by a switch: a checkpoint every epoch (``KDLIB_CHECKPOINT_BUDGET=inf``)
    and students stepped in turn (``KDLIB_MEMBER_THREADS=1``). Set for the duration, over any value the user
    set (restored afterwards; the loop reads both at each pass)."""
    saved = {name: os.environ.get(name) for name in ("KDLIB_CHECKPOINT_BUDGET", "KDLIB_MEMBER_THREADS")}
    os.environ.update(KDLIB_CHECKPOINT_BUDGET="inf", KDLIB_MEMBER_THREADS="1")
    try:
        yield
    finally:
        for name, before in saved.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


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
            with _counting_streams(streams["today"]), _as_today(), instrument(totals["today"]):
                _add(totals["today"], _timed(lambda: [runs.ensure(g, root=roots["today"], progress=False,
                                                                  logit_cache=False) for g in today.values()]))
            with _counting_streams(streams["new"]), instrument(totals["new"]):
                _add(totals["new"], _timed(lambda: runs.ensure(cells, root=roots["new"], progress=False)))
        for way in roots:
            out[way] = {**totals[way], "passes": passes[way],
                        "teacher_forwards": sum(s.teacher_forwards for s in streams[way])}
        out["cache_bytes"] = sum(f.stat().st_size for f in roots["new"].rglob("logits/*/epoch-*.bin"))
        # The two ways give the same numbers where their ops run on as many threads: today's in-turn students
        # on all of torch's, the new ones on their share (``numerics.member_threads``; the last bits differ).
        threads = torch.get_num_threads()
        out["same_thread_count"] = threads == max(1, threads // numerics.member_threads(torch.device("cpu")))
        if out["same_thread_count"]:
            for s in grid[:3]:
                assert store.RunDir(s, roots["today"]).result()["history"][-1]["train_loss"] == \
                    store.RunDir(s, roots["new"]).result()["history"][-1]["train_loss"]
    return out


def _batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first mixed batch of a mini stream (seed 0, epoch 0: what a pass's first step sees) and a random
    teacher's logits of it."""
    info = data.dataset_info("fmnist-fine")
    train.seed_epoch(0, 0)
    loader = data.make_loader(data.build_dataset("fmnist-fine", "train"), batch_size, train=True, seed=0, epoch=0)
    images, labels = next(iter(loader))
    x, _ = train._mixer(info.num_classes, 0.0)(images.float().div_(255), labels)
    torch.manual_seed(0)
    with torch.no_grad():
        t_logits = models.create("resnet50", info.num_classes).eval()(x)
    return x, t_logits


def bare_step_s(batch_size: int, repeat: int = 20, clock: Callable[[], float] = time.process_time) -> float:
    """Median seconds of a student step as a user writes it by hand: plain eager torch, default memory format,
    the hand-written KD loss, backward, ``torch.optim.AdamW``; on a pass's first real mixed batch."""
    info = data.dataset_info("fmnist-fine")
    x, t_logits = _batch(batch_size)
    torch.manual_seed(0)
    student = models.create("resnet18", info.num_classes).train()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.05)
    times = []
    for i in range(repeat + 3):
        start = clock()
        loss = _kd(student(x), t_logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:  # the first steps allocate
            times.append(clock() - start)
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


def _kd(logits: torch.Tensor, t_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """The textbook KD loss, written by hand (what a user's bare loop has)."""
    return torch.nn.functional.kl_div(torch.log_softmax(logits / temperature, -1),
                                      torch.log_softmax(t_logits / temperature, -1), log_target=True,
                                      reduction="batchmean") * temperature ** 2


def _eager_step(students: list[torch.nn.Module], opts: list, x: torch.Tensor, t_logits: torch.Tensor) -> None:
    """One step of each of K separate eager students: KD loss, backward, per-tensor clipping, AdamW."""
    for s, opt in zip(students, opts):
        loss = _kd(s(x), t_logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        train.clip_per_tensor(list(s.parameters()), 1.0)
        opt.step()


def _vmapped_step(forward: Callable, params: dict, buffers: dict, opt, x: torch.Tensor,
                  t_logits: torch.Tensor) -> None:
    """The same step of K stacked students at once; clipping on each model's own norm of each tensor."""
    logits = forward(params, buffers, x)                                 # (K, batch, classes)
    loss = sum(_kd(logits[i], t_logits) for i in range(len(logits)))    # each model's own loss: own gradients
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grads = [p.grad for p in params.values()]
    norms = [g.flatten(1).norm(dim=1) for g in grads]                    # per model, per tensor
    torch._foreach_mul_(grads, [torch.clamp(1.0 / (n + 1e-6), max=1.0).view(-1, *[1] * (g.dim() - 1))
                                for n, g in zip(norms, grads)])
    opt.step()


def vmap_students(k: int = 8, batch_size: int = 128, repeat: int = 10,
                  clock: Callable[[], float] = time.process_time) -> dict[str, Any]:
    """A prototype: K mini students as one vmapped model against K separate eager students.

    Both take, on one real mixed batch, the KD loss's forward and backward, per-tensor
    gradient clipping (per model: each stacked tensor's norm over its model's slice) and
    AdamW. The vmapped students are ``torch.func.stack_module_state`` + ``functional_call``
    under ``torch.vmap``; BatchNorm uses training-mode batch statistics with stacked running
    buffers (one set per model). The eager students run in the default memory format and, as
    kdlib's CPU default, in channels_last. Returns the median seconds per student step of each,
    and whether the first forward of the vmapped students equals the eager one bit for bit."""
    from torch.func import functional_call, stack_module_state

    info = data.dataset_info("fmnist-fine")
    x, t_logits = _batch(batch_size)
    torch.manual_seed(0)
    students = [models.create("resnet18", info.num_classes).train() for _ in range(k)]
    params, buffers = stack_module_state(students)
    shell = copy.deepcopy(students[0]).to("meta")

    def one(p, b, inputs):
        return functional_call(shell, (p, b), (inputs,))

    forward = torch.vmap(one, in_dims=(0, 0, None), randomness="different")
    with torch.no_grad():
        eager0 = torch.stack([s(x) for s in students])
        stacked0 = forward(params, {n: b.clone() for n, b in buffers.items()}, x)
    last = [copy.deepcopy(s).to(memory_format=torch.channels_last) for s in students]  # as kdlib's CPU default
    x_last = x.contiguous(memory_format=torch.channels_last)
    eager_opts = [torch.optim.AdamW(s.parameters(), lr=1e-3, weight_decay=0.05) for s in students]
    last_opts = [torch.optim.AdamW(s.parameters(), lr=1e-3, weight_decay=0.05) for s in last]
    stacked_opt = torch.optim.AdamW(list(params.values()), lr=1e-3, weight_decay=0.05)

    times: dict[str, list[float]] = {"eager": [], "eager_channels_last": [], "vmapped": []}
    steps = (("eager", lambda: _eager_step(students, eager_opts, x, t_logits)),
             ("eager_channels_last", lambda: _eager_step(last, last_opts, x_last, t_logits)),
             ("vmapped", lambda: _vmapped_step(forward, params, buffers, stacked_opt, x, t_logits)))
    for i in range(repeat + 2):  # interleaved, the first two steps of each allocate
        for name, step in steps:
            start = clock()
            step()
            if i >= 2:
                times[name].append((clock() - start) / k)
    eager_s, vmapped_s = statistics.median(times["eager"]), statistics.median(times["vmapped"])
    last_s = statistics.median(times["eager_channels_last"])
    return {"k": k, "batch_size": batch_size, "eager_student_step_s": eager_s,
            "eager_channels_last_student_step_s": last_s, "vmapped_student_step_s": vmapped_s,
            "vmap_speedup": eager_s / vmapped_s, "vmap_speedup_vs_channels_last": last_s / vmapped_s,
            "first_forward_max_abs_diff": float((eager0 - stacked0).abs().max()),
            "bit_identical": bool(torch.equal(eager0, stacked0))}
