"""Run specs: stable ids, grids, presets, and clear errors for bad input."""
import dataclasses

import pytest

from kdlib import specs


def test_run_id_is_stable_and_depends_on_every_field():
    t = specs.teacher("resnet50", "fmnist-fine")
    a = specs.distill(t, "resnet18", temperature=4)
    b = specs.distill(t, "resnet18", temperature=4.0)
    assert specs.run_id(a) == specs.run_id(b)
    assert len(specs.run_id(a)) == 16
    assert specs.run_id(dataclasses.replace(a, seed=1)) != specs.run_id(a)
    assert specs.run_id(dataclasses.replace(a, teacher=dataclasses.replace(t, epochs=3))) != specs.run_id(a)


def test_round_trip_through_dict():
    t = specs.teacher("vit_s", "fmnist-fine")
    d = specs.distill(t, "mnv4", temperature=10, student_init="finetuned", method="kd")
    assert specs.from_dict(specs.to_dict(d)) == d


def test_teacher_origin_and_student_inits_use_the_papers_words():
    t = specs.teacher("resnet50", "fmnist-fine")
    assert t.origin == "finetuned" and t.init.dataset == "fmnist-general"
    assert specs.teacher("resnet50", "fmnist-fine", origin="scratch").origin == "target"
    for init in specs.INITS:
        d = specs.distill(t, "resnet18", temperature=1, student_init=init)
        assert specs.origin(d.student_init) == init


def test_paper_preset_pretraining_is_the_hub():
    t = specs.teacher("resnet50", "pets", preset_name="paper")
    assert t.init == "hub" and t.epochs == 20 and t.lr == 5e-4
    assert specs.teacher("vit_s", "pets", preset_name="paper").lr == 5e-5
    assert specs.teacher("resnet50", "pets", preset_name="paper", tag="resnet50.a1_in1k").init == "hub:resnet50.a1_in1k"
    assert specs.distill(t, "resnet18", temperature=4).epochs == 300


def test_grid_expands_every_combination_and_shares_passes():
    t = specs.teacher("resnet50", "fmnist-fine")
    cells = specs.grid(specs.distill(t, "resnet18", temperature=1), temperature=[1, 2, 4], seed=[0, 1])
    assert len(cells) == 6
    assert len({c.share_key for c in cells}) == 2  # one pass per seed
    assert len(specs.grid(cells[0], temperature=[1, 1.0])) == 1


def test_sgd_uses_the_presets_sgd_settings():
    t = specs.teacher("resnet50", "fmnist-fine")
    assert specs.distill(t, "resnet18", temperature=1, optimizer="sgd").lr == specs.PRESETS["mini"].sgd_lr


@pytest.mark.parametrize("make, match", [
    (lambda t: specs.distill(t, "resnet18", temperature=0), "temperature"),
    (lambda t: specs.distill(t, "resnet18", temperature=-1), "temperature"),
    (lambda t: specs.distill(t, "resnet18", temperature=float("nan")), "temperature"),
    (lambda t: specs.distill(t, "resnet19", temperature=1), "resnet18"),
    (lambda t: specs.distill(t, "resnet18", temperature=1, method="nope"), "kd"),
    (lambda t: specs.distill(t, "resnet18", temperature=1, optimizer="adam"), "adamw"),
    (lambda t: specs.teacher("resnet50", "mnist"), "fmnist-fine"),
    (lambda t: specs.teacher("resnet50", "fmnist-fine", preset_name="huge"), "mini"),
    (lambda t: specs.teacher("resnet50", "fmnist-fine", origin="imagenet"), "scratch"),
    (lambda t: specs.grid(specs.distill(t, "resnet18", temperature=1), temprature=[1]), "temperature"),
    (lambda t: specs.grid(specs.distill(t, "resnet18", temperature=1), temperature=[]), "non-empty"),
    (lambda t: specs.distill(t, "resnet18", temperature=1, batch_size=0), "batch_size"),
])
def test_bad_input_is_a_value_error_that_names_the_choices(make, match):
    t = specs.teacher("resnet50", "fmnist-fine")
    with pytest.raises(ValueError, match=match):
        make(t)
