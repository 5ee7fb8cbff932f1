"""The advice: the rules (or their calibration) as a linear model of log2 T, snapped, with a range and reasons.

``recommend`` takes a setup described by numbers; ``advise`` first runs the teacher over
the training set (``diagnostics``). Every reason in the report is one rule's term, tied
to its diagnostic value and to the paper's finding it comes from.
"""
from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from kdlib import checks, specs
from kdlib.advisor.calibration import T_MAX, T_MIN, Calibration, _nearest, current_calibration, hit_probability
from kdlib.advisor.confidence import level as confidence_level
from kdlib.advisor.diagnostics import Diagnostics, diagnose
from kdlib.advisor.rules import REFERENCE_BATCH, Reason, Setting, reasons
from kdlib.traits import baseline_epochs, granularity, known_overlap

# The paper's temperature grid (STUDY.md): advice is snapped to it unless told otherwise.
PAPER_TEMPERATURES: tuple[float, ...] = (1, 2, 3, 4, 5, 10, 20, 40)


def _check_setting(optimizer: Any, epochs: Any, batch_size: Any, teacher_origin: Any, student_init: Any,
                   class_overlap_: Any) -> None:
    if optimizer not in specs.OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}; choose one of {specs.OPTIMIZERS} (the paper's two; "
                         "treat other adaptive optimizers as 'adamw')")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        checks.check_int(name, v, hint=f" (the planned distillation {name})", numpy=True)
    if teacher_origin not in (None, "finetuned", "scratch"):
        raise ValueError(f"teacher_origin={teacher_origin!r}; choose 'finetuned' (general pretraining, then the "
                         "target set), 'scratch' (target set only) or None (unknown)")
    if student_init not in specs.INITS:
        raise ValueError(f"student_init={student_init!r}; choose one of {specs.INITS}")
    if class_overlap_ is not None and not (isinstance(class_overlap_, (int, float)) and 0 <= class_overlap_ <= 1):
        raise ValueError(f"class_overlap={class_overlap_!r} must be a share in [0, 1] or None (unknown)")


@dataclass(frozen=True)
class Advice:
    """A recommended temperature with its range, reasons and how sure it is (shows as a report)."""

    temperature: float              # snapped to the candidate temperatures
    raw: float                      # the model's value before snapping
    low: float
    high: float
    confidence: str                 # "high" | "medium" | "low"
    confidence_why: str
    stakes: str
    reasons: tuple[Reason, ...]
    basis: str
    setting: Setting
    diagnostics: Diagnostics | None = None

    def __str__(self) -> str:
        lines = [f"Recommended temperature: T = {self.temperature:g}  (range {self.low:g}-{self.high:g}; "
                 f"unrounded {self.raw:.3g}); confidence: {self.confidence}",
                 f"  {self.confidence_why}", f"  {self.stakes}", "Why:"]
        for r in self.reasons:
            lines.append(f"  {r.arrow()} {r.effect:+.2f}  {r.text} [{r.evidence}] - {r.finding}")
        if self.diagnostics is not None:
            d = self.diagnostics
            acc = "n/a" if d.accuracy is None else f"{d.accuracy:.1f}%"
            lines.append(f"Teacher on {d.num_samples} training samples, {d.num_classes} classes: accuracy {acc}, "
                         f"H_all {d.h_all:.3f}, H_-max {d.h_minus_max:.3f}, top-{d.top_k} share of non-argmax mass "
                         f"{d.top_k_share:.2f} (even spread: {d.top_k_uniform:.2f})")
        lines.append(f"Basis: {self.basis}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Advice(T={self.temperature:g}, range={self.low:g}-{self.high:g}, confidence={self.confidence!r})"

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td style='text-align:center'>{e(r.arrow())} {r.effect:+.2f}</td><td style='text-align:left'>"
            f"{e(r.text)}</td><td style='text-align:left'><code>{e(r.evidence)}</code></td>"
            f"<td style='text-align:left'><small>{e(r.finding)}</small></td></tr>" for r in self.reasons)
        diag = ""
        if self.diagnostics is not None:
            items = "".join(f"<tr><td style='text-align:left'>{e(str(k))}</td><td>{_fmt(v)}</td></tr>"
                            for k, v in self.diagnostics.summary().items())
            diag = f"<details><summary>Teacher diagnostics</summary><table>{items}</table></details>"
        return (f"<div><p style='font-size:1.15em'><b>Recommended temperature: T = {self.temperature:g}</b> "
                f"(range {self.low:g}–{self.high:g}; unrounded {self.raw:.3g}) · confidence: <b>{e(self.confidence)}</b>"
                f"</p><p>{e(self.confidence_why)}<br>{e(self.stakes)}</p>"
                f"<table><tr><th>effect on log₂T</th><th>reason</th><th>evidence</th><th>finding</th></tr>{rows}"
                f"</table>{diag}<p><small>Basis: {e(self.basis)}</small></p></div>")

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "raw": self.raw, "low": self.low, "high": self.high,
                "confidence": self.confidence, "reasons": [asdict(r) for r in self.reasons], "basis": self.basis}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _snap(t: float, temperatures: Sequence[float]) -> float:
    return float(temperatures[_nearest(temperatures, math.log2(t))])


