"""Class-balanced batches for in-batch pairing."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core.sampling import balanced_batch_indices, per_class


def test_every_batch_has_k_of_every_label():
    labels = np.array(["0"] * 50 + [str(k) for k in range(1, 13) for _ in range(7)])
    batches = balanced_batch_indices(labels, batch_size=52, steps=10, seed=0)
    assert len(batches) == 10
    for b in batches:
        assert b.dtype == np.int64 and b.size == 52
        lab, counts = np.unique(labels[b], return_counts=True)
        assert lab.size == 13 and set(counts.tolist()) == {4}


def test_items_are_used_evenly_and_repeatably():
    labels = np.repeat(np.arange(4), [40, 8, 8, 8])
    a = balanced_batch_indices(labels, batch_size=16, steps=20, seed=3)
    b = balanced_batch_indices(labels, batch_size=16, steps=20, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    used = np.bincount(np.concatenate(a), minlength=labels.size)
    # 20 batches x 4 per label: class 0 (40 items) twice each; classes 1-3 (8 items) ten times each
    assert set(used[:40].tolist()) == {2}
    assert set(used[40:].tolist()) == {10}


def test_rare_label_repeats_and_k_is_at_least_two():
    labels = np.array(["0"] * 10 + ["7"])
    assert per_class(3, 2) == 2
    (batch,) = balanced_batch_indices(labels, batch_size=3, steps=1, seed=0)
    assert sorted(labels[batch].tolist()) == ["0", "0", "7", "7"]
    assert (batch == 10).sum() == 2


@pytest.mark.parametrize("batch_size,n_cls,k", [(52, 13, 4), (52, 25, 2), (130, 13, 10), (2, 13, 2)])
def test_per_class(batch_size, n_cls, k):
    assert per_class(batch_size, n_cls) == k
