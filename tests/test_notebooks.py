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


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), path.name
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), path.name
