"""The temperature explorer as one self-contained HTML page: a real slider, no kernel, no network.

The teacher's average sorted softmax profile is computed here over a grid of T (log
spaced, the preset temperatures included); the page holds that table and a Vega
parameter ``T`` bound to a range input. Moving the slider re-filters the table in the
browser to the grid point nearest T (in log T), so the page works from ``file://``,
emailed or copied anywhere: vega, vega-lite and vega-embed are inlined (vl-convert's
bundle, about 1 MB), nothing is fetched.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Iterable

import altair as alt
import numpy as np
import pandas as pd

from kdlib import profiles
from kdlib.io import atomic_write_bytes

GRID_POINTS = 61


def t_grid(t_range: tuple[float, float], presets: Iterable[float], points: int = GRID_POINTS) -> list[float]:
    """Log-spaced temperatures over ``t_range`` (3 significant digits), plus 1 and every preset."""
    lo, hi = t_range
    grid = {float(f"{t:.3g}") for t in np.geomspace(lo, hi, points)} | {1.0} | {float(t) for t in presets}
    return sorted(grid)


def page_frame(logits, grid: list[float], top: int | None = 30) -> pd.DataFrame:
    """The profile at every T of ``grid``, each row with the log-T interval where the slider selects it."""
    frame = profiles.profile_frame(logits, grid, top=top)
    logs = [math.log(t) for t in grid]
    edges = [-math.inf] + [(a + b) / 2 for a, b in zip(logs, logs[1:])] + [math.inf]
    # JSON has no infinity: the outer edges are far beyond any slider value instead
    bounds = {t: (max(edges[i], -1e9), min(edges[i + 1], 1e9)) for i, t in enumerate(grid)}
    frame["lo_edge"] = [bounds[t][0] for t in frame["temperature"]]
    frame["hi_edge"] = [bounds[t][1] for t in frame["temperature"]]
    return frame


def temperature_page(logits, *, name: str = "teacher", presets: Iterable[float] = (1, 2, 4, 10, 40),
                     t_range: tuple[float, float] = (0.5, 100.0), temperature: float = 1.0,
                     top: int | None = 30) -> alt.TopLevelMixin:
    """The chart of the page: T = 1 for reference, the profile at the slider's T, tooltips, the numbers at T."""
    grid = t_grid(t_range, presets)
    frame = page_frame(logits, grid, top)
    t = alt.param(name="T", value=float(temperature),
                  bind=alt.binding_range(min=t_range[0], max=t_range[1], step=0.1, name="temperature T "))
    chosen = "datum.lo_edge <= log(T) && log(T) < datum.hi_edge"
    base = alt.Chart(frame).encode(
        x=alt.X("rank:Q", title="class rank (sorted by probability)", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("probability:Q", title="average probability", scale=alt.Scale(type="log")),
        tooltip=[alt.Tooltip("temperature:Q", title="T"), alt.Tooltip("rank:Q"),
                 alt.Tooltip("probability:Q", format=".4g"), alt.Tooltip("h_all:Q", title="H_all", format=".4f")])
    reference = base.transform_filter("datum.temperature == 1").mark_line(color="#bbbbbb", point=alt.OverlayMarkDef(color="#bbbbbb"))
    at_t = base.transform_filter(chosen).mark_line(color="#1f77b4", point=alt.OverlayMarkDef(color="#1f77b4"), strokeWidth=2.5)
    label = alt.Chart(frame).transform_filter(chosen).transform_filter("datum.rank == 1").mark_text(
        align="right", baseline="top", dx=-4, dy=4, fontSize=13).encode(
        x=alt.value(560), y=alt.value(0),
        text=alt.Text("label:N")).transform_calculate(
        label="'T = ' + format(datum.temperature, '.3g') + '   H_all = ' + format(datum.h_all, '.4f')"
              " + '   H_-max = ' + format(datum.h_minus_max, '.4f')")
    return (reference + at_t + label).add_params(t).properties(
        width=560, height=320, title=f"{name}: average sorted softmax at T (grey: T = 1)")


def save_page(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write ``chart`` as one offline HTML file (SVG renderer, libraries inlined), atomically."""
    path = Path(path)
    text = io.StringIO()
    chart.save(text, format="html", inline=True, embed_options={"renderer": "svg", "actions": False})
    atomic_write_bytes(path, text.getvalue().encode())
    return path
