"""The explorers, driven as a user would (set the slider, a dropdown) and checked against numpy."""
from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
import pytest
import torch
from IPython.core.formatters import format_display_data

from kdlib import history, specs, store, tables, widgets
from kdlib.widgets import render

torch.set_num_threads(1)
C = 10
CLASSES = [f"c{i}" for i in range(C)]


# ----------------------------------------------------------------------------- reference math (numpy only)

def softmax(z: np.ndarray, t: float) -> np.ndarray:
    a = z / t
    a = a - a.max(axis=-1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(axis=-1, keepdims=True)


def ent(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1)


def reference(z: np.ndarray, t: float) -> dict:
    p = softmax(z, t)
    prof = -np.sort(-p, axis=1).mean(0)
    rest = np.array([np.delete(row, row.argmax()) for row in p])
    rest = rest / rest.sum(1, keepdims=True)
    bottom = prof[len(prof) // 2:]
    return {"profile": prof, "entropy": ent(p).mean(), "h_all": (ent(p) / np.log(z.shape[1])).mean(),
            "h_minus_max": (ent(rest) / np.log(z.shape[1] - 1)).mean(), "top_gap": prof[0] - prof[1],
            "bottom_spread": bottom.max() - bottom.min()}


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    g = np.random.default_rng(0)
    return g.normal(size=(200, C)) * 2 + 8 * np.eye(C)[g.integers(0, C, 200)]


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(1).integers(0, C, 200)


def check_readouts(explorer, z: np.ndarray, t: float) -> None:
    ref = reference(z, t)
    for key in ("entropy", "h_all", "h_minus_max"):
        assert explorer.readouts[key] == pytest.approx(ref[key], rel=1e-6), key
    for key in ("top_gap", "bottom_spread"):  # from the float32 profile of metrics.sorted_profile
        assert explorer.readouts[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-7), key
    frame = explorer.chart_data
    assert sorted(frame["temperature"].unique()) == sorted({1.0, t})
    got = frame[frame["temperature"] == t].sort_values("rank")["probability"].to_numpy()
    np.testing.assert_allclose(got, ref["profile"], rtol=1e-5)
    np.testing.assert_allclose(frame[frame["temperature"] == 1.0].sort_values("rank")["probability"],
                               reference(z, 1.0)["profile"], rtol=1e-5)


# ----------------------------------------------------------------------------- temperature explorer

def test_slider_presets_and_sample_update_the_charts_and_readouts(logits, labels):
    z = torch.tensor(logits, dtype=torch.float32)
    e = widgets.temperature_explorer((z, torch.tensor(labels)), class_names=CLASSES)
    z32 = z.double().numpy()
    check_readouts(e, z32, 1.0)
    before = dict(e.readouts)

    e.temperature = 4  # what moving the slider does
    assert e.controls["temperature"].value == 4 and e.controls["presets"].value == 4.0
    check_readouts(e, z32, 4.0)
    assert e.readouts["h_all"] > before["h_all"]

    e.controls["presets"].value = 40.0  # clicking the T=40 button moves the slider
    assert e.temperature == 40.0
    check_readouts(e, z32, 40.0)
    # the paper's Fig. 4 remark: at T = 40 the profile is nearly flat
    assert e.readouts["top_gap"] < 0.05 and e.readouts["h_all"] > 0.99

    e.controls["temperature"].value = 7.4989  # dragged off-preset: rounded to 3 digits, no button pressed
    assert e.temperature == 7.5 and e.controls["presets"].value is None
    check_readouts(e, z32, 7.5)
    e.temperature = 7.4989  # from code: exact
    assert e.readouts["temperature"] == 7.4989
    e.temperature = 7.5

    e.sample = 17
    p = softmax(z32[17], 7.5)
    shown = e.sample_data[e.sample_data["temperature"] == 7.5]
    np.testing.assert_allclose(shown.sort_values("class_index")["probability"], p, rtol=1e-6)
    assert shown["class"].tolist() == [CLASSES[i] for i in np.argsort(-z32[17], kind="stable")]
    assert e.readouts["sample_prediction"] == CLASSES[int(p.argmax())]
    assert e.readouts["sample_label"] == CLASSES[labels[17]]
    assert e.readouts["sample_entropy"] == pytest.approx(ent(p), rel=1e-9)
    assert shown.loc[shown["is_label"], "class"].tolist() == [CLASSES[labels[17]]]
    # the widget shows what the frames hold
    html = e.controls["readouts"].value
    assert f"{e.readouts['h_all']:.4f}" in html and "data-value='7.5'>7.5</span>" in html
    assert e.controls["profile_chart"].value == ""  # nothing drawn before the widget is shown
    assert e.widget is not None
    assert "<svg" in e.controls["profile_chart"].value and "T=7.5" in e.controls["profile_chart"].value
    assert "sample 17" in e.controls["sample_chart"].value


def test_several_teachers_get_a_picker_and_keep_their_own_numbers(logits):
    sharp, soft = logits, logits / 4
    e = widgets.temperature_explorer({"sharp": sharp, "soft": soft}, temperatures=(1, 10), temperature=10)
    assert e.controls["teacher"].layout.display != "none"
    check_readouts(e, sharp, 10.0)
    e.controls["teacher"].value = "soft"
    assert e.teacher == "soft"
    check_readouts(e, soft, 10.0)
    assert e.readouts["sample_prediction"] == f"class {int(np.argmax(soft[0]))}"
    single = widgets.temperature_explorer(logits)
    assert single.controls["teacher"].layout.display == "none"


class _Images(torch.utils.data.Dataset):
    in_memory = True
    classes = CLASSES

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, (24, 1, 4, 4), dtype=torch.uint8, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i % C


class _Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, C))

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def test_a_model_is_run_once_and_never_again(monkeypatch):
    monkeypatch.setenv("KDLIB_DEVICE", "cpu")
    model, data = _Counting(), _Images()
    e = widgets.temperature_explorer(model, data)
    calls = model.calls
    assert calls >= 1
    with torch.no_grad():
        expected = model.net(data.x.float() / 255).double().numpy()
    for t in (2.0, 10.0, 40.0):
        e.temperature = t
    e.sample = 5
    assert model.calls == calls  # the slider never reruns the teacher
    check_readouts(e, expected, 40.0)
    assert e.readouts["sample_label"] == CLASSES[5]


