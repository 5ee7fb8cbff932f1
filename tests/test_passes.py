"""One pass per data stream: widened sharing and the teacher-logit cache change no number.

Every comparison is between two independent ways of training the same specs: in one
widened pass, in today's narrower passes (runs that differ only in the loss), or alone;
with the teacher's logits read from the cache, or computed fresh.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from kdlib import data, jobs, logit_cache, runs, specs, store, train

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)
STEPS = data.train_size("fmnist-fine") // TEACHER.batch_size  # known without reading data (collection reads none)
pytestmark = pytest.mark.training  # make test-fast leaves these out


def grid():
    """2 optimizers x 2 durations x 2 temperatures: 8 runs on one stream, today 4 passes."""
    return [specs.distill(TEACHER, "resnet18", temperature=t, epochs=e, optimizer=o)
            for o in ("adamw", "sgd") for e in (1, 2) for t in (1.0, 4.0)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # killed subprocesses use one thread too: float sums depend on it
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def teacher_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    jobs.materialize(TEACHER, root, progress=False)
    return root


def fresh_store(teacher_root, folder):
    tid = specs.run_id(TEACHER)
    shutil.copytree(teacher_root / tid, folder / tid, ignore=shutil.ignore_patterns("logits"))
    return folder


def numbers(root, spec):
    result = store.RunDir(spec, root).result()
    return result["test_acc"], [(h["epoch"], h["train_loss"], h["test_acc"]) for h in result["history"]]


@pytest.fixture(scope="module")
def widened(teacher_root, tmp_path_factory):
    root = fresh_store(teacher_root, tmp_path_factory.mktemp("widened"))
    _, passes = runs.plan(grid(), root)
    assert [len(p) for p in passes] == [8]  # one pass for the whole stream
    runs.ensure(grid(), root=root, progress=False, logit_cache=False)
    return root


def test_a_widened_pass_gives_the_numbers_of_todays_narrower_passes(widened, teacher_root, tmp_path):
    narrow = fresh_store(teacher_root, tmp_path)
    by_loss_only = {}
    for s in grid():  # today's passes: runs that differ only in temperature
        by_loss_only.setdefault((s.optimizer, s.epochs), []).append(s)
    assert len(by_loss_only) == 4
    for group in by_loss_only.values():
        runs.ensure(group, root=narrow, progress=False, logit_cache=False)
    for s in grid():
        assert numbers(widened, s) == numbers(narrow, s), s
    assert [len(numbers(widened, s)[1]) for s in grid()] == [1, 1, 2, 2] * 2  # each ran its own length


def test_a_run_alone_gives_the_numbers_of_its_widened_pass(widened, teacher_root, tmp_path):
    alone = fresh_store(teacher_root, tmp_path)
    s = grid()[-1]  # sgd, 2 epochs, T = 4
    runs.ensure([s], root=alone, progress=False, logit_cache=False)
    assert numbers(alone, s) == numbers(widened, s)


def test_passes_are_capped_longest_runs_first(tmp_path):
    _, passes = runs.plan(grid(), tmp_path, max_members=3)
    assert [len(p) for p in passes] == [3, 3, 2]
    assert [[s.epochs for s in p] for p in passes] == [[2, 2, 2], [2, 1, 1], [1, 1]]
    with pytest.raises(ValueError, match="max_members"):
        runs.plan(grid(), tmp_path, max_members=0)


class Forwards:
    """Counts the teacher's forward calls (on the batches of a pass)."""

    def __init__(self, model):
        self.calls = 0
        model.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))


def distil(root, spec, use_cache):
    teacher = jobs.load_model(TEACHER, root)
    counter = Forwards(teacher)
    train.distill_pass([spec], [store.RunDir(spec, root)], teacher, student_states=[None], progress=False,
                       use_cache=use_cache)
    return counter.calls


def test_teacher_logits_read_from_the_cache_give_the_same_numbers(teacher_root, tmp_path):
    first, later = (specs.distill(TEACHER, "resnet18", temperature=t, epochs=2) for t in (2.0, 3.0))
    cached = fresh_store(teacher_root, tmp_path / "cached")
    assert distil(cached, first, use_cache=True) == 2 * STEPS
    files = sorted((cached / specs.run_id(TEACHER) / "logits").rglob("epoch-*.bin"))
    assert [f.name for f in files] == ["epoch-0.bin", "epoch-1.bin"]
    assert distil(cached, later, use_cache=True) == 0  # the teacher never ran
    plain = fresh_store(teacher_root, tmp_path / "plain")
    assert distil(plain, later, use_cache=False) == 2 * STEPS
    assert not (plain / specs.run_id(TEACHER) / "logits").exists()
    assert numbers(cached, later) == numbers(plain, later)

    raw = bytearray(files[1].read_bytes())  # a flipped bit: set aside, that epoch recomputed
    raw[len(raw) // 2] ^= 0x10  # mid-stream (a bit of the last byte may be deflate padding, which nothing reads)
    files[1].write_bytes(bytes(raw))
    again = specs.distill(TEACHER, "resnet18", temperature=3.0, epochs=2, lr=2e-3)
    assert distil(cached, again, use_cache=True) == STEPS
    assert len(list(files[1].parent.glob("epoch-1.bin.corrupt-*"))) == 1


def test_the_cache_switch_reads_the_environment(monkeypatch):
    monkeypatch.setenv("KDLIB_LOGIT_CACHE", "0")
    assert not logit_cache.enabled() and logit_cache.enabled(True)
    monkeypatch.setenv("KDLIB_LOGIT_CACHE", "maybe")
    with pytest.raises(ValueError, match="KDLIB_LOGIT_CACHE"):
        logit_cache.enabled()


KILLED = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from kdlib import runs, specs, train
grid = [specs.from_dict(d) for d in json.loads(sys.argv[1])]
clip, calls = train.clip_per_tensor, [0]
def counting(params, max_norm):
    calls[0] += 1
    if calls[0] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    clip(params, max_norm)
train.clip_per_tensor = counting
runs.ensure(grid, root=sys.argv[2], progress=False, logit_cache=False)
raise SystemExit("the pass was not killed")
"""


def test_a_kill_during_a_widened_pass_resumes_every_member_exactly(widened, teacher_root, tmp_path):
    """SIGKILL in epoch 2, after the 1-epoch members left: each member ends as if never killed."""
    root = fresh_store(teacher_root, tmp_path)
    cells = grid()
    kill_at = 8 * STEPS + 4 * 3  # 8 members through epoch 1, then 4 members x 3 steps of epoch 2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED, json.dumps([specs.to_dict(s) for s in cells]), str(root),
                           str(kill_at)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    status = {s.epochs: set() for s in cells}
    for s in cells:
        status[s.epochs].add(store.RunDir(s, root).status)
    assert status == {1: {"done"}, 2: {"running"}}
    runs.ensure(cells, root=root, progress=False, logit_cache=False)
    for s in cells:
        assert numbers(root, s) == numbers(widened, s), s
