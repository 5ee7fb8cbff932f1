"""The scorecard as Markdown and standalone HTML, written atomically."""
from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from kdlib.io import atomic_write_bytes

COLUMNS = ("id", "claim", "section", "notebook", "effect", "value", "ci_low", "ci_high", "verdict", "scale", "seeds",
           "detail")
COLOURS = {"reproduced": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#9a6700", "not run": "#6e7781"}
_HEADER = ("The paper's findings (STUDY.md F1–F16) as computed from the store: the effect with a 95 % t interval "
           "over seeds, paired by seed. *reproduced*: the interval lies on the claimed side; *contradicted*: on the "
           "other; *inconclusive*: it holds the null value or fewer than 2 seeds ran; *not run*: the runs are "
           "missing. Definitions: `kdlib/findings/claims_*.py`.")


def _num(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3g}"


def _interval(r) -> str:
    if r.ci_low != r.ci_low:
        return "–"
    return f"[{_num(r.ci_low)}, {_num(r.ci_high)}]"


def _check(rows: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"scorecard rows lack columns {missing}; build them with kdlib.findings.scorecard(frame)")


def to_markdown(rows: pd.DataFrame) -> str:
    """A Markdown table per scale."""
    _check(rows)
    lines = ["# Findings scorecard", "", _HEADER, ""]
    for scale, part in rows.groupby("scale", sort=True):
        lines += [f"## Scale `{scale}`", "", "| id | claim (section) | effect | value | 95 % CI | seeds | verdict | "
                  "detail |", "|---|---|---|---|---|---|---|---|"]
        for r in part.itertuples():
            cells = [r.id, f"{r.claim} ({r.section}, nb {r.notebook})", r.effect, _num(r.value), _interval(r),
                     str(r.seeds), f"**{r.verdict}**", r.detail]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        counts = part["verdict"].value_counts()
        lines += ["", "Totals: " + ", ".join(f"{v} {int(counts.get(v, 0))}" for v in COLOURS), ""]
    return "\n".join(lines)


def to_html(rows: pd.DataFrame) -> str:
    """A standalone page (no scripts, no external resources)."""
    _check(rows)
    body = [f"<h1>Findings scorecard</h1><p>{html.escape(_HEADER).replace('*', '')}</p>"]
    for scale, part in rows.groupby("scale", sort=True):
        body.append(f"<h2>Scale <code>{html.escape(str(scale))}</code></h2><table><tr>"
                    + "".join(f"<th>{h}</th>" for h in ("id", "claim", "section", "effect", "value", "95 % CI",
                                                         "seeds", "verdict", "detail")) + "</tr>")
        for r in part.itertuples():
            colour = COLOURS.get(r.verdict, "#000")
            cells = [r.id, r.claim, f"{r.section} (nb {r.notebook})", r.effect, _num(r.value), _interval(r),
                     r.seeds]
            body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                        + f'<td style="color:{colour};font-weight:bold">{html.escape(r.verdict)}</td>'
                        + f"<td>{html.escape(str(r.detail))}</td></tr>")
        body.append("</table>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:14px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Findings scorecard</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write(rows: pd.DataFrame, folder: str | Path) -> list[Path]:
    """``findings.md`` and ``findings.html`` in ``folder``, each written atomically."""
    folder = Path(folder)
    out = [folder / "findings.md", folder / "findings.html"]
    atomic_write_bytes(out[0], to_markdown(rows).encode())
    atomic_write_bytes(out[1], to_html(rows).encode())
    return out


def show_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader needs, numbers rounded (a notebook's last cell displays it)."""
    _check(rows)
    view = rows[["id", "claim", "effect", "value", "ci_low", "ci_high", "seeds", "verdict", "scale", "detail"]]
    return view.round({"value": 3, "ci_low": 3, "ci_high": 3}).set_index("id")
