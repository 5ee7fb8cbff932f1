"""The grids of the study notebooks: one function per notebook turns its parameters into specs.

A notebook's parameters cell names what to vary in the paper's words; the function of the
same number builds the list of specs (teachers, students, references) that ``runs.ensure``
makes sure exist. Grids read like the paper's sections; nothing here trains or reads results
(orchestration layer: it knows the specs and each method's settings, not where runs go).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

from kdlib import checks, losses, specs




def scaled_epochs(base: int, fractions: Sequence[float]) -> list[int]:
    """Durations as fractions of a baseline: ``round(f * base)`` (halves up), at least 1, ascending, unique.

    The paper varies distillation (Sect. 4.2) and teacher finetuning (Sect. 4.3) durations
    as fractions of the baseline; e.g. ``scaled_epochs(16, [1/16, 1/8, 1/4, 1/2, 1])`` is
    ``[1, 2, 4, 8, 16]``.
    """
    if not checks.is_int(base) or base < 1:
        raise ValueError(f"baseline epochs={base!r} must be an integer >= 1")
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (list, tuple)) or not fractions \
            or not all(checks.is_number(f) and f > 0 for f in fractions):
        raise ValueError(f"fractions={fractions!r} must be a non-empty list of numbers > 0")
    return sorted({max(1, int(math.floor(f * base + 0.5))) for f in fractions})


@dataclass(frozen=True)
class Grid:
    """A notebook's specs: the distillation ``runs``, their ``teachers`` and supervised ``references``."""

    runs: tuple
    teachers: tuple = ()
    references: tuple = ()

    @property
    def specs(self) -> list:
        """What ``runs.ensure`` should make sure exists: the runs and the references (teachers train on the way)."""
        return [*self.runs, *self.references]

    def __str__(self) -> str:
        passes = len({s.share_key for s in self.runs})
        extra = f", {len(set(self.references))} supervised references" if self.references else ""
        return (f"{len(self.runs)} runs in {passes} shared passes from {len(set(self.teachers))} teacher(s)"
                f"{extra}")


def _product(datasets, teachers, students, seeds):
    return itertools.product(datasets, teachers, students, seeds)


def _teacher(arch: str, dataset: str, preset: str, seed: int, teacher_epochs, pretrain_epochs, **kw) -> Any:
    return specs.teacher(arch, dataset, preset_name=preset, epochs=teacher_epochs, pretrain_epochs=pretrain_epochs,
                         seed=seed, **kw)


def _sweep(teacher, student: str, temperatures, distill_epochs, **kw) -> list:
    return specs.grid(specs.distill(teacher, student, temperature=1, epochs=distill_epochs, **kw),
                      temperature=list(temperatures))


def quickstart(*, preset, datasets, teachers, students, temperatures, seeds, distill_epochs=None,
               teacher_epochs=None, pretrain_epochs=None) -> Grid:
    """Notebook 00: a finetuned and a from-scratch teacher, a temperature sweep, the student on labels alone."""
    runs, tea, refs = [], [], []
    for dataset, arch, student, seed in _product(datasets, teachers, students, seeds):
        t = _teacher(arch, dataset, preset, seed, teacher_epochs, pretrain_epochs)
        scratch = specs.teacher(arch, dataset, origin="scratch", preset_name=preset, epochs=teacher_epochs, seed=seed)
        sweep = _sweep(t, student, temperatures, distill_epochs)
        runs += sweep
        tea += [t, scratch]
        refs.append(specs.trained(student, dataset, init="target", preset_name=preset, epochs=sweep[0].epochs,
                                  seed=seed))
    return Grid(tuple(runs), tuple(tea), tuple(refs))


def kd_approach(*, preset, datasets, teachers, students, temperatures, seeds, methods, method_args=None,
                distill_epochs=None, teacher_epochs=None, pretrain_epochs=None) -> Grid:
    """Notebook 01 (Fig. 1): vanilla KD at every T beside each method at its paper's settings."""
    runs, tea = [], []
    for dataset, arch, student, seed in _product(datasets, teachers, students, seeds):
        t = _teacher(arch, dataset, preset, seed, teacher_epochs, pretrain_epochs)
        sweep = _sweep(t, student, temperatures, distill_epochs)
        family = losses.dataset_family(dataset, preset)
        runs += sweep + [specs.distill(t, student, temperature=None, method=m, epochs=distill_epochs, method_args={
            **losses.method_settings(m, family, sweep[0].epochs), **(method_args or {}).get(m, {})}) for m in methods]
        tea.append(t)
    return Grid(tuple(runs), tuple(tea))


