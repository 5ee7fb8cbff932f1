"""Live history: each epoch lands in ``history.jsonl`` as one whole line, readable while the run trains."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from kdlib import history, specs, store, tables


def test_a_trailing_partial_line_and_garbage_are_never_read(tmp_path):
    whole = json.dumps({"epoch": 1, "train_loss": 2.5}) + "\n"
    (tmp_path / history.FILE).write_text(whole + "not json\n" + whole.replace("1", "2", 1)[:12])
    assert history.read(tmp_path) == [{"epoch": 1, "train_loss": 2.5}]


def test_appended_lines_are_read_in_epoch_order_and_a_repeated_epoch_keeps_its_last_line(tmp_path):
    for e, loss in ((1, 3.0), (2, 2.0), (2, 1.5), (3, 1.0)):
        history.append(tmp_path, {"epoch": e, "train_loss": loss})
    assert [(r["epoch"], r["train_loss"]) for r in history.read(tmp_path)] == [(1, 3.0), (2, 1.5), (3, 1.0)]
    assert (tmp_path / history.FILE).read_bytes().count(b"\n") == 4  # appended, nothing rewritten


def test_reset_replaces_the_file_with_the_checkpointed_epochs(tmp_path):
    for e in (1, 2, 3):
        history.append(tmp_path, {"epoch": e})
    with open(tmp_path / history.FILE, "ab") as f:
        f.write(b'{"epoch": 4, "tra')  # a torn tail
    history.reset(tmp_path, [{"epoch": 1}])
    assert (tmp_path / history.FILE).read_text() == '{"epoch": 1}\n'
    history.append(tmp_path, {"epoch": 2})
    assert history.read(tmp_path) == [{"epoch": 1}, {"epoch": 2}]


def test_an_unfinished_run_shows_in_flight_with_its_epochs(tmp_path):
    spec = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=4)
    run = store.RunDir(spec, tmp_path)
    run.declare()
    history.append(run.path, {"epoch": 1, "train_loss": 2.0, "test_acc": None})
    history.append(run.path, {"epoch": 2, "train_loss": 1.0, "test_acc": 40.0})
    row = tables.load_results(tmp_path, kind="all").iloc[0]
    assert row["status"] == "pending" and bool(row["in_flight"]) and row["epochs_done"] == 2
    hist = store.load_history(tmp_path)
    assert hist["epoch"].tolist() == [1, 2] and hist["in_flight"].all() and hist["test_acc"].iloc[1] == 40.0


LIVE_JOB = r"""
import json, sys
import torch
torch.set_num_threads(1)
from kdlib import jobs, specs
jobs.materialize(specs.from_dict(json.loads(sys.argv[1])), sys.argv[2], progress=False)
"""


@pytest.mark.training
@pytest.mark.slow
def test_a_training_subprocess_shows_its_epochs_before_it_ends(tmp_path):
    spec = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=6)
    run = store.RunDir(spec, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", LIVE_JOB, json.dumps(specs.to_dict(spec)), str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, frame, hist = [], None, None
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            live = history.read(run.path)
            if live and not run.done:
                frame, hist = tables.load_results(tmp_path, kind="all"), store.load_history(tmp_path)
                if not run.done:  # still training after the frames were read
                    seen = live
                    break
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-2000:]
    assert seen and 1 <= seen[-1]["epoch"] < spec.epochs, seen
    row = frame[frame["run_id"] == run.id].iloc[0]
    assert row["status"] != "done" and bool(row["in_flight"]) and row["epochs_done"] >= seen[-1]["epoch"]
    assert hist["in_flight"].all() and hist["epoch"].tolist()[: len(seen)] == [r["epoch"] for r in seen]
    final = run.result()["history"]
    assert [r["train_loss"] for r in seen] == [r["train_loss"] for r in final[: len(seen)]]  # the same numbers
    assert history.read(run.path) == final  # every epoch, once
    done = tables.load_results(tmp_path, kind="all").iloc[0]
    assert done["status"] == "done" and not done["in_flight"] and done["epochs_done"] == spec.epochs


def _distill_runs(root, temperatures, epochs=4):
    teacher = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=2)
    return [store.RunDir(specs.distill(teacher, "resnet18", t, epochs=epochs), root) for t in temperatures]


def _land(run, acc):
    """Finish a run as train.fit would: the result carries the history the live file showed."""
    run.finish({"test_acc": acc, "history": history.read(run.path)})


def _live_epochs(explorer):
    ep = explorer.epoch_data
    return ep.loc[ep["in_flight"], "epoch"].tolist() if len(ep) else []


def test_the_results_explorer_reloads_on_a_timer_until_the_runs_in_flight_land(tmp_path):
    from kdlib import widgets

    done, live = _distill_runs(tmp_path, [1.0, 4.0])
    for run in (done, live):
        run.declare()
    for e in (1, 2, 3, 4):
        history.append(done.path, {"epoch": e, "test_acc": 50.0 + e})
    _land(done, 54.0)
    history.append(live.path, {"epoch": 1, "test_acc": 52.0})
    explorer = widgets.results_explorer(tables.load_results(tmp_path), history="store", root=tmp_path)
    assert explorer.best_temperature == 1.0 and _live_epochs(explorer) == [1]
    explorer.watch(every=0.05)
    try:
        history.append(live.path, {"epoch": 2, "test_acc": 55.0})
        deadline = time.monotonic() + 30
        while _live_epochs(explorer) != [1, 2] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _live_epochs(explorer) == [1, 2] and explorer.watching
        assert "1 run(s) in flight" in explorer._readout_box.value
        for e in (3, 4):
            history.append(live.path, {"epoch": e, "test_acc": 56.0 + e})
        _land(live, 60.0)
        while explorer.watching and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not explorer.watching  # stopped by itself: nothing left in flight
    finally:
        explorer.stop()
    assert explorer.best_temperature == 4.0 and explorer.readouts["best_accuracy"] == 60.0
    assert _live_epochs(explorer) == [] and sorted(explorer.chart_data["temperature"]) == [1.0, 4.0]


def test_before_any_run_finished_the_explorer_shows_the_runs_in_flight(tmp_path):
    from kdlib import widgets

    runs = _distill_runs(tmp_path, [2.0, 10.0])
    for i, run in enumerate(runs):
        run.declare()
        history.append(run.path, {"epoch": 1, "test_acc": 40.0 + i})
    explorer = widgets.results_explorer(tables.load_results(tmp_path), history="store", root=tmp_path)
    assert explorer.best_temperature is None and explorer.readouts["in_flight"] == 2
    assert "no run finished yet" in repr(explorer._describe())
    assert sorted(explorer.epoch_data["temperature"]) == [2.0, 10.0] and explorer.epoch_data["in_flight"].all()
    assert explorer.static_chart().to_dict()  # the static picture still draws
    with pytest.raises(ValueError, match="history='store'"):
        widgets.results_explorer(tables.load_results(tmp_path), store.load_history(tmp_path)).reload()


LIVE_SWEEP = r"""
import json, sys
import torch
torch.set_num_threads(1)
from kdlib import jobs, specs, store
teacher, student = (specs.from_dict(s) for s in json.loads(sys.argv[1]))
jobs.materialize(teacher, sys.argv[2], progress=False)
store.RunDir(student, sys.argv[2]).declare()
jobs.run_group([student], sys.argv[2], progress=False)
"""


@pytest.mark.training
@pytest.mark.slow
def test_a_watching_explorer_follows_a_distillation_subprocess_until_it_lands(tmp_path):
    from kdlib import widgets

    teacher = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)
    every = specs.preset("mini").eval_every  # test accuracy every few epochs, and at the last
    spec = specs.distill(teacher, "resnet18", 4.0, epochs=2 * every + 1)
    run = store.RunDir(spec, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", LIVE_SWEEP, json.dumps([specs.to_dict(s) for s in (teacher, spec)]),
                             str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    explorer, seen = None, []
    try:
        deadline = time.monotonic() + 900
        frame = tables.load_results(tmp_path)
        while proc.poll() is None and time.monotonic() < deadline and not frame.get("in_flight", pd.Series()).any():
            time.sleep(0.05)
            frame = tables.load_results(tmp_path)
        explorer = widgets.results_explorer(frame, history="store", root=tmp_path, refresh=0.1)
        while proc.poll() is None and time.monotonic() < deadline:
            epochs = _live_epochs(explorer)
            if epochs and epochs != (seen[-1] if seen else None) and not run.done:
                seen.append(epochs)
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-2000:]
        while explorer.watching and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not explorer.watching
    finally:
        if explorer is not None:
            explorer.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert seen and seen[0] == [every] and max(len(s) for s in seen) < 3, seen  # read while it trained
    assert all(a == b[: len(a)] for a, b in zip(seen, seen[1:]))  # curves only grow
    final = run.result()
    assert explorer.best_temperature == 4.0 and explorer.readouts["best_accuracy"] == pytest.approx(final["test_acc"])
    assert _live_epochs(explorer) == [] and explorer.epoch_data["epoch"].tolist() == [
        r["epoch"] for r in final["history"] if r.get("test_acc") is not None]