def _round(t: float) -> float:
    return float(f"{t:.2g}")


def recommend(*, optimizer: str = "adamw", epochs: int, batch_size: int = REFERENCE_BATCH,
              teacher_origin: str | None = None, fine_grained: bool | None = None,
              class_overlap: float | None = None, h_all: float | None = None, h_minus_max: float | None = None,
              student_init: str = "random", baseline: int | None = None, dataset: str | None = None,
              preset: str | None = None, diagnostics: Diagnostics | None = None,
              temperatures: Sequence[float] = PAPER_TEMPERATURES, calibration: Any = None) -> Advice:
    """The advice for a setup described by numbers (no teacher pass): what ``advise`` calls.

    Unknowns (None) shift nothing and widen the range. ``calibration``: a ``Calibration``,
    None (the rules), or ``"auto"`` (the saved one, refit when the store changed).
    """
    _check_setting(optimizer, epochs, batch_size, teacher_origin, student_init, class_overlap)
    temps = sorted(float(t) for t in temperatures)
    if not temps or any(not math.isfinite(t) or t <= 0 for t in temps):
        raise ValueError(f"temperatures={temperatures!r} must be positive numbers (the candidates to snap to)")
    if diagnostics is not None:
        h_all = diagnostics.h_all if h_all is None else h_all
        h_minus_max = diagnostics.h_minus_max if h_minus_max is None else h_minus_max
        if class_overlap is None and diagnostics.overlap is not None:
            class_overlap = diagnostics.overlap.share
    if baseline is None:
        baseline = baseline_epochs(dataset, preset, diagnostics.num_samples if diagnostics else None)
    setting = Setting(optimizer, int(epochs), int(batch_size), int(baseline), teacher_origin, fine_grained,
                      None if class_overlap is None else float(class_overlap), h_all, h_minus_max, student_init)
    cal = _resolve(calibration)
    x = setting.features()
    coef = np.asarray(cal.coef)
    log2_t = cal.predict(x)
    unknowns = setting.unknowns()
    if cal.calibrated:
        half = max(0.5, cal.loo.get("rmse_log2", 1.0)) + 0.5 * len(unknowns)
    else:
        half = 1.0 + 0.5 * len(unknowns)
    lo, hi = max(T_MIN, 2 ** (log2_t - half)), min(T_MAX, 2 ** (log2_t + half))
    level = "high" if half <= 1.0 else "medium" if half <= 1.75 else "low"
    if not cal.calibrated and level == "high":
        level = "medium"
    why = (f"{'calibrated on ' + str(cal.n_setups) + ' stored sweeps' if cal.calibrated else 'rules of thumb only'}"
           f"; the range is a factor {2 ** half:.2g} either side" + (f"; unknown: {', '.join(unknowns)}"
                                                                     if unknowns else ""))
    p_hit = hit_probability(cal.loo, optimizer) if cal.calibrated else None
    if p_hit is not None:  # a probability the evaluation checks (heldout.reliability), not the range's width
        level = confidence_level(p_hit)
        why += (f"; on the stored sweeps a leave-one-out T landed within 0.5 pp of the best for {p_hit:.0%} of "
                f"{optimizer} setups (smoothed)")
    advised = _snap(2 ** log2_t, temps)
    if optimizer == "adamw":
        stakes = "With AdamW the student is robust to T (Sect. 4.2): anywhere in the range should cost little."
    else:
        ends = sorted({_snap(lo, temps), _snap(hi, temps)} - {advised})
        stakes = "With SGD the choice matters (Sect. 4.2)" + (
            f": if more runs are affordable, also try {' and '.join(f'T = {t:g}' for t in ends)}." if ends else ".")
    said = reasons(setting, x, coef, cal.calibrated, diagnostics)
    return Advice(temperature=advised, raw=float(2 ** log2_t), low=_round(lo), high=_round(hi),
                  confidence=level, confidence_why=why, stakes=stakes, reasons=tuple(said),
                  basis=cal.describe(), setting=setting, diagnostics=diagnostics)


