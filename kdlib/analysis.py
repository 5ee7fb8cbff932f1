"""The study's numbers from a results frame: mean ± std over seeds, best T, sensitivity, cross-over, inflection.

Every summary the notebooks, charts, explorers and the advisor show is computed here, once.
Each function takes a tidy results frame (``tables.load_results`` / ``runs.ensure``) or a
slice of it and returns a pandas frame; ``plots`` draws them, nothing here draws.
The paper reports final-epoch test accuracy, the mean of three seeds; so does every table.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from kdlib import checks, specs, store, tables, traits

# ----------------------------------------------------------------------------- the spec-to-columns vocabulary

# Columns of ``tables.row_of`` (distillation runs) that can tell runs apart, in the order an
# explorer shows its controls. ``epochs`` comes last: it picks a duration, not a filter. Not
# here on purpose: ids, ``temperature`` (the x axis), ``seed`` (averaged over), ``method_args``
# (shown through ``variant``) and every result column.
SPEC_COLUMNS = ("preset", "dataset", "teacher", "teacher_origin", "teacher_epochs", "pretrain_corpus",
                "student", "student_init", "method", "variant", "optimizer", "lr", "weight_decay",
                "batch_size", "epochs")
SETUP_COLUMNS = ("dataset", "teacher", "student")        # what a figure's row names
CONFIG_COLUMNS = ("optimizer", "batch_size")             # the training configuration of Sect. 4.2
# One temperature sweep of vanilla KD (the advisor's unit): the spec columns bar method and variant.
SWEEP_COLUMNS = ("preset", "dataset", "teacher", "teacher_origin", "teacher_epochs", "teacher_id",
                 "pretrain_corpus", "student", "student_init", "optimizer", "lr", "weight_decay", "batch_size",
                 "epochs")
INIT_ORDER = ("random", "target", "pretrained", "finetuned")  # rows of Table 2, as the paper orders them
ORIGIN_ORDER = ("finetuned", "scratch")
TEACHER_STATS = (("teacher_acc", "teacher acc (%)"), ("teacher_h_all", "H_all"), ("teacher_h_minus_max", "H_-max"))


def present(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The ``columns`` that ``frame`` has, in order."""
    return [c for c in columns if c in frame.columns]


def where(frame: pd.DataFrame, **equal: Any) -> pd.DataFrame:
    """The rows of ``frame`` whose columns equal the given values, e.g. ``where(results, granularity="fine")``."""
    for column, value in equal.items():
        frame = frame[frame[column] == value]
    return frame



# ----------------------------------------------------------------------------- mean ± std over seeds

def aggregate(frame: pd.DataFrame, by: list[str], value: str = "test_acc", dropna: bool = False) -> pd.DataFrame:
    """Mean, std and count (``seeds``) of ``value`` per group (NaN group keys kept unless ``dropna``)."""
    g = frame.groupby(by, dropna=dropna)[value]
    out = g.agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"mean": value, "std": f"{value}_std", "count": "seeds"})


def mean_std_label(mean: float, std: float, seeds: int, digits: int = 1) -> str:
    """``"71.2"`` for one seed, ``"71.2 ± 0.4"`` for several, ``"–"`` when nothing finished."""
    if mean is None or mean != mean:
        return "–"
    if seeds is None or seeds <= 1 or std != std:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mean_std(frame: pd.DataFrame, by: Sequence[str], value: str = "test_acc", digits: int = 1) -> pd.DataFrame:
    """Mean, std and number of seeds of ``value`` per group of finished runs, with a ``label`` column.

    ``label`` is ``"mean ± std"`` when more than one seed ran and the mean alone otherwise.
    """
    frame = store.finished(frame)
    missing = [c for c in [*by, value] if c not in frame.columns]
    if missing:
        raise ValueError(f"the results frame has no column(s) {missing}; columns: {sorted(frame.columns)}")
    out = aggregate(frame, list(by), value)
    out["label"] = [mean_std_label(m, s, n, digits) for m, s, n in
                    zip(out[value], out[f"{value}_std"], out["seeds"])]
    return out


