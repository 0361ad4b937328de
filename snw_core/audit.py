"""Audit of a data set through a finished run: wrong labels, near-duplicates, leaks and outliers.

Method (docs/audit.md has the measurements):

* ``label``: the labels of an item's ``k`` nearest neighbours in the run's embedding space (every split; the item
  itself and its near-duplicates left out) vote. When the vote's winner is another label with a share of at
  least ``min_share``, the item is flagged with that ``suggested_label`` and the share as its ``score``. The
  item's own label never votes for itself: only other items' labels are evidence.
  The pictures add evidence that does not come from the twin (which was fitted on the labels being checked):
  each item is compared with its 3 most similar train goods in standardised pixels (itself and its
  near-duplicates never among them), as the gate's heat map does; each defect label's *place* is where its
  clear defects peak. A defect label whose own place shows more difference than good parts show there
  (``veto_z``) keeps its label even when its neighbours say good; an item filed as good with a clear local
  defect at a label's place (``defect_z``) is flagged with that label; an item filed as a defect whose picture
  is as clean as a good part's (``clean_z``) is flagged as good from ``clean_share`` of good neighbours.
  Without items of the good label to compare with, the label check uses the neighbours only (the summary's
  ``label_evidence`` says which).
* ``duplicate``: items whose pictures differ by an RMS of at most ``dup_ratio`` times the data set's median
  nearest-neighbour RMS (grey levels), found in pixel space: candidates from a seeded random projection of the pixels, then
  exact RMS. Pairs are joined into sets.
* ``leak``: a val or test item with a near-duplicate in train (its test result was partly seen in training).
* ``outlier``: an item whose picture is far from everything (:func:`pixel_outlier_z`): the mean pixel RMS to its
  5 nearest items (standardised pictures, each comparison without its 5 % most different pixels), as a robust
  z-score (median and MAD over all items), of at least ``outlier_z``. A defect differs from the parts in a small
  place, which the trimmed comparison leaves out; a wrong part, a camera fault or an empty fixture differs
  everywhere. (Untrimmed, the defects of a set with few of them were far from everything too.)

>>> res = audit_run(RunStore().get("20261129-120000-default-ab12"))   # doctest: +SKIP
>>> res["summary"]["counts"]                                           # doctest: +SKIP
{'label': 108, 'duplicate': 0, 'leak': 0, 'outlier': 0}

Every flag is a dict ``{"row", "label", "kind", "suggested_label", "score", ...}`` where ``row`` is the 0-based
index of the item in the order :func:`snw_core.data.load` returns the run's source (rows left out of the run by
a corrections file keep their source numbers).

See also :mod:`snw_core.corrections` (decisions, applied when training) and :mod:`snw_core.plant` (planted
faults for measuring the audit).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .data import DataError
from .gate import robust_z, standardize
from .imageops import box3

__all__ = ["KINDS", "AuditError", "AuditSettings", "audit_arrays", "audit_run", "cached_audit", "AUDIT_FILE"]

KINDS = ("label", "duplicate", "leak", "outlier")
AUDIT_FILE = "audit.json"
AUDIT_VERSION = 7
#: the outlier statistic leaves out of every comparison of two pictures this share of their pixels, the most
#: different ones (a defect's place)
OUTLIER_TRIM = 0.05
#: an item whose outlier statistic (:func:`pixel_outlier_z`) reaches this is an ``outlier`` (the audit's default
#: ``outlier_z``; the not-a-part gate leaves such train and val images out of its limits). Measured (docs/audit.md):
#: the parts of every set of the benchmarks at most 6.4, planted wrong parts, empty fixtures and upside-down
#: pictures from 48
OUTLIER_Z = 12.0


class AuditError(DataError):
    """An unknown run, a run without embeddings, or data that no longer matches the run; the text is for the user."""


class AuditSettings:
    """The audit's knobs (defaults measured in docs/audit.md).

    k : neighbours that vote on a label (at most the smallest label's count - 1); min_share : share of the votes the suggested label needs;
    pixels : use the pictures as label evidence too; veto_z : robust z of the difference at a defect label's own
    place from which the label is kept against a "good" vote; defect_z : robust z of a clear local defect (the
    whole picture's and at a place) that flags an item filed as good; clean_z, clean_share : below this z (overall
    and at its own place) an item filed as a defect is flagged as good from this share of good neighbours;
    dup_ratio : near-duplicate when the pixel RMS difference is at most this times the median nearest-neighbour
    RMS of the data set; outlier_z : robust z-score of the neighbour distance from which an item is an outlier;
    n_components : dimensions of the random projection that finds pixel candidates; seed : its seed.
    """

    def __init__(self, k: int = 10, min_share: float = 0.8, dup_ratio: float = 0.25, outlier_z: float = OUTLIER_Z,
                 n_components: int = 64, seed: int = 0, pixels: bool = True, defect_z: float = 4.5,
                 clean_z: float = 1.5, clean_share: float = 0.7, veto_z: float = 2.5):
        self.k, self.min_share, self.dup_ratio, self.outlier_z = int(k), float(min_share), float(dup_ratio), float(outlier_z)
        self.n_components, self.seed = int(n_components), int(seed)
        self.pixels, self.defect_z, self.clean_z, self.clean_share = bool(pixels), float(defect_z), float(clean_z), float(clean_share)
        self.veto_z = float(veto_z)
        if not 0.0 < self.clean_share <= 1.0:
            raise ValueError(f"clean_share must be in (0, 1]; got {clean_share}")
        if self.clean_z >= self.defect_z:
            raise ValueError(f"clean_z must be below defect_z; got {clean_z} and {defect_z}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1; got {k}")
        if not 0.0 < self.min_share <= 1.0:
            raise ValueError(f"min_share must be in (0, 1]; got {min_share}")
        if not 0.0 < self.dup_ratio < 1.0:
            raise ValueError(f"dup_ratio must be in (0, 1); got {dup_ratio}")
        if self.outlier_z <= 0:
            raise ValueError(f"outlier_z must be positive; got {outlier_z}")

    def as_dict(self) -> dict:
        return dict(k=self.k, min_share=self.min_share, dup_ratio=self.dup_ratio, outlier_z=self.outlier_z,
                    n_components=self.n_components, seed=self.seed, pixels=self.pixels, defect_z=self.defect_z,
                    clean_z=self.clean_z, clean_share=self.clean_share, veto_z=self.veto_z)


# ------------------------------------------------------------------ pieces

#: the pixel search compares every item with at most this many reference items (a seeded sample beyond it)
MAX_PIXEL_REFS = 4000


def _outlier_z(rms: np.ndarray) -> np.ndarray:
    """The outlier statistic from a sorted pixel-RMS neighbour table (n, m): the mean RMS to the 5 nearest items
    (fewer when m is smaller) as a robust z-score over the items."""
    return robust_z(rms[:, :min(5, rms.shape[1])].mean(axis=1))


def pixel_outlier_z(images, seed: int = 0, n_components: int = 64) -> np.ndarray:
    """The audit's outlier statistic of every image (uint8 or float (n, h, w), n >= 2), float (n,): how far (robust z)
    an image is from its nearest images. The pictures are standardised as the twin sees them (blind to the light);
    two are compared by their RMS difference without the :data:`OUTLIER_TRIM` share of pixels that differ most, so
    a defect, which differs in a small place, is near the good parts, and a wrong part, a camera fault or an empty
    fixture, which differ everywhere, are far from everything (:data:`OUTLIER_Z`; docs/audit.md)."""
    images = np.asarray(images)
    z = standardize(images).reshape(images.shape).astype(np.float32)
    idx, _, x = _pixel_neighbours(z, min(8, len(images) - 1), n_components, seed, max_refs=MAX_PIXEL_REFS)
    return _outlier_z(np.sort(_rms(x, idx, OUTLIER_TRIM), axis=1))


def _rms(x: np.ndarray, cand: np.ndarray, trim: float = 0.0) -> np.ndarray:
    """RMS difference of every row of ``x`` (float32 (n, pixels); grey levels) with its candidates (int (n, m)), over
    all pixels, or without each pair's ``ceil(trim * pixels)`` most different ones."""
    out = np.empty(cand.shape, np.float32)
    p = x.shape[1]
    keep = p - min(p - 1, int(np.ceil(trim * p)))
    step = max(1, min(2048, (1 << 25) // max(1, cand.shape[1] * p)))   # (step, m, pixels) floats at a time
    for i in range(0, x.shape[0], step):
        d = x[i:i + step, None, :] - x[cand[i:i + step]]
        d *= d
        if keep < p:
            d = np.partition(d, keep - 1, axis=-1)[..., :keep]
        out[i:i + step] = np.sqrt(d.mean(axis=-1))
    return out


def _drop_self(idx: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` columns of a neighbour table other than the row's own index (wherever ties put it)."""
    n = idx.shape[0]
    keep = idx != np.arange(n)[:, None]
    extra = keep.sum(axis=1) - m
    for j in range(idx.shape[1] - 1, -1, -1):       # drop surplus columns from the right
        drop = keep[:, j] & (extra > 0)
        keep[drop, j] = False
        extra -= drop
    return idx[keep].reshape(n, m)


def _pixel_neighbours(images: np.ndarray, n_candidates: int, n_components: int, seed: int,
                      max_refs: int = MAX_PIXEL_REFS):
    """Approximate pixel-space nearest neighbours: candidates from a random projection, then exact RMS (grey levels).

    Up to ``max_refs`` items every item is compared with all others; beyond, with a seeded sample of ``max_refs``
    items (then the distances are to the nearest sampled items: a little larger than to the nearest items; they
    serve as the data set's scale and as the outlier statistic, a relative one). Returns ``(idx int64 (n, m),
    rms float32 (n, m), x float32 (n, pixels))``, sorted by RMS, the item itself left out.
    """
    from sklearn.neighbors import NearestNeighbors

    n = images.shape[0]
    x = images.reshape(n, -1).astype(np.float32)
    # a seeded Gaussian random projection keeps distances within a few tens of percent (Johnson-Lindenstrauss):
    # enough to find candidates, whose exact RMS is computed below. (A PCA costs an SVD, seconds on a busy machine.)
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((x.shape[1], n_components)).astype(np.float32) / np.sqrt(n_components)
    z = (x - x.mean(axis=0)) @ proj
    ref = np.arange(n) if n <= max_refs else np.sort(rng.choice(n, size=max_refs, replace=False))
    m = min(n_candidates, ref.size - 1)
    _, j = NearestNeighbors(n_neighbors=m + 1).fit(z[ref]).kneighbors(z)
    idx = _drop_self(ref[j], m)
    rms = _rms(x, idx)
    order = np.argsort(rms, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(rms, order, 1), x


def _groups(pairs: list[tuple[int, int]], n: int) -> np.ndarray:
    """Union-find over ``pairs``: a group id per item (-1 for items in no pair), ids 0.. in order of first row."""
    parent = np.arange(n)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    group = np.full(n, -1, np.int64)
    members = sorted({x for p in pairs for x in p})
    ids: dict[int, int] = {}
    for a in members:
        group[a] = ids.setdefault(find(a), len(ids))
    return group


# ------------------------------------------------------------------ pixel evidence for labels

#: most similar reference goods an item is compared with (as the gate's heat map); candidates found first
LOCAL_K = 3
LOCAL_CANDIDATES = 16
#: at most this many reference goods (a seeded sample beyond): the statistic's spread among goods, and so its
#: z-scores, would otherwise depend on the size of the data set (nearer references in a larger one)
MAX_LOCAL_REFS = 1000


def _standardize(x: np.ndarray) -> np.ndarray:
    """float32 (n, pixels) -> per image zero mean and (almost) unit spread (the gate's and the twin's view)."""
    x = x.astype(np.float32)
    return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1.0)


def _local_evidence(images: np.ndarray, ref: np.ndarray, group: np.ndarray, n_components: int, seed: int):
    """Every item against its ``LOCAL_K`` most similar reference items (indices ``ref``), in standardised pixels,
    the item itself and its near-duplicates (same ``group`` >= 0) never among its references.

    The statistic is the gate's heat map (``snw_core.gate``): per pixel the smallest absolute difference from the
    references, smoothed over 3 x 3 px; ``local`` = its peak over its own upper quartile (+ 0.05), large only where
    the difference is concentrated in one place. References come from a seeded random projection (the
    ``LOCAL_CANDIDATES`` nearest), then exact distances. Returns ``(local (n,), peak_y (n,), peak_x (n,))``.
    """
    from sklearn.neighbors import NearestNeighbors

    n, h, w = images.shape
    z = _standardize(images.reshape(n, -1))
    rng = np.random.default_rng([seed, 1])
    proj = rng.standard_normal((z.shape[1], n_components)).astype(np.float32) / np.sqrt(n_components)
    zp = z @ proj
    m = min(LOCAL_CANDIDATES, ref.size)
    _, j = NearestNeighbors(n_neighbors=m).fit(zp[ref]).kneighbors(zp)
    cand = ref[j]                                                          # (n, m) item indices
    same = (cand == np.arange(n)[:, None]) | ((group[cand] == group[:, None]) & (group[:, None] >= 0))
    local = np.empty(n, np.float32)
    peak = np.empty(n, np.int64)
    rel = np.empty((n, h * w), np.float16)                                 # heat over its upper quartile
    for a in range(0, n, 1024):
        b = min(n, a + 1024)
        d = z[a:b, None, :] - z[cand[a:b]]                                 # (c, m, pixels)
        d2 = np.einsum("cmp,cmp->cm", d, d)
        d2[same[a:b]] = np.inf
        kk = min(LOCAL_K, m)
        nn = np.argsort(d2, axis=1, kind="stable")[:, :kk]
        ok = np.isfinite(np.take_along_axis(d2, nn, 1))                    # fewer usable references: use those
        ok[:, 0] |= ~ok.any(1)
        diff = np.abs(np.take_along_axis(d, nn[:, :, None], 1))
        diff = np.where(ok[:, :, None], diff, np.inf).min(1)
        diff[~np.isfinite(diff)] = 0.0
        heat = box3(diff.reshape(-1, h, w)).reshape(b - a, -1)
        r = heat / (np.quantile(heat, 0.75, axis=1, keepdims=True) + 0.05)
        local[a:b] = r.max(1)
        peak[a:b] = r.argmax(1)
        rel[a:b] = r
    y, x = np.unravel_index(peak, (h, w))
    return local, y, x, rel


def _robust_z_of(v: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Robust z-scores of the rows of ``v`` (n,) or (n, m) against the rows ``ref`` (bool mask): median and MAD."""
    med = np.median(v[ref], axis=0)
    mad = 1.4826 * np.median(np.abs(v[ref] - med), axis=0)
    sd = np.std(v[ref], axis=0)
    scale = np.where(mad > 0, mad, np.where(sd > 0, sd, 1.0))
    return (v - med) / scale


#: a pixel belongs to a defect label's place when at least this share of the label's clear defects peak within 1 px
PLACE_DENSITY = 0.03


def _pixel_label_model(rel, y, x, lab_id, good_id: int, n_labels: int, defect_z: float, shape):
    """From the heat maps to label evidence, fitted on the given labels (robust to a few wrong ones).

    rel : (n, pixels) each item's heat map over its own upper quartile (its maximum is the local evidence);
    y, x : its maximum's place. Returns ``(z (n,), place_z (n, n_labels), info)``:

    * ``z``: log(local evidence) as a robust z-score among the items labelled good (median, MAD): how much more
      concentrated an item's difference from the good parts is than a good part's.
    * each defect label's *place*: the pixels near which its clear defects (``z >= defect_z``) peak: at least
      ``PLACE_DENSITY`` of them and at least 3 within 1 px (so that no single item, a wrongly labelled one say,
      makes a place on its own), and a larger share of this label's than of any other's (places do not
      overlap). A label has no place when it has fewer than 3 clear defects or its place holds fewer than half
      of their peaks (labels that are not places, e.g. defect kinds).
    * ``place_z[:, c]``: the heat map's maximum inside label ``c``'s place, log, as a robust z-score among the
      items labelled good (NaN for good and for labels without a place): is there more difference at that
      place than good parts show there?
    """
    n, g = lab_id.size, lab_id == good_id
    z = _robust_z_of(np.log(np.maximum(rel.max(axis=1).astype(np.float32), 1e-6)), g)
    flat = y * shape[1] + x
    density = np.zeros((n_labels, shape[0] * shape[1]))
    clear = np.zeros(n_labels, np.int64)
    for c in range(n_labels):
        m = (lab_id == c) & (z >= defect_z)
        clear[c] = m.sum()
        if c == good_id or clear[c] < 3:
            continue
        hist = np.bincount(flat[m], minlength=density.shape[1]).reshape(shape).astype(np.float64)
        density[c] = 9.0 * box3(hist[None])[0].ravel()                # its clear peaks within 1 px
    owner = (density / np.maximum(clear, 1)[:, None]).argmax(axis=0)
    place_z = np.full((n, n_labels), np.nan)
    places = {}
    for c in range(n_labels):
        mask = (owner == c) & (density[c] >= max(3.0, PLACE_DENSITY * clear[c]) - 1e-6)
        if not mask.any():
            continue
        m = (lab_id == c) & (z >= defect_z)
        if mask[flat[m]].mean() < 0.5:
            continue
        v = np.log(np.maximum(rel[:, mask].max(axis=1).astype(np.float32), 1e-6))
        place_z[:, c] = _robust_z_of(v, g)
        yy, xx = np.unravel_index(np.flatnonzero(mask), shape)
        places[c] = {"centre": [round(float(yy.mean()), 1), round(float(xx.mean()), 1)], "pixels": int(mask.sum())}
    return z, place_z, {"places": places}


# ------------------------------------------------------------------ the audit

def audit_arrays(emb, labels, split, images, good_label: str = "0", rows=None, settings: AuditSettings | None = None,
                 n_neighbours_shown: int = 6) -> dict:
    """Audit one table of items.

    emb : float (n, d) embeddings; labels, split : str (n,); images : uint8 (n, h, w);
    rows : int (n,) the source row of each item (default 0..n-1).

    Returns ``{"summary": {...}, "flags": [flag, ...]}``, flags sorted by score (highest first), each with
    ``row, label, kind, suggested_label, score, split, reason, neighbours, index`` (the item's position in
    ``emb``) and per kind ``members`` (duplicate),
    ``train_rows`` (leak) or ``z_pixels`` (outlier). ``neighbours``: the nearest items in embedding
    space, ``{"row", "label", "split", "distance"}``.
    """
    from sklearn.neighbors import NearestNeighbors

    s = settings or AuditSettings()
    t0 = time.perf_counter()
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels).astype(str)
    split = np.asarray(split).astype(str)
    images = np.asarray(images)
    n = labels.size
    if not (emb.shape[0] == split.size == images.shape[0] == n):
        raise AuditError(f"the run's embeddings ({emb.shape[0]}), labels ({n}), split ({split.size}) and images "
                         f"({images.shape[0]}) differ in length")
    if n < 3:
        raise AuditError(f"an audit needs at least 3 items; the run has {n}")
    rows = np.arange(n) if rows is None else np.asarray(rows, np.int64)

    # embedding space: neighbours (extra ones to replace near-duplicates, which must not vote). k is capped at the
    # smallest label's count - 1: otherwise a label with few items could never win min_share of the votes
    label_names = sorted(set(labels.tolist()))
    lab_id = np.searchsorted(label_names, labels)
    k_vote = max(1, min(s.k, int(np.bincount(lab_id).min()) - 1))
    kk = min(k_vote + 4, n - 1)
    e_dist, e_idx = NearestNeighbors(n_neighbors=kk + 1).fit(emb).kneighbors(emb)
    t_emb = time.perf_counter() - t0

    # pixel space: near-duplicates and pixel outliers. Duplicate candidates: the pixel search's and the embedding's
    # nearest items (the same picture embeds to the same point), each pair checked by its exact pixel RMS
    n_cand = min(8, n - 1)
    p_idx, p_rms, x = _pixel_neighbours(images, n_cand, s.n_components, s.seed, max_refs=MAX_PIXEL_REFS)
    median_nn = float(np.median(p_rms[:, 0]))
    dup_thr = s.dup_ratio * median_nn
    e_cand = _drop_self(e_idx, kk)
    e_rms = _rms(x, e_cand)
    pairs = set()
    for cand, rms_ in ((p_idx, p_rms), (e_cand, e_rms)):
        ii, jj = np.nonzero(rms_ <= dup_thr)
        pairs |= {(int(min(a, b)), int(max(a, b))) for a, b in zip(ii, cand[ii, jj])}
    pairs = sorted(pairs)
    group = _groups(pairs, n)
    t_pixels = time.perf_counter() - t0 - t_emb
    not_self = e_idx != np.arange(n)[:, None]
    not_dup = ~((group[e_idx] == group[:, None]) & (group[:, None] >= 0))
    usable = not_self & not_dup
    rank = np.cumsum(usable, axis=1)
    vote_mask = usable & (rank <= k_vote)
    nb_lab = lab_id[e_idx]
    counts = np.stack([((nb_lab == c) & vote_mask).sum(axis=1) for c in range(len(label_names))], axis=1)
    n_votes = np.maximum(vote_mask.sum(axis=1), 1)
    winner = counts.argmax(axis=1)
    share = counts[np.arange(n), winner] / n_votes
    disagree = winner != lab_id
    label_flag = disagree & (share >= s.min_share)
    suggested = winner.copy()
    why = np.zeros(n, np.int8)              # 0 the vote, 1 a local defect at a label's place, 2 a clean picture

    # pixel evidence (docs/audit.md): each picture against its most similar train goods, without itself and its
    # near-duplicates. It does not come from the twin, which was fitted on the labels being checked
    good_id = label_names.index(good_label) if good_label in label_names else -1
    ref = np.flatnonzero((lab_id == good_id) & (split == "train"))
    if ref.size < LOCAL_K + 1:
        ref = np.flatnonzero(lab_id == good_id)
    if ref.size > MAX_LOCAL_REFS:
        ref = np.sort(np.random.default_rng([s.seed, 2]).choice(ref, size=MAX_LOCAL_REFS, replace=False))
    pixel_info = None
    if not s.pixels:
        evidence = "neighbours only (pixel evidence switched off)"
    elif good_id < 0 or ref.size < LOCAL_K + 1 or len(label_names) < 2:
        evidence = (f"neighbours only: the pixel evidence needs at least {LOCAL_K + 1} items labelled "
                    f"{good_label!r} to compare with")
    else:
        _, py, px, rel = _local_evidence(images, ref, group, s.n_components, s.seed)
        z_loc, place_z, pixel_info = _pixel_label_model(rel, py, px, lab_id, good_id, len(label_names), s.defect_z,
                                                        images.shape[1:])
        del rel
        ar = np.arange(n)
        pz = np.where(np.isnan(place_z), -np.inf, place_z)
        own_z = pz[ar, lab_id]                                   # -inf for good and for labels without a place
        best = pz.argmax(axis=1)
        best_z = pz[ar, best]
        # a defect label whose own place shows more difference than good parts show there keeps its label: the
        # neighbours' "good" comes from a twin that cannot see this defect, the pixels can; so does one whose
        # picture shows a clear local defect anywhere (a good part's never does; with few items of a label its
        # place is narrow, and a smudge lower on the pin peaks outside it); against another defect label only
        # with a clear local defect at its own place, not at the other's
        veto = label_flag & (((winner == good_id) & ((own_z >= s.veto_z) | (z_loc >= s.defect_z)))
                             | ((winner != good_id) & (own_z >= s.defect_z) & (own_z > pz[ar, winner])))
        label_flag &= ~veto
        # a clear local defect (the whole picture's and at a defect label's place) where its own label's place, if
        # it has one, shows no more than good parts there: that label, whatever the neighbours say (filed as good,
        # or as another defect)
        placed = np.isfinite(place_z).any(axis=0)
        found_defect = ((z_loc >= s.defect_z) & (best_z >= s.defect_z) & (best != lab_id) & (own_z < s.veto_z)
                        & ((lab_id == good_id) | placed[lab_id]) & ~label_flag)
        # filed as a defect, a clean picture (no concentrated difference anywhere, none at its label's place) and
        # most neighbours good: good, with a lower share than the vote alone needs
        good_share = counts[:, good_id] / n_votes
        found_good = ((lab_id != good_id) & (z_loc < s.clean_z) & (own_z < s.clean_z)
                      & (good_share >= s.clean_share) & ~label_flag)
        suggested[found_defect] = best[found_defect]
        suggested[found_good] = good_id
        why[found_defect], why[found_good] = 1, 2
        label_flag |= found_defect | found_good
        evidence = "neighbours and pixels"
        pixel_info.update(vetoed=int(veto.sum()), found_defect=int(found_defect.sum()), found_good=int(found_good.sum()))

    # outliers: in pixels, not in the embedding: the twin maps a picture it has never seen (empty fixture, wrong
    # part) into one of its clusters (docs/audit.md)
    z_pix = pixel_outlier_z(images, s.seed, s.n_components)
    outlier = z_pix >= s.outlier_z

    def neighbours(i):
        out = []
        for j, d in zip(e_idx[i], e_dist[i]):
            if j == i:
                continue
            out.append({"row": int(rows[j]), "label": str(labels[j]), "split": str(split[j]), "distance": round(float(d), 4)})
            if len(out) >= n_neighbours_shown:
                break
        return out

    def base(i, kind, suggested, score, reason):
        return {"row": int(rows[i]), "label": str(labels[i]), "kind": kind, "suggested_label": suggested,
                "score": round(float(score), 4), "split": str(split[i]), "reason": reason, "neighbours": neighbours(i),
                "index": int(i)}

    flags = []
    for i in np.flatnonzero(label_flag):
        sug = int(suggested[i])
        c = int(counts[i, sug])
        vote = (f"{c} of its {int(n_votes[i])} nearest other items are labelled {str(label_names[sug])!r}; "
                f"{int(counts[i, lab_id[i]])} share its label {str(labels[i])!r}")
        if why[i] == 1:
            score = min(1.0, float(best_z[i]) / (2 * s.defect_z))
            reason = (f"its picture differs from the most similar good parts where label {str(label_names[sug])!r} "
                      f"defects are, more than good parts do there (robust z {best_z[i]:.1f}); {vote}")
        elif why[i] == 2:
            score = float(good_share[i])
            reason = (f"{vote}, and its picture differs from the most similar good parts no more than good parts do "
                      f"(robust z {z_loc[i]:.1f}), also where label {str(labels[i])!r} defects are")
        else:
            score, reason = share[i], vote
        f = base(i, "label", label_names[sug], score, reason)
        if pixel_info is not None:
            f["pixels"] = {"z": round(float(z_loc[i]), 2), "peak": [int(py[i]), int(px[i])],
                           "own_place_z": None if not np.isfinite(own_z[i]) else round(float(own_z[i]), 2)}
        flags.append(f)
    nearest_dup = {}
    for a, b in pairs:
        d = float(np.sqrt(((images[a].astype(np.float32) - images[b]) ** 2).mean()))
        for x, y in ((a, b), (b, a)):
            if x not in nearest_dup or d < nearest_dup[x][1]:
                nearest_dup[x] = (y, d)
    for g in range(int(group.max()) + 1 if pairs else 0):
        members = np.flatnonzero(group == g)
        train_members = [int(rows[m]) for m in members if split[m] == "train"]
        for i in members:
            d = nearest_dup[int(i)][1]
            score = max(0.0, 1.0 - d / median_nn)
            others = [int(rows[m]) for m in members if m != i]
            f = base(i, "duplicate", None, score, f"the same picture as row(s) {', '.join(map(str, others))} "
                                                  f"(RMS difference {d:.2f} grey levels; distinct items differ by "
                                                  f"{median_nn:.1f} at the median)")
            f.update(members=[int(rows[m]) for m in members], group=int(g), rms=round(d, 3))
            if len({labels[m] for m in members}) > 1:
                f["reason"] += "; their labels differ: " + ", ".join(sorted({str(labels[m]) for m in members}))
            flags.append(f)
            if split[i] in ("val", "test") and train_members:
                f = base(i, "leak", None, score, f"a {split[i]} item whose near-duplicate(s) {', '.join(map(str, train_members))} "
                                                f"are in train: its result on {split[i]} is not independent")
                f.update(train_rows=train_members, group=int(g), rms=round(d, 3))
                flags.append(f)
    for i in np.flatnonzero(outlier):
        z = float(z_pix[i])
        f = base(i, "outlier", None, min(1.0, z / (2 * s.outlier_z)),
                 f"its picture is far from every other item's (robust z {z:.1f} of the pixel distance to its 5 "
                 f"nearest items, all over the picture; flagged from {s.outlier_z:g}): a wrong part, camera fault or "
                 f"empty fixture?")
        f.update(z_pixels=round(z, 2))
        flags.append(f)
    flags.sort(key=lambda f: (-f["score"], KINDS.index(f["kind"]), f["row"]))

    held = np.isin(split, ("val", "test"))
    tr = split == "train"
    summary = {
        "n": int(n), "counts": {k: sum(f["kind"] == k for f in flags) for k in KINDS},
        "label_disagreement": {"train": float(disagree[tr].mean()) if tr.any() else None,
                               "held_out": float(disagree[held].mean()) if held.any() else None},
        "k_vote": int(k_vote), "median_nn_rms": round(median_nn, 3), "duplicate_rms_threshold": round(dup_thr, 3),
        "label_evidence": evidence, "pixels": _pixel_summary(pixel_info, label_names, int(ref.size)),
        "settings": s.as_dict(),
        "seconds": {"embedding": round(t_emb, 3), "pixels": round(t_pixels, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    summary["note"] = _memorisation_note(summary["label_disagreement"], int(tr.sum()), int(held.sum()))
    return {"summary": summary, "flags": flags}


def _pixel_summary(info: dict | None, label_names: list, n_refs: int) -> dict | None:
    """What the pixel evidence found, JSON-friendly: each defect label's place (centre, size), the counts."""
    if info is None:
        return None
    return {"references": n_refs, "places": {str(label_names[c]): p for c, p in info["places"].items()},
            "vetoed": info["vetoed"], "found_defect": info["found_defect"], "found_good": info["found_good"]}


def _memorisation_note(dis: dict, n_train: int, n_held: int) -> str | None:
    """A warning when train items agree with their neighbours much more often than held-out items: the twin
    may have absorbed wrong train labels, so wrong labels in train are under-reported."""
    tr, ho = dis.get("train"), dis.get("held_out")
    if tr is None or ho is None or n_held * ho < 10:
        return None
    if tr < 0.5 * ho:
        return (f"Train items disagree with their neighbours less often ({tr:.1%}) than val/test items ({ho:.1%}): "
                "the network may have learnt some wrong train labels, so wrong labels in train can be missed. "
                "Train a run with fewer epochs or early stopping and audit that one.")
    return None


# ------------------------------------------------------------------ runs

def _run_inputs(run):
    """(config, embeddings dict, source rows, images) of a finished run, or AuditError."""
    from .data import DataError, load
    from .embed import load_embeddings

    if not run.path.is_dir():
        raise AuditError(f"There is no run '{run.id}'.")
    cfg = run.config()
    npz = run.file("embeddings.npz")
    if not cfg or not npz.exists():
        raise AuditError(f"Run '{run.id}' has no embeddings (embeddings.npz is written when training ends); "
                         f"its state is {run.state()}. Audit a finished run.")
    z = load_embeddings(npz)
    data_cfg = cfg.get("data", {})
    try:
        ds = load(str(data_cfg.get("source", "")), good_label=data_cfg.get("good_label", "0"))
    except DataError as e:
        raise AuditError(f"The data of run '{run.id}' cannot be loaded, so its images cannot be audited: {e}") from None
    from .corrections import run_rows
    if not cfg.get("corrections") and data_cfg.get("content_hash") and ds.content_hash != data_cfg["content_hash"]:
        raise AuditError(f"The data behind '{data_cfg.get('source')}' changed since run '{run.id}' was trained (content "
                         f"hash {ds.content_hash[:12]}..., the run used {str(data_cfg['content_hash'])[:12]}...), so "
                         "its rows no longer match the run's embeddings. Audit a run trained on the current data.")
    rows = run_rows(cfg, ds)
    if rows.size != z["labels"].size:
        raise AuditError(f"Run '{run.id}' has {z['labels'].size} embeddings but its data source "
                         f"'{data_cfg.get('source')}' gives {rows.size} items; the data changed since the run.")
    return cfg, z, rows, ds.images[rows]


def _cache_key(run, s: AuditSettings) -> dict:
    st = run.file("embeddings.npz").stat()
    return {"version": AUDIT_VERSION, "embeddings": [st.st_size, st.st_mtime_ns], "settings": s.as_dict()}


def cached_audit(run, settings: AuditSettings | None = None) -> dict | None:
    """The audit stored in the run folder when it is still valid for these settings, else None."""
    s = settings or AuditSettings()
    try:
        got = json.loads(run.file(AUDIT_FILE).read_text())
        return got if got.get("key") == _cache_key(run, s) else None
    except (OSError, ValueError):
        return None


def audit_run(run, settings: AuditSettings | None = None, use_cache: bool = True) -> dict:
    """Audit a finished run (all splits); the result is stored in the run folder (``audit.json``) and reused
    while the embeddings and settings are unchanged. Raises :class:`AuditError` for a run without embeddings."""
    from .fsutil import atomic_write_json

    s = settings or AuditSettings()
    if use_cache and run.file("embeddings.npz").exists():
        got = cached_audit(run, s)
        if got is not None:
            return got
    cfg, z, rows, images = _run_inputs(run)
    res = audit_arrays(z["embeddings"], z["labels"], z["split"], images,
                       good_label=cfg.get("data", {}).get("good_label", "0"), rows=rows, settings=s)
    res["summary"]["run_id"] = run.id
    res["summary"]["source"] = cfg.get("data", {}).get("source")
    res["summary"]["content_hash"] = (cfg.get("corrections") or {}).get("source_content_hash") or \
        cfg.get("data", {}).get("content_hash")
    res["key"] = _cache_key(run, s)
    atomic_write_json(run.file(AUDIT_FILE), res)
    return res


# ------------------------------------------------------------------ command line

def add_cli(sub) -> None:
    """``audit RUN_ID [--runs-dir DIR] [--json] [--corrections-out FILE]``."""
    p = sub.add_parser("audit", help="flag wrong labels, duplicates, leaks and outliers of a finished run's data")
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None, help="run store folder (default: runs/ or $SNW_RUNS_DIR)")
    p.add_argument("--json", action="store_true", help="one JSON object per flag on stdout")
    p.add_argument("--corrections-out", default=None,
                   help="write every label suggestion as a corrections file (review it, or train with it as is)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when the run folder holds an audit")


def cli(a) -> int:
    """The ``audit`` command: flags on stdout (a table, or JSON lines), a summary on stderr. Exit 2 on bad input."""
    import sys

    from .runs import RunStore
    run = RunStore(a.runs_dir).get(a.run_id)
    if a.corrections_out and Path(a.corrections_out).is_dir():
        raise AuditError(f"--corrections-out '{a.corrections_out}' is a folder; give a file name (.csv).")
    res = audit_run(run, use_cache=not a.no_cache)
    flags = res["flags"]
    if a.corrections_out:
        from .corrections import from_flags, write_corrections
        from .data import load
        cfg = run.config()
        src = load(cfg["data"]["source"], good_label=cfg["data"].get("good_label", "0"))
        out = write_corrections(a.corrections_out, from_flags(flags, src.labels), src.source, src.content_hash)
        print(f"corrections: {out}", file=sys.stderr)
    if a.json:
        for f in flags:
            print(json.dumps(f))
    else:
        for f in flags:
            print(f"{f['row']}\t{f['kind']}\t{f['label']}\t{f['suggested_label'] or ''}\t{f['score']:.3f}\t{f['reason']}")
    summ = res["summary"]
    print(f"audit of {run.id}: {summ['n']} items, " + ", ".join(f"{v} {k}" for k, v in summ["counts"].items())
          + f" ({summ['seconds']['total']:.2f} s)", file=sys.stderr)
    if summ.get("label_evidence"):
        print("label evidence: " + summ["label_evidence"], file=sys.stderr)
    if summ.get("note"):
        print("note: " + summ["note"], file=sys.stderr)
    return 0
