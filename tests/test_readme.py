"""The README's commands run as written, with the mini preset and tiny durations substituted.

Every ``bash`` and ``python`` block of README.md is read; each command runs in a
temporary folder (``KDLIB_OUTPUTS`` and a ``notebooks`` link), so nothing lands in the
repository. Substitutes: papermill commands get the mini preset, the mini dataset and
tiny durations (``readme_papermill.TINY``, for the parameters the notebook declares) and
``submitit-local`` for ``slurm`` (the same job protocol without a cluster); ``make demo``
runs the quickstart (``DEMO_NOTEBOOKS``; the other notebooks run in
test_notebooks.py, test_study_notebooks.py and test_advisor.py) through ``readme_papermill.py``, which adds the same durations. Skipped,
each with its reason: ``conda`` (not on the test machine; the .venv running this test is
the environment environment.yml describes), ``export`` (the test sets its own data and
output folders), ``make test`` (this suite: it would run itself), ``make test-fast`` (a
subset of this suite), the local Slurm commands (tests/test_slurm_real.py runs the same
script and tests). Each command's time is
printed (``pytest -s``).
"""
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readme_papermill import TINY, tiny_arguments

REPO = Path(__file__).resolve().parents[1]
SKIP = {
    "conda": "conda is not on the test machine; the .venv running this test is the environment it creates",
    "export": "the test sets KDLIB_OUTPUTS to a temporary folder and reads the mini world's data instead",
    "make test": "the test suite itself: running it here would run this test again",
    "make test-fast": "a subset of this suite (its tests run here already)",
    "scripts/local_slurm.sh": "tests/test_slurm_real.py starts and stops the cluster with this same script",
    "python -m pytest": "the Slurm tests of this suite (tests/test_slurm_real.py)",
}
MINI = {"preset": "mini", "datasets": '["fmnist-fine"]', "executor": "submitit-local"}
# make demo's own steps (data check, the papermill loop into KDLIB_OUTPUTS, the scorecard) run on the
# quickstart; every other notebook runs under papermill at tiny durations in tests/test_notebooks.py,
# test_study_notebooks.py and test_advisor.py, so running them here too would only double the suite's longest test.
DEMO_NOTEBOOKS = "notebooks/00_quickstart.ipynb"


def commands(text: str) -> list[tuple[str, str]]:
    """(language, command) for every command of the README's bash and python blocks, in order."""
    out = []
    for language, body in re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S):
        if language == "python":
            out.append(("python", body))
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(("bash", line))
    return out


def skip_reason(command: str) -> str | None:
    for prefix, reason in SKIP.items():
        if command == prefix or command.startswith(prefix + " "):
            return reason
    return None


def papermill_argv(command: str) -> list[str]:
    """The command with mini values for preset/datasets/executor and tiny durations appended."""
    argv = shlex.split(command)
    for i, part in enumerate(argv[:-2]):
        if part == "-p" and argv[i + 1] in MINI:
            argv[i + 2] = MINI[argv[i + 1]]
    notebook = next(a for a in argv if a.endswith(".ipynb"))
    return [sys.executable, "-m", "papermill", *argv[1:], *tiny_arguments(str(REPO / notebook))]


def make_argv(command: str) -> list[str]:
    """make, with the .venv that runs this test treated as installed (never reinstalled from here)."""
    venv = Path(sys.prefix)
    argv = ["make", "-C", str(REPO), "-o", str(venv / ".installed"), f"VENV={venv}"]
    if command.split()[1] == "demo":
        argv.append(f"PAPERMILL={sys.executable} {REPO / 'tests' / 'readme_papermill.py'} --cwd notebooks")
        argv.append(f"NOTEBOOKS={DEMO_NOTEBOOKS}")
    return argv + command.split()[1:]


def python_source(code: str) -> str:
    """The README's Python with tiny durations: teachers and students train an epoch or two."""
    code = re.sub(r'specs\.teacher\(([^)]*)\)',
                  lambda m: f"specs.teacher({m.group(1)}, epochs={TINY['teacher_epochs']}, "
                            f"pretrain_epochs={TINY['pretrain_epochs']})", code)
    return re.sub(r'specs\.distill\(([^)]*)\)', lambda m: f"specs.distill({m.group(1)}, epochs={TINY['distill_epochs']})",
                  code)


def test_the_readme_lists_the_commands_a_newcomer_needs():
    found = [c for _, c in commands((REPO / "README.md").read_text())]
    for needed in ("make demo", "make test-fast", "make test"):
        assert needed in found, found
    assert any(c.startswith("papermill ") and "-p datasets '[" in c for c in found)
    assert "outputs/runs" not in (REPO / "README.md").read_text()  # the store is outputs/store/


@pytest.mark.training
@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(3600)  # make demo inside: beyond the suite's 900 s per test
def test_every_readme_command_runs_as_written_with_mini_substitutes(tmp_path):
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    (tmp_path / "outputs").mkdir()  # as in a checkout (outputs/.gitkeep): papermill writes outputs/<name>.ipynb there
    env = {**os.environ, "KDLIB_OUTPUTS": str(tmp_path / "outputs"), "PYTHONPATH": str(REPO)}
    env.pop("KDLIB_DATA", None)
    times, skipped = [], []
    for language, command in commands((REPO / "README.md").read_text()):
        reason = skip_reason(command) if language == "bash" else None
        if reason:
            skipped.append((command, reason))
            continue
        if language == "python":
            argv, shown = [sys.executable, "-c", python_source(command)], "the library example (python)"
        elif command.startswith("make "):
            argv, shown = make_argv(command), command
        elif command.startswith("papermill "):
            argv, shown = papermill_argv(command), command
        else:
            raise AssertionError(f"README command {command!r} has no substitute here; add one or a skip reason")
        started = time.perf_counter()
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3600)
        times.append((shown, time.perf_counter() - started))
        assert result.returncode == 0, f"{shown}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    print("\nREADME commands (mini substitutes):")
    for shown, seconds in times:
        print(f"  {seconds:7.1f} s  {shown}")
    for command, reason in skipped:
        print(f"  skipped  {command}  ({reason})")
    assert all(skip_reason(c) for c, _ in skipped), skipped
    assert (tmp_path / "outputs" / "02_cifar100.ipynb").is_file()  # the commands wrote into the temporary folder
    assert (tmp_path / "outputs" / "00_quickstart.ipynb").is_file()  # make demo followed KDLIB_OUTPUTS
    assert (tmp_path / "outputs" / "findings.md").is_file() and (tmp_path / "outputs" / "findings.html").is_file()
