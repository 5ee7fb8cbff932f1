"""Scoring models on a dataset: logits of several models from one pass over it, accuracies on all of it
and on a fixed subset of it (the curve points of ``kdlib.train``; ``train`` re-exports these names).
"""
from __future__ import annotations

import contextlib
from concurrent.futures import Executor

import torch
from torch import nn
from tqdm.auto import tqdm

from kdlib import data, metrics
from kdlib.device import pick as pick_device
from kdlib.members import to_input
from kdlib.numerics import autocast


@torch.no_grad()
def predict(model: nn.Module, dataset, *, batch_size: int = 512, device: torch.device | None = None,
            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of ``model`` on every item of ``dataset`` (no augmentation)."""
    outs, labels = predict_many([model], dataset, batch_size=batch_size, device=device, progress=progress)
    return outs[0], labels


@torch.no_grad()
def predict_many(models_: list[nn.Module], dataset, *, batch_size: int = 512, device: torch.device | None = None,
                 progress: bool = False, pool: Executor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Logits of several models from one pass over the data (each batch is loaded once; ``pool``: see
    ``_forward_into``)."""
    device = device or pick_device()
    outs: list[list[torch.Tensor]] = [[] for _ in models_]
    labels = []
    loader = data.make_loader(dataset, batch_size, train=False)
    with _eval_mode(models_):
        for images, y in tqdm(loader, desc="predict", leave=False, disable=not progress):
            _forward_into(outs, models_, images, device, pool)
            labels.append(y)
    return [torch.cat(o) for o in outs], torch.cat(labels)


@contextlib.contextmanager
def _eval_mode(models_: list[nn.Module]):
    """The models in eval mode for the block, each back in its own mode after."""
    was_training = [m.training for m in models_]
    for m in models_:
        m.eval()
    try:
        yield
    finally:
        for m, t in zip(models_, was_training):
            m.train(t)


def _forward_into(outs: list[list[torch.Tensor]], models_: list[nn.Module], images: torch.Tensor,
                  device: torch.device, pool: Executor | None = None) -> None:
    """Each model's float32 logits of one batch, appended to its list on the CPU; with a ``pool``, the
    models' forwards at once, one per worker thread (grad and autocast modes are per thread: set in each)."""
    x = to_input(images, device)

    def forward(m: nn.Module) -> torch.Tensor:
        with torch.no_grad(), autocast(device):
            return m(x).float().cpu()

    logits = pool.map(forward, models_) if pool is not None and len(models_) > 1 else map(forward, models_)
    for out, one in zip(outs, logits):
        out.append(one)


@torch.no_grad()
def evaluate(full: list[nn.Module], curve: list[nn.Module], dataset, positions: torch.Tensor | None, *,
             batch_size: int = 512, device: torch.device | None = None,
             pool: Executor | None = None) -> tuple[list[float], list[float], int]:
    """Top-1 accuracies of ``full`` on all of ``dataset`` and of ``curve`` on its items ``positions``
    (None: all), from one pass over the data; returns (full accuracies, curve accuracies, curve images).
    ``pool``: run the models' forwards of each batch at once on its threads (a pass's member threads).

    ``full`` sees exactly what ``predict_many`` sees (the batches of ``batch_size`` in item order), so
    a final accuracy does not depend on the subset. ``curve`` sees, of each of those batches, its
    items in ``positions``, whether or not ``full`` models are evaluated in the same pass: the same
    inputs, so a curve point does not depend on which members happen to end at that epoch.
    """
    if positions is None or not curve:  # everyone on the full set: predict_many's pass
        outs, y = predict_many(full + curve, dataset, batch_size=batch_size, device=device, pool=pool) \
            if full + curve else ([], None)
        accs = [metrics.accuracy(o, y) for o in outs]
        return accs[:len(full)], accs[len(full):], len(dataset)
    device = device or pick_device()
    chosen = torch.zeros(len(dataset), dtype=torch.bool)
    chosen[positions] = True
    full_outs: list[list[torch.Tensor]] = [[] for _ in full]
    curve_outs: list[list[torch.Tensor]] = [[] for _ in curve]
    full_labels, curve_labels = [], []
    loader = data.make_loader(dataset, batch_size, train=False)
    if not full:  # only the subset's items, grouped as they fall into the full batches
        groups = [[i for i in range(a, min(a + batch_size, len(dataset))) if chosen[i]]
                  for a in range(0, len(dataset), batch_size)]
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=[g for g in groups if g],
                                             num_workers=loader.num_workers)
    start = 0
    with _eval_mode(full + curve):
        for images, y in loader:
            if full:
                mask = chosen[start:start + len(y)]
                start += len(y)
                _forward_into(full_outs, full, images, device, pool)
                full_labels.append(y)
                images, y = images[mask], y[mask]
                if not len(y):
                    continue
            _forward_into(curve_outs, curve, images, device, pool)
            curve_labels.append(y)
    accs = [[metrics.accuracy(torch.cat(o), torch.cat(ys)) for o in outs]
            for outs, ys in ((full_outs, full_labels), (curve_outs, curve_labels))]
    return accs[0], accs[1], len(positions)
