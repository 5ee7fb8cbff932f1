"""The results explorer: accuracy vs T per distillation length and vs epoch (paper Figs. 2-3), by dropdown.

One control per spec column that varies among the finished runs; each control's options
follow the ones above it. The numbers come from ``kdlib.analysis``, the charts from
``widgets.charts``; this module only wires them together.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Sequence

import altair as alt
import ipywidgets as W
import pandas as pd

from kdlib import analysis, store, tables
from kdlib.widgets import charts, render
from kdlib.widgets.controls import key, label, matches, ordered
from kdlib.widgets.teachers import check_t

SPEC_COLUMNS = analysis.SPEC_COLUMNS


def _row(name: str, ctl: W.Widget) -> W.HBox:
    return W.HBox([W.Label(name, layout=W.Layout(width="130px")), ctl], layout=W.Layout(align_items="center"))


def _control(frame: pd.DataFrame, col: str) -> W.ValueWidget:
    options = ordered(frame[col].map(key))
    labels = [(label(v), v) for v in options]
    short = len(options) <= 6 and sum(len(s) for s, _ in labels) <= 60
    ctl = (W.ToggleButtons(options=labels, value=options[-1] if col == "epochs" else options[0],
                           style={"button_width": "auto"})
           if short else W.Dropdown(options=labels, value=options[0], layout=W.Layout(width="auto")))
    ctl.add_class(f"kdlib-axis-{col}")
    return ctl


def _restrict(ctl: W.ValueWidget, options: list[Any], fallback: Any) -> None:
    if [v for _, v in ctl.options] != options:
        current = ctl.value
        ctl.options = [(label(v), v) for v in options]
        ctl.value = current if current in options else fallback


class ResultsExplorer(render.Explorer):
    """Dropdowns over a results frame's spec columns; see ``results_explorer``."""

    def __init__(self, frame: pd.DataFrame, history: pd.DataFrame | None, axes: Sequence[str], metric: str,
                 in_flight: pd.DataFrame | None = None):
        self._frame, self._history, self._metric, self._busy = frame, history, metric, False
        self._in_flight = in_flight if in_flight is not None else frame.iloc[:0]
        self.chart_data, self.epoch_data = pd.DataFrame(), pd.DataFrame()
        self.readouts: dict[str, Any] = {}
        self.selection: dict[str, Any] = {}
        self.best_temperature: float | None = None
        self._source: dict[str, Any] | None = None  # where reload() reads (set by results_explorer)
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self.reloads = 0
        self._pending = len(self._in_flight)  # runs not landed yet (done or failed): what watch() waits for
        self._controls: dict[str, W.ValueWidget] = {col: _control(self._pool(), col) for col in axes}
        temps = self._temperatures()
        self._temps = W.SelectMultiple(options=[(f"T={t:g}", t) for t in temps], value=tuple(temps),
                                       rows=min(5, len(temps)), layout=W.Layout(width="120px"))
        self._temps.add_class("kdlib-history-temperatures")
        for ctl in [*self._controls.values(), self._temps]:
            ctl.observe(lambda change: None if self._busy else self._refresh(), "value")
        self._readout_box = W.HTML()
        self._readout_box.add_class("kdlib-readouts")
        self._t_box = render.ChartBox("kdlib-accuracy-vs-temperature")
        self._epoch_box = render.ChartBox("kdlib-accuracy-vs-epoch")
        self._refresh()
        rows = [_row(col, ctl) for col, ctl in self._controls.items()]
        if history is not None:
            rows.append(_row("T in history chart", self._temps))
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
            values = [check_t(v) for v in (value if isinstance(value, (list, tuple, set)) else [value])]
            known = [v for _, v in self._temps.options]
            missing = [v for v in values if not any(math.isclose(v, k) for k in known)]
            if missing:
                raise ValueError(f"temperatures {missing} have no runs; choose among {known}")
            self._temps.value = tuple(k for k in known if any(math.isclose(v, k) for v in values))
            return self
        if column not in self._controls:
            if column in self._frame.columns:
                raise ValueError(f"column {column!r} does not vary in this frame (only "
                                 f"{ordered(self._frame[column].map(key))!r}); controls: {self.controls}")
            raise ValueError(f"unknown column {column!r}; this frame's controls are {self.controls} "
                             "(plus 'temperatures' for the history chart)")
        ctl = self._controls[column]
        options = [v for _, v in ctl.options]
        if key(value) not in options:
            raise ValueError(f"{column}={value!r} has no runs under the current selection; choose one of {options}")
        ctl.value = key(value)
        return self

    # -- what is shown -----------------------------------------------------------------
    def _cascade(self) -> pd.DataFrame:
        """Restrict each control's options to the runs (finished or in flight) left by the controls above it."""
        rows = self._pool()
        self._busy = True
        try:
            for col, ctl in self._controls.items():
                if col != "epochs":
                    keys = rows[col].map(key)
                    _restrict(ctl, ordered(keys), ordered(keys)[0])
                    rows = rows[matches(keys, ctl.value)]
            if "epochs" in self._controls:
                options = ordered(rows["epochs"].map(key))
                _restrict(self._controls["epochs"], options, options[-1])
        finally:
            self._busy = False
        return rows

    def _pool(self) -> pd.DataFrame:
        """Finished runs and runs in flight (``_live``): the controls offer what either holds."""
        parts = [self._frame.assign(_live=False)] + ([self._in_flight.assign(_live=True)] if len(self._in_flight) else [])
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _temperatures(self) -> list[float]:
        return ordered(pd.concat([self._frame["temperature"], self._in_flight["temperature"]]).map(float))

    def _refresh(self) -> None:
        rows, m = self._cascade(), self._metric
        rows = rows[~rows["_live"].astype(bool)].drop(columns="_live")
        self.selection = {col: ctl.value for col, ctl in self._controls.items()}
        durations = rows["epochs"].map(key) if "epochs" in rows else pd.Series(0, index=rows.index)
        chosen = self.selection.get("epochs", key(durations.iloc[0]) if len(durations) else 0)
        agg = analysis.aggregate(rows.assign(epochs=durations), ["epochs", "temperature"], m, dropna=True)
        agg = agg.merge(_who(rows.assign(epochs=durations), ["epochs", "temperature"]), how="left")
        agg["chosen"] = agg["epochs"] == chosen
        agg["duration"] = agg["epochs"].map(lambda e: f"{label(e)} epochs")
        self.chart_data = agg
        line = agg[agg["chosen"]]
        self.readouts = {"best_temperature": None, "best_accuracy": None, "best_accuracy_std": None, "seeds": 0,
                         "accuracy_at_t1": None, "epochs": chosen, "runs": int(len(rows)),
                         "in_flight": int(len(self._live_rows(chosen, all_temperatures=True)))}
        self.best_temperature = None
        if len(line):
            best = analysis.best_row(line, m)
            self.best_temperature = float(best["temperature"])
            at_one = line.loc[line["temperature"] == 1.0, m]
            self.readouts.update(best_temperature=self.best_temperature, best_accuracy=float(best[m]),
                                 best_accuracy_std=float(best[f"{m}_std"]) if best["seeds"] > 1 else None,
                                 seeds=int(best["seeds"]), accuracy_at_t1=float(at_one.iloc[0]) if len(at_one) else None)
        self.epoch_data = pd.DataFrame()
        self.curve_note = ""
        if self._history is not None:
            picked = rows[(durations == chosen) & rows["temperature"].isin(list(self._temps.value))]
            live_rows = self._live_rows(chosen)
            ep = analysis.epoch_curves(self._history, picked, m).assign(in_flight=False)
            ep = ep.merge(_who(picked, ["temperature"]), how="left")
            live = analysis.epoch_curves(self._history, live_rows, m).assign(in_flight=True)
            live = live.merge(_who(live_rows, ["temperature"]), how="left") if len(live) else live
            ep = pd.concat([ep, live], ignore_index=True) if len(live) else ep
            self.epoch_data = ep.assign(best=ep["temperature"] == self.best_temperature,
                                        T=ep["temperature"].map(lambda t: f"T={t:g}"))
            self.curve_note = analysis.curve_note(self._history, pd.concat([picked, self._live_rows(chosen)]))
        if self._live:
            self._draw(readouts=self._readout_html())
        else:
            self._readout_box.value = self._readout_html()

    def _live_rows(self, chosen: Any, all_temperatures: bool = False) -> pd.DataFrame:
        """Runs still training under the current selection (drawn dashed, from their live history)."""
        live = self._in_flight
        for col, ctl in self._controls.items():
            if col in live and len(live):
                live = live[live[col].map(key) == chosen] if col == "epochs" else live[matches(live[col].map(key), ctl.value)]
        if all_temperatures or not len(live):
            return live
        return live[live["temperature"].isin(list(self._temps.value))]

    # -- live sweeps: read the store again, on demand or on a timer ----------------------
    def reload(self) -> "ResultsExplorer":
        """Read this explorer's runs from the store again (finished and in flight, with their
        per-epoch history) and redraw; the controls keep their choices where they still can."""
        if self._source is None:
            raise ValueError("this explorer was built from frames alone; build it with "
                             "results_explorer(frame, history='store') to reload from the store")
        src = self._source
        frame = tables.load_results(src["root"], kind="distill", run_ids=src["run_ids"])
        rows, in_flight = _split(frame, self._metric)
        self._pending = _pending(frame)
        history = store.load_history(src["root"], run_ids=src["run_ids"]) if self._history is not None else None
        self._busy = True
        try:
            self._frame, self._in_flight, self._history = rows, in_flight, history
            temps = self._temperatures()
            if [v for _, v in self._temps.options] != temps:
                chosen = set(self._temps.value) | (set(temps) - {v for _, v in self._temps.options})
                self._temps.options = [(f"T={t:g}", t) for t in temps]
                self._temps.value = tuple(t for t in temps if t in chosen)
        finally:
            self._busy = False
        self.reloads += 1
        self._refresh()
        return self

    @property
    def watching(self) -> bool:
        return self._timer is not None and self._timer.is_alive()

    def watch(self, every: float = 10.0) -> "ResultsExplorer":
        """Reload every ``every`` seconds, in a background thread, while any of the runs is in
        flight (``runs.ensure(..., wait=False)``); stops by itself once they all landed, or on ``stop()``.
        The kernel stays free meanwhile; each reload reads only these runs (the store's index)."""
        if not isinstance(every, (int, float)) or isinstance(every, bool) or not every > 0:
            raise ValueError(f"every={every!r}: seconds between reloads, a number > 0 (e.g. 10)")
        self.stop()
        self.reload()  # errors (no store source) surface here, in the cell
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._watch, args=(float(every), self._stop), daemon=True,
                                       name="kdlib-results-watch")
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop ``watch``'s timer (the charts keep their last state)."""
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=30)
        self._timer = None

    def _watch(self, every: float, stop: threading.Event) -> None:
        while self._pending and not stop.wait(every):
            try:
                self.reload()
            except Exception as e:  # noqa: BLE001 - a timer has no cell to raise in: say it where the numbers are
                self._readout_box.value = f"<div style='color:#b00'>reload failed ({type(e).__name__}: {e}); stopped</div>"
                return

    def _draw(self, readouts: str | None = None) -> None:
        pairs = [(self._t_box, self._t_chart())]
        if self._history is not None:
            pairs.append((self._epoch_box, self._epoch_chart()))
        render.show(*pairs, then=None if readouts is None else lambda: setattr(self._readout_box, "value", readouts))

    def _readout_html(self) -> str:
        r = self.readouts
        live = f"; {r['in_flight']} run(s) in flight (dashed)" if r.get("in_flight") else ""
        if r["best_temperature"] is None:
            return (f"<div style='margin:6px 0'>no run finished yet at {label(r['epochs'])} epochs"
                    f"<span data-key='in_flight'>{live}</span></div>")
        std = f" ± {r['best_accuracy_std']:.2f}" if r["best_accuracy_std"] is not None else ""
        at_one = (f"; at T=1: {r['accuracy_at_t1']:.2f}% ({r['best_accuracy'] - r['accuracy_at_t1']:+.2f})"
                  if r["accuracy_at_t1"] is not None else "")
        return (f"<div style='margin:6px 0'>best T at {label(r['epochs'])} epochs: "
                f"<b data-key='best_temperature'>T={r['best_temperature']:g}</b> with "
                f"<b data-key='best_accuracy'>{r['best_accuracy']:.2f}%</b>{std} "
                f"(final-epoch test accuracy, mean of {r['seeds']} seed(s)){at_one}"
                f"<span data-key='in_flight'>{live}</span></div>")

    def _title(self) -> str:
        return ", ".join(f"{c}={label(v)}" for c, v in self.selection.items() if c != "epochs") or "all runs"

    def _t_chart(self) -> alt.TopLevelMixin:
        if self.best_temperature is None:
            return charts.waiting(f"Accuracy vs temperature: no run finished yet ({self._title()})")
        return charts.accuracy_by_duration(self.chart_data, self._metric, self.best_temperature,
                                           self.readouts["best_accuracy"], self.readouts["epochs"], self._title())

    def _epoch_chart(self) -> alt.Chart:
        return charts.accuracy_by_epoch(self.epoch_data, self._metric, self.readouts["epochs"], self.best_temperature,
                                        self.curve_note if self._metric == "test_acc" else "")

    def _static_chart(self) -> alt.TopLevelMixin:
        parts = [self._t_chart()] + ([self._epoch_chart()] if self._history is not None else [])
        return alt.hconcat(*parts).resolve_scale(color="independent", strokeWidth="independent")

    def _describe(self) -> str:
        r = self.readouts
        best = (f"best T={r['best_temperature']:g} at {r['best_accuracy']:.2f}%" if r["best_temperature"] is not None
                else "no run finished yet")
        return (f"ResultsExplorer({self._title()}, epochs={label(r['epochs'])}: {best}); "
                "open in JupyterLab to change the selection")


