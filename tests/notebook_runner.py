"""Shared by the notebook tests: execute a repository notebook with papermill, read its outputs."""
import json
from pathlib import Path

import papermill

from kdlib import paths

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, out: Path, **params) -> dict:
    """Run ``notebooks/<name>`` headless with ``params`` into ``out``; the executed notebook as a dict."""
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=params, kernel_name="python3",
                               cwd=str(NOTEBOOKS), progress_bar=False)
    return json.loads(out.read_text())


def text_of(nb: dict) -> str:
    """Everything the notebook printed or displayed as text."""
    chunks = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            chunks += output.get("text", [])
            chunks += output.get("data", {}).get("text/plain", [])
    return "".join(chunks)


def execute_checked(name: str, out: Path, params: dict, figures: list[str]) -> dict:
    """``execute`` after checking the notebook declares every parameter; each figure saved as PNG and HTML."""
    declared = papermill.inspect_notebook(str(NOTEBOOKS / name))
    assert set(params) <= set(declared), f"unknown parameters {set(params) - set(declared)}"
    nb = execute(name, out, **params)
    folder = paths.outputs_dir() / name.removesuffix(".ipynb")
    for figure in figures:
        assert (folder / f"{figure}.png").stat().st_size > 1000
        assert (folder / f"{figure}.html").is_file()
    return nb
