"""Fig. 5's supervisory-signal ablations: label smoothing of matched entropy, bottom-k shuffles."""
from __future__ import annotations

import math

import torch


def ls_entropy(eps: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Entropy of the label-smoothed one-hot: 1 - eps + eps/C on one class, eps/C on the others."""
    eps = torch.as_tensor(eps, dtype=torch.float64)
    top = 1 - eps + eps / num_classes
    rest = eps / num_classes
    return -(torch.special.xlogy(top, top) + (num_classes - 1) * torch.special.xlogy(rest, rest))


def ls_eps_for_entropy(target: torch.Tensor, num_classes: int, iters: int = 64) -> torch.Tensor:
    """Smoothing coefficient(s) whose label-smoothed distribution has entropy ``target`` (float64 bisection).

    The entropy rises monotonically from 0 (eps = 0, one-hot) to log C (eps = 1, uniform);
    64 halvings of [0, 1] match it far below 1e-6.
    """
    target = torch.as_tensor(target, dtype=torch.float64).clamp(0.0, math.log(num_classes))
    lo, hi = torch.zeros_like(target), torch.ones_like(target)
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = ls_entropy(mid, num_classes) < target
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def ls_log_targets(argmax: torch.Tensor, eps: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[B, C] float64 log-probabilities of label smoothing by ``eps`` ([B] or scalar) around ``argmax``."""
    eps = torch.as_tensor(eps, dtype=torch.float64, device=argmax.device).expand(argmax.shape[0]).unsqueeze(1)
    out = torch.log(eps / num_classes).expand(-1, num_classes).clone()
    return out.scatter_(1, argmax.unsqueeze(1), torch.log1p(-eps + eps / num_classes))


def shuffle_below_top_k(values: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep each row's k largest entries in place; move the other C - k to a random order of their positions.

    A fresh permutation per row and per call (from ``generator``, or torch's global RNG).
    Works on probabilities or log-probabilities alike, since only positions change.
    """
    b, c = values.shape
    order = values.argsort(dim=1, descending=True)
    rest_pos = order[:, k:]
    device = values.device if generator is None else generator.device
    perm = torch.rand(b, c - k, generator=generator, device=device).argsort(dim=1).to(values.device)
    moved = values.gather(1, rest_pos).gather(1, perm)
    return values.scatter(1, rest_pos, moved)