@pytest.mark.parametrize("bad, match", [
    (torch.empty(0, C), r"N > 0"),
    (torch.zeros(C), r"shape"),
    (torch.zeros(2, 3, 4), r"shape"),
    (torch.zeros(4, C, dtype=torch.long), r"floating point"),
    (torch.tensor([[0.0, float("nan"), 1.0]]), r"NaN"),
    ({}, r"no teachers"),
    ("logits.pt", r"expected a logits tensor"),
    ((torch.zeros(4, C), torch.zeros(3)), r"labels shape"),
])
def test_bad_logits_say_what_was_given(bad, match):
    with pytest.raises(ValueError, match=match):
        widgets.temperature_explorer(bad)


def test_bad_temperatures_and_arguments(logits):
    z = torch.tensor(logits)
    for t in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="finite number > 0"):
            widgets.temperature_explorer(z, temperatures=(1, t))
        with pytest.raises(ValueError, match="finite number > 0"):
            widgets.temperature_explorer(z, temperature=t)
    with pytest.raises(ValueError, match="t_range"):
        widgets.temperature_explorer(z, t_range=(10, 2))
    with pytest.raises(ValueError, match="class names for 10 classes"):
        widgets.temperature_explorer(z, class_names=["a", "b"])
    with pytest.raises(ValueError, match="pass data="):
        widgets.temperature_explorer(torch.nn.Linear(3, C))
    with pytest.raises(ValueError, match="drop data="):
        widgets.temperature_explorer(z, data=[(torch.zeros(1, 2, 2, dtype=torch.uint8), 0)])
    with pytest.raises(ValueError, match=r"\[0, 199\]"):
        widgets.temperature_explorer(z, sample=200)
    e = widgets.temperature_explorer(z)
    with pytest.raises(ValueError, match="finite number > 0"):
        e.temperature = 0
    with pytest.raises(ValueError, match="t_range"):
        e.temperature = 500
    with pytest.raises(ValueError, match=r"\[0, 199\]"):
        e.sample = -1
    with pytest.raises(ValueError, match="not one of"):
        e.teacher = "nope"
    assert e.temperature == 1.0  # nothing changed


