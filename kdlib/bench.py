"""How much a shared pass saves, and what kdlib's loop costs over a bare one.

``python -m kdlib.bench`` times a K-temperature sweep (K = 1, 2, 4, 8) on the mini preset,
trained (a) as K separate runs and (b) as one shared pass (``train.distill_pass``: the batch
and the teacher's forward are computed once per step, then each of the K students takes
its step). Inside the separate runs it measures, per batch, the teacher forward T, the
data D (load, augment, MixUp/CutMix) and a student step S (the rest), whose ideal
speed-up is

    K (T + S + D) / (T + D + K S).

It also compares one run with a bare PyTorch loop written here (same models, data,
batch size, MixUp/CutMix, AdamW and cosine schedule, test-set evaluation at the same
epochs; no store, checkpoints, per-tensor clipping or per-sample seeding), and says
where kdlib's extra time goes: ``bare_loop_ratio`` is bare seconds / kdlib seconds for
the whole run (1.0: as fast), ``bare_loop_ratio_train_only`` the same for the steps alone.
``student_step_vs_bare``: a K = 8 pass's ``distill_pass`` call per student step ÷ a step by hand (README).

``separate_s`` / ``shared_s`` are the seconds of the training steps of ``train.train_pass``
(from an epoch's first batch to its last step), the ``*_wall_s`` those of the whole
``train.distill_pass`` call (set-up, evaluation and checkpoints too). ``separate_s`` is K times
the median of the max(K) separate runs (identical work); every figure is a median,
which resists a busy spell of the machine better than a mean.
By default time is this process's CPU time with one torch thread: on a shared machine
it counts the work done, not the wait for a core (``--clock wall`` for elapsed time). Models are random: speed
does not depend on what they know. Writes ``outputs/bench/sweep.json`` and ``profile.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from kdlib import data, models, paths, specs, store, train
from kdlib.io import atomic_write_json

TEMPERATURES = specs.temperature_grid("paper")
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock: Callable[[], float] = time.process_time


def _specs(k: int, args) -> list[specs.Distill]:
    teacher = specs.teacher(args.teacher, args.dataset, origin="scratch", epochs=1)
    temps = [TEMPERATURES[i % len(TEMPERATURES)] * (1 + i // len(TEMPERATURES)) for i in range(k)]
    return [specs.distill(teacher, args.student, temperature=t, epochs=args.epochs, batch_size=args.batch_size)
            for t in temps]


# ----------------------------------------------------------------------------- instrumentation

class _Epochs:
    """Wraps a training loader: times each epoch (first batch request to its end) and each fetch."""

    def __init__(self, loader, totals: dict[str, float]):
        self.loader, self.totals = loader, totals

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):  # sampler and generator, for ``data.reseed``
        return getattr(self.loader, name)

    def __iter__(self):
        it, start = iter(self.loader), _clock()
        try:
            while True:
                fetch = _clock()
                try:
                    batch = next(it)
                except StopIteration:
                    return
                finally:
                    _add(self.totals, "loader_s", _clock() - fetch)
                yield batch
        finally:
            _add(self.totals, "train_steps_s", _clock() - start)


def _add(totals: dict[str, float], key: str, seconds: float) -> None:
    totals[key] = totals.get(key, 0.0) + seconds


def _wrap(owner: Any, name: str, totals: dict[str, float], key: str, stack: contextlib.ExitStack) -> None:
    original = getattr(owner, name)
    totals.setdefault(key, 0.0)  # a part never called (no checkpoint in a one-epoch run) costs 0 s

    def timed(*args, **kwargs):
        start = _clock()
        try:
            return original(*args, **kwargs)
        finally:
            _add(totals, key, _clock() - start)

    setattr(owner, name, timed)
    stack.callback(setattr, owner, name, original)


@contextlib.contextmanager
def _instrument(totals: dict[str, float], teacher: torch.nn.Module | None = None) -> Iterator[None]:
    """Time, inside ``train.train_pass``: epochs and loading, MixUp/CutMix, the teacher, clipping,
    evaluation and checkpoints (a few microseconds of overhead per call)."""
    make_loader, mixer = data.make_loader, train._mixer

    def loader(dataset, *args, train: bool, **kwargs):
        made = make_loader(dataset, *args, train=train, **kwargs)
        return _Epochs(made, totals) if train else made

    def timed_mixer(*args):
        mix = mixer(*args)

        def call(x, y):
            start = _clock()
            try:
                return mix(x, y)
            finally:
                _add(totals, "mixup_s", _clock() - start)
        return call

    started: list[float] = []
    with contextlib.ExitStack() as stack:
        _wrap(train, "evaluate", totals, "evaluation_s", stack)
        _wrap(train, "clip_per_tensor", totals, "clipping_s", stack)
        _wrap(store.RunDir, "save_checkpoint", totals, "checkpoint_s", stack)
        data.make_loader, train._mixer = loader, timed_mixer
        stack.callback(setattr, data, "make_loader", make_loader)
        stack.callback(setattr, train, "_mixer", mixer)
        if teacher is not None:
            stack.callback(teacher.register_forward_pre_hook(lambda *_: started.append(_clock())).remove)
            stack.callback(teacher.register_forward_hook(lambda *_: _add(totals, "teacher_s",
                                                                         _clock() - started.pop())).remove)
        yield


def _distill(group: list[specs.Distill], teacher: torch.nn.Module) -> dict[str, float]:
    """Where the time of one ``train.distill_pass`` call (in a fresh store) goes; ``wall_s``: all of it."""
    totals: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kdlib-bench-") as root, _instrument(totals, teacher):
        run_dirs = [store.RunDir(s, root) for s in group]
        start = _clock()
        train.distill_pass(group, run_dirs, teacher, student_states=[None] * len(group), device=torch.device("cpu"),
                           progress=False, use_cache=False)
        totals["wall_s"] = _clock() - start
    return totals


def components(runs: list[dict[str, float]], steps: int) -> dict[str, float]:
    """Seconds per batch of T (teacher forward), D (load, augment, mix) and S (a student step: the rest)."""
    n = steps * len(runs)
    teacher = sum(r["teacher_s"] for r in runs) / n
    data_ = sum(r["loader_s"] + r.get("mixup_s", 0.0) for r in runs) / n
    student = sum(r["train_steps_s"] for r in runs) / n - teacher - data_
    return {"teacher_s": teacher, "student_s": student, "data_s": data_}


def ideal_speedup(k: int, c: dict[str, float]) -> float:
    t, s, d = c["teacher_s"], c["student_s"], c["data_s"]
    return k * (t + s + d) / (t + d + k * s)


# ----------------------------------------------------------------------------- the bare loop

def bare_loop(args, teacher: torch.nn.Module, steps: int) -> dict[str, float]:
    """The textbook distillation loop: what kdlib's loop is measured against.

    ``steps`` steps, with a test-set evaluation where kdlib evaluates (every
    ``eval_every`` epochs on the preset's ``curve_test_images`` subset, the full set at the
    end), so that both do the same work; ``wall_s``
    counts everything from building the student on, ``train_steps_s`` only the steps.
    """
    start = _clock()
    spec = _specs(1, args)[0]
    info = data.dataset_info(spec.dataset, spec.preset)
    dataset = data.build_dataset(spec.dataset, "train", preset=spec.preset)
    test_set = data.build_dataset(spec.dataset, "test", preset=spec.preset)
    eval_every = specs.preset(spec.preset).eval_every
    n_curve = specs.preset(spec.preset).curve_test_images or len(test_set)  # intermediate epochs: kdlib's subset
    curve = data.stratified_subset(data.split.dataset_labels(test_set), n_curve).tolist()
    torch.manual_seed(0)
    student = models.create(spec.student, info.num_classes, preset=spec.preset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=spec.batch_size, shuffle=True, drop_last=True)
    opt = torch.optim.AdamW(student.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    mixer = train._mixer(info.num_classes, 0.0)  # timm's Mixup, as kdlib's loop
    temperature = spec.temperature
    teacher.eval()
    totals: dict[str, float] = {}
    done, epoch = 0, 0
    while done < steps:
        student.train()
        for images, labels in _Epochs(loader, totals):
            x, _ = mixer(images.float().div_(255), labels)
            with torch.no_grad():
                t_logits = teacher(x)
            logits = student(x)
            loss = F.kl_div(F.log_softmax(logits / temperature, 1), F.log_softmax(t_logits / temperature, 1),
                            log_target=True, reduction="batchmean") * temperature ** 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if done == steps:
                break
        epoch += 1
        if done == steps or epoch % eval_every == 0:
            evaluated = _clock()
            student.eval()
            correct = 0
            scored = test_set if done == steps else torch.utils.data.Subset(test_set, curve)
            with torch.no_grad():
                for images, labels in torch.utils.data.DataLoader(scored, batch_size=512):
                    correct += (student(images.float().div_(255)).argmax(1) == labels).sum().item()
            totals["test_acc"] = 100.0 * correct / len(scored)
            _add(totals, "evaluation_s", _clock() - evaluated)
    totals["wall_s"] = _clock() - start
    return totals


# ----------------------------------------------------------------------------- the benchmark

def run(args) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    global _clock
    _clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = models.create(args.teacher, data.dataset_info(args.dataset).num_classes)
    steps = args.epochs * (len(data.build_dataset(args.dataset, "train")) // args.batch_size)
    kmax = max(args.ks)
    print(f"{kmax} separate runs, then one shared pass per K in {args.ks}; {steps} steps per run, "
          f"{args.threads} thread(s), {args.clock} time", flush=True)

    # (a) max(K) separate runs; (b) one shared pass per K. The bare loop runs between separate
    # runs; repeats interleave everything, so that a busy spell of the machine hits all alike.
    # Every figure is a median: the separate runs are the same work max(K) x repeat times.
    warm = argparse.Namespace(**{**vars(args), "epochs": 1})
    _distill(_specs(1, warm), teacher)  # first-call costs (allocator, kernels, caches) are not the loop's
    separate: list[dict[str, float]] = []
    shared: dict[int, list[dict[str, float]]] = {k: [] for k in args.ks}
    bare: list[dict[str, float]] = []
    for _ in range(args.repeat):
        for i, spec in enumerate(_specs(kmax, args)):
            separate.append(_distill([spec], teacher))
            if i % 3 == 0:
                bare.append(bare_loop(args, teacher, steps))
        for k in args.ks:
            shared[k].append(_distill(_specs(k, args), teacher))
            print(f"K = {k}: shared pass {shared[k][-1]['train_steps_s']:.1f} s", flush=True)

    def median(measured: list[dict[str, float]]) -> dict[str, float]:
        return {key: statistics.median(m.get(key, 0.0) for m in measured) for key in measured[0]}

    comp = components(separate, steps)
    single, bare_m = median(separate), median(bare)
    bare_s = bare_m["train_steps_s"]
    records = []
    for k in args.ks:
        sep_s, sep_wall = k * single["train_steps_s"], k * single["wall_s"]
        pass_ = median(shared[k])
        shared_s, shared_wall, ideal = pass_["train_steps_s"], pass_["wall_s"], ideal_speedup(k, comp)
        records.append({
            "k": k, "steps": steps, "separate_s": sep_s, "shared_s": shared_s,
            "measured_speedup": sep_s / shared_s, "ideal_speedup": ideal, "efficiency": sep_s / shared_s / ideal,
            "separate_wall_s": sep_wall, "shared_wall_s": shared_wall, "wall_speedup": sep_wall / shared_wall,
            **comp, "bare_loop_s": bare_m["wall_s"], "bare_loop_ratio": bare_m["wall_s"] / single["wall_s"],
            "bare_loop_ratio_train_only": bare_s / single["train_steps_s"], "threads": args.threads,
            "clock": args.clock})
    profile = {"steps": steps, "clock": args.clock, "threads": args.threads, "components_per_batch": comp,
               "separate_runs_s": [r["train_steps_s"] for r in separate], "single_run_median": single,
               "bare_loop_median": bare_m}
    return records, profile


def table(records: list[dict[str, Any]], profile: dict[str, Any]) -> str:
    c = profile["components_per_batch"]
    lines = [f"per batch: teacher forward T = {1e3 * c['teacher_s']:.1f} ms, student step S = "
             f"{1e3 * c['student_s']:.1f} ms, data D = {1e3 * c['data_s']:.1f} ms ({profile['clock']} time)",
             f"{'K':>3} {'separate s':>11} {'shared s':>9} {'measured':>9} {'ideal':>7} {'of ideal':>9} "
             f"{'wall s (separate/shared)':>25}"]
    for r in records:
        lines.append(f"{r['k']:>3} {r['separate_s']:>11.2f} {r['shared_s']:>9.2f} {r['measured_speedup']:>8.2f}x "
                     f"{r['ideal_speedup']:>6.2f}x {100 * r['efficiency']:>8.0f}% "
                     f"{r['separate_wall_s']:>12.1f} / {r['shared_wall_s']:<10.1f}")
    s, b = profile["single_run_median"], profile["bare_loop_median"]
    parts = ", ".join(f"{key[:-2]} {s[key]:.2f}" for key in
                      ("train_steps_s", "loader_s", "mixup_s", "teacher_s", "clipping_s", "evaluation_s", "checkpoint_s")
                      if key in s)
    lines += [f"single run ({profile['steps']} steps, s): all {s['wall_s']:.2f} = {parts} (loader/mixup/teacher/"
              f"clipping are inside the steps)",
              f"bare loop ({profile['steps']} steps, s): all {b['wall_s']:.2f} = steps {b['train_steps_s']:.2f}, "
              f"loader {b['loader_s']:.2f}, evaluation {b['evaluation_s']:.2f}",
              f"bare loop / kdlib: {records[0]['bare_loop_ratio']:.2f} for the whole run, "
              f"{records[0]['bare_loop_ratio_train_only']:.2f} for the training steps (1.00 = as fast)"]
    return "\n".join(lines)


def summarize(records: list[dict[str, Any]], args, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The issue-12 figures: shared-pass efficiency, notebook 02's grid both ways, overheads, compiling.

    ``save`` gets the summary after each part, so a long grid is not lost to a later failure."""
    import os

    from kdlib import bench_grid

    load = os.getloadavg()
    k8 = max(records, key=lambda r: r["k"])
    per_step = k8["shared_wall_s"] / (k8["k"] * k8["steps"])
    bare = bench_grid.bare_step_s(args.batch_size, clock=_clock)
    out: dict[str, Any] = {"k8_shared_efficiency": k8["efficiency"], "k": k8["k"],
                           "student_step_vs_bare": per_step / bare, "student_step_s": per_step, "bare_step_s": bare}
    if args.vmap:
        out["vmap"] = bench_grid.vmap_students(k8["k"], args.batch_size, clock=_clock)
    if args.grid_epochs:
        g = bench_grid.grid02(args.grid_epochs, lambda totals: _instrument(totals))
        key = "cpu_s" if args.clock == "cpu" else "wall_s"
        new, today = g["new"], g["today"]
        out.update({"grid02_speedup": today["wall_s"] / new["wall_s"], "grid02_speedup_cpu": today["cpu_s"] / new["cpu_s"],
                    "grid02_teacher_forwards_ratio": new["teacher_forwards"] / today["teacher_forwards"],
                    "epoch_overhead_fraction": 1 - new["train_steps_s"] / new[key],
                    "epoch_evaluation_fraction": new.get("evaluation_s", 0.0) / new[key],
                    "epoch_checkpoint_fraction": new.get("checkpoint_s", 0.0) / new[key],
                    "today_overhead_fraction": 1 - today["train_steps_s"] / today[key], "grid02": g})
        save(out)
    if args.compile:
        teacher = models.create(args.teacher, data.dataset_info(args.dataset).num_classes)
        c = bench_grid.compile_speedup(_specs(1, args), teacher)
        out.update({"compile_speedup": c["compile_speedup"], "compile": c})
    out.update({"threads": args.threads, "clock": args.clock, "grid_epochs": args.grid_epochs,
                "load_before": list(load), "load_after": list(os.getloadavg())})
    return out


