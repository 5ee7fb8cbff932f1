"""Make sure runs exist: train only the missing ones, on this process, local workers or Slurm.

The flow of every notebook is ``specs -> ensure(specs) -> load_results() -> chart``.
``ensure`` skips finished runs, groups distillation runs that share a data stream (teacher,
dataset, seed, batch size: they see the same batches, whatever their loss, optimizer,
duration or student) into one job that trains them in one pass, and
materializes teachers and student initializations first, each once, under a file lock.

Executors: ``local`` (this process, tqdm progress), ``submitit-local`` (submitit's
LocalExecutor: real subprocesses through the same job protocol as Slurm) and ``slurm``
(submitit's AutoExecutor; a preempted or timed-out job is requeued and resumes from the
run's last epoch checkpoint). See ``kdlib.executors``; what one job does is ``kdlib.jobs``.

Faults: a run that raises records its traceback (``error.json``) and shows up as
``status == "failed"`` in ``load_results``; ``ensure(..., retry_failed=True)`` runs it
again. A killed run resumes from its last good checkpoint (``kdlib.store``).
"""
from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from kdlib import cadence, checks, data, executors, losses, models, numerics, preflight, specs
from kdlib.jobs import TERMINATING  # noqa: F401 - set by scheduler.on_sigterm in a job
from kdlib.specs import EXECUTORS
from kdlib.store import RunDir, check_root
from kdlib.tables import load_results


MAX_MEMBERS = 16        # students in one pass
MAX_MEMBER_GB = 8.0     # their weights, gradients and optimizer state together


def plan(spec_list: Iterable[specs.Spec], root: str | Path | None = None, *, retry_failed: bool = False,
         max_members: int = MAX_MEMBERS, max_member_gb: float = MAX_MEMBER_GB,
         ) -> tuple[list[specs.Supervised], list[list[specs.Distill]]]:
    """What is missing: supervised runs, and distillation passes, one per data stream (``share_key``).

    A stream with more members than ``max_members`` (or whose students' weights,
    gradients and optimizer state pass ``max_member_gb``) is split into several passes,
    longest runs first, so that each pass runs about as long as its members.
    """
    checks.check_int("max_members", max_members, hint=" (students in one pass)")
    sup, streams = [], defaultdict(list)
    for spec in spec_list:
        run = RunDir(spec, root)
        if run.done or (run.failed and not retry_failed):
            continue
        if isinstance(spec, specs.Supervised):
            sup.append(spec)
        else:
            streams[spec.share_key].append(spec)
    groups = []
    for members in streams.values():
        members = sorted(members, key=lambda s: (-s.epochs, specs.run_id(s)))
        group, used = [], 0.0
        for spec in members:
            size = _member_gb(spec)
            if group and (len(group) == max_members or used + size > max_member_gb):
                groups.append(group)
                group, used = [], 0.0
            group.append(spec)
            used += size
        groups.append(group)
    return sup, groups


@functools.lru_cache(maxsize=64)
def _arch_params(arch: str, preset: str, num_classes: int) -> int:
    import torch
    with torch.device("meta"):
        return sum(p.numel() for p in models.create(arch, num_classes, preset=preset).parameters())


def _member_gb(spec: specs.Distill) -> float:
    """Weights, gradients and optimizer state (AdamW: two slots, SGD: one) of a student, in GB."""
    params = _arch_params(spec.student, spec.preset, data.dataset_info(spec.dataset, spec.preset).num_classes)
    return params * 4 * (2 + (2 if spec.optimizer == "adamw" else 1)) / 1e9


def prerequisites(sup: list[specs.Supervised], groups: list[list[specs.Distill]],
                  root: str | Path | None = None, retry_failed: bool = False) -> dict[str, specs.Supervised]:
    """Supervised runs to train before the distillation groups: the asked ones, missing teachers and inits.

    A teacher or init that failed for a reason retrying cannot fix is left out (its
    groups fail at once with its error) unless ``retry_failed``.
    """
    needed = {specs.run_id(s): s for s in sup}
    for group in groups:
        for s in (group[0].teacher, *(g.student_init for g in group)):
            if isinstance(s, specs.Supervised):
                run = RunDir(s, root)
                if not run.done and (retry_failed or not run.failed or run.retryable):
                    needed.setdefault(specs.run_id(s), s)
    return needed


def hub_weights(spec_list: Iterable[specs.Spec], root: str | Path | None = None) -> dict[str, list[str]]:
    """timm tags the missing runs of ``spec_list`` start from, each with the runs that need it."""
    needs: dict[str, list[str]] = defaultdict(list)

    def visit(spec, arch: str, preset: str, init) -> None:
        if isinstance(init, specs.Supervised):
            walk(init)
        elif isinstance(init, str) and init.startswith("hub"):
            needs[models.hub_tag(arch, preset, init)].append(f"{arch} {specs.run_id(spec)} on {spec.dataset}")

    def walk(spec) -> None:
        if RunDir(spec, root).done:
            return
        if isinstance(spec, specs.Supervised):
            visit(spec, spec.arch, spec.preset, spec.init)
        else:
            walk(spec.teacher)
            visit(spec, spec.student, spec.preset, spec.student_init)

    for spec in spec_list:
        walk(spec)
    return {tag: list(dict.fromkeys(who)) for tag, who in needs.items()}


