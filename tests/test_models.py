"""Architectures by the paper's names, initializations and weights-only checkpoints."""
import pickle

import pytest
import torch

from kdlib import models


@pytest.mark.parametrize("name", models.arch_names("mini"))
def test_every_mini_stand_in_classifies_32px_grayscale(name):
    model = models.create(name, 10, preset="mini").eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_classifier_normalizes_its_own_input():
    model = models.create("resnet18", 4).eval()
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        expected = model.net((x - models.MINI_MEAN[0]) / models.MINI_STD[0])
        assert torch.allclose(model(x), expected)


@pytest.mark.slow
def test_mini_normalization_constants_are_the_padded_fashion_mnist_statistics():
    import gzip

    import numpy as np

    from kdlib import data

    path = data.fashion_mnist_root() / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    raw = path.read_bytes() if path.exists() else gzip.decompress(path.with_suffix(".gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28) / 255.0
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # the mini world's 32 px, zero border
    assert len(padded) == 60000
    assert models.MINI_MEAN[0] == pytest.approx(padded.mean(), abs=1e-4)
    assert models.MINI_STD[0] == pytest.approx(padded.std(), abs=1e-4)


def test_weights_of_a_run_start_another_with_a_new_head(tmp_path):
    source = models.create("resnet50", 10)
    models.save_weights(source, tmp_path / "model.pt")
    state = models.load_weights(tmp_path / "model.pt")
    assert models.state_num_classes(state) == 10
    target = models.create("resnet50", 4, state=state)
    assert target.num_classes == 4
    body = [k for k in target.state_dict() if k.startswith("net.stem") or k.startswith("net.layer1")]
    assert body and all(torch.equal(target.state_dict()[k], source.state_dict()[k]) for k in body)


def test_paper_weights_load_from_a_local_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    net = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    save_file(net.state_dict(), tmp_path / "resnet18.safetensors")
    model = models.create("resnet18", 37, preset="paper", init=f"file:{tmp_path / 'resnet18.safetensors'}")
    assert model.num_classes == 37
    assert torch.equal(model.net.conv1.weight, net.conv1.weight)
    assert torch.allclose(model.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        models.load_weights(path)


@pytest.mark.parametrize("call, match", [
    (lambda: models.create("resnet101", 10), "resnet50"),
    (lambda: models.create("resnet18", 10, preset="galaxy"), "mini"),
    (lambda: models.create("resnet18", 10, preset="paper", init="file:/nonexistent.safetensors"), "does not exist"),
    (lambda: models.create("resnet18", 10, init="imagenet"), "hub"),
])
def test_bad_names_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
