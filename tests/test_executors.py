"""Executors: a grid through submitit's LocalExecutor (real subprocesses, the Slurm job
protocol), requeue after preemption, the sbatch script of a Slurm array, bad input."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit
import torch

from kdlib import executors, inflight, runs, specs, store, tables

pytestmark = pytest.mark.training  # make test-fast leaves these out

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)
MAX_PARALLEL = 2
JOB_THREADS = max(1, (os.cpu_count() or 1) // MAX_PARALLEL)  # what a submitit-local job uses


def distill_spec(temperature=4.0, epochs=1, **kwargs):
    return specs.distill(TEACHER, "resnet18", temperature=temperature, epochs=epochs, **kwargs)


def submitted(root: Path) -> int:
    return len(list((root / "_jobs").glob("*_submitted.pkl")))


@pytest.fixture(scope="module", autouse=True)
def job_threads():
    """Reference runs here use the thread count of a job: float results depend on it."""
    old = torch.get_num_threads()
    torch.set_num_threads(JOB_THREADS)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def grid():
    """Two shared passes of two runs: temperature x seed (each seed is its own data stream)."""
    return specs.grid(distill_spec(), temperature=[1.0, 4.0], seed=[0, 1])


@pytest.fixture(scope="module")
def landed(tmp_path_factory, grid):
    """The grid run once through submitit-local from an empty store (teacher job first)."""
    root = tmp_path_factory.mktemp("store")
    frame = runs.ensure(grid, executor="submitit-local", root=root, progress=False, max_parallel=MAX_PARALLEL)
    return root, frame


def test_submitit_local_runs_a_grid_to_completion(landed, grid):
    root, frame = landed
    assert list(frame["run_id"]) == [specs.run_id(s) for s in grid]
    assert set(frame["status"]) == {"done"} and frame["test_acc"].notna().all()
    listed = tables.load_results(root)
    assert set(listed["run_id"]) == set(frame["run_id"]) and listed["teacher_acc"].notna().all()
    assert submitted(root) == 3  # the teacher, then one job per shared pass
    logs = "".join(p.read_text() for p in (root / "_jobs").glob("*_log.out"))
    assert logs.count("[kdlib] job runs") == 3 and f"({JOB_THREADS} threads)" in logs


def test_a_rerun_submits_nothing(landed, grid):
    root, frame = landed
    before = submitted(root)
    again = runs.ensure(grid, executor="submitit-local", root=root, progress=False)
    assert submitted(root) == before
    assert again.equals(frame)


def test_wait_false_returns_at_once_and_a_later_call_collects(landed):
    root, _ = landed
    grid = specs.grid(distill_spec(seed=0, weight_decay=0.01), temperature=[2.0, 3.0])
    start = time.time()
    frame = runs.ensure(grid, executor="submitit-local", root=root, wait=False, progress=False)
    assert time.time() - start < 10 and set(frame["status"]) <= {"pending", "running"} and len(frame) == 2
    count = submitted(root)
    frame = runs.ensure(grid, executor="submitit-local", root=root, wait=False, progress=False)
    assert submitted(root) == count  # in flight: not submitted again
    frame = runs.ensure(grid, executor="submitit-local", root=root, progress=False)  # waits for it
    assert submitted(root) == count and set(frame["status"]) == {"done"}


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_a_preempted_job_is_requeued_and_resumes(landed, tmp_path):
    """USR2 is what Slurm (and LocalExecutor at its timeout) sends: submitit checkpoints and requeues."""
    root, _ = landed
    spec = distill_spec(temperature=5.0, epochs=3)
    run = store.RunDir(spec, root)
    runs.ensure([spec], executor="submitit-local", root=root, wait=False, progress=False)
    entry = json.loads((root / "_jobs" / "inflight.json").read_text())[run.id]
    deadline = time.time() + 300
    while not run._state()["checkpoints"]:
        assert time.time() < deadline and not run.done, "no checkpoint to resume from"
        time.sleep(0.2)
    (task,) = _children(int(entry["job_id"]))  # the controller's one task runs the job
    os.kill(task, signal.SIGUSR2)

    frame = runs.ensure([spec], executor="submitit-local", root=root, progress=False)
    assert frame.iloc[0]["status"] == "done"
    log = (root / "_jobs" / f"{entry['job_id']}_0_log.out").read_text()
    assert "this job is preempted" in log and "Requeued job" in log
    resumed_from = int(log.split(f"resuming {run.id} from epoch ")[1].split()[0])
    assert 1 <= resumed_from < 3  # resumed, not restarted
    assert log.count("[kdlib] job runs") == 2  # the same job, started twice
    assert [h["epoch"] for h in run.result()["history"]] == [1, 2, 3]

    # ... and it ends exactly where an uninterrupted run ends.
    clean_root = tmp_path / "clean"
    shutil.copytree(root / specs.run_id(TEACHER), clean_root / specs.run_id(TEACHER))
    clean = runs.ensure([spec], root=clean_root, progress=False).iloc[0]
    assert frame.iloc[0]["test_acc"] == clean["test_acc"]
    assert run.result()["history"][-1]["train_loss"] == store.RunDir(spec, clean_root).result()["history"][-1][
        "train_loss"]


def test_a_failing_job_records_the_traceback_and_retries_on_request(landed):
    root, _ = landed
    spec = distill_spec(temperature=6.0, student_init="file:/nonexistent/resnet18.pth")
    with pytest.warns(RuntimeWarning, match="retry_failed=True"):
        frame = runs.ensure([spec], executor="submitit-local", root=root, progress=False)
    assert frame.iloc[0]["status"] == "failed" and "does not exist" in frame.iloc[0]["error"]
    first = store.RunDir(spec, root).error()
    assert "Traceback" in first["traceback"]
    count = submitted(root)
    runs.ensure([spec], executor="submitit-local", root=root, progress=False)
    assert submitted(root) == count  # failed runs wait for retry_failed=True
    with pytest.warns(RuntimeWarning):
        runs.ensure([spec], executor="submitit-local", root=root, progress=False, retry_failed=True)
    assert submitted(root) == count + 1 and store.RunDir(spec, root).error()["time"] > first["time"]


# ----------------------------------------------------------------------------- Slurm, without Slurm

class FakeSlurm:
    """sbatch records the script and answers a job id; squeue reports every job in one state."""

    def __init__(self, run):
        self.scripts: list[str] = []
        self.state = "RUNNING"
        self._next = 4242
        self._run = run

    def command_function(self, command, **kwargs):
        assert command[0] == "sbatch", command
        def run():
            self.scripts.append(Path(command[1]).read_text())
            self._next += 1
            return f"Submitted batch job {self._next - 1}\n"
        return run

    def run(self, command, **kwargs):
        if command[0] == "sinfo":
            return subprocess.CompletedProcess(command, 0, stdout="gpu|8|64000|gpu:4\n", stderr="")
        if command[0] != "squeue":
            return self._run(command, **kwargs)
        lines = []
        for jid in range(4242, self._next):
            lines += [f"{jid}|{self.state}|None"] + [f"{jid}_{a}|{self.state}|None" for a in range(8)]
        return subprocess.CompletedProcess(command, 0, stdout="\n".join(lines), stderr="")


@pytest.fixture
def fake_slurm(monkeypatch):
    fake = FakeSlurm(subprocess.run)
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}" if name in ("srun", "sbatch")
                        else which(name, *a, **k))
    monkeypatch.setattr(submitit.core.utils, "CommandFunction", fake.command_function)
    monkeypatch.setattr(subprocess, "run", fake.run)
    monkeypatch.setattr(submitit.SlurmJob, "watcher", type(submitit.SlurmJob.watcher)(delay_s=600))
    monkeypatch.setattr(inflight, "JOBS", {})
    return fake


def sbatch_lines(script: str) -> set[str]:
    return {line for line in script.splitlines() if line.startswith("#SBATCH")}


def test_the_slurm_array_of_a_grid(tmp_path, grid, fake_slurm):
    root = tmp_path / "store"
    options = {"partition": "gpu", "array_parallelism": 1, "additional_parameters": {"reservation": "kd"},
               "qos": "high"}
    frame = runs.ensure(grid, executor="slurm", root=root, wait=False, progress=False, slurm=options)
    assert set(frame["status"]) == {"pending"} and len(frame) == 4
    teacher_script, array_script = fake_slurm.scripts
    # a mini grid is a CPU job: no GPU line (issue 18: a GPU request a CPU partition cannot place fails sbatch)
    common = {"#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=2",
              "#SBATCH --mem=4GB", "#SBATCH --time=720", "#SBATCH --signal=USR2@90", "#SBATCH --job-name=kdlib",
              "#SBATCH --reservation=kd", "#SBATCH --qos=high", "#SBATCH --nodes=1"}
    assert common <= sbatch_lines(teacher_script) and common <= sbatch_lines(array_script)
    assert not any("gpus" in line for line in sbatch_lines(teacher_script) | sbatch_lines(array_script))
    assert not any("--array" in line for line in sbatch_lines(teacher_script))
    assert "#SBATCH --array=0-1%1" in sbatch_lines(array_script)  # two shared passes, one at a time
    assert "#SBATCH --dependency=afterany:4242" in sbatch_lines(array_script)  # after the teacher's job
    command = array_script.strip().splitlines()[-1]
    assert command.startswith("srun --unbuffered") and command.endswith(
        f"{sys.executable} -u -m submitit.core._submit {root / '_jobs'}")

    # Each array task carries one shared pass; the runs it trains are those of the grid.
    entries = json.loads((root / "_jobs" / "inflight.json").read_text())
    by_job: dict[str, set[str]] = {}
    for rid, e in entries.items():
        by_job.setdefault(e["job_id"], set()).add(rid)
    assert by_job["4242"] == {specs.run_id(TEACHER)}
    assert sorted(by_job) == ["4242", "4243_0", "4243_1"]
    for job_id in ("4243_0", "4243_1"):
        delayed = submitit.SlurmJob(root / "_jobs", job_id).submission()
        assert isinstance(delayed.function, executors.Job)
        payload = delayed.args[0]
        assert {specs.run_id(specs.from_dict(d)) for d in payload} == by_job[job_id]
        assert len({specs.from_dict(d).share_key for d in payload}) == 1

    # In flight (squeue says RUNNING): a rerun, here or from another process, submits nothing.
    runs.ensure(grid, executor="slurm", root=root, wait=False, progress=False, slurm=options)
    inflight.JOBS.clear()
    runs.ensure(grid, executor="slurm", root=root, wait=False, progress=False, slurm=options)
    assert len(fake_slurm.scripts) == 2
    # Jobs that ended without landing their runs (cancelled, say) are submitted again.
    fake_slurm.state = "CANCELLED"
    inflight.JOBS.clear()
    runs.ensure(grid, executor="slurm", root=root, wait=False, progress=False, slurm=options)
    assert len(fake_slurm.scripts) == 4


def test_the_paper_preset_asks_a_gpu_and_the_mini_preset_does_not():
    paper, _ = executors.slurm_parameters(None, ["paper"])
    assert (paper["gpus_per_node"], paper["cpus_per_task"], paper["mem_gb"]) == (1, 8, 32)
    mini, _ = executors.slurm_parameters(None, ["mini"])
    assert "gpus_per_node" not in mini and (mini["cpus_per_task"], mini["mem_gb"]) == (2, 4)
    mixed, _ = executors.slurm_parameters(None, ["mini", "paper"])  # the most demanding preset of a grid
    assert mixed["gpus_per_node"] == 1
    asked, _ = executors.slurm_parameters({"gpus_per_node": 2, "mem_gb": 1}, ["mini"])  # what is asked wins
    assert (asked["gpus_per_node"], asked["mem_gb"]) == (2, 1)


# ----------------------------------------------------------------------------- bad input

def nothing_submitted(root: Path) -> bool:
    return not list(root.glob("*/spec.json")) and not list(root.glob("_jobs/*.pkl"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(executor="kubernetes"), "unknown executor 'kubernetes'"),
    (dict(executor="submitit-local", max_parallel=0), "max_parallel=0"),
    (dict(executor="slurm"), "needs Slurm"),
])
def test_bad_executor_input_is_a_value_error_before_anything_runs(tmp_path, grid, kwargs, match):
    with pytest.raises(ValueError, match=match):
        runs.ensure(grid, root=tmp_path, progress=False, **kwargs)
    assert nothing_submitted(tmp_path)


@pytest.mark.parametrize("options, match", [
    ({"gpus": 2}, "(?s)submitit rejected.*Unknown argument 'gpus'.*additional_parameters"),
    ({"mem_gb": "lots"}, "(?s)submitit rejected.*mem_gb"),
    ({"nodes": 4}, "one process on one node"),
    ({"poll_s": 0}, "poll_s=0"),
    ("gpu", "must be a dict"),
])
def test_slurm_options_submitit_rejects_are_value_errors_with_the_fix(tmp_path, grid, fake_slurm, options, match):
    with pytest.raises(ValueError, match=match):
        runs.ensure(grid, executor="slurm", root=tmp_path, progress=False, slurm=options)
    assert nothing_submitted(tmp_path) and fake_slurm.scripts == []


def test_zero_cells_and_unwritable_folders_are_value_errors(tmp_path, grid):
    with pytest.raises(ValueError, match="zero cells"):
        runs.ensure([], root=tmp_path)
    with pytest.raises(ValueError, match="temperature"):
        specs.grid(distill_spec(), temperature=[])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="not writable"):
        runs.ensure(grid, executor="submitit-local", root=blocker / "store")
    with pytest.raises(ValueError, match="not a run spec"):
        runs.ensure(["resnet18"], root=tmp_path)
