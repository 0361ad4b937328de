"""Registration: put every image back where the taught part sits before it is judged.

A line camera and its fixture move: a part 2 px off or turned by 3 degrees is still a good part, but the twin
learnt the parts where the generator (or the line) put them, and reads a displaced part, or the strip of
unknown pixels a displacement brings in at the border, as a defect (``bench --drift``). Inspection systems
align to a taught template before they inspect; so does a run, where the data lets it:

* **Pose.** Every image is compared with the train goods' mean image (each image with its light ramp removed
  and standardised, then blurred by ``SIGMA`` px) at every integer shift up to ``MARGIN`` px and every angle of
  ``ANGLES``; the best normalised correlation, refined to a fraction of a pixel and a degree by a parabola
  through its neighbours, is the image's ``pose`` (``dy``, ``dx``, ``angle``): where its part sits relative
  to the taught position.
* **Correction.** A pose beyond the dead band (half a pixel, ``ANGLE_DEADBAND`` degrees) is undone: an integer
  shift (no resampling) when the angle is inside the dead band, a rotation and shift otherwise, resampled by
  cubic convolution (:func:`~snw_core.imageops.cubic_sample`): a bilinear resampling smooths the part like a slight
  blur, which the twin reads as a difference from the good parts.
  Pixels that have no source in the image (the strip a shift brings in, the corners of a rotation) are
  unknown; they are filled from the most similar good reference (matched on the known pixels, its grey levels
  mapped to the image's light: gain, offset and a linear ramp fitted on the known pixels), so the twin sees a
  plausible part, not a smeared edge or a step where the light changes across the image. The filled pixels are
  another part's, not this one's: the local evidence leaves them out (:meth:`Registration.unknown_pixels`); a
  good part's edge there differs from the model of the good parts where they never differ, and a part shifted
  2 px was rejected for it.
* **Orientation.** A connector looks almost the same flipped top to bottom or turned round; a small key notch
  tells them apart, under grain and JPEG too small for a difference image to find. A linear classifier
  (logistic regression on the registered, standardised pixels) learns the train parts as they sit against the
  same parts flipped and turned round; its cut lies midway between the highest score of any val part as it sits
  and the lowest of any val part flipped or turned round (at the highest as it sits where the two overlap): a
  camera's drift moves both towards the cut, and a cut at the edge of the parts as they sit called a shifted or
  blurred good part flipped. It is used only where it then catches at least ``FLIP_MIN_CAUGHT`` of the val parts
  flipped or turned (a part that looks the same either way is not checked). A part above the cut is DEFECT
  (:data:`FLIP_REASON`), whatever its score.
* **Only where it works.** :meth:`Registration.fit` builds the template from the train goods and checks it
  on the val goods: each is moved by a known 2 px shift and 3 degree turn, and the pose must recover the
  change to within ``CHECK_SHIFT_PX`` px and ``CHECK_ANGLE_DEG`` degrees for 90 % of them. A set without a
  fixed layout (a random crop of a textured surface) fails the check and is left as it is: the run records
  why.

The run trains its twin on the images as they are, then registers every image before the embeddings, the
not-a-part gate, the patch bank and the threshold are computed, and the judge registers every image it is
given, so the stored results and a live verdict agree. Heat maps and defect locations are mapped back to the
input image's pixels. Judging is numpy only (scikit-learn fits the orientation classifier once, at training);
the line bundle's script repeats these computations (a test checks it).

>>> reg, report = Registration.fit(images, labels, split, good_label="0")   # doctest: +SKIP
>>> registered, pose, applied = reg.apply(images)                          # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from .gate import standardize
from .imageops import bilinear_sample as _sample
from .imageops import cubic_sample
from .imageops import blur_matrix
from .imageops import plane_basis
from .imageops import gaussian_blur as _blur

__all__ = ["Registration", "REGISTER_FILE", "FLIP_REASON", "fit_registration", "no_layout"]

REGISTER_FILE = "register.npz"
#: integer shifts searched each way (px)
MARGIN = 3
#: angles searched (degrees)
ANGLES = np.arange(-5.0, 5.0 + 1e-9, 1.0)
#: blur (px) of both the image and the template before they are compared: noise and JPEG do not move the pose
SIGMA = 0.5
#: the template is rotated at this many times the resolution, so every angle is equally smooth
UPSAMPLE = 4
#: poses inside these are left alone (no resampling of a part that sits where the taught ones do)
SHIFT_DEADBAND = 0.5
ANGLE_DEADBAND = 1.0
#: good references kept for filling unknown pixels
MAX_REFERENCES = 256
#: the pose search compares at most this many bytes of image windows at a time
ESTIMATE_BYTES = 1 << 28
#: images above this many pixels (128 x 128) take the pose search that copies no windows
#: (:meth:`Registration._estimate_large`); smaller ones keep the window copies, whose poses every measured run has
LARGE_PIXELS = 1 << 14
#: the reliability check: a known change of CHECK_SHIFT px and CHECK_ANGLE degrees on the val goods
CHECK_SHIFT, CHECK_ANGLE = 2.0, 3.0
CHECK_SHIFT_PX, CHECK_ANGLE_DEG = 1.0, 1.5
CHECK_QUANTILE = 0.9
CHECK_ITEMS = 200
#: the orientation check: a part flipped top to bottom or turned round in the fixture
FLIP_REASON = "the part sits flipped or turned round in the fixture"
#: it is used only where it catches at least this share of the val parts flipped (above every val part as taught)
FLIP_MIN_CAUGHT = 0.8
#: train parts it learns from (each also flipped and turned round)
FLIP_TRAIN_ITEMS = 1000


def _deplane(images, basis=None) -> np.ndarray:
    """Images minus their least-squares plane (a light ramp), divided by their spread + 1: float64 (n, h, w)."""
    x = np.asarray(images, np.float64)
    n, h, w = x.shape
    a, pinv = basis if basis is not None else plane_basis(h, w)
    flat = x.reshape(n, -1)
    r = flat - (flat @ pinv.T) @ a.T
    return (r / (r.std(axis=1, keepdims=True) + 1.0)).reshape(n, h, w)


def _source(pose: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of the corrected image comes from in the input: (sy, sx), each (n, h, w).

    pose (n, 3): the applied (dy, dx, angle): the part sits dy, dx px and angle degrees from the taught pose."""
    h, w = shape
    p = np.asarray(pose, np.float64)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.deg2rad(-p[:, 2])[:, None, None]
    dy, dx = yy[None] - cy + p[:, 0, None, None], xx[None] - cx + p[:, 1, None, None]
    return cy + np.cos(a) * dy - np.sin(a) * dx, cx + np.sin(a) * dy + np.cos(a) * dx