@pytest.mark.slow
def test_headless_display_carries_a_png_and_never_raises(logits, monkeypatch, tmp_path):
    e = widgets.temperature_explorer(logits, temperature=4)
    data, _ = format_display_data(e)  # what a kernel sends under papermill
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert "T=4" in data["text/plain"]
    saved = []  # plots.save itself (PNG + inline HTML) is run for real by the browser test's notebook
    monkeypatch.setattr(render.plots, "save", lambda chart, name, folder: saved.append((chart, name, folder)))
    e.save_static("explorer", tmp_path)
    chart, name, folder = saved[0]
    assert (name, folder) == ("explorer", tmp_path) and "H_all" in str(chart.to_dict()["title"])

    def broken(chart):
        raise RuntimeError("no renderer")

    monkeypatch.setattr(render, "png", broken)
    monkeypatch.setattr(render, "svg", broken)
    fresh = widgets.temperature_explorer(logits)
    for explorer in (e, fresh):  # drawn already, and never drawn (its first display draws)
        data, _ = format_display_data(explorer)
        assert "image/png" not in data and "static chart unavailable" in data["text/plain"]
    assert "live widget unavailable" in data["text/plain"]


# ----------------------------------------------------------------------------- results explorer

def accuracy(opt: str, epochs: int, t: float, seed: int) -> float:
    slope = 2.0 if opt == "adamw" else -1.0
    return 50 + slope * math.log(t) + epochs + 0.5 * seed - (0.3 * math.log(t) ** 2 if epochs > 2 else 0)


@pytest.fixture(scope="module")
def sweep():
    rows, hist, n = [], [], 0
    for opt in ("adamw", "sgd"):
        for epochs in (2, 4):
            for t in (1.0, 2.0, 4.0, 10.0, 40.0):
                for seed in (0, 1):
                    n += 1
                    acc = accuracy(opt, epochs, t, seed)
                    rows.append(dict(run_id=f"r{n}", kind="distill", dataset="fmnist-fine", teacher="resnet50",
                                     student="resnet18", optimizer=opt, lr=1e-3 if opt == "adamw" else 0.05,
                                     batch_size=128, epochs=epochs, temperature=t, seed=seed, status="done",
                                     test_acc=acc, train_seconds=1.0 + n))
                    hist += [dict(run_id=f"r{n}", epoch=e, test_acc=acc - (epochs - e), train_loss=1.0)
                             for e in range(1, epochs + 1)]
    rows.append(dict(rows[0], run_id="failed", status="failed", test_acc=None))
    return pd.DataFrame(rows), pd.DataFrame(hist)


@pytest.mark.slow
def test_results_explorer_follows_the_dropdowns(sweep):
    frame, history = sweep
    r = widgets.results_explorer(frame, history)
    assert r.controls == ["optimizer", "lr", "epochs"]  # only what varies; never seed/temperature/results
    assert r.selection == {"optimizer": "adamw", "lr": 0.001, "epochs": 4}  # longest run highlighted

    def expect(opt, epochs):
        means = {t: np.mean([accuracy(opt, epochs, t, s) for s in (0, 1)]) for t in (1.0, 2.0, 4.0, 10.0, 40.0)}
        return means, max(means, key=means.get)

    means, best = expect("adamw", 4)
    line = r.chart_data[r.chart_data["chosen"]].set_index("temperature")["test_acc"]
    assert line.to_dict() == pytest.approx(means)
    assert set(r.chart_data["epochs"]) == {2, 4} and r.chart_data["seeds"].eq(2).all()
    assert r.best_temperature == best == r.readouts["best_temperature"]

    r.set("optimizer", "sgd")  # the lr options follow the optimizer
    assert r.selection["lr"] == 0.05 and [v for _, v in r._controls["lr"].options] == [0.05]
    means, best = expect("sgd", 4)
    assert r.best_temperature == best == 1.0
    assert r.chart_data[r.chart_data["chosen"]].set_index("temperature")["test_acc"].to_dict() == pytest.approx(means)

    r.set("epochs", 2)
    assert r.chart_data.loc[r.chart_data["chosen"], "epochs"].eq(2).all()
    assert r.best_temperature == expect("sgd", 2)[1]
    r.set("temperatures", [1, 40])
    ep = r.epoch_data
    assert sorted(ep["temperature"].unique()) == [1.0, 40.0] and sorted(ep["epoch"].unique()) == [1, 2]
    got = ep.set_index(["temperature", "epoch"])["test_acc"]
    assert got[(40.0, 1)] == pytest.approx(np.mean([accuracy("sgd", 2, 40.0, s) - 1 for s in (0, 1)]))
    assert ep.loc[ep["best"], "temperature"].eq(r.best_temperature).all()
    assert f"T={r.best_temperature:g}" in r._readout_box.value
    data, _ = format_display_data(r)
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")


