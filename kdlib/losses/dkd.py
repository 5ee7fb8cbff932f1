"""Decoupled KD (Zhao et al., CVPR 2022)."""
from __future__ import annotations

import torch.nn.functional as F

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs, _warmup_factor
from kdlib.losses.functional import kl_from_log_probs, soft_kl, two_bin_log_probs


class DKD(DistillLoss):
    """Decoupled KD: alpha · TCKD + beta · NCKD, both · T², after a linear warm-up.

    Paper: Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022; follows
    megvii-research/mdistiller ``mdistiller/distillers/DKD.py``. TCKD is the binary KL
    between teacher and student on [label class, all others]; NCKD the KL among the
    non-label classes only. The loss is scaled by min(epoch / warmup, 1) (epochs from 1).

    Defaults are the ImageNet settings (alpha = 1, beta = 0.5, T = 1); CIFAR-100: alpha = 1,
    beta = 8, T = 4. ``warmup`` = 20 epochs is the CIFAR-100 value (ImageNet configs use 1).
    Per-family settings, with the warm-up as a fraction of the run: ``losses.method_settings``.
    The original adds a cross-entropy to the labels (weight 1); we do not.
    NCKD leaves the label class out of both softmaxes (the reference subtracts 1000 from
    it, which stops being enough for logits of magnitude ~1000). Needs labels: under
    MixUp/CutMix, the label with the larger share.
    """

    name = "dkd"

    def __init__(self, temperature: float = 1.0, alpha: float = 1.0, beta: float = 0.5, warmup: float = 20) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)
        self.alpha, self.beta = checks.check_number("alpha", alpha), checks.check_number("beta", beta)
        self.warmup = checks.check_number("warmup", warmup)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        T = self.temperature
        gt = F.one_hot(labels, s.shape[1]).bool()
        tckd = T ** 2 * kl_from_log_probs(two_bin_log_probs(F.log_softmax(t / T, 1), gt),
                                          two_bin_log_probs(F.log_softmax(s / T, 1), gt))
        nckd = soft_kl(s, t, T, mask=gt)
        return _warmup_factor(self.epoch, self.warmup) * (self.alpha * tckd + self.beta * nckd).mean()
