"""Control values: hashable, comparable, labelled the same way everywhere (NaN is "—")."""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd


def key(value: Any) -> Any:
    """A hashable, comparable control value: numpy scalars become Python, NaN becomes None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def matches(keys: pd.Series, value: Any) -> pd.Series:
    return keys.map(lambda v: v == value).astype(bool)


def label(value: Any) -> str:
    return "—" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def ordered(values: Iterable[Any]) -> list[Any]:
    """Distinct values, sorted (None last; mixed types by their text)."""
    values = list(dict.fromkeys(values))
    try:
        return sorted(values, key=lambda v: (v is None, v))
    except TypeError:
        return sorted(values, key=lambda v: (v is None, str(v)))
