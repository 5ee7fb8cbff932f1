"""The patient preset: the mini world's datasets and models with longer training, as a preset, not a fork."""
from __future__ import annotations

import pytest

from kdlib import data, models, parameters, specs, tables

MINI_IMAGES = 100 * 10  # the mini world's few-shot target set: 100 images of each of the 10 classes


def steps(spec: specs.Distill) -> int:  # the loader drops the last partial batch; validation is held out
    return spec.epochs * ((MINI_IMAGES - round(MINI_IMAGES * spec.val_fraction)) // spec.batch_size)


def test_patient_is_the_mini_world_with_the_same_datasets_models_and_corpora():
    assert data.dataset_names("patient") == data.dataset_names("mini")
    assert data.dataset_info("fmnist-fine", "patient") == data.dataset_info("fmnist-fine", "mini")
    assert models.arch_names("patient") == models.arch_names("mini")
    assert models.check_arch("resnet18", "patient") == models.check_arch("resnet18", "mini")
    assert specs.world("patient") == "mini" and specs.world("paper") == "paper"
    parameters.check_parameters("patient", pretrain_corpora={"fmnist-fine": ["fmnist-general-coarse", None]},
                                datasets=["fmnist-fine"])


def test_patient_students_take_many_more_steps_than_mini_and_pretraining_is_longer():
    mini = specs.distill(specs.teacher("resnet50", "fmnist-fine"), "resnet18", 4.0)
    patient = specs.distill(specs.teacher("resnet50", "fmnist-fine", preset_name="patient"), "resnet18", 4.0)
    assert steps(mini) == 30 * 7
    assert steps(patient) >= 1000 and steps(patient) >= 5 * steps(mini)
    assert patient.teacher.init.epochs > mini.teacher.init.epochs
    assert patient.preset == "patient" and patient.teacher.init.preset == "patient"
    assert len(specs.preset("patient").seeds) >= 3


def test_patient_runs_have_their_own_ids_and_describe_their_scale():
    mini = specs.distill(specs.teacher("resnet50", "fmnist-fine"), "resnet18", 4.0)
    patient = specs.distill(specs.teacher("resnet50", "fmnist-fine", preset_name="patient"), "resnet18", 4.0)
    assert specs.run_id(mini) != specs.run_id(patient)
    assert tables.row_of(patient)["preset"] == "patient"
    assert specs.from_dict(specs.to_dict(patient)) == patient


def test_mini_run_ids_are_unchanged_by_the_new_preset_fields():
    teacher = specs.teacher("resnet50", "fmnist-fine")
    assert specs.run_id(teacher) == "9f03edcfb580caa6"
    assert specs.run_id(specs.distill(teacher, "resnet18", 4.0)) == "0f146b5093cae39c"


def test_an_unknown_preset_names_all_three():
    with pytest.raises(ValueError, match="patient"):
        data.dataset_names("slow")
    with pytest.raises(ValueError, match="patient"):
        models.arch_names("slow")
    with pytest.raises(ValueError, match="patient"):
        specs.preset("slow")


@pytest.mark.parametrize("origin", ["finetuned", "scratch"])
def test_patient_teachers_learn_the_target_without_label_smoothing_or_mixup_and_students_keep_theirs(origin):
    patient = specs.teacher("resnet50", "fmnist-fine", origin=origin, preset_name="patient")
    mini = specs.teacher("resnet50", "fmnist-fine", origin=origin)
    assert (patient.label_smoothing, patient.mixup) == (0.0, False)
    assert (mini.label_smoothing, mini.mixup) == (0.1, True)          # the mini recipe (its run ids) is unchanged
    smoothed = specs.teacher("resnet50", "fmnist-fine", origin=origin, preset_name="patient", label_smoothing=0.1,
                             mixup=True)
    assert (smoothed.label_smoothing, smoothed.mixup) == (0.1, True)  # an explicit recipe wins
    assert specs.run_id(smoothed) != specs.run_id(patient)
    student = specs.trained("resnet18", "fmnist-fine", init="target", preset_name="patient")
    assert student.label_smoothing == 0.1                             # a student's own target training
