"""Operating-point review of a finished run: what a chosen threshold means on the shop floor.

Pure functions on the arrays of a run's ``embeddings.npz`` (``embeddings``, ``labels``, ``split``,
``scores``); numpy and pandas only, plotly imported lazily by the figure builders. Nothing here
runs the model: moving a threshold recomputes counts from the stored scores.

Conventions (as in :mod:`snw_core.metrics`): an item is judged DEFECT when ``score > threshold``;
an *escape* is a defective item judged good, an *overkill* a good item judged defective. Thresholds
are chosen on the ``val`` split; the numbers reported come from the ``test`` split.

>>> import numpy as np
>>> scores = np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.4])
>>> labels = np.array(["0", "0", "3", "0", "3", "3"])
>>> split = np.array(["val", "val", "val", "test", "test", "test"])
>>> op = operating_point(scores, labels, split, threshold=0.35)
>>> op["escapes"], op["n_defect"], op["overkills"], op["n_good"]
(0, 2, 0, 1)
>>> escape_sentence(op)
'0 of 2 defective items passed as good (0.0 %)'
"""
from __future__ import annotations

import math

import numpy as np

from . import metrics as M
from .pairs import make_pairs

__all__ = [
    "PRESETS", "PRESET_STORED", "PRESET_BEST", "PRESET_ZERO", "PRESET_MAX_ESCAPE", "PRESET_MANUAL",
    "TEST_PAIR_SEED_OFFSET", "preset_threshold", "slider_range", "operating_point", "escape_sentence",
    "overkill_sentence", "pct", "pair_review", "per_pin_table", "error_items", "rate_color",
    "roc_points", "roc_figure", "confusion_figure", "embedding_scatter", "selected_rows", "label_counts",
    "order_by_label", "drift_rows", "drift_sentence", "not_a_part_rows", "not_a_part_sentence",
]

PRESET_STORED = "run's stored threshold"
PRESET_BEST = "best accuracy"
PRESET_ZERO = "zero escapes on val"
PRESET_MAX_ESCAPE = "escape rate <= X"
PRESET_MANUAL = "manual (slider)"
#: the threshold presets of the Accuracy page, in display order
PRESETS = (PRESET_STORED, PRESET_BEST, PRESET_ZERO, PRESET_MAX_ESCAPE, PRESET_MANUAL)
_METHOD = {PRESET_BEST: "best_accuracy", PRESET_ZERO: "zero_escape", PRESET_MAX_ESCAPE: "max_escape"}
#: the trainer builds its seed-scheme evaluation pairs with seed + 1, + 2, + 3 for train, val, test
TEST_PAIR_SEED_OFFSET = 3


#: the per-item arrays of a run's embeddings.npz that reject an item whatever the threshold, with the words for it
GATE_REJECTIONS = (("unknown", "UNKNOWN"), ("local_defect", "local defect"), ("patch_defect", "patch evidence"))


