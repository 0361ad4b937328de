"""Class-balanced batches of single images for in-batch pairing ("P labels x K images").

Every batch holds K images of every label, so each batch has positive pairs of every label (good items
and every pin address) and negative pairs between all of them, whatever the label counts of the data set
(a line's archive is mostly good items; some pin addresses are rare). Pure numpy; the keras adapter is
built lazily by :func:`balanced_sequence`.

>>> idx = balanced_batch_indices(["0"] * 6 + ["1"] * 3 + ["2"] * 3, batch_size=6, steps=2, seed=0)
>>> [sorted(np.array(["0"] * 6 + ["1"] * 3 + ["2"] * 3)[b].tolist()) for b in idx]
[['0', '0', '1', '1', '2', '2'], ['0', '0', '1', '1', '2', '2']]
"""
from __future__ import annotations

import numpy as np

__all__ = ["per_class", "balanced_batch_indices", "balanced_sequence"]


def per_class(batch_size: int, n_classes: int) -> int:
    """K, the images per label in a batch: ``batch_size // n_classes``, at least 2 (one positive pair).

    >>> per_class(52, 13), per_class(52, 25), per_class(8, 13)
    (4, 2, 2)
    """
    return max(2, int(batch_size) // max(1, int(n_classes)))


def balanced_batch_indices(labels, batch_size: int, steps: int, seed=0) -> list[np.ndarray]:
    """``steps`` batches of item indices, each with K = :func:`per_class` items of every label.

    labels : array (n,) of class labels (any comparable values)
    Items of a label are drawn without replacement from a shuffled pool that is reshuffled when it runs
    out, so over an epoch every item is used about equally often. A label with fewer than K items
    repeats items inside a batch (a zero-distance positive pair, harmless). ``seed`` may be a
    ``numpy.random.Generator``. Returns a list of int64 arrays of length K * n_labels.
    """
    labels = np.asarray(labels)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    classes = np.unique(labels)
    k = per_class(batch_size, classes.size)
    members = [np.flatnonzero(labels == c) for c in classes]
    pools = [rng.permutation(m) for m in members]
    ptr = [0] * classes.size
    out = []
    for _ in range(int(steps)):
        parts = []
        for j, m in enumerate(members):
            take = []
            need = k
            while need:
                if ptr[j] >= pools[j].size:
                    pools[j], ptr[j] = rng.permutation(m), 0
                got = pools[j][ptr[j]:ptr[j] + need]
                ptr[j] += got.size
                need -= got.size
                take.append(got)
            parts.append(np.concatenate(take))
        batch = np.concatenate(parts)
        out.append(batch[rng.permutation(batch.size)].astype(np.int64))
    return out


def balanced_sequence(images: np.ndarray, targets: np.ndarray, batch_size: int, seed: int = 0,
                      augment: str = "none", mirror: dict | None = None, augment_noise: float = 0.0):
    """A ``keras.utils.PyDataset`` of class-balanced batches ``(images[b], targets[b])``, new batches each epoch.

    One epoch has ``ceil(n / (K * n_labels))`` batches, i.e. about one pass over the images. ``augment``
    (:mod:`snw_core.augment`) changes every image of a batch afresh, seeded by (seed, epoch, batch); ``mirror``
    (:func:`snw_core.mirror.mirror_maps`) flips images and moves their labels with them, seeded the same way, and
    an epoch then has :data:`snw_core.mirror.EPOCH_FACTOR` times the batches: there are more different images to see.
    """
    import keras

    targets = np.asarray(targets)
    n_cls = np.unique(targets).size
    real_batch = per_class(batch_size, n_cls) * n_cls
    steps = max(1, int(np.ceil(targets.size / real_batch)))
    if mirror:
        from .mirror import EPOCH_FACTOR
        steps *= EPOCH_FACTOR
    rng = np.random.default_rng(seed)

    class BalancedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.batches = balanced_batch_indices(targets, batch_size, steps, rng)
            self.epoch = 0

        def __len__(self):
            return steps

        def __getitem__(self, i):
            b = self.batches[i]
            x = images[b]
            y = targets[b]
            if augment != "none":
                from .augment import augment as apply
                x = apply(augment, x, np.random.default_rng([seed, self.epoch, i]), augment_noise)
            if mirror:
                from .mirror import flip_batch
                x, y = flip_batch(x, y, mirror, np.random.default_rng([seed, self.epoch, i, 7]))
            return x.astype(np.float32), y

        def on_epoch_end(self):
            self.epoch += 1
            self.batches = balanced_batch_indices(targets, batch_size, steps, rng)

    return BalancedBatches()
