"""Which device a run trains on, chosen loudly.

CUDA when torch can use it, else CPU; but when CUDA was *asked for* (``KDLIB_DEVICE=cuda``
or a device argument, or a Slurm job that was given GPUs) and torch cannot use it, fail
with the reason instead of training on CPU for hours. The usual reason on a cluster is a
torch wheel built for a newer CUDA than the node's driver supports.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import torch

# Slurm sets these in a job that was allocated GPUs (--gpus, --gpus-per-node, --gres=gpu:N).
SLURM_GPU_VARIABLES = ("SLURM_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_GPUS_PER_TASK",
                       "SLURM_JOB_GPUS", "SLURM_STEP_GPUS")


class DeviceError(RuntimeError):
    """CUDA was asked for but torch cannot use it (the message names why and the fix)."""


def slurm_gpu_request(env: Mapping[str, str] | None = None) -> str | None:
    """Why this process is a Slurm job that asked for GPUs (``"SLURM_GPUS_ON_NODE=1"``), or None."""
    env = os.environ if env is None else env
    if not env.get("SLURM_JOB_ID"):
        return None
    for name in SLURM_GPU_VARIABLES:
        value = env.get(name, "").strip()
        if value and value not in ("0", "(null)"):
            return f"{name}={value}"
    visible = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("-1", "NoDevFiles"):  # Slurm's gres plugin sets it for a GPU job
        return f"CUDA_VISIBLE_DEVICES={visible} in Slurm job {env['SLURM_JOB_ID']}"
    return None


def driver_version(text: str | None = None) -> str | None:
    """The NVIDIA kernel driver's version from /proc/driver/nvidia/version (or ``text``); None without one."""
    if text is None:
        try:
            text = Path("/proc/driver/nvidia/version").read_text()
        except OSError:
            return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else text.splitlines()[0].strip()


def mismatch(reason: str) -> str:
    """The message for CUDA asked for (``reason``) but unusable: the build, the driver, the fix."""
    built = torch.version.cuda
    driver = driver_version()
    build = (f"torch {torch.__version__} is built for CUDA {built}" if built
             else f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None)")
    node = (f"the NVIDIA driver on this node is {driver}" if driver
            else "this node has no NVIDIA driver (/proc/driver/nvidia/version is missing)")
    return (f"CUDA was asked for ({reason}) but torch.cuda.is_available() is False: {build}, and {node}. "
            "A CUDA build needs a driver at least as new as its CUDA version (nvidia-smi shows the newest CUDA "
            "the driver supports): install a torch wheel for that CUDA or an older one, "
            "pip install torch==<version> --index-url https://download.pytorch.org/whl/cu<XY> (see "
            "environment.yml), or set KDLIB_DEVICE=cpu to train on CPU on purpose.")


def pick(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: the argument, else ``KDLIB_DEVICE``, else CUDA when usable, else CPU.

    Raises DeviceError when CUDA is asked for (argument, ``KDLIB_DEVICE`` or a Slurm GPU
    job) and torch cannot use it.
    """
    asked = device or os.environ.get("KDLIB_DEVICE") or None
    if asked is not None:
        chosen = torch.device(asked)
        if chosen.type == "cuda" and not torch.cuda.is_available():
            source = "device argument" if device else "KDLIB_DEVICE"
            raise DeviceError(mismatch(f"{source}={asked}"))
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    request = slurm_gpu_request()
    if request is not None:
        raise DeviceError(mismatch(f"this Slurm job was given GPUs: {request}"))
    return torch.device("cpu")
