"""Study notebooks 02, 04, 05 and 06 run headless under papermill with tiny parameters.

The general pretraining (``pretrain_epochs=1``) and the teachers are shared by every
notebook of the session through ``KDLIB_OUTPUTS`` (tests/conftest.py), as they are shared
between the notebooks of a real study.
"""
import json

import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from notebook_runner import NOTEBOOKS, execute, execute_checked, text_of

TINY = dict(pretrain_epochs=1, teacher_epochs=2, distill_epochs=1, seeds=[0])  # the mechanics, not the statistics

CASES = {
    "02_training_configuration.ipynb": dict(TINY, distill_epochs=2, temperatures=[1, 40], batch_sizes=[256],
                                            duration_fractions=[0.5, 1.0]),
    "04_teacher_origination.ipynb": dict(TINY, temperatures=[1, 40], finetune_fractions=[0.5, 1.0]),
    # The student shares the teacher's architecture, so its general pretraining is the teacher's (cached):
    # the notebook's mechanics are under test here, not the mini world's numbers.
    "05_student_initialization.ipynb": dict(TINY, temperatures=[1, 40], student_epochs=1, students=["resnet50"]),
    "06_dataset_granularity.ipynb": dict(TINY, temperatures=[1, 40]),
}
FIGURES = {  # each notebook ends with a results explorer, which saves a picture of its state headless
    "02_training_configuration.ipynb": ["fig2_heatmaps", "fig3_duration_overlay", "results_explorer"],
    "04_teacher_origination.ipynb": ["table1_teacher_origination", "results_explorer"],
    "05_student_initialization.ipynb": ["table2_student_initialization", "results_explorer"],
    "06_dataset_granularity.ipynb": ["fig6_granularity", "fig7_overlap", "results_explorer"],
}
# What each notebook must print: its finding checks ran on real numbers.
PRINTS = {
    "02_training_configuration.ipynb": ["1. mean spread over T", "2-3. sgd: cross-over epochs by batch size",
                                        "adamw, batch 256: best T"],
    "04_teacher_origination.ipynb": ["finetuned 1→2 epochs", "2. H_all", "3. from scratch (2 epochs)"],
    "05_student_initialization.ipynb": ["(random)", "(finetuned)", "vs finetune only"],
    "06_dataset_granularity.ipynb": ["1. inflection T: coarse", "3. fmnist-fine (fine) ← fmnist-general-coarse (no overlap)"],
}
# One bad parameter per notebook: a ValueError from kdlib before anything trains.
BAD = {
    "02_training_configuration.ipynb": dict(optimizers=["adam"]),
    "04_teacher_origination.ipynb": dict(finetune_fractions=[0.5, -1]),
    "05_student_initialization.ipynb": dict(student_inits="random"),
    "06_dataset_granularity.ipynb": dict(pretrain_corpora={"fmnist-fine": ["imagenet"]}),
}


def images_of(nb: dict) -> int:
    """Cells whose output carries a picture: charts render offline (SVG), explorers add a PNG."""
    return sum(any({"image/svg+xml", "image/png"} & set(o.get("data", {})) for o in cell.get("outputs", []))
               for cell in nb["cells"])


@pytest.mark.notebook
@pytest.mark.training
@pytest.mark.parametrize("name", sorted(CASES))
def test_study_notebook_runs_under_papermill(name, tmp_path):
    nb = execute_checked(name, tmp_path / name, CASES[name], FIGURES[name])
    assert images_of(nb) >= len(FIGURES[name]), "charts did not render in the executed notebook"
    assert "ResultsExplorer(" in text_of(nb)  # headless, the explorer describes its state
    text = text_of(nb)
    assert "'failed'" not in text, text[-3000:]
    for line in PRINTS[name]:
        assert line in text, f"{line!r} not printed by {name}:\n{text[-3000:]}"


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_parameter_stops_the_notebook_before_any_run(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path / "outputs"))  # an empty store: nothing may appear in it
    assert set(BAD[name]) <= set(papermill.inspect_notebook(str(NOTEBOOKS / name)))
    with pytest.raises(PapermillExecutionError) as err:
        execute(name, tmp_path / name, **TINY, **BAD[name])
    assert err.value.ename == "ValueError", err.value.evalue
    assert not (tmp_path / "outputs" / "store").exists() or not any((tmp_path / "outputs" / "store").iterdir())


def test_every_study_notebook_declares_the_common_parameters():
    common = {"preset", "datasets", "teachers", "students", "temperatures", "seeds", "executor", "slurm",
              "output_dir", "pretrain_epochs", "distill_epochs", "teacher_epochs"}
    for name in CASES:
        declared = papermill.inspect_notebook(str(NOTEBOOKS / name))
        assert common <= set(declared), (name, common - set(declared))
        # literals only: papermill does not recompute derived values
        nb = json.loads((NOTEBOOKS / name).read_text())
        params = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
        for line in "".join(params["source"]).splitlines():
            if line.strip():
                compile(line, name, "exec")
                value = line.split("=", 1)[1].strip()
                assert value[0] in "\"'[{-0123456789" or value in ("None", "True", "False"), (name, line)
