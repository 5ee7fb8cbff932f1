"""What a run's last bits depend on: device, mixed precision, compilation and memory format.

Every switch that trades bit-equality with earlier runs for speed lives here, on by default
only where it is measured faster end to end, and is recorded in each run's result (``compiled``,
``channels_last``, ``amp``) and in the key of the teacher-logit cache.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def flag(name: str, default: bool) -> bool:
    """A boolean environment switch: 1/0 (or true/false, on/off), unset or ``auto`` = ``default``."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return default
    if value not in _ON + _OFF:
        raise ValueError(f"{name}={value!r}; use 1 (on), 0 (off) or auto (kdlib's default)")
    return value in _ON


def compile_enabled(device: torch.device, choice: bool | None = None) -> bool:
    """torch.compile teacher and students? Off unless asked (argument, or ``KDLIB_COMPILE=1``).

    Measured on the 2-core CPU (``python -m kdlib.bench``): compiling a mini student costs
    minutes and its steps are no faster, so it never pays there; on a GPU run
    ``scripts/gpu_check.sh`` first.
    """
    return bool(choice) if choice is not None else flag("KDLIB_COMPILE", False)


def channels_last(device: torch.device) -> bool:
    """channels_last memory format for models and inputs: on by default on CUDA and CPU, ``KDLIB_CHANNELS_LAST=0``
    turns it off. Measured end to end on the 2-core CPU (a mini pass of 3 epochs, one thread, CPU time):
    1.18x faster at K = 1, 1.42x at K = 8. It changes the last bits relative to results computed in the
    default (contiguous) format before; each result records it (``channels_last``)."""
    return flag("KDLIB_CHANNELS_LAST", device.type in ("cuda", "cpu"))


def member_threads(device: torch.device) -> int:
    """How many students of a distillation pass take their step at once, each op on one core
    (``KDLIB_MEMBER_THREADS``: a number, or ``auto``). Auto: one per CPU thread torch uses, 1 on CUDA.

    A mini student's ops are too small to split over cores (a batch-32 step of the mini resnet18
    is 24 ms on one thread and 27 ms on two), so on a CPU the cores serve different students
    instead (epochs of a mini pass 1.2-1.4x faster on the 2-core CPU). The step's thread count does not
    depend on how many students share the pass, so a member still ends as if trained alone.
    Recorded in each result (``member_threads``): it changes the last bits.
    """
    text = os.environ.get("KDLIB_MEMBER_THREADS", "").strip().lower()
    if text in ("", "auto"):
        return torch.get_num_threads() if device.type == "cpu" else 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"KDLIB_MEMBER_THREADS={text!r}: a whole number >= 1 (1: one student at a time), or auto")
    return int(text) if device.type == "cpu" else 1


def check_switches() -> None:
    """Read every switch of this module once, so a misspelled value fails before anything trains."""
    cpu = torch.device("cpu")
    compile_enabled(cpu), channels_last(cpu), member_threads(cpu)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that have it, fp16 (with a gradient scaler) on those that do not."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """Mixed precision on GPUs (``amp_dtype``); full precision elsewhere (and for the losses)."""
    dtype = amp_dtype(device)
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def record(device: torch.device, compiled: bool, threads: int | None = None) -> dict[str, Any]:
    """The flat fields a result records (compiled and eager numbers differ in the last bits);
    ``threads``: the students stepped at once in its pass (``member_threads``), when it was distilled."""
    dtype = amp_dtype(device)
    held = {"member_threads": threads} if threads is not None else {}
    return {"compiled": bool(compiled), "channels_last": channels_last(device),
            "amp": str(dtype).removeprefix("torch.") if dtype else "float32", **held}


def key(device: torch.device, compiled: bool) -> str:
    """Everything a forward's bits depend on, as text: the record plus torch version and CPU threads."""
    threads = torch.get_num_threads() if device.type == "cpu" else None
    return repr(sorted({**record(device, compiled), "device": device.type, "torch": torch.__version__,
                        "threads": threads}.items()))
