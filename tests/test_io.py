"""kdlib.io: a write lands whole or not at all, and leaves no temp file behind."""
import json

import pytest
import torch

from kdlib import io


def test_json_is_written_sorted_and_readable(tmp_path):
    path = tmp_path / "sub" / "a.json"  # missing folders are created
    io.atomic_write_json(path, {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_an_interrupted_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    io.atomic_write_text(path, "old")

    def torn(f, data):
        f.write(data[: len(data) // 2])
        raise KeyboardInterrupt  # a kill between the bytes and os.replace

    monkeypatch.setattr(io, "_write", torn)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_text(path, "a much newer content")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_torch_save_returns_exactly_the_bytes_on_disk(tmp_path):
    path = tmp_path / "w.pt"
    data = io.atomic_torch_save({"w": torch.arange(4.0)}, path)
    assert path.read_bytes() == data
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(4.0))


def test_a_write_refused_for_space_keeps_the_old_file_names_the_folder_and_leaves_no_temp(tmp_path, monkeypatch):
    import errno
    import os
    target = tmp_path / "run" / "state.json"
    io.atomic_write_json(target, {"checkpoints": [1]})

    def quota(f, data):
        f.write(data[:3])
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(io, "_write", quota)
    with pytest.raises(io.DiskFull) as err:
        io.atomic_write_json(target, {"checkpoints": [1, 2]})
    assert err.value.errno == errno.EDQUOT and f"cannot write state.json in {target.parent}" in str(err.value)
    assert "the disk quota is exceeded" in str(err.value) and "Make room for at least" in str(err.value)
    assert json.loads(target.read_text()) == {"checkpoints": [1]}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]
