"""Datasets, augmentation and loaders for both presets.

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
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import os
import pickle
import signal
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import datasets as tvd
from torchvision.transforms import v2

from kdlib import paths
from kdlib.io import atomic_write_bytes

# ----------------------------------------------------------------------------- Fashion-MNIST

FASHION_CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
COARSE_CLASSES: tuple[str, ...] = ("top", "bottom", "footwear", "bag")
# Fashion-MNIST's natural hierarchy: tops, the trouser, footwear, the bag.
FINE_TO_COARSE: tuple[int, ...] = (0, 1, 0, 0, 0, 2, 0, 2, 3, 2)

# Where Debian's ``dataset-fashion-mnist`` package puts the four gzipped IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_COUNTS = {"train": 60000, "t10k": 10000}

PRESETS = ("mini", "paper")  # the two worlds; other presets (``patient``) map onto one (``specs.world``)
SPLITS = ("train", "test")

# RandAugment (num_ops, magnitude) on torchvision's scale: magnitude is a bin 0..30 of
# v2.RandAugment's default 31. The paper's n=2, m=14 is what the authors' code calls
# (loganfrank/temp-good-kd: ``v2.RandAugment(num_ops=2, magnitude=14)``), a moderate
# strength; the mini world keeps its bin 15 (it was timm's m=5 before, the same bin).
MINI_RANDAUG = (2, 15)
PAPER_RANDAUG = (2, 14)
_RANDAUG_BINS = 31
_TIMM_MEAN_FILL = (124, 116, 104)  # timm fills RandAugment's empty pixels with the ImageNet mean


def _env_flag(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None and value.strip() else None


def _idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (uncompressed preferred, else ``.gz``), or None."""
    if not folder.is_dir():
        return None
    found = {}
    for name in _IDX_FILES:
        plain, packed = folder / name, folder / f"{name}.gz"
        if plain.is_file():
            found[name] = plain
        elif packed.is_file():
            found[name] = packed
        else:
            return None
    return found


def _is_torchvision_root(root: Path) -> bool:
    raw = root / "FashionMNIST" / "raw"
    return all((raw / name).is_file() for name in _IDX_FILES)


