"""Output-matching distillation losses, addressable by name.

``build("dkd", temperature=4, beta=8)`` returns a :class:`DistillLoss`; ``names()`` lists
what exists (``kdlib.methods`` holds the names and hyperparameters). Every loss maps
``(student_logits [B, C], teacher_logits [B, C], labels [B])`` to a scalar (mean over the
batch). The study distils by output matching only (paper Sect. 3.1), so no loss here adds
a cross-entropy term to the labels, even where the method's paper trains with one; each
docstring says whether the original does.

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

Layout (one file per idea, as timm's ``timm/loss/``): ``functional`` holds the shared
pieces (temperature-scaled KL, z-scoring, masked softmax, Pearson correlation,
entropy) once, ``targets`` the Fig. 5 ablation targets, ``base`` the base class, and
each method is one module whose ``forward`` is its math. ``settings`` holds each
method's hyperparameters per dataset family, from its reference configs
(``method_settings("dkd", dataset_family("fmnist-fine"), epochs=30)``; docs/methods.md).
"""
from __future__ import annotations

from kdlib import methods
from kdlib.losses.base import DistillLoss
from kdlib.losses.ctkd import CTKD
from kdlib.losses.dist import DIST
from kdlib.losses.dkd import DKD
from kdlib.losses.eakd import EAKD
from kdlib.losses.functional import (kl_from_log_probs, masked_log_softmax, pearson, soft_kl, softmax_entropy,
                                     two_bin_log_probs, zscore)
from kdlib.losses.kd import KD, TARGETS
from kdlib.losses.lskd import LSKD
from kdlib.losses.mlkd import MLKD
from kdlib.losses.rld import RLD
from kdlib.losses.settings import FAMILIES, dataset_family, method_settings, method_source
from kdlib.losses.targets import ls_entropy, ls_eps_for_entropy, ls_log_targets, shuffle_below_top_k

__all__ = [
    "DistillLoss", "build", "for_spec", "names",
    "kl_from_log_probs", "soft_kl", "masked_log_softmax", "two_bin_log_probs", "zscore",
    "pearson", "softmax_entropy", "ls_entropy", "ls_eps_for_entropy", "ls_log_targets", "shuffle_below_top_k",
    "KD", "DKD", "EAKD", "CTKD", "LSKD", "MLKD", "RLD", "DIST", "TARGETS",
    "FAMILIES", "dataset_family", "method_settings", "method_source",
]

_REGISTRY: dict[str, type[DistillLoss]] = {cls.name: cls for cls in (KD, DKD, EAKD, CTKD, LSKD, MLKD, RLD, DIST)}


def names() -> list[str]:
    """The loss names, sorted (``kdlib.methods`` is their vocabulary)."""
    return sorted(_REGISTRY)


def build(name: str, **hparams) -> DistillLoss:
    """The loss named ``name`` with the given hyperparameters (others at their defaults)."""
    methods.check_method(name, hparams)
    return _REGISTRY[name](**hparams)


def for_spec(spec) -> DistillLoss:
    """The loss module of a distillation spec (its temperature, unless None, overrides the method's default)."""
    hparams = dict(spec.method_args)
    if spec.temperature is not None:
        hparams["temperature"] = spec.temperature
    return build(spec.method, **hparams)
