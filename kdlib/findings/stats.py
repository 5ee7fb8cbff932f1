"""Paired-by-seed effects, their 95 % t intervals and the verdicts built on them.

A claim's effect is computed once per seed (the same seed gives the same teacher and
data stream, so per-seed differences cancel what the seeds share) and the interval is
Student's t over those per-seed values: mean ± t(0.975, n − 1) · sd / √n.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from scipy import special

REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "reproduced", "contradicted", "inconclusive", "not run"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
LEVEL = 0.95


@dataclass(frozen=True)
class Part:
    """One tested number of a claim: per-seed values, the value it is tested against and the side the claim expects.

    ``expect`` is ``">"`` (the claim holds when the effect is above ``null``) or ``"<"``.
    """

    name: str
    values: pd.Series            # index: seed, value: the effect at that seed
    expect: str = ">"
    null: float = 0.0
    note: str = ""

    def __post_init__(self) -> None:
        if self.expect not in (">", "<"):
            raise ValueError(f"Part {self.name!r}: expect={self.expect!r}; use '>' or '<' (the claimed side of null)")


@dataclass(frozen=True)
class Outcome:
    """What a claim's function found: its parts (the first is the headline), or why it could not run."""

    parts: tuple[Part, ...] = ()
    missing: str = ""            # non-empty: the data the claim needs is absent
    detail: str = ""
    extra: dict = field(default_factory=dict)


def interval(values) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of a 95 % t interval over the finite values; low/high NaN for fewer than 2."""
    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(x) / n
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = float(special.stdtrit(n - 1, 0.5 + LEVEL / 2)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


def part_verdict(part: Part) -> tuple[str, float, float, float, int]:
    """Verdict of one part: reproduced when the whole interval lies on the claimed side of ``null``."""
    mean, low, high, n = interval(part.values)
    if n == 0:
        return NOT_RUN, mean, low, high, n
    if n < 2 or not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE, mean, low, high, n
    above, below = low > part.null, high < part.null
    if (above and part.expect == ">") or (below and part.expect == "<"):
        return REPRODUCED, mean, low, high, n
    if above or below:
        return CONTRADICTED, mean, low, high, n
    return INCONCLUSIVE, mean, low, high, n


def combine(verdicts: list[str]) -> str:
    """A claim is reproduced when every part is, contradicted when any part is, inconclusive otherwise."""
    if not verdicts or all(v == NOT_RUN for v in verdicts):
        return NOT_RUN
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE
