"""What the advice is worth: leave one stored sweep out, advise it from the others, measure the regret.

Regret is the best accuracy of the sweep minus the accuracy at the advised T (the sweep's
nearest temperature, log scale), beside fixed T = 4, T = 1, the rules alone and the best
single T chosen on the other setups.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib.advisor.calibration import MIN_SETUPS, Calibration, _nearest, best_single, fit_calibration, sweeps
from kdlib.advisor.rules import FEATURE_COLUMNS, _missing


STRATEGIES = ("advisor", "rules only", "fixed T=4", "fixed T=1", "best single T")


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
        picks["best single T"] = best_single(others) if len(others) else float("nan")
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


# ----------------------------------------------------------------------------- notebook 07's tables and sentences

def stored_sweeps(store_root=None, preset: str | None = None):
    """The results frame of the store (``preset``'s runs only, unless None) and its ``sweeps`` table."""
    from kdlib import store, tables

    frame = tables.load_results(store_root)
    if preset is not None and "preset" in frame:
        frame = frame[frame["preset"] == preset]
    return frame, sweeps(frame)


def example_setups(preset: str | None = "mini") -> dict[str, dict[str, Any]]:
    """Typical setups described by hand (no teacher pass): ``recommend`` keyword arguments by name."""
    from kdlib import specs

    p = specs.preset(preset or "mini")
    fine = p.datasets[0]                      # mini: fmnist-fine, paper: pets
    base = p.distill_epochs.get(fine, 30)     # the preset's distillation length for it
    common = dict(dataset=fine, preset=p.name, calibration=None, temperatures=p.temperatures)
    pretrained = dict(teacher_origin="finetuned", fine_grained=True, class_overlap=1.0)
    setups = {
        "pretrained teacher, short finetune, AdamW": dict(pretrained, h_all=0.45, h_minus_max=0.70),
        "same, long finetune (H_-max near 1)": dict(pretrained, h_all=0.20, h_minus_max=0.97),
        "coarse classes": dict(pretrained, fine_grained=False, h_all=0.40, h_minus_max=0.75),
        "classes the pretraining never separated": dict(pretrained, class_overlap=0.2, h_all=0.40, h_minus_max=0.80),
        "teacher trained from scratch": dict(teacher_origin="scratch", fine_grained=True, h_all=0.25,
                                             h_minus_max=0.95),
        "SGD, 1/8 of the schedule, batch 256": dict(pretrained, h_all=0.45, h_minus_max=0.75, optimizer="sgd",
                                                    epochs=max(1, base // 8), batch_size=256),
        "SGD, full schedule": dict(pretrained, h_all=0.45, h_minus_max=0.75, optimizer="sgd"),
    }
    return {name: {**common, "optimizer": "adamw", "epochs": base, **s} for name, s in setups.items()}


def advice_table(advices: Mapping[str, Any]):
    """One row per named advice: advised T, unrounded T, range, confidence."""
    import pandas as pd

    return pd.DataFrame([{"setup": n, "advised T": a.temperature, "unrounded T": round(a.raw, 1),
                          "range": f"{a.low:g}-{a.high:g}", "confidence": a.confidence} for n, a in advices.items()])


def weights_table(cal: Calibration):
    """Each rule's weight beside its calibrated weight."""
    import pandas as pd

    from kdlib.advisor.rules import rules_table

    rules = rules_table()
    return pd.DataFrame({"rule weight": rules.set_index("feature")["weight (log2 T)"],
                         "calibrated": pd.Series(cal.coef, index=rules["feature"])})


LOSO_COLUMNS = ["setup", "best_temperature", "T advisor", "regret advisor", "regret rules only", "regret fixed T=4",
                "regret fixed T=1", "T best single T", "regret best single T", "basis"]


def validation_lines(loso, min_setups: int) -> list[str]:
    """What the leave-one-setup-out numbers say, in sentences (and why there are none)."""
    if len(loso) == 0:
        return ["The store holds no temperature sweep yet (a setup needs vanilla KD at >= 2 temperatures), so there "
                "is nothing to validate: the advice above is the rules alone. Run notebooks 00, 02, 04-06 to fill the "
                "store."]
    out = []
    if len(loso) < min_setups + 1:
        out.append(f"Only {len(loso)} sweep(s): every held-out setup sees fewer than {min_setups} others, so the "
                   "advisor column is the rules alone. Treat these numbers as anecdotes.")
    lines = where_it_loses(loso)
    s = regret_summary(loso).set_index("strategy")["mean regret (pp)"]
    out.append(f"Mean regret: advisor {s['advisor']:.2f} pp, rules only {s['rules only']:.2f}, "
               f"fixed T=4 {s['fixed T=4']:.2f}, fixed T=1 {s['fixed T=1']:.2f}, best single T {s['best single T']:.2f}.")
    out.append(f"The advisor loses to a simple rule on {len(lines)} of {len(loso)} setups" + (":" if lines else "."))
    return out + [f" - {line}" for line in lines]
