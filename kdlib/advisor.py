"""Which temperature for my setup? The paper's rules of thumb as an advisor you can check.

Frank & Davis end (Sect. 5) with rules of thumb meant to spare practitioners the
exhaustive grid search over T: AdamW is robust to T; with SGD small T wins early and
large T late; large T needs a teacher with general pretraining, little finetuning and a
dataset whose classes the pretraining knew; fine-grained datasets prefer higher T than
coarse ones; teachers trained from scratch prefer T near 1. This module turns them into
a recommendation for one setup and measures how good that recommendation is:

``diagnose``
    One pass of the teacher over the training set (no distillation): accuracy, the
    relative entropies H_all and H_-max at T = 1 (Sect. 4.3), how concentrated the
    non-argmax mass is, the average sorted profile (Fig. 4) and, when the pretraining's
    label space is known, the share of target classes it already separated (Sect. 4.5).
``advise`` / ``recommend``
    The rules as one small linear model of log2 T: each rule is one term (feature x
    weight), so every reason in the report is one term, tied to its diagnostic value and
    to the finding it comes from.
``calibrate``
    The same model refit on the stored sweeps: ridge regression shrunk toward the rules'
    weights (few sweeps: the rules; many: the data), each sweep weighted by how much T
    mattered in it, the shrinkage chosen by leave-one-out regret. Deterministic; saved
    as JSON under ``outputs/advisor/``.
``leave_one_setup_out``
    What the advice is worth: for every stored sweep, accuracy at the advised T against
    the best T of the sweep (regret), next to fixed T = 4, T = 1 and the best single T
    chosen on the other setups.
"""
from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib import paths, specs, store

# The paper's temperature grid (STUDY.md): advice is snapped to it unless told otherwise.
PAPER_TEMPERATURES: tuple[float, ...] = (1, 2, 3, 4, 5, 10, 20, 40)
T_MIN, T_MAX = 1.0, 40.0            # the range the paper studies
MIN_SETUPS = 6                      # fewer stored sweeps than this: the rules alone
LAMBDAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)   # shrinkage toward the rules, in sweeps
MIN_WEIGHT, MAX_WEIGHT = 0.25, 5.0  # accuracy spread (pp) of a sweep, clipped: its weight in the fit
TOP_K = 5                           # "how concentrated": share of non-argmax mass in the top 5 others
REFERENCE_BATCH = 128               # the paper's baseline batch size

# ----------------------------------------------------------------------------- the findings

FINDINGS: dict[str, str] = {
    "plateau": "accuracy rises from T = 1 to about T = 10 and then flattens, so large T is the default "
               "for a pretrained, lightly finetuned teacher (Sect. 4.2, Fig. 3)",
    "adamw": "AdamW is robust to the value of T (Sect. 4.2, Fig. 2)",
    "sgd": "with SGD, small T wins with short training and large T with long training; a larger batch "
           "delays the cross-over (Sect. 4.2, Figs. 2-3)",
    "finetune": "longer finetuning drives H_all toward 0 and H_-max toward 1 (label-smoothing-like "
                "targets) and lets small T catch up (Sect. 4.3, Table 1; Fig. 5)",
    "scratch": "teachers trained from scratch often do best at T = 1 (Sect. 4.3, Table 1)",
    "granularity": "fine-grained datasets prefer larger T; coarse ones plateau closer to T = 1 "
                   "(Sect. 4.5, Fig. 6)",
    "overlap": "when the pretraining never separated the target classes (Cars, Finer-Grained Birds) the "
               "trend reverses and small T wins (Sect. 4.5, Fig. 7)",
    "student": "larger T helps every student initialization, with a smaller gain for pretrained or "
               "finetuned students (Sect. 4.4, Table 2)",
    "relations": "the class relationships carry the signal even where softmax differences are tiny "
                 "(Sect. 4.2, Fig. 5)",
}


@dataclass(frozen=True)
class Feature:
    """One rule: a number computed from the setup, its weight on log2 T, and its finding."""

    name: str
    prior: float        # the rule's weight (log2 T per unit of the feature)
    finding: str
    meaning: str


