"""Charts and study helpers on small synthetic results frames: data and encodings via ``to_dict``.

Every chart is also compiled by vl-convert (Vega-Lite → SVG), which catches specs that
serialize but do not render.
"""
import itertools
import math

import altair as alt
import pandas as pd
import pytest
import torch
import vl_convert as vlc

from kdlib import plots


# ----------------------------------------------------------------------------- synthetic results frames

def row(**kw):
    base = dict(kind="distill", preset="mini", dataset="fmnist-fine", teacher="resnet50", teacher_origin="finetuned",
                teacher_epochs=10, teacher_id="t0", pretrain_corpus="fmnist-general", student="resnet18",
                student_init="random", method="kd", variant="kd", temperature=1.0, optimizer="adamw", batch_size=128,
                epochs=30, seed=0, status="done", test_acc=70.0, teacher_acc=83.0, teacher_h_all=0.3,
                teacher_h_minus_max=0.8)
    base.update(kw)
    return base


def frame(rows):
    f = pd.DataFrame(rows)
    f["run_id"] = [f"r{i:04d}" for i in range(len(f))]
    return f


def training_frame(seeds=(0,)):
    """SGD: small T wins short, large T wins long, later with the larger batch; AdamW: flat in T."""
    rows = []
    for opt, bs, e, t, s in itertools.product(["adamw", "sgd"], [64, 256], [1, 2, 4, 8, 16], [1, 4, 40], seeds):
        lt, le = math.log2(t), math.log2(e)
        acc = 40 + 10 * le + (0.3 * lt if opt == "adamw" else lt * (le - (2 if bs == 64 else 3)))
        rows.append(row(optimizer=opt, batch_size=bs, epochs=e, temperature=float(t), seed=s, test_acc=acc + s))
    return frame(rows)


def teacher_frame(seeds=(0,), origins=("finetuned", "scratch")):
    rows = []
    teachers = [("finetuned", 3), ("finetuned", 5), ("finetuned", 10), ("finetuned", 20), ("scratch", 10)]
    for (origin, te), t, s in itertools.product(teachers, [1, 4, 40], seeds):
        if origin not in origins:
            continue
        acc = 60 - math.log2(t) if origin == "scratch" else 72 - te / 5 + math.log2(t) * (1 - te / 20)
        rows.append(row(teacher_origin=origin, teacher_epochs=te, teacher_id=f"{origin}{te}s{s}", temperature=float(t),
                        seed=s, test_acc=acc + s, teacher_acc=80 + te / 4 + s, teacher_h_all=0.5 - te / 50 + s / 100,
                        teacher_h_minus_max=0.6 + te / 60))
    return frame(rows)


def student_frame(seeds=(0,)):
    rows = []
    inits = ["finetuned", "random", "pretrained", "target"]  # stored order differs from the paper's
    for student, init, t, s in itertools.product(["resnet18", "mnv4"], inits, [1, 4, 40], seeds):
        acc = 60 + 3 * plots.INIT_ORDER.index(init) + math.log2(t) + s
        rows.append(row(student=student, student_init=init, temperature=float(t), seed=s, test_acc=acc))
    refs = [dict(kind="supervised", preset="mini", dataset="fmnist-fine", arch=student, origin="finetuned",
                 init="finetuned", epochs=10, seed=s, status="done", test_acc=(67.0 if student == "resnet18" else 75.0) + s)
            for student, s in itertools.product(["resnet18", "mnv4"], seeds)]
    refs.append(dict(kind="supervised", preset="mini", dataset="fmnist-fine", arch="resnet18", origin="target",
                     init="target", epochs=10, seed=0, status="done", test_acc=50.0))
    return frame(rows + refs)


def granularity_frame(seeds=(0,), teachers=("resnet50",)):
    cases = [("fmnist-fine", "fmnist-general", lambda lt: 70 + 2 * min(lt, math.log2(10))),
             ("fmnist-coarse", "fmnist-general", lambda lt: 85 + 2 * min(lt, 1)),
             ("fmnist-fine", "fmnist-general-coarse", lambda lt: 68 - 0.8 * lt)]
    rows = []
    for (d, c, f), teacher, t, s in itertools.product(cases, teachers, [1, 2, 4, 10, 40], seeds):
        rows.append(row(dataset=d, pretrain_corpus=c, teacher=teacher, temperature=float(t), seed=s,
                        test_acc=f(math.log2(t)) + 0.5 * s, teacher_id=f"{d}{c}{teacher}{s}"))
    return frame(rows)


