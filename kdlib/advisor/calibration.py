"""The rules refit on the stored sweeps: ridge regression of log2 (best T) shrunk toward the rules' weights.

Few sweeps: the rules; many: the data. Each sweep is weighted by how much T mattered in
it (its accuracy spread, clipped); the shrinkage is chosen by leave-one-out regret, beside
the rules and one model without features: one T for every setup (the best single T). The
features are kept only where they beat one T in leave-one-out by more than one standard
error of the paired difference (the one-standard-error rule of cross-validation): the best of
nine feature candidates looks better than it is, so a store whose best T does not vary
cannot make the advisor worse than the best single T through noise in its features.
Deterministic; saved atomically as JSON under ``outputs/advisor/``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.stats import sem

from kdlib import paths, store, tables
from kdlib.advisor.rules import FEATURE_COLUMNS, FEATURE_NAMES, PRIOR
from kdlib.advisor.setups import HIT_PP, MAX_WEIGHT, MIN_WEIGHT, REQUIRED, SETUP_KEYS, _nearest, regret_at, sweeps  # noqa: F401

T_MIN, T_MAX = 1.0, 40.0            # the range the paper studies
MIN_SETUPS = 6                      # fewer stored sweeps than this: the rules alone
LAMBDAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)   # shrinkage toward the rules, in sweeps
SINGLE = "single T"                 # the candidate without features: one grid T for every setup


@dataclass(frozen=True)
class Calibration:
    """Weights of the log2 T model, fitted on stored sweeps (or the rules when too few).

    ``status``: ``"calibrated"`` or ``"rules"``. ``loo``: leave-one-out numbers of the
    fit (mean regret in accuracy points of the fitted model and of the rules alone,
    residual RMS in log2 T) that size the advice's range. ``single_t``: set when no use of the
    features beat one T for every setup in leave-one-out by more than one standard error
    (then only ``base`` weighs).
    """

    coef: tuple[float, ...]
    status: str
    n_setups: int
    min_setups: int
    lam: float | None               # shrinkage toward the rules; None: the rules themselves
    loo: dict[str, float] = field(default_factory=dict)
    fingerprint: str = ""
    source: str = ""
    features: tuple[str, ...] = FEATURE_NAMES
    single_t: float | None = None

    @classmethod
    def rules(cls, n_setups: int = 0, min_setups: int = MIN_SETUPS, **kwargs: Any) -> "Calibration":
        return cls(tuple(PRIOR.tolist()), "rules", n_setups, min_setups, None, **kwargs)

    @property
    def calibrated(self) -> bool:
        return self.status == "calibrated"

    def predict(self, x: np.ndarray) -> float:
        """log2 T, clipped to the paper's range [1, 40]."""
        return float(np.clip(np.asarray(self.coef) @ x, math.log2(T_MIN), math.log2(T_MAX)))

    def describe(self) -> str:
        if not self.calibrated and self.source == "none":
            return "rules of thumb only (calibration=None)"
        if not self.calibrated:
            return f"rules of thumb only: {self.n_setups} stored sweep(s), calibration needs {self.min_setups}"
        loo = self.loo
        nan = float("nan")
        if self.single_t is not None:
            return (f"one T = {self.single_t:g} for every setup, from {self.n_setups} stored sweeps: in leave-one-out "
                    f"no use of the features beat it by more than a standard error (mean regret "
                    f"{loo.get('mean_regret', nan):.2f} pp; the features' best {loo.get('features_mean_regret', nan):.2f}"
                    f" pp, the rules {loo.get('rules_mean_regret', nan):.2f} pp), so the features are not used")
        if self.lam is None:
            return (f"rules checked on {self.n_setups} stored sweeps and kept: no refit beat them in leave-one-out "
                    f"(mean regret {loo.get('rules_mean_regret', nan):.2f} pp)")
        return (f"rules calibrated on {self.n_setups} stored sweeps (shrinkage {self.lam:g}); leave-one-out mean "
                f"regret {loo.get('mean_regret', nan):.2f} pp vs {loo.get('rules_mean_regret', nan):.2f} pp "
                "for the uncalibrated rules")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lam"] = self.lam
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Calibration":
        if tuple(d.get("features", ())) != FEATURE_NAMES:
            raise ValueError("the saved advisor calibration was made for other features; refit it with "
                             "kdlib.advisor.calibrate()")
        single = d.get("single_t")
        return cls(tuple(d["coef"]), d["status"], int(d["n_setups"]), int(d["min_setups"]), d.get("lam"),
                   dict(d.get("loo", {})), d.get("fingerprint", ""), d.get("source", ""), FEATURE_NAMES,
                   None if single is None else float(single))


def advisor_dir() -> Path:
    """Where the calibration lives: ``outputs/advisor/``."""
    return paths.outputs_dir() / "advisor"


