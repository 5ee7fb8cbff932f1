"""scripts/gpu_check.py runs its whole path on CPU with the mini models (the GPU run is the same code)."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
pytestmark = pytest.mark.training  # make test-fast leaves these out


def test_the_gpu_check_prints_one_row_per_model_and_a_shared_pass(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        rows = module.main(["--device", "cpu", "--tiny", "--no-compile", "--k", "2", "--steps", "1"])
    finally:
        torch.set_num_threads(threads)
    assert [r["what"] for r in rows] == ["resnet50 teacher forward", "vit_s teacher forward", "resnet18 student step",
                                         "mnv4 student step", "K=2 shared pass (resnet18 from resnet50)"]
    assert all(math.isfinite(r["img_per_s"]) and r["img_per_s"] > 0 and r["peak_mb"] is None for r in rows)
    out = capsys.readouterr().out
    assert "ms/step" in out and "K=2 shared pass" in out