def _resolve(calibration: Any) -> Calibration:
    if calibration is None:
        return Calibration.rules(source="none")
    if isinstance(calibration, Calibration):
        return calibration
    if calibration == "auto":
        return current_calibration()
    raise ValueError(f"calibration={calibration!r}; pass 'auto' (saved, refit when the store changed), None "
                     "(rules only) or a Calibration from kdlib.advisor.calibrate()")


def advise(teacher: Any, data: Any = None, *, optimizer: str = "adamw", epochs: int | None = None,
           batch_size: int = REFERENCE_BATCH, teacher_origin: str | None = None, fine_grained: bool | None = None,
           class_overlap: float | None = None, pretrain_classes: str | Sequence[str] | None = None,
           target_classes: Sequence[str] | None = None, class_map: Mapping[str, Any] | None = None,
           student_init: str = "random", spec: specs.Supervised | None = None, baseline: int | None = None,
           temperatures: Sequence[float] = PAPER_TEMPERATURES, calibration: Any = "auto", device: Any = None,
           progress: bool = False) -> Advice:
    """Recommend a distillation temperature for this teacher and training plan (paper Sect. 5).

    ``teacher``: a model with ``data`` (the training set, yielding ``(uint8 image, label)``),
    precomputed ``(logits, labels)`` on the training set, ``Diagnostics``, or a kdlib
    ``Supervised`` teacher spec (loaded from the store, trained first if missing). ``spec``
    tells the advisor what a kdlib teacher is (origin, dataset granularity, pretraining
    classes, baseline duration) when ``teacher`` is a model or logits; explicit arguments
    win. ``optimizer``/``epochs``/``batch_size``: the planned distillation.
    """
    if isinstance(teacher, specs.Supervised):
        spec = teacher if spec is None else spec
        teacher, data = _spec_teacher(teacher, data, device, progress)
    dataset = preset = None
    if spec is not None:
        known = _spec_facts(spec)
        dataset, preset = spec.dataset, spec.preset
        teacher_origin = known["teacher_origin"] if teacher_origin is None else teacher_origin
        fine_grained = known["fine_grained"] if fine_grained is None else fine_grained
        if class_overlap is None and pretrain_classes is None and class_map is None:
            class_overlap = known["class_overlap"]
        target_classes = known["target_classes"] if target_classes is None else target_classes
    if epochs is None:
        if dataset is None:
            raise ValueError("pass epochs=: the planned number of distillation epochs")
        epochs = baseline_epochs(dataset, preset)
    _check_setting(optimizer, epochs, batch_size, teacher_origin, student_init, class_overlap)
    if isinstance(teacher, Diagnostics):
        diag = teacher
    else:
        diag = diagnose(teacher, data, target_classes=target_classes, pretrain_classes=pretrain_classes,
                        class_map=class_map, device=device, progress=progress)
    return recommend(optimizer=optimizer, epochs=epochs, batch_size=batch_size, teacher_origin=teacher_origin,
                     fine_grained=fine_grained, class_overlap=class_overlap, student_init=student_init,
                     baseline=baseline, dataset=dataset, preset=preset, diagnostics=diag,
                     temperatures=temperatures, calibration=calibration)


def _spec_teacher(spec: specs.Supervised, data: Any, device: Any, progress: bool):
    """A kdlib teacher spec (trained first if missing): its cached training-set ``(logits, labels)``, or its model
    when ``data`` is given."""
    from kdlib import jobs  # what one job does lives in the orchestration layer

    if data is None:
        return jobs.teacher_logits(spec, device=device, progress=progress), None
    return jobs.load_model(spec, device=device, progress=progress), data


def _spec_facts(spec: Any) -> dict[str, Any]:
    """What a teacher spec tells the rules: origin, granularity, class overlap and the target classes."""
    from kdlib import data as kdata

    if not isinstance(spec, specs.Supervised):
        raise ValueError(f"spec must be the teacher's Supervised spec (kdlib.specs.teacher(...)), got {spec!r}")
    corpus = spec.init.dataset if isinstance(spec.init, specs.Supervised) else spec.init
    try:
        classes = list(kdata.dataset_info(spec.dataset, spec.preset).classes)
    except (ValueError, OSError):
        classes = None
    return {"teacher_origin": "finetuned" if spec.origin == "finetuned" else "scratch",
            "fine_grained": granularity(spec.dataset, spec.preset),
            "class_overlap": known_overlap(spec.dataset, corpus, spec.preset), "target_classes": classes}
