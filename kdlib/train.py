"""One training loop for everything the study trains: a pass of K members on one data stream.

``supervised`` trains a model on labels (label-smoothed cross-entropy): general
pretraining, teachers, target-trained and finetuned students. ``distill_pass`` trains K
students against one teacher by output matching only (no label loss, as the paper). A
batch depends only on the stream (dataset, seed, epoch, batch size, augmentation), so
every run on one stream joins one pass whatever its optimizer, learning rate, duration,
method, student or initialization: the batch and the teacher's forward (or its cached
logits, ``kdlib.logit_cache``) are computed once per step, each member takes its own step
with its own optimizer and schedule, and leaves the pass when its last epoch ends.

Resume is exact: every random draw of an epoch (shuffle, augmentation, MixUp/CutMix) is
seeded from (seed, epoch), and a member's own draws (a loss that samples) run on its own
copy of torch's RNG, so a member ends exactly as if it had been trained alone. A member
joins the pass at the epoch it resumes from. Checkpoints are written at epoch ends on a
cost budget (``KDLIB_CHECKPOINT_BUDGET``): every epoch while a write costs little next to
the training since the last one, less often when epochs are tiny and writes are not.

Every ``eval_every`` epochs the members are scored on the test set in one pass over it:
an intermediate epoch (a curve point) on the preset's fixed, stratified subset
(``curve_test_images``), a member's last epoch (its result) on the full set; each history
row records how many images its accuracy came from (``test_images``).
"""
from __future__ import annotations

import contextlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
import torch
from timm.loss import SoftTargetCrossEntropy
from torch import nn
from tqdm.auto import tqdm

from kdlib import data, history, logit_cache, losses, metrics, models, specs
from kdlib.cadence import CHECKPOINT_BUDGET, checkpoint_budget, checkpoint_due  # noqa: F401 - train.* names
from kdlib.device import pick as pick_device  # loud: CUDA asked for but unusable is an error
from kdlib.evaluation import evaluate, predict, predict_many  # train.evaluate: the name the benchmark times
from kdlib.members import (Member, compiled_forward, make_optimizer, own_rng_of, prepare_model, scaler,
                           teacher_forward, to_input)
from kdlib.members import mixer as _mixer  # module names the benchmark times (train._mixer)
from kdlib.members import one_hot as _one_hot
from kdlib.numerics import autocast, compile_enabled, member_threads, record
from kdlib.store import RunDir


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed every global RNG from (seed, epoch): timm's Mixup draws from numpy's."""
    s = (seed * 1_000_003 + epoch * 7919) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def clip_per_tensor(params: list[nn.Parameter], max_norm: float) -> None:
    """Per-layer clipping (paper Sect. 3.1): each parameter tensor's gradient to L2 norm <= max_norm."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return
    norms = torch._foreach_norm(grads)
    scales = [torch.clamp(max_norm / (n + 1e-6), max=1.0) for n in norms]
    torch._foreach_mul_(grads, scales)


def _dataset(spec: specs.Spec, split: str, train_transform: bool | None = None):
    """The run's part of the train split: the rest, or the held-out validation part (``spec.val_fraction``)."""
    return data.build_dataset(spec.dataset, split, preset=spec.preset, train_transform=train_transform,
                              val_fraction=getattr(spec, "val_fraction", 0.0))


