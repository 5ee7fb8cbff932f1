"""Shared validators: a bad value is a ValueError saying what was given, what is allowed, and the fix.

Used when specs are built, so bad input is refused before any work starts, never mid-training.
"""
from __future__ import annotations

import math
from typing import Any


def fail(name: str, value: Any, allowed: str, fix: str) -> None:
    raise ValueError(f"{name}={value!r}: {allowed}; {fix}")


def integer(name: str, value: Any, low: int, fix: str) -> None:
    """An int (not a bool) >= ``low``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        fail(name, value, f"must be an integer >= {low}", fix)


def number(name: str, value: Any, low: float, fix: str, *, above: bool = False, high: float | None = None) -> None:
    """A finite int or float >= ``low`` (> with ``above``), and < ``high`` when given."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (above and value == low) or (high is not None and value >= high):
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
