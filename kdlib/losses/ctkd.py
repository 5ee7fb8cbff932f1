"""Curriculum temperature KD (Li et al., AAAI 2023), the global variant."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs
from kdlib.losses.functional import soft_kl


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; gradient times -strength backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


class CTKD(DistillLoss):
    """Curriculum temperature KD (global): a learnable T that the student's KD loss pushes *up*.

    Paper: Li et al., "Curriculum Temperature for Knowledge Distillation", AAAI 2023;
    follows zhengli97/CTKD (``models/temp_global.py``, ``train_student.py``,
    ``helper/loops.py``). T = t_start + t_end · sigmoid(theta), so T stays in
    (t_start, t_start + t_end) = (1, 21). theta receives the KD gradient through a gradient
    reversal layer whose strength rises from 0 to 1 as 0.5 · (1 - cos(pi · e / cosine_epochs))
    over the first ``cosine_epochs`` (e counted from 1, then held at 1): the temperature
    ascends the loss the student descends. The loss is T² · KL at the learned T.

    **How theta is optimized (the curriculum's step size).** In the reference theta is one
    more parameter of the student's SGD, so the reversal strength scales its steps: that
    *is* the curriculum. Put in an AdamW group it would not be (Adam divides the gradient
    by its running scale, so a strength of 0.02 or 1 gives nearly the same step). So theta
    is not handed to the student's optimizer (``extra_parameters`` is empty): the loss
    steps it itself with plain SGD, as the reference's (lr ``temperature_lr``, momentum
    ``temperature_momentum``, weight decay ``temperature_weight_decay``; CIFAR-100: 0.05,
    0.9, 5e-4), inside ``backward`` (a post-accumulate-grad hook), whatever optimizer
    trains the student. Its lr follows a half-period cosine over the run's epochs (the
    study's schedule; the reference decays it in steps with the student's). The momentum
    buffer is a module buffer, so a resumed run continues exactly.

    theta starts at 1 as in the reference (T ≈ 15.6) unless ``temperature`` gives the
    initial value, which must lie strictly inside (t_start, t_start + t_end).
    ``cosine_epochs`` = 10 is the CIFAR-100 value (ImageNet script: 5). The original adds a
    cross-entropy to the labels (weight 1 on ImageNet, 0.1 on CIFAR-100); we do not.
    """

    name = "ctkd"

    def __init__(self, temperature: float | None = None, t_start: float = 1.0, t_end: float = 20.0,
                 cosine_epochs: float = 10, temperature_lr: float = 0.05, temperature_momentum: float = 0.9,
                 temperature_weight_decay: float = 5e-4) -> None:
        super().__init__()
        self.t_start = checks.check_number("t_start", t_start, strict=True)
        self.t_end = checks.check_number("t_end", t_end, strict=True)
        self.cosine_epochs = checks.check_number("cosine_epochs", cosine_epochs, strict=True)
        self.temperature_lr = checks.check_number("temperature_lr", temperature_lr)
        self.temperature_momentum = checks.check_number("temperature_momentum", temperature_momentum)
        self.temperature_weight_decay = checks.check_number("temperature_weight_decay", temperature_weight_decay)
        self.temperature = None if temperature is None else checks.check_temperature(temperature)
        self.theta = nn.Parameter(torch.tensor(self._initial_theta(temperature)))
        self.register_buffer("theta_momentum", torch.zeros(()))
        self.theta.register_post_accumulate_grad_hook(self._step_theta)

    def _initial_theta(self, temperature: float | None) -> float:
        if temperature is None:
            return 1.0
        frac = (self.temperature - self.t_start) / self.t_end
        if not 0 < frac < 1:
            raise ValueError(f"temperature={temperature!r} (CTKD's initial temperature) must lie strictly "
                             f"between t_start={self.t_start:g} and t_start + t_end={self.t_start + self.t_end:g}; "
                             f"omit it to start where the reference does (about 15.6)")
        return math.log(frac / (1 - frac))

    def theta_lr(self) -> float:
        """The temperature's SGD step size this epoch: ``temperature_lr`` on a half-period cosine."""
        if not self.total_epochs:
            return self.temperature_lr
        return self.temperature_lr * 0.5 * (1 + math.cos(math.pi * self.epoch / self.total_epochs))

    @torch.no_grad()
    def _step_theta(self, theta: torch.Tensor) -> None:
        """One SGD step (torch.optim.SGD's rule, no dampening) on the reversed gradient, then clear it."""
        d = theta.grad + self.temperature_weight_decay * theta
        self.theta_momentum.mul_(self.temperature_momentum).add_(d)
        theta.sub_(self.theta_lr() * self.theta_momentum)
        theta.grad = None

    def reversal_strength(self) -> float:
        e = min(self.epoch + 1, self.cosine_epochs)
        return 0.5 * (1 - math.cos(math.pi * e / self.cosine_epochs))

    def learned_temperature(self) -> torch.Tensor:
        theta = _ReverseGrad.apply(self.theta, self.reversal_strength())
        return self.t_start + self.t_end * torch.sigmoid(theta)

    def current_temperature(self) -> float:
        return float(self.t_start + self.t_end * torch.sigmoid(self.theta.detach()))

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        return soft_kl(s, t, self.learned_temperature()).mean()
