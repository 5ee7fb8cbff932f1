"""Advisors fitted on training folds, each with a confidence that can be checked.

An advisor's stated confidence is a probability: the chance its T lands within
``HIT_PP`` points of the sweep's best. It is estimated on the training folds only (inner
leave-one-out hits among setups with the same optimizer, where the curve's flatness is
alike; all setups when fewer than ``MIN_GROUP``), Laplace-smoothed, so a held-out fold
can check it (``heldout.reliability``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from kdlib.advisor.calibration import (MIN_SETUPS, T_MAX, T_MIN, Calibration, calibration_loo_predictions,
                                      fit_calibration, hit_probability, setup_curves)
from kdlib.advisor.rules import FEATURE_COLUMNS
from kdlib.advisor.setups import HIT_PP, regret_at

LEVELS = (("high", 0.8), ("medium", 0.5), ("low", 0.0))   # stated probability of a hit -> its word
MIN_GROUP = 3


def level(p: float) -> str:
    """The word for a stated hit probability: high (>= 0.8), medium (>= 0.5), low."""
    return next(name for name, low in LEVELS if p >= low)


def _clip(log2_t: float) -> float:
    return float(np.clip(log2_t, math.log2(T_MIN), math.log2(T_MAX)))


def features(row: Mapping[str, Any]) -> np.ndarray:
    return np.array([row[c] for c in FEATURE_COLUMNS], float)


@dataclass(frozen=True)
class Fitted:
    """An advisor fitted on training setups: ``predict(row)`` gives log2 T; its inner hits size its confidence."""

    name: str
    predict: Callable[[Mapping[str, Any]], float]
    hits: tuple[bool, ...]            # inner leave-one-out: was each training setup's T within HIT_PP?
    optimizers: tuple[str, ...]
    basis: str = ""

    def confidence(self, row: Mapping[str, Any]) -> float:
        """Laplace-smoothed hit share among training setups with ``row``'s optimizer (all, if too few)."""
        counts: dict[str, int] = {}
        for h, o in zip(self.hits, self.optimizers):
            counts[f"n_{o}"] = counts.get(f"n_{o}", 0) + 1
            counts[f"hits_{o}"] = counts.get(f"hits_{o}", 0) + int(h)
        p = hit_probability(counts, str(row.get("optimizer")), MIN_GROUP)
        return 0.5 if p is None else p


def calibrated(train, min_setups: int = MIN_SETUPS) -> Fitted:
    """kdlib's advisor: the rules refit on ``train`` (``fit_calibration``), the rules alone when too few.

    Its hits are the calibration's own leave-one-out (what ``advise`` states), so the
    evaluation checks the very confidence a user is shown.
    """
    train = train.reset_index(drop=True)
    cal = fit_calibration(train, min_setups=min_setups) if len(train) >= 2 else Calibration.rules(len(train))
    predict = lambda row: cal.predict(features(row))  # noqa: E731
    if not len(train):
        return Fitted("advisor", predict, (), (), "rules")
    preds = calibration_loo_predictions(train, cal)
    hits = tuple(bool(regret_at(r, p) <= HIT_PP + 1e-9) for r, p in zip(setup_curves(train), preds))
    return Fitted("advisor", predict, hits, tuple(train["optimizer"].astype(str)),
                  "calibrated" if cal.calibrated else "rules")


def _inner_hits(table, predict_without: Callable[[int], float]) -> tuple[bool, ...]:
    return tuple(bool(regret_at(r, predict_without(i)) <= HIT_PP + 1e-9) for i, r in enumerate(setup_curves(table)))


def _weighted_mean(table, skip: int | None = None) -> float:
    keep = [i for i in range(len(table)) if i != skip]
    if not keep:
        return math.log2(4.0)
    y = np.log2(table["best_temperature"].to_numpy(float))[keep]
    w = table["weight"].to_numpy(float)[keep]
    return _clip(float(np.sum(w * y) / np.sum(w)))


def featureless(train, min_setups: int = MIN_SETUPS) -> Fitted:
    """A control that ignores every feature: the spread-weighted mean log2 best T of ``train``, for every setup."""
    train = train.reset_index(drop=True)
    t = _weighted_mean(train)
    hits = _inner_hits(train, lambda i: _weighted_mean(train, skip=i)) if len(train) else ()
    return Fitted("no features", lambda row: t, hits, tuple(train["optimizer"].astype(str)) if len(train) else (),
                  "constant")


