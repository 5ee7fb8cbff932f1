"""Notebook parameters: undeclared papermill names fail at once, -p list text is parsed, values are checked."""
import ast
import time
from pathlib import Path

import papermill
import pytest

from kdlib import parameters, specs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

GOOD = dict(datasets=["fmnist-fine"], teachers=["resnet50"], students=["resnet18"], temperatures=[1, 4.0, 40],
            seeds=[0, 1], optimizers=["adamw", "sgd"], batch_sizes=[64, 256], duration_fractions=[0.0625, 1],
            finetune_fractions=[0.25, 2.0], distill_epochs=16, teacher_epochs=None, student_inits=list(specs.INITS),
            teacher_origins=["finetuned", "scratch"], executor="local", slurm={}, output_dir="02",
            plateau_tolerance=1.0, pretrain_corpora={"fmnist-fine": ["fmnist-general", None]})


def test_check_parameters_accepts_the_defaults():
    parameters.check_parameters("mini", **GOOD)
    parameters.check_parameters("paper", datasets=["pets", "cars"], teachers=["vit_s"], pretrain_corpora={})


@pytest.mark.parametrize("name, value, match", [
    ("datasets", "fmnist-fine", "non-empty list"),
    ("datasets", ["pets"], "dataset names of preset 'mini'"),
    ("teachers", ["resnet51"], "model names"),
    ("students", [], "non-empty list"),
    ("temperatures", [1, 0], "numbers > 0"),
    ("temperatures", [1, "4"], "numbers > 0"),
    ("temperatures", [True], "numbers > 0"),
    ("seeds", [0.5], "integers >= 0"),
    ("optimizers", ["adam"], r"allowed: \['adamw', 'sgd'\]"),
    ("batch_sizes", [0], "integers >= 1"),
    ("duration_fractions", [0.5, -1], "numbers > 0"),
    ("distill_epochs", 0, "None"),
    ("distill_epochs", "16", "None"),
    ("student_inits", ["imagenet"], "student initializations"),
    ("teacher_origins", ["pretrained"], "teacher origins"),
    ("executor", "dask", "executor"),
    ("slurm", [], "dict"),
    ("output_dir", "", "folder"),
    ("plateau_tolerance", -1, ">= 0"),
    ("pretrain_corpora", {"fmnist-fine": ["imagenet"]}, "corpora of preset"),
    ("pretrain_corpora", {"fmnist-coarse": ["fmnist-general"]}, "not in datasets"),
    ("pretrain_corpora", ["fmnist-general"], "must be a dict"),
])
def test_check_parameters_names_the_bad_value(name, value, match):
    with pytest.raises(ValueError, match=match):
        parameters.check_parameters("mini", **{**GOOD, name: value})


def test_check_parameters_refuses_unknown_presets_names_and_paper_corpora():
    with pytest.raises(ValueError, match="unknown preset"):
        parameters.check_parameters("tiny", datasets=["fmnist-fine"])
    with pytest.raises(ValueError, match="no rule for parameter 'colour'"):
        parameters.check_parameters("mini", colour="red")
    with pytest.raises(ValueError, match="ImageNet-1K"):
        parameters.check_parameters("paper", datasets=["cars"], pretrain_corpora={"cars": ["fmnist-general"]})


@pytest.mark.parametrize("name, value, match", [
    ("dataset", "pets", "dataset name of preset 'mini'"),
    ("teacher_arch", "resnet51", "model name of preset 'mini'"),
    ("profile_temperatures", [0], "numbers > 0"),
    ("bottom_ks", [0], "integers >= 1"),
    ("seed", -1, "integer >= 0"),
    ("min_setups", 0, "integer >= 1"),
    ("methods", ["kdd"], "loss names"),
    ("method_args", [], "dict"),
    ("store_root", "", "folder"),
])
def test_every_notebook_parameter_name_has_a_rule(name, value, match):
    with pytest.raises(ValueError, match=match):
        parameters.check_parameters("mini", **{name: value})


def test_every_parameter_declared_by_a_repository_notebook_passes_with_its_default():
    import json
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        cell = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
        source = "".join(cell["source"])
        values = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(source).body}
        parameters.check(dict(values), history=["", source, "parameters.check(globals())"])


def test_executors_named_for_checks_are_the_ones_runs_knows():
    from kdlib import runs
    for name in ("local", "submitit-local", "slurm"):
        assert name in parameters.EXECUTORS and name in runs.EXECUTORS


