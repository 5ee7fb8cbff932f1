"""The advisor's honest evaluation on synthetic stores: planted rules, featureless advisors, planted confidence.

Every store here is a results frame built by hand (one row per run, the columns
``tables.load_results`` gives); the expected numbers are worked out from the planted
curves, never by the code under test.
"""
from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from kdlib.advisor import calibration, confidence, heldout, setups, verdict, verify
from results_frames import frame, row

TEMPS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SETUPS = list(itertools.product(["finetuned", "scratch"], ["adamw", "sgd"], ["fmnist-fine", "fmnist-coarse"],
                                [5, 10, 20]))


def planted_best(origin):
    """The planted rule: a teacher with general pretraining wants T = 16, one from scratch T = 1."""
    return 4.0 if origin == "finetuned" else 0.0


def planted_store(seeds=(0, 1, 2), curvature=1.0, best=None):
    """Accuracy = 70 − curvature · (log2 T − log2 T*)², validation and test alike plus a per-seed shift."""
    best = best or (lambda origin, opt, ds, te: planted_best(origin))
    rows = []
    for (origin, opt, ds, te), t, s in itertools.product(SETUPS, TEMPS, seeds):
        acc = 70 - curvature * (math.log2(t) - best(origin, opt, ds, te)) ** 2 + 0.3 * s
        rows.append(row(teacher_origin=origin, optimizer=opt, dataset=ds, teacher_epochs=te,
                        teacher_id=f"{origin}{ds}{te}", temperature=t, seed=s, val_acc=acc, test_acc=acc - 1.0,
                        val_fraction=0.1, teacher_h_minus_max=0.8, teacher_h_all=0.3))
    return frame(rows)


@pytest.fixture(scope="module")
def planted():
    table = setups.sweeps(planted_store())
    return table, heldout.evaluate_all(table)


@pytest.mark.slow
def test_sweeps_are_scored_on_validation_when_the_runs_hold_it(planted):
    table, _ = planted
    assert len(table) == len(SETUPS) and set(table["scored_on"]) == {"val"}
    r = table.iloc[0]
    assert r["best_acc"] == pytest.approx(70 + 0.3)            # mean over seeds 0, 1, 2 of the 0.3·s shift
    assert max(r["test_accuracies"]) == pytest.approx(69 + 0.3)


@pytest.mark.slow
def test_a_planted_rule_is_recovered_out_of_sample(planted):
    table, long = planted
    adv = long[(long["by"] == "setup") & (long["strategy"] == "advisor")]
    origin = dict(zip(range(len(table)), table["teacher_origin"]))
    assert all(t == 2 ** planted_best(origin[i]) for i, t in zip(adv["row"], adv["T"]))
    assert adv["regret"].max() == pytest.approx(0.0)


def test_the_regret_table_matches_the_planted_curves(planted):
    _, long = planted
    t = heldout.regret_table(long)
    t = t[t["by"] == "setup"].set_index("strategy")
    # by hand: half the setups want log2 T = 4, half 0; regret = (log2 T - log2 T*)^2 points
    for temp in TEMPS:
        l2 = math.log2(temp)
        assert t.loc[heldout.fixed(temp), "mean regret"] == pytest.approx(((l2 - 4) ** 2 + l2 ** 2) / 2)
        assert t.loc[heldout.fixed(temp), "worst regret"] == pytest.approx(max((l2 - 4) ** 2, l2 ** 2))
    assert t.loc["best single T", "mean regret"] == pytest.approx(4.0)   # T = 4 costs 4 points on every setup
    assert t.loc["advisor", "mean test regret"] == pytest.approx(0.0)


def test_the_advisor_passes_the_comparison_when_its_features_carry_the_rule(planted):
    _, long = planted
    c = heldout.comparison(long, "setup")
    assert c["beats_best_single"] and c["beats_every_fixed"] and c["advisor"] < c["best single T"]
    assert heldout.comparison(long, "optimizer")["beats_best_single"]      # the rule does not depend on it


def constant(log2_t):
    def fit(train, min_setups=6):
        return confidence.Fitted("constant", lambda r: log2_t, (True,) * len(train),
                                 tuple(train["optimizer"].astype(str)))
    return fit


@pytest.mark.parametrize("fit", [confidence.featureless] + [constant(math.log2(t)) for t in TEMPS],
                         ids=["featureless"] + [f"always T={t:g}" for t in TEMPS])
def test_an_advisor_that_ignores_its_features_cannot_pass_the_comparison(planted, fit):
    table, _ = planted
    long = heldout.evaluate(table, "setup", fit=fit)
    assert not heldout.comparison(long, "setup")["beats_best_single"]


