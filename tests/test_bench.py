"""The benchmark runs end to end with tiny settings and writes sane records (timings are not checked)."""
import json
import math

import pytest
import torch

from kdlib import bench, data

pytestmark = pytest.mark.training  # make test-fast leaves these out


@pytest.fixture(scope="module", autouse=True)
def restore_threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)  # the benchmark sets its own thread count


def test_the_benchmark_writes_one_record_per_k(tmp_path, capsys):
    records = bench.main(["--ks", "2", "1", "--epochs", "1", "--no-summary", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "bare loop / kdlib" in out and "ideal" in out

    written = json.loads((tmp_path / "sweep.json").read_text())
    assert written == records and [r["k"] for r in written] == [1, 2]
    required = {"k", "separate_s", "shared_s", "measured_speedup", "ideal_speedup", "bare_loop_ratio"}
    for r in written:
        assert required <= set(r)
        assert all(isinstance(r[key], (int, float)) and math.isfinite(r[key]) and r[key] > 0 for key in required)
        assert r["measured_speedup"] == pytest.approx(r["separate_s"] / r["shared_s"])
        t, s, d = r["teacher_s"], r["student_s"], r["data_s"]
        assert r["ideal_speedup"] == pytest.approx(r["k"] * (t + s + d) / (t + d + r["k"] * s))
        assert r["steps"] == 7 and r["threads"] == 1
    assert written[0]["ideal_speedup"] == pytest.approx(1.0)
    assert 1.0 < written[1]["ideal_speedup"] < 2.0

    profile = json.loads((tmp_path / "profile.json").read_text())
    single = profile["single_run_median"]
    assert {"evaluation_s", "checkpoint_s", "clipping_s", "mixup_s", "loader_s", "teacher_s", "train_steps_s",
            "wall_s"} <= set(single)
    assert single["loader_s"] + single["teacher_s"] < single["train_steps_s"] < single["wall_s"]
    bare = profile["bare_loop_median"]  # the bare loop does the same work: steps, then one evaluation
    assert bare["train_steps_s"] + bare["evaluation_s"] <= bare["wall_s"] and 0 <= bare["test_acc"] <= 100
    assert written[0]["bare_loop_ratio"] == pytest.approx(bare["wall_s"] / single["wall_s"])


def test_the_summary_has_every_figure_of_issue_12(tmp_path, capsys):
    bench.main(["--ks", "2", "--epochs", "1", "--grid-epochs", "1", "--no-compile", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("k8_shared_efficiency", "grid02_speedup", "grid02_teacher_forwards_ratio", "epoch_overhead_fraction",
                "student_step_vs_bare"):
        assert isinstance(summary[key], float) and math.isfinite(summary[key]) and summary[key] > 0, key
    assert "compile_speedup" not in summary and "| `compile_speedup` | not measured |" in capsys.readouterr().out
    grid = summary["grid02"]  # 3 T x 2 optimizers x 2 batch sizes, every duration 1 epoch
    assert grid["runs"] == 12 and grid["today"]["passes"] == 4 and grid["new"]["passes"] == 2
    n = len(data.build_dataset("fmnist-fine", "train"))
    steps = {bs: n // bs for bs in (32, 128)}
    assert grid["today"]["teacher_forwards"] == 2 * sum(steps.values())  # one pass per optimizer and batch size
    assert grid["new"]["teacher_forwards"] == sum(steps.values())
    assert summary["grid02_teacher_forwards_ratio"] == pytest.approx(0.5)
    assert 0 < summary["epoch_overhead_fraction"] < 1
    vmap = summary["vmap"]  # the prototype: K students as one vmapped model, against K eager ones
    assert vmap["k"] == 2 and isinstance(vmap["bit_identical"], bool)
    assert all(vmap[f"{w}_student_step_s"] > 0 for w in ("eager", "eager_channels_last", "vmapped"))
    assert vmap["vmap_speedup"] == pytest.approx(vmap["eager_student_step_s"] / vmap["vmapped_student_step_s"])


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--ks", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--epochs", "0"])
