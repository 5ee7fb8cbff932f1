"""Loaders whose order and augmentation are a function of ``(seed, epoch)`` alone.

Whatever the number of workers, a resumed run sees the same batches as an
uninterrupted one: the epoch's order and every sample's augmentation key come from a
generator seeded by the run's seed and the epoch.
"""
from __future__ import annotations

import os
import signal
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from kdlib import checks
from kdlib.data.base import KDDataset, _generator, _mix


class EpochSampler(Sampler):
    """The order of one epoch (shuffled or not) from a generator seeded by ``(seed, epoch)``.

    With ``keyed=True`` it yields ``(index, key)`` pairs; a ``KDDataset`` seeds that
    sample's augmentation with the key.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int, keyed: bool):
        self.n, self.shuffle, self.seed, self.keyed = n, shuffle, seed, keyed

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int | tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        if not self.keyed:
            return iter(order.tolist())
        keys = torch.randint(0, 1 << 62, (self.n,), generator=g)
        return iter(zip(order.tolist(), keys.tolist()))


def _seed_worker(worker_id: int) -> None:
    """DataLoader seeds torch and ``random`` in each worker from its generator; numpy too, here.

    Workers also ignore Slurm's USR2 (sent to every process of a job): the forked copy of
    submitit's handler would checkpoint and requeue the job once per worker.
    """
    np.random.seed(torch.initial_seed() % (1 << 32))
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, seed: int = 0, epoch: int = 0,
                num_workers: int | None = None, drop_last: bool | None = None,
                keep_workers: bool = False) -> DataLoader:
    """A DataLoader whose order and augmentation depend only on ``(seed, epoch)``.

    Shuffles when ``train``; ``drop_last`` defaults to ``train`` (MixUp/CutMix needs
    full, even batches). ``num_workers`` defaults to 0 for in-memory datasets (the mini
    world) and ``min(8, cpu count)`` otherwise. ``keep_workers``: workers live across
    epochs (``reseed`` moves the loader to the next one), where augmentation is keyed per
    sample and so does not depend on the worker's own seed.
    """
    checks.check_int("batch_size", batch_size)
    n = len(dataset)
    drop_last = train if drop_last is None else bool(drop_last)
    if drop_last and n < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the dataset ({n} items) and drop_last=True, so "
                         "an epoch would have no batch; lower batch_size or pass drop_last=False")
    if num_workers is None:
        num_workers = 0 if getattr(dataset, "in_memory", False) else min(8, os.cpu_count() or 1)
    keyed = isinstance(dataset, KDDataset) and dataset.transform is not None
    dataset_transform_free = isinstance(dataset, KDDataset) and dataset.transform is None
    sampler = EpochSampler(n, shuffle=train, seed=_mix("order", seed, epoch), keyed=keyed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                      persistent_workers=bool(keep_workers and num_workers > 0 and (keyed or dataset_transform_free)),
                      generator=_generator("workers", seed, epoch),
                      worker_init_fn=_seed_worker if num_workers > 0 else None)


def reseed(loader: DataLoader, seed: int, epoch: int) -> None:
    """Point a ``make_loader`` loader at another epoch: the same batches a fresh one would give."""
    loader.sampler.seed = _mix("order", seed, epoch)
    loader.generator.manual_seed(_mix("workers", seed, epoch))
