"""Altair charts for the study's figures, from a tidy results frame (``tables.load_results``), mini or paper.

Plots only draw: every number comes from ``kdlib.analysis``. ``save`` writes PNG and
self-contained HTML side by side, atomically. Importing this module changes nothing global;
notebooks call ``enable_offline()``: interactive charts in a live JupyterLab, SVG rendered in
the kernel elsewhere (``kdlib.display``), nothing from a CDN either way (altair's default
renderer loads Vega from one, a blank cell offline). A renderer the user picked is kept.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import altair as alt
import pandas as pd

from kdlib import analysis, display, paths, store, tables
from kdlib.io import atomic_write_bytes


def enable_offline() -> str:
    """Charts offline: interactive widgets in a live JupyterLab, SVG elsewhere (``display.enable``)."""
    return display.enable()


def save(chart: alt.TopLevelMixin, name: str, folder: str | Path) -> list[Path]:
    """Write ``<folder>/<name>.png`` and ``.html``; return both paths."""
    folder = Path(folder)
    if not folder.is_absolute():
        folder = paths.outputs_dir() / folder
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "html"):
        path = folder / f"{name}.{ext}"
        atomic_write_bytes(path, chart_bytes(chart, ext))
        out.append(path)
    return out


def chart_bytes(chart: alt.TopLevelMixin, fmt: str, scale_factor: float = 2) -> bytes:
    """``chart`` as PNG, SVG or self-contained HTML, rendered offline (vl-convert)."""
    if fmt == "png":
        buf = io.BytesIO()
        chart.save(buf, format="png", scale_factor=scale_factor)
        return buf.getvalue()
    text = io.StringIO()
    chart.save(text, format=fmt, **({"inline": True} if fmt == "html" else {}))
    return text.getvalue().encode()


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


def accuracy_vs_temperature(frame: pd.DataFrame, *, color: str | None = None, column: str | None = None,
                            row: str | None = None, reference: float | None = None,
                            title: str = "Student accuracy vs temperature") -> alt.Chart:
    """Final-epoch test accuracy (mean over seeds, error bars when several) against T, log x."""
    by = [c for c in ("temperature", color, column, row) if c]
    agg = analysis.with_spread(analysis.aggregate(store.finished(frame), by))
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
        facet = {**({"column": alt.Column(f"{column}:N")} if column else {}),
                 **({"row": alt.Row(f"{row}:N")} if row else {})}
        chart = alt.layer(line, bars, data=agg).properties(width=220, height=180).facet(**facet)
    return chart.properties(title=title)


def method_comparison(frame: pd.DataFrame, *, title: str = "Output-matching methods vs shared fixed temperature") -> alt.Chart:
    """Paper Fig. 1: each method's accuracy beside vanilla KD at every temperature.

    Rows are ``KD T=<t>`` for vanilla KD and the method name for the others (run at
    their papers' settings); facets are teacher → student and dataset.
    """
    agg = analysis.method_rows(frame)
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


# ----------------------------------------------------------------------------- the study's figures (Figs. 2-3, 6-7, Tables 1-2)

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


def _log_t(field: str = "temperature", title: str | None = "temperature T") -> alt.X:
    return alt.X(f"{field}:Q", scale=alt.Scale(type="log", nice=False, padding=14), title=title,
                 axis=alt.Axis(values=[1, 2, 3, 4, 5, 10, 20, 40, 100]))


def training_heatmaps(frame: pd.DataFrame, *, title: str = "Accuracy by temperature and distillation duration") -> alt.FacetChart:
    """Paper Fig. 2: heatmaps of final-epoch test accuracy, temperature × duration (epochs).

    One panel per optimizer and batch size (columns) and per dataset · teacher → student
    (rows); cells show the mean over seeds (± std when several ran).
    """
    frame = store.finished(frame)
    agg = analysis.mean_std(frame, [*analysis.present(frame, analysis.SETUP_COLUMNS), *analysis.CONFIG_COLUMNS, "epochs", "temperature"])
    if agg.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    agg["T"] = agg["temperature"].map(lambda t: f"{t:g}")
    agg["setup"] = analysis.setup_labels(agg)
    agg["config"] = analysis.config_labels(agg)
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
        column=alt.Column("config:N", title=None, sort=analysis.config_order(agg))).properties(title=title)


def duration_overlay(frame: pd.DataFrame, *, title: str = "Accuracy vs temperature: longest duration (colour), "
                     "shorter ones (grey)") -> alt.FacetChart:
    """Paper Fig. 3: accuracy against T at the longest duration in colour, shorter durations in grey.

    The grey shade darkens with the duration (its share of the longest), so a cross-over
    shows as grey curves that fall with T under a coloured curve that rises. Interactive, a radio highlights one duration.
    """
    frame = store.finished(frame)
    agg = analysis.mean_std(frame, [*analysis.present(frame, analysis.SETUP_COLUMNS), *analysis.CONFIG_COLUMNS, "epochs", "temperature"])
    if agg.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    agg = analysis.with_spread(analysis.duration_shares(agg))
    x = _log_t()
    y = alt.Y("test_acc:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)")
    tooltip = ["setup", "config", "epochs", "temperature", alt.Tooltip("test_acc:Q", format=".2f"),
               alt.Tooltip("test_acc_std:Q", format=".2f"), "seeds"]
    # interactive: a radio picks a duration and highlights it in every panel, in the browser
    pick = alt.selection_point(name="duration_pick", fields=["epochs"], bind=alt.binding_radio(
        options=sorted(int(e) for e in agg["epochs"].unique()), name="highlight duration (epochs) "))
    faded = alt.when(pick).then(alt.value(1.0)).otherwise(alt.value(0.2))
    grey = alt.Chart().transform_filter(alt.datum.duration == "shorter").mark_line(point=True).encode(
        x=x, y=y, detail="epochs:O",
        color=alt.Color("share:Q", scale=alt.Scale(domain=[0, 1], range=["#e0e0e0", "#404040"]),
                        title="share of longest duration"),
        strokeWidth=alt.when(pick, empty=False).then(alt.value(3)).otherwise(alt.value(1)), opacity=faded,
        tooltip=tooltip).add_params(pick)
    colour = alt.Chart().transform_filter(alt.datum.duration == "longest").mark_line(
        point=alt.OverlayMarkDef(size=60, filled=True, color="#d62728"), color="#d62728", strokeWidth=2.5).encode(
        x=x, y=y, opacity=faded, tooltip=tooltip)
    bars = alt.Chart().transform_filter(alt.datum.duration == "longest").mark_rule(color="#d62728").encode(
        x=x, y="low:Q", y2="high:Q")
    return alt.layer(grey, colour, bars, data=agg).properties(width=220, height=170).facet(
        row=alt.Row("setup:N", title=None),
        column=alt.Column("config:N", title=None, sort=analysis.config_order(agg))).properties(title=title)


# ----------------------------------------------------------------------------- Table 1: teacher origination

def teacher_table(frame: pd.DataFrame, *, title: str = "Student accuracy by teacher origination "
                  "(red: finetuned, blue: from scratch)") -> alt.VConcatChart:
    """Paper Table 1: a heatmap of student accuracy, rows teacher × origin × duration, columns T.

    Finetuned teachers on a red scale, teachers trained from scratch on a blue one; beside
    each row the teacher's own test accuracy and its relative entropies ``H_all`` and
    ``H_-max`` on the training set at T = 1 (mean ± std over seeds). One block per
    dataset · student.
    """
    frame = analysis.teacher_rows(store.finished(frame))
    if frame.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    order_of = {t: i for i, t in enumerate(dict.fromkeys(frame["teacher"]))}
    blocks = []
    for (dataset, student), part in analysis.blocks(frame, ["dataset", "student"]):
        agg = analysis.mean_std(part, ["row", "teacher", "teacher_origin", "origin_rank", "teacher_epochs", "temperature"])
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


def _teacher_side(frame: pd.DataFrame, rows: list[str]) -> alt.LayerChart:
    stats = analysis.teacher_stats(frame)
    stats["shade"] = [v if s != analysis.TEACHER_STATS[0][1] else math.nan for v, s in zip(stats["value"], stats["stat"])]
    x = alt.X("stat:N", sort=[n for _, n in analysis.TEACHER_STATS], title="teacher", axis=alt.Axis(labelAngle=0, orient="top"))
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

def student_table(frame: pd.DataFrame, reference: pd.DataFrame | None = None, *,
                  title: str = "Student accuracy by initialization") -> alt.VConcatChart:
    """Paper Table 2: a heatmap of accuracy, rows student × initialization, columns T.

    ``reference`` holds each student's finetune-only accuracy (``analysis.finetune_reference``):
    it is shown beside the heatmap with the best KD accuracy of the row minus it (green:
    KD beats finetuning alone). One block per dataset · teacher.
    """
    frame = store.finished(frame, "distill")
    if frame.empty:
        raise ValueError("no finished distillation runs to draw: the frame holds no row with status 'done'")
    frame = analysis.init_rows(frame)
    order_of = {s: i for i, s in enumerate(dict.fromkeys(frame["student"]))}
    ref = analysis.mean_std(reference, ["dataset", "student"]) if reference is not None and len(reference) else None
    blocks = []
    for (dataset, teacher), part in analysis.blocks(frame, ["dataset", "teacher"]):
        agg = analysis.mean_std(part, ["row", "student", "student_init", "init_rank", "temperature"])
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
    merged = analysis.finetune_margin(agg, ref)
    if merged.empty:
        return None
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

    The inflection point is ``analysis.inflection_points(..., tolerance)``: the smallest T within
    ``tolerance`` points of the curve's best accuracy (a diamond and a dashed rule). One
    panel per teacher → student pair; ``color`` names the curves (default: ``case`` from
    ``analysis.dataset_traits``: dataset, granularity and pretraining corpus).
    """
    frame = store.finished(frame)
    if "case" not in frame and color == "case":
        frame = analysis.dataset_traits(frame)
    if frame.empty:
        raise ValueError("no finished runs to draw: the frame holds no row with status 'done'")
    frame = frame.assign(pair=analysis.pair_labels(frame))
    panels = []
    for pair, part in analysis.blocks(frame, "pair"):
        agg = analysis.mean_std(part, [color, "temperature"])
        agg = analysis.with_spread(agg)
        marks = analysis.inflection_points(part, [color], tolerance)
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


# ----------------------------------------------------------------------------- the advisor's regret (notebook 07)

def regret_chart(loso, title: str = "Leave-one-setup-out regret of each way to pick T"):
    """Regret per setup (points) and mean (bar) per strategy; beside it, advised vs best T."""
    from kdlib.advisor import STRATEGIES, T_MAX, T_MIN

    long = loso.melt(id_vars=["setup"], value_vars=[f"regret {s}" for s in STRATEGIES], var_name="strategy",
                     value_name="regret").dropna()
    long["strategy"] = long["strategy"].str.removeprefix("regret ")
    enc_x = alt.X("strategy:N", sort=list(STRATEGIES), title=None)
    bars = alt.Chart(long).mark_bar(opacity=0.35).encode(x=enc_x, y=alt.Y("mean(regret):Q",
                                                                          title="regret vs best T of the sweep (pp)"))
    dots = alt.Chart(long).mark_circle(size=45, opacity=0.6).encode(
        x=enc_x, y="regret:Q", color=alt.Color("strategy:N", sort=list(STRATEGIES), legend=None),
        tooltip=["setup", "strategy", alt.Tooltip("regret:Q", format=".2f")])
    left = alt.layer(bars, dots).properties(width=300, height=240, title=title)
    pts = loso.assign(best=loso["best_temperature"], advised=loso["T advisor"])
    scale = alt.Scale(type="log", domain=[0.9 * T_MIN, 1.1 * T_MAX], nice=False)
    scatter = alt.Chart(pts).mark_circle(size=60, opacity=0.6).encode(
        x=alt.X("best:Q", scale=scale, title="best T of the sweep"),
        y=alt.Y("advised:Q", scale=scale, title="advised T (nearest in sweep)"),
        color=alt.Color("optimizer:N"), tooltip=["setup", "best", "advised", alt.Tooltip("regret advisor:Q",
                                                                                         format=".2f")])
    diag = alt.Chart(pd.DataFrame({"t": [T_MIN, T_MAX]})).mark_line(strokeDash=[4, 4], color="gray").encode(
        x=alt.X("t:Q", scale=scale), y=alt.Y("t:Q", scale=scale))
    right = alt.layer(diag, scatter).properties(width=240, height=240, title="Advised vs best temperature")
    return alt.hconcat(left, right).resolve_scale(color="independent")
