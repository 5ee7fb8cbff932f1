"""kdlib.data: the mini world on real Fashion-MNIST, the paper loaders on small files written here."""
from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2

from kdlib import data
from kdlib.data import mini, transforms

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- helpers

def _image(path: Path, *, size=(40, 30), mode="RGB", value=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    if mode == "L":
        img = Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), "L")
    else:
        img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
        if mode == "RGBA":
            img = img.convert("RGBA")
        elif mode == "P":
            img = img.convert("P")
    img.save(path)


def _folder_tree(root: Path, classes: list[str], per_class: int = 1) -> None:
    for split in ("train", "test"):
        for k, c in enumerate(classes):
            for i in range(per_class):
                mode = ("RGB", "L", "RGBA", "P")[(k + i) % 4]
                _image(root / split / c / f"{i}.png", mode=mode, value=k * 10 + i)


def _no_data_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KDLIB_DATA", raising=False)
    monkeypatch.delenv("KDLIB_DOWNLOAD", raising=False)
    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path / "outputs"))


@pytest.fixture(scope="session")
def fm_root(outputs_root) -> Path:
    """The real Fashion-MNIST, decompressed from Debian's package into the session's cache."""
    return data.fashion_mnist_root()


# ----------------------------------------------------------------------------- Fashion-MNIST files

def test_class_names_and_hierarchy():
    assert data.FASHION_CLASSES == tuple(torchvision.datasets.FashionMNIST.classes)
    coarse = {name: data.COARSE_CLASSES[data.FINE_TO_COARSE[k]] for k, name in enumerate(data.FASHION_CLASSES)}
    assert coarse == {"T-shirt/top": "top", "Pullover": "top", "Dress": "top", "Coat": "top", "Shirt": "top",
                      "Trouser": "bottom", "Sandal": "footwear", "Sneaker": "footwear", "Ankle boot": "footwear",
                      "Bag": "bag"}


def test_debian_files_are_decompressed_into_the_cache(fm_root, outputs_root):
    assert fm_root == outputs_root / "cache"
    raw = fm_root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(mini._IDX_FILES)  # no temporary files left behind
    ds = torchvision.datasets.FashionMNIST(str(fm_root), train=False, download=False)
    assert len(ds) == 10000
    with gzip.open(DEBIAN / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == f.read()


def test_explicit_root(fm_root):
    assert data.fashion_mnist_root(fm_root) == fm_root  # torchvision's layout is used in place
    assert data.fashion_mnist_root(str(fm_root / "FashionMNIST" / "raw")) == data.fashion_mnist_root()


def test_kdlib_data_gz_files_decompress_into_a_fresh_cache(tmp_path, monkeypatch):
    src = tmp_path / "data" / "fashion-mnist"
    src.mkdir(parents=True)
    for name in mini._IDX_FILES:
        (src / f"{name}.gz").symlink_to(DEBIAN / f"{name}.gz")
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path / "out"))
    root = data.fashion_mnist_root()
    assert root == tmp_path / "out" / "cache"
    assert len(torchvision.datasets.FashionMNIST(str(root), train=True, download=False)) == 60000
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir()) == sorted(mini._IDX_FILES)


def test_truncated_file_is_reported(tmp_path, monkeypatch, fm_root):
    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path / "out"))
    raw = tmp_path / "out" / "cache" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mini._IDX_FILES:
        (raw / name).symlink_to(fm_root / "FashionMNIST" / "raw" / name)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte has 100 bytes"):
        data.fashion_mnist_root()


