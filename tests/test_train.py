"""The training loop on the real mini world: it learns, it shares a pass, it resumes exactly."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from kdlib import data, jobs, metrics, models, runs, specs, store, train

pytestmark = pytest.mark.training  # make test-fast leaves these out

# A teacher trained from scratch keeps these tests fast (no general pretraining).
TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=10)


def distill_spec(temperature, epochs=3, **kwargs):
    return specs.distill(TEACHER, "resnet18", temperature=temperature, epochs=epochs, **kwargs)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    jobs.materialize(TEACHER, root, progress=False)
    return root


def store_with_teacher(root, folder):
    """A second store holding the same trained teacher (copied: training it again costs minutes)."""
    tid = specs.run_id(TEACHER)
    shutil.copytree(root / tid, folder / tid)
    return folder


def test_distillation_beats_the_untrained_student(root):
    spec = distill_spec(4.0, epochs=8)
    frame = runs.ensure([spec], root=root, progress=False)
    untrained = models.create("resnet18", 10)
    logits, labels = train.predict(untrained, data.build_dataset("fmnist-fine", "test"))
    chance = metrics.accuracy(logits, labels)
    assert frame.iloc[0]["test_acc"] > chance + 25, (frame.iloc[0]["test_acc"], chance)
    assert frame.iloc[0]["teacher_acc"] > 50
    assert frame.iloc[0]["device"].startswith(train.pick_device().type)  # the run records where it trained


def test_one_shared_pass_equals_separate_runs(root, tmp_path):
    """K students in one pass see identical batches: each ends exactly as if trained alone."""
    sweep = [distill_spec(t, epochs=2) for t in (1.0, 10.0)]
    shared = runs.ensure(sweep, root=root, progress=False).sort_values("temperature")
    alone_root = store_with_teacher(root, tmp_path / "alone")
    alone = [runs.ensure([s], root=alone_root, progress=False).iloc[0]["test_acc"] for s in sweep]
    assert list(shared["test_acc"]) == alone
    hist = store.load_history(root, list(shared["run_id"]))
    assert len(hist) == 4  # two evaluated epochs per run


def test_finished_runs_are_skipped(root):
    spec = distill_spec(4.0, epochs=8)
    before = (store.RunDir(spec, root).path / "result.json").stat().st_mtime_ns
    runs.ensure([spec], root=root, progress=False)
    assert (store.RunDir(spec, root).path / "result.json").stat().st_mtime_ns == before


def test_extra_loss_parameters_are_trained_and_checkpointed(root):
    spec = distill_spec(5.0, epochs=2, method="ctkd")
    result = store.RunDir(spec, root)
    runs.ensure([spec], root=root, progress=False)
    temps = [h["temperature"] for h in result.result()["history"]]
    assert all(1 <= t <= 21 for t in temps) and temps[0] != 5.0


JOB = """
import sys
from kdlib import runs, specs
spec = specs.from_dict(__import__("json").loads(sys.argv[1]))
runs.ensure([spec], root=sys.argv[2], progress=False)
"""


def test_a_killed_run_resumes_to_the_same_numbers(root, tmp_path):
    """SIGKILL after some epochs, resume in a fresh process: same final metrics as uninterrupted."""
    spec = distill_spec(4.0, epochs=5, seed=1)
    # The reference run also trains in a fresh process: in-process and subprocess runs may use
    # different CPU thread counts, hence different float summation orders.
    clean_root = store_with_teacher(root, tmp_path / "clean")
    subprocess.run([sys.executable, "-c", JOB, json.dumps(specs.to_dict(spec)), str(clean_root)], check=True)
    clean = store.RunDir(spec, clean_root).result()

    run = store.RunDir(spec, root)
    args = [sys.executable, "-c", JOB, json.dumps(specs.to_dict(spec)), str(root)]
    proc = subprocess.Popen(args)
    deadline = time.time() + 120
    while time.time() < deadline:
        state = run._state()["checkpoints"]
        if state and state[-1]["epoch"] >= 2:
            break
        assert proc.poll() is None, "the job ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not run.done and run._state()["checkpoints"]
    subprocess.run(args, check=True)
    resumed = run.result()
    assert resumed["test_acc"] == clean["test_acc"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in clean["history"]]


def test_per_tensor_clipping_bounds_every_gradient():
    layer = torch.nn.Linear(4, 3)
    layer.weight.grad = torch.full((3, 4), 10.0)
    layer.bias.grad = torch.tensor([0.1, 0.0, 0.0])
    train.clip_per_tensor(list(layer.parameters()), 1.0)
    assert layer.weight.grad.norm().item() == pytest.approx(1.0, rel=1e-4)
    assert torch.allclose(layer.bias.grad, torch.tensor([0.1, 0.0, 0.0]))


def test_teacher_and_dataset_class_counts_must_match(root):
    teacher = jobs.load_model(TEACHER, root)
    spec = specs.distill(specs.teacher("resnet50", "fmnist-coarse", origin="scratch", epochs=1), "resnet18",
                         temperature=1, epochs=1)
    with pytest.raises(ValueError, match="classes"):
        train.distill_pass([spec], [store.RunDir(spec, root)], teacher, student_states=[None])