class _Stream:
    """What the members of a pass share: the data, the mixing, the teacher (or its cached logits)."""

    def __init__(self, spec: specs.Spec, teacher: nn.Module | None, device: torch.device,
                 cache: logit_cache.LogitCache | None, workers: int = 1):
        info = data.dataset_info(spec.dataset, spec.preset)
        self.spec, self.seed, self.device, self.teacher = spec, spec.seed, device, teacher
        self.cache = cache or logit_cache.LogitCache(None)
        self.train_set = _dataset(spec, "train")
        self.test_set = data.build_dataset(spec.dataset, "test", preset=spec.preset)
        self.val_set = _dataset(spec, "val") if getattr(spec, "val_fraction", 0.0) else None
        smoothing = getattr(spec, "label_smoothing", 0.0) if teacher is None else 0.0
        self.mixer = (_mixer(info.num_classes, smoothing) if getattr(spec, "mixup", True)
                      else _one_hot(info.num_classes, smoothing))
        self.soft_ce = SoftTargetCrossEntropy()
        self.eval_every = specs.preset(spec.preset).eval_every
        curve = specs.preset(spec.preset).curve_test_images
        self.curve_positions = (data.stratified_subset(data.split.dataset_labels(self.test_set), curve)
                                if curve is not None and curve < len(self.test_set) else None)
        self.steps = len(self.train_set) // spec.batch_size
        self.loader = None  # made at the first epoch, reseeded (workers kept) at the next ones
        self.teacher_forwards = 0
        self.workers = workers  # students stepped at once (``numerics.member_threads``)
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="kdlib-member")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def batches(self, epoch: int):
        if self.loader is None:
            self.loader = data.make_loader(self.train_set, self.spec.batch_size, train=True, seed=self.seed,
                                           epoch=epoch, keep_workers=True)
        else:
            data.reseed(self.loader, self.seed, epoch)
        return self.loader


def _step(s: _Stream, m: Member, x: torch.Tensor, soft: torch.Tensor, hard: torch.Tensor,
          t_logits: torch.Tensor | None, own_rng: bool = True) -> None:
    """One optimizer step of one member on the shared batch (``own_rng=False``: a step that draws nothing)."""
    with own_rng_of(m, s.device) if own_rng else contextlib.nullcontext():
        with autocast(s.device):
            logits = m.logits(x)
        if m.objective is not None:
            loss = m.objective(logits.float(), t_logits, hard)
        else:
            loss = s.soft_ce(logits.float(), soft)
        m.optimizer.zero_grad(set_to_none=True)
        if m.scaler is not None:
            m.scaler.scale(loss).backward()
            m.scaler.unscale_(m.optimizer)
        else:
            loss.backward()
        clip_per_tensor(m.params, m.clip)
        if m.scaler is not None:
            m.scaler.step(m.optimizer)
            m.scaler.update()
        else:
            m.optimizer.step()
        m.scheduler.step()
        m.loss_sum += loss.detach()


def _train_epoch(s: _Stream, now: list[Member], epoch: int, bar) -> int:
    """Every step of one epoch for the members in ``now``; returns the number of steps."""
    seed_epoch(s.seed, epoch)
    base = (torch.get_rng_state(), torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None)
    for m in now:
        m.model.train()
        m.rng, m.loss_sum = base, torch.zeros((), device=s.device)
        if m.objective is not None:
            m.objective.set_epoch(epoch, m.epochs)
    cached = s.cache.load(epoch, s.steps) if s.teacher is not None else None
    fresh, steps = [], 0
    for step, (images, labels) in enumerate(s.batches(epoch)):
        x = to_input(images, s.device)
        x, soft = s.mixer(x, labels.to(s.device))
        hard = soft.argmax(1)  # the label with the larger share of a mixed image
        t_logits = None
        if s.teacher is not None and cached is not None:
            t_logits = cached[step].to(s.device).float()
        elif s.teacher is not None:
            with torch.no_grad(), autocast(s.device):
                raw = s.teacher(x)
            s.teacher_forwards += 1
            t_logits = raw.float()
            if s.cache.folder is not None:
                fresh.append(raw.detach())
        _step_members(s, now, x, soft, hard, t_logits, first=step == 0)
        steps += 1
        bar.update(1)
    if fresh and len(fresh) == s.steps:
        s.cache.save(epoch, torch.stack(fresh))
    return steps


