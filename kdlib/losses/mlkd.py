"""Multi-level logit distillation (Jin, Wang & Lin, CVPR 2023), one-view variant."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs
from kdlib.losses.functional import soft_kl


def _share_at_or_below_median(x: torch.Tensor) -> torch.Tensor:
    """Fraction of x at or below its median (numpy's 50th percentile, linear), as the reference's mask mean."""
    return (x <= torch.quantile(x, 0.5)).float().mean()


class MLKD(DistillLoss):
    """Multi-level logit distillation, **one-view variant**: instance, batch and class alignment at several T.

    Paper: Jin, Wang & Lin, "Multi-Level Logit Distillation", CVPR 2023; follows
    Jin-Ying/Multi-Level-Logit-Distillation ``mdistiller/distillers/KD_ours.py``. For each
    T in (temperature, *other_temperatures), with P = softmax(z/T) [B, C]:

    * instance: T² · KL, mean over the batch;
    * batch: ||P_t P_tᵀ - P_s P_sᵀ||² / B (B x B sample-similarity Gram matrices);
    * class: ||P_tᵀ P_t - P_sᵀ P_s||² / C (C x C class-correlation matrices).

    Masks, as the reference: from the teacher's softmax at T = 1, samples whose top
    probability, and classes whose summed probability over the batch, are at or below the
    median. The reference multiplies each *reduced* term by its mask (``(term * mask).mean()``),
    so a term is scaled by the mask's mean (about 1/2), not restricted to the masked
    samples; we do the same.

    Why "one-view": the reference feeds a weak and a strong augmentation of each image
    and returns the masked instance, batch and class terms of the weak view plus the
    unmasked instance term of the strong view. kdlib's loop has one (already augmented)
    batch, so both views are that batch: the loss is
    Σ_T instance·(1 + m̄) + batch·m̄ + class·c̄, with m̄, c̄ the sample and class mask means.

    Default temperatures (4, then 2, 3, 5, 6) are the reference's CIFAR-100 ones (its
    ``KD.TEMPERATURE`` default 4 plus fixed 2, 3, 5, 6); its ImageNet configs set the first
    to 1 (``losses.method_settings``). The reference weights all these terms by
    ``KD_WEIGHT`` (0.9 CIFAR, 0.5 ImageNet) against a cross-entropy on both views; with the
    KD terms alone that weight is only a scale and we leave it out, with the CE.
    """

    name = "mlkd"

    def __init__(self, temperature: float = 4.0, other_temperatures: tuple[float, ...] = (2.0, 3.0, 5.0, 6.0)) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)
        self.other_temperatures = tuple(checks.check_temperature(T, "other_temperatures entry")
                                        for T in other_temperatures)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        b, c = s.shape
        p1 = F.softmax(t, dim=1)
        sample_share = _share_at_or_below_median(p1.max(1).values)
        class_share = _share_at_or_below_median(p1.sum(0))
        loss = s.new_zeros(())
        for T in (self.temperature, *self.other_temperatures):
            ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
            instance = soft_kl(s, t, T).mean()
            batch = ((pt @ pt.T - ps @ ps.T) ** 2).sum() / b
            klass = ((pt.T @ pt - ps.T @ ps) ** 2).sum() / c
            loss = loss + instance * (1 + sample_share) + batch * sample_share + klass * class_share
        return loss
