"""The explorers' charts: altair only, drawn from frames that ``profiles`` and ``analysis`` computed."""
from __future__ import annotations

import math
from typing import Any, Sequence

import altair as alt
import pandas as pd

from kdlib.widgets.controls import label, ordered


def _runs(frame: pd.DataFrame) -> list[alt.Tooltip]:
    """Tooltip rows naming the runs behind a point (``run_ids``, ``seed_list``), where the frame has them."""
    return [alt.Tooltip(f"{c}:N", title=t) for c, t in (("run_ids", "run id"), ("seed_list", "seed")) if c in frame]


def sample_chart(frame: pd.DataFrame, r: dict[str, Any]) -> alt.Chart:
    """One sample's probabilities at T = 1 and T as grouped log bars, its true class outlined in red."""
    t = r["temperature"]
    order = ["T=1"] + ([f"T={t:g}"] if t != 1.0 else [])
    classes = frame.loc[frame["temperature"] == frame["temperature"].iloc[0], "class"].tolist()
    shown = f"top {len(classes)} of {r['classes']} classes" if len(classes) < r["classes"] else "all classes"
    truth = f", label: {r['sample_label']}" if r["sample_label"] is not None else ""
    floor = 10.0 ** math.floor(math.log10(max(frame["probability"].min(), 1e-300)))  # log bars need a base
    return alt.Chart(frame, title=alt.Title(f"sample {r['sample']} at T={t:g}",
                                            subtitle=f"{shown}, ordered by logit{truth}")).mark_bar().encode(
        x=alt.X("class:N", sort=classes, title=None,
                axis=alt.Axis(labelAngle=-45, labelLimit=90, labelOverlap=False)),
        xOffset=alt.XOffset("T:N", sort=order),
        y=alt.Y("probability:Q", scale=alt.Scale(type="log", domain=[floor, 1]), title="probability (log)"),
        y2=alt.datum(floor),
        color=alt.Color("T:N", sort=order, title="temperature",
                        scale=alt.Scale(domain=order, range=["#9e9e9e", "#3b528b"][:len(order)])),
        stroke=alt.condition("datum.is_label", alt.value("#d62728"), alt.value(None)),
        tooltip=["class", "T", alt.Tooltip("probability:Q", format=".3e")],
    ).properties(width=max(200, 22 * len(classes)), height=260)


def accuracy_by_duration(agg: pd.DataFrame, metric: str, best_t: float, best_acc: float, chosen_epochs: Any,
                         subtitle: str) -> alt.LayerChart:
    """Accuracy vs T, one line per duration, the chosen one in colour with its best T marked."""
    m = metric
    domain = [f"{label(e)} epochs" for e in ordered(agg["epochs"])]
    chosen = f"{label(chosen_epochs)} epochs"
    colors = ["#1f77b4" if d == chosen else "#c7c7c7" for d in domain]
    x = alt.X("temperature:Q", scale=alt.Scale(type="log", nice=False, padding=12), title="temperature T")
    pick = alt.selection_point(name="length_pick", fields=["duration"], bind="legend")  # click a length: the rest fade
    lines = alt.Chart(agg).mark_line(point=True).encode(
        x=x, y=alt.Y(f"{m}:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)"),
        color=alt.Color("duration:N", scale=alt.Scale(domain=domain, range=colors), sort=domain, title="length"),
        strokeWidth=alt.condition("datum.chosen", alt.value(3), alt.value(1.5)),
        opacity=alt.when(pick).then(alt.value(1.0)).otherwise(alt.value(0.15)),
        order=alt.Order("chosen:N"),
        tooltip=["duration", "temperature", alt.Tooltip(f"{m}:Q", format=".2f"), "seeds", *_runs(agg)]).add_params(pick)
    spread = agg[agg["chosen"]].assign(low=lambda d: d[m] - d[f"{m}_std"].fillna(0),
                                       high=lambda d: d[m] + d[f"{m}_std"].fillna(0))
    bars = alt.Chart(spread).mark_rule(color="#1f77b4").encode(x=x, y="low:Q", y2="high:Q")
    best = pd.DataFrame([{"temperature": best_t, m: best_acc, "text": f"best T={best_t:g}"}])
    star = alt.Chart(best).mark_point(shape="diamond", size=160, filled=True, color="#d62728").encode(
        x=x, y=f"{m}:Q")
    right = best_t >= float(agg["temperature"].max())  # keep the label inside the plot
    text = alt.Chart(best).mark_text(align="right" if right else "left", dx=-10 if right else 10, dy=-12,
                                     color="#d62728", fontWeight="bold").encode(x=x, y=f"{m}:Q", text="text")
    return alt.layer(lines, bars, star, text).properties(
        width=340, height=240, title=alt.Title("Accuracy vs temperature", subtitle=subtitle))


def waiting(title: str) -> alt.Chart:
    """A placeholder while nothing has finished: the title says what will be drawn."""
    return alt.Chart(pd.DataFrame({"text": ["waiting for the first run to finish"]})).mark_text(
        fontSize=13, color="#777").encode(text="text:N").properties(width=340, height=240, title=title)


def accuracy_by_epoch(frame: pd.DataFrame, metric: str, epochs: Any, best_t: float | None, note: str = "") -> alt.Chart:
    """Accuracy vs epoch at the chosen temperatures, the best T thick; ``note``: which test images
    the points came from (``analysis.curve_note``)."""
    m = metric
    if frame.empty:
        frame = pd.DataFrame({"epoch": [], m: [], "T": [], "best": [], "in_flight": []})
    if "in_flight" not in frame:
        frame = frame.assign(in_flight=False)
    order: Sequence[str] = [f"T={t:g}" for t in ordered(frame["temperature"])] if "temperature" in frame else []
    pick = alt.selection_point(name="t_pick", fields=["T"], bind="legend")  # click a temperature (shift: several)
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y(f"{m}:Q", scale=alt.Scale(zero=False), title="test accuracy (%)"),
        color=alt.Color("T:N", sort=order, scale=alt.Scale(scheme="viridis"), title="temperature"),
        strokeWidth=alt.condition("datum.best", alt.value(3.5), alt.value(1.5)),
        strokeDash=alt.StrokeDash("in_flight:N", title="still training", legend=None,
                                  scale=alt.Scale(domain=[False, True], range=[[1, 0], [6, 4]])),
        opacity=alt.when(pick).then(alt.value(1.0)).otherwise(alt.value(0.15)),
        tooltip=["T", "epoch", alt.Tooltip(f"{m}:Q", format=".2f"), "seeds", *_runs(frame),
                 alt.Tooltip("in_flight:N", title="in flight")],
    ).add_params(pick).properties(width=340, height=240, title=alt.Title(
        f"Accuracy vs epoch ({label(epochs)} epochs)",
        subtitle=[(f"thick: best T={best_t:g}; " if best_t is not None else "") + "dashed: still training"]
        + ([note] if note else [])))


def temperature_state(profile: alt.Chart, sample: alt.Chart, name: str, r: dict[str, Any]) -> alt.HConcatChart:
    """The temperature explorer's state as one chart: profile and sample side by side, the numbers on top."""
    subtitle = (f"entropy {r['entropy']:.3f} nats, H_all {r['h_all']:.3f}, H_-max {r['h_minus_max']:.3f}, "
                f"top gap {r['top_gap']:.2e}, bottom spread {r['bottom_spread']:.2e}")
    return alt.hconcat(profile, sample).resolve_scale(color="independent").properties(title=alt.Title(
        f"{name}: T={r['temperature']:g}, sample {r['sample']}", subtitle=subtitle, anchor="start"))