def _step_members(s: _Stream, now: list[Member], x: torch.Tensor, soft: torch.Tensor, hard: torch.Tensor,
                  t_logits: torch.Tensor | None, first: bool) -> None:
    """Every member's step on one batch: in turn, or (``s.workers`` > 1) at once, one core each. Only steps that
    draw no random numbers may run at once (they would race for torch's RNG): each epoch's first step runs in turn
    on each member's own RNG and tells which members draw; those stay in turn. A step's thread count is the same."""
    if s.workers == 1:
        for m in now:
            _step(s, m, x, soft, hard, t_logits)
        return
    with _split_threads(s) as pool:
        for m in (m for m in now if first or m.draws):  # in turn, each on its own RNG
            before = m.rng[0]
            _step(s, m, x, soft, hard, t_logits)
            if first:
                m.draws = not torch.equal(before, m.rng[0])
        together = [] if first else [m for m in now if not m.draws]
        if together:
            state = torch.get_rng_state()
            list(pool.map(lambda m: _step(s, m, x, soft, hard, t_logits, own_rng=False), together))
            if not torch.equal(state, torch.get_rng_state()):
                raise RuntimeError("a student drew random numbers in a step taken beside others' (it drew none at its "
                                   "epoch's first step); set KDLIB_MEMBER_THREADS=1 to step students in turn")


@contextlib.contextmanager
def _split_threads(s: _Stream):
    """Torch's threads split over the pass's member threads for the block (each op on its share of the cores),
    so that a member's step and evaluation run at the same thread count however many members share the pass."""
    if s.workers == 1:
        yield None
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // s.workers))
    try:
        yield s.pool()
    finally:
        torch.set_num_threads(threads)


def _end_epoch(s: _Stream, now: list[Member], epoch: int, steps: int, seconds: float, keep_last: bool) -> None:
    """Evaluate the members due (one pass over the test set), record the epoch, checkpoint on budget."""
    due = [m for m in now if epoch + 1 == m.epochs or (epoch + 1) % s.eval_every == 0]
    budget = checkpoint_budget()
    accs: dict[int, float] = {}
    images: dict[int, int] = {}
    vals: dict[int, float] = {}
    if due:
        final = [m for m in due if epoch + 1 == m.epochs]  # a result is taken from it: the full test set
        curve = [m for m in due if epoch + 1 != m.epochs]
        with _split_threads(s) as pool:  # the members' forwards at once, as their steps
            full_accs, curve_accs, curve_images = evaluate([m.model for m in final], [m.model for m in curve],
                                                           s.test_set, s.curve_positions, device=s.device, pool=pool)
            if s.val_set is not None:
                val_accs = evaluate([m.model for m in due], [], s.val_set, None, device=s.device, pool=pool)[0]
                vals = {id(m): a for m, a in zip(due, val_accs)}
        accs = {id(m): a for m, a in zip(final, full_accs)} | {id(m): a for m, a in zip(curve, curve_accs)}
        images = {id(m): len(s.test_set) for m in final} | {id(m): curve_images for m in curve}
    for m in now:
        record = {"epoch": epoch + 1, "train_loss": m.loss_sum.item() / max(1, steps), "test_acc": accs.get(id(m)),
                  "test_images": images.get(id(m)), "seconds": seconds}
        if s.val_set is not None:
            record["val_acc"] = vals.get(id(m))
        if m.objective is not None and hasattr(m.objective, "current_temperature"):
            record["temperature"] = float(m.objective.current_temperature())
        m.history.append(record)
        history.append(m.run.path, record)  # live: readers see the epoch now (store.load_history)
        m.since_save += seconds / len(now)  # its share of the pass's time: K members' writes stay within budget
        last = epoch + 1 == m.epochs
        if (last and keep_last) or (not last and checkpoint_due(m.save_cost, m.since_save, budget)):
            started = time.perf_counter()
            m.run.save_checkpoint(m.state(epoch + 1), epoch + 1)
            m.save_cost, m.since_save = time.perf_counter() - started, 0.0


