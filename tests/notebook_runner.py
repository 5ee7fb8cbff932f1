"""Shared by the notebook tests: execute a repository notebook with papermill, read its outputs."""
import json
from pathlib import Path

import papermill

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
