"""The paper's datasets at 224 px (Frank & Davis, Sect. 3.1 and 4.5), and any image folder.

Oxford-IIIT Pets, CIFAR100, Stanford Cars, Tiny ImageNet, ImageNet-Birds and
Finer-Grained Birds, read in place with torchvision from ``$KDLIB_DATA/<name>`` (or the
cache); a missing set is a ValueError that says what to put where. Class names are read
from the data; the registered sets answer ``dataset_info`` without it.
"""
from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets as tvd

from kdlib import paths
from kdlib.data.base import DatasetInfo, KDDataset, _env_flag
from kdlib.data.transforms import file_transform


@dataclass(frozen=True)
class _Paper:
    num_classes: int
    fine: bool
    crop: str                 # "inception" or "resize"
    layout: str               # what the user puts in the folder
    download: bool            # torchvision (or the official URL) can fetch it



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


def image_path(base: Any, index: int) -> str | None:
    """The file behind item ``index`` of a torchvision dataset, when it has one."""
    for attr in ("samples", "_samples"):  # ImageFolder, TinyImageNetVal / StanfordCars
        seq = getattr(base, attr, None)
        if seq is not None:
            item = seq[index]
            return str(item[0] if isinstance(item, (tuple, list)) else item)
    images = getattr(base, "_images", None)  # OxfordIIITPet
    return str(images[index]) if images is not None else None


def unreadable(error: BaseException) -> bool:
    """Errors a bad image file raises in PIL (truncated, not an image, a broken header)."""
    return isinstance(error, (OSError, SyntaxError, ValueError, Image.DecompressionBombError))


def paper_info(name: str, chans: int, size: int) -> DatasetInfo:
    """Classes of a paper set or an image folder (registered sets answer without their data)."""
    if name.startswith(_IMAGEFOLDER):
        root = _imagefolder_root(name)
        classes = _folder_classes(name, root, None)
        # A user's own folder: assumed fine-grained, like the paper's bird sets.
        return DatasetInfo(name, len(classes), classes, chans, size, True)
    spec = _PAPER[name]
    classes = _paper_classes(name, _default_root(name))
    return DatasetInfo(name, spec.num_classes, classes or tuple(f"class_{i}" for i in range(spec.num_classes)),
                       chans, size, spec.fine)


def build_files(name: str, split: str, train: bool, *, size: int, mode: str, randaug: tuple[int, float],
                root: Any = None) -> FileDataset:
    """A paper set's (or an image folder's) split with the paper's per-sample pipeline."""
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