def fetch_grid_hub_weights(spec_list: Iterable[specs.Spec], root: str | Path | None = None) -> None:
    """Every hub weight a grid needs, into the cache here (compute nodes often have no internet).

    Fails at once, before anything trains or is submitted, naming each missing tag and the ways out.
    """
    missing = {}
    for tag, who in hub_weights(spec_list, root).items():
        try:
            models.fetch_hub_weights(tag)
        except Exception as e:  # noqa: BLE001 - every missing tag is reported at once below
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            missing[tag] = f"  {tag} (for {', '.join(who[:3])}{' ...' if len(who) > 3 else ''}): " \
                           f"{type(e).__name__}: {reason[:200]}"
    if missing:
        from huggingface_hub import constants

        raise ValueError(
            f"{len(missing)} hub weight(s) this grid starts from are not available on this machine, so nothing was "
            "trained or submitted:\n" + "\n".join(missing.values()) + "\nkdlib fetches hub weights on the "
            "submitting machine first, into the Hugging Face cache, because compute nodes often have no internet; "
            f"the nodes must see the same cache (a shared home, or HF_HOME on a shared file system). Ways out:\n"
            "  - run ensure once where the hub is reachable: it fills the cache;\n"
            f"  - copy a filled cache from a connected machine to {constants.HF_HUB_CACHE} and set HF_HUB_OFFLINE=1;\n"
            "  - download the weight file on a connected machine and start from it: init='file:<path>' "
            "(specs.pretrained(..., tag='file:<path>'), or student_init='file:<path>').")


def _check(spec_list: Any, executor: str, max_parallel: Any) -> list[specs.Spec]:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS} ('local' trains in this "
                         "process, 'submitit-local' in subprocesses, 'slurm' as a Slurm job array)")
    checks.check_int("max_parallel", max_parallel, hint=" (jobs run at once by 'submitit-local')")
    numerics.check_switches()  # KDLIB_MEMBER_THREADS and the like, before anything trains
    cadence.checkpoint_budget()
    if isinstance(spec_list, (specs.Supervised, specs.Distill)):
        spec_list = [spec_list]
    spec_list = list(spec_list)
    if not spec_list:
        raise ValueError("the grid has zero cells: check the lists in the parameters cell (none may be empty)")
    for s in spec_list:
        if not isinstance(s, (specs.Supervised, specs.Distill)):
            raise ValueError(f"not a run spec: {s!r}; build specs with kdlib.specs (teacher, distill, grid)")
        if isinstance(s, specs.Distill):
            losses.for_spec(s)  # the loss's hyperparameter values (specs checked their names)
    return spec_list


def ensure(spec_list: Iterable[specs.Spec], *, executor: str = "local", root: str | Path | None = None,
           wait: bool = True, progress: bool = True, retry_failed: bool = False, device=None,
           max_parallel: int = 2, slurm: dict[str, Any] | None = None, max_members: int = MAX_MEMBERS,
           logit_cache: bool | None = None):
    """Make every run of ``spec_list`` exist in the store; return their rows of ``load_results``.

    Finished runs are never run again; failed runs are skipped unless ``retry_failed``.
    With the submitit executors, ``wait=True`` shows a progress bar over landed runs and
    returns when every run is done or failed; ``wait=False`` returns after submitting,
    and a later call collects whatever has landed without resubmitting runs whose job is
    still in flight. ``max_parallel`` caps the jobs ``submitit-local`` runs at once;
    ``slurm`` holds Slurm options (see ``kdlib.executors.SLURM_DEFAULTS``). Every bad
    input is a ValueError raised before anything is submitted. Distillation runs on one
    data stream train in one pass of at most ``max_members`` students; ``logit_cache``
    (default ``KDLIB_LOGIT_CACHE``, on; jobs of the submitit executors read the variable)
    stores the teacher's logits on each stream for later passes.
    """
    spec_list = _check(spec_list, executor, max_parallel)
    root = check_root(root)
    preflight.check(spec_list, root)  # what only the data can tell, before anything trains
    submitter = None
    if executor != "local":
        submitter = executors.Submitter(executor, root, slurm=slurm, max_parallel=max_parallel,  # validates
                                        presets={s.preset for s in spec_list})
    sup, groups = plan(spec_list, root, retry_failed=retry_failed, max_members=max_members)
    fetch_grid_hub_weights([*sup, *(s for g in groups for s in g)], root)
    for spec in [*sup, *(s for g in groups for s in g)]:
        RunDir(spec, root).declare()  # pending rows show up in load_results at once
    if sup or groups:
        # Teachers and student initializations first, each once: the jobs of a grid share them.
        if submitter is None:
            needed = prerequisites(sup, groups, root, retry_failed=retry_failed)
            executors.run_local(needed, groups, root, device=device, progress=progress, logit_cache=logit_cache)
        else:  # (as before the layout change: the submitit path leaves non-retryable teachers out)
            submitter.submit(prerequisites(sup, groups, root), groups, wait=wait, progress=progress)
    return _rows(root, spec_list)


def _rows(root: Path, spec_list: list[specs.Spec]):
    ids = list(dict.fromkeys(specs.run_id(s) for s in spec_list))
    frame = load_results(root, kind="all", run_ids=ids)  # their folders and the index only, not the whole store
    if not len(frame):
        return frame
    frame = frame.set_index("run_id")
    return frame.loc[[i for i in ids if i in frame.index]].reset_index()
