"""Datasets, augmentation and loaders for both presets: ``data.build_dataset(name, split)``.

``paper`` uses the study's real datasets at 224 px (Frank & Davis, Sect. 3.1 and 4.5):
Oxford-IIIT Pets, CIFAR100, Stanford Cars, Tiny ImageNet, ImageNet-Birds and
Finer-Grained Birds, plus any ``imagefolder:<path>``. ``mini`` is the same study on
Fashion-MNIST (DESIGN.md, "The mini world"): a general-pretraining corpus standing in
for ImageNet-1K and few-shot target sets drawn from images the corpus never holds.

Every dataset yields ``(image, label)``: a ``torch.uint8`` tensor CxHxW, un-normalized
(each model normalizes its own input), and an ``int``. Augmentation is per sample
(crop, RandAugment, flip); MixUp/CutMix is per batch in the training loop.
``make_loader`` makes an epoch's order *and* every sample's augmentation a function of
``(seed, epoch)`` alone, whatever the number of workers, so a resumed run sees the same
batches as an uninterrupted one.

Rooms: ``registry`` (names, ``dataset_info``, ``build_dataset``), ``mini`` (Fashion-MNIST
and the mini world), ``paper`` (the paper's sets, image folders), ``transforms``,
``loaders``, ``split`` (the validation part), and ``base`` (the item protocol they share).
"""
from kdlib.data.base import PRESETS, SPLITS, DatasetInfo, KDDataset, _mix  # noqa: F401 - logit_cache keys streams with it
from kdlib.data.loaders import EpochSampler, make_loader, reseed
from kdlib.data.mini import (COARSE_CLASSES, DEBIAN_FASHION_MNIST, FASHION_CLASSES, FINE_TO_COARSE, MINI_SETS,
                             MINI_WORLD, MiniDataset, MiniSet, MiniSplit, MiniWorld, base_dataset, fashion_mnist_root,
                             mini_set, mini_split)
from kdlib.data.paper import FileDataset, TinyImageNetVal
from kdlib.data.split import DEFAULT_VAL_FRACTION, SPLIT_SEED, SubsetDataset, stratified_split, stratified_subset
from kdlib.data.registry import build_dataset, check_name, dataset_info, dataset_names, train_size
from kdlib.data.transforms import (MINI_RANDAUG, PAPER_RANDAUG, MiniAugment, ToMode, file_transform,
                                   randaug_magnitude)

__all__ = [
    "PRESETS", "SPLITS", "DatasetInfo", "KDDataset", "EpochSampler", "make_loader", "reseed", "COARSE_CLASSES",
    "DEBIAN_FASHION_MNIST", "FASHION_CLASSES", "FINE_TO_COARSE", "MINI_SETS", "MINI_WORLD", "MiniDataset",
    "MiniSet", "MiniSplit", "MiniWorld", "base_dataset", "fashion_mnist_root", "mini_set", "mini_split", "FileDataset", "TinyImageNetVal",
    "build_dataset", "check_name", "dataset_info", "dataset_names", "train_size", "MINI_RANDAUG", "PAPER_RANDAUG", "MiniAugment", "ToMode",
    "file_transform", "randaug_magnitude", "DEFAULT_VAL_FRACTION", "SPLIT_SEED", "SubsetDataset", "stratified_split",
    "stratified_subset",
]
