"""What only the data can tell about a grid, checked by ``runs.ensure`` before anything trains.

Specs refuse bad fields when they are built, without touching any data; this reads what
the specs name: an image folder's classes and files (two classes at least, images of
every class in both splits, a train split the batch size can fill) and the class count
of a finished teacher against its dataset as it is now (an image folder can change);
for the mini world, Fashion-MNIST's four files (found, complete, the right sizes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from kdlib import data, specs
from kdlib.store import RunDir


def _lineage(spec: specs.Init) -> Iterator[specs.Spec]:
    """A spec and every run it starts from (teacher, initializations), nested ones included."""
    if isinstance(spec, str):
        return
    yield spec
    if isinstance(spec, specs.Distill):
        yield from _lineage(spec.teacher)
        yield from _lineage(spec.student_init)
    else:
        yield from _lineage(spec.init)


def check_folder(spec: specs.Spec) -> None:
    """An ``imagefolder:`` dataset fit for ``spec``: classes, files in both splits, one full batch."""
    data.dataset_info(spec.dataset, spec.preset)  # two class folders at least
    train = data.build_dataset(spec.dataset, "train", preset=spec.preset, train_transform=False)
    data.build_dataset(spec.dataset, "test", preset=spec.preset, train_transform=False)  # every class there too
    if spec.batch_size > len(train):
        raise ValueError(f"batch_size={spec.batch_size}: larger than the {len(train)} training images of "
                         f"{spec.dataset!r} (every batch is full, so an epoch would have none); use at most "
                         f"{len(train) - len(train) % 2}, or add images")


def check_teacher(spec: specs.Distill, root: Path) -> None:
    """A finished teacher predicts as many classes as the dataset the student distils on has."""
    try:
        meta = json.loads((RunDir(spec.teacher, root).path / "weights.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return  # not trained yet (or by an older kdlib): training checks it
    have, need = meta.get("num_classes"), data.dataset_info(spec.dataset, spec.preset).num_classes
    if have is not None and have != need:
        raise ValueError(f"the teacher {meta.get('spec_id')} predicts {have} classes but {spec.dataset!r} has {need} "
                         "now (class folders added or removed since it was trained?); restore the folder, or "
                         "distil from a teacher trained on it as it is (a new folder path gives a new teacher)")


def check(spec_list: Iterable[specs.Spec], root: Path) -> None:
    """Every data-dependent check of a grid, each dataset and teacher once."""
    seen: set = set()
    for spec in spec_list:
        for s in _lineage(spec):
            key = (s.dataset, s.preset, s.batch_size)
            if s.dataset.startswith("imagefolder:") and key not in seen:
                seen.add(key)
                check_folder(s)
            elif data.mini_set(s.dataset) is not None and "fashion-mnist" not in seen:
                seen.add("fashion-mnist")
                data.fashion_mnist_root()  # finds the four IDX files, checks their sizes (and gzip) once
        if isinstance(spec, specs.Distill) and specs.run_id(spec.teacher) not in seen:
            seen.add(specs.run_id(spec.teacher))
            check_teacher(spec, root)
