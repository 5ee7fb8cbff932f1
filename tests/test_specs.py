"""Run specs: stable ids, grids, presets, and clear errors for bad input."""
import dataclasses

import pytest

from kdlib import runs, specs


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


# ----------------------------------------------------------------------------- bad input refused when the spec is built

T1 = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)


@pytest.mark.parametrize("make, given, allowed, fix", [
    (lambda: specs.distill(T1, "resnet18", 4, epochs=0), "epochs=0", "integer >= 1", "without training or an accuracy"),
    (lambda: specs.teacher("resnet50", "fmnist-fine", epochs=-1), "epochs=-1", "integer >= 0", "pass epochs=1"),
    (lambda: specs.distill(T1, "resnet18", 4, epochs=2.5), "epochs=2.5", "integer >= 1", "pass epochs=1"),
    (lambda: specs.distill(T1, "resnet18", 4, batch_size=127), "batch_size=127", "needs an even batch size",
     "use 126 or 128"),
    (lambda: specs.teacher("resnet50", "fmnist-fine", batch_size=63), "batch_size=63", "MixUp/CutMix", "use 62 or 64"),
    (lambda: specs.distill(T1, "resnet18", 4, batch_size=2048), "batch_size=2048",
     "larger than the 1000 training images of 'fmnist-fine'", "use at most 1000"),
    (lambda: specs.distill(T1, "resnet18", 4, lr=0), "lr=0", "finite number > 0", "lr=1e-3"),
    (lambda: specs.distill(T1, "resnet18", 4, lr="1e-3"), "lr='1e-3'", "finite number > 0", "lr=1e-3"),
    (lambda: specs.distill(T1, "resnet18", 4, weight_decay=float("inf")), "weight_decay=inf", "finite", "0.05"),
    (lambda: specs.distill(T1, "resnet18", 4, clip=-1), "clip=-1", ">= 0", "0 turns per-layer clipping off"),
    (lambda: specs.distill(T1, "resnet18", 4, seed=-1), "seed=-1", "integer >= 0", "seed=0"),
    (lambda: specs.teacher("resnet50", "fmnist-fine", label_smoothing=1.0), "label_smoothing=1.0", "< 1", "0.1"),
    (lambda: specs.teacher("resnet50", "fmnist-fine", mixup="yes"), "mixup='yes'", "True or False", "mixup=True"),
    (lambda: specs.teacher("resnet50", ["fmnist-fine"]), "dataset=['fmnist-fine']", "a string", "'fmnist-general'"),
])
def test_every_bad_field_is_refused_when_the_spec_is_built_saying_what_was_given_allowed_and_the_fix(
        make, given, allowed, fix):
    with pytest.raises(ValueError) as err:
        make()
    assert given in str(err.value) and allowed in str(err.value) and fix in str(err.value)


def test_a_teacher_on_an_unknown_dataset_names_the_dataset_and_the_allowed_ones():
    with pytest.raises(ValueError) as err:
        specs.teacher("resnet50", "pets")  # a paper dataset asked of the mini preset
    message = str(err.value)
    assert "unknown dataset 'pets' for preset 'mini'" in message and "belongs to preset 'paper'" in message
    assert "'fmnist-fine'" in message and "finetune epochs" not in message


def test_zero_epoch_supervised_runs_stay_allowed_and_keep_their_ids():
    """epochs=0 evaluates the starting weights (``train.supervised`` measures their accuracy)."""
    zero = specs.pretrained("resnet50", epochs=0)
    assert zero.epochs == 0 and specs.run_id(zero) == "2c0ff38c4ffd6569"  # its id before these checks existed
    assert specs.teacher("resnet50", "fmnist-fine", batch_size=1000).batch_size == 1000  # one full batch


