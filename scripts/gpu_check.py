"""Throughput and peak memory of the paper preset's models on one GPU, as one table.

Run through ``scripts/gpu_check.sh`` (at most 5 minutes). Models are the paper preset's
real architectures with random weights (speed does not depend on what they know), on
synthetic 224 px batches under ``kdlib.train``'s numerics: bf16 autocast (fp16 with a
gradient scaler on GPUs without bf16) and channels_last. Rows: each teacher's forward and
each student's training step, eager and ``torch.compile``d (compile time reported apart),
then a K = 8 shared pass through ``train.distill_pass`` itself on a synthetic ImageFolder.
``--device cpu --tiny`` runs the same code path on the mini models at 32 px (a test).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from kdlib import losses, models, numerics, specs, store, train
from kdlib.members import make_optimizer, prepare_model, scaler as make_scaler, to_input

PAPER = {"teachers": ("resnet50", "vit_s"), "students": ("resnet18", "mnv4")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _time(fn, steps: int, device: torch.device) -> tuple[float, float]:
    """(seconds of the first call: compile or warm-up, median seconds of the next ``steps``)."""
    start = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return first, sorted(times)[len(times) // 2]


def model_rows(args, device: torch.device, preset: str, size: int, chans: int) -> list[dict]:
    rows = []
    x = to_input(torch.randint(0, 256, (args.batch_size, chans, size, size), dtype=torch.uint8), device)
    spec = specs.Supervised(arch=PAPER["students"][0] if preset == "paper" else "resnet18", dataset="pets" if preset ==
                            "paper" else "fmnist-fine", epochs=1, preset=preset)
    for role, names in (("teacher forward", PAPER["teachers"]), ("student step", PAPER["students"])):
        for name in names:
            for compiled in (False, True) if args.compile else (False,):
                torch.manual_seed(0)
                model = prepare_model(models.create(name, args.classes, preset=preset), device)
                forward = torch.compile(model) if compiled else model
                _reset_peak(device)
                if role == "teacher forward":
                    model.eval()

                    def fn():
                        with torch.no_grad(), numerics.autocast(device):
                            forward(x)
                else:
                    opt, _ = make_optimizer(spec, model, [], 100)
                    scaler = make_scaler(device)
                    loss_fn = losses.build("kd", temperature=4.0)
                    target = torch.randn(args.batch_size, args.classes, device=device)

                    def fn():
                        with numerics.autocast(device):
                            out = forward(x)
                        loss = loss_fn(out.float(), target, target.argmax(1))
                        opt.zero_grad(set_to_none=True)
                        (scaler.scale(loss) if scaler else loss).backward()
                        if scaler:
                            scaler.unscale_(opt)
                        train.clip_per_tensor(list(model.parameters()), 1.0)
                        scaler.step(opt) if scaler else opt.step()
                        if scaler:
                            scaler.update()
                first, step = _time(fn, args.steps, device)
                rows.append({"what": f"{name} {role}", "compiled": compiled, "first_s": first, "step_ms": 1e3 * step,
                             "img_per_s": args.batch_size / step, "peak_mb": _peak_mb(device)})

    return rows


def _image_folder(root: Path, classes: int, per_class: int, size: int) -> Path:
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", per_class), ("test", 2)):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def shared_pass_row(args, device: torch.device, preset: str, tmp: Path) -> dict:
    """A K-student pass of ``train.distill_pass`` (one epoch), the real loop end to end."""
    if preset == "paper":
        dataset, bs = f"imagefolder:{_image_folder(tmp / 'data', 4, args.batch_size // 2, 256)}", args.batch_size
    else:
        dataset, bs = "fmnist-fine", 128  # the mini world's own batch: 7 steps
    teacher_spec = specs.Supervised(arch="resnet50", dataset=dataset, epochs=1, preset=preset, batch_size=bs)
    group = [specs.distill(teacher_spec, PAPER["students"][0], temperature=t, epochs=1, batch_size=bs)
             for t in (1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 40.0)[:args.k]]
    info_classes = 4 if preset == "paper" else 10
    teacher = models.create("resnet50", info_classes, preset=preset)
    rds = [store.RunDir(s, tmp / "store") for s in group]
    _reset_peak(device)
    start = time.perf_counter()
    train.distill_pass(group, rds, teacher, student_states=[None] * len(group), device=device, progress=False,
                       use_cache=False)
    _sync(device)
    seconds = time.perf_counter() - start
    steps = train.steps_per_epoch(group[0])
    return {"what": f"K={args.k} shared pass (resnet18 from resnet50)", "compiled": False, "first_s": seconds,
            "step_ms": 1e3 * seconds / steps, "img_per_s": args.k * bs * steps / seconds,
            "peak_mb": _peak_mb(device)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="mini models at 32 px (a CPU test of this script)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (8 with --tiny)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default 10, 2 with --tiny)")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: --device cuda but torch sees no GPU (torch.cuda.is_available() is False)")
    preset, size, chans = ("mini", 32, 1) if args.tiny else ("paper", 224, 3)
    args.batch_size = args.batch_size or (8 if args.tiny else 64)
    args.steps = args.steps or (2 if args.tiny else 10)
    args.classes = 10 if args.tiny else 100
    amp = numerics.amp_dtype(device)
    print(f"gpu_check on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}: {preset} models, "
          f"{size} px, batch {args.batch_size}, autocast {amp}, channels_last {numerics.channels_last(device)}",
          flush=True)
    rows = model_rows(args, device, preset, size, chans)
    with tempfile.TemporaryDirectory(prefix="kdlib-gpu-check-") as tmp:
        rows.append(shared_pass_row(args, device, preset, Path(tmp)))
    print(f"{'what':<44} {'compiled':>8} {'first s':>8} {'ms/step':>8} {'img/s':>9} {'peak MB':>8}")
    for r in rows:
        peak = f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "-"
        print(f"{r['what']:<44} {str(r['compiled']):>8} {r['first_s']:>8.1f} {r['step_ms']:>8.1f} "
              f"{r['img_per_s']:>9.0f} {peak:>8}")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
