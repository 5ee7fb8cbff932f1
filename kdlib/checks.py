"""Shared validators: a bad value is a ValueError saying what was given, what is allowed, and the fix.

Used when specs are built (bad input is refused before any work starts, never mid-training),
and by metrics, the loaders and the executors, so a bad number, temperature or logits
tensor reads the same wherever it is caught. Each ``check_*`` returns the value it
accepted (converted); ``fail``/``integer``/``number`` name the fix. Booleans are never
numbers here (``True`` is an ``int`` to Python, never a temperature or an epoch count).
Python numbers only by default: spec fields go into JSON, which has no numpy types;
``numpy=True`` also accepts numpy scalars (widgets, arrays of results).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def is_int(value: Any, *, numpy: bool = False) -> bool:
    """An integer and not a bool."""
    kinds = (int, np.integer) if numpy else int
    return isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any, *, numpy: bool = False) -> bool:
    """A finite real number and not a bool."""
    kinds = (int, float, np.integer, np.floating) if numpy else (int, float)
    return isinstance(value, kinds) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def check_int(name: str, value: Any, *, minimum: int = 1, hint: str = "", numpy: bool = False) -> int:
    """``value`` as an int >= ``minimum``: ``batch_size=0 must be a positive integer``."""
    if not is_int(value, numpy=numpy) or value < minimum:
        allowed = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}={value!r} must be {allowed}{hint}")
    return int(value)


def check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = False, hint: str = "",
                 numpy: bool = False) -> float:
    """``value`` as a finite float >= ``low`` (> ``low`` when ``strict``)."""
    if not is_number(value, numpy=numpy) or (value <= low if strict else value < low):
        raise ValueError(f"{name}={value!r} must be a finite number {'>' if strict else '>='} {low:g}{hint}")
    return float(value)


def check_temperature(value: Any, what: str = "temperature", *, hint: str = "", numpy: bool = False) -> float:
    """A softmax temperature: a finite number > 0 (the study sweeps 1 to 40)."""
    return check_number(what, value, low=0, strict=True, hint=hint, numpy=numpy)


def check_logits(logits: Any, *, min_classes: int = 2, what: str = "", hint: str = "",
                 finite: bool = False) -> "torch.Tensor":
    """A [N > 0, C >= min_classes] tensor of logits; ``finite``: also floating point, without NaN or inf."""
    prefix = f"{what}: " if what else ""
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < min_classes:
        raise ValueError(f"{prefix}expected logits of shape [N > 0, C >= {min_classes}], got "
                         f"{tuple(logits.shape)}{hint}")
    if finite:
        if not logits.is_floating_point():
            raise ValueError(f"{prefix}logits must be floating point, got dtype {logits.dtype}")
        if not logits.isfinite().all():
            raise ValueError(f"{prefix}logits contain NaN or inf; check the model's outputs")
    return logits


def fail(name: str, value: Any, allowed: str, fix: str) -> None:
    raise ValueError(f"{name}={value!r}: {allowed}; {fix}")


def integer(name: str, value: Any, low: int, fix: str) -> None:
    """An int (not a bool) >= ``low``."""
    if not is_int(value) or value < low:
        fail(name, value, f"must be an integer >= {low}", fix)


def number(name: str, value: Any, low: float, fix: str, *, above: bool = False, high: float | None = None) -> None:
    """A finite int or float >= ``low`` (> with ``above``), and < ``high`` when given."""
    if not is_number(value) or value < low or (above and value == low) or (high is not None and value >= high):
        bounds = (f"> {low:g}" if above else f">= {low:g}") + (f" and < {high:g}" if high is not None else "")
        fail(name, value, f"must be a finite number {bounds}", fix)


def batch_size(value: int, *, mixup: bool, what: str, dataset: str, size: int | None) -> None:
    """A batch MixUp can pair (even) that the train split can fill at least once (``size``: its images)."""
    if mixup and value % 2:
        fail("batch_size", value, f"{what} mixes each batch with its own reverse (timm's MixUp/CutMix in batch "
             "mode), which needs an even batch size", f"use {value - 1} or {value + 1}")
    if size is not None and value > size:
        fail("batch_size", value, f"larger than the {size} training images of {dataset!r} (every batch is full, "
             "so an epoch would have none)", f"use at most {size - size % 2}")
