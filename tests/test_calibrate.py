"""The calibration script builds each measurement's runs as specs and tabulates what the store holds."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from kdlib import specs

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_mini.py"


@pytest.fixture(scope="module")
def calib():
    spec = importlib.util.spec_from_file_location("calibrate_mini", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibrate_mini"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("calibrate_mini", None)


def by_name(calib, name):
    return next(m for m in calib.MEASUREMENTS if m.name == name)


def test_the_base_measurement_is_the_mini_notebooks_setup(calib):
    b = calib.build(by_name(calib, "base"), 0, [1, 4])
    teacher = specs.teacher("resnet50", "fmnist-fine", seed=0)
    assert b["teacher"] == teacher
    assert b["adamw"][1] == specs.distill(teacher, "resnet18", 4)  # the same run ids as notebooks 00-02
    assert b["sgd"][0] == specs.distill(teacher, "resnet18", 1, optimizer="sgd")
    assert b["labels"].init == "random" and b["labels"].epochs == b["adamw"][0].epochs


def test_measurements_change_only_their_axis(calib):
    coarse = calib.build(by_name(calib, "coarse corpus (4 classes) -> fine target"), 1, [1, 4])
    assert coarse["teacher"].init.dataset == "fmnist-general-coarse" and coarse["teacher"].seed == 1
    plain = calib.build(by_name(calib, "finetune 3 ep, no LS, no MixUp"), 0, [1])["teacher"]
    assert (plain.epochs, plain.label_smoothing, plain.mixup) == (3, 0.0, False)
    steps = calib.build(by_name(calib, "100 ep x batch 64"), 0, [1])["sgd"][0]
    assert (steps.epochs, steps.batch_size, steps.optimizer) == (100, 64, "sgd")
    tops = calib.build(by_name(calib, "tops the coarse pretraining never separated"), 0, [1])
    assert tops["teacher"].dataset == tops["sgd"][0].dataset == "fmnist-tops"
    assert tops["teacher"].init.dataset == "fmnist-general-coarse"
    big = calib.row(by_name(calib, "500 images per class"), pd.DataFrame(columns=["run_id", "status"]), [0], [1])
    assert big["steps"] == str(30 * (5000 // 128))  # the steps follow the target set's size
    patient = calib.build(by_name(calib, "patient"), 0, [1])["adamw"][0]
    assert patient.preset == "patient" and patient.epochs * (1000 // patient.batch_size) >= 1000


def test_a_row_of_an_empty_store_shows_dashes_and_no_seeds(calib):
    frame = pd.DataFrame(columns=["run_id", "status", "test_acc"])
    r = calib.row(by_name(calib, "base"), frame, [0, 1], [1, 4])
    assert r["seeds"] == "0" and r["teacher acc"] == "–" and r["sgd T=4"] == "–" and r["steps"] == "210"
    assert calib.table([r]).count("\n") == 2


def test_writing_some_rows_keeps_the_other_measurements_rows(calib, tmp_path, monkeypatch):
    doc = tmp_path / "calibration.md"
    monkeypatch.setattr(calib, "DOC", doc)
    empty = pd.DataFrame(columns=["run_id", "status", "test_acc"])
    base, patient = (calib.row(by_name(calib, n), empty, [0], [1, 4]) for n in ("base", "patient"))
    doc.write_text(f"# t\n\n{calib.BEGIN}\n{calib.END}\nafter\n")
    calib.write_doc([dict(base, **{"teacher acc": "82.3"})], "python scripts/calibrate_mini.py --only base")
    calib.write_doc([patient], "python scripts/calibrate_mini.py --only patient")
    text = doc.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("| defaults")]
    assert [ln.split("|")[2].strip() for ln in lines] == ["base", "patient"]    # in the measurements' order
    assert "| 82.3 |" in lines[0] and text.endswith("after\n") and text.startswith("# t\n")
    assert "`base`: " in text and "--only base`" in text and "--only patient`" in text
    calib.write_doc([dict(base, **{"teacher acc": "80.0"})], "again")
    lines = [ln for ln in doc.read_text().splitlines() if ln.startswith("| defaults")]
    assert len(lines) == 2 and "| 80.0 |" in lines[0]
