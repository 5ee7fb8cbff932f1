"""What notebook 07 concludes and writes: the held-out regret table, the comparison in words, evaluation.json.

The sentences say plainly when the advisor does not beat a fixed T, with the numbers,
and what data would change that.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kdlib import io
from kdlib.advisor.calibration import MIN_SETUPS
from kdlib.advisor.heldout import (BEST_SINGLE, CONTROL, FACTORS, comparison, evaluate_all, paired_interval,
                                   regret_table, reliability)
from kdlib.advisor.verify import ORDERS, regret_vs_runs, runs_to_reach


def _records(frame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def evaluation(table, *, min_setups: int = MIN_SETUPS) -> dict[str, Any]:
    """Every number of the honest evaluation of the stored sweeps, as plain data (frames under ``frames``)."""
    long = evaluate_all(table, min_setups=min_setups)
    regrets = regret_table(long)
    curve = regret_vs_runs(table, long)
    scored = sorted(set(table["scored_on"])) if len(table) and "scored_on" in table else []
    return {"setups": len(table), "scored_on": scored, "min_setups": min_setups,
            "comparisons": {by: comparison(long, by) for by in FACTORS},
            "intervals": {s: paired_interval(table, long, s) for s in (BEST_SINGLE, CONTROL)} if len(long) else {},
            "frames": {"long": long, "regrets": regrets, "reliability": reliability(long), "curve": curve}}


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON of ``outputs/07_temperature_advisor/evaluation.json``: per strategy, the regret-vs-runs curve."""
    f = result["frames"]
    per_strategy: dict[str, dict[str, Any]] = {}
    for r in _records(f["regrets"]):
        per_strategy.setdefault(r["by"], {})[r["strategy"]] = {
            k: r[k] for k in ("mean regret", "worst regret", "mean test regret", "worst test regret", "within 0.5 pp",
                              "setups")}
    return {"setups": result["setups"], "scored_on": result["scored_on"], "min_setups": result["min_setups"],
            "regret_pp": per_strategy, "comparisons": result["comparisons"], "paired_intervals": result["intervals"],
            "reliability": _records(f["reliability"]), "regret_vs_runs": _records(f["curve"]),
            "units": "accuracy points; regret = best accuracy of the sweep minus accuracy at the chosen T, scored on "
                     "validation where the runs hold one (scored_on), test reported beside it"}


def intervals_table(result: dict[str, Any]):
    """The paired-over-seeds intervals as a table: one row per comparison."""
    import pandas as pd

    return pd.DataFrame(list(result["intervals"].values()),
                        columns=["against", "by", "on", "mean", "low", "high", "seeds"])


def _table_lines(result: dict[str, Any]) -> list[str]:
    """The leave-one-setup-out regret table and the regret-vs-runs curve, in numbers."""
    reg = result["frames"]["regrets"]
    reg = reg[reg["by"] == "setup"]
    out = ["Regret table, leave one setup out (pp, scored; test beside it):"]
    out += [f" - {r['strategy']}: mean {r['mean regret']:.2f}, worst {r['worst regret']:.2f} (test: mean "
            f"{r['mean test regret']:.2f}, worst {r['worst test regret']:.2f})" for r in reg.to_dict("records")]
    curve = result["frames"]["curve"]
    for order in ORDERS:
        part = curve[curve["order"] == order]
        if len(part):
            k = runs_to_reach(curve, order)
            out.append(f"{order}: mean regret after k = 1..{int(part['k'].max())} runs: "
                       + ", ".join(f"{v:.2f}" for v in part["mean regret"])
                       + (f" (<= 0.5 pp from {k} run(s) on)" if k else " (never <= 0.5 pp)"))
    return out


def write(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``to_json(result)`` atomically to ``path``."""
    path = Path(path)
    io.atomic_write_json(path, to_json(result))
    return path


def lines(result: dict[str, Any]) -> list[str]:
    """The closing note: does the advisor beat a fixed T out of sample, with the numbers, and what would change it."""
    n = result["setups"]
    if n == 0:
        return ["No temperature sweep in the store: nothing to evaluate. Run the study notebooks (or `make study`) "
                "first; the advice is then the rules of thumb alone, unchecked."]
    c = result["comparisons"]["setup"]
    on = result["scored_on"] or ["test"]
    if on == ["val"]:
        out = [f"{n} sweeps, chosen and scored on validation accuracy; test accuracy only reported beside it."]
    else:
        out = [f"{n} sweeps, scored on {' and '.join(on)} accuracy: "
               f"{'some' if 'val' in on else 'these'} runs hold no validation part (val_fraction=0, the paper's "
               "protocol), so choice and score share the test set there: read the regrets as optimistic."]
    if not c["setups"]:
        return out + ["Too few sweeps to hold any out."]
    verdict = "beats" if c["beats_best_single"] else "does NOT beat"
    out.append(f"Leave one setup out: the advisor's mean regret is {c['advisor']:.2f} pp; the best single T chosen "
               f"on the training folds {c['best single T']:.2f} pp; the featureless control {c['no features']:.2f} "
               f"pp; the best fixed T in hindsight ({c['best fixed']}) {c['best fixed regret']:.2f} pp. "
               f"The advisor {verdict} the best single T.")
    if not c["beats_every_fixed"]:
        out.append(f"The advisor does not beat a fixed T: always using {c['best fixed']} does at least as well "
                   "on these sweeps.")
    for by in ("teacher origin", "optimizer", "dataset"):
        cb = result["comparisons"][by]
        if cb["setups"]:
            out.append(f"Leave one {by} out: advisor {cb['advisor']:.2f} pp vs best single T {cb['best single T']:.2f}"
                       f" pp ({'beats' if cb['beats_best_single'] else 'does not beat'} it).")
        else:
            out.append(f"Leave one {by} out: the store holds one {by} only, so there is no fold.")
    iv = result["intervals"].get(BEST_SINGLE, {})
    if iv.get("seeds", 0) >= 2:
        out.append(f"Paired over {iv['seeds']} seeds, accuracy at the advisor's T minus at the best single T: "
                   f"{iv['mean']:+.2f} pp (95 % interval {iv['low']:+.2f} to {iv['high']:+.2f}).")
    out += _table_lines(result)
    if not c["beats_best_single"]:
        out.append("What would change it: sweeps whose best T actually varies with the features (SGD at several "
                   "durations, scratch vs. pretrained teachers, coarse vs. fine classes) at a patient scale, "
                   "several seeds each, so a best T is not noise on a flat curve.")
    return out
