"""papermill as ``make demo`` calls it, plus tiny durations for the parameters the notebook declares.

The README test runs ``make demo PAPERMILL="python tests/readme_papermill.py --cwd notebooks"``:
the same notebooks and arguments, with training cut to an epoch or two.
"""
import os
import sys

TINY = {"pretrain_epochs": 1, "teacher_epochs": 2, "distill_epochs": 1, "student_epochs": 1, "scratch_epochs": 1}


def tiny_arguments(notebook: str) -> list[str]:
    """``-p name value`` for every tiny duration the notebook declares (an undeclared name would fail it)."""
    import papermill

    declared = papermill.inspect_notebook(notebook)
    return [part for name, value in TINY.items() if name in declared for part in ("-p", name, str(value))]


def main(argv: list[str]) -> None:
    notebook = next(a for a in argv if a.endswith(".ipynb"))
    os.execv(sys.executable, [sys.executable, "-m", "papermill", *argv, *tiny_arguments(notebook)])


if __name__ == "__main__":
    main(sys.argv[1:])
