"""Output-matching distillation losses, addressable by name.

``build("dkd", temperature=4, beta=8)`` returns a :class:`DistillLoss`; ``names()`` lists
what exists. Every loss maps ``(student_logits [B, C], teacher_logits [B, C], labels [B])``
to a scalar (mean over the batch). The study distils by output matching only (paper
Sect. 3.1), so no loss here adds a cross-entropy term to the labels, even where the
method's paper trains with one; each docstring says whether the original does.

Conventions shared by every loss:

* teacher logits are constants: they are detached inside, and both inputs are computed
  on in float32 whatever precision the models ran in;
* softmaxes are taken in log-space (``log_softmax``) so that T = 40 and logits of
  magnitude 100 stay finite;
* ``labels`` are class indices; under MixUp/CutMix the training loop passes the label
  with the larger share of each mixed image. Only ``dkd`` and ``rld`` read them;
* ``set_epoch(epoch, total_epochs)`` is called at each epoch start, with ``epoch``
  counted from 0. Schedules written per epoch in the references (DKD's and RLD's
  warm-up, CTKD's curriculum) count from 1 there, so epoch ``e`` here is their ``e + 1``.

The shared pieces (temperature-scaled KL, z-scoring, masked softmax, Pearson
correlation, entropy) are the small functions below; each method is one class whose
``forward`` is its math.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "DistillLoss", "build", "names", "register",
    "kl_from_log_probs", "soft_kl", "masked_log_softmax", "two_bin_log_probs", "zscore",
    "pearson", "entropy", "ls_entropy", "ls_eps_for_entropy", "ls_log_targets", "shuffle_below_top_k",
]

_REGISTRY: dict[str, type["DistillLoss"]] = {}


def register(name: str) -> Callable[[type["DistillLoss"]], type["DistillLoss"]]:
    """Class decorator: make a loss available to :func:`build` under ``name``."""
    def add(cls: type[DistillLoss]) -> type[DistillLoss]:
        if name in _REGISTRY:
            raise ValueError(f"a distillation loss named {name!r} is already registered ({_REGISTRY[name].__name__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return add


def names() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(_REGISTRY)


def _hparam_names(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p != "self"]


def build(name: str, **hparams) -> "DistillLoss":
    """The loss registered as ``name`` with the given hyperparameters (others at their defaults)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown distillation loss {name!r}; valid names are {', '.join(names())}")
    cls = _REGISTRY[name]
    valid = _hparam_names(cls)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {name!r}; "
                         f"valid hyperparameters of {name!r} are {', '.join(valid)}")
    return cls(**hparams)


def _positive(value, what: str = "temperature") -> float:
    """``value`` as a float, or a ValueError unless it is a finite number > 0."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(f"{what}={value!r} must be a finite number > 0")
    return float(value)


def _non_negative(value, what: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        raise ValueError(f"{what}={value!r} must be a finite number >= 0")
    return float(value)


def _inputs(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Student logits (with their graph) and teacher logits (a constant), both float32 [B, C]."""
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"expected student and teacher logits of the same shape [B, C], got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    return student_logits.float(), teacher_logits.detach().float()


def _warmup_factor(epoch: int, warmup: float) -> float:
    """Linear warm-up min(epoch / warmup, 1) of DKD/RLD, with epochs counted from 1 as there."""
    return 1.0 if warmup <= 0 else min((epoch + 1) / warmup, 1.0)


# --------------------------------------------------------------------------- shared pieces

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


def entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-row Shannon entropy (nats) of softmax(logits / T)."""
    log_p = F.log_softmax(logits / temperature, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


# --------------------------------------------------------------------------- supervisory-signal ablations

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


# --------------------------------------------------------------------------- base class

class DistillLoss(nn.Module):
    """Base of every loss: ``forward(student_logits, teacher_logits, labels) -> scalar``.

    Subclasses store each ``__init__`` argument as an attribute of the same name; ``hparams``
    reads them back for logging.
    """

    name: str = ""
    needs_teacher_logits: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.total_epochs: int | None = None

    @property
    def hparams(self) -> dict:
        return {k: getattr(self, k) for k in _hparam_names(type(self))}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called at the start of each epoch (0-based); losses with schedules read it."""
        self.epoch, self.total_epochs = int(epoch), int(total_epochs)

    def extra_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the loss itself (CTKD's temperature); the loop optimizes them too."""
        return []

    def prepare(self, teacher_logits_train: torch.Tensor) -> None:
        """Set-level statistics from the teacher's logits on the whole training set; no-op by default."""

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# --------------------------------------------------------------------------- methods

TARGETS = ("teacher", "ls-global", "ls-instance", "bottom-k")


@register("kd")
class KD(DistillLoss):
    """Vanilla knowledge distillation: T² · KL(softmax(t/T) || softmax(s/T)), summed over classes.

    Paper: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015;
    the study's Eq. 1 (Frank & Davis). Hinton et al. add a cross-entropy to the labels; the
    study does not. Default T = 4 (mdistiller's KD default; ImageNet configs there use 1).

    ``targets`` swaps the teacher's soft targets for the supervisory signals of the paper's
    Fig. 5 (the student side is unchanged):

    * ``"teacher"``: softmax(t/T).
    * ``"ls-global"``: label smoothing around the teacher's argmax with one coefficient for the
      whole set, chosen so its entropy equals that of the *average* teacher distribution at T
      over the training set. Needs :meth:`prepare` with the teacher's training-set logits.
    * ``"ls-instance"``: the same, with a coefficient per sample matching the entropy of that
      sample's softmax(t/T).
    * ``"bottom-k"``: the teacher's top-``k`` probabilities stay at their classes; the other
      C - k are moved to a random order of the remaining positions, freshly per sample and
      call (torch's global RNG, or ``self.generator`` if set).
    """

    def __init__(self, temperature: float = 4.0, targets: str = "teacher", k: int | None = None) -> None:
        super().__init__()
        self.temperature = _positive(temperature)
        if targets not in TARGETS:
            raise ValueError(f"targets={targets!r} is not one of {', '.join(TARGETS)}")
        if targets == "bottom-k":
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"targets='bottom-k' needs an integer k >= 1 (top classes kept in place), got k={k!r}")
        elif k is not None:
            raise ValueError(f"k={k!r} only applies to targets='bottom-k' (got targets={targets!r}); drop k")
        self.targets, self.k = targets, k
        self.needs_teacher_logits = targets == "ls-global"
        self.global_eps: float | None = None
        self.generator: torch.Generator | None = None

    def prepare(self, teacher_logits_train: torch.Tensor) -> None:
        if self.targets != "ls-global":
            return
        t = teacher_logits_train.detach().double()
        mean_p = F.softmax(t / self.temperature, dim=1).mean(0)
        h = -torch.special.xlogy(mean_p, mean_p).sum()
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
            eps = ls_eps_for_entropy(entropy(t.double(), self.temperature), c)
        return ls_log_targets(t.argmax(1), eps, c)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        log_q = F.log_softmax(s / self.temperature, dim=1)
        log_p = self.target_log_probs(t).to(log_q.dtype)
        return self.temperature ** 2 * kl_from_log_probs(log_p, log_q).mean()