def _known(sy, sx, shape) -> np.ndarray:
    """bool (n, h, w): the corrected pixels whose source (:func:`_source`) lies inside the input image."""
    h, w = shape
    return (sy > -0.01) & (sy < h - 0.99) & (sx > -0.01) & (sx < w - 0.99)


def _turn(x: np.ndarray, angles) -> np.ndarray:
    """Float images (n, h, w) turned by ``angles`` degrees about their centre (the part's own turn), bilinear."""
    z = np.zeros((len(x), 3))
    z[:, 2] = -np.asarray(angles, np.float64)       # the source of a part turned by +a is the inverse turn
    sy, sx = _source(z, x.shape[1:])
    return _sample(x, sy, sx)


def _window_sums(v, hh: int, ww: int) -> np.ndarray:
    """Sums of v (n, h, w) over its (hh, ww) windows at every shift, from running sums: (n, h - hh + 1, w - ww + 1)."""
    n, h, w = v.shape
    c = np.zeros((n, h + 1, w + 1))
    c[:, 1:, 1:] = v.cumsum(1).cumsum(2)
    k, j = h - hh + 1, w - ww + 1
    return c[:, hh:, ww:] - c[:, :k, ww:] - c[:, hh:, :j] + c[:, :k, :j]


def _parabola(lo, c, hi):
    den = lo - 2 * c + hi
    safe = np.where(np.abs(den) > 1e-12, den, 1.0)
    return np.where(np.abs(den) > 1e-12, 0.5 * (lo - hi) / safe, 0.0).clip(-0.5, 0.5)