# ----------------------------------------------------------------------------- spec helpers

def units(spec):
    """Every unit spec (one with a mark) of a chart's dict, with the filters above it and its data's name
    (altair hoists data that all layers share to the layer above, so a unit inherits it)."""
    out = []

    def walk(node, filters, data):
        if isinstance(node, dict):
            filters = filters + [t["filter"] for t in node.get("transform", []) if "filter" in t]
            data = node.get("data", {}).get("name", data)
            if "mark" in node:
                mark = node["mark"] if isinstance(node["mark"], str) else node["mark"]["type"]
                out.append({"mark": mark, "encoding": node.get("encoding", {}), "filters": filters,
                            "data": data, "raw": node})
            for key in ("layer", "hconcat", "vconcat", "concat"):
                for child in node.get(key, []):
                    walk(child, filters, data)
            if "spec" in node:
                walk(node["spec"], filters, data)
    walk(spec, [], None)
    return out


def data_of(spec, name=None):
    """Records of a dataset (the top-level one when name is None)."""
    if name is None:
        name = spec["data"]["name"]
    return spec["datasets"][name]


def compiles(chart):
    svg = vlc.vegalite_to_svg(chart.to_dict(), vl_version=alt.SCHEMA_VERSION.rsplit(".", 1)[0].replace(".", "_"))
    assert svg.startswith("<svg")
    return chart.to_dict()


# ----------------------------------------------------------------------------- the original charts keep working

def test_profile_accuracy_and_method_charts_still_work():
    logits = torch.randn(50, 10)
    prof = plots.profile_frame(logits, [1, 40], top=5)
    assert set(prof["temperature"]) == {1.0, 40.0} and prof["rank"].max() == 5
    spec = compiles(plots.softmax_profile(prof))
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    f = training_frame()
    spec = compiles(plots.accuracy_vs_temperature(f[f["epochs"] == 16], color="optimizer", reference=70.0))
    assert any(u["mark"] == "rule" and u["encoding"].get("y", {}).get("field") == "y" for u in units(spec))
    spec = compiles(plots.accuracy_vs_temperature(f[f["epochs"] == 16], column="optimizer", row="batch_size"))
    assert spec["facet"]["column"]["field"] == "optimizer"
    methods = frame([row(temperature=t, test_acc=70 + t / 10) for t in (1.0, 4.0)]
                    + [row(method="dkd", variant="dkd", temperature=float("nan"), test_acc=71.0)])
    spec = compiles(plots.method_comparison(methods))
    assert {r["label"] for r in data_of(spec)} == {"KD T=1", "KD T=4", "dkd"}


# ----------------------------------------------------------------------------- durations

def test_scaled_epochs_rounds_halves_up_and_drops_duplicates():
    assert plots.scaled_epochs(16, [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]) == [1, 2, 4, 8, 16]
    assert plots.scaled_epochs(30, [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]) == [2, 4, 8, 15, 30]
    assert plots.scaled_epochs(10, [0.25, 0.5, 1, 2]) == [3, 5, 10, 20]
    assert plots.scaled_epochs(2, [0.1, 0.2, 1]) == [1, 2]
    with pytest.raises(ValueError, match="integer >= 1"):
        plots.scaled_epochs(0, [1])
    with pytest.raises(ValueError, match="numbers > 0"):
        plots.scaled_epochs(10, [0])


# ----------------------------------------------------------------------------- mean ± std, best T, cross-over, inflection

