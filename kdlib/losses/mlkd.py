"""Multi-level logit distillation (Jin, Wang & Lin, CVPR 2023)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.losses.base import DistillLoss, _inputs, _positive
from kdlib.losses.functional import soft_kl


def _at_or_below_median(x: torch.Tensor) -> torch.Tensor:
    """1.0 where x is at or below its median (numpy's 50th percentile, linear), else 0.0."""
    return (x <= torch.quantile(x, 0.5)).float()


class MLKD(DistillLoss):
    """Multi-level logit distillation: instance, batch and class alignment at several temperatures.

    Paper: Jin, Wang & Lin, "Multi-Level Logit Distillation", CVPR 2023; follows
    Jin-Ying/Multi-Level-Logit-Distillation ``mdistiller/distillers/KD_ours.py``. For each
    T in (temperature, *other_temperatures), with P = softmax(z/T) [B, C]:

    * instance: T² · KL per sample;
    * batch: ||P_t P_tᵀ - P_s P_sᵀ||² / B (B x B sample-similarity Gram matrices);
    * class: ||P_tᵀ P_t - P_sᵀ P_s||² / C (C x C class-correlation matrices).

    Confidence masks from the teacher's softmax at T = 1: samples whose top probability,
    and classes whose summed probability over the batch, are at or below the median.
    The reference feeds a weak and a strong augmentation of each image; the loss it
    returns is the masked instance, batch and class terms on the weak view plus the
    unmasked instance term on the strong view. We have one (already augmented) batch and
    apply both to it: instance weight 1 + mask, batch and class terms masked. The
    reference multiplies each masked term by the mask's mean after reducing it, which
    scales rather than selects; we select, keeping its normalisation (1/B, 1/B, 1/C).

    Default temperatures (4, then 2, 3, 5, 6) are the reference's for CIFAR-100 (its
    ``KD.TEMPERATURE`` default 4 plus fixed 2, 3, 5, 6); no ImageNet config is published
    (LSKD's ImageNet MLKD config sets the first to 1). The original adds cross-entropy on
    both views; we do not.
    """

    name = "mlkd"

    def __init__(self, temperature: float = 4.0, other_temperatures: tuple[float, ...] = (2.0, 3.0, 5.0, 6.0)) -> None:
        super().__init__()
        self.temperature = _positive(temperature)
        self.other_temperatures = tuple(_positive(T, "other_temperatures entry") for T in other_temperatures)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        b, c = s.shape
        p1 = F.softmax(t, dim=1)
        keep_sample = _at_or_below_median(p1.max(1).values)
        keep_class = _at_or_below_median(p1.sum(0))
        loss = s.new_zeros(())
        for T in (self.temperature, *self.other_temperatures):
            ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
            instance = ((1 + keep_sample) * soft_kl(s, t, T)).mean()
            batch = (((pt @ pt.T - ps @ ps.T) ** 2) * keep_sample).sum() / b
            klass = (((pt.T @ pt - ps.T @ ps) ** 2) * keep_class).sum() / c
            loss = loss + instance + batch + klass
        return loss
