"""The stored sweeps as one table: a row per setup, its temperature curve, its best T and its features.

What chooses is scored on validation accuracy when the runs hold a validation part
(``val_acc``, ``specs.Distill.val_fraction``); test accuracy is then only reported
(``test_accuracies``). Sweeps without one fall back to test accuracy and say so
(``scored_on``). Per-seed curves are kept for the paired intervals of the evaluation.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib import analysis, specs, store
from kdlib.advisor.rules import FEATURE_COLUMNS, Setting, _missing
from kdlib.traits import baseline_epochs, granularity, known_overlap

REQUIRED = ("dataset", "teacher", "teacher_origin", "student", "optimizer", "batch_size", "epochs",
            "temperature", "test_acc")
SETUP_KEYS = analysis.SWEEP_COLUMNS
MIN_WEIGHT, MAX_WEIGHT = 0.25, 5.0  # accuracy spread (pp) of a sweep, clipped: its weight in the fit
HIT_PP = 0.5                        # a T "is right" when it is within this many points of the sweep's best
SCORES = ("auto", "val", "test")
COLUMNS = ["setup", *SETUP_KEYS, "temperatures", "accuracies", "test_accuracies", "scored_on", "seeds",
           "seed_accuracies", "seed_test_accuracies", "best_temperature", "best_acc", "spread", "weight",
           "teacher_h_all", "teacher_h_minus_max", "fine_grained", "class_overlap", *FEATURE_COLUMNS]


def _kd_runs(frame):
    f = store.finished(frame, "distill")
    if "method" in f:
        f = f[f["method"] == "kd"]
    if "method_args" in f:
        f = f[f["method_args"].fillna("{}").isin(["{}", ""])]
    f = f[f["temperature"].notna() & f["test_acc"].notna()]
    if "val_fraction" in f:
        f = f.assign(val_fraction=f["val_fraction"].fillna(0.0))
    return f


def _metric(g, score: str) -> str:
    has_val = "val_acc" in g and g["val_acc"].notna().all()
    if score == "val" and not has_val:
        return ""
    return "val_acc" if score in ("val", "auto") and has_val else "test_acc"


def _per_seed(g, column: str, temps: Sequence[float]) -> tuple[tuple[int, tuple[float, ...]], ...]:
    if "seed" not in g:
        return ()
    sums: dict[tuple[int, float], list[float]] = {}
    for s, t, v in zip(g["seed"].tolist(), g["temperature"].tolist(), g[column].tolist()):
        sums.setdefault((int(s), float(t)), []).append(float(v))
    seeds = sorted({s for s, _ in sums})
    return tuple((s, tuple(float(np.mean(sums[(s, t)])) if (s, t) in sums else math.nan for t in temps))
                 for s in seeds)


def sweeps(frame, score: str = "auto") -> Any:
    """One row per setup with a vanilla-KD temperature sweep (>= 2 temperatures) in ``frame``.

    A setup is dataset x teacher (architecture, origin, finetuning) x student/init x
    optimizer x batch size x duration (x validation fraction); seeds are averaged (the paper
    reports the mean of three). ``accuracies`` are what the advisor is fitted and scored
    on: validation accuracy when every run of the setup has one (``score="auto"``), else
    test (``score="test"`` forces test; ``"val"`` drops setups without validation).
    """
    import pandas as pd

    if score not in SCORES:
        raise ValueError(f"score={score!r}; choose one of {SCORES} ('auto': validation where the runs have it)")
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=COLUMNS)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"the results frame lacks columns {missing}; pass kdlib.tables.load_results(root) "
                         f"(needs {list(REQUIRED)})")
    f = _kd_runs(frame)
    keys = [k for k in (*SETUP_KEYS, "val_fraction") if k in f.columns]
    rows = [r for key, g in f.groupby(keys, dropna=False, sort=True)
            if (r := _setup_row(dict(zip(keys, key if isinstance(key, tuple) else (key,))), g, score)) is not None]
    out = pd.DataFrame(rows)
    return out.reindex(columns=COLUMNS + [c for c in out.columns if c not in COLUMNS]) if rows else \
        pd.DataFrame(columns=COLUMNS)


def _setup_row(r: dict[str, Any], g, score: str) -> dict[str, Any] | None:
    column = _metric(g, score)
    if not column:
        return None
    acc = g.groupby("temperature")[column].mean().sort_index()
    if len(acc) < 2:
        return None
    temps = tuple(float(t) for t in acc.index)
    accs = tuple(float(a) for a in acc.values)
    best = analysis.best_row(acc.reset_index(), value=column)
    r.update(temperatures=temps, accuracies=accs, scored_on=column.split("_")[0],
             test_accuracies=tuple(float(a) for a in g.groupby("temperature")["test_acc"].mean().sort_index()),
             seed_accuracies=_per_seed(g, column, temps), seed_test_accuracies=_per_seed(g, "test_acc", temps),
             best_temperature=float(best["temperature"]), best_acc=float(best[column]),
             seeds=int(g.groupby("temperature").size().min()), spread=max(accs) - min(accs))
    r["weight"] = float(np.clip(r["spread"], MIN_WEIGHT, MAX_WEIGHT))
    for c in ("teacher_h_all", "teacher_h_minus_max"):
        r[c] = float(g[c].iloc[0]) if c in g and g[c].notna().any() else float("nan")
    setting = _row_setting(r, g)
    r["fine_grained"], r["class_overlap"] = setting.fine_grained, setting.class_overlap
    r.update(dict(zip(FEATURE_COLUMNS, setting.features().tolist())))
    r["setup"] = _label(r)
    return r


def _row_setting(r: Mapping[str, Any], g) -> Setting:
    dataset, preset = r["dataset"], r.get("preset")
    fine = bool(g["fine_grained"].iloc[0]) if "fine_grained" in g and g["fine_grained"].notna().any() \
        else granularity(dataset, preset)
    if "class_overlap" in g and g["class_overlap"].notna().any():
        overlap = float(g["class_overlap"].iloc[0])
    else:
        overlap = known_overlap(dataset, r.get("pretrain_corpus"), preset)
    origin = r["teacher_origin"] if r["teacher_origin"] in ("finetuned", "scratch") else None
    init = r.get("student_init") if r.get("student_init") in specs.INITS else "random"
    return Setting(optimizer=str(r["optimizer"]), epochs=int(r["epochs"]), batch_size=int(r["batch_size"]),
                   baseline_epochs=baseline_epochs(dataset, preset), teacher_origin=origin, fine_grained=fine,
                   class_overlap=overlap, h_all=r.get("teacher_h_all"), h_minus_max=r.get("teacher_h_minus_max"),
                   student_init=init)


def _label(r: Mapping[str, Any]) -> str:
    te = r.get("teacher_epochs")
    te = f" {int(te)}ep" if isinstance(te, (int, float)) and not _missing(float(te)) else ""
    corpus = r.get("pretrain_corpus")
    corpus = f" [{corpus}]" if isinstance(corpus, str) and corpus not in ("random", "hub") and \
        r.get("teacher_origin") == "finetuned" else ""
    init = r.get("student_init", "random")
    held = f" val{r['val_fraction']:g}" if r.get("val_fraction") else ""
    return (f"{r['dataset']}: {r['teacher']} {r['teacher_origin']}{te}{corpus} -> {r['student']}"
            f"{'' if init in (None, 'random') else ' (' + str(init) + ')'} | {r['optimizer']} bs{int(r['batch_size'])}"
            f" {int(r['epochs'])}ep{held}")


def _nearest(temps: Sequence[float], log2_t: float) -> int:
    """Index of the temperature of a sweep nearest to 2**log2_t in log scale (ties: the smaller T)."""
    d = [abs(math.log2(t) - log2_t) for t in temps]
    return int(min(range(len(temps)), key=lambda i: (round(d[i], 12), temps[i])))


def regret_at(row: Mapping[str, Any], log2_t: float) -> float:
    """Best accuracy of the sweep minus accuracy at the sweep's T nearest to the advice (points)."""
    i = _nearest(row["temperatures"], log2_t)
    return float(row["best_acc"] - row["accuracies"][i])


def regret_on_test(row: Mapping[str, Any], log2_t: float) -> float:
    """The same choice scored on test: best test accuracy of the sweep minus test accuracy at it (reported only)."""
    i = _nearest(row["temperatures"], log2_t)
    return float(max(row["test_accuracies"]) - row["test_accuracies"][i])
