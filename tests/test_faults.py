"""Faults: SIGKILL at any point, corrupt checkpoints, racing processes, failing runs.

Every interrupted run must end with exactly the numbers of an uninterrupted one. Killed
subprocesses use one torch thread, like this process (set by the fixture below): float
results depend on the thread count.
"""
import errno
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from kdlib import data, history, io, jobs, runs, specs, store, tables, train

pytestmark = pytest.mark.training  # make test-fast leaves these out

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)
EPOCHS = 3


def steps_per_epoch() -> int:
    """Read from the data when a test needs it (never at import: collection must not need the data)."""
    return len(data.build_dataset("fmnist-fine", "train")) // TEACHER.batch_size


def distill_spec(temperature=4.0, epochs=EPOCHS, **kwargs):
    return specs.distill(TEACHER, "resnet18", temperature=temperature, epochs=epochs, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def every_epoch_checkpoints(monkeypatch):
    """These tests name the checkpoint a fault hits (ckpt-2.pt): the cost budget, which depends on how
    busy the machine is, would otherwise decide whether that file is written at all (also in child processes)."""
    monkeypatch.setenv("KDLIB_CHECKPOINT_BUDGET", "inf")


@pytest.fixture(scope="module")
def teacher_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    jobs.materialize(TEACHER, root, progress=False)
    return root


@pytest.fixture
def root(teacher_root, tmp_path):
    """A fresh store holding only the trained teacher (the same weights in every test)."""
    root = tmp_path / "store"
    tid = specs.run_id(TEACHER)
    shutil.copytree(teacher_root / tid, root / tid)
    return root


@pytest.fixture(scope="module")
def refs(teacher_root):
    """Uninterrupted runs (T = 4 and 1, one shared pass) that interrupted ones must reproduce exactly."""
    runs.ensure([distill_spec(4.0), distill_spec(1.0)], root=teacher_root, progress=False)
    return {t: store.RunDir(distill_spec(t), teacher_root) for t in (4.0, 1.0)}


@pytest.fixture(scope="module")
def ref(refs):
    return refs[4.0]


def same_numbers(run: store.RunDir, ref: store.RunDir) -> None:
    result, clean = run.result(), ref.result()
    assert result["test_acc"] == clean["test_acc"]
    assert [h["train_loss"] for h in result["history"]] == [h["train_loss"] for h in clean["history"]]
    assert [h["epoch"] for h in result["history"]] == list(range(1, run.spec.epochs + 1))


def leftovers(path):
    """Partial or stale files: temp files and checkpoints (set-aside corrupt ones excepted)."""
    return sorted(p.name for p in path.rglob("*")
                  if p.name.endswith(".tmp") or (p.name.startswith("ckpt-") and ".corrupt-" not in p.name))


# ----------------------------------------------------------------------------- SIGKILL

KILLED_JOB = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from kdlib import io, runs, specs, store, train

spec = specs.from_dict(json.loads(sys.argv[1]))
root, where, kill_at = sys.argv[2], sys.argv[3], int(sys.argv[4])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if where == "mid-epoch":  # SIGKILL between two optimizer steps of an epoch
    clip, calls = train.clip_per_tensor, [0]
    def counting(params, max_norm):
        calls[0] += 1
        if calls[0] == kill_at:
            die()
        clip(params, max_norm)
    train.clip_per_tensor = counting
else:  # SIGKILL with half of a file's bytes on disk
    prefix = {"mid-checkpoint-write": ".ckpt-2.pt.", "mid-state-write": ".state.json."}[where]
    write = io._write
    def torn(f, data):
        path = os.readlink(f"/proc/self/fd/{f.fileno()}")
        after_ckpt2 = os.path.exists(os.path.join(os.path.dirname(path), "ckpt-2.pt"))
        if os.path.basename(path).startswith(prefix) and (where != "mid-state-write" or after_ckpt2):
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            die()
        write(f, data)
    io._write = torn
runs.ensure([spec], root=root, progress=False)
raise SystemExit("the run was not killed")
"""


@pytest.mark.parametrize("where", ["mid-epoch", "mid-checkpoint-write", "mid-state-write"])
def test_a_run_killed_anywhere_resumes_to_the_same_numbers(root, ref, where):
    spec = distill_spec()
    run = store.RunDir(spec, root)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kill_at = steps_per_epoch() + 3  # the 3rd step of epoch 2
    proc = subprocess.run([sys.executable, "-c", KILLED_JOB, json.dumps(specs.to_dict(spec)), str(root), where,
                           str(kill_at)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # What the kill left: the epoch-1 checkpoint is the newest trusted state, never a partial file.
    assert not run.done and [c["epoch"] for c in run._state()["checkpoints"]] == [1]
    names = {p.name for p in run.path.iterdir()}
    if where == "mid-checkpoint-write":
        torn = [p for p in run.path.glob(".ckpt-2.pt.*.tmp")]
        assert len(torn) == 1 and 0 < torn[0].stat().st_size and "ckpt-2.pt" not in names
    if where == "mid-state-write":
        assert "ckpt-2.pt" in names and list(run.path.glob(".state.json.*.tmp"))  # complete but never listed
    assert run.load_checkpoint()["epoch"] == 1
    # The live history held every epoch that ended (epoch 2 too, when the kill came while checkpointing it).
    assert [r["epoch"] for r in history.read(run.path)] == ([1, 2] if where != "mid-epoch" else [1])

    runs.ensure([spec], root=root, progress=False)  # resume here, with the same single thread
    same_numbers(run, ref)
    assert leftovers(run.path) == []
    assert history.read(run.path) == run.result()["history"]  # after resume: each epoch once, the final numbers


# ----------------------------------------------------------------------------- corrupt checkpoints

@pytest.mark.parametrize("damage", ["newest-bit-flipped", "both-truncated"])
def test_a_corrupt_checkpoint_is_set_aside_and_the_run_recovers(root, refs, damage, monkeypatch, capsys):
    """One member of a shared pass loses checkpoints: it falls back (or starts over) on its own."""
    group = [distill_spec(4.0), distill_spec(1.0)]
    run, other = (store.RunDir(s, root) for s in group)
    save, saved = store.RunDir.save_checkpoint, []

    def stop_after_epoch_2(self, state, epoch):
        save(self, state, epoch)
        saved.append(epoch)
        if saved.count(2) == len(group):
            raise KeyboardInterrupt  # an interrupt is not a failure: nothing is recorded

    monkeypatch.setattr(store.RunDir, "save_checkpoint", stop_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        runs.ensure(group, root=root, progress=False)
    monkeypatch.undo()
    for r in (run, other):
        assert r.status == "running" and [c["epoch"] for c in r._state()["checkpoints"]] == [1, 2]

    if damage == "newest-bit-flipped":
        raw = bytearray((run.path / "ckpt-2.pt").read_bytes())
        raw[len(raw) // 2] ^= 0x01
        (run.path / "ckpt-2.pt").write_bytes(bytes(raw))
    else:
        for name in ("ckpt-1.pt", "ckpt-2.pt"):
            file = run.path / name
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])

    runs.ensure(group, root=root, progress=False)
    out = capsys.readouterr().out
    assert f"{run.id}: checkpoint ckpt-2.pt unusable (sha256 mismatch)" in out
    if damage == "newest-bit-flipped":
        assert f"resuming {run.id} from epoch 1" in out
    else:
        assert "ckpt-1.pt unusable" in out and f"resuming {run.id}" not in out  # nothing trusted left: start over
    assert f"resuming {other.id} from epoch 2" in out
    same_numbers(run, refs[4.0])
    same_numbers(other, refs[1.0])
    set_aside = sorted(p.name.split(".corrupt-")[0] for p in run.path.glob("*.corrupt-*"))
    assert set_aside == (["ckpt-2.pt"] if damage == "newest-bit-flipped" else ["ckpt-1.pt", "ckpt-2.pt"])
    assert leftovers(root) == []


# ----------------------------------------------------------------------------- racing processes

def _racer(grid, root, barrier) -> None:
    """One of eight processes asked for the same runs at the same moment (forked: no import cost)."""
    finish = store.RunDir.finish

    def logged(self, *args, **kwargs):
        finish(self, *args, **kwargs)
        fd = os.open(root / "finished.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{self.id} {os.getpid()}\n".encode())
        os.close(fd)

    store.RunDir.finish = logged
    barrier.wait()
    frame = runs.ensure(grid, root=root, progress=False)
    if list(frame["status"]) != ["done"] * len(grid):
        raise SystemExit(f"not done: {frame}")


def test_eight_processes_racing_on_the_same_runs_write_each_record_once(tmp_path):
    """Teacher and students are trained by exactly one of them; the others wait, then skip."""
    root = tmp_path / "store"
    root.mkdir()
    grid = specs.grid(distill_spec(epochs=1), temperature=[1.0, 4.0])
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    procs = [ctx.Process(target=_racer, args=(grid, root, barrier)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0] * 8

    finished = [line.split()[0] for line in (root / "finished.log").read_text().splitlines()]
    expected = sorted([specs.run_id(TEACHER), *(specs.run_id(s) for s in grid)])
    assert sorted(finished) == expected  # each record written exactly once
    frame = tables.load_results(root, kind="all")
    assert sorted(frame["run_id"]) == expected and set(frame["status"]) == {"done"}
    assert leftovers(root) == [] and not list(root.rglob("error.json")) and not list(root.rglob("state.json"))
    for rid in expected:
        json.loads((root / rid / "result.json").read_text())  # complete JSON


# ----------------------------------------------------------------------------- failures

def test_a_failed_run_records_its_traceback_and_is_retried_on_request(root, monkeypatch):
    spec = distill_spec(temperature=2.0, epochs=1)
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("the loss went NaN (simulated)")

    monkeypatch.setattr(train, "distill_pass", broken)
    with pytest.warns(RuntimeWarning, match="retry_failed=True"):
        frame = runs.ensure([spec], root=root, progress=False)
    row = frame.iloc[0]
    assert row["status"] == "failed" and "NaN (simulated)" in row["error"]
    error = store.RunDir(spec, root).error()
    assert "Traceback" in error["traceback"] and "broken" in error["traceback"]
    listed = tables.load_results(root)
    assert listed.set_index("run_id").loc[specs.run_id(spec), "status"] == "failed"

    again = runs.ensure([spec], root=root, progress=False)  # failed runs are not rerun by default
    assert len(calls) == 1 and again.iloc[0]["status"] == "failed"

    monkeypatch.undo()
    retried = runs.ensure([spec], root=root, progress=False, retry_failed=True)
    assert retried.iloc[0]["status"] == "done" and retried.iloc[0]["test_acc"] is not None
    assert store.RunDir(spec, root).error() is None


# ----------------------------------------------------------------------------- a full disk

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_stops_the_run_clearly_keeps_its_checkpoint_and_it_resumes_once_freed(root, ref, code,
                                                                                         monkeypatch):
    spec = distill_spec()
    run = store.RunDir(spec, root)
    write = io._write

    def no_space(f, data):
        if os.path.basename(os.readlink(f"/proc/self/fd/{f.fileno()}")).startswith(".ckpt-2.pt."):
            f.write(data[: len(data) // 3])  # the disk fills part-way through the write
            raise OSError(code, os.strerror(code))
        write(f, data)

    monkeypatch.setattr(io, "_write", no_space)
    with pytest.raises(store.DiskFull) as stopped:
        runs.ensure([spec], root=root, progress=False)
    message = str(stopped.value)
    assert f"cannot write ckpt-2.pt in {run.path}" in message and "MiB to write" in message
    assert "Make room for at least" in message
    assert ("quota" if code == errno.EDQUOT else "file system is full") in message
    assert "resumes from its last checkpoint" in message
    assert leftovers(run.path) == ["ckpt-1.pt"]  # no half-written file; the previous checkpoint stays
    assert run.load_checkpoint()["epoch"] == 1 and run.status == "running"  # not recorded as a failure

    monkeypatch.undo()  # space freed
    runs.ensure([spec], root=root, progress=False)
    same_numbers(run, ref)


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 16 MiB file system (tmpfs), mounted for this test."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs ({done.stderr.strip()}); the injected-error test "
                    "above covers the same path")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_real_file_system_that_fills_up_stops_the_run_and_it_resumes_once_space_is_freed(teacher_root, ref,
                                                                                            tiny_filesystem,
                                                                                            monkeypatch):
    root = tiny_filesystem / "store"
    tid = specs.run_id(TEACHER)
    shutil.copytree(teacher_root / tid, root / tid)
    spec = distill_spec()
    run = store.RunDir(spec, root)
    save = store.RunDir.save_checkpoint
    filler = tiny_filesystem / "filler"

    def fill_after_epoch_1(self, state, epoch):
        save(self, state, epoch)
        if epoch == 1:  # leave room for half a checkpoint: epoch 2's write finds the disk full
            st = os.statvfs(tiny_filesystem)
            half = (self.path / "ckpt-1.pt").stat().st_size // 2
            filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - half))

    monkeypatch.setattr(store.RunDir, "save_checkpoint", fill_after_epoch_1)
    with pytest.raises(store.DiskFull, match=f"cannot write ckpt-2.pt in {run.path}: the file system is full"):
        runs.ensure([spec], root=root, progress=False)
    assert leftovers(run.path) == ["ckpt-1.pt"] and run.load_checkpoint()["epoch"] == 1

    filler.unlink()
    monkeypatch.undo()
    runs.ensure([spec], root=root, progress=False)
    same_numbers(run, ref)
    assert leftovers(run.path) == []