def training_configuration(*, preset, datasets, teachers, students, temperatures, seeds, optimizers, batch_sizes,
                           duration_fractions, distill_epochs=None, teacher_epochs=None, pretrain_epochs=None) -> Grid:
    """Notebooks 02 (Figs. 2-3): every optimizer x batch size x duration (fractions of the longest) x T."""
    runs, tea = [], []
    for dataset, arch, student, seed in _product(datasets, teachers, students, seeds):
        t = _teacher(arch, dataset, preset, seed, teacher_epochs, pretrain_epochs)
        longest = distill_epochs or specs.distill(t, student, temperature=1).epochs
        for optimizer, batch_size, epochs in itertools.product(optimizers, batch_sizes,
                                                               scaled_epochs(longest, duration_fractions)):
            runs += _sweep(t, student, temperatures, epochs, optimizer=optimizer, batch_size=batch_size)
        tea.append(t)
    return Grid(tuple(runs), tuple(tea))


TARGET_VARIANTS = ({}, {"targets": "ls-global"}, {"targets": "ls-instance"})  # Fig. 5's ablations of the targets


def class_relationships(*, preset, datasets, teachers, students, temperatures, seeds, bottom_ks,
                        distill_epochs=None, teacher_epochs=None, pretrain_epochs=None) -> Grid:
    """Notebook 03 (Fig. 5): the teacher's targets beside label-smoothing-like and bottom-k ablations."""
    variants = [*TARGET_VARIANTS, *({"targets": "bottom-k", "k": k} for k in bottom_ks)]
    runs, tea = [], []
    for dataset, arch, student, seed in _product(datasets, teachers, students, seeds):
        t = _teacher(arch, dataset, preset, seed, teacher_epochs, pretrain_epochs)
        for args in variants:
            runs += _sweep(t, student, temperatures, distill_epochs, method_args=args)
        tea.append(t)
    return Grid(tuple(runs), tuple(tea))


def teacher_origination(*, preset, datasets, teachers, students, temperatures, seeds, teacher_origins,
                        finetune_fractions, teacher_epochs=None, scratch_epochs=None, distill_epochs=None,
                        pretrain_epochs=None) -> Grid:
    """Notebook 04 (Table 1): finetuned teachers at several durations and teachers from scratch (no ViT)."""
    runs, tea = [], []
    for dataset, arch, student, seed in _product(datasets, teachers, students, seeds):
        kw = dict(preset_name=preset, pretrain_epochs=pretrain_epochs, seed=seed)
        baseline = specs.teacher(arch, dataset, epochs=teacher_epochs, **kw).epochs
        chosen = []
        if "finetuned" in teacher_origins:
            chosen += [specs.teacher(arch, dataset, epochs=e, **kw) for e in scaled_epochs(baseline, finetune_fractions)]
        if "scratch" in teacher_origins and arch not in specs.VIT_ARCHS:  # no ViT from scratch (Sect. 4.3)
            chosen.append(specs.teacher(arch, dataset, origin="scratch", epochs=scratch_epochs or baseline, **kw))
        for t in chosen:
            runs += _sweep(t, student, temperatures, distill_epochs)
        tea += chosen
    return Grid(tuple(runs), tuple(tea))


def student_initialization(*, preset, datasets, teachers, students, temperatures, seeds, student_inits,
                           student_epochs=None, distill_epochs=None, teacher_epochs=None,
                           pretrain_epochs=None) -> Grid:
    """Notebook 05 (Table 2): every student initialization x T, and each student finetuned alone."""
    runs, tea, refs = [], [], []
    for dataset, arch, student, seed in _product(datasets, teachers, students, seeds):
        t = _teacher(arch, dataset, preset, seed, teacher_epochs, pretrain_epochs)
        start = {init: specs.trained(student, dataset, init=init, preset_name=preset, epochs=student_epochs,
                                     pretrain_epochs=pretrain_epochs, seed=seed)
                 for init in [*student_inits, "finetuned"]}
        for init in student_inits:
            runs += _sweep(t, student, temperatures, distill_epochs, student_init=start[init])
        tea.append(t)
        refs.append(start["finetuned"])
    return Grid(tuple(runs), tuple(tea), tuple(refs))


def dataset_granularity(*, preset, datasets, pretrain_corpora, teachers, students, temperatures, seeds,
                        distill_epochs=None, teacher_epochs=None, pretrain_epochs=None) -> Grid:
    """Notebook 06 (Figs. 6-7): each dataset under each pretraining corpus (overlap or none) x T."""
    cases = [(dataset, corpus) for dataset in datasets for corpus in pretrain_corpora.get(dataset, [None])]
    runs, tea = [], []
    for (dataset, corpus), arch, student, seed in _product(cases, teachers, students, seeds):
        t = _teacher(arch, dataset, preset, seed, teacher_epochs, pretrain_epochs, corpus=corpus)
        runs += _sweep(t, student, temperatures, distill_epochs)
        tea.append(t)
    return Grid(tuple(runs), tuple(tea))


def from_notebook(builder, namespace: dict) -> Grid:
    """``builder(**parameters)`` with the keyword arguments it takes, read from a notebook's ``globals()``."""
    import inspect

    names = [p.name for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return builder(**{n: namespace[n] for n in names if n in namespace})
