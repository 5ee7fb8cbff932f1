"""A validation part held out of a target training set: deterministic, seeded, stratified.

Anything that *chooses* (the advisor, a tuned default) chooses on validation accuracy,
never on test (DESIGN.md, "Which number is reported"). The split depends on the train
split's labels, the fraction and a data-split seed only (never the run's seed), so every
run of a sweep (every T, every seed) trains on the same images and is scored on the same
held-out ones. ``fraction == 0`` is the paper's protocol: the whole train split, no
validation part.
"""
from __future__ import annotations

from typing import Any

import torch

from kdlib import checks
from kdlib.data.base import KDDataset, _generator, proportional_pick

DEFAULT_VAL_FRACTION = 0.1   # what "a validation split, please" means
MAX_VAL_FRACTION = 0.5       # beyond this the "training" part is the smaller one
SPLIT_SEED = 0               # the data-split seed: one validation set per dataset, whatever the run seed


def check_fraction(value: Any, what: str = "val_fraction") -> float:
    """A fraction in [0, 0.5): 0 (no validation part, the paper's protocol) or e.g. 0.1."""
    checks.number(what, value, 0, f"pass {what}=0 (train on the whole target set, the paper's protocol) or "
                  f"{what}={DEFAULT_VAL_FRACTION} (hold out {DEFAULT_VAL_FRACTION:.0%}, stratified)",
                  high=MAX_VAL_FRACTION)
    return float(value)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) positions into ``labels``: sorted, disjoint, covering; each class keeps its share.

    Each class holds out ``round(fraction * count)`` items (at least one when the class has
    two or more, never all of them), chosen by a generator seeded with ``seed`` only.
    """
    fraction = check_fraction(fraction)
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if fraction == 0 or len(labels) == 0:
        return torch.arange(len(labels)), torch.zeros(0, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=_generator("val-split", int(seed), round(fraction, 12)))
    held = []
    for k in torch.unique(labels).tolist():
        members = order[labels[order] == k]
        n = len(members)
        take = min(n - 1, max(1 if n >= 2 else 0, int(fraction * n + 0.5)))
        held.append(members[:take])
    val = torch.sort(torch.cat(held)).values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val] = False
    return torch.nonzero(keep).flatten(), val


def dataset_labels(dataset: Any) -> torch.Tensor:
    """Every label of ``dataset`` in item order, read from its index when it keeps one (no images decoded)."""
    if isinstance(getattr(dataset, "labels", None), torch.Tensor):
        return dataset.labels
    base = getattr(dataset, "base", dataset)
    for attr in ("targets", "_labels"):
        if getattr(base, attr, None) is not None:
            return torch.as_tensor(list(getattr(base, attr)), dtype=torch.int64)
    if getattr(base, "_samples", None) is not None:     # torchvision's StanfordCars
        return torch.as_tensor([int(s[1]) for s in base._samples], dtype=torch.int64)
    return torch.as_tensor([int(base[i][1]) for i in range(len(base))], dtype=torch.int64)


class SubsetDataset(KDDataset):
    """Items ``positions`` of ``base``, keeping the ``(i, key)`` protocol (augmentation seeded by the key)."""

    def __init__(self, base: KDDataset, positions: torch.Tensor):
        super().__init__(base.classes, base.transform)
        self.base = base
        self.positions = positions.tolist()
        self.in_memory = getattr(base, "in_memory", False)
        full = dataset_labels(base)
        self.labels = full[positions] if len(positions) else torch.zeros(0, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index):
        if isinstance(index, tuple):
            return self.base[(self.positions[int(index[0])], index[1])]
        return self.base[self.positions[int(index)]]


def stratified_subset(labels: torch.Tensor, count: int, seed: int = SPLIT_SEED) -> torch.Tensor:
    """``count`` sorted positions into ``labels``, each class in proportion to its share (largest remainders).

    Deterministic: a generator seeded with ``seed`` and ``count`` only picks them, so every run
    (every T, seed, optimizer) is scored on the same images. All positions when ``count`` covers them.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    n = len(labels)
    if count >= n:
        return torch.arange(n)
    return proportional_pick(labels, count, _generator("curve-subset", int(seed), int(count)))


def split_part(dataset: KDDataset, part: str, fraction: float, seed: int = SPLIT_SEED) -> KDDataset:
    """The ``"train"`` (the rest) or ``"val"`` part of a train split; the whole of it when ``fraction`` is 0."""
    if part not in ("train", "val"):
        raise ValueError(f"part={part!r}; choose 'train' (what is trained on) or 'val' (what is held out)")
    if check_fraction(fraction) == 0:
        if part == "val":
            raise ValueError("split 'val' needs val_fraction > 0 (e.g. val_fraction=0.1); with 0 the whole "
                             "train split is trained on (the paper's protocol) and there is no validation part")
        return dataset
    train, val = stratified_split(dataset_labels(dataset), fraction, seed)
    return SubsetDataset(dataset, train if part == "train" else val)
