"""Calibration study of the mini world (issue 11, item 1): what each design choice does, before choosing defaults.

Every measurement is one configuration of the mini world (the mini preset's defaults plus
the overrides of its axis value). For each seed it trains, through the results store (so
a rerun resumes and skips finished runs):

- the teacher: general pretraining, then finetuning on the target set;
- the student on labels alone for the same number of steps (its plateau);
- distillation sweeps over T under AdamW and under SGD.

It reports the teacher's accuracy, H_all and H_-max (T = 1, training set), the label-only
accuracy, accuracy at every T under both optimizers (mean ± std over seeds) and the
optimizer steps, and writes the table into docs/calibration.md between its markers.

    python scripts/calibrate_mini.py --list                 # the measurements
    python scripts/calibrate_mini.py                        # all of them, 3 seeds (hours on 2 CPU cores)
    python scripts/calibrate_mini.py --only base --seeds 0  # one slice
    python scripts/calibrate_mini.py --table-only           # rewrite the table from the store
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kdlib import data, runs, specs, tables
from kdlib.io import atomic_write_bytes

DOC = Path(__file__).resolve().parents[1] / "docs" / "calibration.md"
BEGIN, END = "<!-- calibration:begin -->", "<!-- calibration:end -->"


@dataclass(frozen=True)
class Measurement:
    """One configuration: the axis it belongs to, its label, and what it changes from the mini defaults."""

    axis: str
    name: str
    knobs: dict[str, Any] = field(default_factory=dict)


# None: the preset's own value (the teacher's recipe: ``Preset.teacher_label_smoothing`` and ``teacher_mixup``).
BASE = dict(preset="mini", dataset="fmnist-fine", teacher="resnet50", student="resnet18", corpus="fmnist-general",
            pretrain_epochs=None, finetune_epochs=None, label_smoothing=None, mixup=None, distill_epochs=None,
            batch_size=None)
SMOOTHED = {"label_smoothing": 0.1, "mixup": True}   # the mini teacher's recipe (and the patient preset's before)

MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("defaults", "base"),
    Measurement("defaults", "patient", {"preset": "patient"}),
    *(Measurement("pretraining length", f"pretrain {e} ep", {"pretrain_epochs": e}) for e in (5, 10, 20)),
    Measurement("finetuning", "finetune 3 ep", {"finetune_epochs": 3}),
    Measurement("finetuning", "finetune 30 ep", {"finetune_epochs": 30}),
    Measurement("finetuning", "finetune 3 ep, no LS, no MixUp", {"finetune_epochs": 3, "label_smoothing": 0.0,
                                                                  "mixup": False}),
    Measurement("finetuning", "finetune 10 ep, no LS, no MixUp", {"label_smoothing": 0.0, "mixup": False}),
    Measurement("pretraining label space", "coarse corpus (4 classes) -> fine target",
                {"corpus": "fmnist-general-coarse"}),
    Measurement("pretraining label space", "fine corpus (10 classes) -> coarse target", {"dataset": "fmnist-coarse"}),
    Measurement("pretraining label space", "coarse corpus -> coarse target",
                {"dataset": "fmnist-coarse", "corpus": "fmnist-general-coarse"}),
    *(Measurement("target set size", f"{n} images per class", {"dataset": f"fmnist-fine-{n}"}) for n in (300, 500)),
    Measurement("target classes", "tops (5 classes) inside the pretraining classes", {"dataset": "fmnist-tops"}),
    Measurement("target classes", "tops the coarse pretraining never separated",
                {"dataset": "fmnist-tops", "corpus": "fmnist-general-coarse"}),
    *(Measurement("distillation steps", f"{e} ep x batch {b}", {"distill_epochs": e, "batch_size": b})
      for e, b in ((100, 128), (30, 32), (100, 64), (200, 64))),
    Measurement("capacity", "teacher convnext_t", {"teacher": "convnext_t"}),
    Measurement("capacity", "student mnv4", {"student": "mnv4"}),
    Measurement("capacity", "student convnext_p", {"student": "convnext_p"}),
    # The patient preset's own questions: is a claim it contradicts a matter of training length or of the
    # teacher's softness? "patient" above is the preset (teachers without LS and MixUp); these change one thing.
    Measurement("patient scale", "patient, teacher with LS 0.1 + MixUp (the preset before)",
                {"preset": "patient", **SMOOTHED}),
    Measurement("patient scale", "patient, teacher with LS 0.1 + MixUp, 200 ep x batch 64",
                {"preset": "patient", **SMOOTHED, "distill_epochs": 200}),
    Measurement("patient scale", "patient, 200 ep x batch 64", {"preset": "patient", "distill_epochs": 200}),
)
# The test set and the data seed are the preset's (``Preset.test_images``, ``Preset.data_seed``): the
# mini preset scores on a 5,000-image stratified test subset, the patient preset on all 10,000, and
# every run seed of either trains on the same world (data seed 0), so seeds vary initialization and
# batch order only, as the paper's seeds do.


def _knobs(m: Measurement) -> dict[str, Any]:
    k = {**BASE, **m.knobs}
    p = specs.preset(k["preset"])
    k["batch_size"] = k["batch_size"] or p.batch_size
    k["distill_epochs"] = k["distill_epochs"] or p.distill_epochs[data.base_dataset(k["dataset"])]
    return k


def build(m: Measurement, seed: int, temperatures: list[float]) -> dict[str, Any]:
    """The teacher, the label-only student and the two sweeps of one measurement at one seed."""
    k = _knobs(m)
    recipe = {key: k[key] for key in ("label_smoothing", "mixup") if k[key] is not None}
    teacher = specs.teacher(k["teacher"], k["dataset"], preset_name=k["preset"], corpus=k["corpus"],
                            epochs=k["finetune_epochs"], pretrain_epochs=k["pretrain_epochs"], seed=seed, **recipe)
    labels = specs.trained(k["student"], k["dataset"], init="target", preset_name=k["preset"],
                           epochs=k["distill_epochs"], seed=seed, batch_size=k["batch_size"])
    sweeps = {opt: specs.grid(specs.distill(teacher, k["student"], temperatures[0], epochs=k["distill_epochs"],
                                            batch_size=k["batch_size"], optimizer=opt), temperature=temperatures)
              for opt in ("adamw", "sgd")}
    return {"teacher": teacher, "labels": labels, **sweeps}


def _stat(values: list[float], digits: int = 1, scale: float = 1.0) -> str:
    x = [v * scale for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not x:
        return "–"
    mean = sum(x) / len(x)
    if len(x) == 1:
        return f"{mean:.{digits}f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (len(x) - 1))
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _train_images(k: dict[str, Any]) -> int:
    """Images a distillation epoch draws batches from: the target set less its validation part."""
    size = data.train_size(k["dataset"])
    return size - round(size * specs.preset(k["preset"]).val_fraction)


def row(m: Measurement, frame: pd.DataFrame, seeds: list[int], temperatures: list[float]) -> dict[str, str]:
    """One table row from the store (whatever has finished)."""
    done = frame[frame["status"] == "done"].set_index("run_id") if len(frame) else frame

    def acc(spec, column="test_acc"):
        rid = specs.run_id(spec)
        return float(done.loc[rid, column]) if rid in done.index and column in done else math.nan

    built = [build(m, s, temperatures) for s in seeds]
    k = _knobs(m)
    out = {"axis": m.axis, "measurement": m.name,
           "steps": str(k["distill_epochs"] * (_train_images(k) // k["batch_size"])),
           "seeds": str(sum(not math.isnan(acc(b["teacher"])) for b in built)),
           "teacher acc": _stat([acc(b["teacher"]) for b in built]),
           "H_all": _stat([acc(b["teacher"], "train_h_all") for b in built], 3),
           "H_-max": _stat([acc(b["teacher"], "train_h_minus_max") for b in built], 3),
           "labels only": _stat([acc(b["labels"]) for b in built])}
    for opt in ("adamw", "sgd"):
        for i, t in enumerate(temperatures):
            out[f"{opt} T={t:g}"] = _stat([acc(b[opt][i]) for b in built])
    return out


def table(rows: list[dict[str, str]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _rows_of(block: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The header line, the table's rows by measurement name and their provenance lines, from a written block."""
    lines = block.splitlines()
    table_lines = [ln for ln in lines if ln.startswith("|")]
    header = "\n".join(table_lines[:2])
    rows = {ln.split("|")[2].strip(): ln for ln in table_lines[2:]}
    notes = {}
    for ln in lines:
        if ln.startswith("- `") and "`: " in ln:
            notes[ln[3:ln.index("`: ")]] = ln
    return header, rows, notes


