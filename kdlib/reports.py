"""What each study notebook prints under its charts: the tables and the sentences that check its findings.

One function per notebook takes the results frame ``runs.ensure`` returned and gives a
``Report`` (tables, sentences, values); ``Report.show()`` displays it. The numbers all come
from ``kdlib.analysis``; the sentences are the checks STUDY.md's claims ask for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kdlib import analysis, store

TEACHER_COLUMNS = ["origin", "arch", "epochs", "test_acc", "train_h_all", "train_h_minus_max"]


@dataclass
class Report:
    """Tables to display and sentences to print, plus ``values`` a later cell may use."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def show(self, digits: int = 3) -> "Report":
        from IPython.display import display

        for table in self.tables.values():
            display(table.round(digits) if isinstance(table, pd.DataFrame) else table)
        for line in self.lines:
            print(line)
        return self

    def __getitem__(self, name: str) -> Any:
        return self.values[name] if name in self.values else self.tables[name]


def quickstart(results: pd.DataFrame) -> Report:
    """Notebook 00: the sweep, and the student on labels alone."""
    students = store.finished(results, "distill").sort_values("temperature")
    reference = float(analysis.where(store.finished(results), kind="supervised")["test_acc"].iloc[0])
    best = analysis.best_row(students)
    line = (f"student on labels alone: {reference:.2f}%  |  best distilled: {students['test_acc'].max():.2f}% "
            f"at T={best['temperature']:g}")
    return Report({"students": students[["temperature", "test_acc", "train_seconds"]]}, [line],
                  {"students": students, "reference": reference, "best_T": float(best["temperature"])})


def kd_approach(results: pd.DataFrame) -> Report:
    """Notebook 01 (Fig. 1): each method against the best vanilla-KD temperature of the same seed."""
    cols = ["dataset", "teacher", "student", "seed"]
    done = store.finished(results)
    best = analysis.best_temperature(analysis.where(done, method="kd"), cols)
    other = done[done["method"] != "kd"].merge(best.rename(columns={"best_acc": "best_kd"}), on=cols)
    other = other.assign(margin=other["test_acc"] - other["best_kd"])
    line = f"methods beating the best vanilla-KD temperature: {int((other['margin'] > 0).sum())} of {len(other)}"
    return Report({"methods": other[cols + ["method", "test_acc", "best_T", "best_kd", "margin"]]}, [line])


def _longest(results: pd.DataFrame) -> pd.DataFrame:
    done = store.finished(results)
    longest = done.groupby(["dataset", "optimizer", "batch_size"])["epochs"].transform("max")
    return done[done["epochs"] == longest]


def training_configuration(results: pd.DataFrame) -> Report:
    """Notebook 02 (Figs. 2-3): cross-overs, and how much T matters at the longest duration."""
    cross = analysis.crossover(results)
    lines = []
    for row in cross.itertuples():
        where = (f"at {row.crossover_epochs:g} epochs" if row.crossover_epochs == row.crossover_epochs
                 else "nowhere in these durations")
        lines.append(f"{row.dataset} {row.teacher}→{row.student} {row.optimizer}, batch {row.batch_size}: "
                     f"best T {row.best_T_path}; cross over {where}")
    setup = [c for c in analysis.SETUP_COLUMNS if results[c].nunique() > 1]
    longest = _longest(results)
    spread = analysis.sensitivity(longest, [*setup, "optimizer", "batch_size"])
    by_opt = spread.groupby("optimizer")["spread"].mean()
    lines.append("1. mean spread over T at the longest duration: "
                 + ", ".join(f"{o} {v:.2f} pts" for o, v in by_opt.items()))
    for opt in cross["optimizer"].unique():
        part = cross[cross["optimizer"] == opt].sort_values("batch_size")
        lines.append(f"2-3. {opt}: cross-over epochs by batch size: " + ", ".join(
            f"{b}: {c:g}" if c == c else f"{b}: none" for b, c in zip(part["batch_size"], part["crossover_epochs"])))
    lines.append("4. best T at the longest duration: " + ", ".join(
        f"{o}/{b}: T={t:g} (+{g:.2f} pts over T={s:g})" for o, b, t, g, s in
        zip(spread["optimizer"], spread["batch_size"], spread["best_T"], spread["gain"], spread["smallest_T"])))
    table = analysis.mean_std_table(longest, [*setup, "optimizer", "batch_size", "epochs"])
    return Report({"crossover": cross, "longest": table, "sensitivity": spread}, lines)


def class_relationships(results: pd.DataFrame) -> Report:
    """Notebook 03 (Fig. 5): accuracy per teacher-target variant and T (mean ± std over seeds)."""
    return Report({"variants": analysis.mean_std_table(results, "variant", digits=2)})


