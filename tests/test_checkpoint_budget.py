"""Checkpoints on a cost budget: when a write is due, and the switch that sets the budget."""
import math
import os

import pytest
import torch

from kdlib import train


def test_a_checkpoint_is_due_when_its_last_write_cost_at_most_the_budget_share_of_training_since():
    assert train.checkpoint_due(0.0, 0.0, 0.05)          # no write yet: the first one is free
    assert train.checkpoint_due(0.5, 10.0, 0.05)         # 0.5 s <= 5 % of 10 s
    assert not train.checkpoint_due(0.6, 10.0, 0.05)     # 0.6 s > 0.5 s
    assert train.checkpoint_due(100.0, 0.0, math.inf)    # inf: every epoch, whatever it costs
    assert not train.checkpoint_due(0.1, 1e6, 0.0)       # 0: after the first, none


@pytest.mark.parametrize("text, value", [("", 0.05), ("0", 0.0), ("0.2", 0.2), ("inf", math.inf), (" 1 ", 1.0)])
def test_the_budget_comes_from_KDLIB_CHECKPOINT_BUDGET(monkeypatch, text, value):
    monkeypatch.setenv("KDLIB_CHECKPOINT_BUDGET", text)
    assert train.checkpoint_budget() == value


@pytest.mark.parametrize("text", ["-1", "often", "nan"])
def test_a_bad_budget_is_refused_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv("KDLIB_CHECKPOINT_BUDGET", text)
    with pytest.raises(ValueError, match="KDLIB_CHECKPOINT_BUDGET"):
        train.checkpoint_budget()


def test_the_grid_benchmarks_today_settings_win_over_the_users(monkeypatch):
    from kdlib import bench_grid, numerics
    cpu = torch.device("cpu")
    monkeypatch.setenv("KDLIB_CHECKPOINT_BUDGET", "0.2")
    monkeypatch.setenv("KDLIB_MEMBER_THREADS", "2")
    with bench_grid._as_today():
        assert train.checkpoint_budget() == float("inf")
        assert numerics.member_threads(cpu) == 1
    assert train.checkpoint_budget() == 0.2  # the user's values are back
    assert numerics.member_threads(cpu) == 2
    monkeypatch.delenv("KDLIB_CHECKPOINT_BUDGET")
    monkeypatch.delenv("KDLIB_MEMBER_THREADS")
    with bench_grid._as_today():
        assert train.checkpoint_budget() == float("inf")
    assert "KDLIB_CHECKPOINT_BUDGET" not in os.environ and "KDLIB_MEMBER_THREADS" not in os.environ
    assert train.checkpoint_budget() == train.CHECKPOINT_BUDGET


@pytest.mark.parametrize("k", [1, 10])
def test_a_passs_checkpoints_stay_within_the_budget_whatever_its_member_count(tmp_path, monkeypatch, k):
    """Each member is credited with its share of the pass's time, so K members' writes together cost about
    the budget's share of the pass (credited the whole epoch each, 10 members wrote every third epoch: 41 %)."""
    from types import SimpleNamespace

    clock = [0.0]
    monkeypatch.setattr(train, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.delenv("KDLIB_CHECKPOINT_BUDGET", raising=False)
    writes = []

    def run(i):
        folder = tmp_path / f"k{k}-{i}"
        folder.mkdir()

        def save_checkpoint(state, epoch):
            clock[0] += 0.031     # a write costs 31 ms
            writes.append(epoch)
        return SimpleNamespace(path=folder, save_checkpoint=save_checkpoint)

    now = [SimpleNamespace(run=run(i), epochs=10**6, history=[], objective=None, loss_sum=torch.zeros(()),
                           since_save=0.0, save_cost=0.0, state=lambda epoch: {}) for i in range(k)]
    stream = SimpleNamespace(eval_every=10**6, val_set=None)
    epochs, epoch_s = 200, 0.25   # the pass's seconds per epoch, all members together
    for epoch in range(epochs):
        train._end_epoch(stream, now, epoch, steps=1, seconds=epoch_s, keep_last=False)
    after_first = len(writes) - k  # the first write of each member measures its cost
    assert 0 < after_first * 0.031 <= train.CHECKPOINT_BUDGET * epochs * epoch_s
    assert after_first * 0.031 >= 0.5 * train.CHECKPOINT_BUDGET * epochs * epoch_s  # and uses it
