"""One pass of the teacher over the training set, and what it says about temperature (paper Sect. 4.3, 4.5).

Accuracy, the relative entropies H_all and H_-max at T = 1, how concentrated the non-argmax
mass is, the average sorted profile (Fig. 4) and, when the pretraining's label space is
known, the share of target classes it already separated (``traits.class_overlap``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib import checks
from kdlib.traits import Overlap, class_overlap

TOP_K = 5   # "how concentrated": share of non-argmax mass in the top 5 others


def class_map_from_logits(pretrain_logits: Any, labels: Any, target_classes: Sequence[str],
                          pretrain_classes: Sequence[str] | None = None) -> dict[str, str]:
    """Target class -> the pretraining class its images most often get, from the pretraining head.

    Run the teacher's *pretrained* model (its original head) over the target training set
    and pass its logits: the result is a ``class_map`` for ``class_overlap``. Car models
    that ImageNet calls "sports car" all land on one class, so they share it (Sect. 4.5).
    """
    z, y = _as_tensor(pretrain_logits, "pretrain_logits"), _as_tensor(labels, "labels").long().reshape(-1)
    if z.ndim != 2 or z.shape[0] != y.shape[0] or z.shape[0] == 0:
        raise ValueError(f"pretrain_logits {tuple(z.shape)} and labels {tuple(y.shape)} must be [N > 0, P] and [N]")
    names = list(pretrain_classes) if pretrain_classes is not None else [str(i) for i in range(z.shape[1])]
    top = z.argmax(1)
    out = {}
    for k, t in enumerate(target_classes):
        hits = top[y == k]
        if hits.numel():
            out[str(t)] = names[int(_mode(hits))]
    return out


def _mode(x):
    """Most frequent value (the smallest on ties): deterministic."""
    values, counts = x.unique(return_counts=True)
    return values[counts.argmax()]


@dataclass(frozen=True)
class Diagnostics:
    """What one pass of the teacher over the training set says about temperature (paper Sect. 4.3).

    ``top_k_share``: mean share of each sample's non-argmax probability mass held by the
    ``top_k`` largest other classes (``top_k_uniform`` is that share for an even spread):
    near the uniform value the teacher's "dark knowledge" is as flat as label smoothing.
    """

    num_samples: int
    num_classes: int
    accuracy: float | None          # percent, on the data given (the training set)
    h_all: float
    h_minus_max: float
    top_k: int
    top_k_share: float
    top_k_uniform: float
    profile: tuple[float, ...]      # average sorted softmax at T = 1 (paper Fig. 4)
    overlap: Overlap | None = None

    def summary(self) -> dict[str, Any]:
        out = {"samples": self.num_samples, "classes": self.num_classes, "accuracy": self.accuracy,
               "H_all": self.h_all, "H_-max": self.h_minus_max,
               f"top-{self.top_k} share of non-argmax mass": self.top_k_share,
               "(even spread would give)": self.top_k_uniform,
               "top probability (avg profile)": self.profile[0]}
        if self.overlap is not None:
            out["class overlap with pretraining"] = self.overlap.share
        return out


def _as_tensor(x: Any, what: str):
    import torch

    try:
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{what} must be a tensor or array, got {type(x).__name__}") from e


def diagnostics_from_logits(logits: Any, labels: Any = None, *, target_classes: Sequence[str] | None = None,
                            pretrain_classes: str | Sequence[str] | None = None,
                            class_map: Mapping[str, Any] | None = None) -> Diagnostics:
    """``Diagnostics`` of precomputed teacher logits [N, C] (and labels [N], optional)."""
    import torch

    from kdlib import metrics

    z = checks.check_logits(_as_tensor(logits, "logits").double(), what="teacher logits", finite=True,
                            hint=" (samples of a non-empty training set; temperature needs C >= 2 classes)")
    n, c = z.shape
    acc = None
    if labels is not None:
        y = _as_tensor(labels, "labels").long().reshape(-1)
        if y.shape[0] != n:
            raise ValueError(f"{y.shape[0]} labels for {n} teacher outputs; pass the labels of the same samples")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= c):
            raise ValueError(f"labels span {int(y.min())}..{int(y.max())} but the teacher predicts {c} classes; "
                             "the teacher's head does not match this dataset (wrong number of classes)")
        acc = metrics.accuracy(z, y)
    if target_classes is not None and len(target_classes) != c:
        raise ValueError(f"{len(target_classes)} target class names for a teacher with {c} outputs; "
                         "the teacher does not match this dataset (wrong number of classes)")
    h_minus_max, k, share = float("nan"), 0, 1.0
    if c >= 3:
        h_minus_max = metrics.relative_entropy_without_max(z)
        rest = torch.softmax(metrics.without_argmax(z), dim=1)  # renormalized non-argmax mass
        k = min(TOP_K, c - 1)
        share = rest.topk(k, dim=1).values.sum(1).mean().item()
    overlap = None
    if target_classes is not None and (pretrain_classes is not None or class_map is not None):
        overlap = class_overlap(target_classes, pretrain_classes, class_map)
    return Diagnostics(num_samples=n, num_classes=c, accuracy=acc, h_all=metrics.relative_entropy(z),
                       h_minus_max=h_minus_max, top_k=k, top_k_share=share,
                       top_k_uniform=(k / (c - 1)) if c >= 3 else 1.0,
                       profile=tuple(metrics.sorted_profile(z).double().tolist()), overlap=overlap)


def diagnose(teacher: Any, data: Any = None, *, target_classes: Sequence[str] | None = None,
             pretrain_classes: str | Sequence[str] | None = None, class_map: Mapping[str, Any] | None = None,
             batch_size: int = 512, device: Any = None, progress: bool = False) -> Diagnostics:
    """One pass of ``teacher`` over ``data`` (no augmentation, no distillation) -> ``Diagnostics``.

    ``teacher``: a model (``data`` a dataset of ``(uint8 image, label)``: the training
    set), or precomputed ``(logits, labels)``. Target class names default to
    ``data.classes`` when the dataset has them.
    """
    if isinstance(teacher, tuple) and len(teacher) == 2 and data is None:
        logits, labels = teacher
    elif isinstance(teacher, (tuple, list)):
        raise ValueError("precomputed teacher outputs must be a (logits, labels) pair, with data=None")
    else:
        logits, labels = _predict(teacher, data, batch_size=batch_size, device=device, progress=progress)
        if target_classes is None and getattr(data, "classes", None) is not None:
            target_classes = list(data.classes)
    return diagnostics_from_logits(logits, labels, target_classes=target_classes,
                                   pretrain_classes=pretrain_classes, class_map=class_map)


def _predict(model: Any, dataset: Any, **kwargs: Any):
    from torch import nn

    from kdlib import train

    if not isinstance(model, nn.Module):
        raise ValueError(f"teacher must be a torch model, (logits, labels), a Supervised spec or Diagnostics; "
                         f"got {type(model).__name__}")
    if dataset is None:
        raise ValueError("a teacher model needs data=: the training set, yielding (uint8 image, label)")
    try:
        n = len(dataset)
    except TypeError as e:
        raise ValueError(f"data must be a sized dataset of (uint8 image, label), got {type(dataset).__name__}") from e
    if n == 0:
        raise ValueError("data is an empty dataset: the teacher diagnostics need the training images")
    ds_classes = getattr(dataset, "num_classes", None)
    if ds_classes is None and getattr(dataset, "classes", None) is not None:
        ds_classes = len(dataset.classes)
    model_classes = getattr(model, "num_classes", None)
    if isinstance(ds_classes, int) and isinstance(model_classes, int) and ds_classes != model_classes:
        raise ValueError(f"the teacher predicts {model_classes} classes but the dataset has {ds_classes}; "
                         "pass the teacher trained on this dataset (wrong number of classes)")
    if kwargs.get("device") is None:  # run where the model already is; never move the user's model
        kwargs["device"] = next((p.device for p in model.parameters()), None)
    elif isinstance(kwargs["device"], str):
        import torch
        kwargs["device"] = torch.device(kwargs["device"])
    logits, labels = train.predict(model, dataset, **kwargs)
    if isinstance(ds_classes, int) and logits.shape[1] != ds_classes:
        raise ValueError(f"the teacher outputs {logits.shape[1]} logits but the dataset has {ds_classes} classes; "
                         "pass the teacher trained on this dataset (wrong number of classes)")
    return logits, labels
