"""Which runs a claim reads, and the per-seed curves it compares (accuracy against T).

Claims are found by the structure of the store, not by notebook: a claim groups the runs
by everything that defines a setup except the axis it varies and the seed, and only
groups that hold the contrast it needs contribute. Per seed, the effect is the mean over
the contributing setups (e.g. over batch sizes), so the seeds stay paired.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from kdlib import specs, store

# teacher_id separates teachers that differ beyond these columns (label smoothing, MixUp, pretraining
# length); it is one per seed, so it never breaks the pairing. Claims that compare teachers vary it.
SETUP = ("preset", "dataset", "teacher", "teacher_origin", "teacher_epochs", "pretrain_corpus", "teacher_id",
         "student", "student_init", "variant", "optimizer", "batch_size", "epochs")
LARGE_T_FACTOR = 4  # "a large T": at least 4x the smallest T of the sweep (T >= 4 when the sweep starts at 1)


@dataclass(frozen=True)
class Context:
    """What a claim needs besides the results: the preset scored, teacher logits per seed (F6), the plateau tolerance."""

    preset: specs.Preset
    logits: dict[int, Any] = field(default_factory=dict)
    tolerance: float = 1.0


def distilled(frame: pd.DataFrame) -> pd.DataFrame:
    """Finished distillation runs with a test accuracy."""
    rows = store.finished(frame, "distill") if "kind" in frame else store.finished(frame)
    if rows.empty or "test_acc" not in rows:
        return rows.iloc[0:0]
    return rows[pd.to_numeric(rows["test_acc"], errors="coerce").notna()]


def vanilla(frame: pd.DataFrame) -> pd.DataFrame:
    """Vanilla KD with the real teacher targets (no method arguments)."""
    if frame.empty:
        return frame
    return frame[frame["variant"] == "kd"] if "variant" in frame else frame[frame["method"] == "kd"]


def is_baseline_corpus(corpus: Any, p: specs.Preset) -> bool:
    if p.pretrain_corpus is not None:
        return corpus == p.pretrain_corpus
    return isinstance(corpus, str) and corpus.startswith(("hub", "file:"))


def baseline(frame: pd.DataFrame, p: specs.Preset, *, vary: tuple[str, ...] = ()) -> pd.DataFrame:
    """The paper's baseline setting except along ``vary``: its datasets, a finetuned teacher, a random student."""
    if frame.empty:
        return frame
    keep = frame["dataset"].isin(p.datasets)
    if "teacher_origin" not in vary:
        keep &= (frame["teacher_origin"] == "finetuned") & frame["pretrain_corpus"].map(
            lambda c: is_baseline_corpus(c, p))
    if "student_init" not in vary:
        keep &= frame["student_init"] == "random"
    return frame[keep]


def per_seed(frame: pd.DataFrame, vary: tuple[str, ...], fn: Callable[[pd.DataFrame], float | None]) -> pd.Series:
    """``fn`` on every group (setup without ``vary``, one seed); per seed the mean over groups that gave a number."""
    if frame.empty:
        return pd.Series(dtype=float)
    cols = [c for c in SETUP if c in frame and c not in vary]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(frame[[*cols, "seed"]].itertuples(index=False, name=None)):
        groups.setdefault(tuple(map(str, key)), []).append(i)  # None, NaN and numbers group alike
    values: dict[int, list[float]] = {}
    for key in sorted(groups):
        v = fn(frame.iloc[groups[key]])
        if v is not None and math.isfinite(v):
            values.setdefault(int(float(key[-1])), []).append(float(v))
    return pd.Series({s: sum(v) / len(v) for s, v in sorted(values.items())}, dtype=float)


def curve(rows: pd.DataFrame, value: str = "test_acc") -> pd.Series:
    """Mean ``value`` per temperature, sorted by T (one seed's accuracy-vs-T curve)."""
    if rows.empty:
        return pd.Series(dtype=float)
    return rows.groupby("temperature")[value].mean().sort_index().astype(float)


def aligned(*curves: pd.Series) -> list[pd.Series] | None:
    """The curves restricted to the temperatures they all have (None when fewer than two are shared)."""
    common = set(curves[0].index)
    for c in curves[1:]:
        common &= set(c.index)
    if len(common) < 2:
        return None
    ts = sorted(common)
    return [c.loc[ts] for c in curves]


def spread(c: pd.Series) -> float:
    return float(c.max() - c.min())


def gap(c: pd.Series) -> float:
    """Accuracy at the largest T minus at the smallest."""
    return float(c.iloc[-1] - c.iloc[0])


def large_t_advantage(c: pd.Series) -> float | None:
    """Best accuracy at a large T (>= 4x the smallest) minus the accuracy at the smallest T."""
    large = c[c.index >= LARGE_T_FACTOR * c.index[0]] if len(c) else c
    return None if large.empty else float(large.max() - c.iloc[0])


def extremes(rows: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The rows at the smallest and at the largest value of ``column`` (None when it takes one value)."""
    values = sorted(rows[column].dropna().unique())
    if len(values) < 2:
        return None
    return rows[rows[column] == values[0]], rows[rows[column] == values[-1]]


def longest(rows: pd.DataFrame, column: str = "epochs") -> pd.DataFrame:
    return rows[rows[column] == rows[column].max()] if len(rows) else rows


def slope(c: pd.Series) -> float | None:
    """Least-squares slope of accuracy against log2 T: points per doubling."""
    if len(c) < 2:
        return None
    x = [math.log2(t) for t in c.index]
    mx, my = sum(x) / len(x), float(c.mean())
    den = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, c.to_numpy(float))) / den if den else None


def component(fn: Callable[[pd.DataFrame], tuple | None], i: int) -> Callable[[pd.DataFrame], float | None]:
    """The ``i``-th number of a function that returns several (or None), for ``per_seed``."""
    def pick(g: pd.DataFrame) -> float | None:
        out = fn(g)
        return None if out is None else out[i]
    return pick
