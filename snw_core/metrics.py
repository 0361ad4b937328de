"""Metrics: pair accuracy, good/defect scoring, thresholds, escape/overkill, ROC, per-pin rates.

Small, pure functions on numpy arrays (numpy and scikit-learn only, no keras, no streamlit).

Conventions
-----------
* Pair labels: :data:`snw_core.pairs.PAIR_SAME` (0) for two items of the same label,
  :data:`snw_core.pairs.PAIR_DIFFERENT` (1) otherwise. A pair is predicted "same" when its distance
  is strictly below the cutoff (0.5 as in the seed study); ``d == cutoff`` is "different".
* Good/defect scores: higher = more defective. An item is judged DEFECT when ``score > threshold``
  (strictly) and GOOD otherwise. ``is_defect`` (bool, shape (n,)) is the ground truth.
* Escape: a defective item judged good (costly). Overkill: a good item judged defective.

>>> import numpy as np
>>> scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 1.0])
>>> is_defect = np.array([False, False, False, True, True, True])
>>> t = choose_threshold(scores, is_defect)
>>> round(t, 2), rates(scores, is_defect, t)["good_defect_accuracy"]
(0.55, 1.0)
"""
from __future__ import annotations

import re
from numbers import Integral, Real

import numpy as np

from .pairs import PAIR_DIFFERENT, PAIR_SAME

__all__ = [
    "PAIR_CUTOFF",
    "THRESHOLD_METHODS",
    "pair_accuracy",
    "pair_confusion",
    "knn_scores",
    "choose_threshold",
    "confusion",
    "rates",
    "roc",
    "auroc",
    "per_label_rates",
    "natural_key",
    "guess_labels",
    "nearest",
    "vote_labels",
    "pin_accuracy",
    "evaluate_embeddings",
    "effective_scores",
    "unknown_rates",
    "unusable_reasons",
    "unusable_note",
    "weak_twin_note",
    "short_budget_note",
    "faulty_data_note",
    "run_notes",
    "run_warnings",
    "doubtful_goods",
    "UNUSABLE_RATE",
]

#: distance below which a pair is predicted "same" (the seed study's binary accuracy)
PAIR_CUTOFF = 0.5
#: the threshold rules :func:`choose_threshold` knows
THRESHOLD_METHODS = ("best_accuracy", "zero_escape", "max_escape")
#: a run that rejects at least this share of the good test items, or passes at least this share of the defective
#: ones, is no better than a coin at one of its two jobs (:func:`unusable_reasons`)
UNUSABLE_RATE = 0.5
#: a run whose twin ranks its test items below this AUROC while its epoch budget cut it short gets a note (the
#: strongly-textured target of docs/real-data.md)
SHORT_BUDGET_AUROC = 0.95
#: the split names :func:`evaluate_embeddings` knows
SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------- validation helpers