def test_summaries_show_std_only_when_several_seeds_ran_and_skip_unfinished_runs():
    one = training_frame()
    two = training_frame(seeds=(0, 1))
    two.loc[0, "status"] = "failed"
    assert plots.mean_std_label(71.234, float("nan"), 1) == "71.2"
    assert plots.mean_std_label(71.234, 0.71, 3, digits=2) == "71.23 ± 0.71"
    assert plots.mean_std_label(float("nan"), 0, 0) == "–"
    t1 = plots.mean_std_table(one[one["epochs"] == 16], ["optimizer", "batch_size"])
    assert list(t1.columns) == ["T=1", "T=4", "T=40"] and "±" not in t1.iloc[0, 0]
    t2 = plots.mean_std_table(two[two["epochs"] == 16], ["optimizer", "batch_size"])
    sgd_64_t40 = 40 + 10 * 4 + 2 * math.log2(40)  # training_frame's formula at 16 epochs; seeds add 0 and 1
    assert t2.loc[("sgd", 64), "T=40"] == f"{sgd_64_t40 + 0.5:.1f} ± 0.7"  # 91.1 ± 0.7
    s = plots.summarize(two, ["optimizer", "batch_size", "epochs", "temperature"])
    assert s["seeds"].max() == 2 and s["seeds"].min() == 1  # the failed run is not counted
    with pytest.raises(ValueError, match="no column"):
        plots.summarize(two, ["learning_rate"])


def test_best_temperature_and_sensitivity():
    f = training_frame()
    best = plots.best_temperature(f[f["epochs"] == 1], ["optimizer", "batch_size"])
    assert best.set_index(["optimizer", "batch_size"])["best_T"].to_dict() == {
        ("adamw", 64): 40.0, ("adamw", 256): 40.0, ("sgd", 64): 1.0, ("sgd", 256): 1.0}
    tie = frame([row(temperature=t, test_acc=70.0) for t in (4.0, 1.0, 40.0)])
    assert plots.best_temperature(tie, ["dataset"])["best_T"].item() == 1.0
    sens = plots.sensitivity(f[f["epochs"] == 16], ["optimizer", "batch_size"]).set_index(["optimizer", "batch_size"])
    assert sens.loc[("adamw", 64), "spread"] == pytest.approx(0.3 * math.log2(40))
    assert sens.loc[("sgd", 64), "gain"] == pytest.approx(2 * math.log2(40))
    assert sens.loc[("sgd", 64), "smallest_T"] == 1.0


def test_crossover_finds_the_duration_where_the_best_temperature_moves_up():
    cross = plots.crossover(training_frame()).set_index(["optimizer", "batch_size"])
    assert cross.loc[("sgd", 64), "crossover_epochs"] == 8
    assert cross.loc[("sgd", 256), "crossover_epochs"] == 16  # larger batch: later
    assert math.isnan(cross.loc[("adamw", 64), "crossover_epochs"])  # large T best throughout
    assert cross.loc[("sgd", 64), "best_T_path"] == "1 → 1 → 1 → 40 → 40"
    assert cross.loc[("sgd", 256), "large_T_wins_from"] == 16
    assert cross.loc[("adamw", 64), "large_T_wins_from"] == 1
    # a best T that moves up and back down is no cross-over
    wobble = frame([row(epochs=e, temperature=t, test_acc=a) for e, t, a in
                    [(1, 1.0, 50), (1, 40.0, 40), (2, 1.0, 50), (2, 40.0, 60), (4, 1.0, 70), (4, 40.0, 60)]])
    assert math.isnan(plots.crossover(wobble)["crossover_epochs"].item())


def test_inflection_point_is_the_smallest_temperature_near_the_best():
    f = plots.dataset_traits(granularity_frame())
    points = plots.inflection_points(f, ["case"], tolerance=1.0).set_index("case")
    fine = points.loc["fmnist-fine (fine) ← fmnist-general"]
    assert fine["inflection_T"] == 10 and fine["best_T"] == 10 and fine["trend"] == "rising"
    coarse = points.loc["fmnist-coarse (coarse) ← fmnist-general"]
    assert coarse["inflection_T"] == 2 and coarse["trend"] == "rising"
    none = points.loc["fmnist-fine (fine) ← fmnist-general-coarse"]
    assert none["inflection_T"] == 1 and none["trend"] == "falling" and none["slope"] == pytest.approx(-0.8)
    loose = plots.inflection_points(f, ["case"], tolerance=3.0).set_index("case")
    assert loose.loc["fmnist-fine (fine) ← fmnist-general", "inflection_T"] == 4  # 74 is within 3 of 76.6
    with pytest.raises(ValueError, match="tolerance"):
        plots.inflection_points(f, ["case"], tolerance=-0.5)


