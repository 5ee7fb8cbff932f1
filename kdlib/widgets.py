"""Interactive explorers for JupyterLab: what temperature does to a teacher, and what the sweeps say.

``temperature_explorer`` shows how a teacher's softmax flattens as T grows: the average sorted
softmax profile (paper Fig. 4) at the chosen T next to T = 1, one sample's distribution, and the
numbers the paper quotes (entropy, relative entropies H_all / H_-max, the argmax-vs-next gap and
the spread of the bottom classes). ``results_explorer`` browses a results frame
(``store.load_results``): accuracy vs T per distillation length (Fig. 3 style) and, from the
per-epoch history, accuracy vs epoch at chosen temperatures.

Rendering. Charts are altair specs rendered to SVG *in the kernel* by vl-convert and shown in
``ipywidgets.HTML``. This works with no internet and nothing beyond ipywidgets: altair's default
renderer loads Vega from a CDN (an error offline), JupyterLab 4 has no Vega-Lite 6 renderer, and
``alt.JupyterChart`` needs the extra ``anywidget`` package and inlines ~0.9 MB of JavaScript per
chart when offline. Swapping an SVG is one DOM update, so the chart never blanks between frames.
The price: no hover tooltips, and each update costs the kernel about 0.1 s of rendering.

Headless (papermill, nbval), no frontend ever moves a control. Each explorer's display bundle
therefore carries a PNG of its current state beside the widget, and ``save_static(name, folder)``
writes PNG + HTML through ``plots.save``; neither raises (a failed render is reported as text).
"""
from __future__ import annotations

import base64
import io
import itertools
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import altair as alt
import ipywidgets as W
import numpy as np
import pandas as pd
import torch

from kdlib import metrics, plots, store

STUDY_TEMPERATURES = (1, 2, 4, 10, 40)  # the mini preset's sweep (STUDY.md)
T_RANGE = (0.5, 100.0)

# Columns of ``store.describe`` (distillation runs) that can tell runs apart, in the order the
# controls appear. ``epochs`` comes last: it picks the highlighted duration, not a filter of the
# accuracy-vs-T chart. Not here on purpose: ids, ``temperature`` (the x axis), ``seed``
# (averaged over), ``method_args`` (shown through ``variant``) and every result column.
SPEC_COLUMNS = ("preset", "dataset", "teacher", "teacher_origin", "teacher_epochs", "pretrain_corpus",
                "student", "student_init", "method", "variant", "optimizer", "lr", "weight_decay",
                "batch_size", "epochs")


# ----------------------------------------------------------------------------- rendering

_ID = re.compile(r'\bid="([^"]+)"')
_counter = itertools.count()


def _svg(chart: alt.TopLevelMixin) -> str:
    """Inline SVG of ``chart`` (vl-convert, offline), its ids made unique within the page."""
    buf = io.StringIO()
    _tidy(chart).save(buf, format="svg")
    svg = buf.getvalue()
    ids = set(_ID.findall(svg))
    if ids:  # clip paths and gradients: two inline SVGs with "clip1" would share one
        prefix = f"kd{next(_counter)}-"
        for name in ids:
            svg = svg.replace(f'id="{name}"', f'id="{prefix}{name}"').replace(f"#{name})", f"#{prefix}{name})")
            svg = svg.replace(f'href="#{name}"', f'href="#{prefix}{name}"')
    return svg


