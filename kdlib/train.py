"""One training loop for everything the study trains.

``supervised`` trains a model on labels (label-smoothed cross-entropy): general
pretraining, teachers, target-trained and finetuned students. ``distill`` trains K
students against one teacher by output matching only (no label loss, as the paper): the
teacher runs once per batch and every student sees the identical augmented batch, so a
temperature sweep costs one teacher pass instead of K.

Resume is exact: every random draw of an epoch (shuffle, augmentation, MixUp/CutMix) is
seeded from (seed, epoch), and model, optimizer, scheduler and loss state are
checkpointed at the end of every epoch.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from torch import nn
from tqdm.auto import tqdm

from kdlib import data, metrics, models, specs
from kdlib.device import pick as pick_device  # loud: CUDA asked for but unusable is an error
from kdlib.store import RunDir

SGD_MOMENTUM = 0.9


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed every global RNG from (seed, epoch): timm's Mixup draws from numpy's."""
    s = (seed * 1_000_003 + epoch * 7919) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def autocast(device: torch.device):
    """bf16 autocast on GPUs that have it; full precision elsewhere (and for the losses)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def clip_per_tensor(params: list[nn.Parameter], max_norm: float) -> None:
    """Per-layer clipping (paper Sect. 3.1): each parameter tensor's gradient to L2 norm <= max_norm."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return
    norms = torch._foreach_norm(grads)
    scales = [torch.clamp(max_norm / (n + 1e-6), max=1.0) for n in norms]
    torch._foreach_mul_(grads, scales)


@dataclass
class Member:
    """One model trained in a pass: its run folder, optimizer, schedule and objective."""

    run: RunDir
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    objective: nn.Module | None = None      # a kdlib loss (distillation) or None (labels)
    history: list[dict[str, Any]] = field(default_factory=list)
    params: list[nn.Parameter] = field(default_factory=list)

    def state(self, epoch: int) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "objective": self.objective.state_dict() if self.objective is not None else {},
                "epoch": epoch, "history": self.history}

    def load(self, state: dict[str, Any]) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.objective is not None:
            self.objective.load_state_dict(state["objective"])
        self.history = list(state["history"])
        return int(state["epoch"])


def _optimizer(spec: specs.Spec, model: nn.Module, extra: list[nn.Parameter], steps: int):
    kwargs = {"momentum": SGD_MOMENTUM} if spec.optimizer == "sgd" else {}
    opt = create_optimizer_v2(model, opt=spec.optimizer, lr=spec.lr, weight_decay=spec.weight_decay, **kwargs)
    if extra:
        opt.add_param_group({"params": extra, "weight_decay": 0.0})
    # Half-period cosine decay over every step of the run (paper Sect. 3.1).
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    return opt, sched


def _mixer(num_classes: int, label_smoothing: float) -> Mixup:
    """Per batch a 50/50 choice of MixUp or CutMix with alpha = 1 (paper Sect. 3.1)."""
    return Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
                 label_smoothing=label_smoothing, num_classes=num_classes)


