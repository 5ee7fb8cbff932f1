"""The store index: load_results reads finished runs from one parquet file, and never trusts it blindly."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from kdlib import history, specs, store, store_index, tables

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)
TEMPS = (1.0, 2.0, 4.0, 10.0)


@pytest.fixture
def root(tmp_path):
    """A teacher, four finished students (test_acc 60 + T), one pending and one in-flight student."""
    t = store.RunDir(TEACHER, tmp_path)
    t.declare()
    t.finish({"test_acc": 91.0, "train_h_all": 0.2, "train_h_minus_max": 0.5, "history": []})
    for temp in TEMPS:
        r = store.RunDir(specs.distill(TEACHER, "resnet18", temperature=temp, epochs=3), tmp_path)
        r.declare()
        r.finish({"test_acc": 60 + temp, "history": [{"epoch": e, "test_acc": 50 + e} for e in (1, 2, 3)]})
    store.RunDir(specs.distill(TEACHER, "resnet18", temperature=40.0, epochs=3), tmp_path).declare()
    live = store.RunDir(specs.distill(TEACHER, "resnet18", temperature=20.0, epochs=3), tmp_path)
    live.declare()
    history.append(live.path, {"epoch": 1, "test_acc": None, "train_loss": 1.0})
    return tmp_path


def counting_reads(monkeypatch) -> list[str]:
    """The run folders load_results opens (every other row comes from the index)."""
    opened, row = [], tables._row

    def counted(run):
        opened.append(run.name)
        return row(run)

    monkeypatch.setattr(tables, "_row", counted)
    return opened


def expected(root) -> dict[str, tuple[str, float | None]]:
    """status and test_acc per student, from the files themselves."""
    out = {}
    for spec_file in root.glob("*/spec.json"):
        if json.loads(spec_file.read_text())["kind"] != "Distill":
            continue
        result = spec_file.parent / "result.json"
        acc = json.loads(result.read_text())["test_acc"] if result.is_file() else None
        out[spec_file.parent.name] = ("done" if acc is not None else "pending", acc)
    return out


def summary(frame) -> dict[str, tuple[str, float | None]]:
    return {r.run_id: (r.status, None if r.test_acc != r.test_acc else r.test_acc) for r in frame.itertuples()}


def test_a_second_load_reads_only_the_unfinished_folders(root, monkeypatch):
    first = tables.load_results(root)
    assert store_index.path(root, "distill").is_file() and store_index.path(root, "supervised").is_file()
    opened = counting_reads(monkeypatch)
    second = tables.load_results(root)
    unfinished = {k for k, (status, _) in expected(root).items() if status != "done"}
    assert set(opened) == unfinished and len(unfinished) == 2
    assert summary(first) == summary(second) == expected(root)
    pd.testing.assert_frame_equal(second, first, check_dtype=False)  # None and NaN alike: missing


def test_indexed_rows_keep_their_types_and_the_teachers_numbers(root):
    tables.load_results(root)
    frame = tables.load_results(root)
    done = frame[frame["status"] == "done"]
    assert str(frame["epochs"].dtype) == "int64" and str(frame["teacher_epochs"].dtype) == "int64"
    assert sorted(done["temperature"]) == list(TEMPS) and (done["teacher_acc"] == 91.0).all()
    assert "arch" not in frame  # no supervised column in a distillation table
    live = frame[frame["in_flight"]]
    assert len(live) == 1 and live["temperature"].iloc[0] == 20.0 and live["epochs_done"].iloc[0] == 1


def test_a_refinished_set_aside_or_removed_run_is_read_again_not_trusted(root, monkeypatch):
    import shutil

    import torch

    tables.load_results(root)
    done = tables.load_results(root).query("status == 'done'")["run_id"].tolist()
    by_id = {store.RunDir(s, root).id: s for s in (specs.distill(TEACHER, "resnet18", temperature=t, epochs=3)
                                                     for t in TEMPS)}
    refinished, untrusted, removed = (store.RunDir(by_id[i], root) for i in done[:3])
    untrusted.finish({"test_acc": 1.0, "history": []}, weights=torch.nn.Linear(2, 2))
    tables.load_results(root)  # indexed with its weights
    refinished.finish({"test_acc": 12.5, "history": []})  # e.g. retrained after its result was set aside
    (untrusted.path / "model.pt").write_bytes(b"damaged")
    with pytest.raises(store.Untrusted):
        untrusted.weights()  # sets the result aside: the run is no longer done
    shutil.rmtree(removed.path)
    opened = counting_reads(monkeypatch)
    again = tables.load_results(root)
    assert {refinished.id, untrusted.id} <= set(opened) and removed.id not in set(again["run_id"])
    assert summary(again) == expected(root)
    assert summary(again)[refinished.id] == ("done", 12.5) and summary(again)[untrusted.id][0] == "pending"
    assert store_index._changes(root) == []  # the markers were read and cleared


def test_a_hand_edited_result_is_seen_with_verify(root):
    tables.load_results(root)
    run_id = tables.load_results(root).query("status == 'done'")["run_id"].iloc[0]
    result = json.loads((root / run_id / "result.json").read_text())
    (root / run_id / "result.json").write_text(json.dumps({**result, "test_acc": 33.0}) + "  ")
    assert summary(tables.load_results(root, verify=True))[run_id] == ("done", 33.0)
    assert summary(tables.load_results(root))[run_id] == ("done", 33.0)  # the index now holds the new row


@pytest.mark.parametrize("damage", ["missing", "garbage", "other-format"])
def test_a_missing_damaged_or_outdated_index_is_rebuilt_from_the_folders(root, monkeypatch, damage):
    clean = tables.load_results(root)
    file = store_index.path(root, "distill")
    if damage == "missing":
        file.unlink()
    elif damage == "garbage":
        file.write_bytes(b"PAR1 not really parquet")
    else:
        monkeypatch.setattr(tables, "ROWS_VERSION", "older")
    opened = counting_reads(monkeypatch)
    rebuilt = tables.load_results(root)
    assert len(opened) == len(expected(root)) + (1 if damage == "other-format" else 0)  # + the teacher's folder
    pd.testing.assert_frame_equal(rebuilt, clean, check_dtype=False)
    assert store_index.load(root, "distill", tables.ROWS_VERSION) is not None  # written again


def test_rows_for_given_run_ids_read_no_other_folder_and_keep_the_rest_indexed(root, monkeypatch):
    ids = sorted(expected(root))
    opened = counting_reads(monkeypatch)
    some = tables.load_results(root, kind="all", run_ids=ids[:2])
    assert set(opened) <= set(ids[:2]) and list(some["run_id"]) == ids[:2]
    full = tables.load_results(root)
    assert summary(full) == expected(root)


def test_a_method_without_temperature_read_beside_indexed_kd_runs_gives_float_temperatures(tmp_path):
    """Indexed KD rows (float T) concatenated with a fresh method row (T None) must not turn T into objects."""
    t = store.RunDir(TEACHER, tmp_path)
    t.declare()
    t.finish({"test_acc": 91.0, "train_h_all": 0.2, "train_h_minus_max": 0.5, "history": []})

    def finish(spec):
        r = store.RunDir(spec, tmp_path)
        r.declare()
        r.finish({"test_acc": 70.0, "history": []})

    finish(specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=3))
    tables.load_results(tmp_path)  # the KD run goes into the index
    finish(specs.distill(TEACHER, "resnet18", temperature=None, method="dist", epochs=3))
    for reading in ("index + folder", "index"):
        frame = tables.load_results(tmp_path)
        assert pd.api.types.is_float_dtype(frame["temperature"]), (reading, frame["temperature"].tolist())
        assert sorted(frame["temperature"].fillna(-1).tolist()) == [-1.0, 4.0], reading
        assert pd.api.types.is_float_dtype(frame["teacher_acc"]) and (frame["teacher_acc"] == 91.0).all()


def test_the_index_rows_meeting_folder_rows_keep_number_columns_as_floats(tmp_path):
    """store_index.rows itself (before tables' last normalization): T None beside indexed floats is NaN, a float column."""
    def finish(spec, acc):
        r = store.RunDir(spec, tmp_path)
        r.declare()
        r.finish({"test_acc": acc, "history": []})

    finish(specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=3), 70.0)
    store_index.rows(tmp_path, None, ("distill", "supervised"), tables._row, tables.ROWS_VERSION)  # indexed now
    finish(specs.distill(TEACHER, "resnet18", temperature=None, method="dist", epochs=3), 71.0)
    frame = store_index.rows(tmp_path, None, ("distill", "supervised"), tables._row, tables.ROWS_VERSION)["distill"]
    assert frame["temperature"].dtype == float and frame["test_acc"].dtype == float
    assert sorted(frame["temperature"].fillna(-1)) == [-1.0, 4.0] and sorted(frame["test_acc"]) == [70.0, 71.0]
    assert not pd.api.types.is_numeric_dtype(frame["method"])  # text stays text
