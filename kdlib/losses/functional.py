"""The pieces several losses share: temperature-scaled KL, masked softmax, z-scoring, correlation, entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_from_log_probs(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-row KL(p || q) from log-probabilities, with 0 log 0 = 0 (entries where p = 0 add nothing)."""
    absent = torch.isneginf(log_p)
    return (log_p.exp() * (log_p - log_q).masked_fill(absent, 0.0)).sum(-1)


def masked_log_softmax(z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """log_softmax over the classes where ``mask`` is False; masked classes get log-probability -inf.

    A row with every class masked becomes uniform (as the references' "subtract a large
    constant" trick gives), so two such rows are at KL 0 and pass no gradient.
    """
    if mask is None:
        return F.log_softmax(z, dim=-1)
    z = z.masked_fill(mask, float("-inf")).masked_fill(mask.all(-1, keepdim=True), 0.0)
    return F.log_softmax(z, dim=-1)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample T² · KL(softmax(t/T) || softmax(s/T)) (Hinton et al. 2015), optionally over unmasked classes.

    ``temperature`` may be a tensor (CTKD learns it). Classes where ``mask`` is True are left
    out of both distributions, which are renormalized over the rest.
    """
    log_p = masked_log_softmax(teacher_logits / temperature, mask)
    log_q = masked_log_softmax(student_logits / temperature, mask)
    return temperature ** 2 * kl_from_log_probs(log_p, log_q)


def two_bin_log_probs(log_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, 2] log-probabilities of the mass on the masked class(es) and of the rest (DKD's b, RLD's SCD)."""
    inside = log_p.masked_fill(~mask, float("-inf")).logsumexp(-1)
    outside = log_p.masked_fill(mask, float("-inf")).logsumexp(-1)
    return torch.stack([inside, outside], dim=-1)


def zscore(logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Each row to mean 0 and standard deviation 1 (LSKD); unbiased std, eps added to it as in the reference."""
    mean = logits.mean(-1, keepdim=True)
    return (logits - mean) / (logits.std(-1, keepdim=True) + eps)


def pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-wise Pearson correlation of two [N, D] tensors (DIST); ``eps`` guards constant rows."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)


def softmax_entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-row Shannon entropy (nats) of softmax(logits / T); ``metrics.entropy`` takes probabilities."""
    log_p = F.log_softmax(logits / temperature, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)

