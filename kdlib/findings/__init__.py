"""The findings scorecard: every claim of STUDY.md's numbered list (F1–F16) as a row computed from results.

A row holds the claim and its paper section, the effect as a number with a 95 % t
interval over seeds paired by seed (the same seed gives the same teacher and data
stream), a verdict and the scale (preset) and number of seeds it rests on:

- *reproduced*: the whole interval lies on the side the paper claims;
- *contradicted*: the whole interval lies on the other side;
- *inconclusive*: the interval holds the null value, or fewer than 2 seeds ran;
- *not run*: the store lacks the runs the claim needs.

A claim with several tested numbers (parts) is reproduced when all are, contradicted
when any is. Each claim's function documents its effect exactly. ``python -m
kdlib.findings`` loads the store and writes ``outputs/findings.md`` and ``.html``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pandas as pd

from kdlib import specs
from kdlib.findings import claims_models as cm
from kdlib.findings import claims_training as ct
from kdlib.findings.report import COLUMNS, show_rows, to_html, to_markdown, write
from kdlib.findings.select import Context
from kdlib.findings.stats import INCONCLUSIVE, NOT_RUN, VERDICTS, Outcome, combine, interval, part_verdict

__all__ = ["Claim", "CLAIMS", "claim", "scorecard", "show", "show_rows", "write", "to_markdown", "to_html", "interval",
           "VERDICTS", "COLUMNS"]


@dataclass(frozen=True)
class Claim:
    """One finding to check: STUDY.md's id, its words, the paper section, the notebook that runs it, its effect."""

    id: str
    claim: str
    section: str
    notebook: str
    function: Callable[[pd.DataFrame, Context], Outcome]


CLAIMS: tuple[Claim, ...] = (
    Claim("F1", "no output-matching method beats shared fixed T (at its best T) consistently", "4.1, Fig. 1", "01",
          ct.f1_methods),
    Claim("F2", "AdamW is more robust to T than SGD (smaller spread of accuracy over T)", "4.2, Fig. 2", "02",
          ct.f2_adamw_robust),
    Claim("F3", "with SGD, small T wins at short durations and large T at long ones (the cross-over)",
          "4.2, Figs. 2–3", "02", ct.f3_crossover),
    Claim("F4", "a larger batch moves the cross-over to longer training", "4.2, Fig. 2", "02", ct.f4_batch_delays),
    Claim("F5", "at the longest duration accuracy rises from T = 1 to about T = 10, then flattens", "4.2, Fig. 3",
          "01", ct.f5_rise_then_flat),
    Claim("F6", "at T = 40 the average sorted teacher profile is nearly flat (top < 0.01 above the rest, "
          "bottom differences < 1e-4)", "4.2, Fig. 4", "03", ct.f6_flat_profile),
    Claim("F7", "real teacher targets beat same-entropy label smoothing (global, per-instance) and bottom-k "
          "shuffles, also at large T", "4.2, Fig. 5", "03", ct.f7_real_targets),
    Claim("F8", "longer teacher finetuning lowers student accuracy", "4.3, Table 1", "04", cm.f8_finetune_lowers),
    Claim("F9", "longer teacher finetuning lets small T catch up with large T", "4.3, Table 1", "04",
          cm.f9_small_t_catches_up),
    Claim("F10", "longer finetuning drives the teacher's H_all toward 0 and H_-max toward 1", "4.3, Table 1", "04",
          cm.f10_entropies),
    Claim("F11", "teachers trained from scratch do best at T ≈ 1", "4.3, Table 1", "04", cm.f11_scratch_small_t),
    Claim("F12", "larger T helps for every student initialization, least for pretrained and finetuned students",
          "4.4, Table 2", "05", cm.f12_every_init),
    Claim("F13", "KD beats finetuning the student on labels alone", "4.4", "05", cm.f13_kd_beats_labels),
    Claim("F14", "coarse datasets plateau (inflection point) closer to T = 1 than fine ones", "4.5, Fig. 6", "06",
          cm.f14_coarse_plateau),
    Claim("F15", "fine datasets whose classes the pretraining never separated prefer small T (negative trend)",
          "4.5, Figs. 6–7", "06", cm.f15_no_overlap_negative),
    Claim("F16", "SGD and larger batches gain more from longer distillation (\"patient distillation\")", "5", "02",
          cm.f16_patient),
)


