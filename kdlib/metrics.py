"""What the study measures: accuracy, (relative) entropy and the sorted softmax profile.

Relative entropy follows the paper (Sect. 4.3): H(p) / H(u) with u uniform over the C
classes, so 0 is one-hot and 1 is uniform. ``H_-max`` drops the argmax class and
renormalizes the rest (denominator log(C - 1)): it asks how evenly the teacher spreads
the mass it does not give to its answer. Both are averaged over samples, at T = 1 by
default (the authors' earlier code).
"""
from __future__ import annotations

import math

import torch

from kdlib import checks


def _check_logits(logits: torch.Tensor, min_classes: int = 2) -> torch.Tensor:
    return checks.check_logits(logits, min_classes=min_classes).double()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    logits = _check_logits(logits, 1)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels shape {tuple(labels.shape)} does not match logits {tuple(logits.shape)}")
    return 100.0 * (logits.argmax(1) == labels).double().mean().item()


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Per-row Shannon entropy in nats; 0 log 0 = 0."""
    return -torch.special.xlogy(probs, probs).sum(-1)


def relative_entropy(logits: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean of H(softmax(z/T)) / log C: 0 for one-hot, 1 for uniform (paper's H_all)."""
    checks.check_temperature(temperature)
    z = _check_logits(logits)
    p = torch.softmax(z / temperature, dim=1)
    return (entropy(p) / math.log(z.shape[1])).mean().item()


def relative_entropy_without_max(logits: torch.Tensor, temperature: float = 1.0) -> float:
    """Paper's H_-max: drop each row's argmax, renormalize, divide by log(C - 1)."""
    checks.check_temperature(temperature)
    z = _check_logits(logits, 3)
    rest = without_argmax(torch.log_softmax(z / temperature, dim=1))
    p = torch.softmax(rest, dim=1)  # renormalized over the C - 1 other classes
    return (entropy(p) / math.log(z.shape[1] - 1)).mean().item()


def without_argmax(values: torch.Tensor) -> torch.Tensor:
    """Each row with its argmax entry removed: [N, C] -> [N, C - 1]."""
    keep = torch.ones_like(values, dtype=torch.bool)
    keep.scatter_(1, values.argmax(1, keepdim=True), False)
    return values[keep].view(values.shape[0], values.shape[1] - 1)


def sorted_profile(logits: torch.Tensor, temperature: float = 1.0, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Average of each sample's softmax at T sorted in decreasing order (paper Fig. 4), computed in float64."""
    checks.check_temperature(temperature)
    z = _check_logits(logits, 1)
    p = torch.softmax(z / temperature, dim=1)
    return p.sort(dim=1, descending=True).values.mean(0).to(dtype)


def profile_gaps(logits: torch.Tensor, temperature: float) -> dict[str, float]:
    """The two numbers the paper quotes at T = 40: argmax-vs-next gap and bottom-class spread.

    ``top_gap``: average profile's first minus second entry (paper: < 0.01 at T = 40);
    ``bottom_spread``: max minus min over the bottom half of the profile (< 0.0001).
    """
    prof = sorted_profile(logits, temperature).double()
    bottom = prof[prof.numel() // 2:]
    top_gap = (prof[0] - prof[1]).item() if prof.numel() > 1 else 0.0
    return {"top_gap": top_gap, "bottom_spread": (bottom.max() - bottom.min()).item()}


def teacher_summary(logits: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
    """Accuracy (when labels are given) and both relative entropies at T = 1.

    H_-max needs three classes (two remain once the argmax is dropped): None for two.
    """
    h_rest = relative_entropy_without_max(logits) if logits.ndim == 2 and logits.shape[1] >= 3 else None
    out = {"h_all": relative_entropy(logits), "h_minus_max": h_rest}
    if labels is not None:
        out["accuracy"] = accuracy(logits, labels)
    return out
