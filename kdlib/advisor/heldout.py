"""Out-of-sample evaluation a skeptic would accept: held-out folds, every fixed T, a paired interval, reliability.

Folds: leave one setup out, or leave one *factor* out (every sweep of one teacher origin,
one optimizer or one dataset held out at once), so the advisor is tested on a kind of
setting it never saw. In each fold the advisor, a featureless control and the best single
T are chosen on the training folds only; every fixed T of the grid stands beside them.
Regret is scored on the sweep's ``accuracies`` (validation where the runs hold one) and
reported on test (``test_regret``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kdlib.advisor.calibration import MIN_SETUPS, best_single
from kdlib.advisor.confidence import Fitted, calibrated, featureless, level
from kdlib.advisor.setups import HIT_PP, _nearest, regret_at, regret_on_test

FACTORS = {"setup": "setup", "teacher origin": "teacher_origin", "optimizer": "optimizer", "dataset": "dataset"}
ADVISOR, CONTROL, BEST_SINGLE = "advisor", "no features", "best single T"
LONG_COLUMNS = ["by", "fold", "row", "setup", "strategy", "T", "regret", "test_regret", "hit", "confidence", "level"]


def fixed(t: float) -> str:
    return f"fixed T={t:g}"


def grid_of(table) -> tuple[float, ...]:
    """Every temperature some stored sweep holds, ascending: the fixed-T strategies."""
    return tuple(sorted({float(t) for ts in table["temperatures"] for t in ts}))


def folds(table, by: str = "setup") -> list[tuple[str, list[int]]]:
    """(name, held-out positions) per fold; a factor with one value only gives no fold (nothing to train on)."""
    if by not in FACTORS:
        raise ValueError(f"by={by!r}; choose one of {list(FACTORS)} (hold out one setup, or every sweep of one "
                         "teacher origin / optimizer / dataset)")
    values = table[FACTORS[by]].astype(str).tolist()
    if by != "setup" and len(set(values)) < 2:
        return []
    names = list(dict.fromkeys(values))
    return [(v, [i for i, x in enumerate(values) if x == v]) for v in names]


def _picks(fitted: Fitted, control: Fitted, single: float, grid: Sequence[float], row: Mapping[str, Any]):
    out = {ADVISOR: (fitted.predict(row), fitted.confidence(row)),
           CONTROL: (control.predict(row), control.confidence(row)), BEST_SINGLE: (single, math.nan)}
    out.update({fixed(t): (math.log2(t), math.nan) for t in grid})
    return out


def evaluate(table, by: str = "setup", *, fit: Callable[..., Fitted] = calibrated, min_setups: int = MIN_SETUPS,
             grid: Sequence[float] | None = None):
    """One row per (fold, held-out setup, strategy): its T, regret (scored), test regret, hit, confidence.

    ``fit(train, min_setups)`` builds the advisor from the training folds (default: kdlib's
    calibrated rules); a test passes its own to check that the comparison can fail.
    """
    import pandas as pd

    table = table.reset_index(drop=True)
    grid = grid_of(table) if grid is None else tuple(float(t) for t in grid)
    rows, records = [], table.to_dict("records")
    for name, held in folds(table, by):
        train = table.drop(index=held).reset_index(drop=True)
        if not len(train):
            continue
        fitted, control, single = fit(train, min_setups), featureless(train), best_single(train)
        for i in held:
            r = records[i]
            for strategy, (l2, p) in _picks(fitted, control, single, grid, r).items():
                j = _nearest(r["temperatures"], l2)
                regret = regret_at(r, l2)
                rows.append({"by": by, "fold": name, "row": i, "setup": r["setup"], "strategy": strategy,
                             "T": r["temperatures"][j], "regret": regret, "test_regret": regret_on_test(r, l2),
                             "hit": regret <= HIT_PP + 1e-9, "confidence": p,
                             "level": level(p) if not math.isnan(p) else ""})
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def evaluate_all(table, *, fit: Callable[..., Fitted] = calibrated, min_setups: int = MIN_SETUPS,
                 grid: Sequence[float] | None = None):
    """``evaluate`` for every way of holding out (setup, teacher origin, optimizer, dataset), stacked."""
    import pandas as pd

    parts = [evaluate(table, by, fit=fit, min_setups=min_setups, grid=grid) for by in FACTORS]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LONG_COLUMNS)


def regret_table(long):
    """Mean and worst regret per (hold-out, strategy), scored and on test, with the share of hits; best first."""
    import pandas as pd

    if not len(long):
        return pd.DataFrame(columns=["by", "strategy", "mean regret", "worst regret", "mean test regret",
                                     "worst test regret", "within 0.5 pp", "setups"])
    g = long.groupby(["by", "strategy"], sort=False)
    out = g.agg(**{"mean regret": ("regret", "mean"), "worst regret": ("regret", "max"),
                   "mean test regret": ("test_regret", "mean"), "worst test regret": ("test_regret", "max"),
                   "within 0.5 pp": ("hit", "mean"), "setups": ("setup", "count")}).reset_index()
    order = {b: i for i, b in enumerate(FACTORS)}
    out = out.assign(_o=out["by"].map(order)).sort_values(["_o", "mean regret", "strategy"], kind="stable")
    return out.drop(columns="_o").reset_index(drop=True)


def comparison(long, by: str = "setup") -> dict[str, Any]:
    """Does the advisor beat the best single T (chosen on the training folds) and every fixed T, out of sample?

    ``beats_best_single``: strictly lower mean regret (a tie is no evidence that the features
    help); ``at_most_best_single``: the issue's bar (at most); ``best_fixed``: the fixed T
    with the lowest mean regret (chosen in hindsight, so an upper bound on any fixed rule).
    """
    part = long[long["by"] == by]
    if not len(part):
        return {"by": by, "setups": 0, "beats_best_single": False, "at_most_best_single": False,
                "beats_every_fixed": False}
    mean = part.groupby("strategy")["regret"].mean()
    fixed_means = mean[[s for s in mean.index if s.startswith("fixed T=")]]
    best_fixed = fixed_means.idxmin()
    adv, single = float(mean[ADVISOR]), float(mean[BEST_SINGLE])
    return {"by": by, "setups": int((part["strategy"] == ADVISOR).sum()), "advisor": adv, "best single T": single,
            "no features": float(mean[CONTROL]), "best fixed": best_fixed, "best fixed regret": float(fixed_means.min()),
            "beats_best_single": adv < single - 1e-9, "at_most_best_single": adv <= single + 1e-9,
            "beats_every_fixed": adv < float(fixed_means.min()) - 1e-9}


def _seed_curves(r: Mapping[str, Any], on: str) -> dict[int, tuple[float, ...]]:
    return dict(r["seed_test_accuracies"] if on == "test" else r["seed_accuracies"])


def paired_interval(table, long, against: str = BEST_SINGLE, by: str = "setup", on: str = "score") -> dict[str, Any]:
    """95 % t interval over seeds of (accuracy at the advisor's T − at ``against``'s T), mean over setups.

    Paired by seed: one seed is one teacher and data stream, shared by both choices, so what
    the seeds share cancels. Positive: the advisor's T does better. ``on``: "score" or "test".
    """
    from kdlib.findings.stats import interval

    part = long[long["by"] == by]
    picks = part.pivot_table(index="row", columns="strategy", values="T", aggfunc="first")
    per_seed: dict[int, list[float]] = {}
    for i, r in enumerate(table.reset_index(drop=True).to_dict("records")):
        if i not in picks.index or against not in picks.columns:
            continue
        ia = list(r["temperatures"]).index(picks.loc[i, ADVISOR])
        ib = list(r["temperatures"]).index(picks.loc[i, against])
        for seed, accs in _seed_curves(r, "test" if on == "test" else "score").items():
            if math.isfinite(accs[ia]) and math.isfinite(accs[ib]):
                per_seed.setdefault(seed, []).append(accs[ia] - accs[ib])
    mean, low, high, n = interval([float(np.mean(v)) for _, v in sorted(per_seed.items())])
    return {"against": against, "by": by, "on": on, "mean": mean, "low": low, "high": high, "seeds": n}


def reliability(long, by: str = "setup"):
    """Stated confidence vs how often the advisor's T was within 0.5 pp of the best, per level (held-out only)."""
    import pandas as pd

    part = long[(long["by"] == by) & (long["strategy"] == ADVISOR)]
    rows = []
    for name in ("high", "medium", "low"):
        g = part[part["level"] == name]
        if len(g):
            rows.append({"level": name, "setups": len(g), "stated": float(g["confidence"].mean()),
                         "observed": float(g["hit"].mean()), "gap": float(g["hit"].mean() - g["confidence"].mean())})
    if len(part):
        rows.append({"level": "all", "setups": len(part), "stated": float(part["confidence"].mean()),
                     "observed": float(part["hit"].mean()),
                     "gap": float(part["hit"].mean() - part["confidence"].mean())})
    return pd.DataFrame(rows, columns=["level", "setups", "stated", "observed", "gap"])
