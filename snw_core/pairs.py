"""Vectorised pair generation for contrastive training.

The pair label convention is defined here and only here:

>>> PAIR_SAME, PAIR_DIFFERENT
(0, 1)
"""
from __future__ import annotations

import numpy as np

__all__ = ["PAIR_SAME", "PAIR_DIFFERENT", "make_pairs"]

#: pair label of two items with the same label (a positive pair), as in the seed study
PAIR_SAME = 0
#: pair label of two items with different labels (a negative pair)
PAIR_DIFFERENT = 1


def make_pairs(labels, n_per_image: int = 10, seed: int = 0, shuffle: bool = True):
    """Build the seed scheme's pairs: for every item, ``n_per_image`` positives and as many negatives.

    labels : array of str, shape (n,)
        Class of every item (one split only; pairs never cross splits).
    n_per_image : int
        Positive pairs per item (and as many negative pairs).
    seed : int
        Seed of the random partner choice and the shuffle.

    Returns ``(idx_a, idx_b, y)``: int64 arrays of shape (2 * n * n_per_image,) indexing into ``labels``,
    and the int8 pair labels (:data:`PAIR_SAME` or :data:`PAIR_DIFFERENT`).
    A label with a single item is paired with itself for positives (as the seed study's random
    choice could); a data set with a single label has no negatives and is refused.

    >>> a, b, y = make_pairs(["0", "0", "1", "1"], n_per_image=2, seed=0)
    >>> len(y), int((y == PAIR_SAME).sum())
    (16, 8)
    """
    labels = np.asarray(labels).astype(str)
    n = labels.shape[0]
    if n_per_image < 1:
        raise ValueError(f"n_per_image must be >= 1, got {n_per_image}")
    classes, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ValueError("pairs need at least two different labels to make negative pairs; "
                         f"found only {classes.tolist()}")
    rng = np.random.default_rng(seed)
    order = np.argsort(inv, kind="stable")          # item indices grouped by class
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    anchor = np.repeat(np.arange(n), n_per_image)
    cls = inv[anchor]
    # positives: a uniform item of the anchor's class
    pos = order[starts[cls] + (rng.random(anchor.size) * counts[cls]).astype(np.int64)]
    # negatives: a uniform item among all items not of the anchor's class
    # draw r in [0, n - count_c) and skip over the anchor's class block in the grouped order
    r = (rng.random(anchor.size) * (n - counts[cls])).astype(np.int64)
    r = np.where(r >= starts[cls], r + counts[cls], r)
    neg = order[r]
    idx_a = np.concatenate([anchor, anchor])
    idx_b = np.concatenate([pos, neg])
    y = np.concatenate([np.full(anchor.size, PAIR_SAME, np.int8), np.full(anchor.size, PAIR_DIFFERENT, np.int8)])
    if shuffle:
        p = rng.permutation(y.size)
        idx_a, idx_b, y = idx_a[p], idx_b[p], y[p]
    return idx_a.astype(np.int64), idx_b.astype(np.int64), y
