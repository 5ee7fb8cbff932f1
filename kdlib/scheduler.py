"""What Slurm itself says: job states from ``squeue``, and sbatch refusals as ValueErrors with the fix.

kdlib follows its jobs through ``squeue``, not ``sacct``: squeue answers on every cluster,
also those without job accounting (slurmdbd), where submitit's sacct calls fail at every
poll and a cancelled job would look alive forever. A job squeue no longer lists has ended
(Slurm keeps ended jobs listed for ``MinJobAge``, 5 min by default, then forgets them).
"""
from __future__ import annotations

import getpass
import re
import subprocess
from typing import Any, Iterable

# States in which a job may still run its work (it is listed, and has not ended).
ALIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
         "SUSPENDED", "RESIZING", "PREEMPTED", "STAGE_OUT", "SIGNALING", "RESV_DEL_HOLD", "REQUEUE_CRON"}
# What one job of a preset needs: the paper trains on a GPU with 7 loader workers; the mini
# world is a CPU job (asking a GPU there only makes sbatch refuse it on CPU partitions).
PRESET_RESOURCES: dict[str, dict[str, Any]] = {
    "paper": dict(gpus_per_node=1, cpus_per_task=8, mem_gb=32),
    "mini": dict(gpus_per_node=0, cpus_per_task=2, mem_gb=4),
}
# Pending reasons that never clear by waiting: the job asks for more than any node of its partition has.
NEVER = {"PartitionConfig", "BadConstraints", "PartitionNodeLimit"}


class Terminated(BaseException):
    """Slurm stops the job (SIGTERM); a BaseException, so nothing records it as a run's failure."""


def on_sigterm(signum, frame) -> None:
    """A job's SIGTERM handler (requeue, preemption, scancel, time limit): stop now, record nothing.

    submitit only ignores SIGTERM, but the data loader workers die of it, and the pass would
    fail and be recorded as failed; the runs must instead stay not done and resume later.
    """
    from kdlib import jobs

    jobs.TERMINATING.set()
    raise Terminated("SIGTERM: Slurm is stopping this job (requeue, preemption, scancel or time limit); its runs "
                     "stay not done and resume from their last checkpoints")


def squeue(job_ids: list[str] | None = None) -> dict[str, tuple[str, str]] | None:
    """{job id: (state, reason)} of this user's jobs Slurm still lists; None if squeue fails.

    Ids are submitit's: ``"123"`` for a job, ``"123_4"`` for an array task (``--array``
    lists every task, also those not started yet).
    """
    command = ["squeue", "--noheader", "--array", "--states=all", f"--user={getpass.getuser()}",
               "--format=%i|%T|%r"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    states = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1].upper(), parts[2])
    if job_ids is not None:
        states = {j: states[j] for j in job_ids if j in states}
    return states


def states(job_ids: Iterable[str], options: dict[str, Any] | None = None) -> dict[str, str]:
    """Slurm state of each job, "ENDED" once squeue forgets it (sacct through submitit if squeue fails).

    With ``options`` (the job's Slurm options), a job pending for a reason that never clears
    is cancelled and raised as a ValueError naming the option: waiting would be forever.
    """
    job_ids = sorted(set(job_ids))
    listed = squeue(job_ids)
    if listed is None:
        import submitit

        watcher = submitit.SlurmJob.watcher
        for jid in job_ids:
            watcher.register_job(jid)
        watcher.update()
        return {jid: watcher.get_state(jid, mode="cache") for jid in job_ids}
    never = {j: r for j, (st, r) in listed.items() if st == "PENDING" and r in NEVER}
    if never and options is not None:
        cancel(sorted(never))
        jid, reason = next(iter(never.items()))
        raise never_starts(jid, reason, options)
    return {j: listed[j][0] if j in listed else "ENDED" for j in job_ids}


def alive(state: str | None) -> bool:
    return state is not None and state.split()[0].upper() in ALIVE


