"""The findings scorecard on synthetic results frames: planted effects are found, reversed ones contradicted,
noise and single seeds are inconclusive, missing runs are "not run"; intervals match scipy's t test."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from kdlib import findings

T3 = (1.0, 4.0, 40.0)
T5 = (1.0, 2.0, 4.0, 10.0, 40.0)
PLANT, REVERSE, NOISE = (3.0, 3.5, 2.5), (-3.0, -3.5, -2.5), (1.0, -1.5, 0.4)


def row(seed, temperature, acc, **kw):
    base = dict(kind="distill", status="done", preset="mini", dataset="fmnist-fine", teacher="resnet50",
                teacher_origin="finetuned", teacher_epochs=10, pretrain_corpus="fmnist-general", student="resnet18",
                student_init="random", method="kd", method_args="{}", variant="kd", optimizer="adamw",
                batch_size=128, epochs=30, seed=seed, temperature=temperature, test_acc=acc,
                teacher_h_all=0.4, teacher_h_minus_max=0.7)
    base.update(kw)
    base["teacher_id"] = f"t{base['teacher_origin']}{base['teacher_epochs']}{base['pretrain_corpus']}{seed}"
    return base


def sweep(seed, accs, temps=T3, **kw):
    """One accuracy-vs-T curve; every seed gets its own offset (the shared teacher), which pairing removes."""
    return [row(seed, t, a + 2.0 * seed, **kw) for t, a in zip(temps, accs)]


def frame(rows):
    return pd.DataFrame(rows)


def card(rows, claim_id, **kw):
    out = findings.scorecard(frame(rows), **kw)
    return out.set_index("id").loc[claim_id]


def expected_interval(values):
    res = stats.ttest_1samp(np.asarray(values, float), 0.0)
    ci = res.confidence_interval(0.95)
    return float(np.mean(values)), float(ci.low), float(ci.high)


# ----------------------------------------------------------------------------- the interval and the verdict rule

def test_interval_is_the_t_interval_scipy_computes():
    for values in ([1.0, 2.0, 4.5], [0.3, -0.2], [5.0, 5.5, 4.0, 6.1, 5.2]):
        mean, low, high, n = findings.interval(values)
        exp = expected_interval(values)
        assert n == len(values)
        assert (mean, low, high) == pytest.approx(exp, rel=1e-9)


def test_interval_of_three_seeds_uses_t_with_two_degrees_of_freedom():
    mean, low, high, _ = findings.interval([0.0, 1.0, 2.0])
    assert high - mean == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))


def test_one_value_has_no_interval():
    mean, low, high, n = findings.interval([3.0])
    assert (mean, n) == (3.0, 1) and math.isnan(low) and math.isnan(high)


# ----------------------------------------------------------------------------- F2 through every verdict

def f2_rows(effects):
    """SGD's spread over T is 5 points; AdamW's is 5 + effect (so the effect is the claim's number)."""
    rows = []
    for seed, d in enumerate(effects):
        rows += sweep(seed, (70, 72.5, 75), optimizer="sgd", lr=0.05)
        rows += sweep(seed, (70, 70, 75 + d), optimizer="adamw")
    return rows


def test_f2_planted_smaller_adamw_spread_is_reproduced_with_scipys_interval():
    r = card(f2_rows([-d for d in PLANT]), "F2")
    mean, low, high = expected_interval([-d for d in PLANT])
    assert r["verdict"] == "reproduced" and r["seeds"] == 3
    assert (r["value"], r["ci_low"], r["ci_high"]) == pytest.approx((mean, low, high))


def test_f2_reversed_spread_is_contradicted():
    assert card(f2_rows([-d for d in REVERSE]), "F2")["verdict"] == "contradicted"


def test_f2_noise_is_inconclusive():
    r = card(f2_rows(NOISE), "F2")
    assert r["verdict"] == "inconclusive" and r["ci_low"] < 0 < r["ci_high"]


def test_f2_one_seed_is_inconclusive_even_with_a_large_effect():
    r = card(f2_rows([-4.0]), "F2")
    assert r["verdict"] == "inconclusive" and r["seeds"] == 1 and math.isnan(r["ci_low"])


def test_f2_without_sgd_runs_is_not_run_and_an_empty_store_runs_nothing():
    rows = [r for r in f2_rows(PLANT) if r["optimizer"] == "adamw"]
    assert card(rows, "F2")["verdict"] == "not run"
    empty = findings.scorecard(pd.DataFrame())
    assert list(empty["id"]) == [f"F{i}" for i in range(1, 17)] and set(empty["verdict"]) == {"not run"}


def test_f2_uses_only_temperatures_both_optimizers_ran():
    # AdamW also ran T=2 and T=10 (notebook 01's sweep) with extreme values; only T in {1, 4, 40} may count.
    rows = f2_rows([-3.0, -3.0, -3.0])
    rows += [row(s, 2.0, 0.0 + 2 * s) for s in range(3)] + [row(s, 10.0, 99.0 + 2 * s) for s in range(3)]
    assert card(rows, "F2")["value"] == pytest.approx(-3.0)


def test_failed_runs_and_other_presets_are_ignored():
    rows = f2_rows([-d for d in PLANT])
    rows += [dict(r, status="failed", test_acc=0.0) for r in f2_rows(REVERSE)]
    paper = [dict(r, preset="paper") for r in f2_rows(REVERSE)]
    out = findings.scorecard(frame(rows + paper))
    f2 = out[out["id"] == "F2"].set_index("scale")["verdict"]
    assert f2.to_dict() == {"mini": "reproduced", "paper": "not run"}


# ----------------------------------------------------------------------------- planted effects claim by claim

def f3_rows(effects):
    """SGD: at 2 epochs small T wins by 2 points; at 30 epochs large T wins by effect − 2."""
    rows = []
    for seed, d in enumerate(effects):
        rows += sweep(seed, (50, 49, 48), optimizer="sgd", epochs=2)
        rows += sweep(seed, (70, 71, 70 + d - 2), optimizer="sgd", epochs=30)
    return rows


@pytest.mark.slow
def test_f3_crossover_planted_reversed_and_partial():
    planted = card(f3_rows([6.0, 6.5, 5.5]), "F3")
    assert planted["verdict"] == "reproduced" and planted["value"] == pytest.approx(6.0)
    assert card(f3_rows([-3.0, -3.5, -2.5]), "F3")["verdict"] == "contradicted"
    # large T gains with duration but never wins: the interaction is there, the cross-over is not
    assert card(f3_rows([1.0, 1.5, 0.5]), "F3")["verdict"] != "reproduced"


def f4_rows(effects):
    rows = []
    for seed, d in enumerate(effects):
        for epochs in (2, 30):
            rows += sweep(seed, (60, 62, 64 + d), optimizer="sgd", batch_size=32, epochs=epochs)
            rows += sweep(seed, (60, 62, 64), optimizer="sgd", batch_size=256, epochs=epochs)
    return rows


@pytest.mark.slow
def test_f4_larger_batch_smaller_large_t_gap_is_reproduced_and_reverse_contradicted():
    r = card(f4_rows(PLANT), "F4")
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(3.0)
    assert card(f4_rows(REVERSE), "F4")["verdict"] == "contradicted"


def f5_rows(rise, beyond):
    rows = []
    for seed, (a, b) in enumerate(zip(rise, beyond)):
        rows += sweep(seed, (70, 70 + a / 3, 70 + a / 2, 70 + a, 70 + a + b), temps=T5)
    return rows


@pytest.mark.slow
def test_f5_rise_then_plateau_is_reproduced_and_a_fall_is_contradicted():
    r = card(f5_rows(PLANT, (0.1, -0.2, 0.0)), "F5")
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(3.0)
    assert card(f5_rows(REVERSE, (0.0, 0.1, -0.1)), "F5")["verdict"] == "contradicted"
    # still rising steeply beyond T = 10: the rise is there, the flattening is not
    assert card(f5_rows(PLANT, (12.0, 13.0, 11.0)), "F5")["verdict"] == "contradicted"


def test_f5_without_a_temperature_near_ten_is_not_run():
    assert card(f2_rows(PLANT), "F5")["verdict"] == "not run"


def test_f6_flat_profile_from_logits_and_a_peaked_teacher_contradicts():
    gen = torch.Generator().manual_seed(0)
    soft = {s: 0.01 * torch.randn(200, 10, generator=gen) for s in range(3)}
    sharp = {s: 200.0 * torch.nn.functional.one_hot(torch.arange(200) % 10, 10).float() for s in range(3)}
    r = card([], "F6", logits=soft)
    top = [float(torch.softmax(z / 40, 1).sort(1, descending=True).values.mean(0)[:2].diff().neg()) for z in soft.values()]
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(np.mean(top), rel=1e-3)
    assert card([], "F6", logits=sharp)["verdict"] == "contradicted"
    assert card([], "F6")["verdict"] == "not run"


def f7_rows(effects):
    rows = []
    for seed, d in enumerate(effects):
        rows += sweep(seed, (70, 72, 72 + d))
        for v in ("kd[targets=ls-global]", "kd[k=1,targets=bottom-k]"):
            rows += sweep(seed, (69, 71, 72), variant=v, method_args='{"targets": "x"}')
    return rows


def test_f7_real_targets_beat_substitutes_reproduced_and_reverse_contradicted():
    r = card(f7_rows(PLANT), "F7")
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(3.0)
    assert card(f7_rows(REVERSE), "F7")["verdict"] == "contradicted"


def f1_rows(effects):
    rows = []
    for seed, d in enumerate(effects):
        rows += sweep(seed, (70, 74, 72))
        rows.append(row(seed, math.nan, 74 - d + 2 * seed, method="dkd", variant="dkd"))
        rows.append(row(seed, math.nan, 60 + 2 * seed, method="dist", variant="dist"))
    return rows


@pytest.mark.slow
def test_f1_kd_at_best_t_beats_the_best_other_method():
    assert card(f1_rows(PLANT), "F1")["value"] == pytest.approx(3.0)
    assert card(f1_rows(PLANT), "F1")["verdict"] == "reproduced"
    assert card(f1_rows(REVERSE), "F1")["verdict"] == "contradicted"


def teacher_rows(effects, *, gain_long=1.0):
    """Teachers finetuned 2 and 20 epochs; the longer one costs `effect` points of mean accuracy."""
    rows = []
    for seed, d in enumerate(effects):
        rows += sweep(seed, (70, 73, 74), teacher_epochs=2, teacher_h_all=0.6, teacher_h_minus_max=0.5)
        rows += sweep(seed, (70 - d, 70 - d + gain_long, 70 - d + gain_long), teacher_epochs=20,
                      teacher_h_all=0.6 - d / 10, teacher_h_minus_max=0.5 + d / 10)
    return rows


@pytest.mark.slow
def test_f8_f9_f10_longer_finetuning_planted_and_reversed():
    planted, reverse = findings.scorecard(frame(teacher_rows(PLANT))), findings.scorecard(frame(teacher_rows(REVERSE)))
    p, r = planted.set_index("id"), reverse.set_index("id")
    assert p.loc["F8", "verdict"] == "reproduced" and r.loc["F8", "verdict"] == "contradicted"
    # large-T advantage: 4 points at 2 epochs, 1 point at 20 -> -3 whatever the seed
    assert p.loc["F9", "value"] == pytest.approx(-3.0) and p.loc["F9", "seeds"] == 3
    assert p.loc["F10", "verdict"] == "reproduced" and r.loc["F10", "verdict"] == "contradicted"
    assert p.loc["F10", "value"] == pytest.approx(-0.3)


def test_f11_scratch_teacher_best_at_small_t():
    rows = sum((sweep(s, (72, 70 - s * 0.5, 69), teacher_origin="scratch", pretrain_corpus="random")
                for s in range(3)), [])
    r = card(rows, "F11")
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(np.mean([2.0, 2.5, 3.0]))
    flip = sum((sweep(s, (68, 72 + s * 0.5, 70), teacher_origin="scratch", pretrain_corpus="random")
                for s in range(3)), [])
    assert card(flip, "F11")["verdict"] == "contradicted"


def init_rows(pre_gain):
    rows = []
    for seed, g in enumerate(pre_gain):
        rows += sweep(seed, (60, 64, 65), student_init="random")
        rows += sweep(seed, (80, 80 + g, 80 + g), student_init="pretrained")
    return rows


def test_f12_larger_t_helps_every_init_and_less_when_pretrained():
    assert card(init_rows((1.0, 1.5, 0.8)), "F12")["verdict"] == "reproduced"
    # a pretrained student that loses with large T: "helps for every init" is contradicted
    assert card(init_rows((-1.0, -1.5, -0.8)), "F12")["verdict"] == "contradicted"


@pytest.mark.slow
def test_f13_kd_beats_labels_alone_using_the_supervised_reference_rows():
    rows = init_rows((1.0, 1.5, 0.8))
    refs = [dict(kind="supervised", status="done", preset="mini", dataset="fmnist-fine", arch="resnet18",
                 origin="finetuned", epochs=10, batch_size=128, seed=s, test_acc=81.0 - d + 2 * s) for s, d in enumerate(PLANT)]
    r = card(rows + refs, "F13")
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(np.mean(PLANT) + np.mean((1.0, 1.5, 0.8)) - 1.0)
    worse = [dict(x, test_acc=x["test_acc"] + 10) for x in refs]
    assert card(rows + worse, "F13")["verdict"] == "contradicted"
    assert card(rows, "F13")["verdict"] == "not run"


def granularity_rows(coarse_peak, no_overlap_slope):
    rows = []
    for seed in range(3):
        rows += sweep(seed, (70, 73, 76, 79, 80), temps=T5)  # fine, overlapping: plateau at T = 10
        c = (80, 80, 80, 80, 80) if coarse_peak == 1 else (70, 73, 76, 79, 80)
        rows += sweep(seed, c, temps=T5, dataset="fmnist-coarse")
        s = no_overlap_slope + 0.1 * seed
        rows += sweep(seed, tuple(75 + s * math.log2(t) for t in T5), temps=T5, pretrain_corpus="fmnist-general-coarse")
    return rows


def test_f14_coarse_plateaus_earlier_and_f15_no_overlap_falls():
    out = findings.scorecard(frame(granularity_rows(1, -1.0))).set_index("id")
    assert out.loc["F14", "verdict"] == "reproduced" and out.loc["F14", "value"] == pytest.approx(-math.log2(10))
    assert out.loc["F15", "verdict"] == "reproduced"
    assert out.loc["F15", "value"] == pytest.approx(-1.0 + 0.1)
    out = findings.scorecard(frame(granularity_rows(10, 1.0))).set_index("id")
    assert out.loc["F14", "verdict"] != "reproduced" and out.loc["F15", "verdict"] == "contradicted"


def f16_rows(effects):
    rows = []
    for seed, d in enumerate(effects):
        for opt, bs, gain in (("adamw", 32, 2.0), ("adamw", 256, 2.0 + d), ("sgd", 32, 2.0 + d),
                              ("sgd", 256, 2.0 + 2 * d)):
            rows += sweep(seed, (60, 61, 62), optimizer=opt, batch_size=bs, epochs=2)
            rows += sweep(seed, (60, 61 + gain, 62), optimizer=opt, batch_size=bs, epochs=30)
    return rows


@pytest.mark.slow
def test_f16_sgd_and_large_batches_gain_more_from_longer_training():
    r = card(f16_rows(PLANT), "F16")
    assert r["verdict"] == "reproduced" and r["value"] == pytest.approx(3.0)
    assert card(f16_rows(REVERSE), "F16")["verdict"] == "contradicted"


# ----------------------------------------------------------------------------- output

def test_write_puts_markdown_and_html_in_place_without_temp_files(tmp_path):
    rows = findings.scorecard(frame(f2_rows([-d for d in PLANT])))
    paths = findings.write(rows, tmp_path)
    md, page = (p.read_text() for p in paths)
    assert [p.name for p in paths] == ["findings.md", "findings.html"]
    assert md.count("\n| F") == 16 and "| F2 |" in md and "**reproduced**" in md
    assert page.startswith("<!DOCTYPE html>") and page.count("<tr><td>F") == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.html", "findings.md"]


def test_show_gives_one_notebooks_rows_and_refuses_an_unknown_notebook():
    view = findings.show(frame(f2_rows(PLANT)), notebook="02")
    assert list(view.index) == ["F2", "F3", "F4", "F16"]
    with pytest.raises(ValueError, match="no claims"):
        findings.show(frame([]), notebook="09")
    assert list(findings.show(frame(f2_rows(PLANT)), claims=["F13", "F2"]).index) == ["F13", "F2"]
    with pytest.raises(ValueError, match="unknown claim"):
        findings.show(frame([]), claims=["F17"])


def test_registry_holds_study_claims_f1_to_f16_with_sections_and_notebooks():
    ids = [c.id for c in findings.CLAIMS]
    assert ids == [f"F{i}" for i in range(1, 17)]
    assert all(c.section and c.notebook in {"01", "02", "03", "04", "05", "06"} for c in findings.CLAIMS)
    assert all(c.function.__doc__ for c in findings.CLAIMS)


def test_the_command_line_scores_an_empty_store_and_writes_both_files(tmp_path, capsys):
    from kdlib.findings import cli

    rows = cli.main(["--root", str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--preset", "patient"])
    assert set(rows["verdict"]) == {"not run"} and set(rows["scale"]) == {"patient"} and len(rows) == 16
    assert (tmp_path / "out" / "findings.md").read_text().count("| F") == 16
    assert (tmp_path / "out" / "findings.html").is_file()
    assert "wrote" in capsys.readouterr().out


def test_teachers_that_differ_only_in_their_recipe_are_not_averaged_together():
    # Two teachers with the same arch, origin and epochs but different ids (e.g. no label smoothing):
    # the AdamW runs of the second one have no SGD partner, so they must not enter F2.
    rows = f2_rows([-3.0, -3.5, -2.5])
    other = [dict(r, teacher_id=r["teacher_id"] + "-nols", test_acc=r["test_acc"] + (50 if r["temperature"] == 40 else 0))
             for r in rows if r["optimizer"] == "adamw"]
    assert card(rows + other, "F2")["value"] == pytest.approx(-3.0)


def test_f13_prefers_the_label_only_run_with_the_same_schedule():
    rows = sum((sweep(s, (70, 72, 71), student_init="random") for s in range(3)), [])
    ref = dict(kind="supervised", status="done", preset="mini", dataset="fmnist-fine", arch="resnet18", origin="target")
    same = [dict(ref, epochs=30, batch_size=128, seed=s, test_acc=70.0 + 2 * s) for s in range(3)]
    longer = [dict(ref, epochs=300, batch_size=128, seed=s, test_acc=90.0) for s in range(3)]
    assert card(rows + same + longer, "F13")["value"] == pytest.approx(2.0)
