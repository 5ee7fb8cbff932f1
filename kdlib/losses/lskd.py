"""Logit standardization KD (Sun et al., CVPR 2024)."""
from __future__ import annotations

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs
from kdlib.losses.functional import soft_kl, zscore


class LSKD(DistillLoss):
    """KD on z-scored logits: each sample's teacher and student logits to mean 0, std 1 first.

    Paper: Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024;
    follows sunshangquan/logit-standardization-KD ``mdistiller/distillers/KD.py``
    (std unbiased, eps = 1e-7 added to it). Loss: T² · KL at the base temperature.

    Default T = 2, the reference's ``--base-temp`` default and its value for most CIFAR-100
    pairs (some use 3). The reference weights KD by 9 against a 0.1 cross-entropy to the
    labels; with KD alone that weight is only a scale and we leave it out, with the CE.
    """

    name = "lskd"

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        return soft_kl(zscore(s), zscore(t), self.temperature).mean()