# The rules. Units: log2 T (+1 doubles T). Weights marked in the docs as chosen: the paper
# gives directions, not magnitudes; calibration replaces them where the store has sweeps.
FEATURES: tuple[Feature, ...] = (
    Feature("base", 3.0, "plateau", "1 for every setup: the starting point, T = 8"),
    Feature("fine_grained", 0.6, "granularity", "+1 fine-grained classes, -1 coarse, 0 unknown"),
    Feature("scratch_teacher", -3.5, "scratch", "1 if the teacher was trained from scratch"),
    Feature("unknown_classes", -3.5, "overlap", "share of target classes the pretraining did not separate "
            "(pretrained teachers only)"),
    Feature("h_minus_max", -4.0, "finetune", "teacher's H_-max at T = 1, minus 0.8"),
    Feature("h_all", 0.0, "finetune", "teacher's H_all at T = 1, minus 0.3"),
    Feature("sgd", 0.0, "sgd", "1 with SGD"),
    Feature("sgd_short", -0.75, "sgd", "SGD only: halvings of training steps below the baseline"),
    Feature("adamw_short", 0.0, "adamw", "AdamW only: halvings of training steps below the baseline"),
    Feature("pretrained_student", 0.0, "student", "1 if the student starts from pretrained weights"),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
FEATURE_COLUMNS = tuple(f"f_{n}" for n in FEATURE_NAMES)   # in the sweeps table
PRIOR = np.array([f.prior for f in FEATURES])
H_MINUS_MAX_CENTER, H_ALL_CENTER = 0.8, 0.3


def rules_table():
    """The rules as a table: feature, weight on log2 T, what it measures, and the finding."""
    import pandas as pd

    return pd.DataFrame([{"feature": f.name, "weight (log2 T)": f.prior, "measures": f.meaning,
                          "finding": FINDINGS[f.finding]} for f in FEATURES])


# ----------------------------------------------------------------------------- diagnostics

@dataclass(frozen=True)
class Overlap:
    """Which target classes the pretraining already separated (paper Sect. 4.5)."""

    share: float
    known: tuple[str, ...]
    unknown: tuple[str, ...]


def _norm(name: str) -> str:
    return " ".join(re.sub(r"[_\-/]+", " ", str(name)).lower().split())


def _pretrain_names(pretrain_classes: str | Sequence[str]) -> list[str]:
    if isinstance(pretrain_classes, str):
        key = pretrain_classes.lower()
        if key not in ("imagenet-1k", "imagenet-21k", "imagenet-22k"):
            raise ValueError(f"pretrain_classes={pretrain_classes!r}: pass a list of class names, or one of "
                             "'imagenet-1k', 'imagenet-21k' (timm's label descriptions)")
        from timm.data import ImageNetInfo
        return list(ImageNetInfo("imagenet-22k" if key != "imagenet-1k" else "imagenet-1k").label_descriptions())
    return [str(c) for c in pretrain_classes]


def class_overlap(target_classes: Sequence[str], pretrain_classes: str | Sequence[str] | None = None,
                  class_map: Mapping[str, Any] | None = None) -> Overlap:
    """Share of target classes the pretraining separated: each maps to pretraining classes no other target shares.

    ``class_map``: target class -> pretraining class name(s) or None. Without it, names are
    matched (case, ``_``/``-`` ignored) against every comma-separated synonym of the
    pretraining classes (``"imagenet-1k"`` uses timm's descriptions). A coarse target class
    mapped to several pretraining classes counts (the pretraining knew it, finer); fine
    target classes that share one pretraining class do not (paper Sect. 4.5: Cars in
    ImageNet-1K, Finer-Grained Birds).
    """
    targets = [str(c) for c in target_classes]
    if not targets:
        raise ValueError("target_classes is empty; pass the target dataset's class names")
    if class_map is None and pretrain_classes is None:
        raise ValueError("class_overlap needs pretrain_classes (names, or 'imagenet-1k') or a class_map "
                         "{target class: pretraining class(es)}")
    mapped: dict[str, frozenset[str]] = {}
    if class_map is not None:
        for t in targets:
            v = class_map.get(t)
            vs = [] if v is None else [v] if isinstance(v, str) else list(v)
            mapped[t] = frozenset(_norm(x) for x in vs)
    else:
        names = _pretrain_names(pretrain_classes)
        synonyms = [{_norm(s) for s in n.split(",")} for n in names]
        for t in targets:
            mapped[t] = frozenset(names[i] for i, syn in enumerate(synonyms) if _norm(t) in syn)
    uses = Counter(p for t in targets for p in mapped[t])
    known = tuple(t for t in targets if mapped[t] and all(uses[p] == 1 for p in mapped[t]))
    unknown = tuple(t for t in targets if t not in known)
    return Overlap(len(known) / len(targets), known, unknown)


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

    z = _as_tensor(logits, "logits")
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"teacher logits have shape {tuple(z.shape)}; need [N > 0 samples, C classes] from a "
                         "non-empty training set")
    n, c = z.shape
    if c < 2:
        raise ValueError(f"teacher logits have {c} class; temperature needs C >= 2")
    z = z.double()
    if not torch.isfinite(z).all():
        raise ValueError("teacher logits contain NaN or inf; check the teacher and the inputs")
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


# ----------------------------------------------------------------------------- what the store and specs know

def _preset_of(dataset: str, preset: str | None) -> str:
    if isinstance(preset, str) and preset in specs.PRESETS:
        return preset
    from kdlib import data as kdata
    return "mini" if dataset in kdata.dataset_names("mini") else "paper"


def granularity(dataset: str, preset: str | None = None) -> bool | None:
    """True for fine-grained classes, False for coarse, None when kdlib does not know the dataset."""
    from kdlib import data as kdata
    try:
        return bool(kdata.dataset_info(dataset, _preset_of(dataset, preset)).fine)
    except (ValueError, OSError, KeyError):
        return None


# Paper Sect. 4.5: "most (if not all) classes in Pets, CIFAR100, and Tiny ImageNet exist in
# ImageNet1K"; ImageNet-Birds is made of ImageNet-1K classes; Cars and Finer-Grained Birds
# split generic ImageNet classes ("passenger car", "magpie") into many.
IMAGENET_OVERLAP = {"pets": 1.0, "cifar100": 1.0, "tiny-imagenet": 1.0, "imagenet-birds": 1.0,
                    "cars": 0.0, "finer-birds": 0.0}


def known_overlap(dataset: str, pretrain_corpus: Any, preset: str | None = None) -> float | None:
    """Class overlap of a kdlib dataset with its teacher's pretraining, when kdlib can tell (else None).

    Mini world: computed from Fashion-MNIST's hierarchy (fine targets under the coarse
    corpus share their pretraining class: only Trouser and Bag stay separated). Paper
    preset with ImageNet weights: the paper's statement (Sect. 4.5). CLIP and other
    pretraining: unknown (the paper saw CLIP teachers behave differently, Sect. 4.3).
    """
    from kdlib import data as kdata

    if not isinstance(pretrain_corpus, str) or pretrain_corpus == "random":
        return None
    if pretrain_corpus in ("fmnist-general", "fmnist-general-coarse") and dataset in ("fmnist-fine", "fmnist-coarse"):
        corpus_coarse = pretrain_corpus.endswith("coarse")
        target_coarse = dataset == "fmnist-coarse"
        f2c = kdata.FINE_TO_COARSE
        if target_coarse:
            targets = list(kdata.COARSE_CLASSES)
            cmap = {c: ([c] if corpus_coarse else [kdata.FASHION_CLASSES[i] for i, k in enumerate(f2c) if k == j])
                    for j, c in enumerate(targets)}
        else:
            targets = list(kdata.FASHION_CLASSES)
            cmap = {f: (kdata.COARSE_CLASSES[f2c[i]] if corpus_coarse else f) for i, f in enumerate(targets)}
        return class_overlap(targets, class_map=cmap).share
    tag = pretrain_corpus.lower()
    if tag.startswith(("hub", "file:")) and not any(s in tag for s in ("clip", "laion", "openai", "siglip")):
        return IMAGENET_OVERLAP.get(dataset)
    return None


def baseline_epochs(dataset: str | None, preset: str | None = None, num_samples: int | None = None) -> int:
    """The distillation duration the paper's trends are stated for (Sect. 3.1).

    A kdlib dataset: its preset's distillation epochs. Otherwise the paper's choice by
    size: 300 epochs for a small set like Pets (< 10k images), 100 for CIFAR100-sized ones.
    """
    if dataset is not None:
        p = specs.PRESETS.get(_preset_of(dataset, preset))
        if p is not None and dataset in p.distill_epochs:
            return p.distill_epochs[dataset]
    if num_samples is not None:
        return 300 if num_samples < 10_000 else 100
    return 100


def halvings_short(epochs: float, batch_size: float, baseline: float) -> float:
    """How many halvings of optimizer steps below the baseline (0 at or beyond it), paper Sect. 4.2.

    Steps, not epochs: a larger batch means fewer steps per epoch, and the paper saw a
    larger batch delay the SGD cross-over toward large T.
    """
    ratio = (epochs / baseline) * (REFERENCE_BATCH / batch_size)
    return float(min(5.0, max(0.0, -math.log2(ratio))))