def _one_hot(num_classes: int, label_smoothing: float) -> Callable:
    """The no-mixing counterpart of ``_mixer``: smoothed one-hot targets, images unchanged."""
    def mix(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        off = label_smoothing / num_classes
        target = torch.full((len(y), num_classes), off, device=y.device)
        return x, target.scatter_(1, y[:, None], 1.0 - label_smoothing + off)
    return mix


@torch.no_grad()
def predict(model: nn.Module, dataset, *, batch_size: int = 512, device: torch.device | None = None,
            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of ``model`` on every item of ``dataset`` (no augmentation)."""
    outs, labels = predict_many([model], dataset, batch_size=batch_size, device=device, progress=progress)
    return outs[0], labels


@torch.no_grad()
def predict_many(models_: list[nn.Module], dataset, *, batch_size: int = 512, device: torch.device | None = None,
                 progress: bool = False) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Logits of several models from one pass over the data (each batch is loaded once)."""
    device = device or pick_device()
    was_training = [m.training for m in models_]
    for m in models_:
        m.eval()
    outs: list[list[torch.Tensor]] = [[] for _ in models_]
    labels = []
    loader = data.make_loader(dataset, batch_size, train=False)
    for images, y in tqdm(loader, desc="predict", leave=False, disable=not progress):
        x = _to_input(images, device)
        with autocast(device):
            for out, m in zip(outs, models_):
                out.append(m(x).float().cpu())
        labels.append(y)
    for m, t in zip(models_, was_training):
        m.train(t)
    return [torch.cat(o) for o in outs], torch.cat(labels)


def _to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = images.to(device, non_blocking=True).float().div_(255)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def fit(members: list[Member], spec: specs.Spec, *, teacher: nn.Module | None = None, device: torch.device,
        progress: bool = True, on_epoch: Callable[[int], None] | None = None) -> None:
    """Train ``members`` together from their common start epoch to ``spec.epochs``.

    With a ``teacher``, each member's objective gets the teacher's logits of the same
    mixed batch; without one, members learn the (mixed, smoothed) labels.
    """
    info = data.dataset_info(spec.dataset, spec.preset)
    train_set = data.build_dataset(spec.dataset, "train", preset=spec.preset)
    test_set = data.build_dataset(spec.dataset, "test", preset=spec.preset)
    smoothing = getattr(spec, "label_smoothing", 0.0) if teacher is None else 0.0
    mixer = _mixer(info.num_classes, smoothing) if getattr(spec, "mixup", True) else _one_hot(info.num_classes, smoothing)
    soft_ce = SoftTargetCrossEntropy()
    eval_every = specs.preset(spec.preset).eval_every
    start = {m.run.id: (m.load(s) if (s := m.run.load_checkpoint()) else 0) for m in members}
    epoch0 = min(start.values())
    if any(v != epoch0 for v in start.values()):
        raise RuntimeError(f"members of one pass resume from different epochs {start}; run them separately")
    if teacher is not None:
        teacher.eval()
    steps_per_epoch = len(train_set) // spec.batch_size
    what = f"distil {len(members)} × {spec.student}" if teacher is not None else f"train {spec.arch}"
    bar = tqdm(total=(spec.epochs - epoch0) * steps_per_epoch, desc=f"{what} on {spec.dataset}", leave=False,
               disable=not progress)
    for epoch in range(epoch0, spec.epochs):
        seed_epoch(spec.seed, epoch)
        for m in members:
            m.model.train()
            if m.objective is not None:
                m.objective.set_epoch(epoch, spec.epochs)
        loader = data.make_loader(train_set, spec.batch_size, train=True, seed=spec.seed, epoch=epoch)
        sums = torch.zeros(len(members), device=device)
        t0 = time.perf_counter()
        bar.set_postfix_str(f"epoch {epoch + 1}/{spec.epochs}")
        for images, labels in loader:
            x = _to_input(images, device)
            x, soft = mixer(x, labels.to(device))
            hard = soft.argmax(1)  # the label with the larger share of a mixed image
            if teacher is not None:
                with torch.no_grad(), autocast(device):
                    t_logits = teacher(x).float()
            for i, m in enumerate(members):
                with autocast(device):
                    logits = m.model(x)
                if teacher is not None:
                    loss = m.objective(logits.float(), t_logits, hard)
                else:
                    loss = soft_ce(logits.float(), soft)
                m.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_per_tensor(m.params, spec.clip)
                m.optimizer.step()
                m.scheduler.step()
                sums[i] += loss.detach()
            bar.update(1)
        seconds = time.perf_counter() - t0
        last = epoch + 1 == spec.epochs
        accs = [None] * len(members)
        if last or (epoch + 1) % eval_every == 0:
            outs, y = predict_many([m.model for m in members], test_set, device=device)
            accs = [metrics.accuracy(o, y) for o in outs]
        steps = max(1, len(loader))
        for i, m in enumerate(members):
            record = {"epoch": epoch + 1, "train_loss": sums[i].item() / steps, "test_acc": accs[i],
                      "seconds": seconds}
            if m.objective is not None and hasattr(m.objective, "current_temperature"):
                record["temperature"] = float(m.objective.current_temperature())
            m.history.append(record)
            m.run.save_checkpoint(m.state(epoch + 1), epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch + 1)
    bar.close()


def _final(member: Member) -> dict[str, Any]:
    last = member.history[-1] if member.history else {}
    return {"test_acc": last.get("test_acc"), "train_loss": last.get("train_loss"),
            "train_seconds": sum(h["seconds"] for h in member.history), "history": member.history,
            "device": str(next(member.model.parameters()).device)}


def _steps(spec: specs.Spec) -> int:
    n = len(data.build_dataset(spec.dataset, "train", preset=spec.preset))
    return spec.epochs * (n // spec.batch_size)


def supervised(spec: specs.Supervised, run: RunDir, *, init_state: dict[str, torch.Tensor] | None = None,
               device: torch.device | None = None, progress: bool = True) -> dict[str, Any]:
    """Train ``spec`` on labels; returns the result written to the store (with train-set entropies)."""
    device = pick_device(device)
    info = data.dataset_info(spec.dataset, spec.preset)
    torch.manual_seed(spec.seed)
    init = spec.init if isinstance(spec.init, str) else "random"
    model = _prepare_model(models.create(spec.arch, info.num_classes, preset=spec.preset, init=init,
                                         state=init_state), device)
    opt, sched = _optimizer(spec, model, [], _steps(spec))
    member = Member(run, model, opt, sched, params=list(model.parameters()))
    run.begin()
    fit([member], spec, device=device, progress=progress)
    result = _final(member)
    if spec.epochs == 0:
        outs, y = predict_many([model], data.build_dataset(spec.dataset, "test", preset=spec.preset),
                               device=device)
        result["test_acc"] = metrics.accuracy(outs[0], y)
    train_plain = data.build_dataset(spec.dataset, "train", preset=spec.preset, train_transform=False)
    logits, labels = predict(model, train_plain, device=device)
    summary = metrics.teacher_summary(logits, labels)
    result.update({"train_acc": summary["accuracy"], "train_h_all": summary["h_all"],
                   "train_h_minus_max": summary["h_minus_max"]})
    run.finish(result, weights=model)
    return result


def distill(group: list[specs.Distill], runs: list[RunDir], teacher: nn.Module, *,
            student_states: list[dict[str, torch.Tensor] | None], device: torch.device | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    """Distil one student per spec in a single pass over the data, sharing the teacher's forward."""
    if not group:
        return []
    keys = {s.share_key for s in group}
    if len(keys) != 1:
        raise ValueError("distill() trains runs that differ only in temperature/method; group them by share_key")
    device = pick_device(device)
    spec0 = group[0]
    info = data.dataset_info(spec0.dataset, spec0.preset)
    teacher = _prepare_model(teacher, device)
    if teacher.num_classes != info.num_classes:
        raise ValueError(f"teacher predicts {teacher.num_classes} classes but {spec0.dataset} has {info.num_classes}")
    steps = _steps(spec0)
    members = []
    for spec, run, state in zip(group, runs, student_states):
        torch.manual_seed(spec.seed)  # every student of the pass starts from the same weights
        init = spec.student_init if isinstance(spec.student_init, str) else "random"
        model = _prepare_model(models.create(spec.student, info.num_classes, preset=spec.preset, init=init,
                                             state=state), device)
        objective = spec.build_loss().to(device)
        extra = list(objective.extra_parameters())
        opt, sched = _optimizer(spec, model, extra, steps)
        members.append(Member(run, model, opt, sched, objective, params=list(model.parameters()) + extra))
        run.begin()
    needs = [m for m in members if getattr(m.objective, "needs_teacher_logits", False)]
    if needs:
        plain = data.build_dataset(spec0.dataset, "train", preset=spec0.preset, train_transform=False)
        t_logits, _ = predict(teacher, plain, device=device)
        for m in needs:
            m.objective.prepare(t_logits.to(device))
    fit(members, spec0, teacher=teacher, device=device, progress=progress)
    results = []
    for m in members:
        result = _final(m)
        m.run.finish(result)
        results.append(result)
    return results
