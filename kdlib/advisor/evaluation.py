"""What the advice is worth: leave one stored sweep out, advise it from the others, measure the regret.

Regret is the best accuracy of the sweep minus the accuracy at the advised T (the sweep's
nearest temperature, log scale), beside fixed T = 4, T = 1, the rules alone and the best
single T chosen on the other setups.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib.advisor.calibration import MIN_SETUPS, Calibration, _nearest, fit_calibration, regret_at, sweeps
from kdlib.advisor.rules import FEATURE_COLUMNS, _missing


STRATEGIES = ("advisor", "rules only", "fixed T=4", "fixed T=1", "best single T")


def _best_single(others: Sequence[Mapping[str, Any]]) -> float:
    """The one T with the lowest mean regret over ``others`` (each at its sweep's nearest T)."""
    cands = sorted({t for r in others for t in r["temperatures"]})
    return min(cands, key=lambda t: (round(float(np.mean([regret_at(r, math.log2(t)) for r in others])), 9), t))


def leave_one_setup_out(frame, *, min_setups: int = MIN_SETUPS, table=None):
    """For each stored sweep, advice fitted without it vs the sweep's best T (regret, in accuracy points).

    Beside the advisor: the rules alone, fixed T = 4, fixed T = 1, and the single T with the
    lowest mean regret on the other setups. Each strategy's T is mapped to the sweep's
    nearest temperature (log scale). Returns one row per setup.
    """
    import pandas as pd

    table = sweeps(frame) if table is None else table
    recs = table.to_dict("records")
    rows = []
    for i, r in enumerate(recs):
        others = table.drop(index=table.index[i])
        cal = fit_calibration(others, min_setups=min_setups) if len(others) >= 2 else Calibration.rules(len(others), min_setups)
        x = np.array([r[n] for n in FEATURE_COLUMNS], float)
        picks = {"advisor": cal.predict(x), "rules only": Calibration.rules().predict(x),
                 "fixed T=4": 2.0, "fixed T=1": 0.0}
        rest = [o for j, o in enumerate(recs) if j != i]
        picks["best single T"] = math.log2(_best_single(rest)) if rest else float("nan")
        row = {k: r[k] for k in ("setup", "dataset", "teacher", "teacher_origin", "teacher_epochs", "student",
                                 "student_init", "optimizer", "batch_size", "epochs") if k in r}
        row.update(temperatures=r["temperatures"], best_temperature=r["best_temperature"], best_acc=r["best_acc"],
                   spread=r["spread"], basis="calibrated" if cal.calibrated else "rules",
                   advised_raw=2 ** picks["advisor"])
        for name, l2 in picks.items():
            if math.isnan(l2):
                row[f"T {name}"], row[f"regret {name}"] = float("nan"), float("nan")
                continue
            j = _nearest(r["temperatures"], l2)
            row[f"T {name}"] = r["temperatures"][j]
            row[f"regret {name}"] = float(r["best_acc"] - r["accuracies"][j])
        rows.append(row)
    return pd.DataFrame(rows)


def regret_summary(loso) -> "Any":
    """Mean and max regret per strategy, and on how many setups the advisor is worse than each."""
    import pandas as pd

    out = []
    for s in STRATEGIES:
        col = loso[f"regret {s}"] if len(loso) else pd.Series(dtype=float)
        worse = int((loso["regret advisor"] > col + 1e-9).sum()) if len(loso) and s != "advisor" else 0
        better = int((loso["regret advisor"] < col - 1e-9).sum()) if len(loso) and s != "advisor" else 0
        out.append({"strategy": s, "mean regret (pp)": col.mean(), "median": col.median(), "max": col.max(),
                    "advisor worse on": worse if s != "advisor" else None,
                    "advisor better on": better if s != "advisor" else None, "setups": int(col.notna().sum())})
    return pd.DataFrame(out)


def where_it_loses(loso, against: Sequence[str] = ("fixed T=4", "fixed T=1", "best single T")) -> list[str]:
    """Plain sentences: every setup where the advisor's regret exceeds a simple baseline's."""
    lines = []
    for r in loso.to_dict("records"):
        beaten = [f"{s} (T={r[f'T {s}']:g}, regret {r[f'regret {s}']:.2f})" for s in against
                  if not _missing(r[f"regret {s}"]) and r["regret advisor"] > r[f"regret {s}"] + 1e-9]
        if beaten:
            lines.append(f"{r['setup']}: advised T={r['T advisor']:g} (best {r['best_temperature']:g}), regret "
                         f"{r['regret advisor']:.2f} pp; beaten by " + ", ".join(beaten))
    return lines