def _as_1d_float(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_bool(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.number) and np.all((arr == 0) | (arr == 1)):
        return arr.astype(bool)
    raise ValueError(f"{name} must be boolean (or 0/1), got dtype {arr.dtype}")


def _as_1d_str(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr.astype(str)


def _same_length(**arrays) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("length mismatch: " + ", ".join(f"{k}={v}" for k, v in lengths.items()))


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)


def _as_2d_float(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# --------------------------------------------------------------------------- pair metrics

def _pair_inputs(distances, pair_labels, cutoff):
    d = _as_1d_float(distances, "distances")
    y = np.asarray(pair_labels)
    if y.ndim != 1:
        raise ValueError(f"pair_labels must be a 1-D array, got shape {y.shape}")
    _same_length(distances=d, pair_labels=y)
    if not np.all((y == PAIR_SAME) | (y == PAIR_DIFFERENT)):
        raise ValueError(f"pair_labels must contain only {PAIR_SAME} (same) and {PAIR_DIFFERENT} (different)")
    if not isinstance(cutoff, Real) or not np.isfinite(cutoff):
        raise ValueError(f"cutoff must be a finite number, got {cutoff!r}")
    predicted_same = d < cutoff
    return y == PAIR_SAME, predicted_same


def pair_accuracy(distances, pair_labels, cutoff: float = PAIR_CUTOFF) -> float:
    """Binary accuracy of pair distances against pair labels (the seed study's pair metric).

    distances : float array, shape (n,)
        Embedding distance of each pair.
    pair_labels : int array, shape (n,)
        ``PAIR_SAME`` (0) or ``PAIR_DIFFERENT`` (1).
    cutoff : float
        A pair is predicted same when ``distance < cutoff``; ``distance == cutoff`` is different.

    >>> pair_accuracy([0.1, 0.5, 0.9, 0.2], [0, 0, 1, 1])
    0.5
    """
    true_same, predicted_same = _pair_inputs(distances, pair_labels, cutoff)
    return float(np.mean(true_same == predicted_same))


def pair_confusion(distances, pair_labels, cutoff: float = PAIR_CUTOFF) -> dict:
    """Counts of the pair predictions: ``{"same_as_same", "same_as_diff", "diff_as_same", "diff_as_diff"}``.

    ``same_as_diff`` counts pairs whose true label is same and that were predicted different, etc.
    Inputs as in :func:`pair_accuracy`; values are ints.

    >>> pair_confusion([0.1, 0.5, 0.9, 0.2], [0, 0, 1, 1])
    {'same_as_same': 1, 'same_as_diff': 1, 'diff_as_same': 1, 'diff_as_diff': 1}
    """
    true_same, predicted_same = _pair_inputs(distances, pair_labels, cutoff)
    return {
        "same_as_same": int(np.sum(true_same & predicted_same)),
        "same_as_diff": int(np.sum(true_same & ~predicted_same)),
        "diff_as_same": int(np.sum(~true_same & predicted_same)),
        "diff_as_diff": int(np.sum(~true_same & ~predicted_same)),
    }


# --------------------------------------------------------------------------- nearest neighbours

#: up to this many query x reference x dimension values, neighbours are found by brute force in numpy
_BRUTE_MAX = 4_000_000


def _neighbours(reference, queries, k: int, exclude_self: bool):
    """Distances and indices of the ``min(k, available)`` nearest reference rows, nearest first."""
    reference = _as_2d_float(reference, "reference")
    queries = _as_2d_float(queries, "queries")
    k = _check_k(k)
    if reference.shape[1] != queries.shape[1]:
        raise ValueError(f"reference and queries differ in dimension: {reference.shape[1]} vs {queries.shape[1]}")
    if not exclude_self and queries.shape[0] * reference.size <= _BRUTE_MAX:
        # a few queries (judging one image): plain numpy, no index to build (sklearn costs ~1-2 ms a call)
        kk = min(k, reference.shape[0])
        q, r = queries.astype(np.float64), reference.astype(np.float64)
        d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(axis=2))
        idx = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < d.shape[1] else np.tile(np.arange(kk), (len(d), 1))
        part = np.take_along_axis(d, idx, axis=1)
        order = np.argsort(part, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(idx, order, axis=1)
    from sklearn.neighbors import NearestNeighbors  # lazy: sklearn takes ~1 s to import

    nn = NearestNeighbors(metric="euclidean").fit(reference)
    if not exclude_self:
        return nn.kneighbors(queries, n_neighbors=min(k, reference.shape[0]))
    if queries.shape != reference.shape or not np.array_equal(queries, reference):
        raise ValueError("exclude_self=True needs queries to be the reference itself")
    if reference.shape[0] < 2:
        raise ValueError("exclude_self=True needs at least 2 reference rows (each row's only neighbour is itself)")
    # X=None: scikit-learn skips each row's own index (robust to exact duplicates)
    return nn.kneighbors(None, n_neighbors=min(k, reference.shape[0] - 1))


def knn_scores(reference, queries, k: int = 3, exclude_self: bool = False) -> np.ndarray:
    """Mean Euclidean distance of each query to its k nearest reference rows (higher = more defective).

    reference : float array, shape (m, d)
        Reference embeddings (the good items of the train split).
    queries : float array, shape (n, d)
        Embeddings to score.
    k : int >= 1
        Neighbours to average; more than the reference holds -> all of them.
    exclude_self : bool
        Set when ``queries`` is the reference itself: each row's zero match with itself is skipped
        (then at most m - 1 neighbours). Needs ``queries`` equal to ``reference``.

    Returns float64 array, shape (n,).

    >>> knn_scores([[0.0], [1.0], [3.0]], [[0.0], [10.0]], k=2)
    array([0.5, 8. ])
    >>> knn_scores([[0.0], [1.0], [3.0]], [[0.0], [1.0], [3.0]], k=1, exclude_self=True)
    array([1., 1., 2.])
    """
    dist, _ = _neighbours(reference, queries, k, exclude_self)
    return dist.mean(axis=1).astype(np.float64)


#: a train item filed as good is left out of the good references when at least REF_VOTE_SHARE of its REF_VOTE_K
#: nearest other train items (in the embedding) are filed as defects (the audit's vote, docs/audit.md)
REF_VOTE_K, REF_VOTE_SHARE = 10, 0.8
#: ... unless that would leave out more than this share of the train goods: then it is the twin that cannot tell the
#: goods from the defects, not a few labels that are wrong, and every train good stays a reference
REF_VOTE_MAX_SHARE = 0.1


def doubtful_goods(emb, labels, split, good_label: str = "0", k: int = REF_VOTE_K,
                   share: float = REF_VOTE_SHARE, parts=("train",)) -> np.ndarray:
    """The items filed as good that the twin places among defects: at least ``share`` of their ``k`` nearest other
    train items are filed as defects. bool (n,), for the items of the splits in ``parts`` (val items: their nearest
    train items); none when that would leave out more than :data:`REF_VOTE_MAX_SHARE` of the train goods or leave
    fewer than ``k`` of them. A defect filed as good is such an item (the twin puts it with its own kind), and as a
    good reference it passes every defect like it; a good part among the defects passes defects near it.

    >>> emb = [[0.1 * i] for i in range(12)] + [[5.0], [5.1], [5.2], [5.05]]
    >>> lab = ["0"] * 12 + ["3", "3", "3", "0"]               # the last one: a pin-3 defect filed as good
    >>> np.flatnonzero(doubtful_goods(emb, lab, ["train"] * 16, k=3)).tolist()
    [15]
    """
    emb = _as_2d_float(emb, "emb")
    labels = _as_1d_str(labels, "labels")
    split = _as_1d_str(split, "split")
    good = labels == str(good_label)
    out = np.zeros(len(labels), bool)
    train = np.flatnonzero(split == "train")
    if (good[train]).sum() <= k or len(train) <= k:
        return out
    defect_train = ~good[train]
    _, idx = _neighbours(emb[train], emb[train], k, exclude_self=True)
    out[train] = good[train] & (defect_train[idx].mean(axis=1) >= share)
    n_goods = int(good[train].sum())
    if out.sum() > min(n_goods - k, REF_VOTE_MAX_SHARE * n_goods):   # the twin, not the labels: keep them all
        out[:] = False
        return out
    if "train" not in parts:
        out[:] = False
    other = np.flatnonzero(np.isin(split, [p for p in parts if p != "train"]) & good)
    if len(other):
        _, idx = _neighbours(emb[train], emb[other], k, exclude_self=False)
        out[other] = defect_train[idx].mean(axis=1) >= share
    return out


# --------------------------------------------------------------------------- thresholds

def _threshold_table(scores: np.ndarray, is_defect: np.ndarray):
    """Candidate thresholds and the counts they produce, for every way to cut the sorted scores.

    With u the sorted unique scores (length u_n), candidate j (0..u_n) judges the first j unique
    values good: candidate 0 lies below the minimum, candidate j in 1..u_n-1 is the midpoint
    (u[j-1] + u[j]) / 2, candidate u_n lies above the maximum (below/above by half the nearest gap,
    or by 1.0 when all scores are equal). Returns (candidates, goods_passed, escapes), each (u_n + 1,).
    """
    u, inv = np.unique(scores, return_inverse=True)
    n_u = u.size
    defects_at = np.bincount(inv, weights=is_defect, minlength=n_u)
    goods_at = np.bincount(inv, weights=~is_defect, minlength=n_u)
    escapes = np.concatenate([[0], np.cumsum(defects_at)]).astype(np.int64)
    goods_passed = np.concatenate([[0], np.cumsum(goods_at)]).astype(np.int64)
    low_pad = (u[1] - u[0]) / 2 if n_u > 1 else 1.0
    high_pad = (u[-1] - u[-2]) / 2 if n_u > 1 else 1.0
    candidates = np.concatenate([[u[0] - low_pad], (u[:-1] + u[1:]) / 2, [u[-1] + high_pad]])
    return candidates, goods_passed, escapes


def choose_threshold(scores, is_defect, method: str = "best_accuracy", max_escape: float = 0.0) -> float:
    """Choose a score threshold on (validation) items; items with ``score > threshold`` are DEFECT.

    scores : float array, shape (n,)
    is_defect : bool array, shape (n,); needs at least one defect and one good item.
    method : str
        ``"best_accuracy"``: the threshold with the highest accuracy. Candidates are the midpoints
        between consecutive sorted unique scores plus one below the minimum and one above the
        maximum. **Ties**: equally accurate candidates make the same number of errors, so the
        lowest one is returned: it has the fewest escapes (the costly error) for that accuracy.
        ``"zero_escape"``: the largest threshold with no escapes, i.e. the midpoint between the
        lowest defect score and the next lower score (below the minimum if there is none).
        ``"max_escape"``: the largest threshold whose escape rate is <= ``max_escape``; this
        minimises overkill under the escape constraint (``max_escape=0`` equals ``"zero_escape"``).
    max_escape : float in [0, 1]
        The allowed escape rate of ``"max_escape"`` (ignored by the other methods).

    Returns the threshold as a float. Vectorised (sort + cumulative sums), O(n log n).

    >>> s = [0.5, 1.0, 3.0, 2.0, 4.0, 5.0]   # goods: 0.5 1 3, defects: 2 4 5
    >>> d = [False, False, False, True, True, True]
    >>> choose_threshold(s, d), choose_threshold(s, d, "zero_escape")   # 1.5 and 3.5 tie at 5/6
    (1.5, 1.5)
    >>> choose_threshold(s, d, "max_escape", max_escape=1/3)
    3.5
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method {method!r}; choose one of {', '.join(THRESHOLD_METHODS)}")
    scores = _as_1d_float(scores, "scores")
    is_defect = _as_bool(is_defect, "is_defect")
    _same_length(scores=scores, is_defect=is_defect)
    n_defect = int(is_defect.sum())
    n_good = is_defect.size - n_defect
    if n_defect == 0:
        raise ValueError("cannot choose a threshold: no defective items among the given scores (need at least one)")
    if n_good == 0:
        raise ValueError("cannot choose a threshold: no good items among the given scores (need at least one)")
    if method == "max_escape" and (not isinstance(max_escape, Real) or not 0.0 <= max_escape <= 1.0):
        raise ValueError(f"max_escape must be a rate in [0, 1], got {max_escape!r}")

    candidates, goods_passed, escapes = _threshold_table(scores, is_defect)
    if method == "best_accuracy":
        correct = goods_passed + (n_defect - escapes)
        j = int(np.argmax(correct))                 # first (lowest) of the best -> fewest escapes
    else:
        allowed = 0 if method == "zero_escape" else int(np.floor(max_escape * n_defect + 1e-9))
        j = int(np.searchsorted(escapes, allowed, side="right")) - 1   # escapes is non-decreasing
    return float(candidates[j])


# --------------------------------------------------------------------------- good/defect metrics

def _judged(scores, is_defect, threshold):
    scores = _as_1d_float(scores, "scores")
    is_defect = _as_bool(is_defect, "is_defect")
    _same_length(scores=scores, is_defect=is_defect)
    if not isinstance(threshold, Real) or np.isnan(threshold):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    return scores > threshold, is_defect


def confusion(scores, is_defect, threshold: float) -> dict:
    """Good/defect counts at a threshold: ``{"tp", "fn", "fp", "tn"}`` (ints).

    tp: defects judged defect, fn: escapes (defects judged good), fp: overkills (goods judged
    defect), tn: goods passed. An item is judged defect when ``score > threshold``.

    >>> confusion([0.1, 0.5, 0.9], [False, True, True], 0.5)
    {'tp': 1, 'fn': 1, 'fp': 0, 'tn': 1}
    """
    judged, truth = _judged(scores, is_defect, threshold)
    return {
        "tp": int(np.sum(truth & judged)),
        "fn": int(np.sum(truth & ~judged)),
        "fp": int(np.sum(~truth & judged)),
        "tn": int(np.sum(~truth & ~judged)),
    }


def _ratio(num: int, den: int) -> float:
    return float(num / den) if den else float("nan")


def rates(scores, is_defect, threshold: float) -> dict:
    """``{"good_defect_accuracy", "escape_rate", "overkill_rate"}`` at a threshold (floats).

    escape_rate = escapes / defects, overkill_rate = overkills / goods; a rate whose denominator
    is 0 is ``nan``.

    >>> rates([0.1, 0.5, 0.9], [False, True, True], 0.5)
    {'good_defect_accuracy': 0.6666666666666666, 'escape_rate': 0.5, 'overkill_rate': 0.0}
    """
    c = confusion(scores, is_defect, threshold)
    return {
        "good_defect_accuracy": _ratio(c["tp"] + c["tn"], sum(c.values())),
        "escape_rate": _ratio(c["fn"], c["fn"] + c["tp"]),
        "overkill_rate": _ratio(c["fp"], c["fp"] + c["tn"]),
    }


def unusable_reasons(metrics: dict) -> list[str]:
    """Why a finished run cannot be trusted to judge parts, from its ``metrics.json``: an empty list when nothing
    is wrong. A run that rejects at least :data:`UNUSABLE_RATE` of the good test items (its threshold lies below
    the goods: a twin that did not learn, or collapsed) or passes at least as many of the defective ones.

    >>> unusable_reasons({"overkill_rate": 1.0, "escape_rate": 0.0})
    ['rejects 100% of the good test items']
    >>> unusable_reasons({"overkill_rate": 0.02, "escape_rate": 0.01})
    []
    """
    out = []
    for key, what in (("overkill_rate", "rejects {} of the good test items"),
                      ("escape_rate", "passes {} of the defective test items")):
        v = metrics.get(key)
        if isinstance(v, (int, float)) and np.isfinite(v) and v >= UNUSABLE_RATE:
            out.append(what.format(f"{v:.0%}"))
    return out


def unusable_note(metrics: dict) -> str | None:
    """The operator's sentence for a run :func:`unusable_reasons` finds wrong, or None."""
    reasons = unusable_reasons(metrics)
    if not reasons:
        return None
    return ("This run cannot tell good parts from defective ones: it " + " and ".join(reasons) + ". Do not judge parts "
            "with it or take it to the line; train again (another seed, or another preset).")


def weak_twin_note(metrics: dict) -> str | None:
    """The operator's sentence for a run whose twin ranks its test items worse than chance (``auroc`` below 0.5:
    defective items nearer the good references than good ones), or None. Such a run may still judge through the
    gate's local and patch evidence, but its twin's score says nothing.

    >>> weak_twin_note({"auroc": 0.9}) is None
    True
    >>> weak_twin_note({"auroc": 0.17})[:46]
    "The twin's own score ranks the test items wors"
    """
    v = metrics.get("auroc")
    if not isinstance(v, (int, float)) or not np.isfinite(v) or v >= 0.5:
        return None
    return (f"The twin's own score ranks the test items worse than chance (AUROC {v:.2f}): its defective items lie "
            "nearer the good references than the good ones do. The verdicts rest on the gate's local and patch "
            "evidence alone. The defects may be too faint for this surface (look at a sample sheet of the data), or "
            "train again with another seed or preset.")


def short_budget_note(metrics: dict) -> str | None:
    """The operator's sentence for a run its epoch budget cut short, or None: training ended by the budget, not by
    early stopping (the best validation loss came in the last epoch and its weights were kept), and the twin ranks
    the test items below :data:`SHORT_BUDGET_AUROC` (from 0.5: below that :func:`weak_twin_note` speaks). Such a
    twin had not learnt what it could. Runs without early stopping (the seed study) get no note.

    >>> short_budget_note({"auroc": 0.946, "best_epoch": 11, "epochs_run": 11, "best_weights_restored": True})[:45]
    'The twin was still improving when its epoch b'
    >>> short_budget_note({"auroc": 0.946, "best_epoch": 6, "epochs_run": 11, "best_weights_restored": True}) is None
    True
    """
    auroc, best, ran = metrics.get("auroc"), metrics.get("best_epoch"), metrics.get("epochs_run")
    if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in (auroc, best, ran)):
        return None
    if not metrics.get("best_weights_restored") or metrics.get("state", "done") != "done" or best < ran:
        return None
    if not 0.5 <= auroc < SHORT_BUDGET_AUROC:
        return None
    return (f"The twin was still improving when its epoch budget ran out (its best validation loss came in its last "
            f"epoch, epoch {int(ran)}) and ranks the test items at AUROC {auroc:.3f}. Train again with a longer budget, "
            "half as many epochs again (the Train page's Epochs; on the command line --epochs N --plateau-epochs 30): "
            "on a strongly grained surface 15 epochs instead of 10 raised this AUROC to 0.976-0.990 over five seeds "
            "(docs/real-data.md, section 26).")


def faulty_data_note(metrics: dict, run_id: str = "RUN_ID") -> str | None:
    """The operator's sentence for a run whose data held images the gate left out of its limits (metrics.json
    ``gate.images_set_aside``: far from every other image; ``gate.local_set_aside``: val items filed as good that
    differ from the good parts as defects do), or None. The run judges well without them; the data should be fixed.

    >>> faulty_data_note({"gate": {"images_set_aside": 0, "local_set_aside": 0}}) is None
    True
    >>> faulty_data_note({"gate": {"images_set_aside": 2, "local_set_aside": 1}}, "r1")[:60]
    'The training data holds 2 images far from every other image '
    """
    gate = metrics.get("gate") or {}
    images, local = int(gate.get("images_set_aside") or 0), int(gate.get("local_set_aside") or 0)
    if not images and not local:
        return None
    parts = []
    if images:
        parts.append(f"{images} image{'s' if images > 1 else ''} far from every other image (a wrong part, a camera "
                     "fault, an empty fixture?)")
    if local:
        parts.append(f"{local} val item{'s' if local > 1 else ''} filed as good that differ from the good parts as "
                     "defects do (a defect filed as good?)")
    return (f"The training data holds {' and '.join(parts)}. The not-a-part check left them out of its limits; look "
            f"at them on the Audit page (`python -m snw_core audit {run_id}`) and fix the data.")


def run_notes(metrics: dict, run_id: str = "RUN_ID") -> list[str]:
    """The operator's sentences about the run itself, whatever threshold it is judged at: :func:`weak_twin_note`,
    :func:`short_budget_note`, :func:`faulty_data_note` (the report's notes at its top)."""
    metrics = metrics or {}
    return [n for n in (weak_twin_note(metrics), short_budget_note(metrics), faulty_data_note(metrics, run_id)) if n]


def run_warnings(metrics: dict, run_id: str = "RUN_ID") -> list[str]:
    """Every operator's sentence a finished run calls for, as the command line prints them after "WARNING: ":
    :func:`unusable_note` at the stored threshold, then :func:`run_notes` (the pages show each in its own box)."""
    metrics = metrics or {}
    return [n for n in (unusable_note(metrics),) if n] + run_notes(metrics, run_id)


def _roc_inputs(scores, is_defect):
    scores = _as_1d_float(scores, "scores")
    is_defect = _as_bool(is_defect, "is_defect")
    _same_length(scores=scores, is_defect=is_defect)
    return scores, is_defect


def roc(scores, is_defect):
    """ROC of the good/defect score (defect = positive): ``(fpr, tpr, thresholds)``, float arrays.

    The same points as :func:`sklearn.metrics.roc_curve` (``drop_intermediate=True``; tests compare them): each
    point uses ``score >= threshold``, the first threshold is ``inf``. Plain numpy, because importing sklearn
    (with scipy) costs the dashboard's Accuracy page ~2.4 s on its first visit. Needs both classes (ValueError).

    >>> fpr, tpr, thr = roc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    scores, is_defect = _roc_inputs(scores, is_defect)
    if is_defect.all() or not is_defect.any():
        raise ValueError("ROC needs both good and defective items; only one class given")
    order = np.argsort(scores, kind="mergesort")[::-1]
    s, y = scores[order], is_defect[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]     # the last item of each run of equal scores
    tps = np.cumsum(y)[last]
    fps = 1 + last - tps
    thresholds = s[last]
    if fps.size > 2:                                          # drop the points that lie on a straight segment
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def auroc(scores, is_defect) -> float:
    """Area under the ROC of the good/defect score (ties count half, as in ``sklearn.metrics.roc_auc_score``);
    ``nan`` when only one class is present.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    scores, is_defect = _roc_inputs(scores, is_defect)
    if is_defect.all() or not is_defect.any():
        return float("nan")
    fpr, tpr, _ = roc(scores, is_defect)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


# --------------------------------------------------------------------------- per label / pin address

_DIGITS = re.compile(r"(\d+)")


def natural_key(s: str):
    """Sort key comparing the numbers inside strings numerically: ``"NG_2"`` < ``"NG_10"``.

    >>> sorted(["10", "2", "NG_10", "NG_2", "0"], key=natural_key)
    ['0', '2', '10', 'NG_2', 'NG_10']
    """
    s = str(s)
    # re.split with a group alternates text, number, text, ... so positions always compare like types
    parts = tuple(int(p) if i % 2 else p for i, p in enumerate(_DIGITS.split(s)))
    return parts, s       # the raw string breaks ties such as "07" vs "7"


def per_label_rates(labels, judged_defect, good_label: str = "0") -> dict:
    """Per label: detection rate of each defect label, pass rate of the good label.

    labels : str array, shape (n,)
    judged_defect : bool array, shape (n,)
    good_label : str
        For this label the value is the share judged good (passed); for every other label the
        share judged defect. Keys: the good label first, then the others in natural order.

    >>> per_label_rates(["0", "10", "2", "0", "2"], [False, True, False, True, True])
    {'0': 0.5, '2': 0.5, '10': 1.0}
    """
    labels = _as_1d_str(labels, "labels")
    judged = _as_bool(judged_defect, "judged_defect")
    _same_length(labels=labels, judged_defect=judged)
    good_label = str(good_label)
    uniq, inv = np.unique(labels, return_inverse=True)
    counts = np.bincount(inv, minlength=uniq.size)
    flagged = np.bincount(inv, weights=judged, minlength=uniq.size)
    share = flagged / counts
    value = {lab: float(1.0 - r if lab == good_label else r) for lab, r in zip(uniq.tolist(), share)}
    order = sorted(value, key=lambda lab: (lab != good_label, natural_key(lab)))
    return {lab: value[lab] for lab in order}


def guess_labels(ref_emb, ref_labels, queries, k: int = 5, exclude_self: bool = False):
    """Guess each query's label (pin address) by a distance-weighted vote of its k nearest references.

    ref_emb : float array, shape (m, d)
    ref_labels : str array, shape (m,)
    queries : float array, shape (n, d)
    k : int >= 1 (more than the reference holds -> all of them)
    exclude_self : bool
        Set when ``queries`` is ``ref_emb`` itself (each row's own vote is skipped).

    Each neighbour votes with weight ``1 / (distance + 1e-9)``. A tie between labels goes to the
    label of the nearest neighbour among the tied ones.
    Returns ``(guessed, confidence)``: str array (n,) and float64 array (n,), the winner's share of
    the total vote.

    >>> g, c = guess_labels([[0.0], [1.0], [5.0]], ["3", "3", "7"], [[0.5], [4.0]], k=3)
    >>> g.tolist()
    ['3', '7']
    """
    ref_labels = _as_1d_str(ref_labels, "ref_labels")
    if len(ref_labels) != np.asarray(ref_emb).shape[0]:
        raise ValueError(f"length mismatch: ref_emb has {np.asarray(ref_emb).shape[0]} rows, "
                         f"ref_labels {len(ref_labels)}")
    dist, idx = _neighbours(ref_emb, queries, k, exclude_self)
    return vote_labels(dist, idx, *np.unique(ref_labels, return_inverse=True))


def nearest(reference, queries, k: int):
    """Distances and indices (n, min(k, m)) of each query's nearest reference rows, nearest first: the search
    behind :func:`knn_scores` and :func:`guess_labels`, for a caller that needs the neighbours themselves too."""
    return _neighbours(reference, queries, k, exclude_self=False)


def vote_labels(dist, idx, classes, inv):
    """The vote of :func:`guess_labels` from its neighbours (``dist``, ``idx`` as :func:`nearest` gives them) and
    the references' labels as ``np.unique(ref_labels, return_inverse=True)`` gives them (``classes``, ``inv``)."""
    n, kk = idx.shape
    n_cls = classes.size
    neigh_cls = inv[idx]                                         # (n, kk) class index of each neighbour
    flat = (np.arange(n)[:, None] * n_cls + neigh_cls).ravel()
    votes = np.bincount(flat, weights=(1.0 / (dist + 1e-9)).ravel(), minlength=n * n_cls).reshape(n, n_cls)
    # rank of each class's nearest neighbour (kk where the class is absent); neighbours come nearest first
    first = np.full((n, n_cls), kk, dtype=np.int64)
    np.minimum.at(first, (np.repeat(np.arange(n), kk), neigh_cls.ravel()), np.tile(np.arange(kk), n))
    best = votes.max(axis=1, keepdims=True)
    tied = np.isclose(votes, best, rtol=1e-9, atol=0.0)
    winner = np.argmin(np.where(tied, first, kk + 1), axis=1)
    confidence = votes[np.arange(n), winner] / votes.sum(axis=1)
    return classes[winner], confidence.astype(np.float64)


def pin_accuracy(true_labels, guessed_labels, good_label: str = "0") -> float:
    """Share of defective items (true label != good_label) whose guessed label is right; nan if none.

    >>> pin_accuracy(["0", "3", "7", "7"], ["3", "3", "7", "2"])
    0.6666666666666666
    """
    true_labels = _as_1d_str(true_labels, "true_labels")
    guessed = _as_1d_str(guessed_labels, "guessed_labels")
    _same_length(true_labels=true_labels, guessed_labels=guessed)
    defect = true_labels != str(good_label)
    if not defect.any():
        return float("nan")
    return float(np.mean(true_labels[defect] == guessed[defect]))


# --------------------------------------------------------------------------- a whole evaluation

def effective_scores(scores, rejected=None) -> np.ndarray:
    """Scores with the items the gate rejects whatever the threshold (UNKNOWN, local defect: bool (n,)) moved
    above every real score, so that thresholds, rates and per-label detection count them as rejected."""
    scores = np.asarray(scores, np.float64)
    if rejected is None or not np.any(rejected):
        return scores
    top = float(np.max(scores[np.isfinite(scores)])) if np.isfinite(scores).any() else 0.0
    return np.where(np.asarray(rejected, bool), top + 1.0, scores)


def unknown_rates(unknown, is_defect) -> dict:
    """``{"unknown_rate", "unknown_rate_good", "unknown_rate_defect"}``: shares judged UNKNOWN of all items,
    of the goods and of the defects (nan without items)."""
    u = np.asarray(unknown, bool)
    d = np.asarray(is_defect, bool)
    return {"unknown_rate": _ratio(int(u.sum()), u.size), "unknown_rate_good": _ratio(int((u & ~d).sum()), int((~d).sum())),
            "unknown_rate_defect": _ratio(int((u & d).sum()), int(d.sum()))}


def evaluate_embeddings(emb, labels, split, good_label: str = "0", k: int = 3,
                        threshold_method: str = "best_accuracy", max_escape: float = 0.0, pin_k: int = 5,
                        unknown=None, local_defect=None, ref_extra=None, val_extra=None, left_out=None):
    """Good/defect and pin-address metrics of an embedding table, as in design.md.

    emb : float array, shape (n, d)
    labels : str array, shape (n,); ``good_label`` marks good items, every other label a pin address.
    split : str array, shape (n,), values ``"train"``, ``"val"``, ``"test"``.
    k : neighbours of :func:`knn_scores`; pin_k : neighbours of :func:`guess_labels`.
    threshold_method, max_escape : see :func:`choose_threshold`.

    Reference = the good train items. Every item gets a score: train goods against the other
    train goods (``exclude_self``), all other items against all train goods. The threshold is
    chosen on val; everything reported comes from test. The pin address of each defective test
    item is guessed from the defective train items (nan when either has none).

    unknown, local_defect : bool (n,), the gate's verdicts (:mod:`snw_core.gate`), or None. An item the gate
    calls UNKNOWN or a local defect is rejected whatever the threshold: an UNKNOWN good counts as overkill,
    an UNKNOWN defect is caught (not an escape). The threshold is chosen on val with that in mind; ``auroc``
    stays the twin score's alone.

    left_out : bool (n,), train goods not used as references (:func:`doubtful_goods`), scored as other items are.
    ref_extra : float (m, d), more good references (e.g. drifted copies of the train goods); val_extra : a dict
    ``{"emb", "is_defect", "forced"}`` of more val items (e.g. drifted copies) that join the val split when the
    threshold is chosen. Test items are scored against the train goods and ``ref_extra`` together.

    Returns ``(metrics, scores)``: ``metrics`` is a dict with the keys
    ``good_defect_accuracy, escape_rate, overkill_rate, auroc, threshold, per_label, pin_accuracy,
    n_train, n_val, n_test`` (plain Python floats/ints, a dict for ``per_label``; a rate without
    items is nan), and with ``unknown`` also ``unknown_rate, unknown_rate_good, unknown_rate_defect,
    local_defect_rate`` (test split); ``scores`` is the float64 twin score array of all n items (shape (n,)).

    >>> emb = np.array([[0.0], [0.1], [0.2], [5.0], [0.05], [5.0], [0.15], [6.0]])
    >>> lab = ["0", "0", "0", "3", "0", "3", "0", "3"]
    >>> spl = ["train", "train", "train", "train", "val", "val", "test", "test"]
    >>> m, s = evaluate_embeddings(emb, lab, spl, k=1, pin_k=1)
    >>> m["good_defect_accuracy"], m["escape_rate"], m["pin_accuracy"]
    (1.0, 0.0, 1.0)
    """
    emb = _as_2d_float(emb, "emb")
    labels = _as_1d_str(labels, "labels")
    split = _as_1d_str(split, "split")
    _same_length(emb=emb, labels=labels, split=split)
    odd = sorted(set(np.unique(split).tolist()) - set(SPLITS))
    if odd:
        raise ValueError(f"split holds unknown values {odd}; expected only {', '.join(SPLITS)}")
    k = _check_k(k)
    pin_k = _check_k(pin_k, "pin_k")
    good = labels == str(good_label)
    train, val, test = (split == s for s in SPLITS)
    if not test.any():
        raise ValueError("the test split is empty")
    ref = train & good
    if left_out is not None:
        ref &= ~np.asarray(left_out, bool)
    if ref.sum() < 2:
        raise ValueError(f"need at least 2 good (label {good_label!r}) train items as the reference, "
                         f"found {int(ref.sum())}")

    scores = np.empty(emb.shape[0], dtype=np.float64)
    scores[ref] = knn_scores(emb[ref], emb[ref], k=k, exclude_self=True)
    refs = emb[ref] if ref_extra is None or len(ref_extra) == 0 else np.concatenate([emb[ref], np.asarray(ref_extra)])
    scores[~ref] = knn_scores(refs, emb[~ref], k=k)                # never empty: test is not train
    forced = None
    if unknown is not None or local_defect is not None:
        forced = np.zeros(len(scores), bool)
        for a in (unknown, local_defect):
            if a is not None:
                forced |= np.asarray(a, bool)
    eff = effective_scores(scores, forced)
    val_scores, val_defect = eff[val], ~good[val]
    if val_extra is not None and len(val_extra["emb"]):
        extra = knn_scores(refs, np.asarray(val_extra["emb"]), k=k)
        extra = np.where(np.asarray(val_extra["forced"], bool), float(np.max(eff)) + 1.0, extra)
        val_scores = np.concatenate([val_scores, extra])
        val_defect = np.concatenate([val_defect, np.asarray(val_extra["is_defect"], bool)])
    try:
        threshold = choose_threshold(val_scores, val_defect, threshold_method, max_escape)
    except ValueError as err:
        raise ValueError(f"val split: {err}") from None
    if forced is not None and forced.any():
        threshold = min(threshold, float(np.max(scores)))     # never between the real scores and the forced ones

    test_rates = rates(eff[test], ~good[test], threshold)
    train_defects = train & ~good
    test_defects = test & ~good
    if train_defects.any() and test_defects.any():
        guessed, _ = guess_labels(emb[train_defects], labels[train_defects], emb[test_defects], k=pin_k)
        pin_acc = pin_accuracy(labels[test_defects], guessed, good_label)
    else:
        pin_acc = float("nan")
    metrics = {
        **test_rates,
        "auroc": auroc(scores[test], ~good[test]),
        "threshold": threshold,
        "per_label": per_label_rates(labels[test], eff[test] > threshold, good_label),
        "pin_accuracy": pin_acc,
        "n_train": int(train.sum()),
        "n_val": int(val.sum()),
        "n_test": int(test.sum()),
    }
    if unknown is not None:
        metrics.update(unknown_rates(np.asarray(unknown, bool)[test], ~good[test]))
    if local_defect is not None:
        ld = np.asarray(local_defect, bool)[test] & ~(scores[test] > threshold)
        if unknown is not None:
            ld &= ~np.asarray(unknown, bool)[test]
        metrics["local_defect_rate"] = _ratio(int(ld.sum()), int(test.sum()))
    return metrics, scores