def with_spread(agg: pd.DataFrame, value: str = "test_acc") -> pd.DataFrame:
    """``low``/``high``: mean ∓ std (the error bars; no bar for a single seed)."""
    std = agg[f"{value}_std"].fillna(0)
    return agg.assign(low=agg[value] - std, high=agg[value] + std)


def mean_std_table(frame: pd.DataFrame, index: Sequence[str] | str, columns: str = "temperature",
                   value: str = "test_acc", digits: int = 1) -> pd.DataFrame:
    """A pivot of ``"mean ± std"`` strings (std only when several seeds ran): rows ``index``, columns ``columns``."""
    index = [index] if isinstance(index, str) else list(index)
    agg = mean_std(frame, [*index, columns], value, digits)
    table = agg.pivot(index=index, columns=columns, values="label")
    cols = sorted(table.columns, key=lambda c: (isinstance(c, str), c))
    table = table[cols]
    if columns == "temperature":
        table.columns = [f"T={c:g}" for c in cols]
    return table.fillna("–")


# ----------------------------------------------------------------------------- best T

def best_row(curve: pd.DataFrame, value: str = "test_acc") -> pd.Series:
    """The row of one curve (one row per temperature) with the highest ``value``; ties: the smaller T.

    The one definition of "best T" in kdlib: tables, charts, explorers and the advisor use it.
    """
    curve = curve.sort_values("temperature", kind="stable")
    return curve.loc[curve[value].idxmax()]


def curves(agg: pd.DataFrame, by: Sequence[str]):
    """``(key dict, curve sorted by T)`` per group of an aggregated frame, in first-seen order."""
    by = list(by)
    for key, g in agg.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key)), g.sort_values("temperature", kind="stable")


