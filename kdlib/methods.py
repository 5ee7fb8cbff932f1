"""The distillation methods a spec may name, and each one's hyperparameters.

A vocabulary below the training code: specs and notebook parameters check a method and
its arguments here without importing ``kdlib.losses``, which implements one loss class per
name (a test keeps the two the same). Values are checked when the loss is built
(``losses.for_spec``; ``runs.ensure`` builds every run's loss before anything trains).
"""
from __future__ import annotations

from typing import Any, Iterable

# name -> the loss's hyperparameters, in the order of its constructor
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "ctkd": ("temperature", "t_start", "t_end", "cosine_epochs", "temperature_lr", "temperature_momentum",
             "temperature_weight_decay"),
    "dist": ("temperature", "beta", "gamma"),
    "dkd": ("temperature", "alpha", "beta", "warmup"),
    "eakd": ("temperature", "entropy_temperature"),
    "kd": ("temperature", "targets", "k"),
    "lskd": ("temperature",),
    "mlkd": ("temperature", "other_temperatures"),
    "rld": ("temperature", "alpha", "beta", "alpha_temperature", "warmup"),
}


def names() -> list[str]:
    """The method names, sorted."""
    return sorted(HYPERPARAMETERS)


def check_method(method: Any, hyperparameters: Iterable[str] = ()) -> None:
    """A ValueError unless ``method`` is a known method and every hyperparameter name is one of its own."""
    if method not in HYPERPARAMETERS:
        raise ValueError(f"unknown distillation loss {method!r}; valid names are {', '.join(names())}")
    valid = HYPERPARAMETERS[method]
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {method!r}; "
                         f"valid hyperparameters of {method!r} are {', '.join(valid)}")
