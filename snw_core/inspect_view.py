"""Pure logic behind the Inspect page: default test picks, outcome words, the score chart, the result table.

No streamlit here; plotly and pandas are imported lazily by the helpers that need them.

>>> outcome("DEFECT", "3", "3", "0")
'correct (pin 3)'
>>> outcome("GOOD", "3", None, "0")
'ESCAPE'
"""
from __future__ import annotations

import numpy as np

from .data import sort_labels
from .viz import GOOD_COLOR, label_name

__all__ = ["registration_note", "DEFECT_COLOR", "default_picks", "random_picks", "pick_name", "outcome", "score_figure",
           "results_table", "MAX_CARDS"]

#: bar colour of a DEFECT verdict (GOOD bars use the good gray of every page)
DEFECT_COLOR = "#c62828"
#: items drawn as cards (all items are in the chart and the table)
MAX_CARDS = 24


def default_picks(labels, split, good_label: str = "0", n_defect: int = 2) -> list[int]:
    """First good test item and the first test item of each of the first ``n_defect`` pin addresses."""
    labels, split = np.asarray(labels).astype(str), np.asarray(split).astype(str)
    test = split == "test"
    picks = []
    for lab in sort_labels(labels[test], good_label)[:1 + n_defect]:
        rows = np.flatnonzero(test & (labels == lab))
        if rows.size:
            picks.append(int(rows[0]))
    return picks


def random_picks(labels, split, good_label: str = "0", n_good: int = 2, n_defect: int = 2, seed=None) -> list[int]:
    """``n_good`` random good and ``n_defect`` random defective test items, in row order."""
    labels, split = np.asarray(labels).astype(str), np.asarray(split).astype(str)
    rng = np.random.default_rng(seed)
    test = split == "test"
    out = []
    for mask, n in ((test & (labels == good_label), n_good), (test & (labels != good_label), n_defect)):
        rows = np.flatnonzero(mask)
        out += rng.choice(rows, size=min(n, rows.size), replace=False).tolist()
    return sorted(int(i) for i in out)


def pick_name(row: int, label: str, good_label: str = "0") -> str:
    """'#123 · pin 4' / '#7 · good': a test item as offered in the picker."""
    return f"#{row} · {label_name(label, good_label)}"


def outcome(verdict: str, true_label: str, pin_guess, good_label: str = "0") -> str:
    """The judgement of an item with a known label, in the trade's words.

    correct / ESCAPE (defect judged good) / OVERKILL (good judged defect); for a caught defect, whether the
    pin address was guessed right.
    """
    is_defect = str(true_label) != good_label
    if verdict == "GOOD":
        return "ESCAPE" if is_defect else "correct"
    if not is_defect:
        return "OVERKILL"
    if pin_guess is not None and str(pin_guess) == str(true_label):
        return f"correct (pin {true_label})"
    return f"caught, pin guessed {pin_guess} (true {true_label})"


def score_figure(names, scores, verdicts, threshold: float, k: int):
    """Horizontal bar per item: its score, coloured by verdict, against the threshold (dashed line)."""
    import plotly.graph_objects as go

    names = [str(n) for n in names]
    scores = np.asarray(scores, float)
    colors = [DEFECT_COLOR if v == "DEFECT" else GOOD_COLOR for v in verdicts]
    fig = go.Figure(go.Bar(
        x=scores, y=names, orientation="h", marker_color=colors,
        text=[f"{s:.3f} · {v}" for s, v in zip(scores, verdicts)], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}<br>score %{x:.4f}<extra></extra>"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#333",
                  annotation_text=f"threshold {threshold:.3f}", annotation_position="top")
    top = max(float(scores.max()) if scores.size else 0.0, threshold) * 1.25
    fig.update_layout(
        height=90 + 28 * len(names), margin=dict(l=10, r=40, t=40, b=40), showlegend=False,
        xaxis=dict(title=f"score: mean embedding distance to the {k} nearest good references "
                         "(DEFECT when > threshold)", range=[0, top]),
        yaxis=dict(title=None, autorange="reversed", type="category"))
    return fig


def results_table(rows: list[dict], good_label: str = "0", true_labels=None, notes=None):
    """A pandas frame of judged items (one row each) for display and CSV download."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df.insert(3, "margin", df["score"] - df["threshold"])
    df.loc[~df["defect"], ["pin", "pin_confidence"]] = None     # a pin address is only claimed for a DEFECT verdict
    if true_labels is not None:
        df["true_label"] = list(true_labels)
        df["outcome"] = [None if t is None else outcome(v, t, p, good_label)
                         for v, t, p in zip(df["verdict"], df["true_label"], df["pin"])]
    if notes is not None:
        df["note"] = list(notes)
    return df


def registration_note(applied) -> str:
    """The correction registration made to one image, for the operator: which way the part sat off its taught
    position (a part that is often off points at the fixture or the camera mount). Empty for a part a pixel
    or less off and not turned: that much is the parts' normal spread."""
    dy, dx, angle = (float(v) for v in applied)
    if max(abs(dy), abs(dx)) < 2 and not angle:
        return ""
    parts = []
    if round(dy):
        parts.append(f"{abs(dy):.0f} px {'low' if dy > 0 else 'high'}")
    if round(dx):
        parts.append(f"{abs(dx):.0f} px {'right' if dx > 0 else 'left'}")
    if angle:
        parts.append(f"turned by {abs(angle):.1f}°")
    where = ", ".join(parts) if parts else "less than a pixel off"
    return f"Put back in place before judging: the part sat {where} of its taught position."