# Ids computed on main before the package layout changed (issue 13): a store written then must stay valid.
PINNED_IDS = [
    (lambda: specs.teacher("resnet50", "fmnist-fine"), "9f03edcfb580caa6"),  # the quickstart teacher
    (lambda: specs.teacher("resnet50", "fmnist-fine", origin="scratch"), "c936983a9ded91d3"),
    (lambda: specs.trained("resnet18", "fmnist-fine", init="target", epochs=30), "a74f62621430b0ed"),
    (lambda: specs.pretrained("resnet18"), "b0582bb6b3ba570c"),
    (lambda: specs.pretrained("resnet50", corpus="fmnist-general-coarse"), "fb1f426616fd4f02"),
    (lambda: specs.distill(specs.teacher("resnet50", "fmnist-fine"), "resnet18", 4), "0f146b5093cae39c"),
    (lambda: specs.distill(specs.teacher("resnet50", "fmnist-fine"), "resnet18", 10, student_init="pretrained",
                           method="dkd", optimizer="sgd"), "a63ef866e9f686a4"),
    (lambda: specs.distill(specs.teacher("resnet50", "fmnist-fine"), "resnet18", None, method="dist"),
     "de0a8d332e85bda7"),
    (lambda: specs.teacher("vit_s", "pets", preset_name="paper"), "c95a8f0b301d5436"),
    (lambda: specs.distill(specs.teacher("vit_s", "pets", preset_name="paper"), "mnv4", 20,
                           student_init="finetuned"), "8853f4ed5f027314"),
]


@pytest.mark.parametrize("build, expected", PINNED_IDS)
def test_run_ids_of_existing_specs_never_change(build, expected):
    assert specs.run_id(build()) == expected


def test_the_temperature_grid_is_the_presets_sweep_as_floats():
    assert specs.temperature_grid("paper") == (1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 40.0)  # Fig. 1 of the paper
    assert specs.temperature_grid() == (1.0, 2.0, 4.0, 10.0, 40.0)
    assert all(type(t) is float for t in specs.temperature_grid("paper"))
    with pytest.raises(ValueError, match="unknown preset"):
        specs.temperature_grid("tiny")


def test_a_spec_takes_only_its_methods_hyperparameters_and_ensure_refuses_bad_values_before_any_write(tmp_path):
    t = specs.teacher("resnet50", "fmnist-fine")
    with pytest.raises(ValueError, match="'gamma'.*valid hyperparameters of 'dkd' are temperature, alpha, beta, warmup"):
        specs.distill(t, "resnet18", 4, method="dkd", method_args={"gamma": 1.0})
    bad = specs.distill(t, "resnet18", 4, method="dkd", method_args={"beta": -1.0})
    with pytest.raises(ValueError, match="beta=-1.0 must be a finite number >= 0"):
        runs.ensure([bad], root=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_the_patient_preset_holds_a_validation_part_out_of_every_target_run_and_mini_keeps_the_papers_protocol():
    t = specs.teacher("resnet50", "fmnist-fine", preset_name="patient")
    d = specs.distill(t, "resnet18", 4, student_init="finetuned")
    assert t.val_fraction == d.val_fraction == d.student_init.val_fraction == 0.1
    assert t.init.val_fraction == 0.0   # the general pretraining is not a target set
    m = specs.teacher("resnet50", "fmnist-fine")
    assert m.val_fraction == specs.distill(m, "resnet18", 4).val_fraction == 0.0
    assert specs.distill(t, "resnet18", 4, val_fraction=0.0).val_fraction == 0.0  # the user can ask otherwise


def test_every_seed_starts_from_the_one_general_pretraining_as_the_papers_seeds_share_the_hub_weights():
    t0, t1 = (specs.teacher("resnet50", "fmnist-fine", seed=s) for s in (0, 1))
    assert t0.seed == 0 and t1.seed == 1 and t0.init == t1.init and t1.init.seed == 0
    d1 = specs.distill(t1, "resnet18", 4, student_init="pretrained")
    assert d1.seed == 1 and d1.student_init.seed == 0 and d1.student_init.arch == "resnet18"
    own = specs.pretrained("resnet50", seed=1)            # a pretraining of its own, when asked for
    assert own.seed == 1 and own != t1.init
    assert specs.run_id(t0) == "9f03edcfb580caa6"          # seed 0's runs keep their ids
