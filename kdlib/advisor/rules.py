"""The paper's rules of thumb (Sect. 5), one record each: a feature of the setup, its weight on log2 T, and its prose.

Units: log2 T (+1 doubles T). The paper gives directions, not magnitudes, so the weights are
chosen; calibration replaces them where the store has sweeps. A rule is ONE ``Rule``: the
feature vector (``Setting.features``), the rules table and the advice's reasons are all
generated from ``RULES``, so a new rule is one edit here (like timm's ``OptimInfo`` registry).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

REFERENCE_BATCH = 128               # the paper's baseline batch size
H_MINUS_MAX_CENTER, H_ALL_CENTER = 0.8, 0.3

# ----------------------------------------------------------------------------- the findings

FINDINGS: dict[str, str] = {
    "plateau": "accuracy rises from T = 1 to about T = 10 and then flattens, so large T is the default "
               "for a pretrained, lightly finetuned teacher (Sect. 4.2, Fig. 3)",
    "adamw": "AdamW is robust to the value of T (Sect. 4.2, Fig. 2)",
    "sgd": "with SGD, small T wins with short training and large T with long training; a larger batch "
           "delays the cross-over (Sect. 4.2, Figs. 2-3)",
    "finetune": "longer finetuning drives H_all toward 0 and H_-max toward 1 (label-smoothing-like "
                "targets) and lets small T catch up (Sect. 4.3, Table 1; Fig. 5)",
    "scratch": "teachers trained from scratch often do best at T = 1 (Sect. 4.3, Table 1)",
    "granularity": "fine-grained datasets prefer larger T; coarse ones plateau closer to T = 1 "
                   "(Sect. 4.5, Fig. 6)",
    "overlap": "when the pretraining never separated the target classes (Cars, Finer-Grained Birds) the "
               "trend reverses and small T wins (Sect. 4.5, Fig. 7)",
    "student": "larger T helps every student initialization, with a smaller gain for pretrained or "
               "finetuned students (Sect. 4.4, Table 2)",
    "relations": "the class relationships carry the signal even where softmax differences are tiny "
                 "(Sect. 4.2, Fig. 5)",
}




def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def halvings_short(epochs: float, batch_size: float, baseline: float) -> float:
    """How many halvings of optimizer steps below the baseline (0 at or beyond it), paper Sect. 4.2.

    Steps, not epochs: a larger batch means fewer steps per epoch, and the paper saw a
    larger batch delay the SGD cross-over toward large T.
    """
    ratio = (epochs / baseline) * (REFERENCE_BATCH / batch_size)
    return float(min(5.0, max(0.0, -math.log2(ratio))))



@dataclass(frozen=True)
class Setting:
    """Everything the rules look at, with None for what is unknown."""

    optimizer: str
    epochs: int
    batch_size: int
    baseline_epochs: int
    teacher_origin: str | None = None      # "finetuned" | "scratch" | None
    fine_grained: bool | None = None
    class_overlap: float | None = None
    h_all: float | None = None
    h_minus_max: float | None = None
    student_init: str = "random"

    @property
    def halvings(self) -> float:
        return halvings_short(self.epochs, self.batch_size, self.baseline_epochs)

    def features(self) -> np.ndarray:
        """The feature vector, one entry per rule of ``RULES``, in order."""
        return np.array([rule.feature(self) for rule in RULES])

    def unknowns(self) -> list[str]:
        out = []
        if self.teacher_origin is None:
            out.append("teacher origin")
        if self.fine_grained is None:
            out.append("granularity")
        if self.class_overlap is None and self.teacher_origin != "scratch":
            out.append("class overlap with the pretraining")
        if _missing(self.h_minus_max):
            out.append("teacher entropies")
        return out


class RuleContext(NamedTuple):
    """What a rule's explanation may cite besides the setting: the weights in use and the teacher pass."""

    coef: Mapping[str, float]
    diagnostics: Any = None


class Explanation(NamedTuple):
    """A reason's words; ``shifts=False``: the rule cannot apply (something unknown), so it moves T by 0."""

    text: str
    evidence: str
    shifts: bool = True


@dataclass(frozen=True)
class Rule:
    """One rule of thumb: its feature of the setup, its weight (log2 T per unit) and its explanation.

    ``explain`` returns None when the rule says nothing about a setup. ``joins``: a rule
    whose term is reported inside another rule's reason (e.g. H_all with H_-max).
    """

    name: str
    weight: float
    finding: str                   # a key of FINDINGS: the claim and its paper section
    meaning: str
    feature: Callable[[Setting], float]
    explain: Callable[[Setting, RuleContext], Explanation | None] | None = None
    joins: str | None = None


