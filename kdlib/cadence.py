"""When a pass writes its checkpoints: on a cost budget, so tiny epochs do not spend their time on fsync'ed writes.

``kdlib.train`` calls these at each epoch end (and re-exports them: ``train.checkpoint_budget``).
"""
from __future__ import annotations

import os

# A checkpoint is written when its last write took at most this share of the training time since: each member
# is credited with its share of the pass's time (the epoch's seconds / members), so that the writes of a pass's
# K members together stay within this share of its time (before: each was credited all of it, and a 15-member
# mini pass wrote every member every epoch).
CHECKPOINT_BUDGET = 0.05


def checkpoint_budget() -> float:
    """``KDLIB_CHECKPOINT_BUDGET`` (``inf``: every epoch; ``0``: the first epoch's, then none before the end) or the
    default: a share of training time, so tiny epochs do not spend their time on fsync'ed writes."""
    text = os.environ.get("KDLIB_CHECKPOINT_BUDGET", "").strip()
    if not text:
        return CHECKPOINT_BUDGET
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise ValueError(f"KDLIB_CHECKPOINT_BUDGET={text!r}: must be a number >= 0 (a share of training time, "
                         f"e.g. 0.05), or inf for a checkpoint every epoch")
    return value


def checkpoint_due(save_cost: float, since_save: float, budget: float) -> bool:
    """Write now? When the last write cost at most ``budget`` x the training time since it."""
    return save_cost <= budget * since_save if budget != float("inf") else True
