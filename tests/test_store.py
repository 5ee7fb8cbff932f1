"""The results store: atomic files, checkpoints that are verified, results as a DataFrame."""
import json

import pytest
import torch

from kdlib import specs, store


@pytest.fixture
def run(tmp_path):
    t = specs.teacher("resnet50", "fmnist-fine")
    return store.RunDir(specs.distill(t, "resnet18", temperature=4), tmp_path)


def test_checkpoints_keep_the_last_two_and_the_newest_loads(run):
    run.begin()
    for epoch in (1, 2, 3):
        run.save_checkpoint({"epoch": epoch, "w": torch.full((2,), float(epoch))}, epoch)
    files = sorted(p.name for p in run.path.glob("ckpt-*.pt"))
    assert files == ["ckpt-2.pt", "ckpt-3.pt"]
    assert run.load_checkpoint()["epoch"] == 3


def test_a_corrupt_checkpoint_is_set_aside_and_the_previous_one_used(run):
    run.begin()
    run.save_checkpoint({"epoch": 1}, 1)
    run.save_checkpoint({"epoch": 2}, 2)
    data = bytearray((run.path / "ckpt-2.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run.path / "ckpt-2.pt").write_bytes(bytes(data))
    assert run.load_checkpoint()["epoch"] == 1
    assert list(run.path.glob("ckpt-2.pt.corrupt-*"))
    (run.path / "ckpt-1.pt").write_bytes(b"truncated")
    assert run.load_checkpoint() is None


def test_finish_marks_done_and_removes_checkpoints(run):
    run.begin()
    run.save_checkpoint({"epoch": 1}, 1)
    run.finish({"test_acc": 80.0, "history": [{"epoch": 1, "test_acc": 80.0}]})
    assert run.done and not list(run.path.glob("ckpt-*"))
    assert json.loads((run.path / "spec.json").read_text())["kind"] == "Distill"


def test_load_results_has_spec_columns_status_and_history(run, tmp_path):
    run.begin()
    run.finish({"test_acc": 81.5, "history": [{"epoch": 1, "test_acc": 70.0}, {"epoch": 2, "test_acc": 81.5}]})
    failed = store.RunDir(specs.distill(run.spec.teacher, "resnet18", temperature=40), tmp_path)
    failed.fail(RuntimeError("boom"))
    frame = store.load_results(tmp_path)
    assert set(frame["status"]) == {"done", "failed"}
    row = frame[frame["status"] == "done"].iloc[0]
    assert row["temperature"] == 4.0 and row["test_acc"] == 81.5 and row["student_init"] == "random"
    assert row["teacher"] == "resnet50" and row["teacher_origin"] == "finetuned"
    assert "boom" in frame[frame["status"] == "failed"].iloc[0]["error"]
    hist = store.load_history(tmp_path)
    assert list(hist["test_acc"]) == [70.0, 81.5]


def test_unwritable_root_is_a_value_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("not a folder")
    with pytest.raises(ValueError, match="not writable"):
        store.check_root(target / "store")