def fill_light(ref_z, v, known, plane) -> np.ndarray:
    """The grey levels of the unknown pixels (``~known``) of a flat image ``v`` (h*w,) from a standardised reference
    ``ref_z`` (h*w,): the reference's gain and offset and a linear ramp across the image (``plane``, the basis of
    :func:`~snw_core.imageops.plane_basis`), fitted (least squares) on the known pixels. A light gradient over the
    part continues into the filled strip instead of stopping at a step (a step there is a local difference the part
    does not have)."""
    basis = np.concatenate([np.asarray(ref_z)[:, None], plane], 1)
    coef = np.linalg.lstsq(basis[known], v[known], rcond=None)[0]
    return basis[~known] @ coef


class Registration:
    """The fitted template and references. templates : float64 (A, P) the template at every angle of
    ``angles``, cropped by ``MARGIN`` px, zero mean, unit norm; references : uint8 (m, h, w) good train
    images that fill unknown pixels."""

    def __init__(self, templates, angles, references, flip=None):
        self.templates = np.asarray(templates, np.float64)
        self.angles = np.asarray(angles, np.float64)
        #: the orientation check: (weights (h*w,), bias, cut) or None where it is not used
        self.flip = None if flip is None else (np.asarray(flip[0], np.float64), float(flip[1]), float(flip[2]))
        self.references = np.asarray(references, np.uint8)
        self.image_shape = tuple(self.references.shape[1:])
        self._ref_z = standardize(self.references)
        self._ref_sq = np.sum(self._ref_z ** 2, axis=1)
        self._basis = plane_basis(*self.image_shape)
        self._placed = self._tsum = None         # the large images' pose search's placed templates, built once

    # ------------------------------------------------------------------ fitting
    @classmethod
    def build(cls, goods, seed: int = 0, max_references: int = MAX_REFERENCES):
        """The template from good images uint8 (n, h, w) (their mean after :func:`_deplane`)."""
        goods = np.asarray(goods)
        n, h, w = goods.shape
        if h <= 2 * MARGIN + 2 or w <= 2 * MARGIN + 2:
            raise ValueError(f"images of {h} x {w} px are too small to register")
        t = _deplane(goods).mean(0)
        u = UPSAMPLE
        ys = np.clip((np.arange(h * u) + 0.5) / u - 0.5, 0, h - 1)
        xs = np.clip((np.arange(w * u) + 0.5) / u - 0.5, 0, w - 1)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        up = _sample(t[None], yy[None], xx[None])[0]
        turned = _turn(np.repeat(up[None], len(ANGLES), 0), ANGLES)
        turned = turned.reshape(len(ANGLES), h, u, w, u).mean(axis=(2, 4))
        crop = _blur(turned, SIGMA)[:, MARGIN:h - MARGIN, MARGIN:w - MARGIN].reshape(len(ANGLES), -1)
        crop = crop - crop.mean(1, keepdims=True)
        crop /= np.linalg.norm(crop, axis=1, keepdims=True) + 1e-12
        rng = np.random.default_rng([seed, 4099])
        keep = np.sort(rng.choice(n, min(n, max_references), replace=False))
        return cls(crop, ANGLES, goods[keep])

    @classmethod
    def fit(cls, images, labels, split, good_label: str = "0", seed: int = 0):
        """Build on the train goods; check on the val goods (train goods without val). Returns
        ``(registration or None, report)``; the report (JSON-friendly) says whether it is used and why."""
        images = np.asarray(images)
        labels, split = np.asarray(labels).astype(str), np.asarray(split).astype(str)
        good = labels == str(good_label)
        tr = good & (split == "train")
        if tr.sum() < 2:
            return None, {"used": False, "reason": "fewer than 2 good train items"}
        try:
            reg = cls.build(images[tr], seed=seed)
        except ValueError as e:
            return None, {"used": False, "reason": str(e)}
        check = good & (split == "val")
        if not check.any():
            check = tr
        rng = np.random.default_rng([seed, 4111])
        idx = np.flatnonzero(check)
        idx = np.sort(rng.choice(idx, min(len(idx), CHECK_ITEMS), replace=False))
        x = images[idx]
        m = len(x)
        phi = rng.uniform(0, 2 * np.pi, m)
        known = np.stack([CHECK_SHIFT * np.sin(phi), CHECK_SHIFT * np.cos(phi),
                          CHECK_ANGLE * np.where(rng.random(m) < 0.5, -1.0, 1.0)], 1)
        # move each part by ``known``: the source of the moved image is the inverse of the correction's
        sy, sx = _source(-known, x.shape[1:])
        moved = np.clip(np.rint(_sample(x.astype(np.float64), sy, sx)), 0, 255).astype(np.uint8)
        err = reg.estimate(moved) - reg.estimate(x) - known
        shift_err = float(np.quantile(np.hypot(err[:, 0], err[:, 1]), CHECK_QUANTILE))
        angle_err = float(np.quantile(np.abs(err[:, 2]), CHECK_QUANTILE))
        used = shift_err <= CHECK_SHIFT_PX and angle_err <= CHECK_ANGLE_DEG
        orientation = reg.fit_orientation(images[split == "train"], images[split == "val"], seed) if used else None
        report = {"used": bool(used), "shift_error_px": round(shift_err, 3), "angle_error_deg": round(angle_err, 3),
                  "checked_items": int(m), "references": int(len(reg.references)), "orientation": orientation,
                  "reason": ("a known 2 px shift and 3 degree turn of the val goods is recovered" if used else
                             "the images have no fixed layout to align to (a known 2 px shift and 3 degree turn "
                             "of the val goods is not recovered)")}
        return (reg if used else None), report

    # ------------------------------------------------------------------ orientation
    def fit_orientation(self, train_parts, val_parts, seed: int = 0) -> dict:
        """Learn the parts as they sit against the same parts flipped top to bottom and turned round (train
        items, goods and defects alike); cut and check on the val items. Sets ``self.flip`` (or None) and
        returns what the run records."""
        from sklearn.linear_model import LogisticRegression

        if not len(val_parts) or len(train_parts) < 2:
            self.flip = None
            return {"used": False, "reason": "no val items to check it on"}
        rng = np.random.default_rng([seed, 4127])
        tr = np.asarray(train_parts)
        tr = tr[np.sort(rng.choice(len(tr), min(len(tr), FLIP_TRAIN_ITEMS), replace=False))]

        def turned(x):
            return [x[:, ::-1, :], x[:, ::-1, ::-1]]

        def feats(x):
            return standardize(self.apply(x)[0])

        x = np.concatenate([feats(tr)] + [feats(t) for t in turned(tr)])
        y = np.r_[np.zeros(len(tr)), np.ones(2 * len(tr))]
        clf = LogisticRegression(C=0.1, max_iter=1000).fit(x, y)
        w, b = clf.coef_[0].astype(np.float64), float(clf.intercept_[0])
        as_taught = feats(val_parts) @ w + b
        flipped = [feats(t) @ w + b for t in turned(np.asarray(val_parts))]
        lo, hi = float(as_taught.max()), float(min(s.min() for s in flipped))
        # midway across the gap: a shift's filled strip, blur or noise moves a good part's score up, and a flipped
        # part's down; with no gap, every val part as it sits stays below the cut
        cut = (lo + hi) / 2.0 if hi > lo else lo
        caught = [float(np.mean(s > cut)) for s in flipped]
        used = min(caught) >= FLIP_MIN_CAUGHT
        self.flip = (w, b, cut) if used else None
        return {"used": bool(used), "caught_on_val": [round(c, 4) for c in caught], "cut": round(cut, 4),
                "highest_as_it_sits": round(lo, 4), "lowest_flipped": round(hi, 4),
                "reason": ("flipped and turned-round val parts are told from the val parts as they sit" if used else
                           f"fewer than {FLIP_MIN_CAUGHT:.0%} of the flipped or turned-round val parts are told from "
                           "the val parts as they sit (a part that looks the same either way)")}

    def flipped(self, registered) -> np.ndarray:
        """True for registered images whose part sits flipped top to bottom or turned round (bool (n,))."""
        if self.flip is None:
            return np.zeros(len(registered), bool)
        w, b, cut = self.flip
        return standardize(registered) @ w + b > cut

    # ------------------------------------------------------------------ pose and correction
    def estimate(self, images, chunk: int = 256) -> np.ndarray:
        """The pose of every image, float64 (n, 3): dy, dx (px) and angle (degrees) of its part relative to
        the template."""
        h, w = self.image_shape
        if h * w > LARGE_PIXELS:
            return self._estimate_large(images)
        x = blur_matrix(h, SIGMA) @ _deplane(images, self._basis) @ blur_matrix(w, SIGMA).T   # = _blur(., SIGMA)
        n = len(x)
        m = MARGIN
        offs = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
        chunk = max(1, min(chunk, ESTIMATE_BYTES // (8 * len(offs) * (h - 2 * m) * (w - 2 * m))))
        out = np.zeros((n, 3))
        for s in range(0, n, chunk):
            xb = x[s:s + chunk]
            b = len(xb)
            # every shift in offs (dy major): the windows of a sliding view, copied once
            win = np.lib.stride_tricks.sliding_window_view(xb, (h - 2 * m, w - 2 * m), axis=(1, 2)).reshape(
                b, len(offs), -1)
            win -= win.mean(2, keepdims=True)
            win /= np.linalg.norm(win, axis=2, keepdims=True) + 1e-12
            out[s:s + b] = self._peak((win @ self.templates.T).reshape(b, 2 * m + 1, 2 * m + 1, len(self.angles)))
        return out

    def _estimate_large(self, images) -> np.ndarray:
        """:meth:`estimate` for images above :data:`LARGE_PIXELS`, the same correlations without copying windows:
        each shift's window dotted with the template is a row band of the image (a view) dotted with the template
        placed at the shift's column, and the windows' means and norms come from running sums. Five times faster
        on 256 x 256 px (:meth:`estimate` copied 49 windows of every image); the poses agree with the window copies'
        to 1e-9 px (a test compares them)."""
        images = np.asarray(images)
        h, w = self.image_shape
        m, na = MARGIN, len(self.angles)
        hh, ww, k = h - 2 * m, w - 2 * m, 2 * m + 1
        if self._placed is None:
            # (hh * w, k * na): the template of every angle, placed at every column shift dx (zeros elsewhere)
            t = self.templates.reshape(na, hh, ww)
            placed = np.zeros((k, na, hh, w))
            for dx in range(k):
                placed[dx, :, :, dx:dx + ww] = t
            self._placed = placed.reshape(k * na, hh * w).T.copy()
            self._tsum = self.templates.sum(1)
        n = len(images)
        out = np.zeros((n, 3))
        step = max(1, ESTIMATE_BYTES // (8 * 4 * h * w))
        for s in range(0, n, step):
            x = _blur(_deplane(images[s:s + step], self._basis), SIGMA)
            b = len(x)
            s1, s2 = _window_sums(x, hh, ww), _window_sums(x * x, hh, ww)     # (b, k, k)
            norm = np.sqrt(np.maximum(s2 - s1 * s1 / (hh * ww), 0.0))
            sc = np.empty((b, k, k, na))
            for dy in range(k):
                band = x[:, dy:dy + hh, :].reshape(b, -1)               # a view: whole rows of every image
                dots = (band @ self._placed).reshape(b, k, na)         # [dx, angle]
                sc[:, dy] = (dots - (s1[:, dy] / (hh * ww))[:, :, None] * self._tsum) / (norm[:, dy, :, None] + 1e-12)
            out[s:s + b] = self._peak(sc)
        return out

    def _peak(self, sc) -> np.ndarray:
        """The best pose of correlations sc (b, shift y, shift x, angle), refined by a parabola: (b, 3)."""
        b, k, _, na = sc.shape
        m = (k - 1) // 2
        step = self.angles[1] - self.angles[0] if na > 1 else 0.0
        iy, ix, ia = np.unravel_index(sc.reshape(b, -1).argmax(1), sc.shape[1:])
        r = np.arange(b)
        c = sc[r, iy, ix, ia]
        e = 2 * m
        fy = np.where((iy > 0) & (iy < e), _parabola(sc[r, np.maximum(iy - 1, 0), ix, ia], c,
                                                     sc[r, np.minimum(iy + 1, e), ix, ia]), 0.0)
        fx = np.where((ix > 0) & (ix < e), _parabola(sc[r, iy, np.maximum(ix - 1, 0), ia], c,
                                                     sc[r, iy, np.minimum(ix + 1, e), ia]), 0.0)
        fa = np.where((ia > 0) & (ia < na - 1), _parabola(sc[r, iy, ix, np.maximum(ia - 1, 0)], c,
                                                          sc[r, iy, ix, np.minimum(ia + 1, na - 1)]), 0.0)
        return np.stack([iy - m + fy, ix - m + fx, self.angles[ia] + fa * step], 1)

    def apply(self, images):
        """Registered images: ``(uint8 (n, h, w), pose (n, 3), applied (n, 3))``. ``pose`` is the estimate,
        ``applied`` the correction made (zeros where the pose is inside the dead band)."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        pose = self.estimate(images)
        applied = np.zeros_like(pose)
        turn = np.abs(pose[:, 2]) > ANGLE_DEADBAND
        shift = (np.abs(pose[:, :2]) > SHIFT_DEADBAND).any(1) & ~turn
        applied[shift, :2] = np.rint(pose[shift, :2])
        applied[turn] = pose[turn]
        out = images.copy()
        sel = np.flatnonzero(turn | (applied[:, :2] != 0).any(1))
        if len(sel):
            sy, sx = _source(applied[sel], self.image_shape)
            val = cubic_sample(images[sel].astype(np.float64), sy, sx)
            out[sel] = self._fill(val, _known(sy, sx, self.image_shape))
        return out, pose, applied

    def unknown_pixels(self, applied):
        """bool (n, h, w): the pixels of the registered images that have no source in the input (the strip a shift
        brings in, the corners of a turn) and were filled from a good reference; None where no image was corrected.
        They are a good part's pixels, not this part's: the local evidence leaves them out."""
        p = np.asarray(applied, np.float64)
        sel = np.flatnonzero((p != 0).any(1)) if p.ndim == 2 else np.zeros(0, np.int64)
        if not len(sel):
            return None
        from .imageops import SAMPLE_PIXELS
        out = np.zeros((len(p), *self.image_shape), bool)
        step = max(1, SAMPLE_PIXELS // int(np.prod(self.image_shape)))     # bounded memory on large images
        for s in range(0, len(sel), step):
            part = sel[s:s + step]
            out[part] = ~_known(*_source(p[part], self.image_shape), self.image_shape)
        return out

    def _fill(self, val: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Unknown pixels of float images (n, h, w) from the most similar reference: the one closest on the
        known pixels after both are standardised, its grey levels mapped to the image's light (:func:`fill_light`)."""
        n = len(val)
        v = val.reshape(n, -1).copy()
        k = known.reshape(n, -1)
        for i in np.flatnonzero(~k.all(1)):
            ki = k[i]
            unk = np.flatnonzero(~ki)
            a = v[i, ki]
            am, asd = a.mean(), a.std() + 1.0
            z = np.where(ki, (v[i] - am) / asd, 0.0)
            # sum over the known pixels of (reference - z)^2, without copying the references' known pixels
            d = self._ref_sq - np.sum(self._ref_z[:, unk] ** 2, axis=1) - 2.0 * (self._ref_z @ z)
            j = int(np.argmin(d))
            v[i, unk] = fill_light(self._ref_z[j], v[i], ki, self._basis[0])
        return np.clip(np.rint(v), 0, 255).astype(np.uint8).reshape(val.shape)

    def to_input(self, maps, applied) -> np.ndarray:
        """Maps (n, h, w) of registered images back onto the input images' pixels (0 where they have none)."""
        dtype = np.asarray(maps).dtype if np.asarray(maps).dtype.kind == "f" else np.float64
        maps = np.asarray(maps, np.float64)
        p = np.asarray(applied, np.float64)
        out = maps.copy()
        sel = np.flatnonzero((p != 0).any(1))
        if len(sel):
            h, w = maps.shape[1:]
            cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            a = np.deg2rad(-p[sel, 2])[:, None, None]
            uy, ux = yy[None] - cy, xx[None] - cx
            ry = cy + np.cos(a) * uy + np.sin(a) * ux - p[sel, 0, None, None]
            rx = cx - np.sin(a) * uy + np.cos(a) * ux - p[sel, 1, None, None]
            inside = (ry > -0.5) & (ry < h - 0.5) & (rx > -0.5) & (rx < w - 0.5)
            out[sel] = np.where(inside, _sample(maps[sel], ry, rx), 0.0)
        return out.astype(dtype)

    def point_to_input(self, y, x, applied) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (n,) in registered images -> the input images' (n,), rounded and clipped."""
        p = np.asarray(applied, np.float64)
        h, w = self.image_shape
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        a = np.deg2rad(-p[:, 2])
        dy, dx = np.asarray(y, np.float64) - cy + p[:, 0], np.asarray(x, np.float64) - cx + p[:, 1]
        sy, sx = cy + np.cos(a) * dy - np.sin(a) * dx, cx + np.sin(a) * dy + np.cos(a) * dx
        return (np.clip(np.rint(sy), 0, h - 1).astype(np.int64), np.clip(np.rint(sx), 0, w - 1).astype(np.int64))

    # ------------------------------------------------------------------ storage
    def arrays(self) -> dict:
        out = {"templates": self.templates, "angles": self.angles, "references": self.references}
        if self.flip is not None:
            out.update(flip_weights=self.flip[0], flip_bias_cut=np.array([self.flip[1], self.flip[2]]))
        return out

    @classmethod
    def from_arrays(cls, a: dict):
        flip = (a["flip_weights"], *a["flip_bias_cut"]) if "flip_weights" in a else None
        return cls(a["templates"], a["angles"], a["references"], flip)

    def save(self, path) -> None:
        from .fsutil import atomic_write_npz
        atomic_write_npz(path, self.arrays())

    @classmethod
    def load(cls, path):
        from .fsutil import read_npz
        return cls.from_arrays(read_npz(path))


def no_layout(setting, registration) -> bool:
    """Whether a run's images are a surface without a fixed layout: registration was ``auto`` and found nothing to
    align to. Such a run trains on mirror images, pools its twin's feature map by regions and may leave whether an
    image is this surface to the texture check (:func:`snw_core.train.surface_appearance`)."""
    return str(setting) == "auto" and registration is None


def fit_registration(images, labels, split, good_label: str = "0", setting: str = "auto", seed: int = 0):
    """The run's registration per its ``register`` setting: ``(Registration or None, report)``."""
    if setting == "off":
        return None, {"used": False, "reason": "turned off (register = off)"}
    return Registration.fit(images, labels, split, good_label=good_label, seed=seed)