def gate_rejected(arrays) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The items a run's gate rejects whatever the threshold, from its embeddings.npz ``arrays`` (a mapping): the
    UNKNOWN ones, the local defects (a part flipped in the fixture included) and the patch evidence, as metrics.json
    counts them. Returns ``(rejected bool (n,), why object (n,): the words of the first that applies, in the order
    of UNKNOWN, local defect, patch evidence; "" for the others)``, or ``(None, None)`` for a run without a gate.

    >>> r, why = gate_rejected({"unknown": np.array([1, 0, 0], bool), "local_defect": np.array([0, 0, 1], bool)})
    >>> r.tolist(), why.tolist()
    ([True, False, True], ['UNKNOWN', '', 'local defect'])
    """
    if "unknown" not in arrays:
        return None, None
    n = len(arrays["unknown"])
    rejected, why = np.zeros(n, bool), np.full(n, "", dtype=object)
    for key, words in reversed(GATE_REJECTIONS):      # the first in the list wins
        if key in arrays:
            hit = np.asarray(arrays[key], bool)
            rejected |= hit
            why[hit] = words
    return rejected, why


def _arrays(scores, labels, split):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    split = np.asarray(split).astype(str)
    if not (scores.shape == labels.shape == split.shape) or scores.ndim != 1:
        raise ValueError(f"scores, labels and split must be 1-D arrays of one length, got shapes "
                         f"{scores.shape}, {labels.shape}, {split.shape}")
    return scores, labels, split


def pct(rate: float, digits: int = 1) -> str:
    """A rate as a percent string: ``0.00625 -> '0.6 %'``; nan -> 'n/a'.

    >>> pct(0.00625), pct(float("nan")), pct(1.0, 0)
    ('0.6 %', 'n/a', '100 %')
    """
    if rate is None or not math.isfinite(rate):
        return "n/a"
    return f"{100 * rate:.{digits}f} %"


# --------------------------------------------------------------------------- thresholds

def preset_threshold(preset: str, scores, labels, split, good_label: str = "0", stored: float | None = None,
                     max_escape: float = 0.0) -> float:
    """The threshold of a preset, chosen on the val split with :func:`metrics.choose_threshold`.

    preset : one of :data:`PRESETS` except :data:`PRESET_MANUAL`. :data:`PRESET_STORED` returns
        ``stored`` (the run's ``metrics.json`` threshold).
    max_escape : the allowed val escape rate of :data:`PRESET_MAX_ESCAPE`, in [0, 1].

    Raises ValueError for an unknown preset, a missing stored threshold, or a val split without
    good or defective items.

    >>> s = [0.5, 1.0, 3.0, 2.0, 4.0, 5.0, 9.0]
    >>> lab = ["0", "0", "0", "3", "3", "3", "3"]
    >>> spl = ["val"] * 6 + ["test"]
    >>> preset_threshold(PRESET_ZERO, s, lab, spl), preset_threshold(PRESET_MAX_ESCAPE, s, lab, spl, max_escape=0.34)
    (1.5, 3.5)
    """
    if preset == PRESET_STORED:
        if stored is None or not math.isfinite(float(stored)):
            raise ValueError("the run has no stored threshold")
        return float(stored)
    if preset not in _METHOD:
        raise ValueError(f"unknown threshold preset {preset!r}; choose one of {', '.join(PRESETS[:-1])}")
    scores, labels, split = _arrays(scores, labels, split)
    val = split == "val"
    return M.choose_threshold(scores[val], labels[val] != str(good_label), _METHOD[preset], float(max_escape))


def slider_range(scores, n_steps: int = 1000) -> tuple[float, float, float]:
    """``(low, high, step)`` for a threshold slider over ``scores``: a round step of about
    ``(max - min) / n_steps`` and bounds on that grid that cover every score with one step to spare.

    >>> slider_range([0.013, 0.4771], n_steps=100)
    (0.005, 0.485, 0.005)
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    lo, hi = (float(s.min()), float(s.max())) if s.size else (0.0, 1.0)
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    raw = span / n_steps
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    low = (math.floor(lo / step) - 1) * step
    high = (math.ceil(hi / step) + 1) * step
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return round(low, digits), round(high, digits), round(step, digits)


# --------------------------------------------------------------------------- the operating point

def operating_point(scores, labels, split, threshold: float, good_label: str = "0", part: str = "test") -> dict:
    """Counts and rates of the items of one split at a threshold.

    Returns a dict: ``n`` (items), ``n_defect``, ``n_good``, ``escapes`` (defects judged good),
    ``overkills`` (goods judged defect), ``detected`` (defects judged defect), ``passed`` (goods
    judged good), ``accuracy``, ``escape_rate``, ``overkill_rate``, ``detection_rate``
    (= 1 - escape_rate), ``threshold``, ``part``. A rate without items is nan.
    """
    scores, labels, split = _arrays(scores, labels, split)
    sel = split == part if part != "all" else np.ones(scores.shape, bool)
    s, defect = scores[sel], labels[sel] != str(good_label)
    judged = s > float(threshold)
    n_def, n_good = int(defect.sum()), int((~defect).sum())
    detected = int(np.sum(defect & judged))
    passed = int(np.sum(~defect & ~judged))
    r = lambda a, b: a / b if b else float("nan")   # noqa: E731
    return {
        "part": part, "threshold": float(threshold), "n": int(sel.sum()), "n_defect": n_def, "n_good": n_good,
        "detected": detected, "escapes": n_def - detected, "passed": passed, "overkills": n_good - passed,
        "accuracy": r(detected + passed, n_def + n_good), "escape_rate": r(n_def - detected, n_def),
        "overkill_rate": r(n_good - passed, n_good), "detection_rate": r(detected, n_def),
    }


def escape_sentence(op: dict) -> str:
    """'3 of 480 defective items passed as good (0.6 %)'."""
    return f"{op['escapes']} of {op['n_defect']} defective items passed as good ({pct(op['escape_rate'])})"


def overkill_sentence(op: dict) -> str:
    """'12 of 240 good items rejected as defective (5.0 %)'."""
    return f"{op['overkills']} of {op['n_good']} good items rejected as defective ({pct(op['overkill_rate'])})"


def where_sentence(loc: dict) -> str:
    """metrics.json ``localisation`` in words: 'for 99.2 % of the 389 defective test items the run catches ...'."""
    return (f"for {pct(loc['share'])} of the {int(loc['caught']):,} defective test items the run catches at its stored "
            "threshold, the strongest evidence (the heat map's cross) lies in the defect's own cell, "
            f"{int(loc['tolerance_px'])} px tolerance.")


# --------------------------------------------------------------------------- camera drift

def drift_rows(check: dict) -> list[dict]:
    """metrics.json ``drift_check`` as display rows: ``change`` (in words), ``goods GOOD``, ``defects caught``
    ("98 of 120 (81.7 %)", "0 of 120 (0.0 %; 120 UNKNOWN)": the run said it cannot judge them), ``held`` (bool) and
    the two shares for colouring (``goods_rate``, ``defects_rate``)."""
    from .drift import WORDS, row_held
    out = []
    for r in check.get("rows", []):
        words = WORDS.get(r["condition"], r["condition"]).format(s=float(r.get("strength", 0)))
        unknown = {k: (f"; {r[k + '_unknown_n']} UNKNOWN" if r.get(k + "_unknown_n") else "")
                   for k in ("goods", "defects")}
        out.append({"change": words,
                    "goods GOOD": f"{r['goods_passed_n']} of {r['n_good']} ({pct(r['goods_passed'])}"
                                  f"{unknown['goods']})",
                    "defects caught": f"{r['defects_caught_n']} of {r['n_defect']} ({pct(r['defects_caught'])}"
                                      f"{unknown['defects']})",
                    "held": bool(r.get("held", row_held(r))), "goods_rate": float(r["goods_passed"]),
                    "defects_rate": float(r["defects_caught"])})
    return out


def drift_sentence(check: dict, preset: str = "") -> str:
    """What the drift check says, in words, with its targets and where the items came from; ``preset`` (the
    run's) decides the advice."""
    t = check.get("targets") or {}
    rows = check.get("rows", [])
    held = sum(r["held"] for r in drift_rows(check))
    short = [r["change"] for r in drift_rows(check) if not r["held"]]
    return (f"{held} of {len(rows)} conditions held: at least {pct(t.get('goods_passed', 0.98), 0)} of the good "
            f"parts judged GOOD and {pct(t.get('defects_caught', 0.95), 0)} of the defective ones caught "
            f"({pct(t.get('defects_caught_blur', 0.90), 0)} when blurred)"
            + (f"; not held: {', '.join(short)}" if short else "") + ". Items: " + str(check.get("items", "?"))
            + ", each change drawn with a seed, as `bench --drift` does; an UNKNOWN verdict (out of focus, too "
            "noisy) counts as not passed, as at the line. A condition that is not held is one to "
            "keep the camera away from (the camera check warns when judged images drift that way)"
            + ("." if preset == "camera" or not short else ", or to train for: the `camera` preset trains with "
               "changes of focus, noise, JPEG and light."))


def not_a_part_rows(check: dict) -> list[dict]:
    """metrics.json ``not_a_part_check`` as display rows, the kinds the check was designed on first: ``input`` (in
    words), ``kind``, ``designed on`` (bool), ``n``, ``GOOD``, ``UNKNOWN``, ``DEFECT``."""
    from .notapart import KIND_WORDS
    out = []
    for part, designed in (("kinds", True), ("held_out", False)):
        for kind, c in (check.get(part) or {}).items():
            if kind != "all":
                out.append({"input": KIND_WORDS.get(kind, kind), "kind": kind, "designed on": designed,
                            "n": c["n"], "GOOD": c["GOOD"], "UNKNOWN": c["UNKNOWN"], "DEFECT": c["DEFECT"]})
    return out


def not_a_part_sentence(check: dict) -> str:
    """The not-a-part check in words: how many inputs that are not the part were judged GOOD (none may be)."""
    passed = [r for r in not_a_part_rows(check) if r["GOOD"]]
    text = (f"{check['good']} of {check['n']} inputs that are not the part (camera faults, flat frames, an empty "
            f"fixture, another part, a photograph, ...) judged GOOD; {check['held_out_good']} of "
            f"{check['held_out_n']} of kinds the check was not designed on (zoomed, half covered, glare, two parts in "
            "one frame, ...)")
    if passed:
        text += ". Judged GOOD: " + ", ".join(f"{r['input']} {r['GOOD']} of {r['n']}" for r in passed)
    if check.get("left_out"):
        from .notapart import KIND_WORDS
        text += (". Left out, since this run found no fixed layout (a surface, whose shifted, turned or blended "
                 "crops are still the surface): " + ", ".join(KIND_WORDS.get(k, k) for k in check["left_out"]))
    return text + ". UNKNOWN and DEFECT both stop such an input; GOOD would pass it."


# --------------------------------------------------------------------------- pairs

def pair_review(emb, labels, split, seed: int, n_per_image: int = 10, cutoff: float = M.PAIR_CUTOFF) -> dict:
    """Pair accuracy and confusion on the seed-scheme test pairs, exactly as the trainer built them.

    The trainer pairs the test items (in row order) with ``make_pairs(labels[test], n_per_image,
    seed=seed + 3)`` and calls a pair "same" when the embedding distance is below ``cutoff``.
    Returns ``{"pair_accuracy", "n_pairs", "same_as_same", "same_as_diff", "diff_as_same",
    "diff_as_diff"}``.
    """
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    test = np.flatnonzero(np.asarray(split).astype(str) == "test")
    ia, ib, y = make_pairs(labels[test], n_per_image, seed=int(seed) + TEST_PAIR_SEED_OFFSET)
    e = emb[test]
    d = np.linalg.norm(e[ia] - e[ib], axis=1)
    return {"pair_accuracy": M.pair_accuracy(d, y, cutoff), "n_pairs": int(y.size),
            **M.pair_confusion(d, y, cutoff)}


# --------------------------------------------------------------------------- per pin address

def per_pin_table(scores, labels, split, threshold: float, good_label: str = "0", part: str = "test"):
    """One row per label of a split (good first, pins in natural order), as a pandas DataFrame.

    Columns: ``label``, ``what`` ('good' / 'pin N'), ``items``, ``caught`` (defects judged defect;
    for the good row: goods passed), ``missed`` (escapes; for the good row: overkills), ``rate``
    (detection rate; for the good row: share of goods passed).
    """
    import pandas as pd
    scores, labels, split = _arrays(scores, labels, split)
    sel = split == part if part != "all" else np.ones(scores.shape, bool)
    lab, judged = labels[sel], scores[sel] > float(threshold)
    names = sorted(set(lab.tolist()), key=lambda x: (x != str(good_label), M.natural_key(x)))
    rows = []
    for name in names:
        m = lab == name
        n = int(m.sum())
        flagged = int(judged[m].sum())
        good = name == str(good_label)
        caught = n - flagged if good else flagged
        rows.append({"label": name, "what": "good" if good else f"pin {name}", "items": n, "caught": caught,
                     "missed": n - caught, "rate": caught / n if n else float("nan")})
    return pd.DataFrame(rows, columns=["label", "what", "items", "caught", "missed", "rate"])


def rate_color(rate: float) -> str:
    """Background colour for a rate: red (0.5 or below) through amber to green (1.0); light gray for nan.

    >>> rate_color(1.0), rate_color(0.5), rate_color(float("nan"))
    ('#b7e4c7', '#f4b6b6', '#eeeeee')
    """
    if rate is None or not math.isfinite(rate):
        return "#eeeeee"
    t = min(1.0, max(0.0, (rate - 0.5) / 0.5))
    stops = [(0.0, (0xF4, 0xB6, 0xB6)), (0.7, (0xFF, 0xE0, 0x99)), (1.0, (0xB7, 0xE4, 0xC7))]
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return "#" + "".join(f"{round(a + f * (b - a)):02x}" for a, b in zip(c0, c1))
    return "#b7e4c7"


# --------------------------------------------------------------------------- escape / overkill lists

def error_items(scores, labels, split, threshold: float, kind: str, good_label: str = "0",
                part: str = "test") -> np.ndarray:
    """Row indices of the escapes (``kind="escape"``) or overkills (``kind="overkill"``) of a split,
    the most confidently wrong first: escapes by rising score, overkills by falling score.

    >>> error_items([0.1, 0.9, 0.2, 0.8], ["3", "0", "3", "0"], ["test"] * 4, 0.5, "escape").tolist()
    [0, 2]
    """
    scores, labels, split = _arrays(scores, labels, split)
    sel = split == part if part != "all" else np.ones(scores.shape, bool)
    defect = labels != str(good_label)
    judged = scores > float(threshold)
    if kind == "escape":
        idx = np.flatnonzero(sel & defect & ~judged)
        return idx[np.argsort(scores[idx], kind="stable")]
    if kind == "overkill":
        idx = np.flatnonzero(sel & ~defect & judged)
        return idx[np.argsort(-scores[idx], kind="stable")]
    raise ValueError(f"kind must be 'escape' or 'overkill', got {kind!r}")


# --------------------------------------------------------------------------- ROC

def _part(scores, labels, split, good_label, part):
    scores, labels, split = _arrays(scores, labels, split)
    sel = split == part if part != "all" else np.ones(scores.shape, bool)
    return scores[sel], labels[sel] != str(good_label)


def roc_points(scores, labels, split, good_label: str = "0", part: str = "test"):
    """``(overkill_rate, detection_rate)`` arrays of the ROC of one split, with judged-defect meaning
    ``score > threshold`` (the curve's points are the exact operating points of every threshold).

    Starts at (0, 0) (threshold above every score) and ends at (1, 1).

    >>> x, y = roc_points([0.1, 0.4, 0.35, 0.8], ["0", "0", "3", "3"], ["test"] * 4)
    >>> x.tolist(), y.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    scores, labels, split = _arrays(scores, labels, split)
    sel = split == part if part != "all" else np.ones(scores.shape, bool)
    s, defect = scores[sel], labels[sel] != str(good_label)
    n_def, n_good = int(defect.sum()), int((~defect).sum())
    if not n_def or not n_good:
        raise ValueError(f"the {part} split needs good and defective items for a ROC curve")
    u, inv = np.unique(s, return_inverse=True)
    d_at = np.bincount(inv, weights=defect, minlength=u.size)[::-1]     # from the highest score down
    g_at = np.bincount(inv, weights=~defect, minlength=u.size)[::-1]
    x = np.concatenate([[0.0], np.cumsum(g_at) / n_good])
    y = np.concatenate([[0.0], np.cumsum(d_at) / n_def])
    return x, y


def roc_figure(scores, labels, split, threshold: float, good_label: str = "0", stored: float | None = None,
               part: str = "test"):
    """Plotly ROC of one split (x: overkill rate, y: detection rate) with the operating point of
    ``threshold`` marked (and the run's ``stored`` threshold, if given, as a hollow marker)."""
    import plotly.graph_objects as go
    x, y = roc_points(scores, labels, split, good_label, part)
    auc = M.auroc(*_part(scores, labels, split, good_label, part))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbbbbb", dash="dot", width=1),
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color="#2E91E5", width=2), name=f"ROC (AUROC {auc:.3f})",
                             hovertemplate="overkill %{x:.1%}<br>detection %{y:.1%}<extra></extra>"))
    if stored is not None and math.isfinite(float(stored)):
        st_op = operating_point(scores, labels, split, stored, good_label, part)
        fig.add_trace(go.Scatter(x=[st_op["overkill_rate"]], y=[st_op["detection_rate"]], mode="markers",
                                 marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(color="#555555", width=2)),
                                 name=f"run's stored threshold {stored:.4g}",
                                 hovertemplate="stored threshold<br>overkill %{x:.1%}<br>detection %{y:.1%}"
                                               "<extra></extra>"))
    op = operating_point(scores, labels, split, threshold, good_label, part)
    fig.add_trace(go.Scatter(x=[op["overkill_rate"]], y=[op["detection_rate"]], mode="markers",
                             marker=dict(size=12, color="#FB0D0D", symbol="circle"),
                             name=f"current threshold {threshold:.4g}",
                             hovertemplate="current threshold<br>overkill %{x:.1%}<br>detection %{y:.1%}"
                                           "<extra></extra>"))
    fig.update_layout(xaxis=dict(title="overkill rate (false reject)", range=[-0.02, 1.02], tickformat=".0%"),
                      yaxis=dict(title="detection rate (1 - escape rate)", range=[-0.02, 1.02], tickformat=".0%"),
                      legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
                      margin=dict(l=10, r=10, t=30, b=10), height=380)
    return fig


