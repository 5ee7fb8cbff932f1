"""Teacher logits on a data stream, computed once and read by every later pass on it.

In kdlib a training batch depends only on (dataset, seed, epoch, batch size, augmentation),
so a teacher's logits on it are an artifact like its weights. A pass stores them, one file
per epoch, under the teacher's run folder::

    <teacher run>/logits/<stream tag>/epoch-<e>.bin

Each file is a JSON header line (shape, dtype, sha256 of the raw array) then the array,
zlib-compressed; it is written atomically and read only if it hashes right (a bad file
is set aside and the epoch recomputed). The array is kept in the dtype the teacher
produced (float32 on CPU, bfloat16 under bf16 autocast), which the loss turns into
float32 exactly as it does a fresh forward: runs are bit-identical with or without the
cache. The stream tag holds everything the numbers depend on, the numerics included
(device, precision, compiled or not, memory format, torch version and CPU threads).

``KDLIB_LOGIT_CACHE=0`` (or ``logit_cache=False`` to ``runs.ensure``) turns it off.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from pathlib import Path

import torch

from kdlib import data, numerics
from kdlib.io import atomic_write_bytes
from kdlib.store import RunDir

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def enabled(flag: bool | None = None) -> bool:
    """The switch: an explicit argument wins, else ``KDLIB_LOGIT_CACHE`` (default on)."""
    if flag is not None:
        return bool(flag)
    value = os.environ.get("KDLIB_LOGIT_CACHE", "1").strip().lower()
    if value not in ("0", "1", "false", "true", "off", "on", "no", "yes", ""):
        raise ValueError(f"KDLIB_LOGIT_CACHE={value!r}; use 1 (cache teacher logits, the default) or 0 (off)")
    return value not in ("0", "false", "off", "no")


def stream_tag(spec, numerics: str) -> str:
    """A folder name for a stream: its data fields and the numerics of the teacher's forward."""
    parts = ("stream", spec.dataset, spec.preset, spec.seed, spec.batch_size, getattr(spec, "mixup", True), numerics)
    if getattr(spec, "val_fraction", 0.0):  # another stream: the held-out images are not in it
        parts += ("val_fraction", spec.val_fraction)
    return f"bs{spec.batch_size}-seed{spec.seed}-{data._mix(*parts):016x}"


class LogitCache:
    """The cached epochs of one (teacher, stream); ``folder`` None means off (every call a miss)."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def _file(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch}.bin"

    def load(self, epoch: int, steps: int) -> torch.Tensor | None:
        """The [steps, batch, classes] logits of ``epoch``, or None (missing, wrong size or corrupt)."""
        if self.folder is None:
            return None
        file = self._file(epoch)
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            head, _, body = raw.partition(b"\n")
            meta = json.loads(head)
            payload = zlib.decompress(body)
            if hashlib.sha256(payload).hexdigest() != meta["sha256"]:
                raise ValueError("sha256 mismatch")
            flat = torch.frombuffer(bytearray(payload), dtype=_DTYPES[meta["dtype"]])
            logits = flat.reshape(meta["shape"])
        except Exception as e:  # noqa: BLE001 - anything unreadable is distrusted and recomputed
            os.replace(file, file.with_name(f"{file.name}.corrupt-{time.time_ns()}"))
            print(f"[kdlib] teacher logits {file} unusable ({e}); recomputing that epoch", flush=True)
            return None
        return logits if logits.shape[0] == steps else None

    def save(self, epoch: int, logits: torch.Tensor) -> int:
        """Store one epoch's [steps, batch, classes] logits; returns the bytes written (0: off)."""
        if self.folder is None:
            return 0
        logits = logits.detach().cpu().contiguous()
        name = str(logits.dtype).removeprefix("torch.")
        if name not in _DTYPES:
            raise ValueError(f"teacher logits of dtype {logits.dtype}; the cache stores {sorted(_DTYPES)}")
        payload = logits.view(torch.uint8).numpy().tobytes() if name == "bfloat16" else logits.numpy().tobytes()
        meta = {"shape": list(logits.shape), "dtype": name, "sha256": hashlib.sha256(payload).hexdigest()}
        blob = json.dumps(meta).encode() + b"\n" + zlib.compress(payload, 1)
        atomic_write_bytes(self._file(epoch), blob)
        return len(blob)

    def nbytes(self) -> int:
        """Disk used by this stream's cached epochs."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.folder.glob("epoch-*.bin"))


def for_teacher(spec, root, device: torch.device, compiled: bool, choice: bool | None = None) -> LogitCache:
    """The cache of ``spec``'s teacher on ``spec``'s stream (a folder-less, always-missing one when off)."""
    if not enabled(choice):
        return LogitCache(None)
    return LogitCache(RunDir(spec.teacher, root).path / "logits" / stream_tag(spec, numerics.key(device, compiled)))