@dataclass(frozen=True)
class Reason:
    """One term of the advice: how far it moves log2 T, in words, with its evidence and finding."""

    effect: float       # log2 T: +1 doubles the temperature
    text: str
    evidence: str
    finding: str

    def arrow(self) -> str:
        return "↑" if self.effect > 0.05 else "↓" if self.effect < -0.05 else "·"


# ----------------------------------------------------------------------------- each rule's words

def _base(s: Setting, ctx: RuleContext) -> Explanation:
    return Explanation(f"start at T = {2 ** ctx.coef['base']:.3g}: a general-pretrained, lightly finetuned teacher "
                       "with enough training does well at large T", "every setup")


def _fine(s: Setting, ctx: RuleContext) -> Explanation:
    if s.fine_grained is None:
        return Explanation("granularity unknown: no shift (pass fine_grained=True/False)", "granularity = ?", False)
    fine = "fine-grained" if s.fine_grained else "coarse"
    return Explanation(f"{fine} target classes: " + ("more relations to expose, so a higher T" if s.fine_grained
                                                     else "accuracy plateaus closer to T = 1"), f"granularity = {fine}")


def _scratch(s: Setting, ctx: RuleContext) -> Explanation | None:
    if s.teacher_origin == "scratch":
        return Explanation("the teacher was trained from scratch: no general pretraining to supply class relations",
                           "origin = scratch")
    if s.teacher_origin is None:
        return Explanation("teacher origin unknown: assumed general-pretrained then finetuned; if it was trained "
                           "from scratch use T near 1", "origin = ?", False)
    return None


def _overlap(s: Setting, ctx: RuleContext) -> Explanation | None:
    if s.teacher_origin == "scratch":
        return None
    if s.class_overlap is None:
        return Explanation("overlap of the target classes with the pretraining unknown: assumed the pretraining "
                           "knew them (pass class_overlap=, pretrain_classes= or class_map=)", "class overlap = ?",
                           False)
    msg = (f"{s.class_overlap:.0%} of the target classes are classes the pretraining separated"
           + ("; the others get no relational knowledge from it, so a smaller T" if s.class_overlap < 1
              else ": the teacher's class relations can be trusted at large T"))
    diag = ctx.diagnostics
    if diag is not None and diag.overlap is not None and diag.overlap.unknown:
        more = "..." if len(diag.overlap.unknown) > 5 else ""
        msg += f" (not separated: {', '.join(diag.overlap.unknown[:5])}{more})"
    return Explanation(msg, f"class overlap = {s.class_overlap:.2f}")


def _entropies(s: Setting, ctx: RuleContext) -> Explanation:
    if _missing(s.h_minus_max):
        return Explanation("teacher entropies unknown (no teacher pass): no shift", "H_-max = ?", False)
    if s.h_minus_max >= 0.9:
        msg = ("the teacher spreads its non-argmax mass almost evenly (like label smoothing, the mark of long "
               "finetuning), so large T adds little")
    elif s.h_minus_max <= 0.7:
        msg = "the teacher's non-argmax mass is structured: rich class relations for a large T to expose"
    else:
        msg = "the teacher's non-argmax mass is moderately structured"
    evidence = f"H_-max = {s.h_minus_max:.3f}, H_all = {s.h_all:.3f}"
    diag = ctx.diagnostics
    if diag is not None and diag.top_k:
        evidence += f", top-{diag.top_k} share {diag.top_k_share:.2f} (even: {diag.top_k_uniform:.2f})"
    return Explanation(msg, evidence)


def _steps(s: Setting) -> str:
    return (f"{s.epochs} epochs at batch {s.batch_size} vs a {s.baseline_epochs}-epoch baseline at batch "
            f"{REFERENCE_BATCH}")


def _sgd(s: Setting, ctx: RuleContext) -> Explanation | None:
    if s.optimizer != "sgd":
        return None
    return Explanation(f"SGD with a short schedule ({s.halvings:.1f} halvings below the baseline in steps): small T "
                       "wins before the cross-over" if s.halvings > 0 else
                       "SGD with a full schedule: past the cross-over, large T wins", _steps(s))


