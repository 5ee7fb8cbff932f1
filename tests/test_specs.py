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


# ----------------------------------------------------------------------------- notebook parameters (the study notebooks' cells)

GOOD = dict(datasets=["fmnist-fine"], teachers=["resnet50"], students=["resnet18"], temperatures=[1, 4.0, 40],
            seeds=[0, 1], optimizers=["adamw", "sgd"], batch_sizes=[64, 256], duration_fractions=[0.0625, 1],
            finetune_fractions=[0.25, 2.0], distill_epochs=16, teacher_epochs=None, student_inits=list(specs.INITS),
            teacher_origins=["finetuned", "scratch"], executor="local", slurm={}, output_dir="02",
            plateau_tolerance=1.0, pretrain_corpora={"fmnist-fine": ["fmnist-general", None]})


def test_check_parameters_accepts_the_defaults():
    specs.check_parameters("mini", **GOOD)
    specs.check_parameters("paper", datasets=["pets", "cars"], teachers=["vit_s"], pretrain_corpora={})


@pytest.mark.parametrize("name, value, match", [
    ("datasets", "fmnist-fine", "non-empty list"),
    ("datasets", ["pets"], "dataset names of preset 'mini'"),
    ("teachers", ["resnet51"], "model names"),
    ("students", [], "non-empty list"),
    ("temperatures", [1, 0], "numbers > 0"),
    ("temperatures", [1, "4"], "numbers > 0"),
    ("temperatures", [True], "numbers > 0"),
    ("seeds", [0.5], "integers >= 0"),
    ("optimizers", ["adam"], r"allowed: \['adamw', 'sgd'\]"),
    ("batch_sizes", [0], "integers >= 1"),
    ("duration_fractions", [0.5, -1], "numbers > 0"),
    ("distill_epochs", 0, "None"),
    ("distill_epochs", "16", "None"),
    ("student_inits", ["imagenet"], "student initializations"),
    ("teacher_origins", ["pretrained"], "teacher origins"),
    ("executor", "dask", "executor"),
    ("slurm", [], "dict"),
    ("output_dir", "", "folder"),
    ("plateau_tolerance", -1, ">= 0"),
    ("pretrain_corpora", {"fmnist-fine": ["imagenet"]}, "corpora of preset"),
    ("pretrain_corpora", {"fmnist-coarse": ["fmnist-general"]}, "not in datasets"),
    ("pretrain_corpora", ["fmnist-general"], "must be a dict"),
])
def test_check_parameters_names_the_bad_value(name, value, match):
    with pytest.raises(ValueError, match=match):
        specs.check_parameters("mini", **{**GOOD, name: value})


def test_check_parameters_refuses_unknown_presets_names_and_paper_corpora():
    with pytest.raises(ValueError, match="unknown preset"):
        specs.check_parameters("tiny", datasets=["fmnist-fine"])
    with pytest.raises(ValueError, match="no rule for parameter 'colour'"):
        specs.check_parameters("mini", colour="red")
    with pytest.raises(ValueError, match="ImageNet-1K"):
        specs.check_parameters("paper", datasets=["cars"], pretrain_corpora={"cars": ["fmnist-general"]})
