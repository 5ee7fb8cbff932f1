"""Chart slots of the explorers (interactive or SVG), PNG for headless runs, and the display logic they share.

A ``ChartBox`` holds one chart. In a live JupyterLab (``kdlib.display.mode()`` is
``interactive``) it is an offline ``alt.JupyterChart``: tooltips, legend selections and
Vega parameters run in the browser, and a kernel-side change sends the new spec (a few kB;
the ~0.9 MB of JavaScript went once, with the widget). Otherwise the chart is rendered to
SVG *in the kernel* by vl-convert and shown in ``ipywidgets.HTML``: swapping an SVG is one
DOM update, so a chart never blanks. Headless (papermill, nbval) no control ever moves: the
display bundle carries a PNG of the current state, and ``save_static`` writes PNG + HTML;
neither raises.
"""
from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any, Callable

import altair as alt
import ipywidgets as W

from kdlib import display, plots

_ID = re.compile(r'\bid="([^"]+)"')
_counter = itertools.count()


def tidy(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Thin out crowded axis labels (100 class ranks) instead of printing them on top of each other."""
    return chart.configure_axis(labelOverlap=True)


def svg(chart: alt.TopLevelMixin) -> str:
    """Inline SVG of ``chart`` (vl-convert, offline), its ids made unique within the page."""
    text = plots.chart_bytes(tidy(chart), "svg").decode()
    ids = set(_ID.findall(text))
    if ids:  # clip paths and gradients: two inline SVGs with "clip1" would share one
        prefix = f"kd{next(_counter)}-"
        for name in ids:
            text = text.replace(f'id="{name}"', f'id="{prefix}{name}"').replace(f"#{name})", f"#{prefix}{name})")
            text = text.replace(f'href="#{name}"', f'href="#{prefix}{name}"')
    return text


def png(chart: alt.TopLevelMixin) -> bytes:
    return plots.chart_bytes(chart, "png", scale_factor=1)


class ChartBox(W.VBox):
    """One chart slot, with a CSS class the browser test finds; interactive or SVG, picked when first drawn."""

    def __init__(self, css: str):
        super().__init__(layout=W.Layout(margin="0 12px 0 0"))
        self.add_class(css)
        self.jupyter_chart: alt.JupyterChart | None = None
        self._html: W.HTML | None = None

    @property
    def value(self) -> str:
        """What is drawn: the SVG text (static), the Vega-Lite spec as JSON (interactive), "" before."""
        if self.jupyter_chart is not None:
            return json.dumps(self.jupyter_chart.spec)
        return self._html.value if self._html is not None else ""

    def prepare(self, chart: alt.TopLevelMixin) -> Callable[[], None]:
        """Do the slow part now (rendering SVG); the returned call swaps the chart in."""
        if self.jupyter_chart is None and self._html is None:
            if display.interactive():
                self.jupyter_chart = display.chart_widget(None)
                self.children = (self.jupyter_chart,)
            else:
                self._html = W.HTML()
                self.children = (self._html,)
        if self.jupyter_chart is not None:
            spec = tidy(chart)
            return lambda: setattr(self.jupyter_chart, "chart", spec)
        text = svg(chart)
        return lambda: setattr(self._html, "value", text)


def show(*pairs: tuple[ChartBox, alt.TopLevelMixin], then: Callable[[], None] | None = None) -> None:
    """Draw every chart first, then swap them in together (with ``then``): a state never shows half."""
    swaps = [box.prepare(chart) for box, chart in pairs]
    if then is not None:
        then()
    for swap in swaps:
        swap()


class Explorer:
    """Shared display logic: the live widget, plus a static PNG for frontends without widgets."""

    _widget: W.Widget
    _live = False

    @property
    def widget(self) -> W.Widget:
        """The ipywidgets tree. Charts are drawn from the first time it is asked for (or the
        explorer is displayed) on: until then no kernel time goes to SVGs nobody sees."""
        if not self._live:
            self._live = True
            self._draw()
        return self._widget

    def _draw(self, **parts: Any) -> None:
        raise NotImplementedError

    def _static_chart(self) -> alt.TopLevelMixin:
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    def static_chart(self) -> alt.TopLevelMixin:
        """The current state as one altair chart (what ``save_static`` writes)."""
        return tidy(self._static_chart())

    def save_static(self, name: str, folder: str | Path) -> list[Path]:
        """Write ``<folder>/<name>.png`` and ``.html`` of the current state (see ``plots.save``)."""
        return plots.save(self.static_chart(), name, folder)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        text = self._describe()
        try:
            bundle.update(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        except Exception as e:  # noqa: BLE001 - displaying must never stop a (headless) notebook
            text += f"\n(live widget unavailable: {type(e).__name__}: {e})"
        try:
            bundle["image/png"] = base64.b64encode(png(self.static_chart())).decode("ascii")
        except Exception as e:  # noqa: BLE001
            text += f"\n(static chart unavailable: {type(e).__name__}: {e})"
        bundle["text/plain"] = text
        return bundle
