"""The teachers a temperature explorer shows: logits given, or a model run once over its data.

Every way in (a tensor, ``(logits, labels)``, a dict of teachers, a model with ``data=``) is
checked here, with errors that say what was given and what to pass instead.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from kdlib import checks


def _as_logits(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what}: expected a logits tensor [N, C], got {type(x).__name__}")
    return checks.check_logits(x.detach().cpu(), what=what, finite=True, hint="; pass the teacher's outputs for a set "
                               "of samples, e.g. kdlib.train.predict(model, dataset)[0]")


class Teacher:
    """One teacher's logits on one set, computed once (lazily for models)."""

    def __init__(self, name: str, source: Any, data: Any, class_names: Sequence[str] | None):
        self.name, self._source, self._data, self._class_names = name, source, data, class_names
        self._logits: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.class_names: list[str] = []
        if not isinstance(source, torch.nn.Module):
            self._set(source)

    def _set(self, source: Any) -> None:
        labels = None
        if isinstance(source, (tuple, list)):
            if len(source) != 2:
                raise ValueError(f"teacher {self.name!r}: expected logits or (logits, labels), got a "
                                 f"{type(source).__name__} of length {len(source)}")
            source, labels = source
        logits = _as_logits(source, f"teacher {self.name!r}")
        if labels is not None:
            labels = torch.as_tensor(labels).detach().cpu().long()
            if labels.shape != logits.shape[:1]:
                raise ValueError(f"teacher {self.name!r}: labels shape {tuple(labels.shape)} does not match "
                                 f"logits {tuple(logits.shape)}")
        names = self._class_names
        if names is None and self._data is not None:
            names = getattr(self._data, "classes", None)
        names = [str(c) for c in names] if names is not None else [f"class {i}" for i in range(logits.shape[1])]
        if len(names) != logits.shape[1]:
            raise ValueError(f"teacher {self.name!r}: {len(names)} class names for {logits.shape[1]} classes; "
                             "pass class_names with one name per logit column")
        if len(set(names)) != len(names):
            raise ValueError(f"teacher {self.name!r}: class names must be unique, got {names}")
        self._logits, self.labels, self.class_names = logits, labels, names

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:  # a model: run it once over the data, then keep the logits
            from kdlib import train

            logits, labels = train.predict(self._source, self._data)
            self._set((logits, labels))
        return self._logits


def build_teachers(teacher_or_logits: Any, data: Any, class_names: Any) -> dict[str, Teacher]:
    def names_for(name: str):
        if isinstance(class_names, Mapping):
            return class_names.get(name)
        return class_names

    if isinstance(teacher_or_logits, Mapping):
        if not teacher_or_logits:
            raise ValueError("no teachers given: pass a logits tensor, a model with data=, or a non-empty "
                             "dict name -> logits")
        items = list(teacher_or_logits.items())
    else:
        items = [("teacher", teacher_or_logits)]
    if isinstance(class_names, Mapping) and set(class_names) - {str(k) for k, _ in items}:
        raise ValueError(f"class_names names unknown teachers {sorted(set(class_names) - {str(k) for k, _ in items})}; "
                         f"teachers are {[str(k) for k, _ in items]}")
    out = {}
    for name, source in items:
        name = str(name)
        is_model = isinstance(source, torch.nn.Module)
        if is_model and data is None:
            raise ValueError(f"teacher {name!r} is a model: pass data= (a dataset yielding (uint8 image, label)) "
                             "so its logits can be computed once")
        if not is_model and not isinstance(source, (torch.Tensor, np.ndarray, tuple, list)):
            raise ValueError(f"teacher {name!r}: expected a logits tensor [N, C], (logits, labels), or a torch "
                             f"model with data=; got {type(source).__name__}")
        out[name] = Teacher(name, source, data, names_for(name))
    if data is not None and not any(isinstance(s, torch.nn.Module) for _, s in items):
        raise ValueError("data= is only used to run a model; logits were given, so drop data= "
                         "(or pass (logits, labels) to mark the true classes)")
    return out


def check_t(value: Any, what: str = "temperature") -> float:
    """A temperature a control may take (numpy scalars too): ``checks.check_temperature``."""
    return checks.check_temperature(value, what, hint=" (the study uses 1 to 40)", numpy=True)
