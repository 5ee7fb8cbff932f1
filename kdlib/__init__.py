"""kdlib: which temperature for knowledge distillation, and why.

The library behind the study notebooks (Frank & Davis, "A Unified Revisit of Temperature
in Classification-Based Knowledge Distillation"). Data flows one way::

    specs -> run_id -> runs.ensure -> executors -> jobs -> train -> store -> tables -> analysis -> plots

The README's library table lists every module by layer. Importing kdlib imports nothing
else: ``kdlib.advise`` loads the advisor when first used.
"""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``kdlib.advise(...)`` without importing the advisor (and its deps) at ``import kdlib``.
    if name == "advise":
        from kdlib.advisor import advise

        return advise
    raise AttributeError(f"module 'kdlib' has no attribute {name!r}")
