"""The results store: atomic files, checkpoints that are verified, results as a DataFrame."""
import json

import pytest
import torch

from kdlib import specs, store, tables


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
    frame = tables.load_results(tmp_path)
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


# ----------------------------------------------------------------------------- everything trusted is verified

def _supervised_run(root, **kwargs):
    return store.RunDir(specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1, **kwargs), root)


def test_final_weights_carry_their_sha256_and_the_run_id_inside(tmp_path):
    import hashlib
    run = _supervised_run(tmp_path)
    run.begin()
    model = torch.nn.Linear(3, 2)
    run.finish({"test_acc": 50.0, "history": []}, weights=model)
    meta = json.loads((run.path / "weights.json").read_text())
    assert meta["sha256"] == hashlib.sha256((run.path / "model.pt").read_bytes()).hexdigest()
    raw = torch.load(run.path / "model.pt", weights_only=True)
    assert raw[store.SPEC_KEY] == run.id and meta["spec_id"] == run.id
    state = run.weights()
    assert sorted(state) == ["bias", "weight"] and torch.equal(state["weight"], model.weight.detach())


def test_bit_flipped_weights_are_set_aside_with_their_result_so_the_run_trains_again(tmp_path, capsys):
    run = _supervised_run(tmp_path)
    run.begin()
    run.finish({"test_acc": 50.0, "history": []}, weights=torch.nn.Linear(3, 2))
    raw = bytearray((run.path / "model.pt").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (run.path / "model.pt").write_bytes(bytes(raw))
    with pytest.raises(store.Untrusted, match="sha256 mismatch"):
        run.weights()
    assert not run.done and run.status == "pending"
    assert sorted(p.name.split(".corrupt-")[0] for p in run.path.glob("*.corrupt-*")) == [
        "model.pt", "result.json", "weights.json"]
    assert capsys.readouterr().out.count("model.pt unusable (sha256 mismatch)") == 1


def test_weights_copied_from_another_run_are_detected_by_the_run_id_inside(tmp_path, capsys):
    mine, other = _supervised_run(tmp_path), _supervised_run(tmp_path, seed=1)
    for r in (mine, other):
        r.begin()
        r.finish({"test_acc": 50.0, "history": []}, weights=torch.nn.Linear(3, 2))
    for name in ("model.pt", "weights.json", "result.json"):  # a whole result copied over by hand
        (mine.path / name).write_bytes((other.path / name).read_bytes())
    with pytest.raises(store.Untrusted, match=f"belongs to run {other.id}"):
        mine.weights()
    assert not mine.done and len(list(mine.path.glob("model.pt.foreign-*"))) == 1
    assert other.weights()  # the owner's own copy is untouched and trusted
    out = capsys.readouterr().out
    assert out.count(f"belongs to run {other.id}") == 1


def test_a_checkpoint_copied_from_another_run_is_set_aside_once_and_the_run_falls_back(run, tmp_path, capsys):
    other = store.RunDir(specs.distill(run.spec.teacher, "resnet18", temperature=40), tmp_path)
    for r in (run, other):
        r.begin()
        r.save_checkpoint({"epoch": 1, "who": torch.tensor(1.0)}, 1)
    run.save_checkpoint({"epoch": 2}, 2)
    other.save_checkpoint({"epoch": 2}, 2)
    for name in ("ckpt-2.pt", "state.json"):  # hashes that match: only the id inside tells
        (run.path / name).write_bytes((other.path / name).read_bytes())
    (run.path / "ckpt-1.pt").unlink()
    assert run.load_checkpoint() is None  # ckpt-2 is foreign, ckpt-1 gone: start over, no raw error
    assert len(list(run.path.glob("ckpt-2.pt.foreign-*"))) == 1
    assert run.load_checkpoint() is None
    out = capsys.readouterr().out
    assert out.count(f"belongs to run {other.id}, not {run.id}") == 1
    assert other.load_checkpoint()["epoch"] == 2


def test_a_failure_from_bad_input_is_marked_not_retryable_and_others_retryable(run, tmp_path):
    run.fail(ValueError("dataset 'imagefolder:x': class 'cat' has no test images"))
    assert run.failed and not run.retryable
    other = store.RunDir(specs.distill(run.spec.teacher, "resnet18", temperature=40), tmp_path)
    other.fail(RuntimeError("CUDA out of memory"))
    assert other.failed and other.retryable


def test_weights_of_runs_written_before_checksums_existed_still_load(tmp_path):
    run = _supervised_run(tmp_path)
    run.begin()
    torch.save({"weight": torch.ones(2, 3)}, run.path / "model.pt")  # the old layout: no weights.json, no id
    (run.path / "result.json").write_text("{}")
    assert torch.equal(run.weights()["weight"], torch.ones(2, 3))
