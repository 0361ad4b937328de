"""Local scoring on the twin's own features: a memory bank of good patches (PatchCore-style).

The twin's embedding is one vector per image, trained to tell labels apart; on a random texture (gravel,
grain) it overfits to its train images and separates goods from defects poorly (AUROC 0.74 on the strong
real-photo texture). Its last convolution already describes every 4 x 4 px neighbourhood: a defect is a
neighbourhood unlike any seen on a good part. So every position's feature vector of the train goods goes into a
memory bank (a coreset of at most ``BANK_SIZE`` of them, :func:`coreset`), and an image's **patch score** is the largest,
over its positions, of the distance to the nearest bank vector (Roth et al., "Towards Total Recall in Industrial
Anomaly Detection", 2022, without the pretrained backbone: the twin is the feature extractor). The patch map,
scaled up to the image, shows where.

An item is DEFECT when its patch score is above ``threshold`` as well as when its twin score is. The
threshold is chosen together with the twin's on the val split (:func:`choose_patch_threshold`): the one that
gives the best val accuracy, and none at all (infinity) where the patch score does not help, so on data where
the twin alone is right nothing changes. Numpy only at judging time; the line bundle repeats it.

Where the threshold is not used the bank can still be kept, for the heat map (where the gate's pixel comparison
alone finds too few of the val defects: :func:`snw_core.train.patch_location`): ``scale`` (the patch score above which a
good part's patch evidence would count as unusual, chosen on val goods as the gate chooses its pixel evidence's:
:func:`location_scale`) puts the patch map beside the pixel comparison, and each verdict's location comes from the
one whose peak is the more unusual. On a random texture the pixel comparison with the most similar good parts
points at grain more often than at the defect; the patch map does not (docs/real-data.md, section 11).

>>> bank = PatchBank.fit(features[train_goods], seed=0)     # doctest: +SKIP   features (n, fh, fw, c)
>>> s, maps = bank.score(features)                           # doctest: +SKIP   (n,), (n, fh, fw)
"""
from __future__ import annotations

import numpy as np

__all__ = ["PatchBank", "PATCH_FILE", "PATCH_LAYER", "BANK_SIZE", "LOCATION_BANK_SIZE", "PATCH_REASON",
           "choose_patch_threshold",
           "coreset", "feature_layer", "location_scale", "upsample"]

PATCH_FILE = "patches.npz"
#: the conv twin's layer whose output is the patch feature (its last convolution, at 1/4 resolution)
PATCH_LAYER = "conv3_1"
PATCH_REASON = "a neighbourhood unlike any on the good parts (patch evidence)"
#: most bank vectors kept (a coreset): bounds memory and the time of one judgement
BANK_SIZE = 6000
#: the coreset is chosen from a seeded pool of at most this many times BANK_SIZE good patches
CORESET_POOL = 4
#: the smallest gain of val accuracy for which the patch evidence is used at all
MIN_GAIN = 0.005
#: vectors of a bank kept only to place the heat map (a coreset of the fitted bank): the location needs only the
#: most unusual block, and on the real-photo sets 750 to 6,000 vectors placed the same defects
LOCATION_BANK_SIZE = 1000
#: positions scored against the bank at a time (x :data:`BANK_SIZE` float32: about 390 MB)
SCORE_ROWS = 1 << 14


def feature_layer(embedder) -> str | None:
    """The name of the embedder's patch-feature layer, or None (the dense twin has none)."""
    names = {layer.name for layer in embedder.layers}
    return PATCH_LAYER if PATCH_LAYER in names else None


