"""Refined logit distillation (Sun et al., ICCV 2025)."""
from __future__ import annotations

import torch.nn.functional as F

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs, _warmup_factor
from kdlib.losses.functional import kl_from_log_probs, soft_kl, two_bin_log_probs


class RLD(DistillLoss):
    """Refined logit distillation: sample confidence (SCD) plus masked class correlation (MCD).

    Paper: Sun et al., "Knowledge Distillation with Refined Logits", ICCV 2025 (arXiv
    2408.07703); follows zju-SWJ/RLD ``mdistiller/distillers/RLD.py``.

    * SCD: binary KL between the teacher's [argmax class, rest] and the student's
      [label class, rest], at ``alpha_temperature``, · alpha_temperature²;
    * MCD: KL at ``temperature`` over the classes whose teacher logit is below the label
      class's (every class the teacher ranks at or above the label is masked), · T².

    Loss: min(epoch / warmup, 1) · (alpha · SCD + beta · MCD), epochs from 1.
    Defaults are the ImageNet settings (alpha = 1, beta = 0.5, T = 1, alpha_temperature = 1);
    CIFAR-100: beta = 8, T = 4. ``warmup`` = 20 is the CIFAR-100 value (ImageNet: 1).
    Per-family settings, with the warm-up as a fraction of the run: ``losses.method_settings``.
    The original adds a cross-entropy to the labels (weight 1); we do not. Needs labels:
    under MixUp/CutMix, the label with the larger share.
    """

    name = "rld"

    def __init__(self, temperature: float = 1.0, alpha: float = 1.0, beta: float = 0.5,
                 alpha_temperature: float = 1.0, warmup: float = 20) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)
        self.alpha, self.beta = checks.check_number("alpha", alpha), checks.check_number("beta", beta)
        self.alpha_temperature = checks.check_number("alpha_temperature", alpha_temperature, strict=True)
        self.warmup = checks.check_number("warmup", warmup)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        c = s.shape[1]
        Ta, T = self.alpha_temperature, self.temperature
        label = F.one_hot(labels, c).bool()
        top = F.one_hot(t.argmax(1), c).bool()
        scd = Ta ** 2 * kl_from_log_probs(two_bin_log_probs(F.log_softmax(t / Ta, 1), top),
                                          two_bin_log_probs(F.log_softmax(s / Ta, 1), label))
        at_or_above_label = t >= t.gather(1, labels.unsqueeze(1))
        mcd = soft_kl(s, t, T, mask=at_or_above_label)
        return _warmup_factor(self.epoch, self.warmup) * (self.alpha * scd + self.beta * mcd).mean()