def best_temperature(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The temperature with the highest mean accuracy per group (ties: the smaller T), with that accuracy."""
    agg = mean_std(frame, [*by, "temperature"]).sort_values([*by, "temperature"])
    if agg.empty:
        return pd.DataFrame(columns=[*by, "best_T", "best_acc"])
    rows = []
    for key, g in agg.groupby(list(by), dropna=False):
        best = best_row(g)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "best_T": best["temperature"],
                     "best_acc": best["test_acc"]})
    return pd.DataFrame(rows)


def sensitivity(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """How much T matters per group (mean accuracy over seeds, in points).

    ``best_T``/``best_acc``; ``spread``: best minus worst T; ``gain``: best T minus the
    smallest T of the sweep (``acc_at_smallest_T``), i.e. what raising T from about 1 buys.
    """
    by = list(by)
    agg = mean_std(frame, [*by, "temperature"]).sort_values([*by, "temperature"])
    if agg.empty:
        return pd.DataFrame(columns=[*by, "best_T", "best_acc", "worst_acc", "spread", "smallest_T",
                                     "acc_at_smallest_T", "gain"])
    rows = []
    for key, g in curves(agg, by):
        best = best_row(g)
        rows.append({**key, "best_T": best["temperature"], "best_acc": best["test_acc"],
                     "worst_acc": g["test_acc"].min(), "spread": best["test_acc"] - g["test_acc"].min(),
                     "smallest_T": g["temperature"].iloc[0], "acc_at_smallest_T": g["test_acc"].iloc[0],
                     "gain": best["test_acc"] - g["test_acc"].iloc[0]})
    return pd.DataFrame(rows)


def crossover(frame: pd.DataFrame, by: Sequence[str] | None = None, duration: str = "epochs") -> pd.DataFrame:
    """The "cross over" of paper Sect. 4.2: the duration from which larger temperatures win.

    Per configuration (``by``; default dataset, teacher, student, optimizer, batch size)
    the best T (highest mean accuracy over seeds) is found at every duration. The
    cross-over is the shortest duration from which on the best T stays *above* the best T
    of the shortest duration, at that duration and every longer one. NaN means it never
    moves up (small T best throughout, or the largest T already best at the start).
    ``large_T_wins_from`` is the same test for "the largest T beats the smallest T".
    """
    by = list(by) if by is not None else present(frame, [*SETUP_COLUMNS, *CONFIG_COLUMNS])
    agg = mean_std(frame, [*by, duration, "temperature"])
    rows = []
    for key, g in agg.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        durations = sorted(g[duration].unique())
        best, gap = [], []
        for d in durations:
            at = g[g[duration] == d].sort_values("temperature")
            best.append(float(best_row(at)["temperature"]))
            gap.append(float(at["test_acc"].iloc[-1] - at["test_acc"].iloc[0]))
        cross = next((d for k, d in enumerate(durations) if k > 0 and all(b > best[0] for b in best[k:])), math.nan)
        wins = next((d for k, d in enumerate(durations) if all(x > 0 for x in gap[k:])), math.nan)
        rows.append({**dict(zip(by, key)), "durations": " → ".join(f"{d:g}" for d in durations),
                     "best_T_path": " → ".join(f"{b:g}" for b in best), "best_T_shortest": best[0],
                     "best_T_longest": best[-1], f"crossover_{duration}": cross,
                     "large_minus_small_T": " / ".join(f"{x:+.1f}" for x in gap), "large_T_wins_from": wins})
    return pd.DataFrame(rows)


def _slope(t, acc) -> float:
    """Least-squares slope of accuracy against log2 T (points per doubling)."""
    if len(t) < 2:
        return math.nan
    x = [math.log2(v) for v in t]
    mx, my = sum(x) / len(x), acc.mean()
    return sum((a - mx) * (b - my) for a, b in zip(x, acc)) / sum((a - mx) ** 2 for a in x)


def inflection_points(frame: pd.DataFrame, by: Sequence[str] | None = None, tolerance: float = 1.0) -> pd.DataFrame:
    """Where accuracy stops rising with T (paper Sect. 4.5, Fig. 6), per curve.

    ``inflection_T`` is the smallest temperature whose mean accuracy is within
    ``tolerance`` points of the curve's maximum: beyond it, larger T buys less than
    ``tolerance``. ``slope`` is the least-squares slope of accuracy against log2 T
    (points per doubling of T); ``trend`` is ``rising`` when the inflection point is more
    than ``tolerance`` above the smallest T, ``falling`` when the largest T is more than
    ``tolerance`` below the smallest T, and ``flat`` otherwise.
    """
    if not (checks.is_number(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance={tolerance!r} must be a number >= 0 (accuracy points)")
    by = list(by) if by is not None else present(frame, ["dataset", "pretrain_corpus", "teacher", "student"])
    agg = mean_std(frame, [*by, "temperature"])
    rows = []
    for key, g in curves(agg, by):
        t, acc = g["temperature"].to_numpy(float), g["test_acc"].to_numpy(float)
        best = best_row(g)
        k = int((acc >= best["test_acc"] - tolerance).argmax())
        trend = ("rising" if acc[k] - acc[0] > tolerance else
                 "falling" if acc[-1] < acc[0] - tolerance else "flat")
        rows.append({**key, "inflection_T": t[k], "acc_at_inflection": acc[k],
                     "best_T": float(best["temperature"]), "best_acc": best["test_acc"], "smallest_T": t[0],
                     "acc_at_smallest_T": acc[0], "largest_T": t[-1], "acc_at_largest_T": acc[-1],
                     "slope": _slope(t, acc), "trend": trend})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- labels a chart shows

def setup_labels(frame: pd.DataFrame, columns: Sequence[str] = SETUP_COLUMNS) -> list[str]:
    """``"<dataset> · <teacher> → <student>"`` per row (only the columns present)."""
    cols = present(frame, columns)
    if {"teacher", "student"} <= set(cols):
        pair = [f"{a} → {b}" for a, b in zip(frame["teacher"], frame["student"])]
        rest = [c for c in cols if c not in ("teacher", "student")]
        return [" · ".join([*(str(frame[c].iloc[i]) for c in rest), pair[i]]) for i in range(len(frame))]
    return [" · ".join(str(frame[c].iloc[i]) for c in cols) for i in range(len(frame))]


def pair_labels(frame: pd.DataFrame) -> list[str]:
    return [f"{a} → {b}" for a, b in zip(frame["teacher"], frame["student"])]


def config_labels(frame: pd.DataFrame) -> list[str]:
    return [f"{o} · batch {b}" for o, b in zip(frame["optimizer"], frame["batch_size"])]


def config_order(agg: pd.DataFrame) -> list[str]:
    """Configuration labels, the paper's optimizers first."""
    pairs = sorted(set(zip(agg["optimizer"], agg["batch_size"])),
                   key=lambda p: (specs.OPTIMIZERS.index(p[0]) if p[0] in specs.OPTIMIZERS else 9, p[0], p[1]))
    return [f"{o} · batch {b}" for o, b in pairs]


def corpus_name(corpus: Any) -> str:
    """A pretraining corpus as a reader knows it (``hub`` is ImageNet-1K)."""
    if not isinstance(corpus, str):
        return "no pretraining"
    if corpus == "hub":
        return "ImageNet-1K"
    if corpus.startswith("hub:"):
        return corpus[4:]
    if corpus.startswith("file:"):
        return Path(corpus[5:]).name
    return corpus


def dataset_traits(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the granularity axis of Sect. 4.5: ``granularity`` (fine / coarse), ``overlap`` and a ``case`` label.

    ``case`` reads ``"<dataset> (<granularity>) ← <pretraining corpus>"``.

    ``overlap_share`` is the share of target classes the teacher's general pretraining
    separated (``kdlib.traits.known_overlap``: the mini world's hierarchy, or the
    paper's statement for ImageNet-1K weights); ``overlap`` says ``overlap`` from 0.5 up.
    """
    out = frame.copy()
    preset = out["preset"] if "preset" in out else pd.Series([None] * len(out), index=out.index)
    corpus = out["pretrain_corpus"] if "pretrain_corpus" in out else pd.Series([None] * len(out), index=out.index)
    fine = [traits.granularity(d, p) for d, p in zip(out["dataset"], preset)]
    out["granularity"] = ["fine" if f else "coarse" if f is False else "unknown" for f in fine]
    share = [traits.known_overlap(d, c, p) for d, c, p in zip(out["dataset"], corpus, preset)]
    out["overlap_share"] = [math.nan if s is None else float(s) for s in share]
    out["overlap"] = ["unknown" if s is None else "overlap" if s >= 0.5 else "no overlap" for s in share]
    out["case"] = [f"{d} ({g}) ← {corpus_name(c)}" for d, g, c in zip(out["dataset"], out["granularity"], corpus)]
    return out


def duration_shares(agg: pd.DataFrame) -> pd.DataFrame:
    """``share``: each duration over the longest of its setup and configuration; ``duration``: longest/shorter."""
    agg = agg.assign(setup=setup_labels(agg), config=config_labels(agg))
    longest = agg.groupby(["setup", "config"])["epochs"].transform("max")
    agg["share"] = agg["epochs"] / longest
    agg["duration"] = ["longest" if s == 1 else "shorter" for s in agg["share"]]
    return agg


def method_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Paper Fig. 1's rows: ``KD T=<t>`` for vanilla KD, the method (variant) for the others, mean over seeds."""
    frame = store.finished(frame)
    frame = frame.assign(
        label=[f"KD T={t:g}" if m == "kd" else (v if pd.isna(t) else f"{v} T={t:g}")
               for m, v, t in zip(frame["method"], frame["variant"], frame["temperature"])],
        family=["vanilla KD" if m == "kd" else "other method" for m in frame["method"]],
        pair=pair_labels(frame))
    return aggregate(frame, ["label", "family", "pair", "dataset", "method", "temperature"])


# ----------------------------------------------------------------------------- teachers and references (Tables 1, 2)

def teacher_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``row`` (teacher · origin · epochs) and ``origin_rank`` (finetuned first)."""
    frame = frame.assign(origin_rank=[ORIGIN_ORDER.index(o) if o in ORIGIN_ORDER else 9 for o in frame["teacher_origin"]])
    frame["row"] = [f"{t} · {o} · {e:g} ep" for t, o, e in
                    zip(frame["teacher"], frame["teacher_origin"], frame["teacher_epochs"])]
    return frame


def teacher_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Each teacher row's accuracy, ``H_all`` and ``H_-max`` (mean ± std over its seeds' teachers), long format."""
    frame = teacher_rows(store.finished(frame))
    one = frame.drop_duplicates("teacher_id")  # each teacher once, however many students it taught
    parts = []
    for column, name in TEACHER_STATS:
        if column not in one:
            continue
        agg = mean_std(one.dropna(subset=[column]), ["row", "teacher", "teacher_origin", "teacher_epochs"], column,
                       digits=1 if column == "teacher_acc" else 3)
        parts.append(agg.rename(columns={column: "value", f"{column}_std": "value_std"}).assign(stat=name))
    if not parts:
        return pd.DataFrame(columns=["row", "stat", "value", "value_std", "label"])
    return pd.concat(parts, ignore_index=True)


def finetune_reference(frame: pd.DataFrame) -> pd.DataFrame:
    """The finetune-only accuracy of each student (supervised rows, origin ``finetuned``) as dataset, student, test_acc, seed."""
    rows = store.finished(frame)
    if "kind" in rows:
        rows = rows[rows["kind"] == "supervised"]
    if "origin" in rows:
        rows = rows[rows["origin"] == "finetuned"]
    if "arch" in rows:
        rows = rows.assign(student=rows["arch"])
    return rows[present(rows, ["dataset", "student", "test_acc", "seed", "epochs"])].reset_index(drop=True)


def finetune_margin(agg: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """Per Table 2 row: its best KD accuracy, the finetune-only reference (``ft``, ``label``) and the ``margin``."""
    best = agg.groupby(["row", "student"], as_index=False)["test_acc"].max()
    merged = best.merge(ref[["student", "test_acc", "label"]].rename(columns={"test_acc": "ft"}), on="student")
    merged["margin"] = merged["test_acc"] - merged["ft"]
    return merged


def blocks(frame: pd.DataFrame, by: Sequence[str] | str):
    """``(key, rows)`` per group of ``frame``, in first-seen order: one chart block or panel each."""
    yield from frame.groupby(by if isinstance(by, str) else list(by), sort=False)


def init_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``row`` (student · init) and ``init_rank`` (Table 2's order)."""
    return frame.assign(init_rank=[INIT_ORDER.index(i) if i in INIT_ORDER else 9 for i in frame["student_init"]],
                        row=[f"{s} · {i}" for s, i in zip(frame["student"], frame["student_init"])])


def epoch_curves(history: pd.DataFrame, rows: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Mean ``metric`` per temperature and epoch over the runs in ``rows`` (``store.load_history``), with ``seeds``."""
    hist = history[history["run_id"].isin(rows["run_id"])][["run_id", "epoch", metric]].dropna()
    hist = hist.merge(rows[["run_id", "temperature"]], on="run_id")
    return (hist.groupby(["temperature", "epoch"])[metric].agg(["mean", "count"]).reset_index()
            .rename(columns={"mean": metric, "count": "seeds"}))


def curve_note(history: pd.DataFrame, rows: pd.DataFrame) -> str:
    """How many test images the curve points of ``rows`` came from (``test_images`` of each history row):
    e.g. "intermediate epochs: 1,000-image test subset; last epoch: full test set (5,000)"; "" when unrecorded."""
    if "test_images" not in history or "run_id" not in rows:
        return ""
    hist = history[history["run_id"].isin(rows["run_id"])]
    sizes = sorted({int(n) for n in hist["test_images"].dropna()})
    if not sizes:
        return ""
    if len(sizes) == 1:
        return f"test accuracy on {sizes[0]:,} images"
    return (f"intermediate epochs: {', '.join(f'{n:,}' for n in sizes[:-1])}-image test subset; "
            f"last epoch: full test set ({sizes[-1]:,})")
