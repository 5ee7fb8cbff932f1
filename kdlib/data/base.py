"""The ground of the data package: the item protocol, seeded augmentation, dataset facts.

Every dataset yields ``(image, label)``: a ``torch.uint8`` tensor CxHxW, un-normalized
(each model normalizes its own input), and an ``int``. An index may carry a key
(``(i, key)``, given by ``make_loader``); the sample's random transform then runs on a
generator seeded with it, so augmentation depends on ``(seed, epoch)`` only.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset

PRESETS = ("mini", "paper")  # the two worlds; other presets (``patient``) map onto one (``presets.world``)
SPLITS = ("train", "test")


def _env_flag(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None and value.strip() else None


def _mix(*parts: Any) -> int:
    """A stable 63-bit seed from any tuple of values (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _generator(*parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(_mix(*parts))


def proportional_pick(labels: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` sorted positions into ``labels``, each class in proportion to its share.

    Largest remainders get the leftover places (ties by class order); within a class the
    positions come from one permutation drawn with ``generator``. The mini world's test subset
    and the curve-point subset are both drawn this way.
    """
    n = len(labels)
    sizes = torch.bincount(labels).tolist()
    exact = [count * c / n for c in sizes]
    take = [int(e) for e in exact]
    for k in sorted(range(len(sizes)), key=lambda k: (take[k] - exact[k], k))[:count - sum(take)]:
        take[k] += 1
    order = torch.randperm(n, generator=generator)
    return torch.sort(torch.cat([order[labels[order] == k][:t] for k, t in enumerate(take)])).values


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    classes: tuple[str, ...]
    in_chans: int
    image_size: int
    fine: bool  # fine-grained (True) or coarse (False) labels: the paper's granularity axis (Sect. 4.5)


@contextlib.contextmanager
def _seeded(key: int) -> Iterator[None]:
    """Run a transform on torch's CPU generator seeded with ``key``, then restore its state."""
    state = torch.get_rng_state()
    torch.default_generator.manual_seed(key)
    try:
        yield
    finally:
        torch.set_rng_state(state)


class KDDataset(Dataset):
    """Base of kdlib's datasets: ``(uint8 CxHxW, int)`` items and per-sample seeded augmentation.

    An index may be ``i`` or ``(i, key)``; with a key (given by ``make_loader``) the
    random transform of that sample runs on a generator seeded with it, so augmentation
    depends on ``(seed, epoch)`` only, not on worker count or on the global RNG.
    """
    in_memory = False

    def __init__(self, classes: Sequence[str], transform: Callable | None):
        self.classes = tuple(classes)
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _load(self, index: int) -> tuple[Any, int]:
        raise NotImplementedError

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        key = None
        if isinstance(index, tuple):
            index, key = index
        image, label = self._load(int(index))
        if self.transform is not None:
            if key is None:
                image = self.transform(image)
            else:
                with _seeded(key):
                    image = self.transform(image)
        return image, label
