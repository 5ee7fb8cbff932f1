"""What the study notebooks print: the finding sentences, computed from synthetic results frames."""
import math

import pandas as pd
import pytest

from kdlib import reports
from results_frames import granularity_frame, row, student_frame, teacher_frame, training_frame


def test_training_configuration_names_each_cross_over_and_the_spread_per_optimizer():
    report = reports.training_configuration(training_frame())
    text = "\n".join(report.lines)
    assert "2-3. sgd: cross-over epochs by batch size: 64: 8, 256: 16" in text
    assert "2-3. adamw: cross-over epochs by batch size: 64: none, 256: none" in text
    assert f"1. mean spread over T at the longest duration: adamw {0.3 * math.log2(40):.2f} pts" in text
    assert "fmnist-fine resnet50→resnet18 sgd, batch 64: best T 1 → 1 → 1 → 40 → 40; cross over at 8 epochs" in text


def test_teacher_origination_compares_the_shortest_and_longest_finetuning():
    text = "\n".join(reports.teacher_origination(teacher_frame()).lines)
    assert "finetuned 3→20 epochs" in text and "3. from scratch (10 epochs): best T = 1" in text
    assert f"H_all {0.5 - 3 / 50:.3f} → {0.5 - 20 / 50:.3f}" in text


def test_student_initialization_sets_best_kd_against_finetuning_alone():
    report = reports.student_initialization(student_frame())
    summary = report["summary"].set_index(["student", "student_init"])
    assert summary.loc[("resnet18", "finetuned"), "margin"] == pytest.approx(60 + 9 + math.log2(40) - 67)
    assert any("(random)" in line and "vs finetune only 75.00%" in line for line in report.lines)


def test_dataset_granularity_reports_inflection_points_and_the_no_overlap_reversal():
    from kdlib import analysis

    text = "\n".join(reports.dataset_granularity(analysis.dataset_traits(granularity_frame()), 1.0).lines)
    assert "1. inflection T: coarse [2.0] vs fine [10.0]" in text
    assert "3. fmnist-fine (fine) ← fmnist-general-coarse (no overlap): best T=1, falling" in text


def test_quickstart_and_kd_approach_read_the_reference_and_the_best_temperature():
    frame = pd.DataFrame([row(temperature=t, test_acc=a, train_seconds=1.0, run_id=f"r{t}")
                          for t, a in ((1.0, 70.0), (4.0, 72.0), (40.0, 71.0))]
                         + [dict(kind="supervised", status="done", test_acc=65.0, run_id="ref")])
    q = reports.quickstart(frame)
    assert q["best_T"] == 4.0 and q["reference"] == 65.0
    assert q.lines == ["student on labels alone: 65.00%  |  best distilled: 72.00% at T=4"]
    methods = pd.concat([frame.iloc[:3], pd.DataFrame([row(method="dkd", variant="dkd", temperature=float("nan"),
                                                           test_acc=73.0, run_id="m")])], ignore_index=True)
    k = reports.kd_approach(methods)
    assert k.lines == ["methods beating the best vanilla-KD temperature: 1 of 1"]
    assert k["methods"]["best_T"].item() == 4.0 and k["methods"]["margin"].item() == pytest.approx(1.0)