def test_results_explorer_rejects_bad_input(sweep):
    frame, history = sweep
    r = widgets.results_explorer(frame)
    with pytest.raises(ValueError, match=r"unknown column 'colour'.*\['optimizer', 'lr', 'epochs'\]"):
        r.set("colour", 1)
    with pytest.raises(ValueError, match="does not vary"):
        r.set("dataset", "fmnist-fine")
    with pytest.raises(ValueError, match=r"choose one of \['adamw', 'sgd'\]"):
        r.set("optimizer", "rmsprop")
    with pytest.raises(ValueError, match="have no runs"):
        r.set("temperatures", [3])
    with pytest.raises(ValueError, match="lacks column"):
        widgets.results_explorer(frame.drop(columns="temperature"))
    with pytest.raises(ValueError, match="no finished distillation runs"):
        widgets.results_explorer(frame.assign(status="failed"))
    with pytest.raises(ValueError, match="no finished distillation runs"):
        widgets.results_explorer(frame.iloc[:0])
    with pytest.raises(ValueError, match="axes"):
        widgets.results_explorer(frame, axes=["colour"])
    with pytest.raises(ValueError, match="history lacks"):
        widgets.results_explorer(frame, history.drop(columns="epoch"))


def test_results_explorer_reads_a_real_store(tmp_path):
    """Columns exactly as ``tables.load_results`` / ``load_history`` give them."""
    teacher = specs.teacher("resnet50", "fmnist-fine", epochs=2)
    for opt in ("adamw", "sgd"):
        for t in (1.0, 4.0):
            spec = specs.distill(teacher, "resnet18", t, epochs=2, optimizer=opt)
            run = store.RunDir(spec, tmp_path)
            run.begin()
            acc = 60 + (t if opt == "adamw" else -t)
            run.finish({"test_acc": acc, "history": [{"epoch": 1, "test_acc": acc - 5, "train_loss": 1.0},
                                                     {"epoch": 2, "test_acc": acc, "train_loss": 0.5}]})
    r = widgets.results_explorer(tables.load_results(tmp_path), store.load_history(tmp_path))
    assert r.controls == ["optimizer", "lr", "weight_decay"]
    assert r.best_temperature == 4.0
    r.set("optimizer", "sgd")
    assert r.best_temperature == 1.0 and len(r.epoch_data) == 4


def test_results_explorer_draws_runs_still_training_dashed_from_their_live_history(tmp_path):
    teacher = specs.teacher("resnet50", "fmnist-fine", epochs=2)
    for t in (1.0, 4.0):
        run = store.RunDir(specs.distill(teacher, "resnet18", t, epochs=2), tmp_path)
        run.begin()
        run.finish({"test_acc": 60 + t, "history": [{"epoch": 1, "test_acc": 55 + t}, {"epoch": 2, "test_acc": 60 + t}]})
    live = store.RunDir(specs.distill(teacher, "resnet18", 10.0, epochs=2), tmp_path)
    live.begin()
    history.append(live.path, {"epoch": 1, "test_acc": 52.5, "train_loss": 1.0})  # what train writes per epoch
    r = widgets.results_explorer(tables.load_results(tmp_path), history="store", root=tmp_path)
    ep = r.epoch_data.set_index(["temperature", "epoch"])
    assert ep.loc[(10.0, 1), "in_flight"] and ep.loc[(10.0, 1), "test_acc"] == 52.5
    assert not ep.loc[(4.0, 2), "in_flight"] and ep.loc[(4.0, 2), "test_acc"] == 64.0
    assert r.best_temperature == 4.0  # a run in flight has no final accuracy: never in the T chart
    spec = r._epoch_chart().to_dict()
    assert spec["encoding"]["strokeDash"]["scale"]["range"] == [[1, 0], [6, 4]]
    assert "stroke-dasharray" in render.svg(r._epoch_chart())
