"""A member of a training pass and what it is built from: optimizer, schedule, mixing, placement.

``kdlib.train`` runs the loop; this module holds the pieces that do not depend on it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from torch import nn

from kdlib import specs
from kdlib.numerics import amp_dtype, channels_last
from kdlib.store import RunDir

SGD_MOMENTUM = 0.9


@dataclass
class Member:
    """One model trained in a pass: its run folder, optimizer, schedule, objective and length."""

    run: RunDir
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    objective: nn.Module | None = None      # a kdlib loss (distillation) or None (labels)
    history: list[dict[str, Any]] = field(default_factory=list)
    params: list[nn.Parameter] = field(default_factory=list)
    epochs: int = 0                         # its own last epoch
    clip: float = 1.0
    forward: Callable | None = None         # the (maybe compiled) training forward; None: ``model``
    scaler: Any = None                      # fp16 gradient scaler (GPUs without bf16)
    start: int = 0                          # the epoch it resumes from
    rng: Any = None                         # its own copy of torch's RNG state
    draws: bool = True                      # its step draws random numbers (measured at each epoch's first)
    loss_sum: Any = None
    save_cost: float = 0.0                  # seconds its last checkpoint took (0: none yet)
    since_save: float = 0.0                 # training seconds since then

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The training forward: compiled when it was (never ``forward or model``: see ``teacher_forward``)."""
        return (self.model if self.forward is None else self.forward)(x)

    def state(self, epoch: int) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "objective": self.objective.state_dict() if self.objective is not None else {},
                "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                "epoch": epoch, "history": self.history}

    def load(self, state: dict[str, Any]) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.objective is not None:
            self.objective.load_state_dict(state["objective"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        return int(state["epoch"])


@contextlib.contextmanager
def own_rng_of(member: Member, device: torch.device):
    """Run a member's step on its own RNG state, so that members never consume each other's draws."""
    outer = torch.get_rng_state()
    torch.set_rng_state(member.rng[0])
    if device.type == "cuda":
        outer_cuda = torch.cuda.get_rng_state(device)
        torch.cuda.set_rng_state(member.rng[1], device)
    try:
        yield
    finally:
        member.rng = (torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
        torch.set_rng_state(outer)
        if device.type == "cuda":
            torch.cuda.set_rng_state(outer_cuda, device)


def make_optimizer(spec: specs.Spec, model: nn.Module, extra: list[nn.Parameter], steps: int):
    kwargs = {"momentum": SGD_MOMENTUM} if spec.optimizer == "sgd" else {}
    opt = create_optimizer_v2(model, opt=spec.optimizer, lr=spec.lr, weight_decay=spec.weight_decay, **kwargs)
    if extra:
        opt.add_param_group({"params": extra, "weight_decay": 0.0})
    # Half-period cosine decay over every step of the run (paper Sect. 3.1).
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    return opt, sched


def mixer(num_classes: int, label_smoothing: float) -> Mixup:
    """Per batch a 50/50 choice of MixUp or CutMix with alpha = 1 (paper Sect. 3.1)."""
    return Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
                 label_smoothing=label_smoothing, num_classes=num_classes)


def one_hot(num_classes: int, label_smoothing: float) -> Callable:
    """The no-mixing counterpart of ``mixer``: smoothed one-hot targets, images unchanged."""
    def mix(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        off = label_smoothing / num_classes
        target = torch.full((len(y), num_classes), off, device=y.device)
        return x, target.scatter_(1, y[:, None], 1.0 - label_smoothing + off)
    return mix


def to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = images.to(device, non_blocking=True).float().div_(255)
    if channels_last(device):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if channels_last(device):
        model = model.to(memory_format=torch.channels_last)
    return model


def scaler(device: torch.device):
    return torch.amp.GradScaler("cuda") if amp_dtype(device) == torch.float16 else None


def compiled_forward(model: nn.Module, on: bool) -> Callable | None:
    return torch.compile(model) if on else None


def teacher_forward(teacher: nn.Module, on: bool) -> Callable:
    """The teacher's forward, compiled when asked. (Never ``compiled or teacher``: a compiled
    module's truth value calls ``len()``, which a classifier does not have.)"""
    compiled = compiled_forward(teacher, on)
    return teacher if compiled is None else compiled
