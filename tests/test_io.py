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
