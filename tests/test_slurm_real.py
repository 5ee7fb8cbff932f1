"""The Slurm path against a real scheduler: a one-node cluster on this machine
(``scripts/local_slurm.sh``), real sbatch/squeue/scontrol/scancel, real job arrays.

Runs are tiny (a 48-image folder, the mini stand-in models) so that the whole file stays
within a few minutes on two shared cores. Jobs ask one CPU and train with one torch
thread; reference runs here use one thread too (float results depend on it).

Slurm holds a requeued batch job for about two minutes before it may start again
(``Reason=BeginTime``); the tests that requeue move that start time to now with
``scontrol update``, where a real cluster would wait it out.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdlib import executors, inflight, runs, specs, store, tables

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.training]
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "local_slurm.sh"
OPTIONS = {"cpus_per_task": 1, "mem_gb": 1, "poll_s": 1, "timeout_min": 10}
TIMINGS: dict[str, float] = {}


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free neighbouring ports")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A fresh one-node cluster for this session, stopped (its jobs cancelled) at the end."""
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "KDLIB_SLURM_DIR": str(state), "KDLIB_SLURM_PORT": str(_free_port_pair())}
    start = time.time()
    done = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"local Slurm did not start (apt-get install slurmctld slurmd slurm-client " \
                                 f"munge?):\n{done.stdout}{done.stderr}"
    TIMINGS["cluster start"] = time.time() - start
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(state / "slurm.conf")
    version = subprocess.run(["sinfo", "-V"], capture_output=True, text=True).stdout.strip()
    yield version
    subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    print(f"\n[{version}] " + ", ".join(f"{k}: {v:.0f} s" for k, v in TIMINGS.items()))


@contextlib.contextmanager
def timed(name: str):
    start = time.time()
    yield
    TIMINGS[name] = time.time() - start


def squeue() -> list[dict[str, str]]:
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r|%E"], capture_output=True, text=True,
                         check=True).stdout
    return [dict(zip(("id", "state", "reason", "dependency"), line.split("|"))) for line in out.splitlines()]


def alive_jobs(root: Path) -> list[dict[str, str]]:
    """Jobs submitted for ``root`` that Slurm still runs or holds (a job lingers a moment after its result)."""
    ours = {p.name.split("_")[0] for p in (root / "_jobs").glob("*_submitted.pkl")}
    return [j for j in squeue() if j["id"].split("_")[0] in ours
            and j["state"] in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED", "CONFIGURING")]


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    """16 train and 8 test images in each of 3 classes, as an image folder."""
    root = tmp_path_factory.mktemp("images") / "set"
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 8)):
        for c in range(3):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray((rng.random((28, 28)) * 80 + c * 80).astype("uint8")).save(folder / f"{i}.png")
    return f"imagefolder:{root}"


@pytest.fixture(scope="module")
def teacher(image_set):
    return specs.teacher("resnet50", image_set, origin="scratch", epochs=1, batch_size=16)