def claim(claim_id: str) -> Claim:
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise ValueError(f"unknown claim {claim_id!r}; the claims are {[c.id for c in CLAIMS]} (STUDY.md)")


def _fmt(mean: float, low: float, high: float) -> str:
    if mean != mean:
        return "–"
    return f"{mean:+.3g}" if low != low else f"{mean:+.3g} [{low:+.3g}, {high:+.3g}]"


def _row(c: Claim, outcome: Outcome, scale: str) -> dict[str, Any]:
    row = {"id": c.id, "claim": c.claim, "section": c.section, "notebook": c.notebook, "scale": scale}
    if outcome.missing or not outcome.parts:
        return {**row, "effect": "", "value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "seeds": 0, "verdict": NOT_RUN, "detail": f"needs {outcome.missing}"}
    judged = [(p, *part_verdict(p)) for p in outcome.parts]
    verdicts = [v for _, v, *_ in judged]
    head, verdict, mean, low, high, n = judged[0]
    notes = [f"{p.name} {_fmt(m, lo, hi)} (vs {p.null:g}, claim {p.expect}): {v}" for p, v, m, lo, hi, _ in judged[1:]]
    if n < 2:
        notes.insert(0, f"{n} seed: no interval")
    overall = combine(verdicts)
    if overall == NOT_RUN:  # the headline ran but another part did not: not a full test
        overall = INCONCLUSIVE
    return {**row, "effect": f"{head.name} (claim {head.expect} {head.null:g})", "value": mean, "ci_low": low,
            "ci_high": high, "seeds": n, "verdict": overall, "detail": "; ".join(notes + [outcome.detail]).strip("; ")}


def scorecard(frame: pd.DataFrame, *, preset: str | None = None, logits: Mapping[int, Any] | None = None,
              tolerance: float = 1.0, notebook: str | None = None,
              claims: list[str] | None = None) -> pd.DataFrame:
    """One row per claim and scale from a results frame (``tables.load_results(kind="all")``; supervised rows feed F13).

    ``preset``: score only that scale (default: every preset in the frame, or ``mini`` for an
    empty one). ``logits``: the baseline teacher's training-set logits per seed, for F6.
    ``tolerance``: accuracy points within the best that count as the plateau (F14).
    ``notebook``: only the rows of that notebook (``"02"``); ``claims``: only these ids (``["F13"]``).
    """
    if preset is not None:
        specs.preset(preset)
    names = [preset] if preset else (sorted(frame["preset"].dropna().unique()) if "preset" in frame and len(frame)
                                     else ["mini"])
    wanted = [claim(i) for i in claims] if claims is not None else CLAIMS  # unknown ids raise here
    chosen = [c for c in wanted if notebook is None or c.notebook == str(notebook).zfill(2)]
    if not chosen:
        raise ValueError(f"notebook={notebook!r} has no claims; notebooks with claims: "
                         f"{sorted({c.notebook for c in CLAIMS})}")
    # object columns: pandas' arrow-backed strings make the many small selections of the claims slow
    frame = frame.astype({c: object for c in frame.columns if pd.api.types.is_string_dtype(frame[c])})
    rows = []
    for name in names:
        part = frame[frame["preset"] == name] if "preset" in frame else frame
        ctx = Context(specs.preset(name), dict(logits or {}), tolerance)
        rows += [_row(c, c.function(part, ctx), name) for c in chosen]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def show(frame: pd.DataFrame, notebook: str | None = None, **kwargs: Any):
    """The scorecard rows of one notebook (or of ``claims=[...]``, or all), ready to display at its end."""
    return show_rows(scorecard(frame, notebook=notebook, **kwargs))