def test_nothing_found_names_every_place_and_fix(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    monkeypatch.setattr(mini, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setenv("KDLIB_DOWNLOAD", "0")  # never reach for the network in tests
    with pytest.raises(ValueError) as err:
        data.fashion_mnist_root()
    msg = str(err.value)
    for part in ("KDLIB_DATA", str(tmp_path / "nowhere"), "apt-get install dataset-fashion-mnist",
                 "KDLIB_DOWNLOAD=0", "internet"):
        assert part in msg
    with pytest.raises(ValueError, match="no Fashion-MNIST IDX files"):
        data.fashion_mnist_root(tmp_path / "empty")
    with pytest.raises(ValueError, match="Fashion-MNIST not found"):
        data.build_dataset("fmnist-fine", "train")


# ----------------------------------------------------------------------------- the mini world

def test_mini_world_is_deterministic_from_its_seed(fm_root):
    world = data.MiniWorld()
    a = data.mini_split(world)
    b = mini._mini_split.__wrapped__(world, str(fm_root))  # recomputed, not cached
    for field in ("general", "pool", "fewshot", "test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    c = data.mini_split(data.MiniWorld(seed=1))
    assert not torch.equal(a.general, c.general)
    assert not torch.equal(a.fewshot, c.fewshot)
    assert not torch.equal(a.test, c.test)
    d = data.build_dataset("fmnist-fine", "train", seed=1)
    assert torch.equal(d.indices, c.fewshot)


def test_corpus_pool_fewshot_and_test_sets(fm_root):
    world = data.MiniWorld()
    s = data.mini_split(world)
    general, pool = set(s.general.tolist()), set(s.pool.tolist())
    assert len(general) == world.general_size and not general & pool
    assert general | pool == set(range(60000))
    assert set(s.fewshot.tolist()) <= pool
    _, train_labels = mini._fashion_arrays(str(fm_root), True)
    assert torch.bincount(train_labels[s.fewshot], minlength=10).tolist() == [world.shots] * 10
    _, test_labels = mini._fashion_arrays(str(fm_root), False)
    assert len(set(s.test.tolist())) == world.test_size
    assert torch.bincount(test_labels[s.test], minlength=10).tolist() == [world.test_size // 10] * 10


def test_impossible_worlds_are_refused(fm_root):
    with pytest.raises(ValueError, match="shots=5000"):
        data.mini_split(data.MiniWorld(shots=5000))
    with pytest.raises(ValueError, match="general_size=60000"):
        data.mini_split(data.MiniWorld(general_size=60000))
    with pytest.raises(ValueError, match="test_size=0"):
        data.mini_split(data.MiniWorld(test_size=0))


def test_mini_datasets_labels_shapes_and_padding(fm_root):
    s = data.mini_split()
    fine = data.build_dataset("fmnist-fine", "train", train_transform=False)
    coarse = data.build_dataset("fmnist-coarse", "train", train_transform=False)
    general = data.build_dataset("fmnist-general", "train", train_transform=False)
    general_coarse = data.build_dataset("fmnist-general-coarse", "train", train_transform=False)
    assert torch.equal(fine.indices, s.fewshot) and torch.equal(coarse.indices, s.fewshot)
    assert torch.equal(general.indices, s.general) and torch.equal(general_coarse.indices, s.general)
    mapping = torch.tensor(data.FINE_TO_COARSE)
    assert torch.equal(coarse.labels, mapping[fine.labels])
    assert torch.equal(general_coarse.labels, mapping[general.labels])
    assert coarse.classes == data.COARSE_CLASSES and fine.classes == data.FASHION_CLASSES
    official = torchvision.datasets.FashionMNIST(str(fm_root), train=True, download=False)
    x, y = fine[5]
    assert x.dtype == torch.uint8 and x.shape == (1, 32, 32) and type(y) is int
    assert torch.equal(x[0, 2:30, 2:30], official.data[int(s.fewshot[5])])
    assert x[0, :2].sum() == 0 and x[0, -2:].sum() == 0 and x[0, :, :2].sum() == 0 and x[0, :, -2:].sum() == 0
    assert y == int(official.targets[int(s.fewshot[5])])
    x[:] = 7  # items are copies: the cached world stays intact
    assert torch.equal(fine[5][0][0, 2:30, 2:30], official.data[int(s.fewshot[5])])
    _, test_labels = mini._fashion_arrays(str(fm_root), False)
    for name in data.dataset_names("mini"):
        test = data.build_dataset(name, "test")
        expected = s.test[torch.isin(test_labels[s.test], torch.tensor([0, 2, 3, 4, 6]))] if name == "fmnist-tops" else s.test
        assert torch.equal(test.indices, expected) and test.transform is None
        info = data.dataset_info(name)
        assert (info.num_classes, info.in_chans, info.image_size) == (len(test.classes), 1, 32)
        assert info.fine == ("coarse" not in name)
        assert int(test.labels.max()) == info.num_classes - 1
    assert len(general) == 30000 and len(fine) == 1000


TOPS_NAMES = ("T-shirt/top", "Pullover", "Dress", "Coat", "Shirt")


def test_tops_target_holds_the_five_tops_relabelled_in_order(fm_root):
    official = torchvision.datasets.FashionMNIST(str(fm_root), train=True, download=False)
    fine = data.build_dataset("fmnist-fine", "train", train_transform=False)
    tops = data.build_dataset("fmnist-tops", "train", train_transform=False)
    wanted = [official.classes.index(c) for c in TOPS_NAMES]
    keep = [i for i, y in zip(fine.indices.tolist(), fine.labels.tolist()) if y in wanted]
    assert tops.indices.tolist() == keep and len(tops) == 500 == data.train_size("fmnist-tops")
    assert tops.labels.tolist() == [wanted.index(int(official.targets[i])) for i in keep]
    assert tops.classes == TOPS_NAMES and data.dataset_info("fmnist-tops").num_classes == 5
    test = data.build_dataset("fmnist-tops", "test", preset="patient")
    assert len(test) == 5000 and sorted(set(test.labels.tolist())) == [0, 1, 2, 3, 4]


def test_a_sized_target_draws_more_images_per_class_from_the_same_pool(fm_root):
    s = data.mini_split()
    big = data.build_dataset("fmnist-fine-300", "train", train_transform=False)
    small = data.build_dataset("fmnist-fine", "train", train_transform=False)
    assert torch.bincount(big.labels, minlength=10).tolist() == [300] * 10
    assert set(small.indices.tolist()) < set(big.indices.tolist())
    assert not set(big.indices.tolist()) & set(s.general.tolist())   # never seen by the pretraining
    assert data.train_size("fmnist-fine-300") == len(big) == 3000
    assert len(data.build_dataset("fmnist-tops-40", "train")) == 200 == data.train_size("fmnist-tops-40")
    assert torch.equal(data.build_dataset("fmnist-coarse-300", "test").indices, s.test)


@pytest.mark.parametrize("name", ["fmnist-fine-100", "fmnist-general-300", "fmnist-fine-1", "fmnist-fine-03",
                                  "fmnist-fine-9999", "fmnist-fine-", "fmnist-fine-x"])
def test_sized_names_outside_the_grammar_are_refused_with_the_grammar(name):
    with pytest.raises(ValueError, match="fmnist-fine-300"):
        data.check_name(name, "mini")


def test_a_presets_world_sets_the_test_set_and_the_data_seed(fm_root, monkeypatch):
    from kdlib import presets
    mini_test = data.build_dataset("fmnist-fine", "test")
    patient_test = data.build_dataset("fmnist-fine", "test", preset="patient")
    assert len(mini_test) == 5000 and patient_test.indices.tolist() == list(range(10000))
    assert torch.equal(data.build_dataset("fmnist-fine", "train", preset="patient").indices,
                       data.build_dataset("fmnist-fine", "train").indices)  # one draw for both scales
    monkeypatch.setitem(presets.PRESETS, "mini", dataclasses.replace(presets.PRESETS["mini"], data_seed=3))
    assert torch.equal(data.build_dataset("fmnist-fine", "train").indices, data.mini_split(data.MiniWorld(seed=3)).fewshot)


@pytest.mark.slow
def test_mini_train_transform_keeps_uint8_32px_and_matches_torchvision():
    train = data.build_dataset("fmnist-fine", "train")
    assert isinstance(train.transform, data.MiniAugment)
    plain = data.build_dataset("fmnist-fine", "train", train_transform=False)
    changed = 0
    for i in range(64):
        x, y = train[i]
        assert x.dtype == torch.uint8 and x.shape == (1, 32, 32) and y == plain[i][1]
        changed += not torch.equal(x, plain[i][0])
    assert changed > 48
    assert data.MINI_RANDAUG == (2, 15) and train.transform.randaug.magnitude == 15
    # The fast path is torchvision's RandAugment, image for image.
    aug = train.transform
    for i in range(200):
        img = plain[i][0]
        torch.manual_seed(i)
        fast = aug(img)
        torch.manual_seed(i)
        ref = transforms._from_pil(aug.reference(transforms._to_pil(img)))
        assert torch.equal(fast, ref), i


def test_paper_randaugment_is_torchvisions_magnitude_14_of_31_bins():
    # the authors' code (loganfrank/temp-good-kd) calls v2.RandAugment(num_ops=2, magnitude=14)
    assert data.PAPER_RANDAUG == (2, 14)
    steps = data.file_transform("inception", True).transforms
    randaug = [t for t in steps if isinstance(t, v2.RandAugment)]
    assert len(randaug) == 1
    assert (randaug[0].num_ops, randaug[0].magnitude, randaug[0].num_magnitude_bins) == (2, 14, 31)
    # bin 14 of 31 is a moderate rotation (14 degrees of 30), not the strongest bin
    rotate = v2.RandAugment._AUGMENTATION_SPACE["Rotate"][0](31, 224, 224)
    assert float(rotate[randaug[0].magnitude]) == pytest.approx(14.0)
    mini = data.MiniAugment()
    assert (mini.randaug.num_ops, mini.randaug.magnitude, mini.randaug.num_magnitude_bins) == (2, 15, 31)
    with pytest.raises(ValueError, match="bin 0..30"):
        data.MiniAugment(randaug=(2, 31))


def _batches(loader, limit=None):
    out = []
    for k, (x, y) in enumerate(loader):
        if limit is not None and k >= limit:
            break
        out.append((x.clone(), y.clone()))
    return out


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


@pytest.mark.slow
def test_loader_is_a_function_of_seed_and_epoch():
    train = data.build_dataset("fmnist-fine", "train")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = _batches(data.make_loader(train, 100, train=True, seed=0, epoch=3))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    torch.manual_seed(999)  # a different global state changes nothing
    again = _batches(data.make_loader(train, 100, train=True, seed=0, epoch=3))
    assert _same(first, again)
    assert len(first) == 10 and first[0][0].shape == (100, 1, 32, 32) and first[0][0].dtype == torch.uint8
    other_epoch = _batches(data.make_loader(train, 100, train=True, seed=0, epoch=4), limit=1)
    other_seed = _batches(data.make_loader(train, 100, train=True, seed=1, epoch=3), limit=1)
    assert not torch.equal(first[0][1], other_epoch[0][1]) and not torch.equal(first[0][1], other_seed[0][1])
    workers = _batches(data.make_loader(train, 100, train=True, seed=0, epoch=3, num_workers=2))
    assert _same(first, workers)  # augmentation is seeded per sample, not per worker


def test_loader_defaults():
    train = data.build_dataset("fmnist-fine", "train")
    loader = data.make_loader(train, 128, train=True)
    assert loader.drop_last and loader.num_workers == 0 and not loader.persistent_workers
    assert len(loader) == 1000 // 128
    test = data.build_dataset("fmnist-fine", "test")
    loader = data.make_loader(test, 512, train=False)
    assert not loader.drop_last and len(loader) == 10
    labels = torch.cat([y for _, y in loader])
    assert torch.equal(labels, test.labels)  # evaluation order is the dataset's order
    with pytest.raises(ValueError, match="batch_size=2000 is larger than the dataset"):
        data.make_loader(train, 2000, train=True)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loader(train, 0, train=True)


# ----------------------------------------------------------------------------- registry errors

def test_bad_name_split_preset_list_the_valid_ones():
    with pytest.raises(ValueError, match="fmnist-fine") as err:
        data.build_dataset("fmnist-tiny", "train")
    assert "imagefolder:<path>" in str(err.value)
    with pytest.raises(ValueError, match=r"\['train', 'test'\]"):
        data.build_dataset("fmnist-fine", "val")
    with pytest.raises(ValueError, match=r"\['mini', 'paper'\]"):
        data.dataset_info("pets", "huge")
    with pytest.raises(ValueError, match="belongs to preset 'paper'"):
        data.dataset_info("pets", "mini")
    with pytest.raises(ValueError, match="needs a path"):
        data.dataset_info("imagefolder:", "paper")
    assert data.dataset_names() == data.dataset_names("mini") + data.dataset_names("paper")
    assert set(data.dataset_names("paper")) == {"pets", "cifar100", "cars", "tiny-imagenet", "imagenet-birds",
                                                "finer-birds"}


def test_paper_info_without_data(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    expected = {"pets": (37, True), "cifar100": (100, False), "cars": (196, True), "tiny-imagenet": (200, False),
                "imagenet-birds": (52, True), "finer-birds": (52, True)}
    for name, (n, fine) in expected.items():
        info = data.dataset_info(name, "paper")
        assert (info.num_classes, info.fine, info.in_chans, info.image_size) == (n, fine, 3, 224)
        assert info.classes == tuple(f"class_{i}" for i in range(n))


# ----------------------------------------------------------------------------- paper loaders

def test_imagefolder(tmp_path):
    root = tmp_path / "shoes"
    _folder_tree(root, ["boot", "clog", "sandal"], per_class=2)
    name = f"imagefolder:{root}"
    info = data.dataset_info(name, "paper")
    assert info.classes == ("boot", "clog", "sandal") and info.in_chans == 3 and info.image_size == 224
    train = data.build_dataset(name, "train", preset="paper")
    test = data.build_dataset(name, "test", preset="paper")
    assert len(train) == 6 and len(test) == 6
    for ds in (train, test):
        for i in range(len(ds)):  # RGB, grayscale, RGBA and palette files all come out as RGB
            x, y = ds[i]
            assert x.dtype == torch.uint8 and x.shape == (3, 224, 224) and y == i // 2
    assert torch.equal(test[3][0], test[3][0])  # evaluation is deterministic
    batch = next(iter(data.make_loader(train, 4, train=True, num_workers=0)))
    assert batch[0].shape == (4, 3, 224, 224)
    small = data.build_dataset(name, "train", preset="mini")  # the mini models take 1x32x32
    assert small[0][0].shape == (1, 32, 32) and data.dataset_info(name, "mini").in_chans == 1
    with pytest.raises(ValueError, match=str(tmp_path / "nope")):
        data.build_dataset(f"imagefolder:{tmp_path / 'nope'}", "train", preset="paper")


def test_test_split_labels_follow_train_classes(tmp_path):
    root = tmp_path / "set"
    _folder_tree(root, ["a", "b", "c"])
    (root / "test" / "b" / "0.png").unlink()
    (root / "test" / "b").rmdir()
    with pytest.raises(ValueError, match="every class folder of train/"):
        data.build_dataset(f"imagefolder:{root}", "test", preset="paper")


def test_birds_from_kdlib_data(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    with pytest.raises(ValueError) as err:
        data.build_dataset("imagenet-birds", "train", preset="paper")
    msg = str(err.value)
    assert str(tmp_path / "data" / "imagenet-birds") in msg and "train/<class>" in msg and "KDLIB_DATA" in msg
    classes = [f"bird_{k:02d}" for k in range(52)]
    _folder_tree(tmp_path / "data" / "imagenet-birds", classes)
    info = data.dataset_info("imagenet-birds", "paper")
    assert info.classes == tuple(classes) and info.fine
    test = data.build_dataset("imagenet-birds", "test", preset="paper")
    assert len(test) == 52 and test[51][1] == 51 and test[51][0].shape == (3, 224, 224)
    _folder_tree(tmp_path / "data" / "finer-birds", classes[:50])
    with pytest.raises(ValueError, match="has 50 class folders, expected 52"):
        data.build_dataset("finer-birds", "train", preset="paper")


def test_tiny_imagenet_official_layout(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    tiny = tmp_path / "data" / "tiny-imagenet" / "tiny-imagenet-200"
    wnids = [f"n{k:08d}" for k in range(200)]
    (tiny / "val" / "images").mkdir(parents=True)
    (tiny / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (tiny / "words.txt").write_text("".join(f"{w}\tthing {k}, other name\n" for k, w in enumerate(wnids)))
    for k, w in enumerate(wnids):
        _image(tiny / "train" / w / "images" / f"{w}_0.JPEG", size=(64, 64), value=k)
        (tiny / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t10\t10\n")
    val = {"val_0.JPEG": wnids[7], "val_1.JPEG": wnids[199], "val_2.JPEG": wnids[0]}
    for k, fname in enumerate(val):
        _image(tiny / "val" / "images" / fname, size=(64, 64), mode="L", value=k)
    (tiny / "val" / "val_annotations.txt").write_text("".join(f"{f}\t{w}\t0\t0\t63\t63\n" for f, w in val.items()))
    info = data.dataset_info("tiny-imagenet", "paper")
    assert info.num_classes == 200 and info.classes[7] == "thing 7" and not info.fine
    train = data.build_dataset("tiny-imagenet", "train", preset="paper")
    test = data.build_dataset("tiny-imagenet", "test", preset="paper")
    assert len(train) == 200 and train[3][1] == 3
    assert [test[i][1] for i in range(3)] == [7, 199, 0]
    assert test[1][0].shape == (3, 224, 224) and test[1][0].dtype == torch.uint8


def test_pets_layout(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    base = tmp_path / "data" / "pets" / "oxford-iiit-pet"
    breeds = [f"breed_{chr(97 + k // 26)}{chr(97 + k % 26)}" for k in range(37)]
    for split, n in (("trainval", 2), ("test", 1)):
        lines = []
        for k, b in enumerate(breeds):
            for i in range(n):
                image_id = f"{b}_{split}{i}"
                _image(base / "images" / f"{image_id}.jpg", value=k)
                lines.append(f"{image_id} {k + 1} {1 + k % 2} {k + 1}\n")
        (base / "annotations").mkdir(parents=True, exist_ok=True)
        (base / "annotations" / f"{split}.txt").write_text("".join(lines))
    info = data.dataset_info("pets", "paper")
    assert info.classes[0] == "Breed Aa" and info.num_classes == 37
    train = data.build_dataset("pets", "train", preset="paper")
    test = data.build_dataset("pets", "test", preset="paper")
    assert len(train) == 74 and len(test) == 37 and test[36][1] == 36
    x, _ = train[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.uint8


def test_cifar100_pickles(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    folder = tmp_path / "c100" / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"label_{k}" for k in range(100)]
    for split, n in (("train", 200), ("test", 100)):
        labels = [k % 100 for k in range(n)]
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": labels,
                 "coarse_labels": [k // 5 for k in labels], "filenames": [f"{i}.png" for i in range(n)]}
        (folder / split).write_bytes(pickle.dumps(entry))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names, "coarse_label_names": names[:20]}))
    # torchvision checks the official archive's md5 sums, which files written here cannot match;
    # only that integrity check is replaced (by "the file exists"), the reading code is torchvision's.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    train = data.build_dataset("cifar100", "train", preset="paper", root=tmp_path / "c100")
    test = data.build_dataset("cifar100", "test", preset="paper", root=folder)  # the extracted folder itself works
    assert len(train) == 200 and len(test) == 100 and train.classes == tuple(names)
    x, y = train[101]
    assert x.shape == (3, 224, 224) and x.dtype == torch.uint8 and y == 1
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    (tmp_path / "cifar100").symlink_to(tmp_path / "c100")
    assert data.dataset_info("cifar100", "paper").classes == tuple(names)


def test_missing_paper_data_says_where_and_how(tmp_path, monkeypatch):
    _no_data_env(monkeypatch, tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    with pytest.raises(ValueError) as err:
        data.build_dataset("pets", "train", preset="paper")
    msg = str(err.value)
    assert str(tmp_path / "data" / "pets") in msg and "annotations" in msg
    assert "KDLIB_DATA" in msg and "KDLIB_DOWNLOAD=1" in msg
    with pytest.raises(ValueError, match="cannot be downloaded") as err:
        data.build_dataset("cars", "test", preset="paper")
    assert "stanford_cars" in str(err.value)
    with pytest.raises(ValueError, match=str(tmp_path / "elsewhere")):
        data.build_dataset("cifar100", "test", preset="paper", root=tmp_path / "elsewhere")
