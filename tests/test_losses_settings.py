"""Each method's settings per dataset family are its reference configs' values.

The expected numbers are copied here from the reference repositories' config files
(named beside each), not read from kdlib.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from kdlib import losses, specs
from kdlib.losses import settings

# (method, family) -> the config values, with schedules at the reference run's own length
CONFIGS = {
    # mdistiller mdistiller/engine/cfg.py DKD defaults (configs/cifar100/dkd/res32x4_res8x4.yaml), 240 epochs
    ("dkd", "cifar", 240): {"temperature": 4.0, "alpha": 1.0, "beta": 8.0, "warmup": 20},
    # mdistiller configs/imagenet/r34_r18/dkd.yaml, 100 epochs
    ("dkd", "imagenet", 100): {"temperature": 1.0, "alpha": 1.0, "beta": 0.5, "warmup": 1},
    # RLD mdistiller/engine/cfg.py RLD defaults; configs/imagenet/r34_r18/rld.yaml
    ("rld", "cifar", 240): {"temperature": 4.0, "alpha": 1.0, "beta": 8.0, "alpha_temperature": 1.0, "warmup": 20},
    ("rld", "imagenet", 100): {"temperature": 1.0, "alpha": 1.0, "beta": 0.5, "alpha_temperature": 1.0, "warmup": 1},
    # EA-KD cfg.py (KD.TEMPERATURE 4, DISTILLER.t 3); configs/imagenet/r34_r18/EA/kd.yaml (t 2, T 1)
    ("eakd", "cifar", 240): {"temperature": 4.0, "entropy_temperature": 3.0},
    ("eakd", "imagenet", 100): {"temperature": 1.0, "entropy_temperature": 2.0},
    # CTKD scripts/run_cifar_distill.sh (240 epochs, decay_loops 10, lr 0.05, wd 5e-4), run_imagenet_distill.sh
    ("ctkd", "cifar", 240): {"t_start": 1.0, "t_end": 20.0, "cosine_epochs": 10, "temperature_lr": 0.05,
                             "temperature_momentum": 0.9, "temperature_weight_decay": 5e-4},
    ("ctkd", "imagenet", 120): {"t_start": 1.0, "t_end": 20.0, "cosine_epochs": 5, "temperature_lr": 0.1,
                                "temperature_momentum": 0.9, "temperature_weight_decay": 1e-4},
    # LSKD README: --base-temp 2 on CIFAR-100 and ImageNet
    ("lskd", "cifar", 240): {"temperature": 2.0},
    ("lskd", "imagenet", 100): {"temperature": 2.0},
    # MLKD cfg.py KD.TEMPERATURE 4; configs/imagenet/r34_r18/kd_ours.yaml TEMPERATURE 1
    ("mlkd", "cifar", 240): {"temperature": 4.0, "other_temperatures": (2.0, 3.0, 5.0, 6.0)},
    ("mlkd", "imagenet", 100): {"temperature": 1.0, "other_temperatures": (2.0, 3.0, 5.0, 6.0)},
    # DIST dist_cifar.yaml (dist_t4, kd_loss_weight 2), resnet_dist.yaml (dist: tau 1, kd_loss_weight 2)
    ("dist", "cifar", 240): {"temperature": 4.0, "beta": 2.0, "gamma": 2.0},
    ("dist", "imagenet", 100): {"temperature": 1.0, "beta": 2.0, "gamma": 2.0},
}


@pytest.mark.parametrize("key", list(CONFIGS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_settings_are_the_reference_configs_at_the_reference_length(key):
    method, family, epochs = key
    got = losses.method_settings(method, family, epochs)
    assert sorted(got) == sorted(CONFIGS[key])
    for name, expected in CONFIGS[key].items():
        assert got[name] == pytest.approx(expected), name


def test_warm_ups_scale_with_the_run_as_a_fraction_of_it():
    assert losses.method_settings("dkd", "cifar", 30)["warmup"] == pytest.approx(30 / 12)
    assert losses.method_settings("rld", "cifar", 30)["warmup"] == pytest.approx(30 / 12)
    assert losses.method_settings("ctkd", "cifar", 30)["cosine_epochs"] == pytest.approx(30 / 24)
    assert losses.method_settings("dkd", "imagenet", 300)["warmup"] == pytest.approx(3.0)


def test_every_setting_builds_its_loss_and_every_method_but_kd_has_settings():
    assert settings.method_names() == sorted(set(losses.names()) - {"kd"})
    for method in settings.method_names():
        for family in losses.FAMILIES:
            hp = losses.method_settings(method, family, 30)
            assert losses.build(method, **hp).hparams.items() >= {
                k: v for k, v in hp.items() if k != "other_temperatures"}.items()


def test_the_mini_world_is_cifar_like_and_the_paper_sets_imagenet_like():
    assert losses.dataset_family("fmnist-fine", "mini") == "cifar"
    assert losses.dataset_family("fmnist-coarse", "mini") == "cifar"
    assert losses.dataset_family("cifar100", "paper") == "imagenet"  # resized to 224 px by the paper
    assert losses.dataset_family("pets", "paper") == "imagenet"


def test_bad_method_family_or_length_is_an_error_that_lists_the_choices():
    with pytest.raises(ValueError, match="no per-family settings for method 'kd'.*ctkd, dist, dkd"):
        losses.method_settings("kd", "cifar", 30)
    with pytest.raises(ValueError, match="family='tiny'; choose one of cifar, imagenet"):
        losses.method_settings("dkd", "tiny", 30)
    with pytest.raises(ValueError, match="epochs=0 must be the run's length"):
        losses.method_settings("dkd", "cifar", 0)


def test_docs_methods_table_is_the_settings_table():
    text = (Path(__file__).parents[1] / "docs" / "methods.md").read_text()
    for row in settings.settings_rows():
        assert "| " + " | ".join(row) + " |" in text


def test_settings_make_new_runs_and_leave_existing_ids_alone():
    teacher = specs.teacher("resnet50", "fmnist-fine")
    plain = specs.distill(teacher, "resnet18", temperature=None, method="dkd")
    tuned = specs.distill(teacher, "resnet18", temperature=None, method="dkd",
                          method_args=losses.method_settings("dkd", "cifar", plain.epochs))
    assert specs.run_id(plain) != specs.run_id(tuned)
    assert losses.for_spec(tuned).hparams == {"temperature": 4.0, "alpha": 1.0, "beta": 8.0, "warmup": 2.5}
    assert losses.build("dkd").hparams["warmup"] == 20  # the class defaults (and old ids' meaning) stay