# ----------------------------------------------------------------------------- the setting of one advice

@dataclass(frozen=True)
class Setting:
    """Everything the rules look at, with None for what is unknown."""

    optimizer: str
    epochs: int
    batch_size: int
    baseline_epochs: int
    teacher_origin: str | None = None      # "finetuned" | "scratch" | None
    fine_grained: bool | None = None
    class_overlap: float | None = None
    h_all: float | None = None
    h_minus_max: float | None = None
    student_init: str = "random"

    @property
    def halvings(self) -> float:
        return halvings_short(self.epochs, self.batch_size, self.baseline_epochs)

    def features(self) -> np.ndarray:
        scratch = 1.0 if self.teacher_origin == "scratch" else 0.0
        sgd = 1.0 if self.optimizer == "sgd" else 0.0
        fine = 0.0 if self.fine_grained is None else (1.0 if self.fine_grained else -1.0)
        unknown = 0.0 if (self.class_overlap is None or scratch) else 1.0 - self.class_overlap
        hmm = 0.0 if _missing(self.h_minus_max) else self.h_minus_max - H_MINUS_MAX_CENTER
        ha = 0.0 if _missing(self.h_all) else self.h_all - H_ALL_CENTER
        short = self.halvings
        student = 1.0 if self.student_init in ("pretrained", "finetuned") else 0.0
        return np.array([1.0, fine, scratch, unknown, hmm, ha, sgd, sgd * short, (1 - sgd) * short, student])

    def unknowns(self) -> list[str]:
        out = []
        if self.teacher_origin is None:
            out.append("teacher origin")
        if self.fine_grained is None:
            out.append("granularity")
        if self.class_overlap is None and self.teacher_origin != "scratch":
            out.append("class overlap with the pretraining")
        if _missing(self.h_minus_max):
            out.append("teacher entropies")
        return out


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _check_setting(optimizer: Any, epochs: Any, batch_size: Any, teacher_origin: Any, student_init: Any,
                   class_overlap_: Any) -> None:
    if optimizer not in specs.OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}; choose one of {specs.OPTIMIZERS} (the paper's two; "
                         "treat other adaptive optimizers as 'adamw')")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive integer (the planned distillation {name})")
    if teacher_origin not in (None, "finetuned", "scratch"):
        raise ValueError(f"teacher_origin={teacher_origin!r}; choose 'finetuned' (general pretraining, then the "
                         "target set), 'scratch' (target set only) or None (unknown)")
    if student_init not in specs.INITS:
        raise ValueError(f"student_init={student_init!r}; choose one of {specs.INITS}")
    if class_overlap_ is not None and not (isinstance(class_overlap_, (int, float)) and 0 <= class_overlap_ <= 1):
        raise ValueError(f"class_overlap={class_overlap_!r} must be a share in [0, 1] or None (unknown)")


# ----------------------------------------------------------------------------- the calibrated model

@dataclass(frozen=True)
class Calibration:
    """Weights of the log2 T model, fitted on stored sweeps (or the rules when too few).

    ``status``: ``"calibrated"`` or ``"rules"``. ``loo``: leave-one-out numbers of the
    fit (mean regret in accuracy points of the fitted model and of the rules alone,
    residual RMS in log2 T) that size the advice's range.
    """

    coef: tuple[float, ...]
    status: str
    n_setups: int
    min_setups: int
    lam: float | None               # shrinkage toward the rules; None: the rules themselves
    loo: dict[str, float] = field(default_factory=dict)
    fingerprint: str = ""
    source: str = ""
    features: tuple[str, ...] = FEATURE_NAMES

    @classmethod
    def rules(cls, n_setups: int = 0, min_setups: int = MIN_SETUPS, **kwargs: Any) -> "Calibration":
        return cls(tuple(PRIOR.tolist()), "rules", n_setups, min_setups, None, **kwargs)

    @property
    def calibrated(self) -> bool:
        return self.status == "calibrated"

    def predict(self, x: np.ndarray) -> float:
        """log2 T, clipped to the paper's range [1, 40]."""
        return float(np.clip(np.asarray(self.coef) @ x, math.log2(T_MIN), math.log2(T_MAX)))

    def describe(self) -> str:
        if not self.calibrated and self.source == "none":
            return "rules of thumb only (calibration=None)"
        if not self.calibrated:
            return f"rules of thumb only: {self.n_setups} stored sweep(s), calibration needs {self.min_setups}"
        loo = self.loo
        nan = float("nan")
        if self.lam is None:
            return (f"rules checked on {self.n_setups} stored sweeps and kept: no refit beat them in leave-one-out "
                    f"(mean regret {loo.get('rules_mean_regret', nan):.2f} pp)")
        return (f"rules calibrated on {self.n_setups} stored sweeps (shrinkage {self.lam:g}); leave-one-out mean "
                f"regret {loo.get('mean_regret', nan):.2f} pp vs {loo.get('rules_mean_regret', nan):.2f} pp "
                "for the uncalibrated rules")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lam"] = self.lam
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Calibration":
        if tuple(d.get("features", ())) != FEATURE_NAMES:
            raise ValueError("the saved advisor calibration was made for other features; refit it with "
                             "kdlib.advisor.calibrate()")
        return cls(tuple(d["coef"]), d["status"], int(d["n_setups"]), int(d["min_setups"]), d.get("lam"),
                   dict(d.get("loo", {})), d.get("fingerprint", ""), d.get("source", ""), FEATURE_NAMES)


def advisor_dir() -> Path:
    """Where the calibration lives: ``outputs/advisor/``."""
    return paths.outputs_dir() / "advisor"


REQUIRED = ("dataset", "teacher", "teacher_origin", "student", "optimizer", "batch_size", "epochs",
            "temperature", "test_acc")
SETUP_KEYS = ("preset", "dataset", "teacher", "teacher_origin", "teacher_epochs", "teacher_id", "pretrain_corpus",
              "student", "student_init", "optimizer", "lr", "weight_decay", "batch_size", "epochs")