# --------------------------------------------------------------------------- confusion matrices

def confusion_figure(counts, row_names, col_names, correct=((0, 0), (1, 1)), x_title: str = "judged",
                     y_title: str = "truth", height: int = 260):
    """An annotated 2 x 2 confusion matrix (plotly heatmap): count and row share in every cell;
    right cells in green, wrong cells in red, their strength by row share.

    counts : 2 x 2 ints, rows = truth, columns = judgement.
    """
    import plotly.graph_objects as go
    c = np.asarray(counts, dtype=np.float64)
    rows = c.sum(axis=1, keepdims=True)
    share = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    ok = np.zeros(c.shape, bool)
    for i, j in correct:
        ok[i, j] = True
    z = np.where(ok, share, -share)                 # green positive, red negative
    text = [[f"<b>{int(c[i, j]):,}</b><br>{100 * share[i, j]:.1f} % of row" for j in range(c.shape[1])]
            for i in range(c.shape[0])]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(col_names), y=list(row_names), text=text, texttemplate="%{text}", textfont=dict(size=15),
        zmin=-1, zmax=1, showscale=False, hoverinfo="skip",
        colorscale=[[0.0, "#e8827f"], [0.5, "#ffffff"], [1.0, "#6cc08b"]], xgap=3, ygap=3))
    fig.update_layout(xaxis=dict(title=x_title, side="top"), yaxis=dict(title=y_title, autorange="reversed"),
                      margin=dict(l=10, r=10, t=50, b=10), height=height)
    return fig


