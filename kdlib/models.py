"""Architectures by the paper's names, per preset, and the weights they start from.

``paper`` maps each name to the timm architecture the study used, with its ImageNet-1K
tag (STUDY.md, "Paper-preset weights"). ``mini`` maps it to a small timm stand-in of the
same family that trains at thousands of 32x32 images per second on a laptop CPU.

Every model is wrapped in ``Classifier``, which normalizes its own input: teacher and
student may expect different mean/std (timm's ``pretrained_cfg``), and the data pipeline
hands both the same un-normalized batch in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from kdlib import presets
from kdlib.io import atomic_torch_save


@dataclass(frozen=True)
class Arch:
    timm_name: str
    tag: str | None = None            # default pretrained tag (paper preset)
    kwargs: dict[str, Any] = field(default_factory=dict)
    role: str = "teacher"


_MINI_IMAGE = dict(in_chans=1)
_MINI_VIT = dict(in_chans=1, img_size=32, patch_size=8)

ARCHS: dict[str, dict[str, Arch]] = {
    "paper": {
        "resnet50": Arch("resnet50", "resnet50.tv2_in1k"),
        "vit_s": Arch("vit_small_patch16_224", "vit_small_patch16_224.augreg_in1k"),
        "convnext_t": Arch("convnext_tiny", "convnext_tiny.fb_in1k"),
        "regnety_064": Arch("regnety_064", "regnety_064.ra3_in1k"),
        "resnet18": Arch("resnet18", "resnet18.tv_in1k", role="student"),
        "mnv4": Arch("mobilenetv4_conv_medium", "mobilenetv4_conv_medium.e500_r224_in1k", role="student"),
        "convnext_p": Arch("convnext_pico", "convnext_pico.d1_in1k", role="student"),
        "mobilevitv2_150": Arch("mobilevitv2_150", "mobilevitv2_150.cvnets_in1k", role="student"),
    },
    "mini": {
        "resnet50": Arch("test_resnet", kwargs=_MINI_IMAGE),
        "vit_s": Arch("test_vit2", kwargs=_MINI_VIT),
        "convnext_t": Arch("test_convnext2", kwargs=_MINI_IMAGE),
        "regnety_064": Arch("test_nfnet", kwargs=_MINI_IMAGE),
        "resnet18": Arch("test_byobnet", kwargs=_MINI_IMAGE, role="student"),
        "mnv4": Arch("test_efficientnet", kwargs=_MINI_IMAGE, role="student"),
        "convnext_p": Arch("test_convnext", kwargs=_MINI_IMAGE, role="student"),
        "mobilevitv2_150": Arch("test_vit", kwargs=_MINI_VIT, role="student"),
    },
}

# Pixel mean and std (in [0, 1]) of the images every mini dataset draws from: Fashion-MNIST's
# official train split, zero-padded from 28 to 32 px (tests/test_models.py recomputes them).
MINI_MEAN, MINI_STD = (0.2190,), (0.3318,)


def _world(preset: str) -> str:
    """``mini`` or ``paper``: the architectures a preset's names map to (``patient`` uses the mini ones)."""
    if preset in ARCHS:
        return preset
    if isinstance(preset, str) and preset in presets.PRESETS:
        return presets.world(preset)
    raise ValueError(f"unknown preset {preset!r}; choose one of {sorted({*ARCHS, *presets.PRESETS})}")


def arch_names(preset: str = "mini") -> list[str]:
    return sorted(ARCHS[_world(preset)])


def check_arch(name: str, preset: str = "mini") -> Arch:
    names = arch_names(preset)
    if name not in names:
        raise ValueError(f"unknown model {name!r} for preset {preset!r}; choose one of {names} "
                         "(teachers: resnet50, vit_s, convnext_t, regnety_064; students: resnet18, mnv4, "
                         "convnext_p, mobilevitv2_150)")
    return ARCHS[_world(preset)][name]


class Classifier(nn.Module):
    """A timm network that normalizes its own [0, 1] input with its own mean and std."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def num_classes(self) -> int:
        return self.net.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _hub_name(arch: Arch, init: str) -> str:
    if init == "hub":
        return arch.tag or arch.timm_name
    return init.split(":", 1)[1]


def hub_tag(name: str, preset: str, init: str) -> str:
    """The timm tag that ``create(name, preset=preset, init=init)`` downloads (init: 'hub' or 'hub:<tag>')."""
    return _hub_name(check_arch(name, preset), init)


def fetch_hub_weights(tag: str) -> None:
    """Download timm's weights of ``tag`` into the Hugging Face (or torch hub) cache, as ``create`` would.

    Raises what timm and huggingface_hub raise when the hub is unreachable and the cache lacks them.
    """
    timm.create_model(tag, pretrained=True)


def create(name: str, num_classes: int, *, preset: str = "mini", init: str = "random",
           state: dict[str, torch.Tensor] | None = None) -> Classifier:
    """Build ``name`` for ``num_classes`` classes.

    ``init``: ``random``; ``hub`` / ``hub:<timm tag>`` (downloads ImageNet weights through
    timm); ``file:<path>`` (a local ``.safetensors``/``.pth`` file of the timm model, e.g.
    copied from a machine with internet). ``state``: the weights of an earlier kdlib run
    (its head is replaced when the class count differs).
    """
    arch = check_arch(name, preset)
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be positive")
    kwargs = dict(arch.kwargs)
    if init == "random" or state is not None:
        source_classes = state_num_classes(state) if state is not None else num_classes
        net = timm.create_model(arch.timm_name, pretrained=False, num_classes=source_classes, **kwargs)
    elif init.startswith(("hub", "file:")):
        model_name = arch.timm_name if init.startswith("file:") else _hub_name(arch, init)
        overlay = None
        if init.startswith("file:"):
            path = Path(init[5:]).expanduser()
            if not path.is_file():
                raise ValueError(f"weight file {path} does not exist; download the timm weights of "
                                 f"{arch.tag or arch.timm_name} on a connected machine and pass 'file:<path>'")
            overlay = dict(file=str(path))
            model_name = arch.tag or arch.timm_name
        net = timm.create_model(model_name, pretrained=True, num_classes=num_classes,
                                pretrained_cfg_overlay=overlay, **kwargs)
    else:
        raise ValueError(f"init={init!r}; use 'random', 'hub', 'hub:<tag>' or 'file:<path>'")
    if state is not None:
        net_state = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
        net.load_state_dict(net_state)
        if net.num_classes != num_classes:
            net.reset_classifier(num_classes)
    if _world(preset) == "mini":
        mean, std = MINI_MEAN, MINI_STD
    else:
        cfg = timm.data.resolve_model_data_config(net)
        mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    return Classifier(net, mean, std)


def state_num_classes(state: dict[str, torch.Tensor]) -> int:
    """Class count of saved weights: the rows of the last 2-D weight (the head)."""
    heads = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not heads:
        raise ValueError("saved weights have no classifier head")
    return heads[-1].shape[0]


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Atomic save of a state dict (``io.atomic_torch_save``): a crash never leaves half a file."""
    atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, Path(path))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors only (``weights_only=True``): loading a checkpoint never runs pickled code."""
    return torch.load(path, map_location="cpu", weights_only=True)