def unreachable() -> str | None:
    """Why this machine cannot talk to a Slurm controller (sinfo's complaint), or None when it can."""
    try:
        done = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"sinfo failed: {e}"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return f"sinfo failed: {lines[-1] if lines else 'exit status ' + str(done.returncode)}"


def check_reachable() -> None:
    if why := unreachable():
        raise ValueError(f"executor='slurm' needs Slurm: no controller answers here ({why}); run this on a login "
                         "node of the cluster, or point SLURM_CONF at its slurm.conf")


def _sinfo() -> str:
    """One line per partition: name, its nodes' CPUs, memory (MB) and generic resources."""
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%P|%c|%m|%G"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "  (sinfo failed: ask your cluster's documentation)"
    lines = []
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            part, cpus, mem, gres = parts
            gpus = "no GPUs" if gres in ("(null)", "") else f"gres {gres}"
            lines.append(f"  partition {part}: {cpus} CPUs, {mem} MB memory, {gpus} per node")
    return "\n".join(lines) or "  (sinfo lists no partition)"


_ADVICE = [  # (pattern in sbatch's error, the option it is about, the fix)
    (r"gres|generic resource|gpu", "gpus_per_node",
     "ask no GPU with slurm={'gpus_per_node': 0} (a CPU job; the mini preset needs none), or pick a "
     "partition whose nodes have GPUs with slurm={'partition': '<name>'}"),
    (r"invalid partition|partition name", "partition",
     "pick a partition listed below with slurm={'partition': '<name>'}, or leave partition=None for the "
     "cluster's default"),
    (r"memory", "mem_gb", "ask at most what a node has with slurm={'mem_gb': <GB>}"),
    (r"node configuration is not available|cpu count|more processors", "cpus_per_task / mem_gb / gpus_per_node",
     "ask at most what one node of the partition has: slurm={'cpus_per_task': ..., 'mem_gb': ..., "
     "'gpus_per_node': ...}"),
    (r"time limit|timelimit", "timeout_min", "ask at most the partition's time limit with slurm={'timeout_min': ...}"),
    (r"qos|account|association", "qos / account", "use a qos and account you are allowed, e.g. "
     "slurm={'account': '<name>', 'qos': '<name>'}"),
]


def sbatch_refusal(text: str, options: dict[str, Any]) -> ValueError:
    """sbatch's refusal (submitit's error text) -> a ValueError naming the option and the fix."""
    errors = list(dict.fromkeys(line.strip() for line in text.splitlines() if "sbatch: error" in line))
    said = "; ".join(errors) or (text.strip().splitlines() or ["no message"])[-1]
    for pattern, option, fix in _ADVICE:  # sbatch's first line is the specific one
        if re.search(pattern, (errors or [said])[0].lower()):
            break
    else:
        option, fix = "slurm=", "change the option sbatch names, or ask your cluster's documentation"
    asked = {k: options.get(k) for k in ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min")}
    return ValueError(f"sbatch refused the job: {said}\nThe option: {option} (asked: {asked}).\nFix: {fix}.\n"
                      f"This cluster has:\n{_sinfo()}")


def never_starts(job_id: str, reason: str, options: dict[str, Any]) -> ValueError:
    asked = {k: options.get(k) for k in ("partition", "gpus_per_node", "cpus_per_task", "mem_gb")}
    return ValueError(
        f"Slurm job {job_id} can never start (pending, reason {reason}): it asks more than any node of its "
        f"partition has (asked: {asked}). kdlib cancelled it.\nFix: ask at most what one node has, e.g. "
        f"slurm={{'cpus_per_task': ..., 'mem_gb': ..., 'gpus_per_node': ...}}, or another partition.\n"
        f"This cluster has:\n{_sinfo()}")


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=120, check=False)


def job_number(job_id: str) -> str:
    """``"123_4"`` -> ``"123"``: the id a dependency names."""
    return re.split(r"[_.]", str(job_id))[0]
