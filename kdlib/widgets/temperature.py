"""The temperature explorer: how a teacher's softmax flattens as T grows (paper Fig. 4), live.

A log slider (with preset buttons) over T, a sample picker and a teacher picker; the average
sorted profile at T beside T = 1, one sample's distribution, and the numbers the paper quotes
(entropy, H_all / H_-max, the argmax-vs-next gap, the bottom classes' spread).
"""
from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import altair as alt
import ipywidgets as W
import numpy as np
import pandas as pd

from kdlib import paths, plots, profiles
from kdlib.widgets import charts, page, render
from kdlib.widgets.teachers import Teacher, build_teachers, check_t

STUDY_TEMPERATURES = (1, 2, 4, 10, 40)  # the mini preset's sweep (STUDY.md)
T_RANGE = (0.5, 100.0)
_ROWS = (("entropy (nats, mean)", "entropy", ".4f"), ("H_all (relative entropy)", "h_all", ".4f"),
         ("H_-max (without argmax)", "h_minus_max", ".4f"),
         ("top-1 minus top-2 (avg profile)", "top_gap", ".2e"), ("bottom-half spread", "bottom_spread", ".2e"))


def readout_html(r: dict[str, Any], at_one: dict[str, float]) -> str:
    """The numbers at T = 1 and at T as a small table, then the chosen sample in words."""
    t = r["temperature"]
    body = "".join(f"<tr><td>{name}</td><td data-key='{k}-1'>{at_one[k]:{fmt}}</td>"
                   f"<td data-key='{k}'><b>{r[k]:{fmt}}</b></td></tr>" for name, k, fmt in _ROWS)
    truth = f", label <b>{r['sample_label']}</b>" if r["sample_label"] is not None else ""
    return (f"<table class='kdlib-readout-table' style='border-collapse:collapse;margin-left:16px;"
            f"line-height:1.25'>"
            f"<tr><th></th><th>T=1</th><th>T=<span data-key='temperature' data-value='{t!r}'>{t:g}</span></th>"
            f"</tr>{body}</table><div style='margin-left:16px;line-height:1.3;max-width:560px'>"
            f"max entropy log C = {r['max_entropy']:.3f} ({r['classes']} classes, {r['samples']} samples). "
            f"Sample {r['sample']}: predicts <b>{r['sample_prediction']}</b>{truth}, "
            f"top probability {r['sample_top_probability']:.3g}, entropy {r['sample_entropy']:.3f} nats</div>")


def _controls(names: list[str], temperature: float, t_range: tuple[float, float], presets: Sequence[float]):
    lo, hi = t_range
    picker = W.Dropdown(options=names, value=names[0], description="teacher")
    slider = W.FloatLogSlider(value=temperature, base=10, min=math.log10(lo), max=math.log10(hi), step=0.01,
                              description="T", continuous_update=False, readout_format=".3",
                              layout=W.Layout(width="420px"))
    buttons = W.ToggleButtons(options=[(f"T={t:g}", float(t)) for t in presets], value=None,
                              style={"button_width": "56px"})
    sample = W.BoundedIntText(value=0, min=0, max=0, description="sample", layout=W.Layout(width="170px"))
    readouts = W.HTML()
    for widget, css in ((picker, "teacher"), (slider, "slider"), (buttons, "presets"), (sample, "sample-index"),
                        (readouts, "readouts")):
        widget.add_class(f"kdlib-{css}")
    return {"teacher": picker, "temperature": slider, "presets": buttons, "sample": sample, "readouts": readouts,
            "profile_chart": render.ChartBox("kdlib-profile"), "sample_chart": render.ChartBox("kdlib-sample")}


