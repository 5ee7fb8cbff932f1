"""Charts on small synthetic results frames: data and encodings via ``to_dict``.

Every chart is also compiled by vl-convert (Vega-Lite → SVG), which catches specs that
serialize but do not render.
"""
import math

import altair as alt
import pandas as pd
import pytest
import torch
import vl_convert as vlc

from kdlib import analysis, plots, profiles
from results_frames import frame, granularity_frame, row, student_frame, teacher_frame, training_frame


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

@pytest.mark.slow
def test_profile_accuracy_and_method_charts_still_work():
    logits = torch.randn(50, 10)
    prof = profiles.profile_frame(logits, [1, 40], top=5)
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


# ----------------------------------------------------------------------------- Figs. 2 and 3

@pytest.mark.slow
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

@pytest.mark.slow
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


@pytest.mark.slow
def test_student_table_orders_inits_and_shows_the_finetune_only_reference():
    f = student_frame()
    reference = analysis.finetune_reference(f)
    assert sorted(reference["student"]) == ["mnv4", "resnet18"] and set(reference["test_acc"]) == {67.0, 75.0}
    spec = compiles(plots.student_table(f, reference))
    layers = units(spec)
    heat = next(u for u in layers if u["mark"] == "rect" and u["encoding"]["color"]["field"] == "test_acc")
    assert heat["encoding"]["y"]["sort"] == [f"{s} · {i}" for s in ("resnet18", "mnv4") for i in analysis.INIT_ORDER]
    side = next(u for u in layers if u["encoding"].get("x", {}).get("field") == "stat")
    margins = {r["row"]: r["margin"] for r in data_of(spec, side["data"]) if r["stat"] == "best KD − FT"}
    assert margins["resnet18 · finetuned"] == pytest.approx(60 + 9 + math.log2(40) - 67)
    assert margins["mnv4 · random"] == pytest.approx(60 + math.log2(40) - 75)
    bare = compiles(plots.student_table(f))
    assert not any(u["encoding"].get("x", {}).get("field") == "stat" for u in units(bare))


# ----------------------------------------------------------------------------- Figs. 6 and 7

@pytest.mark.slow
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


@pytest.mark.slow
def test_save_writes_png_and_html(tmp_path):
    paths = plots.save(plots.granularity_curves(granularity_frame()), "fig", tmp_path)
    assert [p.name for p in paths] == ["fig.png", "fig.html"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and "fmnist-coarse" in paths[1].read_text()


@pytest.mark.slow
def test_importing_plots_leaves_the_altair_renderer_alone_until_enable_offline():
    import subprocess
    import sys

    code = ("import altair as alt; import kdlib.plots as p; before = alt.renderers.active; "
            "after = p.enable_offline(); print(before, after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["default", "svg"]