class PatchBank:
    """bank : float32 (m, c), good train patches; threshold : patch score above which an item is DEFECT
    (inf = never); grid : (fh, fw) of the feature map."""

    def __init__(self, bank, threshold: float, grid, scale: float = float("nan"), places_weak: bool = False):
        self.bank = np.asarray(bank, np.float32)
        self.threshold = float(threshold)
        self.scale = float(scale)      # the heat map's unit where the threshold is not used (nan: none)
        #: the patch map places every verdict whose pixel evidence stays within the good parts' (the pixel
        #: comparison is blind on most val defects: :func:`snw_core.train.patch_location`)
        self.places_weak = bool(places_weak)
        self.grid = tuple(int(v) for v in grid)
        self._bsq = np.sum(self.bank * self.bank, axis=1)
        self._bt2 = np.ascontiguousarray(-2.0 * self.bank.T)

    @classmethod
    def fit(cls, good_features, seed: int = 0, size: int = BANK_SIZE):
        """good_features : float (n, fh, fw, c) of the train goods. The bank is a coreset of them
        (:func:`coreset`): the vectors that cover all good patches best, not a random share of them."""
        f = np.asarray(good_features, np.float32)
        flat = f.reshape(-1, f.shape[-1])
        rng = np.random.default_rng([seed, 31337])
        if len(flat) > CORESET_POOL * size:        # bounds the coreset's time: a seeded pool to choose from
            flat = flat[np.sort(rng.choice(len(flat), size=CORESET_POOL * size, replace=False))]
        keep = np.sort(coreset(flat, size, rng))
        return cls(flat[keep], np.inf, f.shape[1:3])

    def score(self, features, batch: int = 64):
        """Patch scores (n,) and patch maps (n, fh, fw) of features (n, fh, fw, c). At most ``batch`` images,
        and at most :data:`SCORE_ROWS` positions, at a time: the (positions x bank) temporary of large images
        grew to gigabytes."""
        f = np.asarray(features, np.float32)
        n = len(f)
        maps = np.empty((n,) + self.grid, np.float64)
        batch = max(1, min(batch, SCORE_ROWS // max(1, int(np.prod(self.grid)))))
        for i in range(0, n, batch):                  # float32: one judgement stays a few ms
            q = f[i:i + batch].reshape(-1, f.shape[-1])
            # |q - b|^2 = |q|^2 + min over b of (|b|^2 - 2 q.b): one (positions x bank) temporary, not four
            m = q @ self._bt2
            m += self._bsq
            d2 = m.min(1) + np.sum(q * q, 1)
            maps[i:i + batch] = np.sqrt(np.maximum(d2, 0.0)).reshape(-1, *self.grid)
        return maps.reshape(n, -1).max(1), maps

    def arrays(self) -> dict:
        return {"bank": self.bank, "threshold": np.array([self.threshold]), "grid": np.array(self.grid, np.int64),
                "scale": np.array([self.scale]), "places_weak": np.array([self.places_weak])}

    @classmethod
    def from_arrays(cls, a: dict):
        scale = float(a["scale"][0]) if "scale" in a else float("nan")       # a bank saved before it had one
        weak = bool(a["places_weak"][0]) if "places_weak" in a else False
        return cls(a["bank"], float(a["threshold"][0]), a["grid"], scale, weak)

    def for_location(self, val_good_features, seed: int = 0) -> "PatchBank":
        """A bank for the heat map alone: a coreset of :data:`LOCATION_BANK_SIZE` of this bank's vectors (a sixth of
        the time per image), no threshold, and its ``scale`` from the val goods' features (n, fh, fw, c)."""
        keep = np.sort(coreset(self.bank, LOCATION_BANK_SIZE, np.random.default_rng([seed, 7919])))
        small = PatchBank(self.bank[keep], np.inf, self.grid)
        small.scale = location_scale(small.score(val_good_features)[0])
        return small

    def location_unit(self) -> float:
        """What the patch map is divided by before it is set beside the pixel evidence: the threshold where it is
        used, else ``scale``; nan when neither (the map then places nothing)."""
        if np.isfinite(self.threshold) and self.threshold > 0:
            return self.threshold
        return self.scale if np.isfinite(self.scale) and self.scale > 0 else float("nan")

    def save(self, path) -> None:
        from .fsutil import atomic_write_npz
        atomic_write_npz(path, self.arrays())

    @classmethod
    def load(cls, path):
        from .fsutil import read_npz
        return cls.from_arrays(read_npz(path))


def coreset(x, size: int, rng) -> np.ndarray:
    """Indices of ``size`` rows of x (m, c) chosen greedily, each the row farthest from those chosen so far
    (k-center, as PatchCore subsamples its memory bank): every row of x then lies close to a chosen one.
    Starts at a random row of ``rng``. All rows when m <= size."""
    x = np.asarray(x, np.float32)
    m = len(x)
    if m <= size:
        return np.arange(m)
    sq = np.sum(x * x, axis=1)
    first = int(rng.integers(m))
    chosen = np.empty(size, np.int64)
    chosen[0] = first
    nearest = sq + sq[first] - 2.0 * (x @ x[first])
    for i in range(1, size):
        j = int(np.argmax(nearest))
        chosen[i] = j
        np.minimum(nearest, sq + sq[j] - 2.0 * (x @ x[j]), out=nearest)
    return chosen


def location_scale(good_scores) -> float:
    """``scale`` from the patch scores of good val items: the gate's rule for its pixel evidence (its
    :data:`~snw_core.gate.QUANTILE` quantile times :data:`~snw_core.gate.MARGIN`), so that the two maps' peaks are
    measured in the same unit."""
    from .gate import MARGIN, QUANTILE
    g = np.asarray(good_scores, np.float64)
    return MARGIN * float(np.quantile(g, QUANTILE)) if g.size else float("nan")


def upsample(maps, image_shape) -> np.ndarray:
    """Patch maps (n, fh, fw) -> (n, h, w) by repeating each cell (nearest), cropped to the image."""
    maps = np.asarray(maps)
    h, w = image_shape
    ry, rx = -(-h // maps.shape[1]), -(-w // maps.shape[2])
    return np.repeat(np.repeat(maps, ry, axis=1), rx, axis=2)[:, :h, :w]


def choose_patch_threshold(patch_val, twin_val, is_defect_val, forced_val, threshold_method: str = "best_accuracy",
                           max_escape: float = 0.0):
    """The patch threshold (or inf) that, with the twin's threshold chosen by the same rule given it, gives
    the best val accuracy; returns ``(patch_threshold, twin_threshold, val_accuracy)``.

    Candidates: infinity (no patch evidence) and the val goods' patch-score quantiles 0.5 .. 1.0. A candidate
    must beat infinity's val accuracy by at least ``MIN_GAIN`` of the val items (and 2 items): where the twin
    alone is all but right, a gain of an item or two on val is chance and costs on test.
    """
    from .metrics import choose_threshold, effective_scores, rates

    patch_val = np.asarray(patch_val, np.float64)
    d = np.asarray(is_defect_val, bool)
    forced = np.asarray(forced_val, bool)

    def evaluate(tp):
        f = forced | (patch_val > tp)
        eff = effective_scores(twin_val, f)
        t = choose_threshold(eff, d, threshold_method, max_escape)
        t = min(t, float(np.max(twin_val)))
        return rates(eff, d, t)["good_defect_accuracy"], t

    best_acc, best_t = evaluate(np.inf)
    best = (np.inf, best_t, best_acc)
    goods = patch_val[~d]
    if goods.size == 0:
        return best
    gain = max(MIN_GAIN, 2.0 / len(d))
    for q in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0):
        tp = float(np.quantile(goods, q))
        acc, t = evaluate(tp)
        if acc >= best_acc + gain - 1e-12 and acc > best[2]:
            best = (tp, t, acc)
    return best
