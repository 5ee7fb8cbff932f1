"""Notebook 07's charts of the held-out evaluation: regret per strategy, and regret against the number of runs.

Charts only (altair); the numbers come from ``kdlib.advisor.verdict.evaluation``. Each
chart is saved (PNG + HTML, ``plots.save``) and returned, or None when the store holds
nothing to draw.
"""
from __future__ import annotations

from pathlib import Path

import altair as alt

from kdlib import plots


def heldout_chart(result, folder: str | Path | None = None, by: str = "setup"):
    """Mean (bar) and worst (tick) regret of each strategy held out ``by``, lowest mean first."""
    regrets = result["frames"]["regrets"]
    part = regrets[regrets["by"] == by]
    if not len(part):
        return None
    order = part.sort_values("mean regret")["strategy"].tolist()
    x = alt.X("strategy:N", sort=order, title=None)
    bars = alt.Chart(part).mark_bar(opacity=0.6).encode(
        x=x, y=alt.Y("mean regret:Q", title="regret vs the sweep's best T (pp)"),
        color=alt.condition(alt.datum.strategy == "advisor", alt.value("#d62728"), alt.value("#4c78a8")),
        tooltip=["strategy", alt.Tooltip("mean regret:Q", format=".2f"), alt.Tooltip("worst regret:Q", format=".2f"),
                 alt.Tooltip("mean test regret:Q", format=".2f"), "setups"])
    worst = alt.Chart(part).mark_tick(color="black", thickness=2, size=18).encode(x=x, y="worst regret:Q")
    chart = alt.layer(bars, worst).properties(width=420, height=240,
                                              title=f"Held out by {by}: mean (bar) and worst (tick) regret")
    if folder is not None:
        plots.save(chart, "advisor_heldout", folder)
    return chart


def runs_chart(result, folder: str | Path | None = None, title: str = "Advise, then verify: regret after k runs"):
    """Mean regret (points) against the number of runs k, one line per order of trying temperatures."""
    curve = result["frames"]["curve"]
    if not len(curve):
        return None
    chart = alt.Chart(curve).mark_line(point=True).encode(
        x=alt.X("k:O", title="runs (temperatures tried)"),
        y=alt.Y("mean regret:Q", title="mean regret of the best run kept (pp)"),
        color=alt.Color("order:N", title=None),
        tooltip=["order", "k", alt.Tooltip("mean regret:Q", format=".2f"), alt.Tooltip("worst regret:Q", format=".2f"),
                 alt.Tooltip("mean test regret:Q", format=".2f")]).properties(width=380, height=240, title=title)
    if folder is not None:
        plots.save(chart, "advisor_runs", folder)
    return chart
