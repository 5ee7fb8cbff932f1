"""Notebooks 00, 01 and 03 run headless under papermill (tiny parameters) and under nbval."""
import json
import os
import subprocess
import sys

import pytest

from notebook_runner import NOTEBOOKS, execute_checked, text_of

TINY = dict(pretrain_epochs=1, teacher_epochs=2, distill_epochs=2)

CASES = {
    "00_quickstart.ipynb": dict(TINY, temperatures=[1, 40], profile_temperatures=[1, 40]),
    "01_kd_approach.ipynb": dict(TINY, temperatures=[1, 40], methods=["dkd", "ctkd", "dist"]),
    "03_class_relationships.ipynb": dict(TINY, temperatures=[4], profile_temperatures=[1, 40], bottom_ks=[2]),
}
FIGURES = {  # the explorers at the end of each notebook save a picture of their state headless
    "00_quickstart.ipynb": ["teacher_softmax_profile", "accuracy_vs_temperature", "temperature_explorer",
                            "results_explorer"],
    "01_kd_approach.ipynb": ["fig1_methods", "results_explorer"],
    "03_class_relationships.ipynb": ["fig4_softmax_profile", "fig5_supervisory_signal", "results_explorer"],
}


@pytest.mark.notebook
@pytest.mark.training
@pytest.mark.parametrize("name", sorted(CASES))
def test_notebook_runs_under_papermill_and_nbval(name, tmp_path):
    nb = execute_checked(name, tmp_path / name, CASES[name], FIGURES[name])
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert sum("image/svg+xml" in o.get("data", {}) for o in outputs) >= 1, "charts did not render offline"
    assert "ResultsExplorer(" in text_of(nb)
    if name == "00_quickstart.ipynb":
        assert "student on labels alone" in text_of(nb)
        assert "TemperatureExplorer(" in text_of(nb)
    # nbval (lax) re-runs the executed copy: every cell must run; the runs are cached now.
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                             str(tmp_path / name)], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stdout[-3000:]


# Put first in a copy of the notebook: in the kernel, anything that trains raises. The jobs of
# submitit-local are other processes (they import kdlib afresh), so their training is untouched.
NO_TRAINING_HERE = """
import torch
from kdlib import train

def _trained_in_the_kernel(*args, **kwargs):
    raise RuntimeError("the notebook trained in its own kernel (executor='submitit-local' must train in jobs)")

train.train_pass = train.supervised = train.distill_pass = _trained_in_the_kernel
torch.Tensor.backward = torch.autograd.backward = _trained_in_the_kernel
"""


@pytest.mark.notebook
@pytest.mark.training
@pytest.mark.slow
@pytest.mark.parametrize("name", ["00_quickstart.ipynb", "03_class_relationships.ipynb"])
def test_with_submitit_local_notebooks_00_and_03_train_nothing_in_the_kernel(name, tmp_path, monkeypatch):
    import nbformat
    import papermill

    from kdlib import store

    outputs = tmp_path / "outputs"  # an empty store: every teacher is trained now, by a job
    monkeypatch.setenv("KDLIB_OUTPUTS", str(outputs))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(NO_TRAINING_HERE))
    guarded = tmp_path / f"guarded-{name}"
    nbformat.write(nb, guarded)
    params = dict(CASES[name], executor="submitit-local")
    papermill.execute_notebook(str(guarded), str(tmp_path / name), parameters=params, kernel_name="python3",
                               cwd=str(NOTEBOOKS), progress_bar=False)
    text = text_of(json.loads((tmp_path / name).read_text()))
    assert "ResultsExplorer(" in text and "'failed'" not in text, text[-3000:]
    runs = [p.parent for p in (outputs / "store").glob("*/result.json")]
    assert runs, "no run landed in the store"
    logs = list((outputs / "store" / "_jobs").glob("*_log.out"))
    assert len(logs) >= 1, "no submitit job ran"
    assert all(store.status_of(r) == "done" for r in runs)


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), path.name
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), path.name


def test_notebooks_are_thin_one_check_one_grid_builder_no_pandas_analysis():
    """Prose, the literal parameters, one check, one kdlib grid builder, runs.ensure, charts, an explorer."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        body = ["".join(c["source"]) for c in code if "parameters" not in c.get("metadata", {}).get("tags", [])]
        text = "\n".join(body)
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) <= 35, (path.name, len(lines))
        assert text.count("parameters.check(globals())") == 1, path.name
        for forbidden in ("groupby", "pivot", ".merge(", "idxmax", "itertools"):
            assert forbidden not in text, (path.name, forbidden)
        heading, last = ("".join(c["source"]) for c in nb["cells"][-2:])
        assert "Findings scorecard" in heading and nb["cells"][-2]["cell_type"] == "markdown", path.name
        assert nb["cells"][-1]["cell_type"] == "code" and "findings.show(" in last, path.name  # its rows, last
        if not path.name.startswith("07"):
            assert text.count("studies.from_notebook(studies.") == 1 and "runs.ensure(" in text, path.name
            assert 'results_explorer(' in text and 'history="store"' in text, path.name
            assert "train.predict" not in text and "load_model" not in text, path.name  # teachers via the store


def test_quickstart_kd_approach_and_class_relationships_declare_the_common_parameters():
    import papermill

    common = {"preset", "datasets", "teachers", "students", "temperatures", "seeds", "executor", "slurm",
              "output_dir", "pretrain_epochs", "distill_epochs", "teacher_epochs"}
    for name in CASES:
        declared = set(papermill.inspect_notebook(str(NOTEBOOKS / name)))
        assert common <= declared, (name, common - declared)