def sweeps(frame) -> "Any":
    """One row per setup with a vanilla-KD temperature sweep (>= 2 temperatures) in ``frame``.

    A setup is dataset x teacher (architecture, origin, finetuning) x student/init x
    optimizer x batch size x duration; seeds are averaged (the paper reports the mean of
    three). Rows carry the sweep (``temperatures``, ``accuracies``), its best T, its weight
    (accuracy spread, clipped) and the rule features.
    """
    import pandas as pd

    cols = ["setup", *SETUP_KEYS, "temperatures", "accuracies", "seeds", "best_temperature", "best_acc", "spread",
            "weight", "teacher_h_all", "teacher_h_minus_max", "fine_grained", "class_overlap", *FEATURE_COLUMNS]
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=cols)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"the results frame lacks columns {missing}; pass kdlib.store.load_results(root) "
                         f"(needs {list(REQUIRED)})")
    f = frame
    f = store.finished(f, "distill")
    if "method" in f:
        f = f[f["method"] == "kd"]
    if "method_args" in f:
        f = f[f["method_args"].fillna("{}").isin(["{}", ""])]
    f = f[f["temperature"].notna() & f["test_acc"].notna()]
    keys = [k for k in SETUP_KEYS if k in f.columns]
    rows = []
    for key, g in f.groupby(keys, dropna=False, sort=True):
        acc = g.groupby("temperature")["test_acc"].mean().sort_index()
        if len(acc) < 2:
            continue
        r = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        temps = tuple(float(t) for t in acc.index)
        accs = tuple(float(a) for a in acc.values)
        best = int(np.argmax(accs))
        r.update(temperatures=temps, accuracies=accs, best_temperature=temps[best], best_acc=accs[best],
                 seeds=int(g.groupby("temperature").size().min()), spread=max(accs) - min(accs))
        r["weight"] = float(np.clip(r["spread"], MIN_WEIGHT, MAX_WEIGHT))
        for c in ("teacher_h_all", "teacher_h_minus_max"):
            r[c] = float(g[c].iloc[0]) if c in g and g[c].notna().any() else float("nan")
        setting = _row_setting(r, g)
        r["fine_grained"], r["class_overlap"] = setting.fine_grained, setting.class_overlap
        r.update(dict(zip(FEATURE_COLUMNS, setting.features().tolist())))
        r["setup"] = _label(r)
        rows.append(r)
    out = pd.DataFrame(rows)
    return out.reindex(columns=cols + [c for c in out.columns if c not in cols]) if rows else pd.DataFrame(columns=cols)


def _row_setting(r: Mapping[str, Any], g) -> Setting:
    dataset, preset = r["dataset"], r.get("preset")
    fine = bool(g["fine_grained"].iloc[0]) if "fine_grained" in g and g["fine_grained"].notna().any() \
        else granularity(dataset, preset)
    if "class_overlap" in g and g["class_overlap"].notna().any():
        overlap = float(g["class_overlap"].iloc[0])
    else:
        overlap = known_overlap(dataset, r.get("pretrain_corpus"), preset)
    origin = r["teacher_origin"] if r["teacher_origin"] in ("finetuned", "scratch") else None
    init = r.get("student_init") if r.get("student_init") in specs.INITS else "random"
    return Setting(optimizer=str(r["optimizer"]), epochs=int(r["epochs"]), batch_size=int(r["batch_size"]),
                   baseline_epochs=baseline_epochs(dataset, preset), teacher_origin=origin, fine_grained=fine,
                   class_overlap=overlap, h_all=r.get("teacher_h_all"), h_minus_max=r.get("teacher_h_minus_max"),
                   student_init=init)


def _label(r: Mapping[str, Any]) -> str:
    te = r.get("teacher_epochs")
    te = f" {int(te)}ep" if isinstance(te, (int, float)) and not _missing(float(te)) else ""
    corpus = r.get("pretrain_corpus")
    corpus = f" [{corpus}]" if isinstance(corpus, str) and corpus not in ("random", "hub") and \
        r.get("teacher_origin") == "finetuned" else ""
    init = r.get("student_init", "random")
    return (f"{r['dataset']}: {r['teacher']} {r['teacher_origin']}{te}{corpus} -> {r['student']}"
            f"{'' if init in (None, 'random') else ' (' + str(init) + ')'} | {r['optimizer']} bs{int(r['batch_size'])}"
            f" {int(r['epochs'])}ep")


def _nearest(temps: Sequence[float], log2_t: float) -> int:
    """Index of the temperature of a sweep nearest to 2**log2_t in log scale (ties: the smaller T)."""
    d = [abs(math.log2(t) - log2_t) for t in temps]
    return int(min(range(len(temps)), key=lambda i: (round(d[i], 12), temps[i])))


def regret_at(row: Mapping[str, Any], log2_t: float) -> float:
    """Best accuracy of the sweep minus accuracy at the sweep's T nearest to the advice (points)."""
    i = _nearest(row["temperatures"], log2_t)
    return float(row["best_acc"] - row["accuracies"][i])