SUMMARY_KEYS = ("k8_shared_efficiency", "grid02_speedup", "grid02_teacher_forwards_ratio", "epoch_overhead_fraction",
                "student_step_vs_bare", "compile_speedup")


def summary_table(summary: dict[str, Any]) -> str:
    rows = ["| key | value |", "|---|---|"]
    rows += [f"| `{k}` | {summary[k]:.3f} |" if isinstance(summary.get(k), float) else f"| `{k}` | not measured |"
             for k in SUMMARY_KEYS]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m kdlib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8], help="sweep sizes K")
    mini_epochs = specs.preset("mini").distill_epochs["fmnist-fine"]
    parser.add_argument("--epochs", type=int, default=mini_epochs, help="epochs per run of the K sweep (a mini run's)")
    parser.add_argument("--batch-size", type=int, default=specs.preset("mini").batch_size)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine may be shared)")
    parser.add_argument("--repeat", type=int, default=1, help="time everything this many times (medians)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (steady on a shared machine; use with --threads 1); "
                             "wall: elapsed time")
    parser.add_argument("--dataset", default="fmnist-fine")
    parser.add_argument("--teacher", default="resnet50")
    parser.add_argument("--student", default="resnet18")
    parser.add_argument("--grid-epochs", type=int, default=mini_epochs, help="notebook 02's longest duration (0: no grid)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="measure torch.compile (compile time included; minutes on a CPU)")
    parser.add_argument("--vmap", action=argparse.BooleanOptionalAction, default=True, help="K vmapped students")
    parser.add_argument("--summary", action=argparse.BooleanOptionalAction, default=True,
                        help="write summary.json (the grid, the bare step, compiling)")
    parser.add_argument("--out", type=Path, default=None, help="folder of sweep.json (default outputs/bench)")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "threads", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if any(k < 1 for k in args.ks):
        parser.error(f"--ks {args.ks}: every K must be at least 1")
    if args.grid_epochs < 0:
        parser.error("--grid-epochs must be 0 (skip) or more")
    args.ks = sorted(set(args.ks))
    old_threads = torch.get_num_threads()
    try:
        records, profile = run(args)
        out = args.out or paths.outputs_dir() / "bench"
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "sweep.json", records)
        atomic_write_json(out / "profile.json", profile)
        print(table(records, profile), flush=True)
        summary = summarize(records, args, lambda part: atomic_write_json(out / "summary.json", part)) \
            if args.summary else None
    finally:
        torch.set_num_threads(old_threads)
    if summary is not None:
        atomic_write_json(out / "summary.json", summary)
        print(summary_table(summary))
    print(f"wrote {out / 'sweep.json'}")
    return records


if __name__ == "__main__":
    main()