@register("dkd")
class DKD(DistillLoss):
    """Decoupled KD: alpha · TCKD + beta · NCKD, both · T², after a linear warm-up.

    Paper: Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022; follows
    megvii-research/mdistiller ``mdistiller/distillers/DKD.py``. TCKD is the binary KL
    between teacher and student on [label class, all others]; NCKD the KL among the
    non-label classes only. The loss is scaled by min(epoch / warmup, 1) (epochs from 1).

    Defaults are the ImageNet settings (alpha = 1, beta = 0.5, T = 1); CIFAR-100: alpha = 1,
    beta = 8, T = 4. ``warmup`` = 20 epochs is the CIFAR-100 value (ImageNet configs use 1).
    The original adds a cross-entropy to the labels (weight 1); we do not.
    NCKD leaves the label class out of both softmaxes (the reference subtracts 1000 from
    it, which stops being enough for logits of magnitude ~1000). Needs labels: under
    MixUp/CutMix, the label with the larger share.
    """

    def __init__(self, temperature: float = 1.0, alpha: float = 1.0, beta: float = 0.5, warmup: float = 20) -> None:
        super().__init__()
        self.temperature = _positive(temperature)
        self.alpha, self.beta = _non_negative(alpha, "alpha"), _non_negative(beta, "beta")
        self.warmup = _non_negative(warmup, "warmup")

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        T = self.temperature
        gt = F.one_hot(labels, s.shape[1]).bool()
        tckd = T ** 2 * kl_from_log_probs(two_bin_log_probs(F.log_softmax(t / T, 1), gt),
                                          two_bin_log_probs(F.log_softmax(s / T, 1), gt))
        nckd = soft_kl(s, t, T, mask=gt)
        return _warmup_factor(self.epoch, self.warmup) * (self.alpha * tckd + self.beta * nckd).mean()


@register("eakd")
class EAKD(DistillLoss):
    """Entropy-based adaptive KD: per-sample KD weighted by teacher and student entropy.

    Paper: Su et al., "EA-KD: Entropy-based Adaptive Knowledge Distillation", ICCV 2025
    (arXiv 2311.13621); follows cpsu00/EA-KD ``mdistiller/distillers/KD.py``. Each sample's
    T² · KL is multiplied by w = (H_t + H_t · H_s / log C) / 2, with H_t, H_s the teacher's and
    student's entropies at ``entropy_temperature``; w is a constant (detached).

    Defaults: T = 1 (ImageNet) and entropy_temperature = 3 (the reference code's default,
    used for CIFAR-100 with T = 4; its ImageNet config sets 2). The entropy bound is log C (the reference's ImageNet path; its
    CIFAR path divides by the constant 100 instead). The original keeps the cross-entropy
    to the labels; we do not.
    """

    def __init__(self, temperature: float = 1.0, entropy_temperature: float = 3.0) -> None:
        super().__init__()
        self.temperature = _positive(temperature)
        self.entropy_temperature = _positive(entropy_temperature, "entropy_temperature")

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        h_t, h_s = entropy(t, self.entropy_temperature), entropy(s.detach(), self.entropy_temperature)
        w = (h_t + h_t * h_s / math.log(s.shape[1])) / 2
        return (w * soft_kl(s, t, self.temperature)).mean()


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; gradient times -strength backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


@register("ctkd")
class CTKD(DistillLoss):
    """Curriculum temperature KD (global): a learnable T that the student's KD loss pushes *up*.

    Paper: Li et al., "Curriculum Temperature for Knowledge Distillation", AAAI 2023;
    follows zhengli97/CTKD (``models/temp_global.py``, ``train_student.py``,
    ``helper/loops.py``). T = t_start + t_end · sigmoid(theta), so T stays in
    (t_start, t_start + t_end) = (1, 21). theta receives the KD gradient through a gradient
    reversal layer whose strength rises from 0 to 1 as 0.5 · (1 - cos(pi · e / cosine_epochs))
    over the first ``cosine_epochs`` (e counted from 1, then held at 1): the temperature
    ascends the loss the student descends. The loss is T² · KL at the learned T.

    theta starts at 1 as in the reference (T ≈ 15.6) unless ``temperature`` gives the
    initial value, which must lie strictly inside (t_start, t_start + t_end).
    ``cosine_epochs`` = 10 is the CIFAR-100 value (ImageNet script: 5). The original adds a
    cross-entropy to the labels (weight 1 on ImageNet, 0.1 on CIFAR-100); we do not.
    """

    def __init__(self, temperature: float | None = None, t_start: float = 1.0, t_end: float = 20.0,
                 cosine_epochs: float = 10) -> None:
        super().__init__()
        self.t_start = _positive(t_start, "t_start")
        self.t_end = _positive(t_end, "t_end")
        self.cosine_epochs = _positive(cosine_epochs, "cosine_epochs")
        self.temperature = None if temperature is None else _positive(temperature)
        if temperature is None:
            theta = 1.0
        else:
            frac = (self.temperature - self.t_start) / self.t_end
            if not 0 < frac < 1:
                raise ValueError(f"temperature={temperature!r} (CTKD's initial temperature) must lie strictly "
                                 f"between t_start={self.t_start:g} and t_start + t_end={self.t_start + self.t_end:g}; "
                                 f"omit it to start where the reference does (about 15.6)")
            theta = math.log(frac / (1 - frac))
        self.theta = nn.Parameter(torch.tensor(theta))

    def reversal_strength(self) -> float:
        e = min(self.epoch + 1, self.cosine_epochs)
        return 0.5 * (1 - math.cos(math.pi * e / self.cosine_epochs))

    def learned_temperature(self) -> torch.Tensor:
        theta = _ReverseGrad.apply(self.theta, self.reversal_strength())
        return self.t_start + self.t_end * torch.sigmoid(theta)

    def current_temperature(self) -> float:
        return float(self.t_start + self.t_end * torch.sigmoid(self.theta.detach()))

    def extra_parameters(self) -> list[nn.Parameter]:
        return [self.theta]

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        return soft_kl(s, t, self.learned_temperature()).mean()