class _Recent(OrderedDict):
    """A small least-recently-used cache."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get(self, key, compute):
        if key not in self:
            self[key] = compute()
            while len(self) > self.size:
                self.popitem(last=False)
        self.move_to_end(key)
        return self[key]


class TemperatureExplorer(render.Explorer):
    """Temperature slider over a teacher's logits; see ``temperature_explorer``."""

    def __init__(self, teachers: dict[str, Teacher], *, temperatures: Sequence[float], t_range: tuple[float, float],
                 temperature: float, sample: int, max_classes: int):
        self._teachers, self._name, self._max_classes = teachers, next(iter(teachers)), max_classes
        self._cache = _Recent(64)
        self._exact, self._range, self._preset_ts = float(temperature), t_range, tuple(temperatures)
        self.chart_data, self.sample_data, self.readouts = pd.DataFrame(), pd.DataFrame(), {}
        self.controls: dict[str, W.Widget] = _controls(list(teachers), temperature, t_range, temperatures)
        c = self.controls
        self._slider, self._presets, self._sample = c["temperature"], c["presets"], c["sample"]
        c["teacher"].observe(self._on_teacher, "value")
        self._slider.observe(self._on_slider, "value")
        self._presets.observe(self._on_preset, "value")
        self._sample.observe(lambda change: None if self._busy else self._refresh(profile=False), "value")
        with self._quiet():
            self._set_bounds()
            self._sample.value = sample
        self._sync_presets()
        self._refresh()
        if len(teachers) == 1:
            c["teacher"].layout.display = "none"
        self._widget = W.VBox([
            c["teacher"],
            W.HBox([self._slider, self._presets], layout=W.Layout(flex_flow="row wrap", align_items="center")),
            W.HBox([self._sample, c["readouts"]], layout=W.Layout(align_items="flex-start")),
            W.HBox([c["profile_chart"], c["sample_chart"]], layout=W.Layout(flex_flow="row wrap"))])
        self._widget.add_class("kdlib-temperature-explorer")

    _busy = False

    @contextlib.contextmanager
    def _quiet(self):
        """Observers ignore the changes made inside."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    # -- test and scripting hooks ------------------------------------------------------
    @property
    def temperature(self) -> float:
        return float(self._slider.value)

    @temperature.setter
    def temperature(self, value: float) -> None:
        t, (lo, hi) = check_t(value), self._range
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
        self.controls["teacher"].value = name

    # -- callbacks ---------------------------------------------------------------------
    @property
    def _current(self) -> Teacher:
        return self._teachers[self._name]

    def _set_bounds(self) -> None:
        n = self._current.logits.shape[0]
        self._sample.max = n - 1
        self._sample.value = min(self._sample.value, n - 1)

    def _on_teacher(self, change) -> None:
        self._name = change["new"]
        with self._quiet():
            self._set_bounds()
        self._refresh()

    def _sync_presets(self) -> None:
        t = float(self._slider.value)
        match = [v for _, v in self._presets.options if math.isclose(v, t, rel_tol=1e-9)]
        with self._quiet():
            self._presets.value = match[0] if match else None

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
        if not self._busy and change["new"] is not None:
            self._slider.value = change["new"]

    # -- what is shown -----------------------------------------------------------------
    def _at(self, t: float) -> tuple[pd.DataFrame, dict[str, float]]:
        """Profile frame and set-level numbers of the current teacher at T, cached (64 most recent)."""
        return self._cache.get((self._name, t), lambda: profiles.profile_numbers(self._current.logits, t))

    def _refresh(self, profile: bool = True) -> None:
        t, teacher, i = self.temperature, self._current, self.sample
        (frame_t, numbers), (frame_1, numbers_1) = self._at(t), self._at(1.0)
        label = None if teacher.labels is None else int(teacher.labels[i])
        self.chart_data = frame_1 if t == 1.0 else pd.concat([frame_1, frame_t], ignore_index=True)
        self.sample_data = profiles.sample_frame(teacher.logits[i], t, teacher.class_names, label, self._max_classes)
        n, c = teacher.logits.shape
        self.readouts = {"teacher": self._name, "temperature": t, "sample": i, "classes": c, "samples": n,
                         **numbers, "max_entropy": math.log(c),
                         **profiles.sample_numbers(teacher.logits[i], t, teacher.class_names),
                         "sample_label": None if label is None else teacher.class_names[label]}
        html = readout_html(self.readouts, numbers_1)
        if self._live:
            self._draw(profile=profile, readouts=html)
        else:
            self.controls["readouts"].value = html

    def _draw(self, profile: bool = True, readouts: str | None = None) -> None:
        # draw everything first, then swap it in together: readouts and charts change at once
        c = self.controls
        pairs = [(c["profile_chart"], self._profile_chart())] if profile else []
        pairs.append((c["sample_chart"], charts.sample_chart(self.sample_data, self.readouts)))
        render.show(*pairs, then=None if readouts is None else lambda: setattr(c["readouts"], "value", readouts))

    def _profile_chart(self) -> alt.Chart:
        t = self.readouts["temperature"]
        return plots.softmax_profile(self.chart_data, title=f"{self._name}: average sorted softmax, T=1 vs T={t:g}")

    def _static_chart(self) -> alt.TopLevelMixin:
        return charts.temperature_state(self._profile_chart(), charts.sample_chart(self.sample_data, self.readouts),
                                        self._name, self.readouts)

    def page_chart(self) -> alt.TopLevelMixin:
        """The current teacher's profile over a grid of T with a slider bound to a Vega parameter
        (``page.temperature_page``): displayed in JupyterLab it moves in the browser, no kernel involved."""
        return page.temperature_page(self._current.logits, name=self._name, presets=self._preset_ts,
                                     t_range=self._range, temperature=self.temperature)

    def save_static(self, name: str, folder: str | Path) -> list[Path]:
        """``<folder>/<name>.png`` (this state) and ``<name>.html``: a page with its own slider, offline (``page``)."""
        saved = [Path(p) for p in plots.save(self.static_chart(), name, folder) or ()]  # PNG (+ static HTML)
        folder = Path(folder) if Path(folder).is_absolute() else paths.outputs_dir() / folder
        html = page.save_page(self.page_chart(), folder / f"{name}.html")  # the static HTML's place: the live page
        return [p for p in saved if p.suffix != ".html"] + [html]

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
    lo, hi = (check_t(v, "t_range bound") for v in t_range)
    if lo >= hi:
        raise ValueError(f"t_range={t_range!r} must be (low, high) with low < high, e.g. (0.5, 100)")
    presets = sorted({check_t(t, "preset temperature") for t in temperatures})
    if not presets:
        raise ValueError("temperatures= must hold at least one preset temperature, e.g. (1, 2, 4, 10, 40)")
    lo, hi = min(lo, presets[0]), max(hi, presets[-1])
    t = check_t(temperature)
    if not lo <= t <= hi:
        raise ValueError(f"temperature={temperature!r} is outside t_range [{lo:g}, {hi:g}]")
    if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 1:
        raise ValueError(f"max_classes={max_classes!r} must be an int >= 1")
    teachers = build_teachers(teacher_or_logits, data, class_names)
    first = next(iter(teachers.values()))
    n = first.logits.shape[0]
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 0 <= sample < n:
        raise ValueError(f"sample={sample!r}: choose an index in [0, {n - 1}]")
    return TemperatureExplorer(teachers, temperatures=presets, t_range=(lo, hi), temperature=t, sample=int(sample),
                               max_classes=max_classes)
