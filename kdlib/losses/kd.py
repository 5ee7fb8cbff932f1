"""Vanilla KD (the study's Eq. 1) and its Fig. 5 target swaps."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib import checks
from kdlib.losses.base import DistillLoss, _inputs
from kdlib.losses.functional import kl_from_log_probs, softmax_entropy
from kdlib.losses.targets import ls_eps_for_entropy, ls_log_targets, shuffle_below_top_k
from kdlib.metrics import sorted_profile


TARGETS = ("teacher", "ls-global", "ls-instance", "bottom-k")


class KD(DistillLoss):
    """Vanilla knowledge distillation: T² · KL(softmax(t/T) || softmax(s/T)), summed over classes.

    Paper: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015;
    the study's Eq. 1 (Frank & Davis). Hinton et al. add a cross-entropy to the labels; the
    study does not. Default T = 4 (mdistiller's KD default; ImageNet configs there use 1).

    ``targets`` swaps the teacher's soft targets for the supervisory signals of the paper's
    Fig. 5 (the student side is unchanged):

    * ``"teacher"``: softmax(t/T).
    * ``"ls-global"``: label smoothing around the teacher's argmax with one coefficient for the
      whole set, chosen so its entropy equals that of the *average sorted* teacher
      distribution at T over the training set (Fig. 4's profile, argmax first; :meth:`prepare`
      says why not the plain class average). Needs :meth:`prepare` with the teacher's
      training-set logits.
    * ``"ls-instance"``: the same, with a coefficient per sample matching the entropy of that
      sample's softmax(t/T).
    * ``"bottom-k"``: the teacher's top-``k`` probabilities stay at their classes; the other
      C - k are moved to a random order of the remaining positions, freshly per sample and
      call (torch's global RNG, or ``self.generator`` if set).
    """

    name = "kd"

    def __init__(self, temperature: float = 4.0, targets: str = "teacher", k: int | None = None) -> None:
        super().__init__()
        self.temperature = checks.check_temperature(temperature)
        if targets not in TARGETS:
            raise ValueError(f"targets={targets!r} is not one of {', '.join(TARGETS)}")
        if targets == "bottom-k":
            if not checks.is_int(k) or k < 1:
                raise ValueError(f"targets='bottom-k' needs an integer k >= 1 (top classes kept in place), got k={k!r}")
        elif k is not None:
            raise ValueError(f"k={k!r} only applies to targets='bottom-k' (got targets={targets!r}); drop k")
        self.targets, self.k = targets, k
        self.needs_teacher_logits = targets == "ls-global"
        self.global_eps: float | None = None
        self.generator: torch.Generator | None = None

    def prepare(self, teacher_logits_train: torch.Tensor) -> None:
        """ls-global: the coefficient whose smoothed one-hot has the entropy of the average sorted profile.

        Sorted (argmax first), as the paper's "average softmax distribution" of Figs. 4-5:
        averaging the unsorted rows mixes classes, and on a balanced set every class is the
        argmax of about 1/C of the samples, so that average is nearly uniform whatever the
        teacher's confidence and its matched coefficient is near 1 at every T (about 0.996
        at T = 1 for a confident 10-class teacher): almost uniform targets.
        """
        if self.targets != "ls-global":
            return
        t = teacher_logits_train.detach().double()
        profile = sorted_profile(t, self.temperature, dtype=torch.float64)
        h = -torch.special.xlogy(profile, profile).sum()
        self.global_eps = float(ls_eps_for_entropy(h, t.shape[1]))
        self.num_classes = t.shape[1]

    def target_log_probs(self, teacher_logits: torch.Tensor) -> torch.Tensor:
        """[B, C] log-probabilities the student is matched to (float64 for the label-smoothing targets)."""
        t = teacher_logits.detach().float()
        log_p = F.log_softmax(t / self.temperature, dim=1)
        c = t.shape[1]
        if self.targets == "teacher":
            return log_p
        if self.targets == "bottom-k":
            if self.k >= c:
                raise ValueError(f"k={self.k} must be below the number of classes C={c}")
            return shuffle_below_top_k(log_p, self.k, self.generator)
        if self.targets == "ls-global":
            if self.global_eps is None:
                raise RuntimeError("targets='ls-global' needs loss.prepare(teacher_logits_train) before the first call")
            if c != self.num_classes:
                raise ValueError(f"prepared for {self.num_classes} classes, got logits with {c}")
            eps = torch.tensor(self.global_eps, dtype=torch.float64)
        else:
            eps = ls_eps_for_entropy(softmax_entropy(t.double(), self.temperature), c)
        return ls_log_targets(t.argmax(1), eps, c)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        log_q = F.log_softmax(s / self.temperature, dim=1)
        log_p = self.target_log_probs(t).to(log_q.dtype)
        return self.temperature ** 2 * kl_from_log_probs(log_p, log_q).mean()
