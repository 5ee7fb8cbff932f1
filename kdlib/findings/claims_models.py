"""Effects of claims F8–F16 (paper Sects. 4.3–5: teachers, students, datasets, patient distillation).

Same contract as ``claims_training``: finished runs of one preset and a ``Context`` in,
an ``Outcome`` of per-seed values out.
"""
from __future__ import annotations

import math

import pandas as pd

from kdlib import store
from kdlib.findings.select import (Context, aligned, baseline, component, curve, distilled, extremes, large_t_advantage,
                                   per_seed, slope, vanilla)
from kdlib.findings.stats import Outcome, Part


TEACHER_AXES = ("teacher_epochs", "teacher_id")  # the teacher itself differs between the compared runs


def _teacher_ends(g: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    ends = extremes(g, "teacher_epochs")
    if ends is None:
        return None
    pair = aligned(curve(ends[0]), curve(ends[1]))
    return None if pair is None else (pair[0], pair[1])


def _finetuned(frame: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return vanilla(baseline(distilled(frame), ctx.preset))


def f8_finetune_lowers(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F8: mean accuracy over T with the longest-finetuned teacher minus the shortest-finetuned one (< 0)."""
    def effect(g):
        pair = _teacher_ends(g)
        return None if pair is None else float(pair[1].mean() - pair[0].mean())

    values = per_seed(_finetuned(frame, ctx), TEACHER_AXES, effect)
    if values.empty:
        return Outcome(missing="teachers finetuned for two or more durations (notebook 04)")
    return Outcome((Part("mean acc, longest − shortest finetune", values, "<"),))


def f9_small_t_catches_up(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F9: large-T advantage (best acc at T >= 4x the smallest minus acc at the smallest T), longest minus shortest finetune (< 0)."""
    def effect(g):
        pair = _teacher_ends(g)
        if pair is None:
            return None
        short, long_ = large_t_advantage(pair[0]), large_t_advantage(pair[1])
        return None if short is None or long_ is None else long_ - short

    values = per_seed(_finetuned(frame, ctx), TEACHER_AXES, effect)
    if values.empty:
        return Outcome(missing="teachers finetuned for two or more durations, swept over T (notebook 04)")
    return Outcome((Part("large-T advantage, longest − shortest finetune", values, "<"),))


def f10_entropies(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F10: teacher H_all (longest − shortest finetune) < 0 and H_-max (longest − shortest) > 0, at T = 1."""
    def ends(g):
        if g["teacher_epochs"].nunique() < 2:
            return None
        stats = g.groupby("teacher_epochs")[["teacher_h_all", "teacher_h_minus_max"]].first().sort_index()
        d = stats.iloc[-1] - stats.iloc[0]
        return float(d["teacher_h_all"]), float(d["teacher_h_minus_max"])

    rows = _finetuned(frame, ctx)
    if rows.empty or "teacher_h_all" not in rows:
        return Outcome(missing="teachers finetuned for two or more durations (notebook 04)")
    h_all, h_minus = (per_seed(rows, TEACHER_AXES, component(ends, k)) for k in (0, 1))
    if h_all.empty:
        return Outcome(missing="teachers finetuned for two or more durations (notebook 04)")
    return Outcome((Part("H_all, longest − shortest", h_all, "<"), Part("H_-max, longest − shortest", h_minus, ">")))


def f11_scratch_small_t(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F11: with a teacher trained from scratch, acc at the smallest T minus the best at T >= 4x it (> 0)."""
    rows = vanilla(baseline(distilled(frame), ctx.preset, vary=("teacher_origin",)))
    rows = rows[rows["teacher_origin"] == "scratch"] if len(rows) else rows

    def effect(g):
        adv = large_t_advantage(curve(g))
        return None if adv is None else -adv

    values = per_seed(rows, (), effect)
    if values.empty:
        return Outcome(missing="a scratch teacher swept over T (notebook 04)")
    return Outcome((Part("acc(smallest T) − best large T", values, ">"),))


PRETRAINED_INITS = ("pretrained", "finetuned")


def f12_every_init(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F12: large-T advantage for every student initialization (the smallest over inits > 0), and larger
    for random / target students than for pretrained / finetuned ones (difference of means > 0)."""
    rows = vanilla(baseline(distilled(frame), ctx.preset, vary=("student_init",)))

    def gains(g):
        per = {i: large_t_advantage(curve(s)) for i, s in g.groupby("student_init")}
        per = {i: v for i, v in per.items() if v is not None}
        if len(per) < 2:
            return None
        plain = [v for i, v in per.items() if i not in PRETRAINED_INITS]
        pre = [v for i, v in per.items() if i in PRETRAINED_INITS]
        diff = sum(plain) / len(plain) - sum(pre) / len(pre) if plain and pre else math.nan
        return min(per.values()), diff

    smallest, diff = (per_seed(rows, ("student_init",), component(gains, k)) for k in (0, 1))
    if smallest.empty:
        return Outcome(missing="students of two or more initializations swept over T (notebook 05)")
    return Outcome((Part("smallest large-T advantage over inits", smallest, ">"),
                    Part("advantage random/target − pretrained/finetuned", diff, ">")))


def _references(frame: pd.DataFrame, origin: str) -> dict[tuple, float]:
    """(dataset, arch, seed, epochs, batch) and (dataset, arch, seed) -> label-only test accuracy of that origin.

    The short key holds the longest such run: the reference when none matches the schedule.
    """
    sup = store.finished(frame, "supervised") if "kind" in frame else frame.iloc[0:0]
    if sup.empty or "origin" not in sup:
        return {}
    sup = sup[sup["origin"] == origin].sort_values("epochs")
    out = {}
    for r in sup.itertuples():
        out[(r.dataset, r.arch, int(r.seed))] = out[(r.dataset, r.arch, int(r.seed), int(r.epochs), int(r.batch_size))] \
            = float(r.test_acc)
    return out


def f13_kd_beats_labels(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F13: best KD accuracy over T minus the same student trained on labels alone (> 0).

    Pretrained students against pretraining + finetuning (the paper's comparison); where
    those are absent, random students against training from random weights on labels.
    """
    rows = vanilla(baseline(distilled(frame), ctx.preset, vary=("student_init",)))
    for init, origin in (("pretrained", "finetuned"), ("random", "target")):
        refs = _references(frame, origin)
        part = rows[rows["student_init"] == init] if len(rows) else rows

        def effect(g, refs=refs):
            key = (g["dataset"].iloc[0], g["student"].iloc[0], int(g["seed"].iloc[0]))
            ref = refs.get((*key, int(g["epochs"].iloc[0]), int(g["batch_size"].iloc[0])), refs.get(key))
            return None if ref is None else float(curve(g).max() - ref)

        values = per_seed(part, (), effect)
        if not values.empty:
            return Outcome((Part(f"best KD ({init} student) − labels only ({origin})", values, ">"),))
    return Outcome(missing="distilled students and the same students trained on labels alone (notebooks 00, 05)")


def _cases(g: pd.DataFrame, ctx: Context) -> list[dict]:
    """Each (dataset, corpus) curve of a group with its granularity, overlap, inflection T and slope."""
    from kdlib import traits

    out = []
    for (dataset, corpus), s in g.groupby(["dataset", "pretrain_corpus"]):
        c = curve(s)
        fine = traits.granularity(dataset, ctx.preset.name)
        if len(c) < 2 or fine is None:
            continue
        share = traits.known_overlap(dataset, corpus, ctx.preset.name)
        top = c.max()
        out.append({"fine": fine, "overlap": share is not None and share >= 0.5, "known": share is not None,
                    "inflection": math.log2(c[c >= top - ctx.tolerance].index[0]), "slope": slope(c)})
    return out


def _granularity_rows(frame: pd.DataFrame) -> pd.DataFrame:
    rows = vanilla(distilled(frame))
    if rows.empty:
        return rows
    return rows[(rows["teacher_origin"] == "finetuned") & (rows["student_init"] == "random")]


def f14_coarse_plateau(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F14: log2 of the inflection T (smallest T within ``tolerance`` points of the best), coarse minus fine datasets,
    both with a pretraining that knows their classes (< 0)."""
    def effect(g):
        cases = [c for c in _cases(g, ctx) if c["overlap"]]
        coarse = [c["inflection"] for c in cases if not c["fine"]]
        fine = [c["inflection"] for c in cases if c["fine"]]
        return sum(coarse) / len(coarse) - sum(fine) / len(fine) if coarse and fine else None

    values = per_seed(_granularity_rows(frame), ("dataset", "pretrain_corpus", *TEACHER_AXES), effect)
    if values.empty:
        return Outcome(missing="coarse and fine datasets swept over T (notebook 06)")
    return Outcome((Part("log2 inflection T, coarse − fine", values, "<"),))


def f15_no_overlap_negative(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F15: slope of accuracy per doubling of T on fine datasets whose classes the pretraining never separated (< 0),
    and that slope minus the slope with an overlapping pretraining (< 0)."""
    def slopes(g):
        cases = [c for c in _cases(g, ctx) if c["fine"] and c["known"] and c["slope"] is not None]
        none = [c["slope"] for c in cases if not c["overlap"]]
        some = [c["slope"] for c in cases if c["overlap"]]
        if not none:
            return None
        mean = sum(none) / len(none)
        return mean, mean - sum(some) / len(some) if some else math.nan

    rows = _granularity_rows(frame)
    own, rel = (per_seed(rows, ("dataset", "pretrain_corpus", *TEACHER_AXES), component(slopes, k)) for k in (0, 1))
    if own.empty:
        return Outcome(missing="a fine dataset with a pretraining that lacks its classes (notebook 06)")
    return Outcome((Part("slope per doubling, no overlap", own, "<"),
                    Part("slope no overlap − overlap", rel, "<")))


def f16_patient(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F16: gain of the best accuracy over T from the shortest to the longest duration: SGD minus AdamW (> 0),
    and the largest batch minus the smallest (> 0)."""
    rows = vanilla(baseline(distilled(frame), ctx.preset))

    def gains(g):
        per = {}
        for key, s in g.groupby(["optimizer", "batch_size"]):
            ends = extremes(s, "epochs")
            if ends is not None:
                per[key] = float(curve(ends[1]).max() - curve(ends[0]).max())
        batches = sorted({b for _, b in per})
        opt = [per[("sgd", b)] - per[("adamw", b)] for b in batches if ("sgd", b) in per and ("adamw", b) in per]
        bat = [per[(o, batches[-1])] - per[(o, batches[0])] for o in ("adamw", "sgd")
               if len(batches) > 1 and (o, batches[0]) in per and (o, batches[-1]) in per]
        if not opt and not bat:
            return None
        return (sum(opt) / len(opt) if opt else math.nan), (sum(bat) / len(bat) if bat else math.nan)

    opt, bat = (per_seed(rows, ("optimizer", "batch_size", "epochs"), component(gains, k)) for k in (0, 1))
    if opt.empty and bat.empty:
        return Outcome(missing="two optimizers or batch sizes at two or more durations (notebook 02)")
    return Outcome((Part("duration gain, SGD − AdamW", opt, ">"), Part("duration gain, large − small batch", bat, ">")))
