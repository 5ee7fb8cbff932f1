"""Students stepped at once on a CPU's cores give the numbers of students stepped in turn.

The reference is the in-turn loop at one torch thread (each step's thread count then equals a
threaded step's); the threaded pass runs with two torch threads, so two students step at once.
A student whose loss draws random numbers (bottom-k targets) keeps stepping in turn on its own RNG.
"""
import os
import shutil

import pytest
import torch

from kdlib import jobs, numerics, runs, specs, store

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=0)
pytestmark = pytest.mark.training


def grid():
    return [specs.distill(TEACHER, "resnet18", temperature=t, epochs=e, optimizer="adamw")
            for e in (1, 2) for t in (1.0, 4.0)] + [
        specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=2, method_args={"targets": "bottom-k", "k": 3})]


def train(folder, threads, monkeypatch, member_threads):
    monkeypatch.setenv("KDLIB_MEMBER_THREADS", member_threads)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        jobs.materialize(TEACHER, folder, progress=False)
        runs.ensure(grid(), root=folder, progress=False, logit_cache=False)
    finally:
        torch.set_num_threads(old)
    out = {}
    for spec in grid():
        r = store.RunDir(spec, folder).result()
        weights = store.RunDir(spec, folder).path / "weights.safetensors"
        out[specs.run_id(spec)] = ([(h["train_loss"], h["test_acc"]) for h in r["history"]], r["member_threads"],
                                   weights.read_bytes() if weights.exists() else None)
    return out


def test_threaded_students_equal_students_in_turn(tmp_path, monkeypatch):
    in_turn = train(tmp_path / "in_turn", 1, monkeypatch, "1")
    together = train(tmp_path / "together", 2, monkeypatch, "2")
    assert in_turn.keys() == together.keys()
    for rid in in_turn:
        assert together[rid][0] == in_turn[rid][0], rid  # every epoch's loss and accuracy, bit for bit
        assert together[rid][2] == in_turn[rid][2], rid
        assert (in_turn[rid][1], together[rid][1]) == (1, 2)


def test_member_threads_setting(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("KDLIB_MEMBER_THREADS", "auto")
    assert numerics.member_threads(cpu) == torch.get_num_threads()
    monkeypatch.setenv("KDLIB_MEMBER_THREADS", "3")
    assert numerics.member_threads(cpu) == 3
    assert numerics.member_threads(torch.device("cuda")) == 1  # GPU kernels are asynchronous already
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("KDLIB_MEMBER_THREADS", bad)
        with pytest.raises(ValueError, match="KDLIB_MEMBER_THREADS"):
            numerics.member_threads(cpu)


@pytest.mark.parametrize("name", ["KDLIB_MEMBER_THREADS", "KDLIB_CHECKPOINT_BUDGET"])
def test_a_bad_switch_fails_before_anything_trains(tmp_path, monkeypatch, name):
    monkeypatch.setenv(name, "lots")
    with pytest.raises(ValueError, match=name):
        runs.ensure(grid(), root=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # nothing declared, nothing trained
