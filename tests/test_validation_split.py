"""The validation split: stratified, disjoint, seeded by the data only; run ids unchanged at its default."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from kdlib import data, jobs, specs, tables
from kdlib.data.split import stratified_split

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)


def _labels(counts):
    """Labels with ``counts[k]`` items of class k, shuffled by a generator of the test's own."""
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(123))]


def test_each_class_holds_out_its_rounded_share():
    counts = [100, 37, 5, 2, 1]
    y = _labels(counts)
    train, val = stratified_split(y, 0.1)
    held = torch.bincount(y[val], minlength=len(counts)).tolist()
    # by hand: round(0.1 * count), at least one for a class of two or more, never the whole class
    assert held == [10, 4, 1, 1, 0]
    assert torch.bincount(y[train], minlength=len(counts)).tolist() == [90, 33, 4, 1, 1]


def test_train_and_val_parts_are_disjoint_and_cover_the_split():
    y = _labels([50, 50, 50])
    train, val = stratified_split(y, 0.2)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(len(y)))


def test_the_split_is_deterministic_and_moves_with_its_seed_only():
    y = _labels([40, 40, 40])
    a, b = stratified_split(y, 0.25, seed=0), stratified_split(y, 0.25, seed=0)
    assert torch.equal(a[1], b[1])
    assert not torch.equal(a[1], stratified_split(y, 0.25, seed=1)[1])


def test_a_fraction_of_zero_keeps_the_whole_train_split():
    y = _labels([3, 3])
    train, val = stratified_split(y, 0.0)
    assert train.tolist() == list(range(6)) and val.numel() == 0


@pytest.mark.parametrize("bad", [-0.1, 0.5, 1.0, float("nan"), "0.1", True])
def test_a_bad_fraction_is_refused_with_the_fix(bad):
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(_labels([4, 4]), bad)


def test_the_mini_validation_part_is_stratified_and_outside_what_is_trained_on():
    full = data.build_dataset("fmnist-fine", "train", train_transform=False)
    rest = data.build_dataset("fmnist-fine", "train", train_transform=False, val_fraction=0.1)
    val = data.build_dataset("fmnist-fine", "val", val_fraction=0.1)
    assert len(rest) + len(val) == len(full)
    assert torch.bincount(val.labels).tolist() == [round(0.1 * c) for c in torch.bincount(full.labels).tolist()]
    # the same Fashion-MNIST images cannot be in both parts
    rest_ids = {full.indices[p].item() for p in rest.positions}
    val_ids = {full.indices[p].item() for p in val.positions}
    assert rest_ids.isdisjoint(val_ids) and len(rest_ids | val_ids) == len(full)
    image, label = val[0]
    assert torch.equal(image, full[val.positions[0]][0]) and label == int(full.labels[val.positions[0]])


def test_val_split_without_a_fraction_says_how_to_ask_for_one():
    with pytest.raises(ValueError, match="val_fraction > 0"):
        data.build_dataset("fmnist-fine", "val")


def test_run_ids_are_unchanged_at_the_default_fraction():
    spec = specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=1)
    assert "val_fraction" not in specs.to_dict(spec) and "val_fraction" not in specs.to_dict(TEACHER)
    assert specs.run_id(spec) == specs.run_id(dataclasses.replace(spec, val_fraction=0))
    held = dataclasses.replace(spec, val_fraction=0.1)
    assert specs.run_id(held) != specs.run_id(spec)
    assert specs.to_dict(held)["val_fraction"] == 0.1
    assert specs.from_dict(specs.to_dict(held)) == held
    assert held.share_key != spec.share_key  # another data stream: no pass or logit cache mixes them
    # pinned when the field was added: the default leaves the ids of every stored run as they were
    assert (specs.run_id(spec), specs.run_id(held)) == ("85a8a606c0fba483", "68ab325eee679ecc")
    assert specs.run_id(TEACHER) == "5b2d6b84a8e48b6a"
    assert specs.run_id(dataclasses.replace(TEACHER, val_fraction=0.1)) != specs.run_id(TEACHER)


def test_a_bad_fraction_on_a_spec_is_refused():
    with pytest.raises(ValueError, match="val_fraction"):
        specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=1, val_fraction=0.7)


def test_a_batch_must_fit_in_what_is_left_after_the_validation_part():
    # fmnist-fine trains on 1000 images; holding out 40 % leaves 600, so a batch of 800 fits only without it
    specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=1, batch_size=800)
    with pytest.raises(ValueError, match="larger than the 600 training images"):
        specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=1, batch_size=800, val_fraction=0.4)


@pytest.mark.training
def test_a_run_with_a_validation_part_records_val_acc_beside_test_acc(tmp_path):
    spec = specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=1, val_fraction=0.1)
    plain = specs.distill(TEACHER, "resnet18", temperature=4.0, epochs=1)
    jobs.run_group([spec], tmp_path, progress=False)
    jobs.run_group([plain], tmp_path, progress=False)
    frame = tables.load_results(tmp_path).set_index("run_id")
    row = frame.loc[specs.run_id(spec)]
    assert 0 <= row["val_acc"] <= 100 and 0 <= row["test_acc"] <= 100
    n_val = len(data.build_dataset("fmnist-fine", "val", val_fraction=0.1))
    correct = row["val_acc"] * n_val / 100  # scored on the held-out part: a whole number of its images
    assert n_val == 100 and abs(correct - round(correct)) < 1e-6
    assert row["val_fraction"] == 0.1
    assert frame.loc[specs.run_id(plain)].isna()["val_acc"]  # the paper's protocol: no validation part