def results_explorer(frame: pd.DataFrame, history: pd.DataFrame | str | None = None, *,
                     axes: Sequence[str] | None = None, metric: str = "test_acc",
                     root: str | None = None, refresh: float | None = None) -> ResultsExplorer:
    """Browse a results frame (``tables.load_results``): accuracy vs T and vs epoch (paper Figs. 2-3).

    One control per spec column that varies among finished runs (``SPEC_COLUMNS``, or ``axes``);
    ``epochs`` picks the highlighted distillation length, the others filter. The accuracy-vs-T
    chart shows the mean over seeds, one line per length, the chosen one in colour with the best
    T marked. ``history`` (``store.load_history``) adds accuracy vs epoch at the chosen
    temperatures; ``history="store"`` loads it from the store (``root``, default the outputs'
    store) for the frame's runs. Runs without a temperature (a method at its own default) are left out.
    Runs still training (``runs.ensure(..., wait=False)``) are drawn dashed from their live history;
    ``refresh=seconds`` (or ``.watch(seconds)``) reloads them from the store (``history="store"`` or
    ``root``) on a timer until they all landed; ``.reload()`` does it once.

    Returns an explorer: ``.set(column, value)``, ``.best_temperature``, ``.readouts``,
    ``.chart_data`` (the aggregated frame plotted), ``.epoch_data``, ``.widget``,
    ``.save_static(name, folder)``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame (kdlib.tables.load_results()), got {type(frame).__name__}")
    frame = _with_metric(frame, metric)
    missing = [c for c in ("temperature", metric) if c not in frame.columns]
    if missing:
        raise ValueError(f"results frame lacks column(s) {missing}; pass distillation results "
                         f"(kdlib.tables.load_results(kind='distill')), columns given: {list(frame.columns)}")
    rows, in_flight = _split(frame, metric)
    if rows.empty and in_flight.empty:
        raise ValueError(f"no finished distillation runs (nor any in flight) with a temperature and a {metric!r} among the "
                         f"{len(frame)} rows given; run the sweep first (runs.ensure) or check the store folder")
    pool = pd.concat([rows, in_flight], ignore_index=True) if len(in_flight) else rows
    if axes is None:
        axes = [c for c in SPEC_COLUMNS if c in pool.columns]
    else:
        unknown = [c for c in axes if c not in pool.columns]
        if unknown:
            raise ValueError(f"axes {unknown} are not columns of the frame; columns: {list(pool.columns)}")
    axes = [c for c in axes if pool[c].map(key).nunique(dropna=False) > 1]
    from_store = isinstance(history, str)
    if isinstance(history, str):
        if history != "store":
            raise ValueError(f"history={history!r}; pass 'store' (load it for these runs), a DataFrame "
                             "(kdlib.store.load_history()) or None (no epoch chart)")
        history = store.load_history(root, run_ids=[*rows["run_id"], *in_flight["run_id"]] if "run_id" in rows else None)
    if history is not None:
        if not isinstance(history, pd.DataFrame):
            raise ValueError(f"history must be a DataFrame (kdlib.store.load_history()), got {type(history).__name__}")
        missing = [c for c in ("run_id", "epoch", metric) if c not in history.columns]
        if missing or "run_id" not in rows:
            raise ValueError(f"history lacks column(s) {missing or ['run_id (in the results frame)']}; "
                             "pass kdlib.store.load_history(root) for the same store as the results")
    explorer = ResultsExplorer(rows, history, axes, metric, in_flight)
    if (from_store or root is not None) and "run_id" in frame:
        explorer._source = {"root": root, "run_ids": list(dict.fromkeys(frame["run_id"]))}
        explorer._pending = _pending(frame)
    if refresh is not None:
        explorer.watch(refresh)
    return explorer


def _with_metric(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Nothing finished yet: no row has ``metric``; the runs in flight still show (a NaN column)."""
    if metric not in frame.columns and "temperature" in frame.columns and len(_in_flight(frame)):
        return frame.assign(**{metric: float("nan")})
    return frame


