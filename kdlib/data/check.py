"""Find every bad file of a dataset at once: ``python -m kdlib.data check <dataset> [--preset paper]``.

Training reads an image only when its batch comes up, so a corrupt file stops a run
mid-epoch naming that one file; this reads every file of both splits and lists them all.
"""
from __future__ import annotations

import argparse
import sys

from PIL import Image
from tqdm.auto import tqdm

from kdlib.data.paper import image_path, unreadable  # noqa: F401 - also read from here


def bad_files(name: str, preset: str = "paper", progress: bool = True) -> list[tuple[str, str]]:
    """(file, what is wrong) for every image of ``name`` (both splits) that does not decode."""
    from kdlib.data import SPLITS, FileDataset, build_dataset

    bad = []
    for split in SPLITS:
        ds = build_dataset(name, split, preset=preset, train_transform=False)
        if not isinstance(ds, FileDataset):
            continue  # in-memory arrays (the mini world, CIFAR): checked when their files are read
        for i in tqdm(range(len(ds)), desc=f"check {name} {split}", disable=not progress):
            path = image_path(ds.base, i)
            try:
                if path is None:
                    ds.base[i]
                else:
                    with Image.open(path) as image:
                        image.load()
            except Exception as e:  # noqa: BLE001 - every failure is a finding to list
                if not unreadable(e):
                    raise
                bad.append((path or f"{split}[{i}]", f"{type(e).__name__}: {e}"))
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="read every file of a dataset and list the bad ones")
    check.add_argument("dataset", help="a dataset name (pets, cifar100, ...) or imagefolder:<path>")
    check.add_argument("--preset", default=None, help="preset whose datasets to look in (default: the one that "
                       "knows the name; paper for imagefolder:<path>)")
    args = parser.parse_args(argv)
    from kdlib.data import dataset_names
    preset = args.preset or ("mini" if args.dataset in dataset_names("mini") else "paper")
    try:
        bad = bad_files(args.dataset, preset)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path, why in bad:
        print(f"{path}\t{why}")
    print(f"{len(bad)} bad file(s) in {args.dataset}" + (": delete or replace them, then rerun" if bad else ""),
          file=sys.stderr)
    return 1 if bad else 0
