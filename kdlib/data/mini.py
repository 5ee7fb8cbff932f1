"""Fashion-MNIST and the mini world built on it (DESIGN.md, "The mini world").

Fashion-MNIST is found (or fetched) once and cached uncompressed; the mini world is a
general-pretraining corpus standing in for ImageNet-1K and few-shot target sets drawn
from images the corpus never holds, every index set a function of ``MiniWorld``.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torchvision import datasets as tvd

from kdlib import checks, paths
from kdlib.data.base import DatasetInfo, KDDataset, _env_flag, _generator, proportional_pick
from kdlib.data.transforms import MiniAugment
from kdlib.io import atomic_write_bytes

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

# The five tops (T-shirt/top, pullover, dress, coat, shirt): the classes a coarse pretraining
# lumps into one, so a "tops" target is either inside the pretraining classes (fine corpus,
# like Pets inside ImageNet) or fine classes it never separated (coarse corpus, like Cars).
TOPS: tuple[int, ...] = tuple(k for k, c in enumerate(FINE_TO_COARSE) if c == 0)
MAX_SHOTS = 2500   # the target pool holds about 3,000 images of each class at general_size=30000


@dataclass(frozen=True)
class MiniSet:
    """What a mini-world set's name means: where its images come from, its labels, its size."""
    source: str               # "general" (the pretraining corpus) or "fewshot" (drawn from the target pool)
    labels: str               # "fine" (10 classes), "coarse" (4) or "tops" (the 5 tops, fine labels)
    shots: int | None = None  # few-shot images per class (None: MiniWorld.shots)

    @property
    def classes(self) -> tuple[str, ...]:
        if self.labels == "coarse":
            return COARSE_CLASSES
        return tuple(FASHION_CLASSES[k] for k in TOPS) if self.labels == "tops" else FASHION_CLASSES

    @property
    def fine_classes(self) -> tuple[int, ...]:
        """The official classes whose images the set holds."""
        return TOPS if self.labels == "tops" else tuple(range(len(FASHION_CLASSES)))

    def relabel(self, y: torch.Tensor) -> torch.Tensor:
        """Official labels of the set's images -> the set's labels."""
        if self.labels == "coarse":
            return torch.tensor(FINE_TO_COARSE, dtype=torch.int64)[y]
        if self.labels == "tops":
            table = torch.full((len(FASHION_CLASSES),), -1, dtype=torch.int64)
            table[list(TOPS)] = torch.arange(len(TOPS))
            return table[y]
        return y


MINI_SETS: dict[str, MiniSet] = {
    "fmnist-general": MiniSet("general", "fine"),
    "fmnist-general-coarse": MiniSet("general", "coarse"),
    "fmnist-fine": MiniSet("fewshot", "fine"),
    "fmnist-coarse": MiniSet("fewshot", "coarse"),
    "fmnist-tops": MiniSet("fewshot", "tops"),
}
SIZED_NAMES = ("a few-shot set with its images per class appended, e.g. 'fmnist-fine-300' or 'fmnist-tops-500' "
               f"(2..{MAX_SHOTS}; without it: 100 per class)")


def base_dataset(name: str) -> str:
    """The registered name a sized mini set is a larger draw of (``fmnist-fine-300`` -> ``fmnist-fine``): its
    durations and traits are those of that set. Other names come back unchanged."""
    ms = mini_set(name)
    return name.rpartition("-")[0] if ms is not None and ms.shots is not None else name


def mini_set(name: object) -> MiniSet | None:
    """The set a mini-world name means (``fmnist-fine``, or ``fmnist-fine-300``: 300 images per class), or None."""
    if not isinstance(name, str):
        return None
    if name in MINI_SETS:
        return MINI_SETS[name]
    base, _, tail = name.rpartition("-")
    known = MINI_SETS.get(base)
    if known is None or known.source != "fewshot" or not tail.isdigit() or tail != str(int(tail)):
        return None
    shots = int(tail)
    if not 2 <= shots <= MAX_SHOTS or shots == MiniWorld.shots:  # the default size has one name only
        return None
    return dataclasses.replace(known, shots=shots)


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
    test = proportional_pick(test_labels, world.test_size, _generator("mini-test", world.seed))
    srt = lambda t: torch.sort(t).values  # noqa: E731
    return MiniSplit(general=srt(general), pool=srt(pool), fewshot=srt(torch.cat(shots)), test=test)


def mini_split(world: MiniWorld = MINI_WORLD, root: str | os.PathLike | None = None) -> MiniSplit:
    """The corpus / target-pool / few-shot / test indices of ``world`` (cached in memory)."""
    return _mini_split(world, str(fashion_mnist_root(root)))


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


def mini_info(name: str) -> DatasetInfo:
    """Classes and geometry of a mini-world set (no data needed)."""
    ms = mini_set(name)
    return DatasetInfo(name, len(ms.classes), ms.classes, 1, 32, ms.labels != "coarse")


def mini_train_size(name: str) -> int:
    """Images in a mini set's train split, known without the data."""
    ms = mini_set(name)
    if ms.source == "general":
        return MINI_WORLD.general_size
    return (ms.shots or MINI_WORLD.shots) * len(ms.fine_classes)


def build_mini(name: str, split: str, train: bool, root: Any, seed: int, test_size: int | None = None) -> MiniDataset:
    """Set ``name``'s ``split`` in the mini world drawn with ``seed``; ``test_size`` None: the whole test split."""
    if not checks.is_int(seed):
        raise ValueError(f"seed={seed!r} must be an int")
    fm_root = str(fashion_mnist_root(root))
    ms = mini_set(name)
    world = dataclasses.replace(MINI_WORLD, seed=seed, shots=ms.shots or MINI_WORLD.shots,
                                test_size=_IDX_COUNTS["t10k"] if test_size is None else test_size)
    ids = _mini_split(world, fm_root)
    images, labels = _fashion_arrays(fm_root, split == "train")
    indices = (ids.general if ms.source == "general" else ids.fewshot) if split == "train" else ids.test
    if ms.labels == "tops":
        indices = indices[torch.isin(labels[indices], torch.tensor(TOPS))]
    return MiniDataset(images, indices, ms.relabel(labels[indices]), ms.classes, MiniAugment() if train else None)