def test_specs_no_longer_imports_runs():
    tree = ast.parse((Path(specs.__file__)).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "runs" not in imported and "kdlib.runs" not in imported


# ----------------------------------------------------------------------------- check(globals()) on a fake In

DECLARED = 'preset = "mini"\ndatasets = ["fmnist-fine"]\ntemperatures = [1, 4, 40]\nslurm = {}\noutput_dir = "02"\n'
CHECK = "from kdlib import parameters\nparameters.check(globals())"


def namespace(injected: str | None = None, **values) -> dict:
    """What a kernel holds after the parameters cell (and papermill's cell) ran, with its ``In``."""
    ns = {"preset": "mini", "datasets": ["fmnist-fine"], "temperatures": [1, 4, 40], "slurm": {}, "output_dir": "02"}
    ns.update(values)
    ns["In"] = ["", "import os", DECLARED] + ([injected] if injected else []) + [CHECK]
    return ns


def test_an_undeclared_injected_name_fails_naming_it_the_likely_fix_and_the_declared_ones():
    ns = namespace('# Parameters\ntemperaturs = "[1, 2]"\n', temperaturs="[1, 2]")
    with pytest.raises(ValueError) as err:
        parameters.check(ns)
    text = str(err.value)
    assert "'temperaturs'" in text and "did you mean 'temperatures'" in text
    for name in ("datasets", "output_dir", "preset", "slurm", "temperatures"):
        assert repr(name) in text


def test_list_and_dict_text_from_p_is_parsed_in_place_as_json_or_yaml():
    injected = ('# Parameters\ndatasets = "[\\"fmnist-coarse\\"]"\ntemperatures = "[2, 8]"\n'
                'slurm = "{partition: gpu, timeout_min: 60}"\n')
    ns = namespace(injected, datasets='["fmnist-coarse"]', temperatures="[2, 8]",
                   slurm="{partition: gpu, timeout_min: 60}")
    parameters.check(ns)
    assert ns["datasets"] == ["fmnist-coarse"]
    assert ns["temperatures"] == [2, 8]
    assert ns["slurm"] == {"partition": "gpu", "timeout_min": 60}


def test_text_that_is_neither_json_nor_yaml_gets_a_clear_error():
    ns = namespace('# Parameters\ndatasets = "[\\"fmnist-fine\\""\n', datasets='["fmnist-fine"')
    with pytest.raises(ValueError, match=r"datasets=.*neither JSON nor YAML.*-p datasets"):
        parameters.check(ns)


def test_a_bare_word_for_a_list_parameter_says_how_to_write_the_list():
    ns = namespace('# Parameters\ndatasets = "fmnist-coarse"\n', datasets="fmnist-coarse")
    with pytest.raises(ValueError, match=r"""must be a list.*-p datasets '\["fmnist-coarse"\]'"""):
        parameters.check(ns)


def test_a_string_parameter_that_looks_like_a_list_stays_a_string():
    ns = namespace('# Parameters\noutput_dir = "[runs]"\n', output_dir="[runs]")
    parameters.check(ns)
    assert ns["output_dir"] == "[runs]"


def test_bad_values_are_checked_after_parsing():
    ns = namespace('# Parameters\ntemperatures = "[1, 0]"\n', temperatures="[1, 0]")
    with pytest.raises(ValueError, match="numbers > 0"):
        parameters.check(ns)


def test_plain_jupyter_without_papermill_finds_the_latest_parameters_cell():
    ns = namespace(temperatures=[1, -4])
    ns["In"] = ["", DECLARED, "x = 1", "print(x)", CHECK]  # cells run out of order, nothing injected
    with pytest.raises(ValueError, match="numbers > 0"):
        parameters.check(ns)
    ns["temperatures"] = [1, 4]
    parameters.check(ns)


def test_without_history_the_names_that_have_a_rule_are_checked_and_parsed():
    # nbval runs cells without history, a script has no In: the namespace itself is read.
    ns = {"preset": "mini", "temperatures": "[2, 8]", "output_dir": "[x]", "started": 1.5, "In": [""]}
    parameters.check(ns)
    assert ns["temperatures"] == [2, 8] and ns["output_dir"] == "[x]" and ns["started"] == 1.5
    with pytest.raises(ValueError, match="numbers > 0"):
        parameters.check({"preset": "mini", "temperatures": [0]})


# ----------------------------------------------------------------------------- a real papermill run

@pytest.mark.notebook
def test_a_misspelled_papermill_parameter_fails_within_seconds_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path / "outputs"))  # the kernel inherits it
    started = time.perf_counter()
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(NOTEBOOKS / "02_training_configuration.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"temperaturs": "[1, 2]"}, kernel_name="python3",
                                   cwd=str(NOTEBOOKS), progress_bar=False)
    elapsed = time.perf_counter() - started
    assert err.value.ename == "ValueError"
    assert "'temperaturs'" in err.value.evalue and "'temperatures'" in err.value.evalue
    assert "declares" in err.value.evalue
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert not any((tmp_path / "outputs").rglob("*.json")), "something ran before the check"
