"""The study's numbers (mean ± std, best T, sensitivity, cross-over, inflection) on synthetic frames."""
import math

import pandas as pd
import pytest

from kdlib import analysis
from results_frames import frame, granularity_frame, row, teacher_frame, training_frame


# ----------------------------------------------------------------------------- mean ± std, best T, cross-over, inflection

def test_summaries_show_std_only_when_several_seeds_ran_and_skip_unfinished_runs():
    one = training_frame()
    two = training_frame(seeds=(0, 1))
    two.loc[0, "status"] = "failed"
    assert analysis.mean_std_label(71.234, float("nan"), 1) == "71.2"
    assert analysis.mean_std_label(71.234, 0.71, 3, digits=2) == "71.23 ± 0.71"
    assert analysis.mean_std_label(float("nan"), 0, 0) == "–"
    t1 = analysis.mean_std_table(one[one["epochs"] == 16], ["optimizer", "batch_size"])
    assert list(t1.columns) == ["T=1", "T=4", "T=40"] and "±" not in t1.iloc[0, 0]
    t2 = analysis.mean_std_table(two[two["epochs"] == 16], ["optimizer", "batch_size"])
    sgd_64_t40 = 40 + 10 * 4 + 2 * math.log2(40)  # training_frame's formula at 16 epochs; seeds add 0 and 1
    assert t2.loc[("sgd", 64), "T=40"] == f"{sgd_64_t40 + 0.5:.1f} ± 0.7"  # 91.1 ± 0.7
    s = analysis.mean_std(two, ["optimizer", "batch_size", "epochs", "temperature"])
    assert s["seeds"].max() == 2 and s["seeds"].min() == 1  # the failed run is not counted
    with pytest.raises(ValueError, match="no column"):
        analysis.mean_std(two, ["learning_rate"])


def test_best_temperature_and_sensitivity():
    f = training_frame()
    best = analysis.best_temperature(f[f["epochs"] == 1], ["optimizer", "batch_size"])
    assert best.set_index(["optimizer", "batch_size"])["best_T"].to_dict() == {
        ("adamw", 64): 40.0, ("adamw", 256): 40.0, ("sgd", 64): 1.0, ("sgd", 256): 1.0}
    tie = frame([row(temperature=t, test_acc=70.0) for t in (4.0, 1.0, 40.0)])
    assert analysis.best_temperature(tie, ["dataset"])["best_T"].item() == 1.0
    sens = analysis.sensitivity(f[f["epochs"] == 16], ["optimizer", "batch_size"]).set_index(["optimizer", "batch_size"])
    assert sens.loc[("adamw", 64), "spread"] == pytest.approx(0.3 * math.log2(40))
    assert sens.loc[("sgd", 64), "gain"] == pytest.approx(2 * math.log2(40))
    assert sens.loc[("sgd", 64), "smallest_T"] == 1.0


def test_crossover_finds_the_duration_where_the_best_temperature_moves_up():
    cross = analysis.crossover(training_frame()).set_index(["optimizer", "batch_size"])
    assert cross.loc[("sgd", 64), "crossover_epochs"] == 8
    assert cross.loc[("sgd", 256), "crossover_epochs"] == 16  # larger batch: later
    assert math.isnan(cross.loc[("adamw", 64), "crossover_epochs"])  # large T best throughout
    assert cross.loc[("sgd", 64), "best_T_path"] == "1 → 1 → 1 → 40 → 40"
    assert cross.loc[("sgd", 256), "large_T_wins_from"] == 16
    assert cross.loc[("adamw", 64), "large_T_wins_from"] == 1
    # a best T that moves up and back down is no cross-over
    wobble = frame([row(epochs=e, temperature=t, test_acc=a) for e, t, a in
                    [(1, 1.0, 50), (1, 40.0, 40), (2, 1.0, 50), (2, 40.0, 60), (4, 1.0, 70), (4, 40.0, 60)]])
    assert math.isnan(analysis.crossover(wobble)["crossover_epochs"].item())


def test_inflection_point_is_the_smallest_temperature_near_the_best():
    f = analysis.dataset_traits(granularity_frame())
    points = analysis.inflection_points(f, ["case"], tolerance=1.0).set_index("case")
    fine = points.loc["fmnist-fine (fine) ← fmnist-general"]
    assert fine["inflection_T"] == 10 and fine["best_T"] == 10 and fine["trend"] == "rising"
    coarse = points.loc["fmnist-coarse (coarse) ← fmnist-general"]
    assert coarse["inflection_T"] == 2 and coarse["trend"] == "rising"
    none = points.loc["fmnist-fine (fine) ← fmnist-general-coarse"]
    assert none["inflection_T"] == 1 and none["trend"] == "falling" and none["slope"] == pytest.approx(-0.8)
    loose = analysis.inflection_points(f, ["case"], tolerance=3.0).set_index("case")
    assert loose.loc["fmnist-fine (fine) ← fmnist-general", "inflection_T"] == 4  # 74 is within 3 of 76.6
    with pytest.raises(ValueError, match="tolerance"):
        analysis.inflection_points(f, ["case"], tolerance=-0.5)


def test_dataset_traits_name_granularity_and_overlap():
    f = frame([row(dataset="fmnist-fine", pretrain_corpus="fmnist-general"),
               row(dataset="fmnist-coarse", pretrain_corpus="fmnist-general"),
               row(dataset="fmnist-fine", pretrain_corpus="fmnist-general-coarse"),
               row(dataset="cars", preset="paper", pretrain_corpus="hub"),
               row(dataset="pets", preset="paper", pretrain_corpus="hub:resnet50.a1_in1k")])
    t = analysis.dataset_traits(f)
    assert t["granularity"].tolist() == ["fine", "coarse", "fine", "fine", "fine"]
    assert t["overlap"].tolist() == ["overlap", "overlap", "no overlap", "no overlap", "overlap"]
    assert t["case"].tolist()[2:4] == ["fmnist-fine (fine) ← fmnist-general-coarse", "cars (fine) ← ImageNet-1K"]
    assert t["case"].iloc[4] == "pets (fine) ← resnet50.a1_in1k"


def test_teacher_stats_count_each_teacher_once():
    f = teacher_frame()
    doubled = pd.concat([f, f.assign(student="mnv4")], ignore_index=True)  # two students share each teacher
    stats = analysis.teacher_stats(doubled)
    assert set(stats["seeds"]) == {1}




def test_the_one_best_row_takes_the_highest_mean_and_the_smaller_temperature_on_ties():
    curve = pd.DataFrame({"temperature": [40.0, 1.0, 4.0], "test_acc": [71.0, 71.0, 70.0]})
    assert analysis.best_row(curve)["temperature"] == 1.0
    curve.loc[2, "test_acc"] = 72.5
    assert analysis.best_row(curve)["temperature"] == 4.0
