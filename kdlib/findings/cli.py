"""``python -m kdlib.findings``: load the store, score every claim, write ``findings.md`` and ``findings.html``.

F6 needs the baseline teacher's logits; they are computed from the teachers already in
the store (nothing is trained here), one per seed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from kdlib import jobs, paths, specs, tables


def baseline_teacher_logits(frame: pd.DataFrame, preset_name: str, root: str | Path | None = None) -> dict[int, Any]:
    """Training-set logits of the preset's baseline teacher (its first dataset, default finetune), per seed.

    Only finished teachers are read; a seed whose teacher is missing is left out.
    """
    p = specs.preset(preset_name)
    root = Path(root) if root is not None else paths.store_dir()
    dataset = p.datasets[0]
    if frame.empty or "teacher_id" not in frame:
        return {}
    rows = frame[(frame["kind"] == "distill") & (frame["preset"] == preset_name) & (frame["dataset"] == dataset)
                 & (frame["teacher_origin"] == "finetuned") & (frame["teacher_epochs"] == p.finetune_epochs.get(dataset))]
    out = {}
    for seed, tid in rows.groupby("seed")["teacher_id"].first().items():
        run = root / tid
        if not (run / "result.json").is_file():
            continue
        spec = specs.from_dict(json.loads((run / "spec.json").read_text()))
        if not isinstance(spec.init, specs.Supervised) or spec.init.dataset != p.pretrain_corpus:
            continue
        out[int(seed)] = jobs.teacher_logits(spec, root=root, train_missing=False)[0]
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from kdlib import findings

    parser = argparse.ArgumentParser(prog="python -m kdlib.findings", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="results store (default: $KDLIB_OUTPUTS/store)")
    parser.add_argument("--preset", action="append", help="score only this preset (repeatable; default: all in the store)")
    parser.add_argument("--out", help="folder for findings.md/.html (default: $KDLIB_OUTPUTS)")
    parser.add_argument("--tolerance", type=float, default=1.0, help="plateau tolerance in points (F14)")
    parser.add_argument("--no-logits", action="store_true", help="skip F6 (no teacher forward passes)")
    args = parser.parse_args(argv)
    frame = tables.load_results(args.root, kind="all")
    names = args.preset or (sorted(frame["preset"].dropna().unique()) if len(frame) else ["mini"])
    parts = []
    for name in names:
        logits = {} if args.no_logits else baseline_teacher_logits(frame, name, args.root)
        parts.append(findings.scorecard(frame, preset=name, logits=logits, tolerance=args.tolerance))
    rows = pd.concat(parts, ignore_index=True)
    written = findings.write(rows, args.out or paths.outputs_dir())
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(findings.show_rows(rows)[["scale", "seeds", "value", "ci_low", "ci_high", "verdict"]].to_string())
    print("wrote", ", ".join(str(p) for p in written))
    return rows
