"""Altair charts for the study's figures; every function takes a tidy pandas frame.

Charts are built from the results frame (``store.load_results``) so the same figure comes
out of any store, mini or paper. ``save`` writes PNG (for papers and headless runs) and
HTML (interactive, self-contained) side by side.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import altair as alt
import pandas as pd
import torch

from kdlib import metrics, paths


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
    agg = _mean_std(frame[frame["status"] == "done"] if "status" in frame else frame, by)
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
    frame = frame[frame["status"] == "done"] if "status" in frame else frame
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
