"""Where a grid's jobs run: this process, subprocesses on this machine, or a Slurm job array.

One job = one shared distillation pass (runs that differ only in temperature/loss) or one
supervised run (a teacher, or a student initialization, with its own init chain); its
body is ``kdlib.jobs``. ``run_local`` runs the jobs here, one after another, under a
tqdm bar. ``Submitter`` sends them through submitit: the supervised jobs go first; on
Slurm the distillation array waits for them with ``--dependency=afterany``, locally it
is submitted once they have ended.

Jobs are ``submitit.helpers.Checkpointable``: when Slurm preempts or times out a job
(submitit's USR2 handler), submitit requeues it with the same arguments, and the rerun
resumes from each run's last epoch checkpoint in the store. The submitted job ids are
kept in ``<root>/_jobs/inflight.json`` (``kdlib.inflight``) so that a later ``ensure`` waits
for a run whose job is still pending or running instead of submitting it again. Even if
two jobs do run the same run, its file lock makes one train it and the other find it done.

``LocalExecutor`` starts every job at once; kdlib jobs take one of ``max_parallel`` slot
locks before they work, so at most that many train together, each with
``cpu_count // max_parallel`` torch threads.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

import submitit
from tqdm.auto import tqdm

from kdlib import checks, inflight, jobs, scheduler, specs
from kdlib.io import DiskFull
from kdlib.store import RunDir

# kdlib's names for the usual sbatch resources. Any other SlurmExecutor parameter (qos,
# account, constraint, exclude, setup, signal_delay_s, ...) passes through as is; sbatch
# flags submitit has no name for go in additional_parameters={"flag": value}.
SLURM_DEFAULTS: dict[str, Any] = dict(
    partition=None,            # None: the cluster's default partition
    gpus_per_node=1,           # these three: the paper preset's; see scheduler.PRESET_RESOURCES
    cpus_per_task=8,           # data loader workers of the paper preset + the main process
    mem_gb=32,
    timeout_min=12 * 60,       # per job; a job that times out is requeued and resumes
    array_parallelism=64,      # array tasks running at once
    max_num_timeout=3,         # how many timeouts a job may be requeued after (preemptions are not counted)
    additional_parameters=None,
    job_name="kdlib",
    poll_s=15.0,               # kdlib's own: seconds between two looks at squeue while waiting
)
_GENERIC = {"gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min", "nodes", "tasks_per_node"}
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # LocalExecutor's own default is 2 minutes


class Job(submitit.helpers.Checkpointable):
    """A picklable job body; requeued with the same arguments on preemption or timeout.

    The arguments are plain dicts (specs), so a requeued job needs nothing but the
    store to resume: ``train.train_pass`` starts each run at its last good checkpoint. On SIGTERM
    it stops at once, recording nothing (``scheduler.on_sigterm``).
    """

    def __call__(self, payload: list[dict[str, Any]], root: str, threads: int | None = None,
                 slots: int | None = None) -> list[str]:
        import torch

        threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0))  # a node's cores are not all ours
        if threads:
            torch.set_num_threads(threads)
        todo = [specs.from_dict(d) for d in payload]
        ids = [specs.run_id(s) for s in todo]
        signal.signal(signal.SIGTERM, scheduler.on_sigterm)
        with _slot(Path(root) / "_jobs" / "slots", slots):
            print(f"[kdlib] job runs {', '.join(ids)} ({torch.get_num_threads()} threads)", flush=True)
            try:
                jobs.run_job(todo, root, progress=False)
            except Exception as e:  # noqa: BLE001 - a worker killed by the same SIGTERM may raise first
                if jobs.TERMINATING.is_set():
                    raise scheduler.Terminated(f"SIGTERM, then {type(e).__name__}: {e}") from e
                raise
        return ids


@contextlib.contextmanager
def _slot(folder: Path, slots: int | None) -> Iterator[None]:
    """Hold one of ``slots`` flock'ed files (a cross-process semaphore); no-op without slots."""
    if not slots:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(slots):
            f = open(folder / f"slot-{i}.lock", "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
                f.close()
            return
        time.sleep(0.5)


# ----------------------------------------------------------------------------- this process

def run_local(needed: dict[str, specs.Supervised], groups: list[list[specs.Distill]], root: Path, *,
              device=None, progress: bool = True, logit_cache: bool | None = None) -> None:
    """Every job here, one after another: the supervised runs first, then the distillation groups."""
    total = len(needed) + sum(len(g) for g in groups)
    failed = []
    with tqdm(total=total, desc="runs", disable=not progress) as bar:
        for rid, spec in needed.items():
            try:
                jobs.run_supervised(spec, root, device=device, progress=progress)
            except DiskFull:
                raise  # every other run would stop on it too; the message says what to free
            except Exception as e:  # noqa: BLE001 - recorded in the store; go on with the grid
                failed.append((rid, e))
            bar.update(1)
        for group in groups:
            try:
                jobs.run_group(group, root, device=device, progress=progress, logit_cache=logit_cache)
            except DiskFull:
                raise
            except Exception as e:  # noqa: BLE001
                failed += [(specs.run_id(s), e) for s in group if not RunDir(s, root).done]
            bar.update(len(group))
    if failed:
        warn_failed(failed)


def warn_failed(failed: list[tuple[str, Any]]) -> None:
    """One warning for every run of a grid that failed, with where to find its traceback."""
    lines = [f"  {rid}: {str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)}" for rid, e in failed[:10]]
    more = f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else ""
    warnings.warn(f"{len(failed)} run(s) failed; their tracebacks are in the store (load_results(...)['error'], "
                  "RunDir(spec).error()); rerun with ensure(..., retry_failed=True):\n" + "\n".join(lines) + more,
                  RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------- submitit executors

def slurm_defaults(presets: Iterable[str] = ("paper",)) -> dict[str, Any]:
    """SLURM_DEFAULTS with the resources of the most demanding preset (by its world) of a grid."""
    wanted = [scheduler.PRESET_RESOURCES[specs.world(p)] for p in set(presets)] or [scheduler.PRESET_RESOURCES["paper"]]
    return {**SLURM_DEFAULTS, **{k: max(w[k] for w in wanted) for k in ("gpus_per_node", "cpus_per_task", "mem_gb")}}


def slurm_parameters(slurm: dict[str, Any] | None, presets: Iterable[str] = ("paper",)
                     ) -> tuple[dict[str, Any], int]:
    """kdlib's Slurm options -> (AutoExecutor.update_parameters kwargs, max_num_timeout)."""
    if slurm is not None and not isinstance(slurm, dict):
        raise ValueError(f"slurm={slurm!r} must be a dict of options, e.g. {{'partition': 'gpu', 'gpus_per_node': 1}}")
    options = {**slurm_defaults(presets), **(slurm or {})}
    if isinstance(poll_s := options.pop("poll_s"), bool) or not isinstance(poll_s, (int, float)) or not poll_s > 0:
        raise ValueError(f"slurm poll_s={poll_s!r} must be a positive number of seconds")
    for key in ("nodes", "tasks_per_node"):
        if options.get(key, 1) != 1:
            raise ValueError(f"slurm {key}={options[key]!r}: a kdlib job is one process on one node "
                             "(a grid becomes a job array instead); leave it at 1")
    max_num_timeout = options.pop("max_num_timeout")
    checks.check_int("slurm max_num_timeout", max_num_timeout, minimum=0)
    params: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "job_name":
            params["name"] = value
        elif key == "gpus_per_node" and value == 0:
            continue  # a CPU job: no --gpus-per-node line at all
        elif key == "additional_parameters" and not isinstance(value, dict):
            raise ValueError(f"slurm additional_parameters={value!r} must be a dict of sbatch flags, "
                             "e.g. {'reservation': 'kd', 'exclusive': True}")
        elif key in _GENERIC:
            params[key] = value
        else:
            params[f"slurm_{key}"] = dict(value) if key == "additional_parameters" else value
    return params, max_num_timeout


def make_executor(executor: str, folder: Path, *, slurm: dict[str, Any] | None = None,
                  dependency: list[str] | None = None, presets: Iterable[str] = ("paper",)):
    """A configured submitit executor; Slurm options submitit rejects become a ValueError with the fix."""
    if executor == "submitit-local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        return ex
    if executor != "slurm":
        raise ValueError(f"unknown executor {executor!r}; choose 'local', 'submitit-local' or 'slurm'")
    params, max_num_timeout = slurm_parameters(slurm, presets)
    if submitit.SlurmExecutor.affinity() <= 0:
        raise ValueError("executor='slurm' needs Slurm: run this on a login node of the cluster (srun and sbatch "
                         "on PATH); on this machine use executor='submitit-local' or 'local'")
    if dependency:
        params["slurm_dependency"] = "afterany:" + ":".join(dependency)
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=max_num_timeout)
    try:
        ex.update_parameters(**params)
    except (ValueError, TypeError, NameError, AssertionError) as e:
        known = sorted(set(SLURM_DEFAULTS))
        raise ValueError(
            f"submitit rejected slurm={slurm!r}: {str(e).strip()}\nFix the option: kdlib's names are {known}; any "
            "other submitit SlurmExecutor parameter (qos, account, constraint, exclude, setup, ...) is passed "
            "through, and sbatch flags without a submitit name go in additional_parameters={'flag': value}") from e
    return ex


# ----------------------------------------------------------------------------- submitting

class Submitter:
    """Submits what is missing and not in flight, then (``wait``) follows it until it lands."""

    def __init__(self, executor: str, root: Path, *, slurm: dict[str, Any] | None = None, max_parallel: int = 2,
                 presets: Iterable[str] = ("paper",)):
        root = Path(root).absolute()  # jobs may start elsewhere (another node, another working folder)
        self.executor, self.root, self.folder = executor, root, root / "_jobs"
        self.slurm, self.max_parallel, self.presets = slurm, max_parallel, tuple(presets)
        self.executor_for()  # every option is checked now, before anything is submitted
        if executor == "slurm":
            scheduler.check_reachable()
        local = executor == "submitit-local"
        self.threads = max(1, (os.cpu_count() or 1) // max_parallel) if local else None
        self.slots = max_parallel if local else None
        self.poll_s = 1.0 if local else float((slurm or {}).get("poll_s", SLURM_DEFAULTS["poll_s"]))

    def executor_for(self, dependency: list[str] | None = None):
        return make_executor(self.executor, self.folder, slurm=self.slurm, dependency=dependency,
                             presets=self.presets)

    def submit(self, needed: dict[str, specs.Supervised], groups: list[list[specs.Distill]], *, wait: bool = True,
               progress: bool = True) -> list[Any]:
        """``needed``: the supervised runs to train first, by run id (``runs.prerequisites``)."""

        busy = inflight.running(self.root)
        # Teachers and student initializations first, each once: the jobs of a grid share them.
        first = [[s] for rid, s in needed.items() if rid not in busy]
        second = [p for g in groups if (p := [s for s in g if specs.run_id(s) not in busy])]
        waiting = list(dict.fromkeys([*needed, *(specs.run_id(s) for g in groups for s in g)]))
        bar = tqdm(total=len(waiting), desc="runs landed", disable=not (progress and wait))
        jobs = self._submit(first)
        if second:
            if self.executor == "slurm":
                deps = {scheduler.job_number(j.job_id) for j, _ in jobs} | {
                    scheduler.job_number(busy[r]["job_id"]) for r in needed if r in busy}
                jobs += self._submit(second, dependency=sorted(deps))
            else:
                if wait:  # locally, a distillation job would only sit on its slot waiting for the teacher
                    self._follow(jobs, busy, list(needed), bar)
                jobs += self._submit(second)
        if wait:
            self._follow(jobs, busy, waiting, bar)
            self._record_lost(jobs)
            failed = [(rid, inflight.error_line(self.root / rid)) for rid in waiting
                      if inflight.landed(self.root / rid) and not (self.root / rid / "result.json").is_file()]
            if failed:
                warn_failed(failed)
        bar.close()
        return [j for j, _ in jobs]

    def _submit(self, payloads: list[list[specs.Spec]], dependency: list[str] | None = None):
        if not payloads:
            return []
        for spec in (s for p in payloads for s in p):  # retry_failed: the old error is not this attempt's
            run = RunDir(spec, self.root)
            with run.lock(blocking=False) as held:
                if held and run.failed:
                    (run.path / "error.json").unlink(missing_ok=True)
        ex = self.executor_for(dependency)
        args = [[specs.to_dict(s) for s in p] for p in payloads]
        try:
            with ex.batch():  # one Slurm array per wave
                jobs = [ex.submit(Job(), a, str(self.root), self.threads, self.slots) for a in args]
        except submitit.core.utils.FailedJobError as e:  # sbatch said no: which option, and the fix
            if self.executor != "slurm":
                raise
            raise scheduler.sbatch_refusal(str(e), slurm_defaults(self.presets) | (self.slurm or {})) from None
        pairs = [(job, [specs.run_id(s) for s in p]) for job, p in zip(jobs, payloads)]
        inflight.note_submitted(self.root, self.executor, ex.folder, pairs)
        return pairs

    def _states(self, jobs) -> dict[str, str]:
        """State of each job of this call: "DONE" once its result is written, else what the scheduler says."""
        states = {}
        for job, _ in jobs:
            if job.paths.result_pickle.exists():
                states[job.job_id] = "DONE"
            elif self.executor == "submitit-local":
                states[job.job_id] = "ENDED" if job.done() else "RUNNING"
        rest = {job.job_id for job, _ in jobs if job.job_id not in states}
        if rest:  # a job that can never start is cancelled and raised as a ValueError naming the option
            states.update(scheduler.states(rest, slurm_defaults(self.presets) | (self.slurm or {})))
        return states

    def _follow(self, jobs, busy: dict[str, dict[str, Any]], ids: list[str], bar) -> None:
        """Until every run of ``ids`` has landed (done or failed) or no job that could land it is alive."""
        others = {e["job_id"]: e for rid, e in busy.items() if rid in ids}
        last_check, all_landed = 0.0, None
        while True:
            landed = sum(inflight.landed(self.root / rid) for rid in ids)
            if landed > bar.n:
                bar.update(landed - bar.n)
            running = [j for j, st in self._states(jobs).items() if scheduler.alive(st)]
            if landed == len(ids):
                # a job writes its runs' records, then ends: give it a moment, so that the next call
                # does not find it in flight
                all_landed = all_landed or time.time()
                if not running or time.time() - all_landed > 30:
                    return
            if others and time.time() - last_check > self.poll_s * 5:  # jobs of another call: poll gently
                alive = inflight.still_running(list(others.values()))
                others = {k: e for (k, e), ok in zip(others.items(), alive) if ok}
                last_check = time.time()
            if not running and not others:
                return
            time.sleep(self.poll_s)

    def _record_lost(self, jobs) -> None:
        """A job that died without recording (killed, out of memory, broken environment): say so per run.

        A cancelled job is no failure of its runs: they stay not done, and the next ``ensure``
        resumes them from their checkpoints.
        """
        states = self._states(jobs)
        for job, ids in jobs:
            lost = [rid for rid in ids if not inflight.landed(self.root / rid)]
            state = states.get(job.job_id, "")
            if not lost or scheduler.alive(state) or state.startswith("CANCELLED"):
                continue
            exc = job.exception() if state == "DONE" or self.executor == "submitit-local" else None
            text = str(exc) if exc is not None else f"job {job.job_id} ended ({state}) without finishing the run"
            for rid in lost:
                spec_file = self.root / rid / "spec.json"
                if not spec_file.is_file():
                    continue
                run = RunDir(specs.from_dict(json.loads(spec_file.read_text())), self.root)
                with run.lock(blocking=False) as held:
                    if held and not inflight.landed(run.path):
                        run.fail(RuntimeError(f"job {job.job_id} failed: {text.strip().splitlines()[-1]}"), text)