def _tidy(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Thin out crowded axis labels (100 class ranks) instead of printing them on top of each other."""
    return chart.configure_axis(labelOverlap=True)


def _png(chart: alt.TopLevelMixin) -> bytes:
    buf = io.BytesIO()
    chart.save(buf, format="png", scale_factor=1)
    return buf.getvalue()


class _Explorer:
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

    def _draw(self, **parts: bool) -> None:
        raise NotImplementedError

    def _static_chart(self) -> alt.TopLevelMixin:
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    def static_chart(self) -> alt.TopLevelMixin:
        """The current state as one altair chart (what ``save_static`` writes)."""
        return _tidy(self._static_chart())

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
            bundle["image/png"] = base64.b64encode(_png(self.static_chart())).decode("ascii")
        except Exception as e:  # noqa: BLE001
            text += f"\n(static chart unavailable: {type(e).__name__}: {e})"
        bundle["text/plain"] = text
        return bundle


def _html_chart(css: str) -> W.HTML:
    box = W.HTML(layout=W.Layout(margin="0 12px 0 0"))
    box.add_class(css)
    return box


# ----------------------------------------------------------------------------- temperature explorer

def _as_logits(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what}: expected a logits tensor [N, C], got {type(x).__name__}")
    x = x.detach().cpu()
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < 2:
        raise ValueError(f"{what}: expected logits of shape [N > 0, C >= 2], got {tuple(x.shape)}; "
                         "pass the teacher's outputs for a set of samples, e.g. kdlib.train.predict(model, dataset)[0]")
    if not x.is_floating_point():
        raise ValueError(f"{what}: logits must be floating point, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: logits contain NaN or inf; check the model's outputs")
    return x


class _Teacher:
    """One teacher's logits on one set, computed once (lazily for models)."""

    def __init__(self, name: str, source: Any, data: Any, class_names: Sequence[str] | None):
        self.name, self._source, self._data, self._class_names = name, source, data, class_names
        self._logits: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.class_names: list[str] = []
        if not isinstance(source, torch.nn.Module):
            self._set(source)

    def _set(self, source: Any) -> None:
        labels = None
        if isinstance(source, (tuple, list)):
            if len(source) != 2:
                raise ValueError(f"teacher {self.name!r}: expected logits or (logits, labels), got a "
                                 f"{type(source).__name__} of length {len(source)}")
            source, labels = source
        logits = _as_logits(source, f"teacher {self.name!r}")
        if labels is not None:
            labels = torch.as_tensor(labels).detach().cpu().long()
            if labels.shape != logits.shape[:1]:
                raise ValueError(f"teacher {self.name!r}: labels shape {tuple(labels.shape)} does not match "
                                 f"logits {tuple(logits.shape)}")
        names = self._class_names
        if names is None and self._data is not None:
            names = getattr(self._data, "classes", None)
        names = [str(c) for c in names] if names is not None else [f"class {i}" for i in range(logits.shape[1])]
        if len(names) != logits.shape[1]:
            raise ValueError(f"teacher {self.name!r}: {len(names)} class names for {logits.shape[1]} classes; "
                             "pass class_names with one name per logit column")
        if len(set(names)) != len(names):
            raise ValueError(f"teacher {self.name!r}: class names must be unique, got {names}")
        self._logits, self.labels, self.class_names = logits, labels, names

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:  # a model: run it once over the data, then keep the logits
            from kdlib import train

            logits, labels = train.predict(self._source, self._data)
            self._set((logits, labels))
        return self._logits


def _teachers(teacher_or_logits: Any, data: Any, class_names: Any) -> dict[str, _Teacher]:
    def names_for(name: str):
        if isinstance(class_names, Mapping):
            return class_names.get(name)
        return class_names

    if isinstance(teacher_or_logits, Mapping):
        if not teacher_or_logits:
            raise ValueError("no teachers given: pass a logits tensor, a model with data=, or a non-empty "
                             "dict name -> logits")
        items = list(teacher_or_logits.items())
    else:
        items = [("teacher", teacher_or_logits)]
    if isinstance(class_names, Mapping) and set(class_names) - {str(k) for k, _ in items}:
        raise ValueError(f"class_names names unknown teachers {sorted(set(class_names) - {str(k) for k, _ in items})}; "
                         f"teachers are {[str(k) for k, _ in items]}")
    out = {}
    for name, source in items:
        name = str(name)
        is_model = isinstance(source, torch.nn.Module)
        if is_model and data is None:
            raise ValueError(f"teacher {name!r} is a model: pass data= (a dataset yielding (uint8 image, label)) "
                             "so its logits can be computed once")
        if not is_model and not isinstance(source, (torch.Tensor, np.ndarray, tuple, list)):
            raise ValueError(f"teacher {name!r}: expected a logits tensor [N, C], (logits, labels), or a torch "
                             f"model with data=; got {type(source).__name__}")
        out[name] = _Teacher(name, source, data, names_for(name))
    if data is not None and not any(isinstance(s, torch.nn.Module) for _, s in items):
        raise ValueError("data= is only used to run a model; logits were given, so drop data= "
                         "(or pass (logits, labels) to mark the true classes)")
    return out


def _check_t(value: Any, what: str = "temperature") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{what}={value!r} must be a finite number > 0 (the study uses 1 to 40)")
    return float(value)


class TemperatureExplorer(_Explorer):
    """Temperature slider over a teacher's logits; see ``temperature_explorer``."""

    def __init__(self, teachers: dict[str, _Teacher], *, temperatures: Sequence[float], t_range: tuple[float, float],
                 temperature: float, sample: int, max_classes: int):
        self._teachers = teachers
        self._name = next(iter(teachers))
        self._max_classes = max_classes
        self._cache: OrderedDict[tuple[str, float], tuple[pd.DataFrame, dict[str, float]]] = OrderedDict()
        self._busy = False
        self._exact = float(temperature)
        self.chart_data = pd.DataFrame()
        self.sample_data = pd.DataFrame()
        self.readouts: dict[str, Any] = {}
        lo, hi = t_range
        self._range = (lo, hi)

        self._picker = W.Dropdown(options=list(teachers), value=self._name, description="teacher")
        self._picker.add_class("kdlib-teacher")
        self._slider = W.FloatLogSlider(value=temperature, base=10, min=math.log10(lo), max=math.log10(hi), step=0.01,
                                        description="T", continuous_update=False, readout_format=".3",
                                        layout=W.Layout(width="420px"))
        self._slider.add_class("kdlib-slider")
        self._presets = W.ToggleButtons(options=[(f"T={t:g}", float(t)) for t in temperatures], value=None,
                                        style={"button_width": "56px"})
        self._presets.add_class("kdlib-presets")
        self._sample = W.BoundedIntText(value=0, min=0, max=0, description="sample", layout=W.Layout(width="170px"))
        self._sample.add_class("kdlib-sample-index")
        self._readout_box = W.HTML()
        self._readout_box.add_class("kdlib-readouts")
        self._profile_box = _html_chart("kdlib-profile")
        self._sample_box = _html_chart("kdlib-sample")

        self.controls: dict[str, W.Widget] = {
            "teacher": self._picker, "temperature": self._slider, "presets": self._presets, "sample": self._sample,
            "readouts": self._readout_box, "profile_chart": self._profile_box, "sample_chart": self._sample_box}
        self._picker.observe(self._on_teacher, "value")
        self._slider.observe(self._on_slider, "value")
        self._presets.observe(self._on_preset, "value")
        self._sample.observe(self._on_sample, "value")

        self._busy = True
        try:
            self._set_bounds()
            self._sample.value = sample
        finally:
            self._busy = False
        self._sync_presets()
        self._refresh()
        if len(teachers) == 1:
            self._picker.layout.display = "none"
        self._widget = W.VBox([
            self._picker,
            W.HBox([self._slider, self._presets], layout=W.Layout(flex_flow="row wrap", align_items="center")),
            W.HBox([self._sample, self._readout_box], layout=W.Layout(align_items="flex-start")),
            W.HBox([self._profile_box, self._sample_box], layout=W.Layout(flex_flow="row wrap")),
        ])
        self._widget.add_class("kdlib-temperature-explorer")

    # -- test and scripting hooks ------------------------------------------------------
    @property
    def temperature(self) -> float:
        return float(self._slider.value)

    @temperature.setter
    def temperature(self, value: float) -> None:
        t = _check_t(value)
        lo, hi = self._range
        if not lo <= t <= hi:
            raise ValueError(f"temperature={value!r} is outside the slider's range [{lo:g}, {hi:g}]; "
                             f"build the explorer with t_range=(low, high) to reach it")
        self._exact = t  # set from code: keep every digit
        self._slider.value = t  # the observer refreshes

    @property
    def sample(self) -> int:
        return int(self._sample.value)

    @sample.setter
    def sample(self, index: int) -> None:
        n = self._current.logits.shape[0]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
            raise ValueError(f"sample={index!r}: choose an index in [0, {n - 1}] (this teacher has {n} samples)")
        self._sample.value = int(index)

    @property
    def teacher(self) -> str:
        return self._name

    @teacher.setter
    def teacher(self, name: str) -> None:
        if name not in self._teachers:
            raise ValueError(f"teacher={name!r} is not one of {list(self._teachers)}")
        self._picker.value = name

    # -- callbacks ---------------------------------------------------------------------
    @property
    def _current(self) -> _Teacher:
        return self._teachers[self._name]

    def _set_bounds(self) -> None:
        n = self._current.logits.shape[0]
        self._sample.max = n - 1
        if self._sample.value > n - 1:
            self._sample.value = n - 1

    def _on_teacher(self, change) -> None:
        self._name = change["new"]
        self._busy = True
        try:
            self._set_bounds()
        finally:
            self._busy = False
        self._refresh()

    def _sync_presets(self) -> None:
        t = float(self._slider.value)
        match = [v for _, v in self._presets.options if math.isclose(v, t, rel_tol=1e-9)]
        self._busy = True
        try:
            self._presets.value = match[0] if match else None
        finally:
            self._busy = False

    def _on_slider(self, change) -> None:
        t = float(change["new"])
        clean = float(f"{t:.3g}")  # a dragged log slider lands on 38.8124...; show and use 38.8
        lo, hi = self._range
        if clean != t and t != self._exact and lo <= clean <= hi:
            self._slider.value = clean  # comes back here with the clean value...
            if self._slider.value == clean:
                return
            # ...unless the slider clamped it to its end (10 ** log10(low) can differ in the last bit)
        self._sync_presets()
        self._refresh()

    def _on_preset(self, change) -> None:
        if self._busy or change["new"] is None:
            return
        self._slider.value = change["new"]

    def _on_sample(self, change) -> None:
        if not self._busy:
            self._refresh(profile=False)

    # -- what is shown -----------------------------------------------------------------
    def _at(self, t: float) -> tuple[pd.DataFrame, dict[str, float]]:
        """Profile frame and set-level numbers of the current teacher at T, cached."""
        key = (self._name, t)
        if key not in self._cache:
            logits = self._current.logits
            frame = plots.profile_frame(logits, [t])
            p = torch.softmax(logits.double() / t, dim=1)
            numbers = {"entropy": metrics.entropy(p).mean().item(),
                       "h_all": float(frame["h_all"].iloc[0]), "h_minus_max": float(frame["h_minus_max"].iloc[0]),
                       **metrics.profile_gaps(logits, t)}
            self._cache[key] = (frame, numbers)
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def _sample_frame(self, t: float) -> pd.DataFrame:
        teacher, i = self._current, self.sample
        z = teacher.logits[i].double()
        order = torch.argsort(z, descending=True)[: self._max_classes].tolist()  # the same order at every T
        rows = []
        for temp in sorted({1.0, t}):
            p = torch.softmax(z / temp, dim=0)
            for rank, c in enumerate(order, start=1):
                rows.append({"temperature": temp, "T": f"T={temp:g}", "rank": rank, "class": teacher.class_names[c],
                             "class_index": c, "probability": p[c].item(),
                             "is_label": teacher.labels is not None and int(teacher.labels[i]) == c})
        return pd.DataFrame(rows)

    def _refresh(self, profile: bool = True) -> None:
        t = self.temperature
        frame_t, numbers = self._at(t)
        frame_1, numbers_1 = self._at(1.0)
        teacher, i = self._current, self.sample
        self.chart_data = frame_1 if t == 1.0 else pd.concat([frame_1, frame_t], ignore_index=True)
        self.sample_data = self._sample_frame(t)
        p = torch.softmax(teacher.logits[i].double() / t, dim=0)
        c = teacher.logits.shape[1]
        self.readouts = {
            "teacher": self._name, "temperature": t, "sample": i, "classes": c, "samples": teacher.logits.shape[0],
            **numbers, "max_entropy": math.log(c),
            "sample_entropy": metrics.entropy(p).item(), "sample_top_probability": p.max().item(),
            "sample_prediction": teacher.class_names[int(p.argmax())],
            "sample_label": None if teacher.labels is None else teacher.class_names[int(teacher.labels[i])],
        }
        html = self._readout_html(numbers_1)
        if self._live:
            self._draw(profile=profile, readouts=html)
        else:
            self._readout_box.value = html

    def _draw(self, profile: bool = True, readouts: str | None = None) -> None:
        # render everything first, then swap it in together: readouts and charts change at once
        profile_svg = _svg(self._profile_chart()) if profile else None
        sample_svg = _svg(self._sample_chart())
        if readouts is not None:
            self._readout_box.value = readouts
        if profile_svg is not None:
            self._profile_box.value = profile_svg
        self._sample_box.value = sample_svg

    def _readout_html(self, at_one: dict[str, float]) -> str:
        r, t = self.readouts, self.readouts["temperature"]
        rows = [("entropy (nats, mean)", "entropy", ".4f"), ("H_all (relative entropy)", "h_all", ".4f"),
                ("H_-max (without argmax)", "h_minus_max", ".4f"),
                ("top-1 minus top-2 (avg profile)", "top_gap", ".2e"), ("bottom-half spread", "bottom_spread", ".2e")]
        body = "".join(f"<tr><td>{label}</td><td data-key='{key}-1'>{at_one[key]:{fmt}}</td>"
                       f"<td data-key='{key}'><b>{r[key]:{fmt}}</b></td></tr>" for label, key, fmt in rows)
        label = f", label <b>{r['sample_label']}</b>" if r["sample_label"] is not None else ""
        return (f"<table class='kdlib-readout-table' style='border-collapse:collapse;margin-left:16px;"
                f"line-height:1.25'>"
                f"<tr><th></th><th>T=1</th><th>T=<span data-key='temperature' data-value='{t!r}'>{t:g}</span></th>"
                f"</tr>{body}</table><div style='margin-left:16px;line-height:1.3;max-width:560px'>"
                f"max entropy log C = {r['max_entropy']:.3f} ({r['classes']} classes, {r['samples']} samples). "
                f"Sample {r['sample']}: predicts <b>{r['sample_prediction']}</b>{label}, "
                f"top probability {r['sample_top_probability']:.3g}, entropy {r['sample_entropy']:.3f} nats</div>")

    def _profile_chart(self) -> alt.Chart:
        t = self.readouts["temperature"]
        return plots.softmax_profile(self.chart_data, title=f"{self._name}: average sorted softmax, T=1 vs T={t:g}")

    def _sample_chart(self) -> alt.Chart:
        r, frame = self.readouts, self.sample_data
        t = r["temperature"]
        order = ["T=1"] + ([f"T={t:g}"] if t != 1.0 else [])
        classes = frame.loc[frame["temperature"] == frame["temperature"].iloc[0], "class"].tolist()
        shown = f"top {len(classes)} of {r['classes']} classes" if len(classes) < r["classes"] else "all classes"
        label = f", label: {r['sample_label']}" if r["sample_label"] is not None else ""
        floor = 10.0 ** math.floor(math.log10(max(frame["probability"].min(), 1e-300)))  # log bars need a base
        return alt.Chart(frame, title=alt.Title(f"sample {r['sample']} at T={t:g}",
                                                subtitle=f"{shown}, ordered by logit{label}")).mark_bar().encode(
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

    def _static_chart(self) -> alt.TopLevelMixin:
        r = self.readouts
        lines = [f"{self._name}: T={r['temperature']:g}, sample {r['sample']}",
                 f"entropy {r['entropy']:.3f} nats, H_all {r['h_all']:.3f}, H_-max {r['h_minus_max']:.3f}, "
                 f"top gap {r['top_gap']:.2e}, bottom spread {r['bottom_spread']:.2e}"]
        return alt.hconcat(self._profile_chart(), self._sample_chart()).resolve_scale(color="independent").properties(
            title=alt.Title(lines[0], subtitle=lines[1], anchor="start"))

    def _describe(self) -> str:
        r = self.readouts
        return (f"TemperatureExplorer(teacher={self._name!r}, T={r['temperature']:g}, sample={r['sample']}, "
                f"H_all={r['h_all']:.4f}, H_-max={r['h_minus_max']:.4f}); open in JupyterLab to move the slider")


def temperature_explorer(teacher_or_logits: Any, data: Any = None, *,
                         class_names: Sequence[str] | Mapping | None = None,
                         temperatures: Iterable[float] = STUDY_TEMPERATURES, temperature: float = 1.0, sample: int = 0,
                         t_range: tuple[float, float] = T_RANGE, max_classes: int = 20) -> TemperatureExplorer:
    """How temperature flattens a teacher's softmax (paper Fig. 4), live.

    ``teacher_or_logits``: logits [N, C] (tensor or array), ``(logits, labels)``, a dict
    name -> either of those (a teacher picker appears), or a torch model (or dict of models)
    with ``data`` (a dataset of ``(uint8 image CxHxW, label)``): its logits are computed once
    with ``train.predict`` when first shown and kept, so moving the slider never reruns it.
    ``class_names`` (list, or dict teacher -> list) default to ``data.classes`` or ``class i``.
    ``temperatures`` are the preset buttons; the slider is log-scaled over ``t_range``.
    The sample chart shows the ``max_classes`` classes with the largest logits.

    Returns an explorer: display it; ``.temperature``, ``.sample``, ``.teacher`` are settable;
    ``.readouts``, ``.chart_data`` (the profile frame plotted), ``.sample_data``, ``.widget``,
    ``.controls`` (its ipywidgets by role: temperature, presets, sample, teacher, ...);
    ``.save_static(name, folder)`` for headless runs.
    """
    lo, hi = (_check_t(v, "t_range bound") for v in t_range)
    if lo >= hi:
        raise ValueError(f"t_range={t_range!r} must be (low, high) with low < high, e.g. (0.5, 100)")
    presets = sorted({_check_t(t, "preset temperature") for t in temperatures})
    if not presets:
        raise ValueError("temperatures= must hold at least one preset temperature, e.g. (1, 2, 4, 10, 40)")
    lo, hi = min(lo, presets[0]), max(hi, presets[-1])
    t = _check_t(temperature)
    if not lo <= t <= hi:
        raise ValueError(f"temperature={temperature!r} is outside t_range [{lo:g}, {hi:g}]")
    if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 1:
        raise ValueError(f"max_classes={max_classes!r} must be an int >= 1")
    teachers = _teachers(teacher_or_logits, data, class_names)
    first = next(iter(teachers.values()))
    n = first.logits.shape[0]
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 0 <= sample < n:
        raise ValueError(f"sample={sample!r}: choose an index in [0, {n - 1}]")
    return TemperatureExplorer(teachers, temperatures=presets, t_range=(lo, hi), temperature=t, sample=int(sample),
                               max_classes=max_classes)


# ----------------------------------------------------------------------------- results explorer

def _key(value: Any) -> Any:
    """A hashable, comparable control value: numpy scalars become Python, NaN becomes None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _matches(keys: pd.Series, value: Any) -> pd.Series:
    return keys.map(lambda v: v == value).astype(bool)


def _label(value: Any) -> str:
    return "—" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _sorted(values: Iterable[Any]) -> list[Any]:
    values = list(dict.fromkeys(values))
    try:
        return sorted(values, key=lambda v: (v is None, v))
    except TypeError:
        return sorted(values, key=lambda v: (v is None, str(v)))


class ResultsExplorer(_Explorer):
    """Dropdowns over a results frame's spec columns; see ``results_explorer``."""

    def __init__(self, frame: pd.DataFrame, history: pd.DataFrame | None, axes: Sequence[str], metric: str):
        self._frame, self._history, self._metric = frame, history, metric
        self._axes = list(axes)
        self._busy = False
        self.chart_data = pd.DataFrame()
        self.epoch_data = pd.DataFrame()
        self.readouts: dict[str, Any] = {}
        self.selection: dict[str, Any] = {}
        self.best_temperature: float | None = None
        self._controls: dict[str, W.ValueWidget] = {}
        for col in self._axes:
            options = _sorted(frame[col].map(_key))
            labels = [(_label(v), v) for v in options]
            short = len(options) <= 6 and sum(len(s) for s, _ in labels) <= 60
            ctl = (W.ToggleButtons(options=labels, value=options[-1] if col == "epochs" else options[0],
                                   style={"button_width": "auto"})
                   if short else W.Dropdown(options=labels, value=options[0], layout=W.Layout(width="auto")))
            ctl.add_class(f"kdlib-axis-{col}")
            ctl.observe(self._on_change, "value")
            self._controls[col] = ctl
        temps = _sorted(frame["temperature"].map(float))
        self._temps = W.SelectMultiple(options=[(f"T={t:g}", t) for t in temps], value=tuple(temps),
                                       rows=min(5, len(temps)), layout=W.Layout(width="120px"))
        self._temps.add_class("kdlib-history-temperatures")
        self._temps.observe(self._on_change, "value")
        self._readout_box = W.HTML()
        self._readout_box.add_class("kdlib-readouts")
        self._t_box = _html_chart("kdlib-accuracy-vs-temperature")
        self._epoch_box = _html_chart("kdlib-accuracy-vs-epoch")
        self._refresh()

        def row(label: str, ctl: W.Widget) -> W.HBox:
            return W.HBox([W.Label(label, layout=W.Layout(width="130px")), ctl], layout=W.Layout(align_items="center"))

        rows = [row(col, ctl) for col, ctl in self._controls.items()]
        if history is not None:
            rows.append(row("T in history chart", self._temps))
        self._widget = W.VBox([*rows, self._readout_box,
                              W.HBox([self._t_box, self._epoch_box], layout=W.Layout(flex_flow="row wrap"))])
        self._widget.add_class("kdlib-results-explorer")

    # -- test and scripting hooks ------------------------------------------------------
    @property
    def controls(self) -> list[str]:
        """The columns that vary in the frame, in control order."""
        return list(self._controls)

    def set(self, column: str, value: Any) -> "ResultsExplorer":
        """Choose ``value`` for ``column`` (as the dropdown would); ``"temperatures"`` picks the
        history chart's temperatures (a list)."""
        if column == "temperatures":
            values = [_check_t(v) for v in (value if isinstance(value, (list, tuple, set)) else [value])]
            known = [v for _, v in self._temps.options]
            missing = [v for v in values if not any(math.isclose(v, k) for k in known)]
            if missing:
                raise ValueError(f"temperatures {missing} have no runs; choose among {known}")
            self._temps.value = tuple(k for k in known if any(math.isclose(v, k) for v in values))
            return self
        if column not in self._controls:
            if column in self._frame.columns:
                raise ValueError(f"column {column!r} does not vary in this frame (only "
                                 f"{_sorted(self._frame[column].map(_key))!r}); controls: {self.controls}")
            raise ValueError(f"unknown column {column!r}; this frame's controls are {self.controls} "
                             "(plus 'temperatures' for the history chart)")
        ctl = self._controls[column]
        options = [v for _, v in ctl.options]
        key = _key(value)
        if key not in options:
            raise ValueError(f"{column}={value!r} has no runs under the current selection; choose one of {options}")
        ctl.value = key
        return self

    # -- what is shown -----------------------------------------------------------------
    def _on_change(self, change) -> None:
        if not self._busy:
            self._refresh()

    def _cascade(self) -> pd.DataFrame:
        """Restrict each control's options to the runs left by the controls above it."""
        rows = self._frame
        self._busy = True
        try:
            for col, ctl in self._controls.items():
                if col == "epochs":
                    continue
                keys = rows[col].map(_key)
                options = _sorted(keys)
                if [v for _, v in ctl.options] != options:
                    current = ctl.value
                    ctl.options = [(_label(v), v) for v in options]
                    ctl.value = current if current in options else options[0]
                rows = rows[_matches(keys, ctl.value)]
            if "epochs" in self._controls:
                ctl = self._controls["epochs"]
                options = _sorted(rows["epochs"].map(_key))
                if [v for _, v in ctl.options] != options:
                    current = ctl.value
                    ctl.options = [(_label(v), v) for v in options]
                    ctl.value = current if current in options else options[-1]
        finally:
            self._busy = False
        return rows

    def _refresh(self) -> None:
        rows = self._cascade()
        self.selection = {col: ctl.value for col, ctl in self._controls.items()}
        m = self._metric
        durations = rows["epochs"].map(_key) if "epochs" in rows else pd.Series(0, index=rows.index)
        chosen = self.selection.get("epochs", _key(durations.iloc[0]))
        agg = (rows.assign(epochs=durations).groupby(["epochs", "temperature"])[m]
               .agg(["mean", "std", "count"]).reset_index()
               .rename(columns={"mean": m, "std": f"{m}_std", "count": "seeds"}))
        agg["chosen"] = agg["epochs"] == chosen
        agg["duration"] = agg["epochs"].map(lambda e: f"{_label(e)} epochs")
        self.chart_data = agg
        line = agg[agg["chosen"]].sort_values("temperature")
        best = line.loc[line[m].idxmax()]  # idxmax keeps the first, i.e. the smallest T, on ties
        self.best_temperature = float(best["temperature"])
        at_one = line.loc[line["temperature"] == 1.0, m]
        self.readouts = {"best_temperature": self.best_temperature, "best_accuracy": float(best[m]),
                         "best_accuracy_std": float(best[f"{m}_std"]) if best["seeds"] > 1 else None,
                         "seeds": int(best["seeds"]), "accuracy_at_t1": float(at_one.iloc[0]) if len(at_one) else None,
                         "epochs": chosen, "runs": int(len(rows))}
        self.epoch_data = self._epoch_frame(rows[durations == chosen]) if self._history is not None else pd.DataFrame()
        html = self._readout_html()
        if self._live:
            self._draw(readouts=html)
        else:
            self._readout_box.value = html

    def _draw(self, readouts: str | None = None) -> None:
        t_svg = _svg(self._t_chart())
        epoch_svg = _svg(self._epoch_chart()) if self._history is not None else None
        if readouts is not None:
            self._readout_box.value = readouts
        self._t_box.value = t_svg
        if epoch_svg is not None:
            self._epoch_box.value = epoch_svg

    def _epoch_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        temps = list(self._temps.value)
        rows = rows[rows["temperature"].isin(temps)]
        hist = self._history
        hist = hist[hist["run_id"].isin(rows["run_id"])][["run_id", "epoch", self._metric]].dropna()
        hist = hist.merge(rows[["run_id", "temperature"]], on="run_id")
        out = (hist.groupby(["temperature", "epoch"])[self._metric].agg(["mean", "count"]).reset_index()
               .rename(columns={"mean": self._metric, "count": "seeds"}))
        out["best"] = out["temperature"] == self.best_temperature
        out["T"] = out["temperature"].map(lambda t: f"T={t:g}")
        return out

    def _readout_html(self) -> str:
        r = self.readouts
        std = f" ± {r['best_accuracy_std']:.2f}" if r["best_accuracy_std"] is not None else ""
        at_one = (f"; at T=1: {r['accuracy_at_t1']:.2f}% ({r['best_accuracy'] - r['accuracy_at_t1']:+.2f})"
                  if r["accuracy_at_t1"] is not None else "")
        return (f"<div style='margin:6px 0'>best T at {_label(r['epochs'])} epochs: "
                f"<b data-key='best_temperature'>T={r['best_temperature']:g}</b> with "
                f"<b data-key='best_accuracy'>{r['best_accuracy']:.2f}%</b>{std} "
                f"(final-epoch test accuracy, mean of {r['seeds']} seed(s)){at_one}</div>")

    def _title(self) -> str:
        parts = [f"{c}={_label(v)}" for c, v in self.selection.items() if c != "epochs"]
        return ", ".join(parts) or "all runs"

    def _t_chart(self) -> alt.LayerChart:
        m, agg = self._metric, self.chart_data
        order = _sorted(agg["epochs"])
        domain = [f"{_label(e)} epochs" for e in order]
        chosen = f"{_label(self.readouts['epochs'])} epochs"
        colors = ["#1f77b4" if d == chosen else "#c7c7c7" for d in domain]
        x = alt.X("temperature:Q", scale=alt.Scale(type="log", nice=False, padding=12), title="temperature T")
        base = alt.Chart(agg)
        lines = base.mark_line(point=True).encode(
            x=x, y=alt.Y(f"{m}:Q", scale=alt.Scale(zero=False), title="final-epoch test accuracy (%)"),
            color=alt.Color("duration:N", scale=alt.Scale(domain=domain, range=colors), sort=domain, title="length"),
            strokeWidth=alt.condition("datum.chosen", alt.value(3), alt.value(1.5)),
            order=alt.Order("chosen:N"),
            tooltip=["duration", "temperature", alt.Tooltip(f"{m}:Q", format=".2f"), "seeds"])
        spread = agg[agg["chosen"]].assign(low=lambda d: d[m] - d[f"{m}_std"].fillna(0),
                                           high=lambda d: d[m] + d[f"{m}_std"].fillna(0))
        bars = alt.Chart(spread).mark_rule(color="#1f77b4").encode(x=x, y="low:Q", y2="high:Q")
        best = pd.DataFrame([{"temperature": self.best_temperature, m: self.readouts["best_accuracy"],
                              "text": f"best T={self.best_temperature:g}"}])
        star = alt.Chart(best).mark_point(shape="diamond", size=160, filled=True, color="#d62728").encode(
            x=x, y=f"{m}:Q")
        right = self.best_temperature >= float(agg["temperature"].max())  # keep the label inside the plot
        text = alt.Chart(best).mark_text(align="right" if right else "left", dx=-10 if right else 10, dy=-12,
                                         color="#d62728", fontWeight="bold").encode(x=x, y=f"{m}:Q", text="text")
        return alt.layer(lines, bars, star, text).properties(
            width=340, height=240, title=alt.Title("Accuracy vs temperature", subtitle=self._title()))

    def _epoch_chart(self) -> alt.Chart:
        m, frame = self._metric, self.epoch_data
        if frame.empty:
            frame = pd.DataFrame({"epoch": [], m: [], "T": [], "best": []})
        order = [f"T={t:g}" for t in _sorted(frame["temperature"])] if "temperature" in frame else []
        return alt.Chart(frame).mark_line(point=True).encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{m}:Q", scale=alt.Scale(zero=False), title="test accuracy (%)"),
            color=alt.Color("T:N", sort=order, scale=alt.Scale(scheme="viridis"), title="temperature"),
            strokeWidth=alt.condition("datum.best", alt.value(3.5), alt.value(1.5)),
            tooltip=["T", "epoch", alt.Tooltip(f"{m}:Q", format=".2f"), "seeds"],
        ).properties(width=340, height=240, title=alt.Title(
            f"Accuracy vs epoch ({_label(self.readouts['epochs'])} epochs)",
            subtitle=f"thick: best T={self.best_temperature:g}"))

    def _static_chart(self) -> alt.TopLevelMixin:
        charts = [self._t_chart()] + ([self._epoch_chart()] if self._history is not None else [])
        return alt.hconcat(*charts).resolve_scale(color="independent", strokeWidth="independent")

    def _describe(self) -> str:
        r = self.readouts
        return (f"ResultsExplorer({self._title()}, epochs={_label(r['epochs'])}: best T={r['best_temperature']:g} "
                f"at {r['best_accuracy']:.2f}%); open in JupyterLab to change the selection")


def results_explorer(frame: pd.DataFrame, history: pd.DataFrame | None = None, *, axes: Sequence[str] | None = None,
                     metric: str = "test_acc") -> ResultsExplorer:
    """Browse a results frame (``store.load_results``): accuracy vs T and vs epoch (paper Figs. 2-3).

    One control per spec column that varies among finished runs (``SPEC_COLUMNS``, or ``axes``);
    ``epochs`` picks the highlighted distillation length, the others filter. The accuracy-vs-T
    chart shows the mean over seeds, one line per length, the chosen one in colour with the best
    T marked. ``history`` (``store.load_history``) adds accuracy vs epoch at the chosen
    temperatures. Runs without a temperature (a method at its own default) are left out.

    Returns an explorer: ``.set(column, value)``, ``.best_temperature``, ``.readouts``,
    ``.chart_data`` (the aggregated frame plotted), ``.epoch_data``, ``.widget``,
    ``.save_static(name, folder)``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame (kdlib.store.load_results()), got {type(frame).__name__}")
    missing = [c for c in ("temperature", metric) if c not in frame.columns]
    if missing:
        raise ValueError(f"results frame lacks column(s) {missing}; pass distillation results "
                         f"(kdlib.store.load_results(kind='distill')), columns given: {list(frame.columns)}")
    rows = frame
    rows = store.finished(rows, "distill")
    rows = rows[pd.to_numeric(rows["temperature"], errors="coerce").notna()
                & pd.to_numeric(rows[metric], errors="coerce").notna()]
    if rows.empty:
        raise ValueError(f"no finished distillation runs with a temperature and a {metric!r} among the {len(frame)} "
                         "rows given; run the sweep first (runs.ensure) or check the store folder")
    rows = rows.assign(temperature=rows["temperature"].astype(float), **{metric: rows[metric].astype(float)})
    if axes is None:
        axes = [c for c in SPEC_COLUMNS if c in rows.columns]
    else:
        unknown = [c for c in axes if c not in rows.columns]
        if unknown:
            raise ValueError(f"axes {unknown} are not columns of the frame; columns: {list(rows.columns)}")
    axes = [c for c in axes if rows[c].map(_key).nunique(dropna=False) > 1]
    if history is not None:
        if not isinstance(history, pd.DataFrame):
            raise ValueError(f"history must be a DataFrame (kdlib.store.load_history()), got {type(history).__name__}")
        missing = [c for c in ("run_id", "epoch", metric) if c not in history.columns]
        if missing or "run_id" not in rows:
            raise ValueError(f"history lacks column(s) {missing or ['run_id (in the results frame)']}; "
                             "pass kdlib.store.load_history(root) for the same store as the results")
    return ResultsExplorer(rows, history, axes, metric)
