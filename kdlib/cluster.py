"""Run a grid as submitit jobs: subprocesses on this machine, or a Slurm array.

One job = one shared distillation pass (runs that differ only in temperature/loss) or one
supervised run. Jobs are ``Checkpointable``: when Slurm preempts or times one out,
submitit requeues it and the job resumes from the run's last epoch checkpoint in the
store. Submitted job ids are written to ``<root>/_jobs/inflight.json`` so that a later
``ensure`` (e.g. after ``wait=False``) does not submit a run that is still in flight.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import submitit
from tqdm.auto import tqdm

from kdlib import specs
from kdlib.store import RunDir, atomic_write_json

SLURM_DEFAULTS: dict[str, Any] = dict(partition=None, gpus_per_node=1, cpus_per_task=8, mem_gb=32,
                                      timeout_min=12 * 60, array_parallelism=64, additional_parameters=None)


class Job(submitit.helpers.Checkpointable):
    """A picklable job body; requeued on preemption (the store makes the rerun a resume)."""

    def __call__(self, payload: list[dict[str, Any]], root: str, threads: int | None = None) -> list[str]:
        import torch

        from kdlib import runs

        if threads:
            torch.set_num_threads(threads)
        todo = [specs.from_dict(d) for d in payload]
        if isinstance(todo[0], specs.Supervised):
            for spec in todo:
                runs.run_supervised(spec, root, progress=False)
        else:
            runs.run_group(todo, root, progress=False)
        return [specs.run_id(s) for s in todo]


def make_executor(executor: str, folder: Path, *, slurm: dict[str, Any] | None = None, max_parallel: int = 2):
    """A configured submitit executor; Slurm options submitit rejects become a ValueError with the fix."""
    if executor == "submitit-local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=24 * 60)
        return ex
    if executor != "slurm":
        raise ValueError(f"unknown executor {executor!r}; choose 'local', 'submitit-local' or 'slurm'")
    options = {**SLURM_DEFAULTS, **(slurm or {})}
    unknown = set(options) - set(SLURM_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown Slurm option(s) {sorted(unknown)}; known: {sorted(SLURM_DEFAULTS)} "
                         "(anything else goes in additional_parameters={'sbatch_option': value})")
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = dict(gpus_per_node=options["gpus_per_node"], cpus_per_task=options["cpus_per_task"],
                  mem_gb=options["mem_gb"], timeout_min=options["timeout_min"],
                  slurm_array_parallelism=options["array_parallelism"])
    if options["partition"]:
        params["slurm_partition"] = options["partition"]
    if options["additional_parameters"]:
        params["slurm_additional_parameters"] = dict(options["additional_parameters"])
    try:
        ex.update_parameters(**params)
    except (ValueError, TypeError) as e:
        raise ValueError(f"submitit rejected the Slurm options {params}: {e}. Fix the option in slurm={{...}}; "
                         "sbatch flags without a submitit name go in additional_parameters") from e
    return ex


def _inflight_path(root: Path) -> Path:
    return root / "_jobs" / "inflight.json"


def _alive(entry: dict[str, Any]) -> bool:
    if entry["executor"] == "submitit-local":
        try:
            os.kill(int(entry["job_id"].split("_")[0]), 0)
            return True
        except (OSError, ValueError):
            return False
    job = submitit.SlurmJob(folder=entry["folder"], job_id=entry["job_id"])
    return job.state not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                             "PREEMPTED", "FINISHED", "INTERRUPTED", "UNKNOWN")


def inflight(root: Path) -> dict[str, dict[str, Any]]:
    """Run ids whose submitted job is still pending or running."""
    try:
        entries = json.loads(_inflight_path(root).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {rid: e for rid, e in entries.items() if _alive(e)}


def submit(sup: list[specs.Supervised], groups: list[list[specs.Distill]], root: Path, *, executor: str,
           wait: bool = True, progress: bool = True, max_parallel: int = 2,
           slurm: dict[str, Any] | None = None) -> list[Any]:
    """Submit what is missing and not in flight; with ``wait``, block until every job ends."""
    folder = root / "_jobs"
    ex = make_executor(executor, folder, slurm=slurm, max_parallel=max_parallel)
    busy = inflight(root)
    threads = max(1, (os.cpu_count() or 1) // max_parallel) if executor == "submitit-local" else None
    # Teachers and student initializations first, each once: jobs of a grid share them.
    needed: dict[str, specs.Supervised] = {specs.run_id(s): s for s in sup}
    for group in groups:
        for s in (group[0].teacher, *(g.student_init for g in group)):
            if isinstance(s, specs.Supervised) and not RunDir(s, root).done:
                needed.setdefault(specs.run_id(s), s)
    # Init chains (pretraining before finetuning) run inside one job, in order.
    payloads = [[s] for rid, s in needed.items() if rid not in busy]
    waves = [payloads] + [[[*g] for g in groups if not any(specs.run_id(s) in busy for s in g)]]
    jobs = []
    for wave in waves:
        wave_jobs = _submit_wave(ex, wave, root, threads, executor, max_parallel, wait, progress)
        jobs += wave_jobs
    return jobs


def _submit_wave(ex, payloads, root: Path, threads, executor: str, max_parallel: int, wait: bool, progress: bool):
    if not payloads:
        return []
    # LocalExecutor starts every job at once: cap how many run together.
    chunk = max_parallel if executor == "submitit-local" else len(payloads)
    jobs = []
    total = sum(len(p) for p in payloads)
    with tqdm(total=total, desc="runs landed", disable=not (progress and wait)) as bar:
        for start in range(0, len(payloads), chunk):
            part = payloads[start:start + chunk]
            args = [[specs.to_dict(s) for s in p] for p in part]
            with ex.batch():
                part_jobs = [ex.submit(Job(), a, str(root), threads) for a in args]
            _record(root, part, part_jobs, executor, ex.folder)
            jobs += part_jobs
            if wait:
                for p, job in zip(part, part_jobs):
                    try:
                        job.result()
                    except Exception as e:  # noqa: BLE001 - the store records the failure per run
                        print(f"[kdlib] job {job.job_id} failed: {str(e).splitlines()[-1] if str(e) else e!r}")
                    bar.update(len(p))
    return jobs


def _record(root: Path, payloads, jobs, executor: str, folder) -> None:
    path = _inflight_path(root)
    try:
        entries = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        entries = {}
    for p, job in zip(payloads, jobs):
        for s in p:
            entries[specs.run_id(s)] = {"job_id": str(job.job_id), "executor": executor, "folder": str(folder),
                                        "time": time.time()}
    atomic_write_json(path, entries)
