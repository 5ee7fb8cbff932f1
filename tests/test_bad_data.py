"""Bad data files are named when first read, and found all at once by ``python -m kdlib.data check``."""
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kdlib
from kdlib import data, runs, specs, store
from kdlib.data import check
from kdlib.data import mini


def _folder(root: Path, classes, per_class=2, splits=("train", "test")) -> None:
    for split in splits:
        for k, c in enumerate(classes):
            for i in range(per_class):
                path = root / split / c / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                noise = np.random.default_rng(100 * k + i).integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(noise).save(path)


# ----------------------------------------------------------------------------- images

def test_a_corrupt_image_names_its_file_and_the_command_that_finds_the_others(tmp_path):
    root = tmp_path / "set"
    _folder(root, ["a", "b"])
    bad = root / "train" / "b" / "1.png"
    bad.write_bytes(b"not an image at all")
    name = f"imagefolder:{root}"
    train = data.build_dataset(name, "train", preset="paper")
    with pytest.raises(ValueError) as err:
        for i in range(len(train)):
            train[i]
    message = str(err.value)
    assert f"image {bad} cannot be read" in message and f"python -m kdlib.data check {name}" in message
    with pytest.raises(ValueError, match=f"image {bad} cannot be read"):  # also from a loader's worker process
        list(data.make_loader(train, 2, train=True, num_workers=1))


@pytest.mark.slow
def test_the_check_command_lists_every_bad_file_of_both_splits_and_only_those(tmp_path):
    root = tmp_path / "set"
    _folder(root, ["a", "b", "c"])
    garbage, truncated = root / "train" / "a" / "0.png", root / "test" / "c" / "1.png"
    garbage.write_bytes(b"\x00" * 100)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    env = {**os.environ, "PYTHONPATH": str(Path(kdlib.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-m", "kdlib.data", "check", f"imagefolder:{root}"], capture_output=True,
                         text=True, env=env, timeout=300)
    listed = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert out.returncode == 1 and sorted(listed) == sorted([str(garbage), str(truncated)])
    assert "2 bad file(s)" in out.stderr
    found = dict(check.bad_files(f"imagefolder:{root}", progress=False))
    assert sorted(found) == sorted([str(garbage), str(truncated)])
    assert "cannot identify image file" in found[str(garbage)] and "truncated" in found[str(truncated)]
    shutil.rmtree(root)
    _folder(root, ["a", "b"])
    clean = subprocess.run([sys.executable, "-m", "kdlib.data", "check", f"imagefolder:{root}"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert clean.returncode == 0 and clean.stdout == "" and "0 bad file(s)" in clean.stderr


# ----------------------------------------------------------------------------- classes and splits

def test_an_image_folder_with_a_single_class_is_refused(tmp_path):
    _folder(tmp_path / "one", ["only"])
    with pytest.raises(ValueError, match=r"has 1 class folder\(s\) \['only'\]; a classifier needs at least 2"):
        data.dataset_info(f"imagefolder:{tmp_path / 'one'}", "paper")


def _refused_before_training(spec, root, match):
    """``ensure`` raises ``match`` at once, and no run was started."""
    started = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        runs.ensure([spec], root=root, progress=False)
    assert time.perf_counter() - started < 30
    assert not list(Path(root).glob("*/state.json")) and not list(Path(root).glob("*/error.json"))


def test_ensure_refuses_an_image_folder_that_cannot_train_before_anything_starts(tmp_path):
    root = tmp_path / "store"
    one = tmp_path / "one"
    _folder(one, ["only"])
    _refused_before_training(specs.teacher("resnet50", f"imagefolder:{one}", origin="scratch", epochs=1,
                                           batch_size=2), root, "needs at least 2")
    missing = tmp_path / "missing"
    _folder(missing, ["a", "b"], splits=("train",))
    _folder(missing, ["a"], splits=("test",))
    (missing / "test" / "b").mkdir()
    _refused_before_training(specs.teacher("resnet50", f"imagefolder:{missing}", origin="scratch", epochs=1,
                                           batch_size=2), root, "every class folder of train/ needs images in test/")
    small = tmp_path / "small"
    _folder(small, ["a", "b"])
    _refused_before_training(specs.teacher("resnet50", f"imagefolder:{small}", origin="scratch", epochs=1,
                                           batch_size=8), root, "batch_size=8: larger than the 4 training images")


@pytest.mark.training
def test_a_teacher_whose_dataset_gained_a_class_is_refused_before_the_student_trains(tmp_path):
    folder = tmp_path / "set"
    _folder(folder, ["a", "b"], per_class=4)
    root = tmp_path / "store"
    teacher = specs.teacher("resnet50", f"imagefolder:{folder}", origin="scratch", epochs=1, batch_size=4)
    runs.ensure([teacher], root=root, progress=False)
    assert store.RunDir(teacher, root).done
    _folder(folder, ["c"], per_class=4)  # a class added after the teacher was trained
    student = specs.distill(teacher, "resnet18", 4, epochs=1, batch_size=4)
    _refused_before_training(student, root, "predicts 2 classes but .* has 3 now")


# ----------------------------------------------------------------------------- Fashion-MNIST files

@pytest.fixture
def fashion_copy(tmp_path, monkeypatch):
    """Fashion-MNIST's four gzipped IDX files under a fresh KDLIB_DATA, with an empty cache."""
    if mini._idx_files(data.DEBIAN_FASHION_MNIST) is None:
        pytest.skip("Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist)")
    folder = tmp_path / "fmnist"
    shutil.copytree(data.DEBIAN_FASHION_MNIST, folder)
    monkeypatch.setenv("KDLIB_DATA", str(folder))
    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path / "outputs"))
    return folder


def test_a_truncated_gzip_under_kdlib_data_is_a_clear_value_error_naming_it(fashion_copy):
    packed = fashion_copy / "t10k-labels-idx1-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:1000])
    with pytest.raises(ValueError) as err:
        data.fashion_mnist_root()
    assert f"{packed} is not a complete gzip file" in str(err.value) and "download it again" in str(err.value)


def test_a_complete_gzip_of_the_wrong_size_is_refused_naming_the_source(fashion_copy):
    packed = fashion_copy / "t10k-labels-idx1-ubyte.gz"
    packed.write_bytes(gzip.compress(gzip.decompress(packed.read_bytes())[:5008]))  # 5000 labels, not 10000
    with pytest.raises(ValueError, match=f"{packed} holds 5008 bytes once decompressed, expected 10008"):
        data.fashion_mnist_root()


def test_ensure_refuses_a_truncated_fashion_mnist_before_anything_trains(fashion_copy, tmp_path):
    packed = fashion_copy / "train-images-idx3-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 3])
    spec = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)
    _refused_before_training(spec, tmp_path / "store", f"{packed} is not a complete gzip file")
