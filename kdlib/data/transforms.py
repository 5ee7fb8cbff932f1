"""Per-sample augmentation: the mini world's fast RandAugment path and the paper's pipelines.

MixUp/CutMix is per batch and lives in the training loop.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from kdlib import checks

# RandAugment (num_ops, magnitude) on torchvision's scale: magnitude is a bin 0..30 of
# v2.RandAugment's default 31. The paper's n=2, m=14 is what the authors' code calls
# (loganfrank/temp-good-kd: ``v2.RandAugment(num_ops=2, magnitude=14)``), a moderate
# strength; the mini world keeps its bin 15 (it was timm's m=5 before, the same bin).
MINI_RANDAUG = (2, 15)
PAPER_RANDAUG = (2, 14)
_RANDAUG_BINS = 31
_TIMM_MEAN_FILL = (124, 116, 104)  # timm fills RandAugment's empty pixels with the ImageNet mean


def randaug_magnitude(m: int) -> int:
    """A RandAugment magnitude on torchvision's scale (a bin 0..30 of 31), or a ValueError."""
    if not checks.is_int(m) or not 0 <= m < _RANDAUG_BINS:
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