def _matrices(table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = table[list(FEATURE_COLUMNS)].to_numpy(float)
    y = np.log2(table["best_temperature"].to_numpy(float))
    w = table["weight"].to_numpy(float)
    return X, y, w / w.mean()


def _solve(X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """argmin sum w (y - X b)^2 + lam |b - prior|^2: ridge shrunk toward the rules."""
    A = X.T @ (w[:, None] * X) + lam * np.eye(X.shape[1])
    return np.linalg.solve(A, X.T @ (w * y) + lam * PRIOR)


def _loo(table, X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float | None) -> tuple[float, float]:
    """Leave-one-out mean regret (pp) and weighted RMS residual (log2 T); lam None = the rules."""
    regrets, sq = [], []
    rows = table.to_dict("records")
    for i in range(len(rows)):
        keep = np.arange(len(rows)) != i
        b = PRIOR if lam is None else _solve(X[keep], y[keep], w[keep], lam)
        pred = float(np.clip(X[i] @ b, math.log2(T_MIN), math.log2(T_MAX)))
        regrets.append(regret_at(rows[i], pred))
        sq.append(w[i] * (pred - y[i]) ** 2)
    return float(np.mean(regrets)), float(math.sqrt(np.sum(sq) / np.sum(w)))


def fit(table, *, min_setups: int = MIN_SETUPS, source: str = "frame", fingerprint: str = "") -> Calibration:
    """Fit the rule weights on a ``sweeps`` table (no files written); the rules when too few setups."""
    n = len(table)
    if not isinstance(min_setups, int) or min_setups < 2:
        raise ValueError(f"min_setups={min_setups!r} must be an integer >= 2 (leave-one-out needs two sweeps)")
    if n < min_setups:
        return Calibration.rules(n, min_setups, fingerprint=fingerprint, source=source)
    X, y, w = _matrices(table)
    scores = {lam: _loo(table, X, y, w, lam) for lam in (*LAMBDAS, None)}
    # Lowest leave-one-out regret; ties go to the stronger pull toward the rules (None: the rules).
    lam = min(scores, key=lambda v: (round(scores[v][0], 9), -math.inf if v is None else -v))
    coef = PRIOR if lam is None else _solve(X, y, w, lam)
    loo = {"mean_regret": scores[lam][0], "rmse_log2": scores[lam][1], "rules_mean_regret": scores[None][0],
           "rules_rmse_log2": scores[None][1]}
    return Calibration(tuple(float(c) for c in coef), "calibrated", n, min_setups, lam, loo, fingerprint, source)


def _fingerprint(frame) -> str:
    if frame is None or len(frame) == 0:
        return hashlib.sha256(b"").hexdigest()[:16]
    # Only finished runs count: pending or running rows (other notebooks at work) change nothing.
    done = store.finished(frame)
    cols = [c for c in ("run_id", "temperature", "test_acc") if c in done.columns]
    text = "\n".join(sorted("|".join(map(str, row)) for row in done[cols].itertuples(index=False)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibrate(frame=None, *, root: str | Path | None = None, min_setups: int = MIN_SETUPS, save: bool = True,
              folder: str | Path | None = None) -> Calibration:
    """Refit the advisor on stored sweeps (``frame``, or the store at ``root``) and save it.

    Writes ``calibration.json`` (the sweeps and their features) and ``model.json`` (the
    weights) atomically under ``folder`` (default ``outputs/advisor/``). With fewer than
    ``min_setups`` sweeps the saved model is the rules themselves.
    """
    source = "frame"
    if frame is None:
        frame, source = _store_frame(root)
    return _calibrate(frame, source, min_setups, save, folder)


def _store_frame(root: str | Path | None):
    root = (Path(root) if root is not None else paths.store_dir()).expanduser().resolve()
    return (store.load_results(root) if root.is_dir() else None), f"store:{root}"


def _calibrate(frame, source: str, min_setups: int, save: bool, folder: str | Path | None) -> Calibration:
    table = sweeps(frame)
    cal = fit(table, min_setups=min_setups, source=source, fingerprint=_fingerprint(frame))
    if save:
        folder = Path(folder) if folder is not None else advisor_dir()
        records = json.loads(table.to_json(orient="records"))
        store.atomic_write_json(folder / "calibration.json", {"features": list(FEATURE_NAMES), "setups": records})
        store.atomic_write_json(folder / "model.json", cal.to_json())
    return cal


def load_calibration(folder: str | Path | None = None) -> Calibration | None:
    """The saved calibration (``outputs/advisor/model.json``), or None."""
    path = (Path(folder) if folder is not None else advisor_dir()) / "model.json"
    if not path.is_file():
        return None
    return Calibration.from_json(json.loads(path.read_text()))


def current_calibration(root: str | Path | None = None, min_setups: int = MIN_SETUPS) -> Calibration:
    """What ``calibration="auto"`` uses: the saved calibration, refit when the store it came from changed.

    A calibration fitted on a frame the user passed is kept until they refit.
    """
    saved = load_calibration()
    if saved is not None and not saved.source.startswith("store:"):
        return saved
    frame, source = _store_frame(root)
    if saved is not None and (saved.source, saved.fingerprint, saved.min_setups) == \
            (source, _fingerprint(frame), min_setups):
        return saved
    return _calibrate(frame, source, min_setups, True, None)


# ----------------------------------------------------------------------------- the advice

@dataclass(frozen=True)
class Reason:
    """One term of the advice: how far it moves log2 T, in words, with its evidence and finding."""

    effect: float       # log2 T: +1 doubles the temperature
    text: str
    evidence: str
    finding: str

    def arrow(self) -> str:
        return "↑" if self.effect > 0.05 else "↓" if self.effect < -0.05 else "·"


@dataclass(frozen=True)
class Advice:
    """A recommended temperature with its range, reasons and how sure it is (shows as a report)."""

    temperature: float              # snapped to the candidate temperatures
    raw: float                      # the model's value before snapping
    low: float
    high: float
    confidence: str                 # "high" | "medium" | "low"
    confidence_why: str
    stakes: str
    reasons: tuple[Reason, ...]
    basis: str
    setting: Setting
    diagnostics: Diagnostics | None = None

    def __str__(self) -> str:
        lines = [f"Recommended temperature: T = {self.temperature:g}  (range {self.low:g}-{self.high:g}; "
                 f"unrounded {self.raw:.3g}); confidence: {self.confidence}",
                 f"  {self.confidence_why}", f"  {self.stakes}", "Why:"]
        for r in self.reasons:
            lines.append(f"  {r.arrow()} {r.effect:+.2f}  {r.text} [{r.evidence}] - {r.finding}")
        if self.diagnostics is not None:
            d = self.diagnostics
            acc = "n/a" if d.accuracy is None else f"{d.accuracy:.1f}%"
            lines.append(f"Teacher on {d.num_samples} training samples, {d.num_classes} classes: accuracy {acc}, "
                         f"H_all {d.h_all:.3f}, H_-max {d.h_minus_max:.3f}, top-{d.top_k} share of non-argmax mass "
                         f"{d.top_k_share:.2f} (even spread: {d.top_k_uniform:.2f})")
        lines.append(f"Basis: {self.basis}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Advice(T={self.temperature:g}, range={self.low:g}-{self.high:g}, confidence={self.confidence!r})"

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td style='text-align:center'>{e(r.arrow())} {r.effect:+.2f}</td><td style='text-align:left'>"
            f"{e(r.text)}</td><td style='text-align:left'><code>{e(r.evidence)}</code></td>"
            f"<td style='text-align:left'><small>{e(r.finding)}</small></td></tr>" for r in self.reasons)
        diag = ""
        if self.diagnostics is not None:
            items = "".join(f"<tr><td style='text-align:left'>{e(str(k))}</td><td>{_fmt(v)}</td></tr>"
                            for k, v in self.diagnostics.summary().items())
            diag = f"<details><summary>Teacher diagnostics</summary><table>{items}</table></details>"
        return (f"<div><p style='font-size:1.15em'><b>Recommended temperature: T = {self.temperature:g}</b> "
                f"(range {self.low:g}–{self.high:g}; unrounded {self.raw:.3g}) · confidence: <b>{e(self.confidence)}</b>"
                f"</p><p>{e(self.confidence_why)}<br>{e(self.stakes)}</p>"
                f"<table><tr><th>effect on log₂T</th><th>reason</th><th>evidence</th><th>finding</th></tr>{rows}"
                f"</table>{diag}<p><small>Basis: {e(self.basis)}</small></p></div>")

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "raw": self.raw, "low": self.low, "high": self.high,
                "confidence": self.confidence, "reasons": [asdict(r) for r in self.reasons], "basis": self.basis}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _snap(t: float, temperatures: Sequence[float]) -> float:
    return float(temperatures[_nearest(temperatures, math.log2(t))])


def _round(t: float) -> float:
    return float(f"{t:.2g}")


def _reasons(s: Setting, x: np.ndarray, coef: np.ndarray, cal: Calibration,
             diag: Diagnostics | None) -> list[Reason]:
    c = dict(zip(FEATURE_NAMES, coef))
    v = dict(zip(FEATURE_NAMES, x))
    fitted = cal.calibrated

    def note(name: str) -> str:
        prior = dict(zip(FEATURE_NAMES, PRIOR))[name]
        return f" (stored sweeps: weight {c[name]:+.2f}, rule {prior:+.2f})" if fitted else ""

    out = [Reason(float(c["base"]), f"start at T = {2 ** c['base']:.3g}: a general-pretrained, lightly finetuned "
                  "teacher with enough training does well at large T" + note("base"), "every setup",
                  FINDINGS["plateau"])]
    fine = {True: "fine-grained", False: "coarse", None: "unknown"}[s.fine_grained]
    if s.fine_grained is None:
        out.append(Reason(0.0, "granularity unknown: no shift (pass fine_grained=True/False)", "granularity = ?",
                          FINDINGS["granularity"]))
    else:
        out.append(Reason(float(c["fine_grained"] * v["fine_grained"]),
                          f"{fine} target classes: " + ("more relations to expose, so a higher T"
                                                       if s.fine_grained else "accuracy plateaus closer to T = 1")
                          + note("fine_grained"), f"granularity = {fine}", FINDINGS["granularity"]))
    if s.teacher_origin == "scratch":
        out.append(Reason(float(c["scratch_teacher"]), "the teacher was trained from scratch: no general "
                          "pretraining to supply class relations" + note("scratch_teacher"), "origin = scratch",
                          FINDINGS["scratch"]))
    elif s.teacher_origin is None:
        out.append(Reason(0.0, "teacher origin unknown: assumed general-pretrained then finetuned; if it was "
                          "trained from scratch use T near 1", "origin = ?", FINDINGS["scratch"]))
    if s.teacher_origin != "scratch":
        if s.class_overlap is None:
            out.append(Reason(0.0, "overlap of the target classes with the pretraining unknown: assumed the "
                              "pretraining knew them (pass class_overlap=, pretrain_classes= or class_map=)",
                              "class overlap = ?", FINDINGS["overlap"]))
        else:
            eff = float(c["unknown_classes"] * v["unknown_classes"])
            msg = (f"{s.class_overlap:.0%} of the target classes are classes the pretraining separated"
                   + ("; the others get no relational knowledge from it, so a smaller T" if s.class_overlap < 1
                      else ": the teacher's class relations can be trusted at large T"))
            if diag is not None and diag.overlap is not None and diag.overlap.unknown:
                more = "..." if len(diag.overlap.unknown) > 5 else ""
                msg += f" (not separated: {', '.join(diag.overlap.unknown[:5])}{more})"
            out.append(Reason(eff, msg + note("unknown_classes"), f"class overlap = {s.class_overlap:.2f}",
                              FINDINGS["overlap"]))
    if _missing(s.h_minus_max):
        out.append(Reason(0.0, "teacher entropies unknown (no teacher pass): no shift", "H_-max = ?",
                          FINDINGS["finetune"]))
    else:
        eff = float(c["h_minus_max"] * v["h_minus_max"] + c["h_all"] * v["h_all"])
        if s.h_minus_max >= 0.9:
            msg = ("the teacher spreads its non-argmax mass almost evenly (like label smoothing, the mark of long "
                   "finetuning), so large T adds little")
        elif s.h_minus_max <= 0.7:
            msg = "the teacher's non-argmax mass is structured: rich class relations for a large T to expose"
        else:
            msg = "the teacher's non-argmax mass is moderately structured"
        evidence = f"H_-max = {s.h_minus_max:.3f}, H_all = {s.h_all:.3f}"
        if diag is not None and diag.top_k:
            evidence += f", top-{diag.top_k} share {diag.top_k_share:.2f} (even: {diag.top_k_uniform:.2f})"
        out.append(Reason(eff, msg + note("h_minus_max"), evidence, FINDINGS["finetune"]))
    steps = (f"{s.epochs} epochs at batch {s.batch_size} vs a {s.baseline_epochs}-epoch baseline at batch "
             f"{REFERENCE_BATCH}")
    if s.optimizer == "sgd":
        eff = float(c["sgd"] + c["sgd_short"] * v["sgd_short"])
        msg = (f"SGD with a short schedule ({s.halvings:.1f} halvings below the baseline in steps): small T wins "
               "before the cross-over" if s.halvings > 0 else
               "SGD with a full schedule: past the cross-over, large T wins")
        out.append(Reason(eff, msg + note("sgd_short"), steps, FINDINGS["sgd"]))
    else:
        eff = float(c["adamw_short"] * v["adamw_short"])
        out.append(Reason(eff, "AdamW: the choice of T matters less" + note("adamw_short"), steps,
                          FINDINGS["adamw"]))
    if s.student_init in ("pretrained", "finetuned"):
        out.append(Reason(float(c["pretrained_student"]), f"{s.student_init} student: larger T still helps, "
                          "with a smaller gain" + note("pretrained_student"), f"student init = {s.student_init}",
                          FINDINGS["student"]))
    return out


def recommend(*, optimizer: str = "adamw", epochs: int, batch_size: int = REFERENCE_BATCH,
              teacher_origin: str | None = None, fine_grained: bool | None = None,
              class_overlap: float | None = None, h_all: float | None = None, h_minus_max: float | None = None,
              student_init: str = "random", baseline: int | None = None, dataset: str | None = None,
              preset: str | None = None, diagnostics: Diagnostics | None = None,
              temperatures: Sequence[float] = PAPER_TEMPERATURES, calibration: Any = None) -> Advice:
    """The advice for a setup described by numbers (no teacher pass): what ``advise`` calls.

    Unknowns (None) shift nothing and widen the range. ``calibration``: a ``Calibration``,
    None (the rules), or ``"auto"`` (the saved one, refit when the store changed).
    """
    _check_setting(optimizer, epochs, batch_size, teacher_origin, student_init, class_overlap)
    temps = sorted(float(t) for t in temperatures)
    if not temps or any(not math.isfinite(t) or t <= 0 for t in temps):
        raise ValueError(f"temperatures={temperatures!r} must be positive numbers (the candidates to snap to)")
    if diagnostics is not None:
        h_all = diagnostics.h_all if h_all is None else h_all
        h_minus_max = diagnostics.h_minus_max if h_minus_max is None else h_minus_max
        if class_overlap is None and diagnostics.overlap is not None:
            class_overlap = diagnostics.overlap.share
    if baseline is None:
        baseline = baseline_epochs(dataset, preset, diagnostics.num_samples if diagnostics else None)
    setting = Setting(optimizer, int(epochs), int(batch_size), int(baseline), teacher_origin, fine_grained,
                      None if class_overlap is None else float(class_overlap), h_all, h_minus_max, student_init)
    cal = _resolve(calibration)
    x = setting.features()
    coef = np.asarray(cal.coef)
    log2_t = cal.predict(x)
    unknowns = setting.unknowns()
    if cal.calibrated:
        half = max(0.5, cal.loo.get("rmse_log2", 1.0)) + 0.5 * len(unknowns)
    else:
        half = 1.0 + 0.5 * len(unknowns)
    lo, hi = max(T_MIN, 2 ** (log2_t - half)), min(T_MAX, 2 ** (log2_t + half))
    level = "high" if half <= 1.0 else "medium" if half <= 1.75 else "low"
    if not cal.calibrated and level == "high":
        level = "medium"
    why = (f"{'calibrated on ' + str(cal.n_setups) + ' stored sweeps' if cal.calibrated else 'rules of thumb only'}"
           f"; the range is a factor {2 ** half:.2g} either side" + (f"; unknown: {', '.join(unknowns)}"
                                                                     if unknowns else ""))
    advised = _snap(2 ** log2_t, temps)
    if optimizer == "adamw":
        stakes = "With AdamW the student is robust to T (Sect. 4.2): anywhere in the range should cost little."
    else:
        ends = sorted({_snap(lo, temps), _snap(hi, temps)} - {advised})
        stakes = "With SGD the choice matters (Sect. 4.2)" + (
            f": if more runs are affordable, also try {' and '.join(f'T = {t:g}' for t in ends)}." if ends else ".")
    reasons = _reasons(setting, x, coef, cal, diagnostics)
    return Advice(temperature=advised, raw=float(2 ** log2_t), low=_round(lo), high=_round(hi),
                  confidence=level, confidence_why=why, stakes=stakes, reasons=tuple(reasons),
                  basis=cal.describe(), setting=setting, diagnostics=diagnostics)


def _resolve(calibration: Any) -> Calibration:
    if calibration is None:
        return Calibration.rules(source="none")
    if isinstance(calibration, Calibration):
        return calibration
    if calibration == "auto":
        return current_calibration()
    raise ValueError(f"calibration={calibration!r}; pass 'auto' (saved, refit when the store changed), None "
                     "(rules only) or a Calibration from kdlib.advisor.calibrate()")


def advise(teacher: Any, data: Any = None, *, optimizer: str = "adamw", epochs: int | None = None,
           batch_size: int = REFERENCE_BATCH, teacher_origin: str | None = None, fine_grained: bool | None = None,
           class_overlap: float | None = None, pretrain_classes: str | Sequence[str] | None = None,
           target_classes: Sequence[str] | None = None, class_map: Mapping[str, Any] | None = None,
           student_init: str = "random", spec: specs.Supervised | None = None, baseline: int | None = None,
           temperatures: Sequence[float] = PAPER_TEMPERATURES, calibration: Any = "auto", device: Any = None,
           progress: bool = False) -> Advice:
    """Recommend a distillation temperature for this teacher and training plan (paper Sect. 5).

    ``teacher``: a model with ``data`` (the training set, yielding ``(uint8 image, label)``),
    precomputed ``(logits, labels)`` on the training set, ``Diagnostics``, or a kdlib
    ``Supervised`` teacher spec (loaded from the store, trained first if missing). ``spec``
    tells the advisor what a kdlib teacher is (origin, dataset granularity, pretraining
    classes, baseline duration) when ``teacher`` is a model or logits; explicit arguments
    win. ``optimizer``/``epochs``/``batch_size``: the planned distillation.
    """
    if isinstance(teacher, specs.Supervised):
        from kdlib import data as kdata
        from kdlib import runs

        spec = teacher if spec is None else spec
        model = runs.load_model(teacher, device=device, progress=progress)
        data = kdata.build_dataset(teacher.dataset, "train", preset=teacher.preset, seed=teacher.seed,
                                   train_transform=False) if data is None else data
        teacher = model
    dataset = preset = None
    if spec is not None:
        if not isinstance(spec, specs.Supervised):
            raise ValueError(f"spec must be the teacher's Supervised spec (kdlib.specs.teacher(...)), got {spec!r}")
        from kdlib import data as kdata
        dataset, preset = spec.dataset, spec.preset
        if teacher_origin is None:
            teacher_origin = "finetuned" if spec.origin == "finetuned" else "scratch"
        if fine_grained is None:
            fine_grained = granularity(dataset, preset)
        if class_overlap is None and pretrain_classes is None and class_map is None:
            corpus = spec.init.dataset if isinstance(spec.init, specs.Supervised) else spec.init
            class_overlap = known_overlap(dataset, corpus, preset)
        if target_classes is None:
            try:
                target_classes = list(kdata.dataset_info(dataset, preset).classes)
            except (ValueError, OSError):
                target_classes = None
    if epochs is None:
        if dataset is None:
            raise ValueError("pass epochs=: the planned number of distillation epochs")
        epochs = baseline_epochs(dataset, preset)
    _check_setting(optimizer, epochs, batch_size, teacher_origin, student_init, class_overlap)
    if isinstance(teacher, Diagnostics):
        diag = teacher
    else:
        diag = diagnose(teacher, data, target_classes=target_classes, pretrain_classes=pretrain_classes,
                        class_map=class_map, device=device, progress=progress)
    return recommend(optimizer=optimizer, epochs=epochs, batch_size=batch_size, teacher_origin=teacher_origin,
                     fine_grained=fine_grained, class_overlap=class_overlap, student_init=student_init,
                     baseline=baseline, dataset=dataset, preset=preset, diagnostics=diag,
                     temperatures=temperatures, calibration=calibration)


# ----------------------------------------------------------------------------- what the advice is worth

STRATEGIES = ("advisor", "rules only", "fixed T=4", "fixed T=1", "best single T")


def _best_single(others: Sequence[Mapping[str, Any]]) -> float:
    """The one T with the lowest mean regret over ``others`` (each at its sweep's nearest T)."""
    cands = sorted({t for r in others for t in r["temperatures"]})
    return min(cands, key=lambda t: (round(float(np.mean([regret_at(r, math.log2(t)) for r in others])), 9), t))


def leave_one_setup_out(frame, *, min_setups: int = MIN_SETUPS, table=None):
    """For each stored sweep, advice fitted without it vs the sweep's best T (regret, in accuracy points).

    Beside the advisor: the rules alone, fixed T = 4, fixed T = 1, and the single T with the
    lowest mean regret on the other setups. Each strategy's T is mapped to the sweep's
    nearest temperature (log scale). Returns one row per setup.
    """
    import pandas as pd

    table = sweeps(frame) if table is None else table
    recs = table.to_dict("records")
    rows = []
    for i, r in enumerate(recs):
        others = table.drop(index=table.index[i])
        cal = fit(others, min_setups=min_setups) if len(others) >= 2 else Calibration.rules(len(others), min_setups)
        x = np.array([r[n] for n in FEATURE_COLUMNS], float)
        picks = {"advisor": cal.predict(x), "rules only": Calibration.rules().predict(x),
                 "fixed T=4": 2.0, "fixed T=1": 0.0}
        rest = [o for j, o in enumerate(recs) if j != i]
        picks["best single T"] = math.log2(_best_single(rest)) if rest else float("nan")
        row = {k: r[k] for k in ("setup", "dataset", "teacher", "teacher_origin", "teacher_epochs", "student",
                                 "student_init", "optimizer", "batch_size", "epochs") if k in r}
        row.update(temperatures=r["temperatures"], best_temperature=r["best_temperature"], best_acc=r["best_acc"],
                   spread=r["spread"], basis="calibrated" if cal.calibrated else "rules",
                   advised_raw=2 ** picks["advisor"])
        for name, l2 in picks.items():
            if math.isnan(l2):
                row[f"T {name}"], row[f"regret {name}"] = float("nan"), float("nan")
                continue
            j = _nearest(r["temperatures"], l2)
            row[f"T {name}"] = r["temperatures"][j]
            row[f"regret {name}"] = float(r["best_acc"] - r["accuracies"][j])
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(loso) -> "Any":
    """Mean and max regret per strategy, and on how many setups the advisor is worse than each."""
    import pandas as pd

    out = []
    for s in STRATEGIES:
        col = loso[f"regret {s}"] if len(loso) else pd.Series(dtype=float)
        worse = int((loso["regret advisor"] > col + 1e-9).sum()) if len(loso) and s != "advisor" else 0
        better = int((loso["regret advisor"] < col - 1e-9).sum()) if len(loso) and s != "advisor" else 0
        out.append({"strategy": s, "mean regret (pp)": col.mean(), "median": col.median(), "max": col.max(),
                    "advisor worse on": worse if s != "advisor" else None,
                    "advisor better on": better if s != "advisor" else None, "setups": int(col.notna().sum())})
    return pd.DataFrame(out)


def where_it_loses(loso, against: Sequence[str] = ("fixed T=4", "fixed T=1", "best single T")) -> list[str]:
    """Plain sentences: every setup where the advisor's regret exceeds a simple baseline's."""
    lines = []
    for r in loso.to_dict("records"):
        beaten = [f"{s} (T={r[f'T {s}']:g}, regret {r[f'regret {s}']:.2f})" for s in against
                  if not _missing(r[f"regret {s}"]) and r["regret advisor"] > r[f"regret {s}"] + 1e-9]
        if beaten:
            lines.append(f"{r['setup']}: advised T={r['T advisor']:g} (best {r['best_temperature']:g}), regret "
                         f"{r['regret advisor']:.2f} pp; beaten by " + ", ".join(beaten))
    return lines


def regret_chart(loso, title: str = "Leave-one-setup-out regret of each way to pick T"):
    """Regret per setup (points) and mean (bar) per strategy; beside it, advised vs best T."""
    import altair as alt
    import pandas as pd

    long = loso.melt(id_vars=["setup"], value_vars=[f"regret {s}" for s in STRATEGIES], var_name="strategy",
                     value_name="regret").dropna()
    long["strategy"] = long["strategy"].str.removeprefix("regret ")
    enc_x = alt.X("strategy:N", sort=list(STRATEGIES), title=None)
    bars = alt.Chart(long).mark_bar(opacity=0.35).encode(x=enc_x, y=alt.Y("mean(regret):Q",
                                                                          title="regret vs best T of the sweep (pp)"))
    dots = alt.Chart(long).mark_circle(size=45, opacity=0.6).encode(
        x=enc_x, y="regret:Q", color=alt.Color("strategy:N", sort=list(STRATEGIES), legend=None),
        tooltip=["setup", "strategy", alt.Tooltip("regret:Q", format=".2f")])
    left = alt.layer(bars, dots).properties(width=300, height=240, title=title)
    pts = loso.assign(best=loso["best_temperature"], advised=loso["T advisor"])
    scale = alt.Scale(type="log", domain=[0.9 * T_MIN, 1.1 * T_MAX], nice=False)
    scatter = alt.Chart(pts).mark_circle(size=60, opacity=0.6).encode(
        x=alt.X("best:Q", scale=scale, title="best T of the sweep"),
        y=alt.Y("advised:Q", scale=scale, title="advised T (nearest in sweep)"),
        color=alt.Color("optimizer:N"), tooltip=["setup", "best", "advised", alt.Tooltip("regret advisor:Q",
                                                                                         format=".2f")])
    diag = alt.Chart(pd.DataFrame({"t": [T_MIN, T_MAX]})).mark_line(strokeDash=[4, 4], color="gray").encode(
        x=alt.X("t:Q", scale=scale), y=alt.Y("t:Q", scale=scale))
    right = alt.layer(diag, scatter).properties(width=240, height=240, title="Advised vs best temperature")
    return alt.hconcat(left, right).resolve_scale(color="independent")


# ----------------------------------------------------------------------------- module as a callable

__all__ = ["advise", "recommend", "diagnose", "diagnostics_from_logits", "class_overlap", "class_map_from_logits",
           "calibrate", "fit", "load_calibration", "current_calibration", "sweeps", "leave_one_setup_out",
           "summarize", "where_it_loses", "regret_chart", "rules_table", "granularity", "known_overlap",
           "baseline_epochs", "Advice", "Reason", "Diagnostics", "Overlap", "Calibration", "Setting", "FEATURES",
           "FINDINGS"]
