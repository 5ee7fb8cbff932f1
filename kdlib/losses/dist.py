"""DIST (Huang et al., NeurIPS 2022)."""
from __future__ import annotations

import torch.nn.functional as F

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs
from kdlib.losses.functional import pearson


class DIST(DistillLoss):
    """DIST: match correlations, not values: 1 - Pearson across classes and across samples.

    Paper: Huang et al., "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022;
    follows hunto/DIST_KD and hunto/image_classification_sota
    ``lib/models/losses/dist_kd.py``. On P = softmax(z/T): beta · (1 - mean row-wise
    Pearson) (inter-class relation, per sample) + gamma · (1 - mean column-wise Pearson)
    (intra-class relation, per class over the batch), times T².

    Class defaults: beta = gamma = 1, T = 1 (the loss's own ImageNet values). The reference
    configs multiply the whole loss by ``kd_loss_weight`` 2 on both CIFAR-100 (T = 4) and
    ImageNet, which ``losses.method_settings`` folds into beta = gamma = 2. The original
    adds a cross-entropy to the labels; we do not.
    """

    name = "dist"

    def __init__(self, temperature: float = 1.0, beta: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)
        self.beta, self.gamma = checks.check_number("beta", beta), checks.check_number("gamma", gamma)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        T = self.temperature
        ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
        inter = 1 - pearson(ps, pt).mean()
        intra = 1 - pearson(ps.T, pt.T).mean()
        return T ** 2 * (self.beta * inter + self.gamma * intra)
