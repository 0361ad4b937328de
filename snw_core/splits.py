"""Seeded, stratified train/val/test split.

>>> s = stratified_split(["0"] * 10 + ["1"] * 10, (0.6, 0.2, 0.2), seed=0)
>>> sorted((k, int((s == k).sum())) for k in SPLITS)
[('test', 4), ('train', 12), ('val', 4)]
"""
from __future__ import annotations

import numpy as np

__all__ = ["SPLITS", "DEFAULT_FRACTIONS", "stratified_split", "validate_fractions"]

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


def validate_fractions(fractions) -> tuple[float, float, float]:
    """Check that (train, val, test) fractions are positive and sum to 1."""
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(not (0 < x < 1) for x in f) or abs(sum(f) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three numbers in (0, 1) summing to 1 (train, val, test); got {fractions}")
    return f


def stratified_split(labels, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> np.ndarray:
    """Assign every item to 'train', 'val' or 'test', separately within each label.

    labels : array of str, shape (n,)
    fractions : (train, val, test), each in (0, 1), summing to 1
    seed : int, seed of the shuffle

    Returns a str array of shape (n,). Within a label of m items, val gets round(m * f_val) and test
    round(m * f_test) items, but each of the three splits gets at least one item when m >= 3, so that a
    rare pin address still shows up in training and in the test. Raises ValueError when a split would be
    empty overall.
    """
    f_train, f_val, f_test = validate_fractions(fractions)
    labels = np.asarray(labels).astype(str)
    if labels.size == 0:
        raise ValueError("cannot split an empty data set")
    rng = np.random.default_rng(seed)
    out = np.empty(labels.shape[0], dtype=object)
    for lab in np.unique(labels):           # a loop over labels (a dozen), not over items
        idx = np.flatnonzero(labels == lab)
        idx = idx[rng.permutation(idx.size)]
        m = idx.size
        n_val = int(round(m * f_val))
        n_test = int(round(m * f_test))
        if m >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
            n_val = min(n_val, m - 2)
            n_test = min(n_test, m - 1 - n_val)
        else:
            n_val, n_test = 0, (1 if m == 2 else 0)
        out[idx[:n_test]] = "test"
        out[idx[n_test:n_test + n_val]] = "val"
        out[idx[n_test + n_val:]] = "train"
    out = out.astype(str)
    empty = [s for s in SPLITS if not (out == s).any()]
    if empty:
        raise ValueError(f"the split {fractions} of {labels.size} items leaves {', '.join(empty)} empty; "
                         "use more data or larger fractions")
    return out
