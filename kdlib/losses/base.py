"""The base class of every loss and the argument checks they share."""
from __future__ import annotations

import inspect

import torch
import torch.nn as nn


def _hparam_names(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p != "self"]


def _inputs(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Student logits (with their graph) and teacher logits (a constant), both float32 [B, C]."""
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"expected student and teacher logits of the same shape [B, C], got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    return student_logits.float(), teacher_logits.detach().float()


def _warmup_factor(epoch: int, warmup: float) -> float:
    """Linear warm-up min(epoch / warmup, 1) of DKD/RLD, with epochs counted from 1 as there."""
    return 1.0 if warmup <= 0 else min((epoch + 1) / warmup, 1.0)



class DistillLoss(nn.Module):
    """Base of every loss: ``forward(student_logits, teacher_logits, labels) -> scalar``.

    Subclasses store each ``__init__`` argument as an attribute of the same name; ``hparams``
    reads them back for logging.
    """

    name: str = ""
    needs_teacher_logits: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.total_epochs: int | None = None

    @property
    def hparams(self) -> dict:
        return {k: getattr(self, k) for k in _hparam_names(type(self))}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called at the start of each epoch (0-based); losses with schedules read it."""
        self.epoch, self.total_epochs = int(epoch), int(total_epochs)

    def extra_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the loss itself (CTKD's temperature); the loop optimizes them too."""
        return []

    def prepare(self, teacher_logits_train: torch.Tensor) -> None:
        """Set-level statistics from the teacher's logits on the whole training set; no-op by default."""

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

