"""How charts are shown: interactive only in a live JupyterLab kernel, static (SVG/PNG) for papermill and tests."""
from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from kdlib import display, plots
from kdlib.widgets import render


@pytest.fixture
def renderer():
    """Leave altair's renderer as it was."""
    before = alt.renderers.active
    yield
    alt.renderers.enable(before)


def chart() -> alt.Chart:
    return alt.Chart(pd.DataFrame({"T": [1, 4], "acc": [70.0, 72.5]})).mark_line().encode(x="T:Q", y="acc:Q")


def test_auto_is_static_outside_a_kernel_a_jupyter_server_started(monkeypatch):
    monkeypatch.delenv(display.ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert display.mode() == "static"
    monkeypatch.setenv("JPY_SESSION_NAME", "/tmp/x.ipynb")  # but no IPython kernel in this process
    assert display.mode() == "static"
    monkeypatch.setenv(display.ENV, "interactive")
    assert display.mode() == "interactive"


def test_a_bad_mode_names_the_choices(monkeypatch):
    monkeypatch.setenv(display.ENV, "fancy")
    with pytest.raises(ValueError, match="auto, interactive, static"):
        display.mode()


def test_enable_picks_svg_when_static_and_the_offline_jupyter_renderer_when_interactive(monkeypatch, renderer):
    monkeypatch.setenv(display.ENV, "static")
    alt.renderers.enable("default")
    assert plots.enable_offline() == "svg"
    monkeypatch.setenv(display.ENV, "interactive")
    assert plots.enable_offline() == "jupyter"
    bundle = chart()._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "esm.sh" not in alt.JupyterChart._esm and len(alt.JupyterChart._esm) > 500_000  # bundled, no CDN
    alt.renderers.enable("html")  # a renderer the user picked is kept
    assert plots.enable_offline() == "html"


def test_a_chart_box_draws_svg_when_static_and_a_jupyter_chart_when_interactive(monkeypatch):
    monkeypatch.setenv(display.ENV, "static")
    box = render.ChartBox("kdlib-x")
    assert box.value == ""
    box.prepare(chart())()
    assert box.value.startswith("<svg") and box.jupyter_chart is None
    monkeypatch.setenv(display.ENV, "interactive")
    live = render.ChartBox("kdlib-y")
    live.prepare(chart())()
    assert live.jupyter_chart is not None and live.children == (live.jupyter_chart,)
    assert live.jupyter_chart.spec["mark"]["type"] == "line"
    assert list(live.jupyter_chart.spec["datasets"].values()) == [[{"T": 1, "acc": 70.0}, {"T": 4, "acc": 72.5}]]
    assert live.jupyter_chart.embed_options == {"renderer": "svg", "actions": False}