def _pending(frame: pd.DataFrame) -> int:
    """Runs of ``frame`` that have not landed (neither done nor failed)."""
    return int((~frame["status"].isin(["done", "failed"])).sum()) if "status" in frame else 0


def _split(frame: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished distillation runs with a temperature and ``metric`` (as floats), and the runs in flight."""
    frame = _with_metric(frame, metric)
    rows = store.finished(frame, "distill")
    rows = rows[pd.to_numeric(rows["temperature"], errors="coerce").notna()
                & pd.to_numeric(rows[metric], errors="coerce").notna()]
    rows = rows.assign(temperature=rows["temperature"].astype(float), **{metric: rows[metric].astype(float)})
    return rows, _in_flight(frame)


def _who(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of ``by``: the run ids and seeds behind a plotted mean (the charts' tooltips)."""
    cols = [c for c in ("run_id", "seed") if c in rows]
    if not cols or rows.empty:
        return rows[by].drop_duplicates()
    names = {"run_id": "run_ids", "seed": "seed_list"}
    return (rows.groupby(by)[cols].agg(lambda v: ", ".join(sorted({label(key(x)) for x in v})))
            .reset_index().rename(columns=names))


def _in_flight(frame: pd.DataFrame) -> pd.DataFrame:
    """Distillation runs still training (``in_flight``, from ``tables.load_results``) with a temperature."""
    if "in_flight" not in frame or "run_id" not in frame:
        return frame.iloc[:0]
    live = frame[frame["in_flight"].fillna(False).astype(bool)]
    if "kind" in live:
        live = live[live["kind"] == "distill"]
    live = live[pd.to_numeric(live["temperature"], errors="coerce").notna()]
    return live.assign(temperature=live["temperature"].astype(float))