def test_dataset_traits_name_granularity_and_overlap():
    f = frame([row(dataset="fmnist-fine", pretrain_corpus="fmnist-general"),
               row(dataset="fmnist-coarse", pretrain_corpus="fmnist-general"),
               row(dataset="fmnist-fine", pretrain_corpus="fmnist-general-coarse"),
               row(dataset="cars", preset="paper", pretrain_corpus="hub"),
               row(dataset="pets", preset="paper", pretrain_corpus="hub:resnet50.a1_in1k")])
    t = plots.dataset_traits(f)
    assert t["granularity"].tolist() == ["fine", "coarse", "fine", "fine", "fine"]
    assert t["overlap"].tolist() == ["overlap", "overlap", "no overlap", "no overlap", "overlap"]
    assert t["case"].tolist()[2:4] == ["fmnist-fine (fine) ← fmnist-general-coarse", "cars (fine) ← ImageNet-1K"]
    assert t["case"].iloc[4] == "pets (fine) ← resnet50.a1_in1k"


# ----------------------------------------------------------------------------- Figs. 2 and 3

def test_training_heatmaps_encode_temperature_by_duration_per_configuration():
    spec = compiles(plots.training_heatmaps(training_frame(seeds=(0, 1))))
    assert spec["facet"]["column"]["field"] == "config"
    assert spec["facet"]["column"]["sort"] == ["adamw · batch 64", "adamw · batch 256", "sgd · batch 64",
                                               "sgd · batch 256"]
    assert spec["facet"]["row"]["field"] == "setup"
    rect, text = [u for u in units(spec) if u["mark"] in ("rect", "text")]
    assert rect["encoding"]["x"]["field"] == "T" and rect["encoding"]["x"]["sort"] == ["1", "4", "40"]
    assert rect["encoding"]["y"] == {**rect["encoding"]["y"], "field": "epochs", "type": "ordinal"}
    assert rect["encoding"]["color"]["field"] == "test_acc"
    assert text["encoding"]["text"]["field"] == "label"
    records = data_of(spec)
    assert len(records) == 2 * 2 * 5 * 3
    cell = next(r for r in records if r["config"] == "sgd · batch 64" and r["epochs"] == 16 and r["T"] == "40")
    assert cell["seeds"] == 2 and cell["label"] == f"{40 + 40 + 2 * math.log2(40) + 0.5:.1f} ± 0.7"
    assert cell["setup"] == "fmnist-fine · resnet50 → resnet18"


def test_duration_overlay_colours_the_longest_duration_and_greys_the_rest():
    spec = compiles(plots.duration_overlay(training_frame()))
    layers = units(spec)
    grey = next(u for u in layers if u["filters"] and "shorter" in str(u["filters"][0]))
    colour = next(u for u in layers if u["mark"] == "line" and "longest" in str(u["filters"][0]))
    assert grey["encoding"]["color"]["field"] == "share"
    assert grey["encoding"]["x"]["scale"]["type"] == "log"
    assert colour["raw"]["mark"]["color"] == "#d62728" and "color" not in colour["encoding"]
    records = data_of(spec)
    longest = {r["epochs"] for r in records if r["duration"] == "longest"}
    assert longest == {16} and {r["share"] for r in records} == {1 / 16, 1 / 8, 1 / 4, 1 / 2, 1}


def test_study_charts_refuse_a_frame_without_finished_runs():
    f = training_frame().assign(status="failed")
    for fn in (plots.training_heatmaps, plots.duration_overlay, plots.teacher_table, plots.student_table,
               plots.granularity_curves):
        with pytest.raises(ValueError, match="no finished"):
            fn(f)


# ----------------------------------------------------------------------------- Tables 1 and 2

