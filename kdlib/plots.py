"""Altair charts for the study's figures; every function takes a tidy pandas frame.

Charts are built from the results frame (``store.load_results``) so the same figure comes
out of any store, mini or paper. ``save`` writes PNG (for papers and headless runs) and
HTML (interactive, self-contained) side by side.

Charts shown in a notebook render as SVG in the kernel (vl-convert): altair's default
renderer loads Vega from a CDN, which leaves a blank cell offline and in executed copies
viewed without a network. A renderer the user picked is kept; ``alt.renderers.enable(...)``
switches back (the saved HTML files stay interactive either way).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import altair as alt
import pandas as pd
import torch

from kdlib import metrics, paths, store

if alt.renderers.active == "default":
    alt.renderers.enable("svg")


def save(chart: alt.TopLevelMixin, name: str, folder: str | Path) -> list[Path]:
    """Write ``<folder>/<name>.png`` and ``.html``; return both paths."""
    folder = Path(folder)
    if not folder.is_absolute():
        folder = paths.outputs_dir() / folder
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "html"):
        path = folder / f"{name}.{ext}"
        tmp = path.with_name(f".{path.name}.tmp.{ext}")
        chart.save(str(tmp), **({"scale_factor": 2} if ext == "png" else {"inline": True}))
        tmp.replace(path)
        out.append(path)
    return out


def profile_frame(logits: torch.Tensor, temperatures: Iterable[float], top: int | None = None) -> pd.DataFrame:
    """Average sorted softmax profile per temperature, tidy (paper Fig. 4), with relative entropies."""
    rows = []
    for t in temperatures:
        prof = metrics.sorted_profile(logits, t)
        h_all = metrics.relative_entropy(logits, t)
        h_rest = metrics.relative_entropy_without_max(logits, t) if logits.shape[1] > 2 else float("nan")
        for rank, p in enumerate(prof.tolist()[:top], start=1):
            rows.append({"temperature": float(t), "rank": rank, "probability": p, "h_all": h_all,
                         "h_minus_max": h_rest})
    return pd.DataFrame(rows)


def softmax_profile(frame: pd.DataFrame, title: str = "Average sorted teacher softmax") -> alt.Chart:
    """Probability by class rank, log y, one line per temperature (paper Fig. 4)."""
    frame = frame.assign(T=frame["temperature"].map(lambda t: f"T={t:g}"))
    order = [f"T={t:g}" for t in sorted(frame["temperature"].unique())]
    return alt.Chart(frame, title=title).mark_line(point=True).encode(
        x=alt.X("rank:O", title="class rank (sorted by probability)"),
        y=alt.Y("probability:Q", scale=alt.Scale(type="log"), title="average probability (log)"),
        color=alt.Color("T:N", sort=order, scale=alt.Scale(scheme="viridis"), title="temperature"),
        tooltip=["T", "rank", alt.Tooltip("probability:Q", format=".2e"),
                 alt.Tooltip("h_all:Q", format=".3f"), alt.Tooltip("h_minus_max:Q", format=".3f")],
    ).properties(width=360, height=260)


def _mean_std(frame: pd.DataFrame, by: list[str], value: str = "test_acc") -> pd.DataFrame:
    g = frame.groupby(by, dropna=False)[value]
    out = g.agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"mean": value, "std": f"{value}_std", "count": "seeds"})


def accuracy_vs_temperature(frame: pd.DataFrame, *, color: str | None = None, column: str | None = None,
                            row: str | None = None, reference: float | None = None,
                            title: str = "Student accuracy vs temperature") -> alt.Chart:
    """Final-epoch test accuracy (mean over seeds, error bars when several) against T, log x."""
    by = [c for c in ("temperature", color, column, row) if c]
    agg = _mean_std(store.finished(frame), by)
    agg["low"] = agg["test_acc"] - agg["test_acc_std"].fillna(0)
    agg["high"] = agg["test_acc"] + agg["test_acc_std"].fillna(0)
    base = alt.Chart(agg)
    enc = dict(x=alt.X("temperature:Q", scale=alt.Scale(type="log"), title="temperature T"))
    color_enc = {"color": alt.Color(f"{color}:N")} if color else {}
    line = base.mark_line(point=True).encode(
        y=alt.Y("test_acc:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)"),
        tooltip=[*by, alt.Tooltip("test_acc:Q", format=".2f"), alt.Tooltip("test_acc_std:Q", format=".2f"),
                 "seeds"], **enc, **color_enc)
    bars = base.mark_rule().encode(y="low:Q", y2="high:Q", **enc, **color_enc)
    layers = [line, bars]
    if reference is not None:
        layers.append(alt.Chart(pd.DataFrame({"y": [reference]})).mark_rule(strokeDash=[4, 4], color="gray")
                      .encode(y="y:Q"))
    chart = alt.layer(*layers).properties(width=300, height=220)
    if column or row:
        facet = {}
        if column:
            facet["column"] = alt.Column(f"{column}:N")
        if row:
            facet["row"] = alt.Row(f"{row}:N")
        chart = alt.layer(line, bars, data=agg).properties(width=220, height=180).facet(**facet)
    return chart.properties(title=title)


def method_comparison(frame: pd.DataFrame, *, title: str = "Output-matching methods vs shared fixed temperature") -> alt.Chart:
    """Paper Fig. 1: each method's accuracy beside vanilla KD at every temperature.

    Rows are ``KD T=<t>`` for vanilla KD and the method name for the others (run at
    their papers' settings); facets are teacher → student and dataset.
    """
    frame = store.finished(frame)
    frame = frame.assign(
        label=[f"KD T={t:g}" if m == "kd" else (v if t != t else f"{v} T={t:g}")
               for m, v, t in zip(frame["method"], frame["variant"], frame["temperature"])],
        family=["vanilla KD" if m == "kd" else "other method" for m in frame["method"]],
        pair=[f"{a} → {b}" for a, b in zip(frame["teacher"], frame["student"])],
    )
    agg = _mean_std(frame, ["label", "family", "pair", "dataset", "method", "temperature"])
    kd = agg[agg["method"] == "kd"].sort_values("temperature")["label"].drop_duplicates().tolist()
    others = sorted(agg.loc[agg["method"] != "kd", "label"].unique())
    chart = alt.Chart(agg).mark_point(filled=True, size=70).encode(
        x=alt.X("test_acc:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)"),
        y=alt.Y("label:N", sort=kd + others, title=None),
        color=alt.Color("family:N", scale=alt.Scale(domain=["vanilla KD", "other method"],
                                                    range=["#1f77b4", "#d62728"])),
        tooltip=["label", "pair", "dataset", alt.Tooltip("test_acc:Q", format=".2f"),
                 alt.Tooltip("test_acc_std:Q", format=".2f"), "seeds"],
    ).properties(width=260, height=18 * (len(kd) + len(others)))
    return chart.facet(column=alt.Column("pair:N", title=None), row=alt.Row("dataset:N", title=None)).properties(
        title=title)


# ============================================================================= the study notebooks (02, 04, 05, 06)
#
# Helpers first (durations, mean ± std, best T, cross-over, inflection
# point), then one chart per figure or table. Every function takes a results frame
# (``store.load_results`` / ``runs.ensure``) or a slice of it, so the same figure comes out
# of any store, mini or paper.


INIT_ORDER = ("random", "target", "pretrained", "finetuned")  # rows of Table 2, as the paper orders them
ORIGIN_ORDER = ("finetuned", "scratch")
SETUP_COLUMNS = ("dataset", "teacher", "student")
CONFIG_COLUMNS = ("optimizer", "batch_size")


# ----------------------------------------------------------------------------- durations

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def scaled_epochs(base: int, fractions: Sequence[float]) -> list[int]:
    """Durations as fractions of a baseline: ``round(f * base)`` (halves up), at least 1, ascending, unique.

    The paper varies distillation (Sect. 4.2) and teacher finetuning (Sect. 4.3) durations
    as fractions of the baseline; e.g. ``scaled_epochs(16, [1/16, 1/8, 1/4, 1/2, 1])`` is
    ``[1, 2, 4, 8, 16]``.
    """
    if not _is_int(base) or base < 1:
        raise ValueError(f"baseline epochs={base!r} must be an integer >= 1")
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (list, tuple)) or not fractions \
            or not all(_is_number(f) and f > 0 for f in fractions):
        raise ValueError(f"fractions={fractions!r} must be a non-empty list of numbers > 0")
    return sorted({max(1, int(math.floor(f * base + 0.5))) for f in fractions})


# ----------------------------------------------------------------------------- tables: mean ± std over seeds


def mean_std_label(mean: float, std: float, seeds: int, digits: int = 1) -> str:
    """``"71.2"`` for one seed, ``"71.2 ± 0.4"`` for several, ``"–"`` when nothing finished."""
    if mean is None or mean != mean:
        return "–"
    if seeds is None or seeds <= 1 or std != std:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarize(frame: pd.DataFrame, by: Sequence[str], value: str = "test_acc", digits: int = 1) -> pd.DataFrame:
    """Mean, std and number of seeds of ``value`` per group of finished runs, with a ``label`` column.

    The paper reports final-epoch test accuracy as the mean of three seeds; ``label`` is
    ``"mean ± std"`` when more than one seed ran and the mean alone otherwise.
    """
    frame = store.finished(frame)
    missing = [c for c in [*by, value] if c not in frame.columns]
    if missing:
        raise ValueError(f"the results frame has no column(s) {missing}; columns: {sorted(frame.columns)}")
    out = _mean_std(frame, list(by), value)
    out["label"] = [mean_std_label(m, s, n, digits) for m, s, n in
                    zip(out[value], out[f"{value}_std"], out["seeds"])]
    return out


def mean_std_table(frame: pd.DataFrame, index: Sequence[str] | str, columns: str = "temperature",
                   value: str = "test_acc", digits: int = 1) -> pd.DataFrame:
    """A pivot of ``"mean ± std"`` strings (std only when several seeds ran): rows ``index``, columns ``columns``."""
    index = [index] if isinstance(index, str) else list(index)
    agg = summarize(frame, [*index, columns], value, digits)
    table = agg.pivot(index=index, columns=columns, values="label")
    cols = sorted(table.columns, key=lambda c: (isinstance(c, str), c))
    table = table[cols]
    if columns == "temperature":
        table.columns = [f"T={c:g}" for c in cols]
    return table.fillna("–")


def best_temperature(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The temperature with the highest mean accuracy per group (ties: the smaller T), with that accuracy."""
    agg = summarize(frame, [*by, "temperature"]).sort_values([*by, "temperature"])
    if agg.empty:
        return pd.DataFrame(columns=[*by, "best_T", "best_acc"])
    idx = agg.groupby(list(by), dropna=False)["test_acc"].idxmax()
    best = agg.loc[idx, [*by, "temperature", "test_acc"]]
    return best.rename(columns={"temperature": "best_T", "test_acc": "best_acc"}).reset_index(drop=True)


def _present(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c in frame.columns]


def crossover(frame: pd.DataFrame, by: Sequence[str] | None = None, duration: str = "epochs") -> pd.DataFrame:
    """The "cross over" of paper Sect. 4.2: the duration from which larger temperatures win.

    Per configuration (``by``; default dataset, teacher, student, optimizer, batch size)
    the best T (highest mean accuracy over seeds) is found at every duration. The
    cross-over is the shortest duration from which on the best T stays *above* the best T
    of the shortest duration, at that duration and every longer one. NaN means it never
    moves up (small T best throughout, or the largest T already best at the start).
    ``large_T_wins_from`` is the same test for "the largest T beats the smallest T".
    """
    by = list(by) if by is not None else _present(frame, [*SETUP_COLUMNS, *CONFIG_COLUMNS])
    agg = summarize(frame, [*by, duration, "temperature"])
    rows = []
    for key, g in agg.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        durations = sorted(g[duration].unique())
        best, gap = [], []
        for d in durations:
            at = g[g[duration] == d].sort_values("temperature")
            best.append(float(at.loc[at["test_acc"].idxmax(), "temperature"]))
            gap.append(float(at["test_acc"].iloc[-1] - at["test_acc"].iloc[0]))
        cross = next((d for k, d in enumerate(durations) if k > 0 and all(b > best[0] for b in best[k:])), math.nan)
        wins = next((d for k, d in enumerate(durations) if all(x > 0 for x in gap[k:])), math.nan)
        rows.append({**dict(zip(by, key)), "durations": " → ".join(f"{d:g}" for d in durations),
                     "best_T_path": " → ".join(f"{b:g}" for b in best), "best_T_shortest": best[0],
                     "best_T_longest": best[-1], f"crossover_{duration}": cross,
                     "large_minus_small_T": " / ".join(f"{x:+.1f}" for x in gap), "large_T_wins_from": wins})
    return pd.DataFrame(rows)


def inflection_points(frame: pd.DataFrame, by: Sequence[str] | None = None, tolerance: float = 1.0) -> pd.DataFrame:
    """Where accuracy stops rising with T (paper Sect. 4.5, Fig. 6), per curve.

    ``inflection_T`` is the smallest temperature whose mean accuracy is within
    ``tolerance`` points of the curve's maximum: beyond it, larger T buys less than
    ``tolerance``. ``slope`` is the least-squares slope of accuracy against log2 T
    (points per doubling of T); ``trend`` is ``rising`` when the inflection point is more
    than ``tolerance`` above the smallest T, ``falling`` when the largest T is more than
    ``tolerance`` below the smallest T, and ``flat`` otherwise.
    """
    if not (_is_number(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance={tolerance!r} must be a number >= 0 (accuracy points)")
    by = list(by) if by is not None else _present(frame, ["dataset", "pretrain_corpus", "teacher", "student"])
    agg = summarize(frame, [*by, "temperature"])
    rows = []
    for key, g in agg.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.sort_values("temperature")
        t, acc = g["temperature"].to_numpy(float), g["test_acc"].to_numpy(float)
        top = acc.max()
        k = int((acc >= top - tolerance).argmax())
        x = [math.log2(v) for v in t]
        if len(t) > 1:
            mx, my = sum(x) / len(x), acc.mean()
            slope = sum((a - mx) * (b - my) for a, b in zip(x, acc)) / sum((a - mx) ** 2 for a in x)
        else:
            slope = math.nan
        trend = ("rising" if acc[k] - acc[0] > tolerance else
                 "falling" if acc[-1] < acc[0] - tolerance else "flat")
        rows.append({**dict(zip(by, key)), "inflection_T": t[k], "acc_at_inflection": acc[k],
                     "best_T": t[int(acc.argmax())], "best_acc": top, "smallest_T": t[0], "acc_at_smallest_T": acc[0],
                     "largest_T": t[-1], "acc_at_largest_T": acc[-1], "slope": slope, "trend": trend})
    return pd.DataFrame(rows)


def sensitivity(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """How much T matters per group (mean accuracy over seeds, in points).

    ``best_T``/``best_acc``; ``spread``: best minus worst T; ``gain``: best T minus the
    smallest T of the sweep (``acc_at_smallest_T``), i.e. what raising T from about 1 buys.
    """
    by = list(by)
    agg = summarize(frame, [*by, "temperature"]).sort_values([*by, "temperature"])
    if agg.empty:
        return pd.DataFrame(columns=[*by, "best_T", "best_acc", "worst_acc", "spread", "smallest_T",
                                     "acc_at_smallest_T", "gain"])
    rows = []
    for key, g in agg.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        best = g.loc[g["test_acc"].idxmax()]
        rows.append({**dict(zip(by, key)), "best_T": best["temperature"], "best_acc": best["test_acc"],
                     "worst_acc": g["test_acc"].min(), "spread": best["test_acc"] - g["test_acc"].min(),
                     "smallest_T": g["temperature"].iloc[0], "acc_at_smallest_T": g["test_acc"].iloc[0],
                     "gain": best["test_acc"] - g["test_acc"].iloc[0]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- labels

def _setup(frame: pd.DataFrame, columns: Sequence[str] = SETUP_COLUMNS) -> list[str]:
    cols = _present(frame, columns)
    if {"teacher", "student"} <= set(cols):
        pair = [f"{a} → {b}" for a, b in zip(frame["teacher"], frame["student"])]
        rest = [c for c in cols if c not in ("teacher", "student")]
        return [" · ".join([*(str(frame[c].iloc[i]) for c in rest), pair[i]]) for i in range(len(frame))]
    return [" · ".join(str(frame[c].iloc[i]) for c in cols) for i in range(len(frame))]


def _config(frame: pd.DataFrame) -> list[str]:
    return [f"{o} · batch {b}" for o, b in zip(frame["optimizer"], frame["batch_size"])]


def _corpus_name(corpus: Any) -> str:
    if not isinstance(corpus, str):
        return "no pretraining"
    if corpus == "hub":
        return "ImageNet-1K"
    if corpus.startswith("hub:"):
        return corpus[4:]
    if corpus.startswith("file:"):
        return Path(corpus[5:]).name
    return corpus


def dataset_traits(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the granularity axis of Sect. 4.5: ``granularity`` (fine / coarse), ``overlap`` and a ``case`` label.

    ``case`` reads ``"<dataset> (<granularity>) ← <pretraining corpus>"``.

    ``overlap_share`` is the share of target classes the teacher's general pretraining
    separated (``kdlib.advisor.known_overlap``: the mini world's hierarchy, or the
    paper's statement for ImageNet-1K weights); ``overlap`` says ``overlap`` from 0.5 up.
    """
    from kdlib import advisor

    out = frame.copy()
    preset = out["preset"] if "preset" in out else pd.Series([None] * len(out), index=out.index)
    corpus = out["pretrain_corpus"] if "pretrain_corpus" in out else pd.Series([None] * len(out), index=out.index)
    fine = [advisor.granularity(d, p) for d, p in zip(out["dataset"], preset)]
    out["granularity"] = ["fine" if f else "coarse" if f is False else "unknown" for f in fine]
    share = [advisor.known_overlap(d, c, p) for d, c, p in zip(out["dataset"], corpus, preset)]
    out["overlap_share"] = [math.nan if s is None else float(s) for s in share]
    out["overlap"] = ["unknown" if s is None else "overlap" if s >= 0.5 else "no overlap" for s in share]
    out["case"] = [f"{d} ({g}) ← {_corpus_name(c)}" for d, g, c in zip(out["dataset"], out["granularity"], corpus)]
    return out


# ----------------------------------------------------------------------------- Figs. 2 and 3: training configuration

def _t_labels(values: Sequence[float]) -> list[str]:
    return [f"{t:g}" for t in sorted(set(values))]


def _ink(values: pd.Series, dark_high: bool, cut: float = 0.6) -> list[str]:
    """Text colour readable on a heatmap cell: white on the dark end of the scale, black elsewhere."""
    lo, hi = values.min(), values.max()
    span = (hi - lo) or 1.0
    rel = (values - lo) / span
    return ["white" if (r > cut if dark_high else r < 1 - cut) else "black" for r in rel]


def _cell_width(agg: pd.DataFrame) -> int:
    """Heatmap columns wide enough for "mean ± std" when several seeds ran."""
    return 66 if (agg["seeds"] > 1).any() else 44


def _text(x: alt.X, y: alt.Y, text: str = "label:N") -> dict[str, Any]:
    return dict(x=x, y=y, text=text,
                color=alt.when(alt.datum.ink == "white").then(alt.value("white")).otherwise(alt.value("black")))


def _config_order(agg: pd.DataFrame) -> list[str]:
    from kdlib import specs

    pairs = sorted(set(zip(agg["optimizer"], agg["batch_size"])),
                   key=lambda p: (specs.OPTIMIZERS.index(p[0]) if p[0] in specs.OPTIMIZERS else 9, p[0], p[1]))
    return [f"{o} · batch {b}" for o, b in pairs]


def _log_t(field: str = "temperature", title: str | None = "temperature T") -> alt.X:
    return alt.X(f"{field}:Q", scale=alt.Scale(type="log", nice=False, padding=14), title=title,
                 axis=alt.Axis(values=[1, 2, 3, 4, 5, 10, 20, 40, 100]))


def training_heatmaps(frame: pd.DataFrame, *, title: str = "Accuracy by temperature and distillation duration") -> alt.FacetChart:
    """Paper Fig. 2: heatmaps of final-epoch test accuracy, temperature × duration (epochs).

    One panel per optimizer and batch size (columns) and per dataset · teacher → student
    (rows); cells show the mean over seeds (± std when several ran).
    """
    frame = store.finished(frame)
    agg = summarize(frame, [*_present(frame, SETUP_COLUMNS), *CONFIG_COLUMNS, "epochs", "temperature"])
    if agg.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    agg["T"] = agg["temperature"].map(lambda t: f"{t:g}")
    agg["setup"] = _setup(agg)
    agg["config"] = _config(agg)
    agg["ink"] = _ink(agg["test_acc"], dark_high=False)
    x = alt.X("T:O", sort=_t_labels(agg["temperature"]), title="temperature T", axis=alt.Axis(labelAngle=0))
    y = alt.Y("epochs:O", sort="descending", title="distillation epochs")
    rect = alt.Chart().mark_rect().encode(
        x=x, y=y,
        color=alt.Color("test_acc:Q", scale=alt.Scale(scheme="viridis"), title="accuracy (%)"),
        tooltip=["setup", "config", "epochs", "T", alt.Tooltip("test_acc:Q", format=".2f"),
                 alt.Tooltip("test_acc_std:Q", format=".2f"), "seeds"])
    text = alt.Chart().mark_text(fontSize=10).encode(**_text(x, y))
    width = _cell_width(agg) * agg["T"].nunique()
    return alt.layer(rect, text, data=agg).properties(width=width, height=24 * agg["epochs"].nunique()).facet(
        row=alt.Row("setup:N", title=None),
        column=alt.Column("config:N", title=None, sort=_config_order(agg))).properties(title=title)


def duration_overlay(frame: pd.DataFrame, *, title: str = "Accuracy vs temperature: longest duration (colour), "
                     "shorter ones (grey)") -> alt.FacetChart:
    """Paper Fig. 3: accuracy against T at the longest duration in colour, shorter durations in grey.

    The grey shade darkens with the duration (its share of the longest), so a cross-over
    shows as grey curves that fall with T under a coloured curve that rises.
    """
    frame = store.finished(frame)
    agg = summarize(frame, [*_present(frame, SETUP_COLUMNS), *CONFIG_COLUMNS, "epochs", "temperature"])
    if agg.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    agg["setup"] = _setup(agg)
    agg["config"] = _config(agg)
    longest = agg.groupby(["setup", "config"])["epochs"].transform("max")
    agg["share"] = agg["epochs"] / longest
    agg["duration"] = ["longest" if s == 1 else "shorter" for s in agg["share"]]
    agg["low"] = agg["test_acc"] - agg["test_acc_std"].fillna(0)
    agg["high"] = agg["test_acc"] + agg["test_acc_std"].fillna(0)
    x = _log_t()
    y = alt.Y("test_acc:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)")
    tooltip = ["setup", "config", "epochs", "temperature", alt.Tooltip("test_acc:Q", format=".2f"),
               alt.Tooltip("test_acc_std:Q", format=".2f"), "seeds"]
    grey = alt.Chart().transform_filter(alt.datum.duration == "shorter").mark_line(point=True, strokeWidth=1).encode(
        x=x, y=y, detail="epochs:O",
        color=alt.Color("share:Q", scale=alt.Scale(domain=[0, 1], range=["#e0e0e0", "#404040"]),
                        title="share of longest duration"),
        tooltip=tooltip)
    colour = alt.Chart().transform_filter(alt.datum.duration == "longest").mark_line(
        point=alt.OverlayMarkDef(size=60, filled=True, color="#d62728"), color="#d62728", strokeWidth=2.5).encode(
        x=x, y=y, tooltip=tooltip)
    bars = alt.Chart().transform_filter(alt.datum.duration == "longest").mark_rule(color="#d62728").encode(
        x=x, y="low:Q", y2="high:Q")
    return alt.layer(grey, colour, bars, data=agg).properties(width=220, height=170).facet(
        row=alt.Row("setup:N", title=None),
        column=alt.Column("config:N", title=None, sort=_config_order(agg))).properties(title=title)


# ----------------------------------------------------------------------------- Table 1: teacher origination

def _teacher_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(origin_rank=[ORIGIN_ORDER.index(o) if o in ORIGIN_ORDER else 9 for o in frame["teacher_origin"]])
    frame["row"] = [f"{t} · {o} · {e:g} ep" for t, o, e in
                    zip(frame["teacher"], frame["teacher_origin"], frame["teacher_epochs"])]
    return frame


def teacher_table(frame: pd.DataFrame, *, title: str = "Student accuracy by teacher origination "
                  "(red: finetuned, blue: from scratch)") -> alt.VConcatChart:
    """Paper Table 1: a heatmap of student accuracy, rows teacher × origin × duration, columns T.

    Finetuned teachers on a red scale, teachers trained from scratch on a blue one; beside
    each row the teacher's own test accuracy and its relative entropies ``H_all`` and
    ``H_-max`` on the training set at T = 1 (mean ± std over seeds). One block per
    dataset · student.
    """
    frame = _teacher_rows(store.finished(frame))
    if frame.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    order_of = {t: i for i, t in enumerate(dict.fromkeys(frame["teacher"]))}
    blocks = []
    for (dataset, student), part in frame.groupby(["dataset", "student"], sort=False):
        agg = summarize(part, ["row", "teacher", "teacher_origin", "origin_rank", "teacher_epochs", "temperature"])
        agg["T"] = agg["temperature"].map(lambda t: f"{t:g}")
        agg["ink"] = "black"
        for origin in agg["teacher_origin"].unique():  # each origin has its own colour scale
            mask = agg["teacher_origin"] == origin
            agg.loc[mask, "ink"] = _ink(agg.loc[mask, "test_acc"], dark_high=True)
        rows = (agg.assign(k=agg["teacher"].map(order_of))
                .sort_values(["k", "origin_rank", "teacher_epochs"])["row"].drop_duplicates().tolist())
        x = alt.X("T:O", sort=_t_labels(agg["temperature"]), title="temperature T", axis=alt.Axis(labelAngle=0))
        y = alt.Y("row:N", sort=rows, title=None)
        tooltip = ["row", "T", alt.Tooltip("test_acc:Q", format=".2f"), alt.Tooltip("test_acc_std:Q", format=".2f"),
                   "seeds"]
        layers = []
        for origin, scheme in (("finetuned", "reds"), ("scratch", "blues")):
            if (agg["teacher_origin"] == origin).any():
                layers.append(alt.Chart(agg).transform_filter(alt.datum.teacher_origin == origin).mark_rect().encode(
                    x=x, y=y, tooltip=tooltip,
                    color=alt.Color("test_acc:Q", scale=alt.Scale(scheme=scheme),
                                    title=f"accuracy, {origin} (%)")))
        layers.append(alt.Chart(agg).mark_text(fontSize=10).encode(**_text(x, y)))
        heat = alt.layer(*layers).resolve_scale(color="independent").properties(
            width=_cell_width(agg) * agg["T"].nunique(), height=24 * len(rows))
        side = _teacher_side(part, rows)
        blocks.append(alt.hconcat(heat, side, spacing=6).resolve_scale(color="independent").properties(
            title=f"{dataset} · student {student}"))
    return alt.vconcat(*blocks).properties(title=title)


TEACHER_STATS = (("teacher_acc", "teacher acc (%)"), ("teacher_h_all", "H_all"), ("teacher_h_minus_max", "H_-max"))


def teacher_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Each teacher row's accuracy, ``H_all`` and ``H_-max`` (mean ± std over its seeds' teachers), long format."""
    frame = _teacher_rows(store.finished(frame))
    one = frame.drop_duplicates("teacher_id")  # each teacher once, however many students it taught
    parts = []
    for column, name in TEACHER_STATS:
        if column not in one:
            continue
        agg = summarize(one.dropna(subset=[column]), ["row", "teacher", "teacher_origin", "teacher_epochs"], column,
                        digits=1 if column == "teacher_acc" else 3)
        parts.append(agg.rename(columns={column: "value", f"{column}_std": "value_std"}).assign(stat=name))
    if not parts:
        return pd.DataFrame(columns=["row", "stat", "value", "value_std", "label"])
    return pd.concat(parts, ignore_index=True)


def _teacher_side(frame: pd.DataFrame, rows: list[str]) -> alt.LayerChart:
    stats = teacher_stats(frame)
    stats["shade"] = [v if s != TEACHER_STATS[0][1] else math.nan for v, s in zip(stats["value"], stats["stat"])]
    x = alt.X("stat:N", sort=[n for _, n in TEACHER_STATS], title="teacher", axis=alt.Axis(labelAngle=0, orient="top"))
    y = alt.Y("row:N", sort=rows, title=None, axis=None)
    rect = alt.Chart(stats).transform_filter("isValid(datum.shade)").mark_rect().encode(
        x=x, y=y, color=alt.Color("shade:Q", scale=alt.Scale(domain=[0, 1], scheme="greys"), title="relative entropy"),
        tooltip=["row", "stat", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("value_std:Q", format=".3f"),
                 "seeds"])
    stats["ink"] = ["white" if v > 0.55 else "black" for v in stats["shade"].fillna(0)]
    text = alt.Chart(stats).mark_text(fontSize=10).encode(**_text(x, y))
    wide = (stats["seeds"] > 1).any() if len(stats) else False
    return alt.layer(rect, text).properties(width=(96 if wide else 64) * max(1, stats["stat"].nunique()),
                                            height=24 * len(rows))


# ----------------------------------------------------------------------------- Table 2: student initialization

def finetune_reference(frame: pd.DataFrame) -> pd.DataFrame:
    """The finetune-only accuracy of each student (supervised rows, origin ``finetuned``) as dataset, student, test_acc, seed."""
    rows = store.finished(frame)
    if "kind" in rows:
        rows = rows[rows["kind"] == "supervised"]
    if "origin" in rows:
        rows = rows[rows["origin"] == "finetuned"]
    if "arch" in rows:
        rows = rows.assign(student=rows["arch"])
    return rows[_present(rows, ["dataset", "student", "test_acc", "seed", "epochs"])].reset_index(drop=True)


def student_table(frame: pd.DataFrame, reference: pd.DataFrame | None = None, *,
                  title: str = "Student accuracy by initialization") -> alt.VConcatChart:
    """Paper Table 2: a heatmap of accuracy, rows student × initialization, columns T.

    ``reference`` holds each student's finetune-only accuracy (``finetune_reference``):
    it is shown beside the heatmap with the best KD accuracy of the row minus it (green:
    KD beats finetuning alone). One block per dataset · teacher.
    """
    frame = store.finished(frame, "distill")
    if frame.empty:
        raise ValueError("no finished distillation runs to draw: the frame holds no row with status 'done'")
    frame = frame.assign(init_rank=[INIT_ORDER.index(i) if i in INIT_ORDER else 9 for i in frame["student_init"]],
                         row=[f"{s} · {i}" for s, i in zip(frame["student"], frame["student_init"])])
    order_of = {s: i for i, s in enumerate(dict.fromkeys(frame["student"]))}
    ref = summarize(reference, ["dataset", "student"]) if reference is not None and len(reference) else None
    blocks = []
    for (dataset, teacher), part in frame.groupby(["dataset", "teacher"], sort=False):
        agg = summarize(part, ["row", "student", "student_init", "init_rank", "temperature"])
        agg["T"] = agg["temperature"].map(lambda t: f"{t:g}")
        agg["ink"] = _ink(agg["test_acc"], dark_high=False)
        rows = (agg.assign(k=agg["student"].map(order_of)).sort_values(["k", "init_rank"])["row"]
                .drop_duplicates().tolist())
        x = alt.X("T:O", sort=_t_labels(agg["temperature"]), title="temperature T", axis=alt.Axis(labelAngle=0))
        y = alt.Y("row:N", sort=rows, title=None)
        rect = alt.Chart(agg).mark_rect().encode(
            x=x, y=y, color=alt.Color("test_acc:Q", scale=alt.Scale(scheme="viridis"), title="accuracy (%)"),
            tooltip=["row", "T", alt.Tooltip("test_acc:Q", format=".2f"), alt.Tooltip("test_acc_std:Q", format=".2f"),
                     "seeds"])
        text = alt.Chart(agg).mark_text(fontSize=10).encode(**_text(x, y))
        heat = alt.layer(rect, text).properties(width=_cell_width(agg) * agg["T"].nunique(), height=24 * len(rows))
        charts = [heat]
        if ref is not None:
            side = _reference_side(agg, ref[ref["dataset"] == dataset], rows)
            if side is not None:
                charts.append(side)
        blocks.append(alt.hconcat(*charts, spacing=6).resolve_scale(color="independent").properties(
            title=f"{dataset} · teacher {teacher}"))
    return alt.vconcat(*blocks).properties(title=title)


def _reference_side(agg: pd.DataFrame, ref: pd.DataFrame, rows: list[str]) -> alt.LayerChart | None:
    best = agg.groupby(["row", "student"], as_index=False)["test_acc"].max()
    merged = best.merge(ref[["student", "test_acc", "label"]].rename(columns={"test_acc": "ft"}), on="student")
    if merged.empty:
        return None
    merged["margin"] = merged["test_acc"] - merged["ft"]
    big = merged["margin"].abs().max() or 1.0
    side = pd.concat([
        merged.assign(stat="finetune only (%)", text=merged["label"], sign=0.0, ink="black"),
        merged.assign(stat="best KD − FT", text=[f"{m:+.1f}" for m in merged["margin"]], sign=merged["margin"],
                      ink=["white" if abs(m) > 0.6 * big else "black" for m in merged["margin"]]),
    ], ignore_index=True)
    x = alt.X("stat:N", sort=["finetune only (%)", "best KD − FT"], title="reference",
              axis=alt.Axis(labelAngle=0, orient="top"))
    y = alt.Y("row:N", sort=rows, title=None, axis=None)
    rect = alt.Chart(side).transform_filter(alt.datum.stat == "best KD − FT").mark_rect().encode(
        x=x, y=y, color=alt.Color("sign:Q", scale=alt.Scale(scheme="redyellowgreen", domainMid=0), legend=None),
        tooltip=["row", alt.Tooltip("ft:Q", format=".2f"), alt.Tooltip("test_acc:Q", format=".2f", title="best KD"),
                 alt.Tooltip("margin:Q", format="+.2f")])
    text = alt.Chart(side).mark_text(fontSize=10).encode(**_text(x, y, "text:N"))
    return alt.layer(rect, text).properties(width=220 if (ref["seeds"] > 1).any() else 190, height=24 * len(rows))


# ----------------------------------------------------------------------------- Figs. 6 and 7: dataset granularity

def granularity_curves(frame: pd.DataFrame, *, tolerance: float = 1.0, color: str = "case",
                       title: str = "Accuracy vs temperature by dataset (diamonds: inflection points)") -> alt.TopLevelMixin:
    """Paper Figs. 6 and 7: accuracy against T per dataset, each curve's inflection point marked.

    The inflection point is ``inflection_points(..., tolerance)``: the smallest T within
    ``tolerance`` points of the curve's best accuracy (a diamond and a dashed rule). One
    panel per teacher → student pair; ``color`` names the curves (default: ``case`` from
    ``dataset_traits``: dataset, granularity and pretraining corpus).
    """
    frame = store.finished(frame)
    if "case" not in frame and color == "case":
        frame = dataset_traits(frame)
    if frame.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    frame = frame.assign(pair=[f"{a} → {b}" for a, b in zip(frame["teacher"], frame["student"])])
    panels = []
    for pair, part in frame.groupby("pair", sort=False):
        agg = summarize(part, [color, "temperature"])
        agg["low"] = agg["test_acc"] - agg["test_acc_std"].fillna(0)
        agg["high"] = agg["test_acc"] + agg["test_acc_std"].fillna(0)
        marks = inflection_points(part, [color], tolerance)
        x = _log_t()
        c = alt.Color(f"{color}:N", title="dataset (granularity) ← pretraining" if color == "case" else color,
                      legend=alt.Legend(labelLimit=420, titleLimit=420, orient="bottom", direction="vertical"))
        line = alt.Chart(agg).mark_line(point=True).encode(
            x=x, y=alt.Y("test_acc:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)"), color=c,
            tooltip=[color, "temperature", alt.Tooltip("test_acc:Q", format=".2f"),
                     alt.Tooltip("test_acc_std:Q", format=".2f"), "seeds"])
        bars = alt.Chart(agg).mark_rule().encode(x=x, y="low:Q", y2="high:Q", color=c)
        rule = alt.Chart(marks).mark_rule(strokeDash=[4, 3]).encode(x=_log_t("inflection_T"), color=c)
        point = alt.Chart(marks).mark_point(shape="diamond", size=180, filled=True, stroke="black",
                                            strokeWidth=1).encode(
            x=_log_t("inflection_T"), y="acc_at_inflection:Q", color=c,
            tooltip=[color, alt.Tooltip("inflection_T:Q", title="inflection T"),
                     alt.Tooltip("acc_at_inflection:Q", format=".2f"), alt.Tooltip("slope:Q", format="+.2f"),
                     "trend"])
        panels.append(alt.layer(line, bars, rule, point).properties(width=320, height=230, title=pair))
    if len(panels) == 1:
        return panels[0].properties(title=alt.TitleParams(title, subtitle=panels[0].title))
    return alt.hconcat(*panels).properties(title=title)
