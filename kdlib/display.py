"""How charts are shown: interactive in a live JupyterLab, static (SVG/PNG) everywhere else.

``interactive``: altair's ``JupyterChart`` (an anywidget) with its offline mode, Vega,
Vega-Lite and vega-embed bundled by vl-convert into the widget's JavaScript, so nothing
is fetched from the network. Tooltips, legend selections and sliders bound to Vega
parameters then run in the browser, with no kernel round trip. ``static``: the chart is
rendered in the kernel by vl-convert (SVG for notebook charts, PNG beside the explorers'
widgets), which is what papermill, nbval and exported reports keep.

Which one is picked: ``KDLIB_CHARTS`` = ``interactive``, ``static`` or ``auto`` (the
default). ``auto`` is interactive only in a kernel that a Jupyter server started for an
open notebook (it sets ``JPY_SESSION_NAME``, and is the kernel's parent process): papermill,
nbval and nbconvert start their kernels themselves, so they get static charts and executed notebooks stay small (an
interactive chart's widget state carries about 1 MB of JavaScript).
"""
from __future__ import annotations

import os
from typing import Any

import altair as alt

ENV = "KDLIB_CHARTS"
MODES = ("auto", "interactive", "static")
EMBED = {"renderer": "svg", "actions": False}  # SVG: the browser test reads the drawn marks


def _requested() -> str:
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV}={value!r}: choose one of {', '.join(MODES)}")
    return value


def _parent_is_a_jupyter_server() -> bool:
    """The kernel's parent is a Jupyter server (not papermill run from a notebook, which inherits its variables)."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            command = f.read()
    except OSError:  # no /proc: trust JPY_SESSION_NAME
        return True
    return b"jupyter" in command and b"papermill" not in command


def _in_live_kernel() -> bool:
    """An IPython kernel started by a Jupyter server for a notebook someone has open."""
    if "JPY_SESSION_NAME" not in os.environ or not _parent_is_a_jupyter_server():
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def mode() -> str:
    """``"interactive"`` or ``"static"`` (see the module docstring)."""
    requested = _requested()
    if requested == "auto":
        requested = "interactive" if _in_live_kernel() else "static"
    return requested


def interactive() -> bool:
    return mode() == "interactive"


def enable() -> str:
    """Show notebook charts in the current mode, unless the user picked a renderer; returns the renderer.

    Interactive: altair's ``jupyter`` renderer, offline (the JavaScript is bundled once per
    kernel and sent with each chart's widget). Static: ``svg``, rendered in the kernel.
    Called by the notebooks, never at import: choosing a renderer is global state.
    """
    if alt.renderers.active in ("default", "svg", "jupyter"):
        if interactive():
            alt.JupyterChart.enable_offline()
            alt.renderers.enable("jupyter", offline=True, embed_options=EMBED)
        else:
            alt.renderers.enable("svg")
    return alt.renderers.active


def chart_widget(chart: alt.TopLevelMixin | None = None, **kwargs: Any) -> alt.JupyterChart:
    """An offline ``JupyterChart`` (SVG renderer, no action menu) of ``chart``."""
    alt.JupyterChart.enable_offline()
    return alt.JupyterChart(chart, embed_options=EMBED, **kwargs)