def _adamw(s: Setting, ctx: RuleContext) -> Explanation | None:
    return None if s.optimizer == "sgd" else Explanation("AdamW: the choice of T matters less", _steps(s))


def _student(s: Setting, ctx: RuleContext) -> Explanation | None:
    if s.student_init not in ("pretrained", "finetuned"):
        return None
    return Explanation(f"{s.student_init} student: larger T still helps, with a smaller gain",
                       f"student init = {s.student_init}")


def _sgd_flag(s: Setting) -> float:
    return 1.0 if s.optimizer == "sgd" else 0.0


# ----------------------------------------------------------------------------- the rules

RULES: tuple[Rule, ...] = (
    Rule("base", 3.0, "plateau", "1 for every setup: the starting point, T = 8", lambda s: 1.0, _base),
    Rule("fine_grained", 0.6, "granularity", "+1 fine-grained classes, -1 coarse, 0 unknown",
         lambda s: 0.0 if s.fine_grained is None else (1.0 if s.fine_grained else -1.0), _fine),
    Rule("scratch_teacher", -3.5, "scratch", "1 if the teacher was trained from scratch",
         lambda s: 1.0 if s.teacher_origin == "scratch" else 0.0, _scratch),
    Rule("unknown_classes", -3.5, "overlap", "share of target classes the pretraining did not separate "
         "(pretrained teachers only)",
         lambda s: 0.0 if (s.class_overlap is None or s.teacher_origin == "scratch") else 1.0 - s.class_overlap,
         _overlap),
    Rule("h_minus_max", -4.0, "finetune", "teacher's H_-max at T = 1, minus 0.8",
         lambda s: 0.0 if _missing(s.h_minus_max) else s.h_minus_max - H_MINUS_MAX_CENTER, _entropies),
    Rule("h_all", 0.0, "finetune", "teacher's H_all at T = 1, minus 0.3",
         lambda s: 0.0 if _missing(s.h_all) else s.h_all - H_ALL_CENTER, joins="h_minus_max"),
    Rule("sgd", 0.0, "sgd", "1 with SGD", _sgd_flag, joins="sgd_short"),
    Rule("sgd_short", -0.75, "sgd", "SGD only: halvings of training steps below the baseline",
         lambda s: _sgd_flag(s) * s.halvings, _sgd),
    Rule("adamw_short", 0.0, "adamw", "AdamW only: halvings of training steps below the baseline",
         lambda s: (1 - _sgd_flag(s)) * s.halvings, _adamw),
    Rule("pretrained_student", 0.0, "student", "1 if the student starts from pretrained weights",
         lambda s: 1.0 if s.student_init in ("pretrained", "finetuned") else 0.0, _student),
)
FEATURE_NAMES = tuple(r.name for r in RULES)
FEATURE_COLUMNS = tuple(f"f_{n}" for n in FEATURE_NAMES)   # in the sweeps table
PRIOR = np.array([r.weight for r in RULES])
FEATURES = RULES  # the name the rules had before they were records


def reasons(s: Setting, x: np.ndarray, coef: np.ndarray, calibrated: bool, diagnostics: Any = None) -> list[Reason]:
    """The advice's reasons, one per rule that speaks (its joined rules' terms added in), in rule order."""
    names = [r.name for r in RULES]
    c, v = dict(zip(names, coef)), dict(zip(names, x))
    ctx = RuleContext(c, diagnostics)
    out = []
    for rule in RULES:
        said = None if rule.joins or rule.explain is None else rule.explain(s, ctx)
        if said is None:
            continue
        if not said.shifts:
            out.append(Reason(0.0, said.text, said.evidence, FINDINGS[rule.finding]))
            continue
        effect = c[rule.name] * v[rule.name]
        for other in RULES:
            if other.joins == rule.name:
                effect = effect + c[other.name] * v[other.name]
        note = f" (stored sweeps: weight {c[rule.name]:+.2f}, rule {rule.weight:+.2f})" if calibrated else ""
        out.append(Reason(float(effect), said.text + note, said.evidence, FINDINGS[rule.finding]))
    return out


def rules_table():
    """The rules as a table: feature, weight on log2 T, what it measures, and the finding."""
    import pandas as pd

    return pd.DataFrame([{"feature": r.name, "weight (log2 T)": r.weight, "measures": r.meaning,
                          "finding": FINDINGS[r.finding]} for r in RULES])