def _atomic_copy(src: Path, dst: Path) -> None:
    """Decompress (``.gz``) or copy ``src`` to ``dst`` atomically (the files are < 50 MB)."""
    try:
        with (gzip.open if src.suffix == ".gz" else open)(src, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # a truncated download, or not gzip at all
        raise ValueError(f"{src} is not a complete gzip file ({type(err).__name__}: {err or 'truncated'}); "
                         "download it again (or replace it with the uncompressed IDX file)") from err
    if len(raw) != _idx_size(dst.name):
        raise ValueError(f"{src} holds {len(raw)} bytes{' once decompressed' if src.suffix == '.gz' else ''}, expected "
                         f"{_idx_size(dst.name)} for Fashion-MNIST's {dst.name}; download it again")
    atomic_write_bytes(dst, raw)


def _idx_size(name: str) -> int:
    count = _IDX_COUNTS[name.split("-")[0]]
    return (16 + count * 28 * 28) if "images" in name else (8 + count)


def _check_idx(path: Path) -> None:
    """A truncated or foreign file fails here with a clear message instead of deep in torchvision."""
    size = path.stat().st_size
    if size != _idx_size(path.name):
        raise ValueError(f"{path} has {size} bytes, expected {_idx_size(path.name)} for Fashion-MNIST; "
                         f"delete it (kdlib rebuilds it) or fix the source files")


def _materialize(files: dict[str, Path]) -> Path:
    """Put the IDX files, uncompressed, where torchvision looks: ``<cache>/FashionMNIST/raw``."""
    root = paths.cache_dir()
    raw = root / "FashionMNIST" / "raw"
    for name, src in files.items():
        if not (raw / name).is_file():
            _atomic_copy(src, raw / name)
    for name in _IDX_FILES:
        _check_idx(raw / name)
    return root


def _candidates(base: Path) -> list[Path]:
    raw = Path("FashionMNIST") / "raw"
    return [base, base / "fashion-mnist", base / raw, base / "fashion-mnist" / raw]


def _from_folder(base: Path) -> Path | None:
    if _is_torchvision_root(base):
        return base
    for folder in _candidates(base):
        files = _idx_files(folder)
        if files is not None:
            return _materialize(files)
    return None


def fashion_mnist_root(root: str | os.PathLike | None = None) -> Path:
    """A folder ``r`` such that ``torchvision.datasets.FashionMNIST(r, download=False)`` works.

    Looks, in order, at the explicit ``root``, at ``$KDLIB_DATA``, at the cache, at
    Debian's ``/usr/share/datasets/fashion-mnist`` (gzipped files are decompressed once
    into the cache) and finally lets torchvision download into the cache (off when
    ``KDLIB_DOWNLOAD=0``). A folder may hold the four IDX files (plain or ``.gz``) or
    torchvision's ``FashionMNIST/raw`` layout.
    """
    if root is not None:
        base = Path(root).expanduser()
        found = _from_folder(base)
        if found is None:
            raise ValueError(f"fashion_mnist_root(root={str(root)!r}): no Fashion-MNIST IDX files there; expected "
                             f"{', '.join(_IDX_FILES)} (plain or .gz) in it, in fashion-mnist/ or in "
                             "FashionMNIST/raw/. "
                             "Pass another root, or root=None to search KDLIB_DATA and the system paths")
        return found
    tried = []
    data = paths.data_dir()
    if data is not None:
        found = _from_folder(data)
        if found is not None:
            return found
        tried.append(f"$KDLIB_DATA={data} (and its fashion-mnist/ and FashionMNIST/raw/): no IDX files; "
                     f"put {', '.join(f + '.gz' for f in _IDX_FILES)} there")
    else:
        tried.append("$KDLIB_DATA: not set; set it to a folder holding the four IDX files (plain or .gz)")
    cache = paths.cache_dir()
    if _is_torchvision_root(cache):
        for name in _IDX_FILES:
            _check_idx(cache / "FashionMNIST" / "raw" / name)
        return cache
    tried.append(f"{cache / 'FashionMNIST' / 'raw'}: empty (kdlib's cache, filled from the other places)")
    files = _idx_files(DEBIAN_FASHION_MNIST)
    if files is not None:
        return _materialize(files)
    tried.append(f"{DEBIAN_FASHION_MNIST}: missing; install it with `sudo apt-get install dataset-fashion-mnist`")
    if _env_flag("KDLIB_DOWNLOAD") == "0":
        tried.append("torchvision download: disabled by KDLIB_DOWNLOAD=0; unset it on a machine with internet")
    else:
        try:
            tvd.FashionMNIST(str(cache), train=True, download=True)
            tvd.FashionMNIST(str(cache), train=False, download=True)
            return cache
        except Exception as err:  # no network, proxy, server down: report with the other places
            tried.append(f"torchvision download into {cache}: failed ({type(err).__name__}: {err}); "
                         "it needs internet access")
    raise ValueError("Fashion-MNIST not found. Tried:\n  - " + "\n  - ".join(tried))


@functools.lru_cache(maxsize=4)
def _fashion_arrays(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The official split as uint8 N x 1 x 32 x 32 (zero-padded by 2, no interpolation) and int64 labels."""
    ds = tvd.FashionMNIST(root, train=train, download=False)
    images = torch.nn.functional.pad(ds.data, (2, 2, 2, 2)).unsqueeze(1).contiguous()
    return images, ds.targets.to(torch.int64)


# ----------------------------------------------------------------------------- the mini world

@dataclass(frozen=True)
class MiniWorld:
    """The constants of the mini world; every index set below is a function of them."""
    seed: int = 0
    general_size: int = 30000   # images of the official train split in the general-pretraining corpus
    shots: int = 100            # few-shot target images per fine class, drawn from the rest
    test_size: int = 5000       # stratified subset of the official test split


MINI_WORLD = MiniWorld()


@dataclass(frozen=True)
class MiniSplit:
    """Indices into the official splits (sorted): corpus and pool partition the train split."""
    general: torch.Tensor
    pool: torch.Tensor
    fewshot: torch.Tensor
    test: torch.Tensor


def _mix(*parts: Any) -> int:
    """A stable 63-bit seed from any tuple of values (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _generator(*parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(_mix(*parts))


def _stratified(labels: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """``size`` indices with each class's share of ``labels`` (largest remainder), drawn with ``gen``."""
    counts = torch.bincount(labels).tolist()
    exact = [size * c / len(labels) for c in counts]
    quota = [int(e) for e in exact]
    for k in sorted(range(len(counts)), key=lambda k: quota[k] - exact[k])[: size - sum(quota)]:
        quota[k] += 1
    order = torch.randperm(len(labels), generator=gen)
    picked = [order[labels[order] == k][:q] for k, q in enumerate(quota)]
    return torch.sort(torch.cat(picked)).values


@functools.lru_cache(maxsize=8)
def _mini_split(world: MiniWorld, root: str) -> MiniSplit:
    _, train_labels = _fashion_arrays(root, True)
    _, test_labels = _fashion_arrays(root, False)
    n = len(train_labels)
    if not 1 <= world.general_size < n:
        raise ValueError(f"MiniWorld.general_size={world.general_size}; choose 1..{n - 1} "
                         "(the rest is the target pool)")
    if not 1 <= world.test_size <= len(test_labels):
        raise ValueError(f"MiniWorld.test_size={world.test_size}; choose 1..{len(test_labels)}")
    perm = torch.randperm(n, generator=_generator("mini-split", world.seed))
    general, pool = perm[: world.general_size], perm[world.general_size:]
    pool_labels = train_labels[pool]
    shots = []
    for k in range(len(FASHION_CLASSES)):
        members = pool[pool_labels == k]   # already in random order
        if world.shots < 1 or len(members) < world.shots:
            raise ValueError(f"MiniWorld.shots={world.shots}: the target pool has only {len(members)} images of "
                             f"{FASHION_CLASSES[k]!r}; lower shots or general_size")
        shots.append(members[: world.shots])
    test = _stratified(test_labels, world.test_size, _generator("mini-test", world.seed))
    srt = lambda t: torch.sort(t).values  # noqa: E731
    return MiniSplit(general=srt(general), pool=srt(pool), fewshot=srt(torch.cat(shots)), test=test)


def mini_split(world: MiniWorld = MINI_WORLD, root: str | os.PathLike | None = None) -> MiniSplit:
    """The corpus / target-pool / few-shot / test indices of ``world`` (cached in memory)."""
    return _mini_split(world, str(fashion_mnist_root(root)))


# ----------------------------------------------------------------------------- datasets

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


class MiniDataset(KDDataset):
    """A view of one official Fashion-MNIST split: ``indices`` into it, relabelled."""
    in_memory = True

    def __init__(self, images: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
                 transform: Callable | None):
        super().__init__(classes, transform)
        self.images = images          # the whole padded split, shared with the cache (read only)
        self.indices = indices
        self.labels = labels
        self._idx = indices.tolist()
        self._labels = labels.tolist()

    def __len__(self) -> int:
        return len(self._idx)

    def _load(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[self._idx[index]]
        return (image if self.transform is not None else image.clone()), self._labels[index]


class FileDataset(KDDataset):
    """A dataset of image files (or PIL images) whose base yields ``(PIL image, label)``."""

    def __init__(self, base: Dataset, classes: Sequence[str], transform: Callable, root: Path, name: str = ""):
        super().__init__(classes, transform)
        self.base = base
        self.root = root
        self.name = name or f"imagefolder:{root}"

    def __len__(self) -> int:
        return len(self.base)

    def _load(self, index: int) -> tuple[Any, int]:
        """The item, or a ValueError naming the file that does not decode and how to find the others."""
        from kdlib.data_check import image_path, unreadable

        try:
            image, label = self.base[index]
        except Exception as e:
            if not unreadable(e):
                raise
            path = image_path(self.base, index) or f"item {index} of {self.root}"
            raise ValueError(f"image {path} cannot be read ({type(e).__name__}: {e}); list every bad file of "
                             f"this dataset with `python -m kdlib.data check {self.name}`, then delete or "
                             "replace them") from e
        return image, int(label)


# ----------------------------------------------------------------------------- transforms

def randaug_magnitude(m: int) -> int:
    """A RandAugment magnitude on torchvision's scale (a bin 0..30 of 31), or a ValueError."""
    if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m < _RANDAUG_BINS:
        raise ValueError(f"RandAugment magnitude={m!r} must be an integer bin 0..{_RANDAUG_BINS - 1} of "
                         f"torchvision's v2.RandAugment (the paper's is 14); timm's 0-10 scale is not used")
    return m


def _randaugment(randaug: tuple[int, float], fill: Any = None) -> v2.RandAugment:
    n, m = randaug
    return v2.RandAugment(num_ops=n, magnitude=randaug_magnitude(m),
                          num_magnitude_bins=_RANDAUG_BINS, fill=fill)


class _SingleImageRandAugment(v2.RandAugment):
    """torchvision's RandAugment for one image of a fixed size, without the per-call pytree handling.

    Same random draws and the same kernels as ``v2.RandAugment.forward`` (a test checks
    they agree image for image); the magnitudes are looked up once instead of per call.
    """

    def __init__(self, randaug: tuple[int, float], height: int, width: int):
        n, m = randaug
        super().__init__(num_ops=n, magnitude=randaug_magnitude(m), num_magnitude_bins=_RANDAUG_BINS)
        self._ops = []
        for op, (magnitudes_fn, signed) in self._AUGMENTATION_SPACE.items():
            mags = magnitudes_fn(self.num_magnitude_bins, height, width)
            self._ops.append((op, None if mags is None else float(mags[self.magnitude]), signed))

    def forward(self, image: Any) -> Any:
        for _ in range(self.num_ops):
            op, magnitude, signed = self._ops[int(torch.randint(len(self._ops), ()))]
            if magnitude is None:
                magnitude = 0.0
            elif signed and torch.rand(()) <= 0.5:
                magnitude = -magnitude
            image = self._apply_image_or_video_transform(image, op, magnitude, interpolation=self.interpolation,
                                                         fill=self._fill)
        return image


class MiniAugment:
    """RandomCrop(size, padding), RandomHorizontalFlip, RandAugment on a uint8 CxHxW tensor.

    The result equals ``self.reference`` (the plain ``v2.Compose``) for the same RNG
    state, but runs torchvision's PIL kernels: on 32x32 images they are several times
    faster than its tensor kernels (the tensor affine builds a sampling grid per call),
    which keeps the mini world's augmentation well under 0.5 ms per image.
    """

    def __init__(self, size: int = 32, padding: int = 2, randaug: tuple[int, float] = MINI_RANDAUG):
        self.crop = v2.RandomCrop(size, padding=padding)
        self.flip = v2.RandomHorizontalFlip()
        self.randaug = _SingleImageRandAugment(randaug, size, size)
        self.reference = v2.Compose([self.crop, self.flip, _randaugment(randaug)])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        pil = _to_pil(image)
        pil = self.crop.transform(pil, self.crop.make_params([pil]))
        if torch.rand(1) < self.flip.p:  # the draw v2.RandomHorizontalFlip makes
            pil = v2.functional.horizontal_flip(pil)
        return _from_pil(self.randaug(pil))

    def __repr__(self) -> str:
        return f"MiniAugment({self.reference})"


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _from_pil(image: Image.Image) -> torch.Tensor:
    out = torch.from_numpy(np.array(image, dtype=np.uint8))
    return out.unsqueeze(0) if out.ndim == 2 else out.permute(2, 0, 1).contiguous()


class ToMode:
    """Convert a PIL image to ``mode`` ('RGB' or 'L'): datasets hold grayscale, RGBA and palette files."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == self.mode else image.convert(self.mode)

    def __repr__(self) -> str:
        return f"ToMode({self.mode!r})"


def file_transform(crop: str, train: bool, *, size: int = 224, mode: str = "RGB",
                   randaug: tuple[int, float] = PAPER_RANDAUG) -> v2.Compose:
    """The paper's per-sample pipeline for PIL images, ending as a uint8 tensor.

    Train: inception crop (``crop="inception"``: Pets, Cars, birds) or a plain resize
    (``crop="resize"``: CIFAR100, Tiny ImageNet), RandAugment, horizontal flip.
    Test: resize to size/0.875 and center crop (inception sets) or the plain resize.
    """
    steps: list[Callable] = [ToMode(mode)]
    if train:
        steps.append(v2.RandomResizedCrop(size) if crop == "inception" else v2.Resize((size, size)))
        steps.append(_randaugment(randaug, fill=_TIMM_MEAN_FILL if mode == "RGB" else None))
        steps.append(v2.RandomHorizontalFlip())
    elif crop == "inception":
        steps += [v2.Resize(round(size / 0.875)), v2.CenterCrop(size)]
    else:
        steps.append(v2.Resize((size, size)))
    steps.append(v2.PILToTensor())
    return v2.Compose(steps)


# ----------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    classes: tuple[str, ...]
    in_chans: int
    image_size: int
    fine: bool  # fine-grained (True) or coarse (False) labels: the paper's granularity axis (Sect. 4.5)


@dataclass(frozen=True)
class _Paper:
    num_classes: int
    fine: bool
    crop: str                 # "inception" or "resize"
    layout: str               # what the user puts in the folder
    download: bool            # torchvision (or the official URL) can fetch it


_MINI = {  # name -> (corpus or few-shot, coarse labels)
    "fmnist-general": ("general", False),
    "fmnist-general-coarse": ("general", True),
    "fmnist-fine": ("fewshot", False),
    "fmnist-coarse": ("fewshot", True),
}

_FOLDER_LAYOUT = "train/<class>/*.jpg and test/<class>/*.jpg (one folder per class, same class folders in both)"
_PAPER = {
    "pets": _Paper(37, True, "inception", "oxford-iiit-pet/images/*.jpg and oxford-iiit-pet/annotations/"
                   "{trainval,test}.txt (the two official archives, extracted)", True),
    "cifar100": _Paper(100, False, "resize", "cifar-100-python/{train,test,meta} (the official python archive, "
                       "extracted)", True),
    "cars": _Paper(196, True, "inception", "stanford_cars/{devkit/,cars_train/,cars_test/,"
                   "cars_test_annos_withlabels.mat} (torchvision's StanfordCars layout)", False),
    "tiny-imagenet": _Paper(200, False, "resize", "tiny-imagenet-200/{wnids.txt,train/,val/} (the official zip, "
                            "extracted; val/ is used as the test split)", True),
    "imagenet-birds": _Paper(52, True, "inception", _FOLDER_LAYOUT, False),
    "finer-birds": _Paper(52, True, "inception", _FOLDER_LAYOUT, False),
}
_TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_IMAGEFOLDER = "imagefolder:"


def dataset_names(preset: str | None = None) -> list[str]:
    """The registered dataset names of ``preset`` (all presets when None); ``imagefolder:<path>`` also works."""
    if preset is None:
        return list(_MINI) + list(_PAPER)
    _check_preset(preset)
    return list(_MINI) if _world(preset) == "mini" else list(_PAPER)


def _world(preset: str) -> str:
    """The world of ``preset``: itself for ``mini``/``paper``, the one it shares otherwise (``patient``: mini)."""
    if preset in PRESETS:
        return preset
    from kdlib import specs
    if isinstance(preset, str) and preset in specs.PRESETS:
        return specs.world(preset)
    shared = sorted(set(specs.PRESETS) - set(PRESETS))
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
    if name in dataset_names(preset):
        return
    other = [p for p in PRESETS if p != preset and name in dataset_names(p)]
    hint = f" ({name!r} belongs to preset {other[0]!r})" if other else ""
    raise ValueError(f"unknown dataset {name!r} for preset {preset!r}{hint}; choose one of "
                     f"{dataset_names(preset)} or 'imagefolder:<path>' ({_FOLDER_LAYOUT})")


def check_name(name: Any, preset: str) -> None:
    """Refuse a dataset name that ``preset`` does not know, naming the allowed ones."""
    if not isinstance(name, str):
        raise ValueError(f"dataset={name!r} must be a dataset name (a string), e.g. {dataset_names(preset)[0]!r}")
    _check_name(name, preset)


_PAPER_TRAIN_SIZES = {"pets": 3680, "cifar100": 50000, "cars": 8144, "tiny-imagenet": 100000}


def train_size(name: str, preset: str = "mini") -> int | None:
    """Images in the train split, known without reading any data (None: only the data can tell)."""
    if name in _MINI:
        return MINI_WORLD.general_size if _MINI[name][0] == "general" else MINI_WORLD.shots * len(FASHION_CLASSES)
    return _PAPER_TRAIN_SIZES.get(name)


def _image_geometry(preset: str) -> tuple[int, int, str]:
    """(channels, size, PIL mode): the mini models take 1x32x32, the paper's 3x224x224."""
    return (1, 32, "L") if _world(preset) == "mini" else (3, 224, "RGB")


def dataset_info(name: str, preset: str = "mini") -> DatasetInfo:
    """Classes, channels and resolution of ``name``; works without the data for the registered paper sets."""
    _check_name(name, preset)
    if name in _MINI:
        coarse = _MINI[name][1]
        classes = COARSE_CLASSES if coarse else FASHION_CLASSES
        return DatasetInfo(name, len(classes), classes, 1, 32, not coarse)
    chans, size, _ = _image_geometry(preset)
    if name.startswith(_IMAGEFOLDER):
        root = _imagefolder_root(name)
        classes = _folder_classes(name, root, None)
        # A user's own folder: assumed fine-grained, like the paper's bird sets.
        return DatasetInfo(name, len(classes), classes, chans, size, True)
    spec = _PAPER[name]
    classes = _paper_classes(name, _default_root(name))
    return DatasetInfo(name, spec.num_classes, classes or tuple(f"class_{i}" for i in range(spec.num_classes)),
                       chans, size, spec.fine)


def build_dataset(name: str, split: str, *, preset: str = "mini", train_transform: bool | None = None,
                  root: str | os.PathLike | None = None, seed: int = 0) -> KDDataset:
    """Dataset ``name``'s ``split`` ("train" or "test") with the preset's augmentation.

    ``train_transform`` defaults to ``split == "train"``. For the mini world ``seed``
    picks the world (``MiniWorld(seed=seed)``: corpus, few-shot draw and test subset),
    so a pretraining run and the target runs built on it must share the seed for the
    target images to stay unseen by the pretraining (``specs``' builders pass it along).
    The paper datasets have fixed official splits and ignore ``seed``. ``root``
    overrides where the data is looked for: by default ``$KDLIB_DATA/<name>``, or
    ``<outputs>/cache/datasets/<name>`` when ``KDLIB_DATA`` is unset. A relative
    ``imagefolder:<path>`` is relative to the working directory.
    """
    _check_name(name, preset)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    train = split == "train" if train_transform is None else bool(train_transform)
    if name in _MINI:
        return _build_mini(name, split, train, root, seed)
    chans, size, mode = _image_geometry(preset)
    randaug = MINI_RANDAUG if _world(preset) == "mini" else PAPER_RANDAUG
    if name.startswith(_IMAGEFOLDER):
        folder = _imagefolder_root(name)
        classes = _folder_classes(name, folder, None)
        base = _folder_split(name, folder, split, tuple(classes))
        return FileDataset(base, classes, file_transform("inception", train, size=size, mode=mode, randaug=randaug),
                           folder, name)
    spec = _PAPER[name]
    folder = Path(root).expanduser() if root is not None else _default_root(name)
    base, classes = _load_paper(name, split, folder)
    return FileDataset(base, classes, file_transform(spec.crop, train, size=size, mode=mode, randaug=randaug), folder,
                       name)


def _build_mini(name: str, split: str, train: bool, root: Any, seed: int) -> MiniDataset:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed={seed!r} must be an int")
    fm_root = str(fashion_mnist_root(root))
    world = dataclasses.replace(MINI_WORLD, seed=seed)
    ids = _mini_split(world, fm_root)
    images, labels = _fashion_arrays(fm_root, split == "train")
    which, coarse = _MINI[name]
    indices = (ids.general if which == "general" else ids.fewshot) if split == "train" else ids.test
    y = labels[indices]
    if coarse:
        y = torch.tensor(FINE_TO_COARSE, dtype=torch.int64)[y]
    return MiniDataset(images, indices, y, COARSE_CLASSES if coarse else FASHION_CLASSES,
                       MiniAugment() if train else None)


# ----------------------------------------------------------------------------- paper datasets

def _default_root(name: str) -> Path:
    data = paths.data_dir()
    return data / name if data is not None else paths.cache_dir() / "datasets" / name


def _download_allowed() -> bool:
    return _env_flag("KDLIB_DOWNLOAD") == "1"


def _missing(name: str, folder: Path, detail: str = "") -> ValueError:
    spec = _PAPER.get(name)
    if spec is None:  # imagefolder:<path>
        fixes = (f"Fixes: put the images there as {_FOLDER_LAYOUT}; or point 'imagefolder:<path>' at the folder "
                 "that holds train/ and test/")
    else:
        fixes = (f"Fixes: (1) put the data there: {spec.layout}; (2) pass root=<folder>, or set KDLIB_DATA=<dir> "
                 f"with the data in <dir>/{name}/")
        fixes += (f"; (3) set KDLIB_DOWNLOAD=1 to download it into {folder} (needs internet)" if spec.download
                  else " (it cannot be downloaded automatically; get it from its authors)")
    return ValueError(f"dataset {name!r}: no data in {folder}{': ' + detail if detail else ''}. {fixes}.")


def _nested(folder: Path, sub: str, marker: str) -> Path | None:
    """torchvision's root for archives extracted as ``<root>/<sub>/``; also accepts ``folder == <sub>``."""
    if (folder / sub / marker).exists():
        return folder
    if folder.name == sub and (folder / marker).exists():
        return folder.parent
    return None


def _tiny_dir(folder: Path) -> Path | None:
    for cand in (folder / "tiny-imagenet-200", folder):
        if (cand / "train").is_dir() and (cand / "val" / "val_annotations.txt").is_file():
            return cand
    return None


class _FixedClassFolder(tvd.ImageFolder):
    """ImageFolder with the class list of the train split, so test labels line up with train labels."""

    def __init__(self, root: Path, classes: Sequence[str]):
        self._fixed = list(classes)
        super().__init__(str(root))

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return self._fixed, {c: i for i, c in enumerate(self._fixed)}


class TinyImageNetVal(Dataset):
    """Tiny ImageNet's official val/ split read in place from ``val_annotations.txt``."""

    def __init__(self, root: Path, classes: Sequence[str]):
        index = {c: i for i, c in enumerate(classes)}
        self.samples = []
        with open(root / "val" / "val_annotations.txt") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    if parts[1] not in index:
                        raise ValueError(f"{root / 'val' / 'val_annotations.txt'}: class {parts[1]!r} of "
                                         f"{parts[0]} is not a folder of {root / 'train'}")
                    self.samples.append((root / "val" / "images" / parts[0], index[parts[1]]))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        path, label = self.samples[index]
        return tvd.folder.default_loader(str(path)), label


def _folder_classes(name: str, folder: Path, expected: int | None) -> tuple[str, ...]:
    train = folder / "train"
    if not (train.is_dir() and (folder / "test").is_dir()):
        raise _missing(name, folder, "expected train/ and test/ folders")
    try:
        classes, _ = tvd.folder.find_classes(str(train))
    except FileNotFoundError as err:
        raise _missing(name, folder, str(err)) from err
    if expected is not None and len(classes) != expected:
        raise ValueError(f"dataset {name!r}: {train} has {len(classes)} class folders, expected {expected}; "
                         "complete the folder, or load a different class set as 'imagefolder:<path>'")
    if len(classes) < 2:
        raise ValueError(f"dataset {name!r}: {train} has {len(classes)} class folder(s) {list(classes)}; a classifier "
                         f"needs at least 2 (one folder per class: {_FOLDER_LAYOUT})")
    return tuple(classes)


def _folder_split(name: str, folder: Path, split: str, classes: tuple[str, ...]) -> Dataset:
    try:
        return _cached_folder(str(folder / split), classes)
    except FileNotFoundError as err:
        raise ValueError(f"dataset {name!r}: {err} (in {folder / split}); every class folder of train/ needs "
                         f"images in {split}/ too ({_FOLDER_LAYOUT})") from err


@functools.lru_cache(maxsize=8)
def _cached_folder(path: str, classes: tuple[str, ...]) -> Dataset:
    return _FixedClassFolder(Path(path), classes)


def _imagefolder_root(name: str) -> Path:
    return Path(name[len(_IMAGEFOLDER):]).expanduser()


class _NoGlobals(pickle.Unpickler):
    """CIFAR's meta file is plain lists and strings; refuse anything that would import code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _paper_classes(name: str, folder: Path) -> tuple[str, ...] | None:
    """Class names read from the data, or None when the data is not there."""
    try:
        if name == "pets":
            tv_root = _nested(folder, "oxford-iiit-pet", "annotations")
            if tv_root is None:
                return None
            classes = tuple(tvd.OxfordIIITPet(str(tv_root), split="trainval").classes)
        elif name == "cifar100":
            tv_root = _nested(folder, "cifar-100-python", "meta")
            if tv_root is None:
                return None
            with open(tv_root / "cifar-100-python" / "meta", "rb") as f:
                classes = tuple(_NoGlobals(f, encoding="latin1").load()["fine_label_names"])
        elif name == "cars":
            tv_root = _nested(folder, "stanford_cars", "devkit")
            if tv_root is None:
                return None
            import scipy.io
            meta = scipy.io.loadmat(str(tv_root / "stanford_cars" / "devkit" / "cars_meta.mat"), squeeze_me=True)
            classes = tuple(str(c) for c in meta["class_names"])
        elif name == "tiny-imagenet":
            tiny = _tiny_dir(folder)
            if tiny is None:
                return None
            return _tiny_names(tiny, _tiny_wnids(tiny))
        else:
            if not (folder / "train").is_dir():
                return None
            return _folder_classes(name, folder, _PAPER[name].num_classes)
    except (OSError, KeyError, RuntimeError, pickle.UnpicklingError) as err:
        raise ValueError(f"dataset {name!r}: could not read class names in {folder} ({err})") from err
    _check_count(name, folder, classes)
    return classes


def _check_count(name: str, folder: Path, classes: Sequence[str]) -> None:
    expected = _PAPER[name].num_classes
    if len(classes) != expected:
        raise ValueError(f"dataset {name!r}: the data in {folder} has {len(classes)} classes, expected {expected}; "
                         "the folder is incomplete or holds another dataset")


def _tiny_wnids(tiny: Path) -> tuple[str, ...]:
    wnids, _ = tvd.folder.find_classes(str(tiny / "train"))
    _check_count("tiny-imagenet", tiny, wnids)
    return tuple(wnids)


def _tiny_names(tiny: Path, wnids: Sequence[str]) -> tuple[str, ...]:
    """Readable names from words.txt (first synonym) in ImageFolder's wnid order."""
    words = {}
    if (tiny / "words.txt").is_file():
        with open(tiny / "words.txt") as f:
            for line in f:
                wnid, _, text = line.rstrip("\n").partition("\t")
                words[wnid] = text.split(",")[0].strip()
    return tuple(words.get(w) or w for w in wnids)


@functools.lru_cache(maxsize=8)
def _cached_tv(name: str, split: str, tv_root: str) -> Dataset:
    if name == "pets":
        return tvd.OxfordIIITPet(tv_root, split="trainval" if split == "train" else "test")
    if name == "cifar100":
        return tvd.CIFAR100(tv_root, train=split == "train")
    return tvd.StanfordCars(tv_root, split=split)


def _download(name: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if name == "pets":
            tvd.OxfordIIITPet(str(folder), split="trainval", download=True)
        elif name == "cifar100":
            tvd.CIFAR100(str(folder), train=True, download=True)
        elif name == "tiny-imagenet":
            from torchvision.datasets.utils import download_and_extract_archive
            download_and_extract_archive(_TINY_URL, str(folder))
    except Exception as err:
        raise _missing(name, folder, f"download failed ({type(err).__name__}: {err})") from err


def _load_paper(name: str, split: str, folder: Path) -> tuple[Dataset, tuple[str, ...]]:
    markers = {"pets": ("oxford-iiit-pet", "annotations"), "cifar100": ("cifar-100-python", "meta"),
               "cars": ("stanford_cars", "devkit")}
    spec = _PAPER[name]
    present = (_tiny_dir(folder) is not None if name == "tiny-imagenet"
               else _nested(folder, *markers[name]) is not None if name in markers
               else (folder / "train").is_dir())
    if not present and spec.download and _download_allowed():
        _download(name, folder)
    if name == "tiny-imagenet":
        tiny = _tiny_dir(folder)
        if tiny is None:
            raise _missing(name, folder)
        wnids = _tiny_wnids(tiny)
        names = _tiny_names(tiny, wnids)
        base = _cached_folder(str(tiny / "train"), wnids) if split == "train" else TinyImageNetVal(tiny, wnids)
        return base, names
    if name in markers:
        tv_root = _nested(folder, *markers[name])
        if tv_root is None:
            raise _missing(name, folder)
        try:
            base = _cached_tv(name, split, str(tv_root))
        except (RuntimeError, FileNotFoundError, ValueError) as err:
            raise _missing(name, folder, f"torchvision could not read it ({err})") from err
        classes = tuple(base.classes) if name != "pets" else _paper_classes(name, folder)
        _check_count(name, folder, classes)
        return base, classes
    classes = _folder_classes(name, folder, spec.num_classes)
    return _folder_split(name, folder, split, classes), classes


# ----------------------------------------------------------------------------- loaders

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
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
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


if __name__ == "__main__":  # python -m kdlib.data check <dataset>
    import sys

    from kdlib.data_check import main
    sys.exit(main())
