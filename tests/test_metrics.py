"""The study's measurements, checked against values worked out by hand."""
import math

import numpy as np
import pytest
import torch

from kdlib import metrics


def test_relative_entropy_of_uniform_is_one_and_of_one_hot_is_zero():
    assert metrics.relative_entropy(torch.zeros(3, 7)) == pytest.approx(1.0)
    one_hot = torch.full((2, 5), -1e4)
    one_hot[:, 2] = 1e4
    assert metrics.relative_entropy(one_hot) == pytest.approx(0.0, abs=1e-9)


def test_relative_entropy_matches_numpy():
    z = np.array([[2.0, 1.0, 0.0, -1.0], [0.5, 0.5, 3.0, 0.0]])
    T = 2.0
    p = np.exp(z / T) / np.exp(z / T).sum(1, keepdims=True)
    h = -(p * np.log(p)).sum(1) / math.log(4)
    assert metrics.relative_entropy(torch.tensor(z), T) == pytest.approx(h.mean(), rel=1e-9)
    # H_-max: drop the argmax, renormalize, over log(C - 1)
    rest = []
    for row in p:
        r = np.delete(row, row.argmax())
        r = r / r.sum()
        rest.append(-(r * np.log(r)).sum() / math.log(3))
    assert metrics.relative_entropy_without_max(torch.tensor(z), T) == pytest.approx(np.mean(rest), rel=1e-9)


def test_one_hot_like_teacher_has_low_h_all_and_high_h_minus_max():
    """Paper Sect. 4.3: long finetuning drives H_all to 0 and H_-max to 1 (label-smoothing-like)."""
    z = torch.zeros(4, 10)
    z[:, 0] = 30.0
    assert metrics.relative_entropy(z) < 0.01
    assert metrics.relative_entropy_without_max(z) == pytest.approx(1.0)


def test_accuracy():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.1]])
    assert metrics.accuracy(logits, torch.tensor([0, 1, 1, 0])) == pytest.approx(75.0)


def test_sorted_profile_flattens_with_temperature():
    torch.manual_seed(0)
    z = torch.randn(64, 10) * 4
    p1, p40 = metrics.sorted_profile(z, 1), metrics.sorted_profile(z, 40)
    assert torch.all(p1[:-1] >= p1[1:]) and torch.all(p40[:-1] >= p40[1:])
    assert p1.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (p40.max() - p40.min()) < (p1.max() - p1.min())


def test_profile_gaps_by_hand():
    z = torch.tensor([[3.0, 1.0, 0.0, -1.0]])
    e = np.exp([3.0, 1.0, 0.0, -1.0])
    p = e / e.sum()
    gaps = metrics.profile_gaps(z, 1.0)
    assert gaps["top_gap"] == pytest.approx(p[0] - p[1], rel=1e-6)
    assert gaps["bottom_spread"] == pytest.approx(p[2] - p[3], rel=1e-6)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="temperature"):
        metrics.relative_entropy(torch.zeros(2, 3), 0)
    with pytest.raises(ValueError, match="shape"):
        metrics.relative_entropy(torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        metrics.accuracy(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))


def test_teacher_summary_of_two_classes_has_no_h_minus_max_but_the_rest():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    summary = metrics.teacher_summary(logits, torch.tensor([0, 0]))
    assert summary["h_minus_max"] is None and summary["accuracy"] == 50.0
    p = torch.softmax(logits, 1)
    assert summary["h_all"] == pytest.approx((-(p * p.log()).sum(1) / math.log(2)).mean().item())
