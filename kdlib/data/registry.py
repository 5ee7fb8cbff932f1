"""The dataset registry: names per preset, their facts, and building one split.

``mini`` names the mini world's sets on Fashion-MNIST (``kdlib.data.mini``); ``paper``
the study's real datasets (``kdlib.data.paper``); ``imagefolder:<path>`` any folder of
class folders. A wrong name is a ValueError listing the right ones.
"""
from __future__ import annotations

import os
from typing import Any

from kdlib import presets
from kdlib.data.base import PRESETS, SPLITS, DatasetInfo, KDDataset
from kdlib.data.mini import MINI_SETS, SIZED_NAMES, build_mini, mini_info, mini_set, mini_train_size
from kdlib.data.paper import _FOLDER_LAYOUT, _IMAGEFOLDER, _PAPER, build_files, paper_info
from kdlib.data.split import SPLIT_SEED, check_fraction, split_part
from kdlib.data.transforms import MINI_RANDAUG, PAPER_RANDAUG


def dataset_names(preset: str | None = None) -> list[str]:
    """The registered dataset names of ``preset`` (all presets when None); ``imagefolder:<path>`` also works."""
    if preset is None:
        return list(MINI_SETS) + list(_PAPER)
    _check_preset(preset)
    return list(MINI_SETS) if _world(preset) == "mini" else list(_PAPER)


def _world(preset: str) -> str:
    """The world of ``preset``: itself for ``mini``/``paper``, the one it shares otherwise (``patient``: mini)."""
    if preset in PRESETS:
        return preset
    if isinstance(preset, str) and preset in presets.PRESETS:
        return presets.world(preset)
    shared = sorted(set(presets.PRESETS) - set(PRESETS))
    raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)} or a preset on one of these worlds "
                     f"{shared} ('mini' is Fashion-MNIST on a CPU, 'patient' the same world trained longer, "
                     "'paper' the study's datasets at 224 px)")


def _check_preset(preset: str) -> None:
    _world(preset)


def _check_name(name: str, preset: str) -> None:
    _check_preset(preset)
    if isinstance(name, str) and name.startswith(_IMAGEFOLDER):
        if not name[len(_IMAGEFOLDER):]:
            raise ValueError("dataset 'imagefolder:' needs a path: 'imagefolder:/data/my_set' with "
                             f"{_FOLDER_LAYOUT} inside")
        return
    mini = _world(preset) == "mini"
    if (mini_set(name) is not None) if mini else name in _PAPER:
        return
    other = [p for p in PRESETS if p != preset and _known(name, p)]
    hint = f" ({name!r} belongs to preset {other[0]!r})" if other else ""
    sized = f", {SIZED_NAMES}," if mini else ""
    raise ValueError(f"unknown dataset {name!r} for preset {preset!r}{hint}; choose one of "
                     f"{dataset_names(preset)}{sized} or 'imagefolder:<path>' ({_FOLDER_LAYOUT})")


def _known(name: str, preset: str) -> bool:
    return mini_set(name) is not None if _world(preset) == "mini" else name in _PAPER


def check_name(name: Any, preset: str) -> None:
    """Refuse a dataset name that ``preset`` does not know, naming the allowed ones."""
    if not isinstance(name, str):
        raise ValueError(f"dataset={name!r} must be a dataset name (a string), e.g. {dataset_names(preset)[0]!r}")
    _check_name(name, preset)


_PAPER_TRAIN_SIZES = {"pets": 3680, "cifar100": 50000, "cars": 8144, "tiny-imagenet": 100000}


def train_size(name: str, preset: str = "mini") -> int | None:
    """Images in the train split, known without reading any data (None: only the data can tell)."""
    if mini_set(name) is not None:
        return mini_train_size(name)
    return _PAPER_TRAIN_SIZES.get(name)


def _image_geometry(preset: str) -> tuple[int, int, str]:
    """(channels, size, PIL mode): the mini models take 1x32x32, the paper's 3x224x224."""
    return (1, 32, "L") if _world(preset) == "mini" else (3, 224, "RGB")


def dataset_info(name: str, preset: str = "mini") -> DatasetInfo:
    """Classes, channels and resolution of ``name``; works without the data for the registered paper sets."""
    _check_name(name, preset)
    if mini_set(name) is not None:
        return mini_info(name)
    chans, size, _ = _image_geometry(preset)
    return paper_info(name, chans, size)


def build_dataset(name: str, split: str, *, preset: str = "mini", train_transform: bool | None = None,
                  root: str | os.PathLike | None = None, seed: int | None = None, val_fraction: float = 0.0,
                  split_seed: int = SPLIT_SEED) -> KDDataset:
    """Dataset ``name``'s ``split`` ("train" or "test") with the preset's augmentation.

    ``train_transform`` defaults to ``split == "train"``. For the mini world ``seed``
    picks the world (``MiniWorld(seed=seed)``: corpus, few-shot draw and test subset);
    None means the preset's ``data_seed``, the one every run of the preset trains on,
    kept apart from the run seeds (which change initialization and batch order only,
    as the paper's seeds do on its fixed datasets). A pretraining run and the target
    runs built on it must see the same world for the target images to stay unseen by
    the pretraining. The preset's ``test_images`` sets the mini test set (None: all
    10,000). The paper datasets have fixed official splits and ignore both. ``root``
    overrides where the data is looked for: by default ``$KDLIB_DATA/<name>``, or
    ``<outputs>/cache/datasets/<name>`` when ``KDLIB_DATA`` is unset. A relative
    ``imagefolder:<path>`` is relative to the working directory.

    ``val_fraction`` > 0 holds a stratified part of the train split out (``kdlib.data.split``,
    seeded by ``split_seed``): ``"train"`` is then the rest and ``"val"`` the held-out part
    (un-augmented by default, like ``"test"``).
    """
    _check_name(name, preset)
    if split not in SPLITS + ("val",):
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS) + ['val']} ('val' needs "
                         "val_fraction > 0)")
    fraction = check_fraction(val_fraction)
    if split == "val" and fraction == 0:
        raise ValueError(f"split 'val' needs val_fraction > 0 (e.g. val_fraction=0.1); with 0 the whole train split "
                         f"is trained on (the paper's protocol), there is no validation part and the splits are "
                         f"{list(SPLITS)}")
    train = split == "train" if train_transform is None else bool(train_transform)
    source = "test" if split == "test" else "train"
    if mini_set(name) is not None:
        p = presets.preset(preset)
        whole = build_mini(name, source, train, root, p.data_seed if seed is None else seed, p.test_images)
    else:
        _, size, mode = _image_geometry(preset)
        randaug = MINI_RANDAUG if _world(preset) == "mini" else PAPER_RANDAUG
        whole = build_files(name, source, train, size=size, mode=mode, randaug=randaug, root=root)
    return whole if split == "test" else split_part(whole, split, fraction, split_seed)
