"""What kdlib knows about a dataset beyond its images: granularity, class overlap, baseline duration.

The paper's findings hinge on these facts (Sect. 4.5: fine vs coarse classes, and whether
the teacher's pretraining already separated the target classes; Sect. 3.1: the distillation
duration its trends are stated for). Analysis and the advisor both read them from here.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kdlib import specs


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


def _base(dataset: str) -> str:
    from kdlib import data as kdata
    return kdata.base_dataset(dataset) if isinstance(dataset, str) else dataset


def _mini_overlap(dataset: str, pretrain_corpus: str) -> float:
    from kdlib import data as kdata

    corpus_coarse = pretrain_corpus.endswith("coarse")
    f2c = kdata.FINE_TO_COARSE
    target = kdata.mini_set(dataset)
    if target.labels == "coarse":
        targets = list(kdata.COARSE_CLASSES)
        cmap = {c: ([c] if corpus_coarse else [kdata.FASHION_CLASSES[i] for i, k in enumerate(f2c) if k == j])
                for j, c in enumerate(targets)}
    else:  # fine labels: all ten, or the five tops
        targets = [kdata.FASHION_CLASSES[i] for i in target.fine_classes]
        cmap = {kdata.FASHION_CLASSES[i]: (kdata.COARSE_CLASSES[f2c[i]] if corpus_coarse else kdata.FASHION_CLASSES[i])
                for i in target.fine_classes}
    return class_overlap(targets, class_map=cmap).share


def known_overlap(dataset: str, pretrain_corpus: Any, preset: str | None = None) -> float | None:
    """Class overlap of a kdlib dataset with its teacher's pretraining, when kdlib can tell (else None).

    Mini world: computed from Fashion-MNIST's hierarchy (fine targets under the coarse
    corpus share their pretraining class: only Trouser and Bag stay separated). Paper
    preset with ImageNet weights: the paper's statement (Sect. 4.5). CLIP and other
    pretraining: unknown (the paper saw CLIP teachers behave differently, Sect. 4.3).
    """
    if not isinstance(pretrain_corpus, str) or pretrain_corpus == "random":
        return None
    if pretrain_corpus in ("fmnist-general", "fmnist-general-coarse") and _base(dataset) in (
            "fmnist-fine", "fmnist-coarse", "fmnist-tops"):
        return _mini_overlap(dataset, pretrain_corpus)
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
        family = _base(dataset)
        if p is not None and family in p.distill_epochs:
            return p.distill_epochs[family]
    if num_samples is not None:
        return 300 if num_samples < 10_000 else 100
    return 100