def _matrices(table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = table[list(FEATURE_COLUMNS)].to_numpy(float)
    y = np.log2(table["best_temperature"].to_numpy(float))
    w = table["weight"].to_numpy(float)
    return X, y, w / w.mean()


def setup_curves(table) -> list[dict[str, Any]]:
    """Each sweep's curve only (temperatures, accuracies, best): what regret needs, fast to build."""
    return [{"temperatures": t, "accuracies": a, "best_acc": b}
            for t, a, b in zip(table["temperatures"], table["accuracies"], table["best_acc"])]


def _solve(X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """argmin sum w (y - X b)^2 + lam |b - prior|^2: ridge shrunk toward the rules."""
    A = X.T @ (w[:, None] * X) + lam * np.eye(X.shape[1])
    return np.linalg.solve(A, X.T @ (w * y) + lam * PRIOR)


def _regrets(rows: Sequence[Mapping[str, Any]], temperatures: Sequence[float]) -> np.ndarray:
    """regret[i, j]: sweep i's regret (pp) at ``temperatures[j]`` (its nearest stored T)."""
    return np.array([[regret_at(r, math.log2(t)) for t in temperatures] for r in rows], float).reshape(
        len(rows), len(temperatures))


def _grid(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    return sorted({float(t) for r in rows for t in r["temperatures"]})


def _lowest(mean_regret: np.ndarray) -> int:
    """The position of the lowest mean regret (rounded to 1e-9, so float noise does not decide); ties: the first."""
    return int(np.argmin(np.round(mean_regret, 9)))


def best_single(table) -> float:
    """log2 of the one grid T with the lowest mean regret over the sweeps of ``table`` (ties: the smaller T)."""
    rows = setup_curves(table)
    if not rows:
        raise ValueError("best_single needs at least one stored sweep")
    grid = _grid(rows)
    return math.log2(grid[_lowest(_regrets(rows, grid).mean(axis=0))])


def single_predictions(table) -> list[float]:
    """Each sweep's log2 T from the best single T of the others (leave-one-out of the featureless candidate)."""
    rows = setup_curves(table)
    n, grid = len(rows), _grid(rows)
    if n < 2:
        return [math.log2(grid[0])] * n if n else []
    R = _regrets(rows, grid)
    total = R.sum(axis=0)
    return [math.log2(grid[_lowest((total - R[i]) / (n - 1))]) for i in range(n)]


def _candidate_predictions(table, X: np.ndarray, y: np.ndarray, w: np.ndarray, cand) -> list[float]:
    return single_predictions(table) if cand == SINGLE else loo_predictions(X, y, w, cand)


def _loo(table, X: np.ndarray, y: np.ndarray, w: np.ndarray, cand) -> tuple[float, float, list[float], np.ndarray]:
    """Leave-one-out mean regret (pp), weighted RMS residual (log2 T), the predictions and each sweep's regret
    of a candidate: a shrinkage, None (the rules) or ``SINGLE`` (one T)."""
    preds = _candidate_predictions(table, X, y, w, cand)
    regrets = np.array([regret_at(r, p) for r, p in zip(setup_curves(table), preds)], float)
    sq = w * (np.asarray(preds, float) - y) ** 2
    return float(np.mean(regrets)), float(math.sqrt(np.sum(sq) / np.sum(w))), preds, regrets


def loo_predictions(X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float | None) -> list[float]:
    """Each sweep's log2 T from a fit without it (``lam`` kept; None: the rules, which need no fit)."""
    keep = lambda i: np.arange(len(y)) != i  # noqa: E731
    return [float(np.clip(X[i] @ (PRIOR if lam is None else _solve(X[keep(i)], y[keep(i)], w[keep(i)], lam)),
                          math.log2(T_MIN), math.log2(T_MAX))) for i in range(len(y))]


def calibration_loo_predictions(table, cal: Calibration) -> list[float]:
    """The leave-one-out log2 T of the model ``cal`` chose on ``table`` (what its stated confidence rests on)."""
    X, y, w = _matrices(table)
    cand = SINGLE if cal.single_t is not None else (cal.lam if cal.calibrated else None)
    return _candidate_predictions(table, X, y, w, cand)


def _hit_counts(table, preds: Sequence[float]) -> dict[str, int]:
    """Leave-one-out hits (T within HIT_PP of the best) per optimizer: what the stated confidence rests on."""
    out: dict[str, int] = {}
    for r, opt, pred in zip(setup_curves(table), table["optimizer"].astype(str), preds):
        out[f"n_{opt}"] = out.get(f"n_{opt}", 0) + 1
        out[f"hits_{opt}"] = out.get(f"hits_{opt}", 0) + int(regret_at(r, pred) <= HIT_PP + 1e-9)
    return out


def hit_probability(loo: Mapping[str, float], optimizer: str, min_group: int = 3) -> float | None:
    """Laplace-smoothed leave-one-out hit share for ``optimizer`` (all sweeps when it has < ``min_group``)."""
    n, k = loo.get(f"n_{optimizer}", 0), loo.get(f"hits_{optimizer}", 0)
    if n < min_group:
        n = sum(v for key, v in loo.items() if key.startswith("n_"))
        k = sum(v for key, v in loo.items() if key.startswith("hits_"))
    return None if n == 0 else (k + 1) / (n + 2)


def fit_calibration(table, *, min_setups: int = MIN_SETUPS, source: str = "frame", fingerprint: str = "") -> Calibration:
    """Fit the rule weights on a ``sweeps`` table (no files written); the rules when too few setups."""
    n = len(table)
    if not isinstance(min_setups, int) or min_setups < 2:
        raise ValueError(f"min_setups={min_setups!r} must be an integer >= 2 (leave-one-out needs two sweeps)")
    if n < min_setups:
        return Calibration.rules(n, min_setups, fingerprint=fingerprint, source=source)
    X, y, w = _matrices(table)
    scores = {cand: _loo(table, X, y, w, cand) for cand in (*LAMBDAS, None, SINGLE)}
    # The features' best use: lowest leave-one-out regret; ties go to the stronger pull toward the rules
    # (None: the rules). It is kept only if it beats one T by more than one standard error of the paired
    # difference, since the minimum over nine candidates is biased low; otherwise one T, the simpler model.
    cand = min((v for v in scores if v != SINGLE),
               key=lambda v: (round(scores[v][0], 9), -math.inf if v is None else -v))
    gain = scores[cand][3] - scores[SINGLE][3]           # per sweep; negative: the features do better
    se = float(sem(gain))                                 # n >= min_setups >= 2
    features = scores[cand][0]
    if round(float(np.mean(gain)) + se, 9) >= 0:
        cand = SINGLE
    loo = {"mean_regret": scores[cand][0], "rmse_log2": scores[cand][1], "rules_mean_regret": scores[None][0],
           "rules_rmse_log2": scores[None][1], "features_mean_regret": features,
           "single_mean_regret": scores[SINGLE][0], "features_minus_single_se": se,
           **_hit_counts(table, scores[cand][2])}
    if cand == SINGLE:
        log2_t = best_single(table)
        coef = np.where(np.asarray(FEATURE_NAMES) == "base", log2_t, 0.0)
        return Calibration(tuple(float(c) for c in coef), "calibrated", n, min_setups, None, loo, fingerprint,
                           source, single_t=float(2 ** log2_t))
    coef = PRIOR if cand is None else _solve(X, y, w, cand)
    return Calibration(tuple(float(c) for c in coef), "calibrated", n, min_setups, cand, loo, fingerprint, source)


def _fingerprint(frame) -> str:
    if frame is None or len(frame) == 0:
        return hashlib.sha256(b"").hexdigest()[:16]
    # Only finished runs count: pending or running rows (other notebooks at work) change nothing.
    done = store.finished(frame)
    cols = [c for c in ("run_id", "temperature", "test_acc") if c in done.columns]
    text = "\n".join(sorted("|".join(map(str, row)) for row in done[cols].itertuples(index=False)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibrate(frame=None, *, root: str | Path | None = None, min_setups: int = MIN_SETUPS, save: bool = True,
              folder: str | Path | None = None) -> Calibration:
    """Refit the advisor on stored sweeps (``frame``, or the store at ``root``) and save it.

    Writes ``calibration.json`` (the sweeps and their features) and ``model.json`` (the
    weights) atomically under ``folder`` (default ``outputs/advisor/``). With fewer than
    ``min_setups`` sweeps the saved model is the rules themselves.
    """
    source = "frame"
    if frame is None:
        frame, source = _store_frame(root)
    return _calibrate(frame, source, min_setups, save, folder)


def _store_frame(root: str | Path | None):
    root = (Path(root) if root is not None else paths.store_dir()).expanduser().resolve()
    return (tables.load_results(root) if root.is_dir() else None), f"store:{root}"


def _calibrate(frame, source: str, min_setups: int, save: bool, folder: str | Path | None) -> Calibration:
    table = sweeps(frame)
    cal = fit_calibration(table, min_setups=min_setups, source=source, fingerprint=_fingerprint(frame))
    if save:
        folder = Path(folder) if folder is not None else advisor_dir()
        records = json.loads(table.to_json(orient="records"))
        store.atomic_write_json(folder / "calibration.json", {"features": list(FEATURE_NAMES), "setups": records})
        store.atomic_write_json(folder / "model.json", cal.to_json())
    return cal


def load_calibration(folder: str | Path | None = None) -> Calibration | None:
    """The saved calibration (``outputs/advisor/model.json``), or None."""
    path = (Path(folder) if folder is not None else advisor_dir()) / "model.json"
    if not path.is_file():
        return None
    return Calibration.from_json(json.loads(path.read_text()))


def current_calibration(root: str | Path | None = None, min_setups: int = MIN_SETUPS) -> Calibration:
    """What ``calibration="auto"`` uses: the saved calibration, refit when the store it came from changed.

    A calibration fitted on a frame the user passed is kept until they refit.
    """
    saved = load_calibration()
    if saved is not None and not saved.source.startswith("store:"):
        return saved
    frame, source = _store_frame(root)
    if saved is not None and (saved.source, saved.fingerprint, saved.min_setups) == \
            (source, _fingerprint(frame), min_setups):
        return saved
    return _calibrate(frame, source, min_setups, True, None)