def write_doc(rows: list[dict[str, str]], command: str) -> None:
    """Update the rows of these measurements in docs/calibration.md's table, keep the others (atomically)."""
    doc = DOC.read_text() if DOC.is_file() else f"# Mini-world calibration\n\n{BEGIN}\n{END}\n"
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"{DOC} lacks the markers {BEGIN} / {END}; put them where the table goes")
    head, rest = doc.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    new_text = table(rows)
    header, kept, notes = _rows_of(old)
    new_header = "\n".join(new_text.splitlines()[:2])
    if header != new_header:  # other columns (temperatures): the old rows cannot share the table
        kept, notes = {}, {}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for r, line in zip(rows, new_text.splitlines()[2:]):
        kept[r["measurement"]] = line
        notes[r["measurement"]] = f"- `{r['measurement']}`: {stamp}, `{command}`"
    order = {m.name: i for i, m in enumerate(MEASUREMENTS)}
    names = sorted(kept, key=lambda n: order.get(n, len(order)))
    body = "\n".join([BEGIN, new_header, *(kept[n] for n in names), "", "Rows written:",
                      *(notes[n] for n in names if n in notes), END])
    atomic_write_bytes(DOC, (head + body + tail).encode())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="measurement names or axes (default: all)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--temperatures", nargs="*", type=float, default=[1, 4, 10, 40])
    ap.add_argument("--root", help="results store (default: $KDLIB_OUTPUTS/store)")
    ap.add_argument("--list", action="store_true", help="list the measurements and exit")
    ap.add_argument("--table-only", action="store_true", help="rewrite the table from the store, train nothing")
    ap.add_argument("--no-doc", action="store_true", help="print the table, leave docs/calibration.md alone")
    args = ap.parse_args(argv)
    chosen = [m for m in MEASUREMENTS if not args.only or m.name in args.only or m.axis in args.only]
    if args.list or not chosen:
        for m in MEASUREMENTS:
            print(f"{m.axis:26s} {m.name:40s} {m.knobs}")
        if not chosen:
            raise SystemExit(f"--only {args.only} matches no measurement or axis")
        return
    for m in chosen if not args.table_only else []:
        for seed in args.seeds:
            b = build(m, seed, args.temperatures)
            started = time.perf_counter()
            runs.ensure([b["teacher"], b["labels"], *b["adamw"], *b["sgd"]], root=args.root, progress=False)
            print(f"{m.name} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    frame = tables.load_results(args.root, kind="all")
    rows = [row(m, frame, args.seeds, args.temperatures) for m in chosen]
    print(table(rows))
    if not args.no_doc:
        write_doc(rows, "python scripts/calibrate_mini.py " + shlex.join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
