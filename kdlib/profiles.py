"""What a temperature does to a teacher's softmax: the sorted profile, its entropies, one sample.

The numbers of paper Fig. 4 and Sect. 4.3 (entropy, relative entropies H_all and H_-max,
the argmax-vs-next gap and the spread of the bottom classes) from logits, as tidy frames
and dicts that the charts and the temperature explorer show.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd
import torch

from kdlib import metrics


def profile_frame(logits: torch.Tensor, temperatures: Iterable[float], top: int | None = None) -> pd.DataFrame:
    """Average sorted softmax profile per temperature, tidy (paper Fig. 4), with relative entropies."""
    rows = []
    for t in temperatures:
        prof = metrics.sorted_profile(logits, t)
        h_all = metrics.relative_entropy(logits, t)
        h_rest = metrics.relative_entropy_without_max(logits, t) if logits.shape[1] > 2 else float("nan")
        for rank, p in enumerate(prof.tolist()[:top], start=1):
            rows.append({"temperature": float(t), "rank": rank, "probability": p, "h_all": h_all,
                         "h_minus_max": h_rest})
    return pd.DataFrame(rows)


def profile_numbers(logits: torch.Tensor, t: float) -> tuple[pd.DataFrame, dict[str, float]]:
    """The profile frame at T and the set-level numbers: mean entropy, H_all, H_-max, top gap, bottom spread."""
    frame = profile_frame(logits, [t])
    p = torch.softmax(logits.double() / t, dim=1)
    numbers = {"entropy": metrics.entropy(p).mean().item(),
               "h_all": float(frame["h_all"].iloc[0]), "h_minus_max": float(frame["h_minus_max"].iloc[0]),
               **metrics.profile_gaps(logits, t)}
    return frame, numbers


def sample_frame(z: torch.Tensor, t: float, class_names: Sequence[str], label: int | None,
                 max_classes: int) -> pd.DataFrame:
    """One sample's probabilities at T = 1 and T, its ``max_classes`` largest logits in the same order at both."""
    z = z.double()
    order = torch.argsort(z, descending=True)[:max_classes].tolist()
    rows = []
    for temp in sorted({1.0, t}):
        p = torch.softmax(z / temp, dim=0)
        for rank, c in enumerate(order, start=1):
            rows.append({"temperature": temp, "T": f"T={temp:g}", "rank": rank, "class": class_names[c],
                         "class_index": c, "probability": p[c].item(), "is_label": label is not None and label == c})
    return pd.DataFrame(rows)


def sample_numbers(z: torch.Tensor, t: float, class_names: Sequence[str]) -> dict[str, float | str]:
    """One sample at T: entropy (nats), top probability and predicted class."""
    p = torch.softmax(z.double() / t, dim=0)
    return {"sample_entropy": metrics.entropy(p).item(), "sample_top_probability": p.max().item(),
            "sample_prediction": class_names[int(p.argmax())]}


def gaps_table(logits: torch.Tensor, temperatures: Iterable[float], entropies: bool = True) -> pd.DataFrame:
    """Per T: the argmax-vs-next gap and the bottom classes' spread of the average profile (Sect. 4.2), and H_all, H_-max."""
    rows = []
    for t in temperatures:
        row = {"T": t, **metrics.profile_gaps(logits, t)}
        if entropies:
            row.update({"H_all": metrics.relative_entropy(logits, t),
                        "H_-max": metrics.relative_entropy_without_max(logits, t)})
        rows.append(row)
    return pd.DataFrame(rows)