def distill(teacher, temperature=4.0, epochs=1, **kwargs):
    return specs.distill(teacher, "resnet18", temperature=temperature, epochs=epochs, batch_size=16, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def submissions(root: Path) -> int:
    return len(list((root / "_jobs").glob("*_submitted.pkl")))


def job_of(root: Path, spec) -> str:
    return json.loads((root / "_jobs" / "inflight.json").read_text())[specs.run_id(spec)]["job_id"]


def log_of(root: Path, job_id: str) -> str:
    return (root / "_jobs" / f"{job_id}_0_log.out").read_text()


def checkpointed(run: store.RunDir) -> int:
    """The newest epoch state.json lists: read only (checkpoint_epoch() sets bad files aside, a writer's job)."""
    return max((c["epoch"] for c in run._state()["checkpoints"]), default=0)


def wait_for(what, timeout=240, step=0.2):
    deadline = time.time() + timeout
    while not (value := what()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(step)
    return value


@contextlib.contextmanager
def requeued_jobs_start_now():
    """Move the ~2 min begin time Slurm gives a requeued job to now; count the requeues seen."""
    seen: set[str] = set()
    stop = threading.Event()

    def release():
        while not stop.is_set():
            for job in squeue():
                if job["state"] == "PENDING" and job["reason"] == "BeginTime":
                    seen.add(job["id"])
                    subprocess.run(["scontrol", "update", f"JobId={job['id']}", "StartTime=now"],
                                   capture_output=True)
            stop.wait(0.5)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------- a grid

@pytest.fixture(scope="module")
def landed(slurm_cluster, tmp_path_factory, teacher):
    """A 2x2 grid (two shared passes) through Slurm, array_parallelism=1, watched through squeue."""
    root = tmp_path_factory.mktemp("store")
    grid = specs.grid(distill(teacher), temperature=[1.0, 4.0], seed=[0, 1])  # two data streams: two passes
    seen: list[list[dict[str, str]]] = []
    with timed("grid (teacher job, then a 2-task array, parallelism 1)"):
        frame = runs.ensure(grid, executor="slurm", root=root, wait=False, progress=False,
                            slurm={**OPTIONS, "array_parallelism": 1})
        first = squeue()
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(squeue())
                stop.wait(0.3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            collected = runs.ensure(grid, executor="slurm", root=root, progress=False, slurm=OPTIONS)
        finally:
            stop.set()
            watcher.join()
    return dict(root=root, grid=grid, pending=frame, first=first, seen=seen, frame=collected)


def test_a_grid_runs_as_a_teacher_job_then_a_dependent_array_collected_later(landed, teacher):
    root, grid, frame = landed["root"], landed["grid"], landed["frame"]
    assert set(landed["pending"]["status"]) == {"pending"} and len(landed["pending"]) == 4
    assert inflight.running(root) == {}  # every run landed: nothing left in flight
    jobs = {j["id"]: j for j in landed["first"]}
    teacher_job = [j for j in jobs if "_" not in j]
    array = sorted(j for j in jobs if "_" in j)
    assert len(teacher_job) == 1 and len(array) == 2 and array[0].split("_")[0] != teacher_job[0]
    for task in array:  # the array waits for the teacher's job
        assert jobs[task]["state"] == "PENDING" and jobs[task]["dependency"].startswith(f"afterany:{teacher_job[0]}")
    # the second call submitted nothing, it collected what the first submitted
    assert submissions(root) == 3
    assert list(frame["run_id"]) == [specs.run_id(s) for s in grid]
    assert set(frame["status"]) == {"done"} and frame["test_acc"].notna().all()
    assert store.RunDir(teacher, root).done
    # the mini preset asks no GPU: no GPU line in either sbatch script
    scripts = {p.read_text() for p in (root / "_jobs").glob("*_submission.sh")}
    assert len(scripts) == 2 and not any("gpus" in s for s in scripts)
    assert all("#SBATCH --cpus-per-task=1" in s for s in scripts)


def test_array_parallelism_is_respected(landed):
    samples = landed["seen"]
    running = [sum(1 for j in sample if "_" in j["id"] and j["state"] == "RUNNING") for sample in samples]
    assert max(running) == 1  # two tasks, one at a time
    assert any(j["reason"] == "JobArrayTaskLimit" for sample in samples for j in sample)


# ----------------------------------------------------------------------------- preemption, time limits

@pytest.fixture(scope="module")
def teacher_root(tmp_path_factory, teacher):
    """The teacher trained here once, and the seconds a distillation epoch takes on this machine now.

    The fastest of epochs 2-4: the first carries one-time costs (about 2.5x a later one), and a
    pace timed on it underestimates how much work fits in one attempt of a job.
    """
    root = tmp_path_factory.mktemp("teacher")
    spec = distill(teacher, temperature=7.0, epochs=4)
    runs.ensure([spec], root=root, progress=False)
    return root, min(h["seconds"] for h in store.RunDir(spec, root).result()["history"][1:])


@pytest.fixture
def root(teacher_root, teacher, tmp_path):
    """A fresh store holding only the trained teacher."""
    root = tmp_path / "store"
    tid = specs.run_id(teacher)
    shutil.copytree(teacher_root[0] / tid, root / tid)
    return root


def _reference(spec, teacher, root, tmp_path) -> store.RunDir:
    """The same run, uninterrupted, in this process (one thread, like the jobs)."""
    clean = tmp_path / "clean"
    tid = specs.run_id(teacher)
    shutil.copytree(root / tid, clean / tid)
    runs.ensure([spec], root=clean, progress=False)
    return store.RunDir(spec, clean)


def same_numbers(run: store.RunDir, ref: store.RunDir) -> None:
    result, clean = run.result(), ref.result()
    assert result["test_acc"] == clean["test_acc"]
    assert [h["train_loss"] for h in result["history"]] == [h["train_loss"] for h in clean["history"]]
    assert [h["epoch"] for h in result["history"]] == list(range(1, run.spec.epochs + 1))


def test_a_requeued_job_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_run(slurm_cluster, root, teacher,
                                                                                     tmp_path):
    spec = distill(teacher, temperature=5.0, epochs=3)
    run = store.RunDir(spec, root)
    with timed("preemption (scontrol requeue mid-pass)"), requeued_jobs_start_now() as requeued:
        runs.ensure([spec], executor="slurm", root=root, wait=False, progress=False, slurm=OPTIONS)
        job = job_of(root, spec)
        wait_for(lambda: checkpointed(run) >= 1 and not run.done, step=0.1)
        at = checkpointed(run)
        subprocess.run(["scontrol", "requeue", job], check=True)
        frame = runs.ensure([spec], executor="slurm", root=root, progress=False, slurm=OPTIONS)
    assert frame.iloc[0]["status"] == "done" and requeued == {job}
    log = log_of(root, job)
    assert log.count("[kdlib] job runs") == 2  # the same job id, started twice
    resumed_from = int(log.split(f"resuming {run.id} from epoch ")[1].split()[0])
    assert at <= resumed_from < 3  # resumed from the checkpoint it had, not restarted
    same_numbers(run, _reference(spec, teacher, root, tmp_path))


def test_a_job_past_its_time_limit_is_requeued_by_submitit_and_finishes(slurm_cluster, root, teacher, teacher_root):
    """timeout_min=2, USR2 30 s before the limit: attempts are cut short until the work is done.

    Slurm looks at time limits every 30 s and may signal up to 60 s early (sbatch --signal),
    so USR2 comes 30 to 60 s into an attempt (90 s at most), long before the limit's kill; the run
    gets epochs enough for 150 s at the fastest pace seen here, so that a first attempt cannot finish.
    """
    seconds = teacher_root[1]
    epochs = max(6, math.ceil(150 / seconds))  # well past one attempt, however fast a distillation epoch is
    spec = distill(teacher, temperature=6.0, epochs=epochs)
    run = store.RunDir(spec, root)
    options = {**OPTIONS, "timeout_min": 2, "signal_delay_s": 30, "max_num_timeout": 6}
    with timed("time limit (timeout_min=2, work > 70 s)"), requeued_jobs_start_now() as requeued:
        frame = runs.ensure([spec], executor="slurm", root=root, progress=False, slurm=options)
    assert frame.iloc[0]["status"] == "done", frame.iloc[0].get("error")
    job = next(iter(requeued))
    log = log_of(root, job)
    timeouts = log.count("Requeued job")
    seen = f"requeued jobs {sorted(requeued)}, {epochs} epochs of {seconds:.3f} s; the job's log:\n{log[-4000:]}"
    assert timeouts >= 1 and "this job is timed-out" in log and len(requeued) == 1, seen
    assert log.count("[kdlib] job runs") == timeouts + 1  # one attempt per requeue, and the last
    assert [h["epoch"] for h in run.result()["history"]] == list(range(1, epochs + 1))
    TIMINGS[f"time limit: attempts ({epochs} epochs of {seconds:.1f} s)"] = timeouts + 1


# ----------------------------------------------------------------------------- failures, cancellation

def test_a_failing_teacher_job_records_its_traceback_and_the_dependent_array_ends(slurm_cluster, root, teacher):
    bad = dataclasses.replace(teacher, init="file:/nonexistent/kdlib-teacher.pth")  # fails in the job, not before
    grid = specs.grid(distill(bad), temperature=[2.0, 3.0])
    with timed("failure (a missing weight file in the teacher job)"), pytest.warns(RuntimeWarning, match="retry_failed=True"):
        frame = runs.ensure(grid, executor="slurm", root=root, progress=False, slurm=OPTIONS)
    assert set(frame["status"]) == {"failed"}
    error = store.RunDir(bad, root).error()
    assert "Traceback" in error["traceback"] and "/nonexistent/kdlib-teacher.pth" in error["error"]
    for spec in grid:  # the students say why: their teacher failed
        assert "failed" in store.RunDir(spec, root).error()["error"]
    wait_for(lambda: not alive_jobs(root), timeout=60)  # nothing left hanging in the queue


def test_a_cancelled_array_leaves_its_runs_not_done_and_a_rerun_resumes_them(slurm_cluster, root, teacher):
    grid = specs.grid(distill(teacher, epochs=8, seed=1), temperature=[1.0, 3.0])  # one stream: one pass of two
    members = [store.RunDir(s, root) for s in grid]
    with timed("scancel a running array, rerun"):
        runs.ensure(grid, executor="slurm", root=root, wait=False, progress=False, slurm=OPTIONS)
        array = job_of(root, grid[0]).split("_")[0]
        wait_for(lambda: all(1 <= checkpointed(r) and not r.done for r in members), step=0.1)
        subprocess.run(["scancel", array], check=True)
        wait_for(lambda: not alive_jobs(root))
        cancelled_at = {r.id: checkpointed(r) for r in members}
        listed = tables.load_results(root).set_index("run_id")
        assert all(listed.loc[r.id, "status"] != "done" for r in members)
        before = submissions(root)
        frame = runs.ensure(grid, executor="slurm", root=root, progress=False, slurm=OPTIONS)
    assert set(frame["status"]) == {"done"} and submissions(root) == before + 1
    for r in members:
        log = log_of(root, job_of_landed(root, r))
        assert f"resuming {r.id} from epoch {cancelled_at[r.id]}" in log  # no finished epoch trained again
        assert [h["epoch"] for h in r.result()["history"]] == list(range(1, 9))


def job_of_landed(root: Path, run: store.RunDir) -> str:
    """The job that finished ``run``: the newest log that names it."""
    logs = sorted((root / "_jobs").glob("*_log.out"), key=lambda p: p.stat().st_mtime)
    named = [p for p in logs if f"resuming {run.id}" in p.read_text()]
    return named[-1].name.rsplit("_", 2)[0]


# ----------------------------------------------------------------------------- requests the cluster cannot place

@pytest.fixture(scope="module")
def paper_teacher():
    """A paper-preset teacher trained from scratch: it needs no hub weights, its default asks a GPU."""
    return specs.teacher("resnet50", "pets", origin="scratch", preset_name="paper", epochs=1)


@pytest.mark.parametrize("options, option, fix", [
    ({}, "gpus_per_node", "slurm={'gpus_per_node': 0}"),
    ({"gpus_per_node": 0, "partition": "gpu"}, "partition", "slurm={'partition': '<name>'}"),
    ({"gpus_per_node": 0, "cpus_per_task": 1}, "mem_gb", "slurm={'mem_gb': <GB>}"),
    ({"gpus_per_node": 0, "mem_gb": 1, "cpus_per_task": 64}, "cpus_per_task", "cpus_per_task"),
])
def test_requests_the_cluster_cannot_place_are_value_errors_naming_the_option(slurm_cluster, tmp_path, paper_teacher,
                                                                               options, option, fix):
    with timed(f"refused request {option}"), pytest.raises(ValueError) as err:
        runs.ensure([paper_teacher], executor="slurm", root=tmp_path, progress=False, slurm={"poll_s": 1, **options})
    message = str(err.value)
    assert option in message and fix in message and "partition debug" in message
    assert not alive_jobs(tmp_path)  # refused, or cancelled when it could never start
    assert not store.RunDir(paper_teacher, tmp_path).done


# ----------------------------------------------------------------------------- hub weights, no internet

HUB_CHECK = r"""
import sys
from kdlib import runs, specs
teacher = specs.teacher("resnet50", "pets", preset_name="paper", epochs=1)  # finetuned from the hub weights
grid = specs.grid(specs.distill(teacher, "resnet18", temperature=4.0, epochs=1, student_init="pretrained"),
                  temperature=[1.0, 4.0])
try:
    runs.ensure(grid, executor="slurm", root=sys.argv[1], progress=False, slurm={"gpus_per_node": 0})
except ValueError as e:
    print(e)
    sys.exit(3)
"""


def test_hub_weights_missing_offline_fail_before_anything_is_submitted(slurm_cluster, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    env.pop("HF_HUB_CACHE", None)
    root = tmp_path / "store"
    with timed("hub offline check (subprocess)"):
        done = subprocess.run([sys.executable, "-c", HUB_CHECK, str(root)], env=env, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stdout
    for tag in ("resnet50.tv2_in1k", "resnet18.tv_in1k"):  # the teacher's and the student's starting weights
        assert tag in message
    assert "init='file:<path>'" in message and "HF_HUB_OFFLINE=1" in message
    assert str(tmp_path / "empty-hf-home" / "hub") in message  # the cache to fill
    assert not list(root.glob("*/spec.json")) and not list(root.glob("_jobs/*.pkl"))