def teacher_origination(results: pd.DataFrame) -> Report:
    """Notebook 04 (Table 1): longer finetuning, the teachers' entropies, and teachers from scratch."""
    by = ["dataset", "student", "teacher", "teacher_origin", "teacher_epochs"]
    stats = analysis.teacher_stats(results).pivot(index="row", columns="stat", values="label")
    entropy = (store.finished(results).drop_duplicates("teacher_id").groupby(by)
               [["teacher_acc", "teacher_h_all", "teacher_h_minus_max"]].mean().reset_index())
    summary = analysis.sensitivity(results, by).merge(entropy, on=by)
    lines = []
    for (dataset, student, teacher), part in summary.groupby(["dataset", "student", "teacher"]):
        ft = part[part["teacher_origin"] == "finetuned"].sort_values("teacher_epochs")
        if len(ft) > 1:
            a, b = ft.iloc[0], ft.iloc[-1]
            lines += [f"{teacher}→{student} on {dataset}, finetuned {a.teacher_epochs:g}→{b.teacher_epochs:g} epochs:",
                      f"  1. best student accuracy {a.best_acc:.2f} → {b.best_acc:.2f}; gain of the best T over "
                      f"T={a.smallest_T:g}: {a.gain:+.2f} → {b.gain:+.2f} pts",
                      f"  2. H_all {a.teacher_h_all:.3f} → {b.teacher_h_all:.3f}; H_-max {a.teacher_h_minus_max:.3f} "
                      f"→ {b.teacher_h_minus_max:.3f}"]
        for row in part[part["teacher_origin"] == "scratch"].itertuples():
            lines.append(f"  3. from scratch ({row.teacher_epochs:g} epochs): best T = {row.best_T:g} "
                         f"({row.best_acc:.2f}%, {row.gain:+.2f} over T={row.smallest_T:g})")
    return Report({"accuracy": analysis.mean_std_table(results, by), "teachers": stats, "summary": summary}, lines)


def student_initialization(results: pd.DataFrame) -> Report:
    """Notebook 05 (Table 2): the gain of large T per initialization, and best KD against finetuning alone."""
    distilled = store.finished(results, "distill")
    reference = analysis.finetune_reference(results)
    by = ["dataset", "teacher", "student", "student_init"]
    ft = analysis.mean_std(reference, ["dataset", "student"])
    summary = analysis.sensitivity(distilled, by).merge(
        ft[["dataset", "student", "test_acc"]].rename(columns={"test_acc": "finetune_only"}),
        on=["dataset", "student"], how="left")
    summary["margin"] = summary["best_acc"] - summary["finetune_only"]
    lines = [f"{r.teacher}→{r.student} ({r.student_init}) on {r.dataset}: 1. best T={r.best_T:g}, "
             f"gain over T={r.smallest_T:g} {r.gain:+.2f} pts; 2. best KD {r.best_acc:.2f}% vs finetune only "
             f"{r.finetune_only:.2f}% ({r.margin:+.2f})" for r in summary.itertuples()]
    labels = ft[["dataset", "student", "label", "seeds"]].rename(columns={"label": "finetune only (%)"})
    return Report({"accuracy": analysis.mean_std_table(distilled, by), "finetune_only": labels, "summary": summary},
                  lines, {"distilled": distilled, "reference": reference})


def dataset_granularity(results: pd.DataFrame, tolerance: float) -> Report:
    """Notebook 06 (Figs. 6-7): inflection points, coarse vs fine, overlap vs none."""
    points = analysis.inflection_points(results, ["case", "granularity", "overlap", "teacher", "student"], tolerance)
    known = points[points["overlap"] == "overlap"]
    coarse, fine = known[known["granularity"] == "coarse"], known[known["granularity"] == "fine"]
    lines = []
    if len(coarse) and len(fine):
        lines.append(f"1. inflection T: coarse {sorted(coarse['inflection_T'].tolist())} vs fine "
                     f"{sorted(fine['inflection_T'].tolist())}")
    lines += [f"2. {r.case} ({r.overlap}): best T={r.best_T:g}, inflection T={r.inflection_T:g}, {r.trend} "
              f"({r.slope:+.2f} pts per doubling)" for r in fine.itertuples()]
    lines += [f"3. {r.case} ({r.overlap}): best T={r.best_T:g}, {r.trend} ({r.slope:+.2f} pts per doubling; "
              f"T={r.largest_T:g} {r.acc_at_largest_T - r.acc_at_smallest_T:+.2f} pts vs T={r.smallest_T:g})"
              for r in points[(points["overlap"] == "no overlap") & (points["granularity"] == "fine")].itertuples()]
    return Report({"accuracy": analysis.mean_std_table(results, ["case", "teacher", "student"]), "points": points},
                  lines)


def teacher_overview(teachers: pd.DataFrame) -> pd.DataFrame:
    """The teachers' rows as notebook 00 shows them: origin, architecture, epochs, accuracy, entropies."""
    return teachers[[c for c in TEACHER_COLUMNS if c in teachers]]