def test_leaving_one_teacher_origin_out_holds_out_every_sweep_of_it(planted):
    table, long = planted
    part = long[(long["by"] == "teacher origin") & (long["strategy"] == "advisor")]
    assert sorted(part["fold"].unique()) == ["finetuned", "scratch"]
    for fold, g in part.groupby("fold"):
        assert set(table.loc[g["row"], "teacher_origin"]) == {fold} and len(g) == len(SETUPS) // 2
    assert heldout.folds(table[table["dataset"] == "fmnist-fine"], "dataset") == []  # one dataset: no fold


def test_the_paired_interval_is_the_t_interval_of_per_seed_differences(planted):
    table, long = planted
    iv = heldout.paired_interval(table, long, "best single T")
    # every seed shifts all temperatures alike, so each per-seed difference is the mean regret of T = 4: 4 points
    assert iv["seeds"] == 3 and iv["mean"] == pytest.approx(4.0)
    assert iv["low"] == pytest.approx(4.0) and iv["high"] == pytest.approx(4.0)


def test_regret_vs_runs_matches_the_planted_curves(planted):
    table, long = planted
    curve = verify.regret_vs_runs(table, long).set_index(["order", "k"])
    fin = [(math.log2(t) - 4) ** 2 for t in TEMPS]
    scr = [math.log2(t) ** 2 for t in TEMPS]
    assert curve.loc[("random order", 1), "mean regret"] == pytest.approx((sum(fin) + sum(scr)) / 12)
    assert curve.loc[("usual {1, 4} order", 1), "mean regret"] == pytest.approx((16 + 0) / 2)
    assert curve.loc[("usual {1, 4} order", 2), "mean regret"] == pytest.approx((4 + 0) / 2)
    assert curve.loc[("advisor-led", 1), "mean regret"] == pytest.approx(0.0)
    # all six runs: every order has found the best
    assert curve.xs(6, level="k")["mean regret"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    # the random order's k = 2: mean over the 15 pairs of the smaller regret, worked out here
    pairs = lambda r: sum(min(a, b) for a, b in itertools.combinations(r, 2)) / 15  # noqa: E731
    assert curve.loc[("random order", 2), "mean regret"] == pytest.approx((pairs(fin) + pairs(scr)) / 2)


def test_the_verification_plan_is_the_advised_t_then_its_neighbours():
    assert verify.verification_plan(8.0, TEMPS, 3) == [8.0, 4.0, 16.0]
    assert verify.verification_plan(9.0, (1.0, 2.0, 4.0, 10.0, 40.0), 2) == [10.0, 4.0]
    assert verify.usual_order((1.0, 2.0, 4.0, 10.0, 40.0)) == [1.0, 4.0, 2.0, 10.0, 40.0]
    with pytest.raises(ValueError, match="k=0"):
        verify.verification_plan(8.0, TEMPS, 0)


def confident_store(n_setups=48, seed=7):
    """AdamW: flat curves (every T within 0.5 pp). SGD: for half the setups T* moves one octave (up or down).

    T* is T = 8 with a pretrained teacher and T = 2 from scratch; the moves are balanced (as
    many up as down per origin, placed at random), so the planted rule stays the best guess
    and an SGD advice is right about half the time.
    """
    rng = random.Random(seed)
    moves = {}
    for origin in ("finetuned", "scratch"):
        shifts = [0.0] * 6 + [1.0] * 3 + [-1.0] * 3
        rng.shuffle(shifts)
        moves[origin] = shifts
    rows, curves = [], {}
    for i in range(n_setups):
        opt = "adamw" if i % 2 else "sgd"
        origin = "finetuned" if (i // 2) % 2 else "scratch"
        star = (3.0 if origin == "finetuned" else 1.0) + (moves[origin].pop() if opt == "sgd" else 0.0)
        curv = 0.02 if opt == "adamw" else 1.0
        curves[100 + i] = (opt, lambda t, c=curv, s=star: 70 - c * (math.log2(t) - s) ** 2)
        for t in TEMPS:
            rows.append(row(teacher_origin=origin, optimizer=opt, teacher_epochs=100 + i, teacher_id=f"t{i}",
                            temperature=t, seed=0, val_acc=curves[100 + i][1](t), test_acc=curves[100 + i][1](t),
                            val_fraction=0.1))
    return frame(rows), curves


@pytest.mark.slow
def test_the_stated_confidence_matches_how_often_the_t_is_right_on_a_planted_world():
    store, curves = confident_store()
    table = setups.sweeps(store)
    long = heldout.evaluate(table, "setup")
    adv = long[long["strategy"] == "advisor"]
    # independent: a hit is a held-out T within 0.5 pp of the planted curve's best over the grid
    stated, observed = {"adamw": [], "sgd": []}, {"adamw": [], "sgd": []}
    for i, t, p in zip(adv["row"], adv["T"], adv["confidence"]):
        opt, acc = curves[int(table.loc[i, "teacher_epochs"])]
        stated[opt].append(p)
        observed[opt].append(max(acc(u) for u in TEMPS) - acc(t) <= 0.5)
    for o in ("adamw", "sgd"):
        s, h = sum(stated[o]) / len(stated[o]), sum(observed[o]) / len(observed[o])
        assert abs(s - h) < 0.15, (o, s, h)
    assert sum(observed["sgd"]) < len(observed["sgd"])  # the planted world makes SGD advice miss sometimes
    rel = heldout.reliability(long).set_index("level")
    assert abs(rel.loc["all", "stated"] - rel.loc["all", "observed"]) < 0.1
    assert rel.loc["all", "observed"] == pytest.approx(adv["hit"].mean())


@pytest.mark.slow
def test_evaluation_json_holds_every_strategy_and_the_curve(planted, tmp_path):
    table, _ = planted
    result = verdict.evaluation(table)
    path = verdict.write(result, tmp_path / "07" / "evaluation.json")
    data = json.loads(path.read_text())
    strategies = set(data["regret_pp"]["setup"])
    assert {"advisor", "best single T", "no features"} | {heldout.fixed(t) for t in TEMPS} <= strategies
    assert data["regret_pp"]["setup"]["best single T"]["mean regret"] == pytest.approx(4.0)
    assert {r["order"] for r in data["regret_vs_runs"]} == set(verify.ORDERS)
    note = "\n".join(verdict.lines(result))
    assert "beats the best single T" in note and "chosen and scored on validation accuracy" in note


@pytest.mark.slow
def test_the_closing_note_says_plainly_when_the_advisor_does_not_beat_a_fixed_t():
    flat = setups.sweeps(planted_store(best=lambda *a: 2.0))   # every setup wants T = 4: nothing to learn
    text = "\n".join(verdict.lines(verdict.evaluation(flat)))
    assert "does NOT beat the best single T" in text and "does not beat a fixed T" in text


def noise_best(seed=3):
    """Each setup's best log2 T drawn at random (T = 1 three times in four, else T = 8), whatever its features."""
    rng = random.Random(seed)
    draws = {s: rng.choice([0.0, 0.0, 0.0, 3.0]) for s in SETUPS}
    return lambda *setup: draws[setup]


def single_t_loo_by_hand(stars):
    """Leave-one-out mean regret of the best single T on planted curves (regret (log2 T − log2 T*)²)."""
    n = len(stars)
    def fold_cost(t, i):  # noqa: E306 - mean regret of T over every setup but i
        return sum((math.log2(t) - b) ** 2 for j, b in enumerate(stars) if j != i) / (n - 1)
    picks = [min(TEMPS, key=lambda t: (round(fold_cost(t, i), 9), t)) for i in range(n)]
    return sum((math.log2(t) - b) ** 2 for t, b in zip(picks, stars)) / n


@pytest.mark.slow
def test_features_that_carry_only_noise_cannot_make_the_advisor_worse_than_one_t():
    best = noise_best()
    table = setups.sweeps(planted_store(best=best))
    # by hand: a fixed T costs (log2 T)^2 points on a T = 1 setup and (log2 T - 3)^2 on a T = 8 one
    n, eights = len(SETUPS), sum(best(*s) == 3.0 for s in SETUPS)
    assert 0 < eights < n / 2
    cost = {t: ((n - eights) * math.log2(t) ** 2 + eights * (math.log2(t) - 3) ** 2) / n for t in TEMPS}
    t_best = min(cost, key=cost.get)
    long = heldout.evaluate(table, "setup")
    c = heldout.comparison(long, "setup")
    stars = [best(*s) for s in SETUPS]
    assert c["best single T"] == pytest.approx(single_t_loo_by_hand(stars))
    assert c["at_most_best_single"], c
    full = calibration.fit_calibration(table)
    assert full.single_t == t_best and "features are not used" in full.describe()
    assert calibration.Calibration.from_json(json.loads(json.dumps(full.to_json()))) == full


@pytest.mark.slow
def test_features_that_beat_one_t_by_less_than_a_standard_error_are_not_kept():
    """A noise world where the features' best leave-one-out regret is lower than one T's by chance."""
    best = noise_best(4)
    table = setups.sweeps(planted_store(best=best))
    n, stars = len(SETUPS), [best(*s) for s in SETUPS]
    single_loo = single_t_loo_by_hand(stars)
    cal = calibration.fit_calibration(table)
    assert cal.loo["single_mean_regret"] == pytest.approx(single_loo)
    assert cal.loo["features_mean_regret"] < single_loo            # the lowest regret alone would keep them
    assert cal.loo["features_mean_regret"] + cal.loo["features_minus_single_se"] >= single_loo  # within one SE
    cost = {t: sum((math.log2(t) - b) ** 2 for b in stars) / n for t in TEMPS}
    assert cal.single_t == min(cost, key=cost.get) and "standard error" in cal.describe()