# --------------------------------------------------------------------------- the embedding scatter

def embedding_scatter(xy, labels, split, scores, good_label: str = "0", part: str = "all", method: str = "UMAP",
                      height: int = 620):
    """Plotly scatter of a 2-D projection, one trace per label (pins vivid in :func:`viz.label_colors` colours; the
    good items small, gray and see-through, drawn on top, listed first), hover = label, split, score and row index.

    xy : float (n, 2) in the row order of ``labels``; part : 'all' or a split name.
    Returns ``(fig, trace_rows)``: ``trace_rows[i]`` holds the row indices of trace i, point by point, so a
    selection event (curve_number, point_index) maps back to rows with :func:`selected_rows`.
    """
    import plotly.graph_objects as go

    from .viz import label_colors, label_name
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    split = np.asarray(split).astype(str)
    scores = np.asarray(scores, dtype=np.float64)
    colors = label_colors(labels, good_label)
    keep = np.ones(labels.size, bool) if part == "all" else split == part
    names = sorted(set(labels.tolist()), key=lambda x: (x != str(good_label), M.natural_key(x)))
    fig, trace_rows = go.Figure(), []
    # pins first, the good items last: small, see-through gray dots on top stay visible without hiding the pins
    for name in names[1:] + names[:1] if names and names[0] == str(good_label) else names:
        rows = np.flatnonzero(keep & (labels == name))
        if rows.size == 0:
            continue
        good = name == str(good_label)
        fig.add_trace(go.Scattergl(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=label_name(name, good_label), text=split[rows],
            customdata=np.column_stack([rows, scores[rows]]), legendrank=1 if good else 2 + names.index(name),
            marker=dict(color=colors[name], size=4 if good else 7, opacity=0.65 if good else 0.85,
                        line=dict(width=0)),
            hovertemplate="<b>%{fullData.name}</b> (label " + name + ")<br>row %{customdata[0]:.0f} · split %{text}"
                          "<br>score %{customdata[1]:.4f}<extra></extra>"))
        trace_rows.append(rows)
    unit = "embedding units" if method.upper() == "PCA" else "arbitrary units"
    fig.update_layout(height=height, dragmode="select", legend=dict(itemsizing="constant", title="label"),
                      xaxis=dict(title=f"{method} 1 ({unit})", zeroline=False),
                      yaxis=dict(title=f"{method} 2 ({unit})", zeroline=False, scaleanchor="x", scaleratio=1),
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig, trace_rows


def selected_rows(points, trace_rows) -> np.ndarray:
    """Row indices of the points of a plotly selection event (sorted, unique).

    points : the ``selection.points`` list of ``st.plotly_chart(on_select=...)``; each point has
    ``curve_number`` and ``point_index`` (or ``point_number``), else ``customdata`` whose first value is the row.

    >>> selected_rows([{"curve_number": 1, "point_index": 0}, {"customdata": [7, 0.2]}], [[4, 5], [9]]).tolist()
    [7, 9]
    """
    out = []
    for p in points or []:
        c = p.get("curve_number")
        i = p.get("point_index", p.get("point_number"))
        if c is not None and i is not None and 0 <= c < len(trace_rows) and 0 <= i < len(trace_rows[c]):
            out.append(int(trace_rows[c][i]))
        elif p.get("customdata") is not None:
            out.append(int(round(float(p["customdata"][0]))))
    return np.unique(np.asarray(out, dtype=np.int64))


def label_counts(labels, rows, good_label: str = "0"):
    """Counts of the labels of ``rows`` (good first, pins in natural order) as a DataFrame: label, what, items.

    >>> label_counts(["0", "10", "2", "2"], [1, 2, 3]).values.tolist()
    [['2', 'pin 2', 2], ['10', 'pin 10', 1]]
    """
    import pandas as pd
    lab = np.asarray(labels).astype(str)[np.asarray(rows, dtype=np.int64)]
    names, counts = np.unique(lab, return_counts=True)
    order = sorted(range(names.size), key=lambda i: (names[i] != str(good_label), M.natural_key(names[i])))
    return pd.DataFrame({"label": [names[i] for i in order],
                         "what": ["good" if names[i] == str(good_label) else f"pin {names[i]}" for i in order],
                         "items": [int(counts[i]) for i in order]}, columns=["label", "what", "items"])


def order_by_label(rows, labels, good_label: str = "0", limit: int | None = None) -> np.ndarray:
    """``rows`` grouped by label (good first, pins in natural order), by row within a label.

    limit : keep at most this many, shared fairly between the labels (round robin: the first row of every
        label, then the second, ...), so that a large selection still shows every label it holds.

    >>> order_by_label([5, 1, 2, 0], ["3", "10", "0", "3", "0", "10"]).tolist()
    [2, 0, 1, 5]
    >>> order_by_label([0, 1, 2, 3, 4, 5], ["0", "0", "0", "0", "7", "7"], limit=3).tolist()
    [0, 1, 4]
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    lab = np.asarray(labels).astype(str)[rows]
    names = sorted(set(lab.tolist()), key=lambda x: (x != str(good_label), M.natural_key(x)))
    rank = {name: i for i, name in enumerate(names)}
    r = np.array([rank[x] for x in lab], dtype=np.int64)
    if limit is not None and rows.size > limit:
        # position of each row within its label; keep the lowest positions (round robin), ties by label rank
        pos = np.empty(rows.size, dtype=np.int64)
        for k in range(len(names)):
            pos[r == k] = np.arange(int((r == k).sum()))
        keep = np.lexsort((r, pos))[:max(0, int(limit))]
        rows, r = rows[keep], r[keep]
    return rows[np.lexsort((rows, r))]
