"""Charts as inline SVG (live widgets) and PNG (headless), and the display logic every explorer shares.

Charts are altair specs rendered to SVG *in the kernel* by vl-convert and shown in
``ipywidgets.HTML``: no internet and nothing beyond ipywidgets needed (altair's default
renderer loads Vega from a CDN; ``alt.JupyterChart`` needs anywidget and inlines ~0.9 MB of
JavaScript per chart offline). Swapping an SVG is one DOM update, so a chart never blanks.
Headless (papermill, nbval) no control ever moves: the display bundle carries a PNG of the
current state, and ``save_static`` writes PNG + HTML; neither raises.
"""
from __future__ import annotations

import base64
import itertools
import re
from pathlib import Path
from typing import Any

import altair as alt
import ipywidgets as W

from kdlib import plots

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


def html_box(css: str) -> W.HTML:
    """An HTML widget that holds one SVG chart, with a CSS class the browser test finds."""
    box = W.HTML(layout=W.Layout(margin="0 12px 0 0"))
    box.add_class(css)
    return box


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