def train_pass(members: list[Member], spec: specs.Spec, *, teacher: nn.Module | None = None, device: torch.device,
               progress: bool = True, on_leave: Callable[[Member], None] | None = None,
               cache: logit_cache.LogitCache | None = None, workers: int = 1) -> _Stream:
    """Train ``members`` on the data stream of ``spec``, each from its resume epoch to its own last one.

    With a ``teacher``, each member's objective gets the teacher's logits of the same mixed
    batch; without one, members learn the (mixed, smoothed) labels. A member leaves when
    its last epoch ends (``on_leave``, which finishes its run: no final checkpoint then).
    ``workers``: members stepped at once (``_step_members``).
    """
    s = _Stream(spec, teacher, device, cache, workers)
    for m in members:
        m.start = m.load(state) if (state := m.run.load_checkpoint()) else 0
        history.reset(m.run.path, m.history)  # the live file tells what the checkpoint knows
    epochs = sorted({e for m in members for e in range(m.start, m.epochs)})
    if teacher is not None:
        teacher.eval()
    what = f"distil {len(members)} × {spec.student}" if teacher is not None else f"train {spec.arch}"
    bar = tqdm(total=len(epochs) * s.steps, desc=f"{what} on {spec.dataset}", leave=False, disable=not progress)
    active = list(members)
    try:
        for epoch in epochs:
            now = [m for m in active if m.start <= epoch < m.epochs]
            bar.set_postfix_str(f"epoch {epoch + 1}/{max(m.epochs for m in now)}, {len(now)} members")
            t0 = time.perf_counter()
            steps = _train_epoch(s, now, epoch, bar)
            _end_epoch(s, now, epoch, steps, time.perf_counter() - t0, keep_last=on_leave is None)
            for m in now:
                if epoch + 1 == m.epochs:
                    active.remove(m)
                    if on_leave is not None:
                        on_leave(m)
    finally:
        s.close()
        bar.close()
    return s


def _final(member: Member) -> dict[str, Any]:
    last = member.history[-1] if member.history else {}
    held = {"val_acc": last.get("val_acc")} if "val_acc" in last else {}
    return {"test_acc": last.get("test_acc"), **held, "train_loss": last.get("train_loss"),
            "train_seconds": sum(h["seconds"] for h in member.history), "history": member.history,
            "device": str(next(member.model.parameters()).device)}


def steps_per_epoch(spec: specs.Spec) -> int:
    return len(_dataset(spec, "train")) // spec.batch_size


def supervised(spec: specs.Supervised, run: RunDir, *, init_state: dict[str, torch.Tensor] | None = None,
               device: torch.device | None = None, progress: bool = True,
               compile: bool | None = None) -> dict[str, Any]:
    """Train ``spec`` on labels; returns the result written to the store (with train-set entropies)."""
    device = pick_device(device)
    info = data.dataset_info(spec.dataset, spec.preset)
    torch.manual_seed(spec.seed)
    init = spec.init if isinstance(spec.init, str) else "random"
    model = prepare_model(models.create(spec.arch, info.num_classes, preset=spec.preset, init=init,
                                         state=init_state), device)
    opt, sched = make_optimizer(spec, model, [], spec.epochs * steps_per_epoch(spec))
    compiled = compile_enabled(device, compile)
    member = Member(run, model, opt, sched, params=list(model.parameters()), epochs=spec.epochs, clip=spec.clip,
                    forward=compiled_forward(model, compiled), scaler=scaler(device))
    run.begin()
    train_pass([member], spec, device=device, progress=progress)
    result = {**_final(member), **record(device, compiled)}
    if spec.epochs == 0:
        outs, y = predict_many([model], data.build_dataset(spec.dataset, "test", preset=spec.preset),
                               device=device)
        result["test_acc"] = metrics.accuracy(outs[0], y)
        if spec.val_fraction:
            outs, y = predict_many([model], _dataset(spec, "val"), device=device)
            result["val_acc"] = metrics.accuracy(outs[0], y)
    train_plain = _dataset(spec, "train", train_transform=False)
    logits, labels = predict(model, train_plain, device=device)
    summary = metrics.teacher_summary(logits, labels)
    result.update({"train_acc": summary["accuracy"], "train_h_all": summary["h_all"],
                   "train_h_minus_max": summary["h_minus_max"]})
    run.finish(result, weights=model)
    return result