@register("lskd")
class LSKD(DistillLoss):
    """KD on z-scored logits: each sample's teacher and student logits to mean 0, std 1 first.

    Paper: Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024;
    follows sunshangquan/logit-standardization-KD ``mdistiller/distillers/KD.py``
    (std unbiased, eps = 1e-7 added to it). Loss: T² · KL at the base temperature.

    Default T = 2, the reference's ``--base-temp`` default and its value for most CIFAR-100
    pairs (some use 3). The reference weights KD by 9 against a 0.1 cross-entropy to the
    labels; with KD alone that weight is only a scale and we leave it out, with the CE.
    """

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = _positive(temperature)

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        return soft_kl(zscore(s), zscore(t), self.temperature).mean()


def _at_or_below_median(x: torch.Tensor) -> torch.Tensor:
    """1.0 where x is at or below its median (numpy's 50th percentile, linear), else 0.0."""
    return (x <= torch.quantile(x, 0.5)).float()


@register("mlkd")
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


@register("rld")
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
    The original adds a cross-entropy to the labels (weight 1); we do not. Needs labels:
    under MixUp/CutMix, the label with the larger share.
    """

    def __init__(self, temperature: float = 1.0, alpha: float = 1.0, beta: float = 0.5,
                 alpha_temperature: float = 1.0, warmup: float = 20) -> None:
        super().__init__()
        self.temperature = _positive(temperature)
        self.alpha, self.beta = _non_negative(alpha, "alpha"), _non_negative(beta, "beta")
        self.alpha_temperature = _positive(alpha_temperature, "alpha_temperature")
        self.warmup = _non_negative(warmup, "warmup")

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


@register("dist")
class DIST(DistillLoss):
    """DIST: match correlations, not values: 1 - Pearson across classes and across samples.

    Paper: Huang et al., "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022;
    follows hunto/DIST_KD and hunto/image_classification_sota
    ``lib/models/losses/dist_kd.py``. On P = softmax(z/T): beta · (1 - mean row-wise
    Pearson) (inter-class relation, per sample) + gamma · (1 - mean column-wise Pearson)
    (intra-class relation, per class over the batch), times T².

    Defaults are the ImageNet settings (beta = gamma = 1, T = 1); CIFAR-100: beta = gamma = 2,
    T = 4. The original adds a cross-entropy to the labels; we do not.
    """

    def __init__(self, temperature: float = 1.0, beta: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__()
        self.temperature = _positive(temperature)
        self.beta, self.gamma = _non_negative(beta, "beta"), _non_negative(gamma, "gamma")

    def forward(self, student_logits, teacher_logits, labels):
        s, t = _inputs(student_logits, teacher_logits)
        T = self.temperature
        ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
        inter = 1 - pearson(ps, pt).mean()
        intra = 1 - pearson(ps.T, pt.T).mean()
        return T ** 2 * (self.beta * inter + self.gamma * intra)
