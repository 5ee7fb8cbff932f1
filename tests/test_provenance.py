"""Every result records which code, libraries and device made it; tables warn when they mix code versions."""
import json
import subprocess
import time
import tomllib
import warnings
from pathlib import Path

import pytest
import timm
import torch
import torchvision

from kdlib import provenance, specs, store, tables

REPO = Path(__file__).resolve().parents[1]
SPEC = specs.distill(specs.teacher("resnet50", "fmnist-fine", epochs=2), "resnet18", 4.0, epochs=2)


def git(*args):
    """git's answer about this checkout, or None outside a git checkout (an unpacked archive)."""
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def test_the_record_names_kdlib_its_commit_and_the_libraries():
    rec = provenance.record()
    assert rec["kdlib_version"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    commit = git("rev-parse", "HEAD")
    assert rec["kdlib_commit"] == commit
    assert rec["kdlib_dirty"] is (None if commit is None else bool(git("status", "--porcelain", "--untracked-files=no")))
    assert rec["torch_version"] == torch.__version__ and rec["torch_cuda"] == torch.version.cuda
    assert rec["torchvision_version"] == torchvision.__version__
    assert rec["timm_version"] == timm.__version__


def test_git_is_asked_once_per_process(monkeypatch):
    provenance.record.cache_clear()
    calls = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = provenance.record()
    assert provenance.record() is first and provenance.record() == first
    assert len(calls) == 2  # rev-parse and status, once


def test_a_finished_run_records_provenance_and_wall_time(tmp_path):
    run = store.RunDir(SPEC, tmp_path)
    run.begin()
    time.sleep(0.2)
    run.finish({"test_acc": 50.0, "device": "cpu", "history": []})
    result = run.result()
    assert {k: result[k] for k in provenance.record()} == provenance.record()
    assert result["device"] == "cpu" and 0.2 <= result["wall_seconds"] < 60


def finished_run(root, temperature, record=None):
    spec = specs.distill(SPEC.teacher, "resnet18", temperature, epochs=2)
    run = store.RunDir(spec, root)
    run.declare()
    (run.path / "result.json").write_text(json.dumps({"test_acc": 50.0, **(record or {})}))


def test_load_results_shows_the_columns_even_for_older_runs(tmp_path):
    finished_run(tmp_path, 1.0)  # written by a kdlib that kept no provenance
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = tables.load_results(tmp_path)
    assert set(provenance.COLUMNS) <= set(frame.columns)
    assert frame["kdlib_commit"].isna().all()


def test_mixed_code_versions_warn_once_naming_them(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_warned", set())
    finished_run(tmp_path, 1.0)
    finished_run(tmp_path, 4.0, {**provenance.record(), "device": "cpu"})
    finished_run(tmp_path, 8.0, {**provenance.record(), "kdlib_commit": "0123456789abcdef", "kdlib_dirty": True})
    with pytest.warns(UserWarning, match="3 code versions") as caught:
        tables.load_results(tmp_path)
    text = str(caught[0].message)
    assert provenance.UNRECORDED in text and "@ 0123456789 (dirty)" in text
    assert f"@ {provenance.record()['kdlib_commit'][:10]}" in text or provenance.record()["kdlib_commit"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same mix again: silent
        tables.load_results(tmp_path)


def test_one_code_version_is_silent(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_warned", set())
    for t in (1.0, 4.0):
        finished_run(tmp_path, t, provenance.record())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert provenance.warn_mixed_versions(tables.load_results(tmp_path)) == {
            provenance.code_version(provenance.record()): 2}
