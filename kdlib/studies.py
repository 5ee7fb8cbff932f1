"""The grids of the study notebooks: one function per notebook turns its parameters into specs.

A notebook's parameters cell names what to vary in the paper's words; the function of the
same number builds the list of specs (teachers, students, references) that ``runs.ensure``
makes sure exist. Grids read like the paper's sections; nothing here trains or reads results.
"""
from __future__ import annotations

import math
from typing import Any, Sequence


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def scaled_epochs(base: int, fractions: Sequence[float]) -> list[int]:
    """Durations as fractions of a baseline: ``round(f * base)`` (halves up), at least 1, ascending, unique.

    The paper varies distillation (Sect. 4.2) and teacher finetuning (Sect. 4.3) durations
    as fractions of the baseline; e.g. ``scaled_epochs(16, [1/16, 1/8, 1/4, 1/2, 1])`` is
    ``[1, 2, 4, 8, 16]``.
    """
    if not _is_int(base) or base < 1:
        raise ValueError(f"baseline epochs={base!r} must be an integer >= 1")
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (list, tuple)) or not fractions \
            or not all(_is_number(f) and f > 0 for f in fractions):
        raise ValueError(f"fractions={fractions!r} must be a non-empty list of numbers > 0")
    return sorted({max(1, int(math.floor(f * base + 0.5))) for f in fractions})
