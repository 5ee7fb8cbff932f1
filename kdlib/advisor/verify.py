"""Advise, then verify: run the advised T and its neighbours, k runs in all, keep the best on validation.

A user's question is also "how many runs can I skip?". ``verification_plan`` is the
strategy: the advised T first, then the grid's temperatures nearest to it (log scale,
alternating sides). ``regret_vs_runs`` prices it on held-out setups for k = 1 … K against
a random order (the exact mean over every k-subset) and the usual order (T = 1, T = 4,
then outward from 4). After k runs the user keeps the run best on the sweep's scored
accuracy (validation where present); regret is scored there and reported on test.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib import checks
from kdlib.advisor.heldout import ADVISOR

ORDERS = ("advisor-led", "random order", "usual {1, 4} order")
USUAL = (1.0, 4.0)


def _outward(temperatures: Sequence[float], center: float) -> list[float]:
    """The grid ordered by log-distance from ``center`` (ties: the smaller T first)."""
    temps = sorted({float(t) for t in temperatures})
    return sorted(temps, key=lambda t: (round(abs(math.log2(t) - math.log2(center)), 12), t))


def verification_plan(advised: Any, temperatures: Sequence[float], k: int) -> list[float]:
    """The k temperatures to run: the advised one (an ``Advice`` or a T), then its nearest neighbours."""
    checks.integer("k", k, 1, "pass k=1 (only the advised T) or more (its neighbours too)")
    t = float(getattr(advised, "temperature", advised))
    checks.check_temperature(t, what="advised temperature")
    if not temperatures:
        raise ValueError("temperatures=() is empty; pass the grid to verify on, e.g. specs.temperature_grid('mini')")
    return _outward(temperatures, t)[:k]


def usual_order(temperatures: Sequence[float]) -> list[float]:
    """T = 1 and T = 4 first (the field's habits; their nearest grid values), then outward from 4."""
    first = [_outward(temperatures, u)[0] for u in USUAL]
    first = list(dict.fromkeys(first))
    return first + [t for t in _outward(temperatures, USUAL[-1]) if t not in first]


def _chosen(row: Mapping[str, Any], ts: Sequence[float]) -> tuple[float, float]:
    """(scored regret, test regret) of keeping the scored-best of the runs at ``ts`` (ties: the smaller T)."""
    temps = list(row["temperatures"])
    idx = sorted(temps.index(t) for t in ts)
    j = max(idx, key=lambda i: (row["accuracies"][i], -temps[i]))
    return float(row["best_acc"] - row["accuracies"][j]), float(max(row["test_accuracies"]) - row["test_accuracies"][j])


def _random(row: Mapping[str, Any], k: int) -> tuple[float, float]:
    """Mean over every k-subset of the sweep's temperatures (the exact expectation of a random order)."""
    subsets = list(itertools.combinations(row["temperatures"], k))
    vals = np.array([_chosen(row, s) for s in subsets])
    return float(vals[:, 0].mean()), float(vals[:, 1].mean())


def regret_vs_runs(table, long, K: int | None = None):
    """Mean and worst regret after k runs, k = 1 … K, per order (advisor-led uses its leave-one-setup-out T)."""
    import pandas as pd

    table = table.reset_index(drop=True)
    part = long[(long["by"] == "setup") & (long["strategy"] == ADVISOR)].set_index("row")
    K = K or (max((len(ts) for ts in table["temperatures"]), default=0))
    rows = []
    for i, r in enumerate(table.to_dict("records")):
        if i not in part.index:
            continue
        temps = list(r["temperatures"])
        orders = {"advisor-led": _outward(temps, float(part.loc[i, "T"])), "usual {1, 4} order": usual_order(temps)}
        for k in range(1, min(K, len(temps)) + 1):
            for name, order in orders.items():
                reg, test = _chosen(r, order[:k])
                rows.append({"k": k, "order": name, "row": i, "regret": reg, "test_regret": test})
            reg, test = _random(r, k)
            rows.append({"k": k, "order": "random order", "row": i, "regret": reg, "test_regret": test})
    f = pd.DataFrame(rows, columns=["k", "order", "row", "regret", "test_regret"])
    if not len(f):
        return pd.DataFrame(columns=["order", "k", "mean regret", "worst regret", "mean test regret", "setups"])
    out = f.groupby(["order", "k"], sort=False).agg(**{
        "mean regret": ("regret", "mean"), "worst regret": ("regret", "max"),
        "mean test regret": ("test_regret", "mean"), "setups": ("row", "count")}).reset_index()
    out["order"] = pd.Categorical(out["order"], ORDERS, ordered=True)
    return out.sort_values(["order", "k"]).reset_index(drop=True).assign(order=lambda d: d["order"].astype(str))


def runs_to_reach(curve, order: str = "advisor-led", within: float = 0.5) -> int | None:
    """Fewest runs k after which ``order``'s mean regret is at most ``within`` points (None: never on the grid)."""
    part = curve[(curve["order"] == order) & (curve["mean regret"] <= within + 1e-9)]
    return int(part["k"].min()) if len(part) else None
