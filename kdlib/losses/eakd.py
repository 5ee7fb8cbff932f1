"""Entropy-based adaptive KD (Su et al., ICCV 2025)."""
from __future__ import annotations

import math

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs
from kdlib.losses.functional import soft_kl, softmax_entropy


class EAKD(DistillLoss):
    """Entropy-based adaptive KD: per-sample KD weighted by teacher and student entropy.

    Paper: Su et al., "EA-KD: Entropy-based Adaptive Knowledge Distillation", ICCV 2025
    (arXiv 2311.13621); follows cpsu00/EA-KD ``mdistiller/distillers/KD.py``. Each sample's
    T² · KL is multiplied by w = (H_t + H_t · H_s / log C) / 2, with H_t, H_s the teacher's and
    student's entropies at ``entropy_temperature``; w is a constant (detached).

    Defaults: T = 1 (ImageNet) and entropy_temperature = 3 (the reference code's default,
    used for CIFAR-100 with T = 4; its ImageNet config sets 2; ``losses.method_settings``).
    The entropy bound is log C (the reference's ImageNet path; its CIFAR path divides by
    the constant 100 instead, see docs/divergences.md). The original keeps the
    cross-entropy to the labels; we do not.
    """

    name = "eakd"

    def __init__(self, temperature: float = 1.0, entropy_temperature: float = 3.0) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)
        self.entropy_temperature = checks.check_number("entropy_temperature", entropy_temperature, strict=True)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        h_t, h_s = softmax_entropy(t, self.entropy_temperature), softmax_entropy(s.detach(), self.entropy_temperature)
        w = (h_t + h_t * h_s / math.log(s.shape[1])) / 2
        return (w * soft_kl(s, t, self.temperature)).mean()
