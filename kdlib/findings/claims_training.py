"""Effects of claims F1–F7 (paper Sects. 4.1–4.2: methods, optimizer, batch size, duration, targets).

Every function takes the finished runs of one preset and a ``Context`` and returns an
``Outcome``: per-seed values of each tested number (accuracy in points unless said).
"""
from __future__ import annotations

import math

import pandas as pd

from kdlib import metrics
from kdlib.findings.select import (Context, aligned, baseline, component, curve, distilled, extremes, gap, longest,
                                   per_seed, spread, vanilla)
from kdlib.findings.stats import Outcome, Part


def _missing(what: str) -> Outcome:
    return Outcome(missing=what)


def f1_methods(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F1: best vanilla-KD accuracy over the shared fixed T minus the best other output-matching method (> 0).

    Same teacher, student, data and schedule; each method at its own paper setting. Both
    sides pick a maximum on the test set (KD over T, the others over methods).
    """
    rows = baseline(distilled(frame), ctx.preset)

    def effect(g):
        kd, other = curve(g[g["variant"] == "kd"]), g[g["method"] != "kd"]
        if kd.empty or other.empty:
            return None
        return float(kd.max() - other.groupby("variant")["test_acc"].mean().max())

    values = per_seed(rows, ("variant", "method"), effect)
    if values.empty:
        return _missing("vanilla KD and other methods on one setup (notebook 01)")
    return Outcome((Part("best KD − best other method", values, ">"),))


def _opt_curves(g: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    adam, sgd = g[g["optimizer"] == "adamw"], g[g["optimizer"] == "sgd"]
    common = set(adam["epochs"]) & set(sgd["epochs"])
    if not common:
        return None
    e = max(common)
    pair = aligned(curve(adam[adam["epochs"] == e]), curve(sgd[sgd["epochs"] == e]))
    return None if pair is None else (pair[0], pair[1])


def f2_adamw_robust(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F2: spread over T (best − worst accuracy) of AdamW minus SGD at the longest duration both ran (< 0).

    Per batch size, on the temperatures both optimizers ran; the mean over batch sizes.
    """
    rows = vanilla(baseline(distilled(frame), ctx.preset))

    def effect(g):
        pair = _opt_curves(g)
        return None if pair is None else spread(pair[0]) - spread(pair[1])

    values = per_seed(rows, ("optimizer", "epochs"), effect)
    if values.empty:
        return _missing("AdamW and SGD sweeps over T at one duration (notebook 02)")
    return Outcome((Part("spread AdamW − spread SGD", values, "<"),))


def _sgd(frame: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    rows = vanilla(baseline(distilled(frame), ctx.preset))
    return rows[rows["optimizer"] == "sgd"] if len(rows) else rows


def _duration_gaps(g: pd.DataFrame) -> tuple[float, float] | None:
    ends = extremes(g, "epochs")
    if ends is None:
        return None
    pair = aligned(curve(ends[0]), curve(ends[1]))
    return None if pair is None else (gap(pair[0]), gap(pair[1]))


def f3_crossover(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F3 (SGD): gap = accuracy at the largest T minus the smallest; gap at the longest minus the shortest duration (> 0).

    The cross-over itself asks more: the gap is < 0 at the shortest duration and > 0 at
    the longest; both are tested as parts. Mean over batch sizes.
    """
    rows = _sgd(frame, ctx)
    gaps = {k: per_seed(rows, ("epochs",), component(_duration_gaps, k)) for k in (0, 1)}
    if gaps[0].empty:
        return _missing("SGD sweeps over T at two or more durations (notebook 02)")
    inter = (gaps[1] - gaps[0]).dropna()
    return Outcome((Part("gap(longest) − gap(shortest)", inter, ">"),
                    Part("gap at the shortest duration", gaps[0], "<"),
                    Part("gap at the longest duration", gaps[1], ">")))


def f4_batch_delays(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F4 (SGD): mean gap over durations (largest T − smallest T) at the smallest batch minus the largest batch (> 0).

    A larger batch takes fewer steps per epoch, so large T should win later: a smaller
    gap, averaged over the durations both batch sizes ran.
    """
    rows = _sgd(frame, ctx)

    def effect(g):
        ends = extremes(g, "batch_size")
        if ends is None:
            return None
        durations = sorted(set(ends[0]["epochs"]) & set(ends[1]["epochs"]))
        if not durations:
            return None
        curves = [curve(side[side["epochs"] == d]) for side in ends for d in durations]
        curves = aligned(*curves)
        if curves is None:
            return None
        n = len(durations)
        return sum(gap(c) for c in curves[:n]) / n - sum(gap(c) for c in curves[n:]) / n

    values = per_seed(rows, ("batch_size", "epochs"), effect)
    if values.empty:
        return _missing("SGD sweeps over T at two batch sizes (notebook 02)")
    return Outcome((Part("mean gap small batch − large batch", values, ">"),))


def _near_ten(c: pd.Series) -> float | None:
    """The swept T closest to 10 (within a factor 2) above the smallest T."""
    cands = [t for t in c.index if t > c.index[0] and abs(math.log2(t / 10)) <= 1]
    return min(cands, key=lambda t: abs(math.log2(t / 10))) if cands else None


def f5_rise_then_flat(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F5 (AdamW, longest duration): rise = acc(T≈10) − acc(smallest T) (> 0); then it flattens.

    Flattening: the rise per doubling of T up to T≈10 minus the slope per doubling from
    T≈10 to the largest T (> 0).
    """
    rows = vanilla(baseline(distilled(frame), ctx.preset))
    rows = rows[rows["optimizer"] == "adamw"] if len(rows) else rows

    def parts(g):
        c = curve(longest(g))
        t10 = _near_ten(c) if len(c) else None
        if t10 is None:
            return None
        rise = float(c[t10] - c.iloc[0])
        tmax = c.index[-1]
        beyond = float(c.iloc[-1] - c[t10]) / math.log2(tmax / t10) if tmax > t10 else math.nan
        return rise, rise / math.log2(t10 / c.index[0]) - beyond

    rise, flat = (per_seed(rows, ("epochs",), component(parts, k)) for k in (0, 1))
    if rise.empty:
        return _missing("AdamW sweep with T = 1 and T ≈ 10 at the longest duration (notebooks 01, 06)")
    return Outcome((Part("acc(T≈10) − acc(T=1)", rise, ">"),
                    Part("rise per doubling up to T≈10 − slope beyond", flat, ">")))


def f6_flat_profile(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F6: the baseline teacher's average sorted softmax at T = 40: top minus second < 0.01, bottom spread < 1e-4.

    Needs the teacher's logits on the training set, one tensor per seed (``logits=``).
    """
    if not ctx.logits:
        return _missing("the baseline teacher's logits (scorecard(..., logits={seed: tensor}))")
    gaps = {seed: metrics.profile_gaps(z, 40.0) for seed, z in sorted(ctx.logits.items())}
    top = pd.Series({s: g["top_gap"] for s, g in gaps.items()}, dtype=float)
    bottom = pd.Series({s: g["bottom_spread"] for s, g in gaps.items()}, dtype=float)
    return Outcome((Part("top − second at T=40", top, "<", 0.01),
                    Part("bottom-half spread at T=40", bottom, "<", 1e-4)))


def f7_real_targets(frame: pd.DataFrame, ctx: Context) -> Outcome:
    """F7: real teacher targets minus the best same-entropy substitute (LS global / per-instance, bottom-k) (> 0).

    Headline at the largest T all of them ran; second part: the mean over every shared T.
    """
    rows = baseline(distilled(frame), ctx.preset)
    rows = rows[rows["method"] == "kd"] if len(rows) else rows

    def diffs(g):
        real = curve(g[g["variant"] == "kd"])
        subs = [curve(s) for _, s in g[g["variant"] != "kd"].groupby("variant")]
        if real.empty or not subs:
            return None
        curves = aligned(real, *subs)
        if curves is None:
            return None
        d = curves[0] - pd.concat(curves[1:], axis=1).max(axis=1)
        return float(d.iloc[-1]), float(d.mean())

    at_large, overall = (per_seed(rows, ("variant",), component(diffs, k)) for k in (0, 1))
    if at_large.empty:
        return _missing("real targets and substitutes at shared temperatures (notebook 03)")
    return Outcome((Part("real − best substitute at the largest T", at_large, ">"),
                    Part("real − best substitute, mean over T", overall, ">")))