def test_teacher_table_has_red_finetuned_blue_scratch_rows_and_the_entropies_beside():
    f = teacher_frame(seeds=(0, 1))
    spec = compiles(plots.teacher_table(f))
    layers = units(spec)
    rects = [u for u in layers if u["mark"] == "rect" and u["encoding"]["color"]["field"] == "test_acc"]
    schemes = {str(u["filters"]): u["encoding"]["color"]["scale"]["scheme"] for u in rects}
    assert sorted(schemes.values()) == ["blues", "reds"]
    assert any("finetuned" in k and v == "reds" for k, v in schemes.items())
    rows = rects[0]["encoding"]["y"]["sort"]
    assert rows == ["resnet50 · finetuned · 3 ep", "resnet50 · finetuned · 5 ep", "resnet50 · finetuned · 10 ep",
                    "resnet50 · finetuned · 20 ep", "resnet50 · scratch · 10 ep"]
    heat = data_of(spec, rects[0]["data"])
    assert all("±" in r["label"] for r in heat)  # two seeds ran
    side = next(u for u in layers if u["encoding"].get("x", {}).get("field") == "stat")
    stats = {(r["row"], r["stat"]): r for r in data_of(spec, side["data"])}
    assert stats[("resnet50 · finetuned · 20 ep", "H_all")]["value"] == pytest.approx(0.5 - 20 / 50 + 0.005)
    assert stats[("resnet50 · finetuned · 20 ep", "H_-max")]["label"] == "0.933 ± 0.000"
    assert stats[("resnet50 · scratch · 10 ep", "teacher acc (%)")]["label"] == "83.0 ± 0.7"
    only_ft = compiles(plots.teacher_table(teacher_frame(origins=("finetuned",))))
    assert [u["encoding"]["color"]["scale"]["scheme"] for u in units(only_ft)
            if u["mark"] == "rect" and u["encoding"]["color"]["field"] == "test_acc"] == ["reds"]


def test_teacher_stats_count_each_teacher_once():
    f = teacher_frame()
    doubled = pd.concat([f, f.assign(student="mnv4")], ignore_index=True)  # two students share each teacher
    stats = plots.teacher_stats(doubled)
    assert set(stats["seeds"]) == {1}


def test_student_table_orders_inits_and_shows_the_finetune_only_reference():
    f = student_frame()
    reference = plots.finetune_reference(f)
    assert sorted(reference["student"]) == ["mnv4", "resnet18"] and set(reference["test_acc"]) == {67.0, 75.0}
    spec = compiles(plots.student_table(f, reference))
    layers = units(spec)
    heat = next(u for u in layers if u["mark"] == "rect" and u["encoding"]["color"]["field"] == "test_acc")
    assert heat["encoding"]["y"]["sort"] == [f"{s} · {i}" for s in ("resnet18", "mnv4") for i in plots.INIT_ORDER]
    side = next(u for u in layers if u["encoding"].get("x", {}).get("field") == "stat")
    margins = {r["row"]: r["margin"] for r in data_of(spec, side["data"]) if r["stat"] == "best KD − FT"}
    assert margins["resnet18 · finetuned"] == pytest.approx(60 + 9 + math.log2(40) - 67)
    assert margins["mnv4 · random"] == pytest.approx(60 + math.log2(40) - 75)
    bare = compiles(plots.student_table(f))
    assert not any(u["encoding"].get("x", {}).get("field") == "stat" for u in units(bare))


# ----------------------------------------------------------------------------- Figs. 6 and 7

def test_granularity_curves_mark_each_inflection_point():
    spec = compiles(plots.granularity_curves(granularity_frame(seeds=(0, 1)), tolerance=1.0))
    layers = units(spec)
    line = next(u for u in layers if u["mark"] == "line")
    assert line["encoding"]["color"]["field"] == "case" and line["encoding"]["x"]["scale"]["type"] == "log"
    point = next(u for u in layers if u["mark"] == "point")
    assert point["raw"]["mark"]["shape"] == "diamond"
    marks = {r["case"]: r["inflection_T"] for r in data_of(spec, point["data"])}
    assert marks == {"fmnist-fine (fine) ← fmnist-general": 10, "fmnist-coarse (coarse) ← fmnist-general": 2,
                     "fmnist-fine (fine) ← fmnist-general-coarse": 1}
    assert any(u["mark"] == "rule" and u["encoding"]["x"]["field"] == "inflection_T" for u in layers)
    two = compiles(plots.granularity_curves(granularity_frame(teachers=("resnet50", "vit_s"))))
    assert len(two["hconcat"]) == 2 and {p["title"] for p in two["hconcat"]} == {"resnet50 → resnet18",
                                                                                 "vit_s → resnet18"}


def test_save_writes_png_and_html(tmp_path):
    paths = plots.save(plots.granularity_curves(granularity_frame()), "fig", tmp_path)
    assert [p.name for p in paths] == ["fig.png", "fig.html"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and "fmnist-coarse" in paths[1].read_text()
