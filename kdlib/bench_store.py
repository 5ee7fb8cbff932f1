"""How fast ``load_results`` is on a big store: the index against a full scan, in one run.

``python -m kdlib.bench_store --runs 10000`` writes a synthetic store of that many finished
distillation runs (and their teachers) under a temporary folder, with spec.json,
result.json (a 10-epoch history) and history.jsonl as real runs have, then times:

- ``scan``: ``load_results`` as it was before the index (``scan_results`` below: every
  spec.json and result.json read, every spec rebuilt and validated, on each call);
- ``cold``: ``load_results`` with no index (it reads every folder and writes the index);
- ``warm``: ``load_results`` with the index (one parquet per kind, one ``scandir``);
- ``ensure_rows``: ``load_results(run_ids=...)`` for 100 runs, what ``runs.ensure`` asks.

Each figure is the median of ``--repeats`` calls, wall clock (``*_s``) and this process's
CPU time (``*_cpu_s``, what a busy shared machine does not inflate). "Cold" means no index, not
a cold page cache (dropping the OS cache would disturb the machine's other users).
Writes ``outputs/bench/store.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from kdlib import history, paths, provenance, specs, store_index, tables
from kdlib.io import atomic_write_json


def make_store(root: Path, runs: int) -> list[str]:
    """``runs`` finished distillation runs over 4 teachers, written directly (no fsync: a benchmark fixture)."""
    teachers = [specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=e) for e in (1, 2, 3, 4)]
    prov = {**provenance.record(), "wall_seconds": 12.0}
    for t in teachers:
        _write(root, t, {**prov, "test_acc": 90.0, "train_h_all": 0.2, "train_h_minus_max": 0.4, "history": []})
    ids = []
    for i in range(runs):
        spec = specs.distill(teachers[i % 4], "resnet18", temperature=1.0 + (i // 4) * 0.01, epochs=10,
                             seed=i % 3)
        hist = [{"epoch": e, "test_acc": 50.0 + e, "train_loss": 1.0 / e, "seconds": 0.5} for e in range(1, 11)]
        ids.append(_write(root, spec, {**prov, "test_acc": 60.0 + (i % 7), "train_loss": 0.1, "history": hist,
                                       "device": "cpu", "train_seconds": 5.0}))
    return ids


def _write(root: Path, spec, result: dict[str, Any]) -> str:
    folder = root / specs.run_id(spec)
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(specs.to_dict(spec), indent=1, sort_keys=True))
    (folder / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    (folder / history.FILE).write_text("".join(json.dumps(h) + "\n" for h in result["history"]))
    return folder.name


def scan_results(root: Path, kind: str = "distill"):
    """``load_results`` as it was before the index, verbatim: every run's files read and every spec rebuilt."""
    import pandas as pd

    def status(path: Path) -> str:
        if (path / "result.json").is_file():
            return "done"
        if (path / "error.json").is_file():
            return "failed"
        return "running" if (path / "state.json").is_file() else "pending"

    def read(path: Path, name: str) -> dict[str, Any]:
        try:
            return json.loads((path / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    rows, teachers = [], {}
    for path in sorted(root.glob("*/spec.json")):
        run = path.parent
        spec = specs.from_dict(json.loads(path.read_text()))
        row = {"run_id": run.name, **tables.row_of(spec), "status": status(run)}
        if row["kind"] == "distill":
            row["teacher_id"] = specs.run_id(spec.teacher)  # describe() did this for every run
        if kind != "all" and row["kind"] != kind:
            continue
        result = read(run, "result.json")
        row.update({k: v for k, v in result.items() if k != "history"})
        if row["kind"] == "distill":
            tid = row["teacher_id"]
            if tid not in teachers:
                teachers[tid] = read(root / tid, "result.json")
            t = teachers[tid]
            row.update({"teacher_acc": t.get("test_acc"), "teacher_h_all": t.get("train_h_all"),
                        "teacher_h_minus_max": t.get("train_h_minus_max")})
        rows.append(row)
    frame = pd.DataFrame(rows)
    labels = [provenance.code_version(r) for _, r in frame.iterrows()]  # versions() before it lost iterrows
    frame.attrs["versions"] = {label: labels.count(label) for label in set(labels)}
    return provenance.complete(frame)


def _median_s(fn, repeats: int, before=None) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``repeats`` calls (CPU: this process, what a busy machine does not inflate)."""
    wall, cpu = [], []
    for _ in range(repeats):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return round(statistics.median(wall), 3), round(statistics.median(cpu), 3)


def run(runs: int, repeats: int = 3) -> dict[str, Any]:
    """The four timings on a fresh synthetic store of ``runs`` runs (removed afterwards)."""
    root = Path(tempfile.mkdtemp(prefix="kdlib-bench-store-"))
    try:
        started = time.perf_counter()
        ids = make_store(root, runs)
        made = time.perf_counter() - started
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fixture is one code version; nothing to warn about
            scan = scan_results(root)
            drop = lambda: shutil.rmtree(root / store_index.DIR, ignore_errors=True)  # noqa: E731
            cold = _median_s(lambda: tables.load_results(root), repeats, before=drop)
            warm_frame = tables.load_results(root)
            warm = _median_s(lambda: tables.load_results(root), repeats)
            some = ids[:: max(1, runs // 100)][:100]
            rows = _median_s(lambda: tables.load_results(root, kind="all", run_ids=some), repeats)
            scan_s = _median_s(lambda: scan_results(root), repeats)
        same = sorted(scan["run_id"]) == sorted(warm_frame["run_id"]) and \
            scan.set_index("run_id")["test_acc"].sort_index().equals(warm_frame.set_index("run_id")["test_acc"].sort_index())
        out = {"runs": runs, "repeats": repeats, "make_store_s": round(made, 2)}
        for name, (wall, cpu) in (("scan", scan_s), ("cold", cold), ("warm", warm), ("ensure_rows_100", rows)):
            out[f"{name}_s"], out[f"{name}_cpu_s"] = wall, cpu
        out.update({"index_bytes": sum(p.stat().st_size for p in (root / store_index.DIR).glob("*.parquet")),
                    "same_rows_as_scan": bool(same), "load_average": [round(x, 2) for x in os.getloadavg()],
                    "cpus": os.cpu_count()})
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeats < 1:
        raise ValueError(f"--runs {args.runs} --repeats {args.repeats}: both must be >= 1 (e.g. --runs 10000)")
    out = run(args.runs, args.repeats)
    atomic_write_json(paths.outputs_dir() / "bench" / "store.json", out)
    for key, value in out.items():
        print(f"{key:>20}: {value}")
    return out


if __name__ == "__main__":
    main()