def _student(spec: specs.Distill, run: RunDir, state, num_classes: int, steps: int, device: torch.device,
             compiled: bool) -> Member:
    torch.manual_seed(spec.seed)  # every student of the pass starts from the same weights
    init = spec.student_init if isinstance(spec.student_init, str) else "random"
    model = prepare_model(models.create(spec.student, num_classes, preset=spec.preset, init=init, state=state),
                           device)
    objective = losses.for_spec(spec).to(device)
    extra = list(objective.extra_parameters())
    opt, sched = make_optimizer(spec, model, extra, spec.epochs * steps)
    run.begin()
    return Member(run, model, opt, sched, objective, params=list(model.parameters()) + extra, epochs=spec.epochs,
                  clip=spec.clip, forward=compiled_forward(model, compiled), scaler=scaler(device))


def distill_pass(group: list[specs.Distill], runs: list[RunDir], teacher: nn.Module, *,
                 student_states: list[dict[str, torch.Tensor] | None], device: torch.device | None = None,
                 progress: bool = True, use_cache: bool | None = None,
                 compile: bool | None = None) -> list[dict[str, Any]]:
    """Distil one student per spec in a single pass over their shared data stream.

    ``group`` shares ``Distill.share_key`` (teacher, dataset, seed, batch size, preset);
    each run is finished (its result written) the moment its last epoch ends.
    ``use_cache`` (default ``KDLIB_LOGIT_CACHE``, on): read and write the teacher's
    logits on this stream; ``compile`` (default ``KDLIB_COMPILE``, off): torch.compile.
    """
    if not group:
        return []
    if len({s.share_key for s in group}) != 1:
        raise ValueError("distill_pass() trains runs on one data stream (teacher, dataset, seed, batch size); "
                         "group them by Distill.share_key")
    device = pick_device(device)
    spec0 = group[0]
    info = data.dataset_info(spec0.dataset, spec0.preset)
    teacher = prepare_model(teacher, device)
    if teacher.num_classes != info.num_classes:
        raise ValueError(f"teacher predicts {teacher.num_classes} classes but {spec0.dataset} has {info.num_classes}")
    compiled = compile_enabled(device, compile)
    steps = steps_per_epoch(spec0)
    members = [_student(spec, run, state, info.num_classes, steps, device, compiled)
               for spec, run, state in zip(group, runs, student_states)]
    needs = [m for m in members if getattr(m.objective, "needs_teacher_logits", False)]
    if needs:
        plain = _dataset(spec0, "train", train_transform=False)
        t_logits, _ = predict(teacher, plain, device=device)
        for m in needs:
            m.objective.prepare(t_logits.to(device))
    results: dict[str, dict[str, Any]] = {}
    workers = member_threads(device)

    def leave(m: Member) -> None:
        results[m.run.id] = {**_final(m), **record(device, compiled, workers)}
        m.run.finish(results[m.run.id])
        m.model = m.forward = m.optimizer = None  # free its memory while the pass goes on

    cache = logit_cache.for_teacher(spec0, runs[0].path.parent, device, compiled, use_cache)
    train_pass(members, spec0, teacher=teacher_forward(teacher, compiled), device=device, progress=progress,
               on_leave=leave, cache=cache, workers=workers)
    for m in members:
        if m.run.id not in results:  # no epoch to train (epochs=0, or resumed at its end)
            leave(m)
    return [results[r.id] for r in runs]
