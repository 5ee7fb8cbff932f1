"""Live history: each epoch lands in ``history.jsonl`` as one whole line, readable while the run trains."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

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
