"""The checks around the twin: "is this the part at all?" (UNKNOWN) and "where does it differ?" (heat map).

A distance-to-good score only separates the classes the twin was trained on; an input that is not the
part (a camera fault, an empty fixture, another part type, an inverted or blurred image) lands anywhere in
the embedding space, often near the goods. Two pixel-space checks, fitted on the run's own train split and
thresholded on its val split, guard the verdict:

* **Appearance** (UNKNOWN): a probabilistic-PCA model of the train images (goods and defects: both are "the
  part"), each blurred by ``APPEARANCE_SIGMA`` px, its light ramp removed and standardised (:func:`appearance_view`;
  older runs: standardised only). Two statistics: the Mahalanobis distance inside the top ``K``
  principal components (``maha``: mean of ``c_k^2 / lambda_k``) and the energy outside them relative to the
  train images' (``residual``); their mean, divided by its val threshold (the 99.9th percentile of the val
  items times ``margin``), is ``appearance``. An image whose appearance is above 1, or that has almost no
  contrast (``std < min_std``) or is far less sharp than any train image (``sharpness < min_sharp``, a
  blurred lens), or noisier than the run was found to judge (``relative_noise > max_noise``, set by the noise
  guard of training, :func:`snw_core.train.noise_guard`; 0 = not checked), is UNKNOWN. Standardisation makes the
  check blind to brightness and contrast (the twin is too); what it sees is structure: noise, flat frames, other
  parts, inverted grey levels, a blurred lens.
* **Texture** (UNKNOWN): where the parts have no fixed layout (random crops of a surface), a PCA of whole
  images is wide by nature and other things pass it. This check describes an image by what its small
  neighbourhoods look like, wherever they are: every ``TEXTURE_PATCH`` px square of the image (stride
  ``TEXTURE_STRIDE``), standardised robustly (minus the median, over the interquartile spread: a strong stain
  does not rescale the grain around it), is projected on the first ``TEXTURE_COMPONENTS`` principal
  components of the train goods' squares, and per component the log of the **median** and of the **upper
  quartile** over the image of the squared projection are two features: the surface's energy signature
  (grain, edges, smooth areas, at the scales and directions the components span). The statistic is the mean
  squared distance (whitened by the train goods' signature covariance, per feature) to the ``TEXTURE_K``
  nearest reference signatures: the train goods' and those of ``TEXTURE_COPIES`` copies of each under the
  line's drift envelope (blur, JPEG, noise, a light gradient leave the surface the surface). Divided by its
  threshold (the 99.9th percentile of the val items and a drifted copy of each, times ``margin``) it is
  ``texture``; above 1 the image is UNKNOWN ("not recognised"). Quantiles over positions keep a local defect
  (a scratch or stain in one of the 12 cells) from moving it much; an image that is not this surface anywhere
  (noise, a photograph, another part, an empty fixture) is far from every reference. Fitted for every run; a
  gate file without its arrays (older runs) loads with the check off.
* **Polarity** (UNKNOWN): a photograph of a surface has asymmetric grey levels (bright specks on a darker ground,
  or dark pits on a lighter one); a negative image (grey levels inverted: a wrong pixel format) has the mirror
  asymmetry, which the texture check, built on energies, cannot see. Where every train image's skew
  (:func:`grey_skew`) lies on one side of 0, at least ``POLARITY_MIN_SKEW`` away, an image beyond half the mirror
  of the train images' edge is UNKNOWN ("grey levels inverted"). Fitted on the train images as delivered.
  The same test on the image's fine detail (a Gaussian of ``DETAIL_SIGMAS[0]`` px minus one of
  ``DETAIL_SIGMAS[1]`` px, :func:`detail_skew`): a grained surface whose grey levels as a whole are near
  symmetric can still have its specks or pits on one side. This one is fitted on the train images and copies
  of them under every change of the line's drift envelope at full strength: used only where the train images lie
  at least ``DETAIL_MIN_SKEW`` from 0 on one side and every copy keeps that side, and only on images at least as
  sharp as the blurred copies (older gate files: not checked).
* **Local evidence** (heat map, and DEFECT where the twin misses): a model of the good parts alone, fitted on
  the run's train goods: the mean and the first ``LOCAL_COMPONENTS`` principal components of the standardised
  goods (pose, light, pin-to-pin reflectance: the ways good parts vary). What an image leaves outside them, smoothed
  by a Gaussian of ``LOCAL_SIGMA`` px (the size of the faintest defects), squared and divided pixel by pixel by
  what the train goods leave there, is the heat map: about 1 on a good part, large where no good part was ever
  unlike the model. Its peak over its own mean (``local``) is large only when the difference is concentrated in
  one place (a defect, a key notch on the wrong side), not when the whole image differs a little (noise, blur, a
  small shift or rotation). Above the val goods' 99.9th percentile times ``margin``, the item is DEFECT even when
  the twin's score passes. Nothing in it comes from the defect labels, so it also sees kinds of defect no item of
  the data showed (docs/real-data.md, section 13). The heat map's maximum is the reported location
  (``defect_y``, ``defect_x``) of every verdict. Runs trained before the goods model compare with the ``k`` most
  similar train goods instead (per pixel the smallest absolute difference, smoothed over 3 x 3 px, peak over its
  upper quartile). Pixels that registration filled from a good reference (the strip a shift brings in, the
  corners of a turn: ``filled``) are not this part's: their residual is 0 before the smoothing, and they are left
  out of the map, its peak and its mean (``mask_filled``; older runs keep them). A clipped pixel (at or above
  :data:`CLIP_LEVEL`) only says "at least this bright": where the model expects it brighter still, its residual is
  0, and only a pixel brighter than expected counts (``censor_clipped``; older runs count both). A part under 30 %
  more light clips its bright body, and its pins' edges had read as a defect.

Numpy only; the line bundle's script repeats exactly these computations (a test checks equality).

>>> gate = Gate.fit(images, labels, split, good_label="0")      # doctest: +SKIP
>>> g = gate.check(images)                                        # doctest: +SKIP
>>> g["unknown"], g["local_defect"], g["defect_y"], g["defect_x"] # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from .imageops import box3

__all__ = ["Gate", "standardize", "robust_standardize", "sharpness", "texture_signature", "grey_skew", "GATE_FILE",
           "UNKNOWN_REASON", "FLAT_REASON", "BLUR_REASON", "INVERTED_REASON", "NOISE_REASON", "EXPOSURE_REASON",
           "GLARE_REASON",
           "LOCAL_REASON", "noise_sd", "relative_noise", "unknown_of"]

GATE_FILE = "gate.npz"
#: the operator's message for an UNKNOWN verdict
UNKNOWN_REASON = "not recognised as this part: check camera, fixture, part type"
FLAT_REASON = "almost no contrast (flat frame): check lamp, lens cap, exposure"
BLUR_REASON = "out of focus (less sharp than the images this run can judge): check lens and focus"
#: a frame is flat below this share of the train images' smallest spread, out of focus below this share of
#: their smallest sharpness
FLAT_SHARE = 0.25
BLUR_SHARE = 0.25
LOCAL_REASON = "local difference from the good parts"
NOISE_REASON = "too noisy (noisier than the images this run can judge): check gain, exposure and light"
INVERTED_REASON = "grey levels inverted (a negative image): check the camera's pixel format and settings"
EXPOSURE_REASON = "far darker or brighter than the images this run was trained on: check lamp, lens cap and exposure"
#: the exposure check: an image whose mean grey level is below EXPOSURE_LOW times the train images' 0.1th
#: percentile, or above EXPOSURE_HIGH times their 99.9th, is UNKNOWN. A line's light drifts (the drift benchmark
#: asks for +-30 %), a lamp that is off or a lens cap does not; on a surface with little structure of its own (a
#: smooth, painted or polished part) the appearance check cannot tell such a frame from the part, the level can
EXPOSURE_LOW, EXPOSURE_HIGH = 0.5, 1.5
GLARE_REASON = "clipped highlights (glare, a reflection or too much light): check lamp, reflections and exposure"
#: the highlights check: grey levels at or above CLIP_LEVEL are clipped; an image with a larger share of them than
#: any train or val image brightened by LIGHT_DRIFT (the light drift a line has), plus CLIP_MARGIN, is UNKNOWN
CLIP_LEVEL, LIGHT_DRIFT, CLIP_MARGIN = 250, 1.3, 0.02
#: the polarity check: the quantiles whose asymmetry is the grey-level skew, and the smallest skew (in absolute
#: value) of every train image for which the check is used at all
SKEW_QUANTILES = (0.05, 0.5, 0.95)
POLARITY_MIN_SKEW = 0.3
#: the detail polarity check: the band of detail whose skew it measures (a Gaussian of the first sigma, px, minus
#: one of the second), the smallest skew (in absolute value) of the train images and their drifted copies for which
#: it is used, and at most how many train images get drifted copies (seeded sample)
DETAIL_SIGMAS = (0.5, 2.0)
DETAIL_MIN_SKEW = 0.05
DETAIL_SAMPLE = 400
#: principal components of the appearance model (fewer when the train split is smaller)
N_COMPONENTS = 32
#: the appearance model sees every image blurred by this (px) and without its light ramp (its least-squares plane):
#: sensor noise, JPEG, a 1 px blur and a light gradient are changes of the camera, not of what is in front of it,
#: and on a connector of dark pins they had made good parts UNKNOWN (docs/real-data.md, section 25)
APPEARANCE_SIGMA = 0.7
#: the share of an image's pixels, those the appearance model explains worst, that its residual leaves out: a defect
#: is a difference in a small place, which the local evidence judges; another part or a double exposure differs
#: everywhere. Without it the val defects set the appearance threshold, and a part with a third row of pins
#: passed under it
APPEARANCE_TRIM = 0.05
#: threshold = 99.9th percentile of the val split times this margin
MARGIN = 1.2
QUANTILE = 0.999
#: a val item filed as good whose local evidence lies more than this many robust spreads (1.4826 x the median
#: absolute deviation, of the evidence's logarithm) above the val goods' median is left out of the local
#: threshold's quantile: no good part measured comes near it (at most 5.4 on every set of docs/real-data.md), most
#: defects filed as good do (4.3 to 12.4 measured), and with a few hundred val goods the 99.9th percentile is their
#: maximum, so one wrong label would set the threshold
CLEAR_OUTLIER_Z = 6.0
#: ... and from this many when the twin places the item among the defects too (``doubtful``, the vote of its nearest
#: train items, :func:`snw_core.metrics.doubtful_goods`): two independent signs that it is not a good part
DOUBTFUL_OUTLIER_Z = 4.0
#: train and val images that the audit calls outliers (:func:`snw_core.audit.pixel_outlier_z` from
#: :data:`snw_core.audit.OUTLIER_Z`: far from their nearest images all over the picture, blind to the light like
#: the checks), or with a grey-level spread this far from the others' (robust z of its logarithm), are left out of
#: every limit the gate fits: a wrong part, a camera fault or an empty fixture filed among the parts set the
#: flat-frame, exposure, highlights, appearance and texture limits. Measured (docs/audit.md): spread of the parts of
#: every set at most 3.8, flat frames -15 to -20 (among random textures every image is far from every other in
#: pixels)
IMAGE_OUTLIER_Z = 8.0
#: fewer train and val images than this: no image is set aside
IMAGE_OUTLIER_MIN = 20
#: most similar train goods the heat map of an older run compares with
LOCAL_K = 3
#: principal components of the goods model behind the local evidence (fewer with fewer train goods: at most a
#: quarter of them), and the Gaussian (sigma, px) its residual is smoothed with: the size of the faintest defects
LOCAL_COMPONENTS = 32
LOCAL_SIGMA = 0.8
LOCAL_KEYS = ("local_mean", "local_components", "local_var")
TEXTURE_KEYS = ("texture_components", "texture_whiten", "texture_refs", "texture_quantiles", "texture_scalars")
#: the texture check: square size and stride (px), principal components of the squares, the quantiles over
#: positions (median and upper quartile: a defect in one cell of the image barely moves them), squares drawn
#: for the components (seeded)
TEXTURE_PATCH = 8
TEXTURE_STRIDE = 4
TEXTURE_COMPONENTS = 24
TEXTURE_QUANTILES = (0.5, 0.75)
TEXTURE_SAMPLE = 20000
#: drifted copies of every train good (one change of the line's drift envelope each) among the references,
#: and the nearest references the distance is averaged over
TEXTURE_COPIES = 2
TEXTURE_K = 3


def appearance_view(images, sigma: float) -> np.ndarray:
    """What the appearance model compares, float64 (n, h*w): images blurred by ``sigma`` px, minus their
    least-squares plane, over their spread + 1. ``sigma`` 0: the standardised images (older runs)."""
    if sigma <= 0:
        return standardize(images)
    from .imageops import blur_matrix, plane_basis
    x = np.asarray(images, np.float64)
    n, h, w = x.shape
    r = (blur_matrix(h, sigma) @ x @ blur_matrix(w, sigma).T).reshape(n, -1)
    a, pinv = plane_basis(h, w)
    r -= (r @ pinv.T) @ a.T                              # in place: a large batch holds two copies, not four
    r /= r.std(axis=1, keepdims=True) + 1.0
    return r


def standardize(images) -> np.ndarray:
    """uint8 (n, h, w) -> float64 (n, h*w), per image zero mean and (almost) unit spread, as the twin sees it."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1.0)


def sharpness(images) -> np.ndarray:
    """Mean absolute Laplacian over the grey-level spread (+1) of uint8 images (n, h, w): (n,). A blurred lens
    (Gaussian sigma 2.5 px or more) gives at most a fifth of the sharpest train sets' least sharp image."""
    x = np.asarray(images, np.float64)
    lap = x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:] - 4.0 * x[:, 1:-1, 1:-1]
    return np.abs(lap).mean(axis=(1, 2)) / (x.std(axis=(1, 2)) + 1.0)


def noise_sd(images) -> np.ndarray:
    """Immerkaer's estimate of the sd of each image's sensor noise (grey levels), from a 3 x 3 second-difference
    mask that cancels smooth structure: uint8 or float (n, h, w) -> float64 (n,)."""
    x = np.asarray(images, np.float64)
    k = (x[:, :-2, :-2] - 2 * x[:, :-2, 1:-1] + x[:, :-2, 2:] - 2 * x[:, 1:-1, :-2] + 4 * x[:, 1:-1, 1:-1]
         - 2 * x[:, 1:-1, 2:] + x[:, 2:, :-2] - 2 * x[:, 2:, 1:-1] + x[:, 2:, 2:])
    return np.sqrt(np.pi / 2) * np.abs(k).mean(axis=(1, 2)) / 6


def relative_noise(images) -> np.ndarray:
    """The sensor noise of uint8 images (n, h, w) as the twin sees it: :func:`noise_sd` over the grey-level spread
    (+1), (n,). Brightness and contrast changes scale both alike; a part of low contrast under the same noise is
    noisier to the twin."""
    x = np.asarray(images, np.float64)
    return noise_sd(x) / (x.std(axis=(1, 2)) + 1.0)


def trimmed_energy(r: np.ndarray, trim: float) -> np.ndarray:
    """Residuals (n, D) -> (n,): the sum of squares over each row's pixels, less its ``ceil(trim * D)`` largest
    squares (``trim`` 0: all of them)."""
    r2 = np.asarray(r, np.float64) ** 2
    m = int(np.ceil(trim * r2.shape[1])) if trim > 0 else 0
    if m == 0:
        return r2.sum(1)
    return r2.sum(1) - np.partition(r2, r2.shape[1] - m, axis=1)[:, r2.shape[1] - m:].sum(1)


def quantiles_last(a: np.ndarray, qs) -> np.ndarray:
    """Quantiles ``qs`` (linear interpolation, as ``np.quantile``) along the last axis: (..., m) -> (len(qs), ...).
    One sort; a fraction of ``np.quantile``'s time on the small arrays of a single image."""
    s = np.sort(a, axis=-1)
    m = s.shape[-1]
    out = []
    for q in qs:
        pos = float(q) * (m - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, m - 1)
        out.append(s[..., lo] + (pos - lo) * (s[..., hi] - s[..., lo]))
    return np.stack(out)


def robust_standardize(images) -> np.ndarray:
    """uint8 (n, h, w) -> float64 (n, h*w): per image minus the median, over the interquartile spread (as a
    standard deviation, + 1). A stain or scratch over part of the image barely moves either, so the grain
    around it keeps its scale (the plain standardisation's spread grows with a strong stain)."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    lo, med, hi = quantiles_last(x, (0.25, 0.5, 0.75))
    return (x - med[:, None]) / ((hi - lo)[:, None] / 1.349 + 1.0)


def grey_skew(images) -> np.ndarray:
    """The asymmetry of each image's grey levels, uint8 (n, h, w) -> (n,) in [-1, 1]: ``(q95 + q5 - 2 q50) /
    (q95 - q5)``. A surface with bright specks on a darker ground is positive, one with dark pits negative; a
    negative image (grey levels inverted) has the opposite sign. Light and contrast do not change it."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    lo, med, hi = quantiles_last(x, SKEW_QUANTILES)
    return (hi + lo - 2.0 * med) / np.maximum(hi - lo, 1e-9)


def unknown_of(checks: dict) -> np.ndarray:
    """UNKNOWN, from a :meth:`Gate.check` result's parts: flat, out of focus, too noisy, inverted, far darker or
    brighter, clipped, not recognised (appearance or texture above 1)."""
    return (checks["flat"] | checks["blurred"] | checks["noisy"] | checks["inverted"] | checks["exposure"]
            | checks["clipped"] | (checks["appearance"] > 1.0) | (checks["texture"] > 1.0))


def texture_signature(images, components, patch: int = TEXTURE_PATCH, stride: int = TEXTURE_STRIDE,
                      quantiles=TEXTURE_QUANTILES) -> np.ndarray:
    """uint8 (n, h, w) -> (n, Q*K): per quantile and principal component (rows of ``components`` (K,
    patch*patch)) the log of that quantile over positions of the squared projection of every ``patch`` px
    square (stride ``stride``) of the image standardised robustly (:func:`robust_standardize`)."""
    images = np.asarray(images)
    n, h, w = images.shape
    z = robust_standardize(images).reshape(n, h, w)
    sq = np.lib.stride_tricks.sliding_window_view(z, (patch, patch), axis=(1, 2))[:, ::stride, ::stride]
    c = sq.reshape(n, -1, patch * patch) @ components.T
    e = np.log(quantiles_last(np.swapaxes(c ** 2, 1, 2), quantiles) + 1e-3)                # (Q, n, K)
    return e.transpose(1, 0, 2).reshape(n, -1)


def _fit_texture(goods, rng):
    """The texture check's model from train goods uint8 (m, h, w): the principal components of a seeded sample
    of their squares, the whitening of their signatures (the inverse covariance's Cholesky factor) and the
    whitened reference signatures: the goods' and those of ``TEXTURE_COPIES`` drifted copies of each (one
    change of the line's drift envelope, :func:`~snw_core.augment.envelope_copies`: blur, JPEG, noise, a light
    gradient are the same surface). None when the images are smaller than a square or there are too few goods."""
    goods = np.asarray(goods)
    m, h, w = goods.shape
    p, stride = TEXTURE_PATCH, TEXTURE_STRIDE
    if h < p or w < p or m < 3:
        return None
    z = robust_standardize(goods).reshape(m, h, w)
    sq = np.lib.stride_tricks.sliding_window_view(z, (p, p), axis=(1, 2))[:, ::stride, ::stride].reshape(-1, p * p)
    sq = sq[rng.choice(len(sq), min(TEXTURE_SAMPLE, len(sq)), replace=False)]
    _, _, vt = np.linalg.svd(sq - sq.mean(0), full_matrices=False)
    comps = vt[:min(TEXTURE_COMPONENTS, p * p - 1, m - 2)]
    f = texture_signature(goods, comps, p, stride, TEXTURE_QUANTILES)
    cov = np.atleast_2d(np.cov(f.T))
    cov = cov + 1e-3 * float(np.mean(np.diag(cov))) * np.eye(len(cov))        # a ridge: few goods, tied features
    whiten = np.linalg.cholesky(np.linalg.inv(cov))                             # f @ whiten: unit covariance
    from .augment import envelope_copies
    refs = [f] + [texture_signature(envelope_copies(goods, rng), comps, p, stride, TEXTURE_QUANTILES)
                  for _ in range(TEXTURE_COPIES)]
    refs = (np.concatenate(refs) @ whiten).astype(np.float32).astype(np.float64)   # as saved: float32 halves the file
    return {"texture_components": comps, "texture_whiten": whiten, "texture_refs": refs,
            "texture_quantiles": np.asarray(TEXTURE_QUANTILES, np.float64),
            "texture_scalars": np.array([p, stride, 1.0, TEXTURE_K], np.float64)}


#: added to the heat map's mean before the peak is divided by it (in units of the goods' own variance)
LOCAL_FLOOR = 0.05


def fit_exposure(images) -> tuple[float, float]:
    """The exposure check's limits from the train and val images as delivered: (EXPOSURE_LOW x their mean grey
    level's 0.1th percentile, EXPOSURE_HIGH x its 99.9th); the upper limit is 0 (not checked) where it would lie at
    or above white, or for no images."""
    images = np.asarray(images)
    if not len(images):
        return 0.0, 0.0
    level = images.reshape(len(images), -1).mean(1, dtype=np.float64)
    lo, hi = EXPOSURE_LOW * float(np.quantile(level, 0.001)), EXPOSURE_HIGH * float(np.quantile(level, 0.999))
    return (lo, hi) if hi < 255.0 else (lo, 0.0)


def fit_highlights(images) -> float:
    """The highlights check's limit from the train and val images as delivered: the largest share of clipped pixels
    (:data:`CLIP_LEVEL`) of any of them brightened by :data:`LIGHT_DRIFT`, plus :data:`CLIP_MARGIN`; 0 (not checked)
    for no images."""
    images = np.asarray(images)
    if not len(images):
        return 0.0
    brighter = np.asarray(images, np.float64).reshape(len(images), -1) * LIGHT_DRIFT
    return float((np.rint(brighter) >= CLIP_LEVEL).mean(1).max()) + CLIP_MARGIN


def detail_skew(images) -> np.ndarray:
    """The grey-level skew (:func:`grey_skew`) of each image's fine detail: the image blurred by
    ``DETAIL_SIGMAS[0]`` px minus the image blurred by ``DETAIL_SIGMAS[1]`` px. uint8 (n, h, w) -> (n,); in pieces
    of about :data:`~snw_core.imageops.SAMPLE_PIXELS` pixels, so large images never hold more than a few float
    copies of one piece."""
    from .imageops import SAMPLE_PIXELS, gaussian_blur
    images = np.asarray(images)
    n = len(images)
    step = max(1, SAMPLE_PIXELS // max(1, int(np.prod(images.shape[1:]))))
    out = np.empty(n)
    for i in range(0, n, step):
        x = np.asarray(images[i:i + step], np.float64)
        out[i:i + step] = grey_skew(gaussian_blur(x, DETAIL_SIGMAS[0]) - gaussian_blur(x, DETAIL_SIGMAS[1]))
    return out


def fit_detail_polarity(images, seed: int = 0) -> tuple[float, float, float]:
    """``(sign, limit, min_sharp)`` of the detail polarity check from the train images uint8 (n, h, w). Where the
    :func:`detail_skew` of every train image lies on one side of 0, at least :data:`DETAIL_MIN_SKEW` from it, and
    that of a copy of (a seeded sample of :data:`DETAIL_SAMPLE` of) them under each change of the drift envelope at
    full strength (:data:`snw_core.augment.CHANGES`) still on that side, an image beyond half the mirror of the
    nearest of all of them is a negative image. A blur takes the detail away and pulls the skew towards 0: the
    check reads only images at least as sharp (:func:`sharpness`) as the least sharp of the blurred copies
    (``min_sharp``). Where a few blurred copies lose their detail so far that its skew reaches 0, the check reads
    only images sharper than all of those instead of giving up (one copy of 400 at 0.000 had switched it off on
    gravel, whose negatives then reached the twin: docs/real-data.md, section 32); the edge is then taken over the
    copies it reads. ``(0, 0, 0)``: not checked."""
    from .augment import CHANGES, line_drift
    images = np.asarray(images)
    if len(images) < 2:
        return 0.0, 0.0, 0.0
    as_taken = detail_skew(images)
    sign = 1.0 if as_taken.min() >= DETAIL_MIN_SKEW else -1.0 if as_taken.max() <= -DETAIL_MIN_SKEW else 0.0
    if not sign:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng([seed, 6151])
    sample = images if len(images) <= DETAIL_SAMPLE else images[np.sort(rng.choice(len(images), DETAIL_SAMPLE,
                                                                                      replace=False))]
    edge, min_sharp, faded = float(np.min(sign * as_taken)), 0.0, False
    read = []                                      # (signed skew, sharpness) of every copy
    for change in CHANGES:                         # one change at a time: large images hold one set of copies
        copies = line_drift(sample, rng, changes=(1, 1), low=1.0, names=(change,))
        skew, sharp = sign * detail_skew(copies), sharpness(copies)
        read.append((skew, sharp))
        if change == "blur":
            min_sharp = float(np.min(sharp))
            crossed = skew <= 0
            if crossed.any():                      # read only images sharper than every blur that crossed
                faded, min_sharp = True, float(np.nextafter(np.max(sharp[crossed]), np.inf))
    if faded and min_sharp >= float(np.median(sharpness(sample))):
        return 0.0, 0.0, 0.0                       # it would not read a typical part: not a test to rely on
    for skew, sharp in read:
        kept = skew[sharp >= min_sharp] if faded else skew
        if kept.size:
            edge = min(edge, float(np.min(kept)))
    if edge <= 0:                                  # some drift crosses to the other side: not a test to rely on
        return 0.0, 0.0, 0.0
    return sign, float(-sign * edge / 2.0), min_sharp


def detail_inverted(images, detail_polarity, sharp=None) -> np.ndarray:
    """bool (n,): the images uint8 (n, h, w) the detail polarity check ``(sign, limit, min_sharp)``
    (:func:`fit_detail_polarity`) calls negative: at least ``min_sharp`` sharp and with the detail's skew beyond the
    limit. ``sharp``: their :func:`sharpness`, where already computed. All False where the check is off."""
    sign, limit, min_sharp = detail_polarity
    if not sign:
        return np.zeros(len(images), bool)
    sharp = sharpness(images) if sharp is None else sharp
    return (sharp >= min_sharp) & (sign * detail_skew(images) < sign * limit)


def fit_polarity(images) -> tuple[float, float]:
    """``(sign, limit)`` of the polarity check from the train images uint8 (n, h, w): where every train image's
    grey-level skew (:func:`grey_skew`, 0.1th to 99.9th percentile) lies on one side of 0, at least
    :data:`POLARITY_MIN_SKEW` from it, an image whose skew lies beyond half the mirror of that edge is a negative
    image. Light gradients, blur and noise pull the skew towards 0, not across to the mirror (measured on the
    real-photo textures); a part whose grey levels are near symmetric is not checked (``(0, 0)``)."""
    s = grey_skew(images)
    lo, hi = np.quantile(s, [0.001, 0.999])
    if lo >= POLARITY_MIN_SKEW:
        return 1.0, float(-lo / 2.0)
    if hi <= -POLARITY_MIN_SKEW:
        return -1.0, float(-hi / 2.0)
    return 0.0, 0.0


def robust_z(values) -> np.ndarray:
    """Robust z-scores (minus the median, over 1.4826 x the median absolute deviation) of ``values`` (n,); over the
    standard deviation (or 1) where that deviation is 0 (more than half the values equal). The audit's statistic too."""
    v = np.asarray(values, np.float64)
    med = float(np.median(v))
    spread = 1.4826 * float(np.median(np.abs(v - med)))
    if spread <= 0:
        spread = float(np.std(v)) or 1.0
    return (v - med) / spread


def image_outliers(images, split, seed: int = 0) -> np.ndarray:
    """The train and val images (bool (n,)) that the gate leaves out of its limits: the audit's pixel outliers on
    the standardised images, and images whose grey-level spread (its logarithm) is a robust z-score of
    :data:`IMAGE_OUTLIER_Z` or more from the others' (a flat frame among random textures, which are all far from
    each other in pixels); none with fewer than :data:`IMAGE_OUTLIER_MIN` train and val images."""
    split = np.asarray(split).astype(str)
    tv = np.flatnonzero((split == "train") | (split == "val"))
    out = np.zeros(len(split), bool)
    if len(tv) >= IMAGE_OUTLIER_MIN:
        from .audit import OUTLIER_Z, pixel_outlier_z
        x = np.asarray(images)[tv]
        far = pixel_outlier_z(x, seed) >= OUTLIER_Z
        spread = np.log(np.asarray(x, np.float64).reshape(len(x), -1).std(1) + 1.0)
        out[tv[far | (np.abs(robust_z(spread)) >= IMAGE_OUTLIER_Z)]] = True
    return out


def fit_local_model(goods) -> dict | None:
    """The goods model behind the local evidence, from train goods uint8 (m, h, w): the mean and the first
    principal components of the standardised goods, and per pixel the goods' mean squared residual outside them
    after the residual is smoothed (:func:`local_heat`; clipped pixels counted both ways, so where the train goods
    or their light copies clip, the model stays as tolerant as before). None with fewer than 4 goods."""
    goods = np.asarray(goods)
    m, h, w = goods.shape
    if m < 4:
        return None
    z = standardize(goods)
    mean = z.mean(0)
    _, _, vt = np.linalg.svd(z - mean, full_matrices=False)
    k = int(min(LOCAL_COMPONENTS, max(1, m // 4), z.shape[1] - 1))
    # the components as saved: float32 halves the file (the largest array of a big image's gate)
    model = {"local_mean": mean, "local_components": vt[:k].astype(np.float32).astype(np.float64),
             "local_var": np.ones((h, w))}
    r2 = local_heat(z, model, (h, w)).reshape(m, h, w).mean(0)
    model["local_var"] = np.maximum(r2, 0.1 * float(np.median(r2)) + 1e-12)
    return model


def local_heat(z, model: dict, shape, clipped=None, known=None) -> np.ndarray:
    """Standardised images (n, h*w) -> (n, h*w): per pixel the squared residual outside the goods model's
    principal components, smoothed by a Gaussian of :data:`LOCAL_SIGMA` px first (a matched filter for a small
    blob), over the goods' own (``local_var``). About 1 on a good part; a defect of a kind never labelled is a
    residual no good part has. ``clipped`` (bool (n, h*w) or None): pixels the camera clipped, whose residual
    counts only where the pixel is brighter than the model expects (censored: the truth is at least as bright).
    ``known`` (bool (n, h*w) or None): where False (pixels registration filled) the residual is 0 before the
    smoothing, so a fill does not spill into the part's own pixels next to it."""
    from .imageops import blur_matrix
    h, w = shape
    zc = z - model["local_mean"]
    p = model["local_components"]
    r = zc - (zc @ p.T) @ p
    if clipped is not None:
        r[clipped & (r < 0)] = 0.0
    if known is not None:
        r *= known
    r = r.reshape(-1, h, w)
    r = blur_matrix(h, LOCAL_SIGMA) @ r @ blur_matrix(w, LOCAL_SIGMA).T
    return (r ** 2 / model["local_var"]).reshape(len(z), -1)


class Gate:
    """The fitted checks. Arrays (see :meth:`arrays`) are all the state; thresholds are floats.

    mean : (D,) mean standardised train image; components : (K, D); eigvals : (K,); resid_var : the train
    images' mean energy outside the components (less the share ``trim`` of pixels with the most, as the check
    measures it); good_images : uint8 (m, h, w) the train goods (heat-map
    references); t_app, t_local : thresholds; min_std : grey-level spread below which a frame is flat;
    min_sharp : :func:`sharpness` below which an image is out of focus (0: not checked, older runs);
    max_noise : :func:`relative_noise` above which an image is too noisy to judge (0: not checked, the usual case);
    exposure : (lowest, highest) mean grey level of an image the run judges ((0, 0): not checked, older runs);
    max_clipped : the largest share of clipped pixels (:data:`CLIP_LEVEL`) of an image it judges (0: not checked);
    texture : None (the texture check off: older runs, images smaller than a square) or a dict of arrays:
    ``texture_components`` (K, p*p), ``texture_whiten`` (Q*K, Q*K), ``texture_refs`` (R, Q*K) the whitened
    reference signatures, ``texture_quantiles`` (Q,), ``texture_scalars`` [patch, stride, threshold, nearest
    references averaged].
    """

    def __init__(self, mean, components, eigvals, resid_var, good_images, t_app, t_local, min_std, min_sharp=0.0,
                 texture=None, local_model=None, polarity=(0.0, 0.0), max_noise=0.0, exposure=(0.0, 0.0),
                 max_clipped=0.0, trim=0.0, mask_filled=False, censor_clipped=False, app_sigma=0.0):
        self.mean = np.asarray(mean, np.float64)
        #: the appearance model's view (:func:`appearance_view`; 0: the standardised images, older runs)
        self.app_sigma = float(app_sigma)
        #: the local evidence leaves out the pixels registration filled (False: older runs, which counted them)
        self.mask_filled = bool(mask_filled)
        #: ... and censors clipped pixels (False: older runs, fitted without)
        self.censor_clipped = bool(censor_clipped)
        #: the share of pixels the appearance residual leaves out (:data:`APPEARANCE_TRIM`; 0: none, older runs)
        self.trim = float(trim)
        self.components = np.asarray(components, np.float64)
        self.eigvals = np.asarray(eigvals, np.float64)
        self.resid_var = float(resid_var)
        self.good_images = np.asarray(good_images, np.uint8)
        self.t_app, self.t_local = float(t_app), float(t_local)
        #: val items filed as good left out of the local threshold (:data:`CLEAR_OUTLIER_Z`); 0 when loaded
        self.local_set_aside = 0
        #: train and val images left out of every limit (:func:`image_outliers`): how many, and which of the images
        #: it was fitted on (bool (n,)); 0 and None when loaded
        self.images_set_aside = 0
        self.set_aside_mask = None
        self.min_std = float(min_std)
        self.min_sharp = float(min_sharp)
        self.max_noise = float(max_noise)
        self.exposure = (float(exposure[0]), float(exposure[1]))
        self.max_clipped = float(max_clipped)
        self.image_shape = tuple(self.good_images.shape[1:])
        self._good_z = standardize(self.good_images)
        self._good_sq = np.sum(self._good_z ** 2, axis=1)
        self.texture = None
        if texture is not None:
            self.texture = {k: np.asarray(texture[k], np.float64) for k in TEXTURE_KEYS}
            self.t_tex = float(self.texture["texture_scalars"][2])
            self._tex_sq = np.sum(self.texture["texture_refs"] ** 2, axis=1)
        #: (sign, limit): sign +1 = the train images' skew is positive and an image below ``limit`` is a negative
        #: image, -1 the mirror, 0 = not checked (skews near 0, or an older run); ``detail_polarity`` the same for
        #: :func:`detail_skew`, and the least sharpness of an image it reads (values 3-5 of ``polarity``; older
        #: runs: not checked)
        self.polarity = (float(polarity[0]), float(polarity[1]))
        self.detail_polarity = (tuple(float(v) for v in polarity[2:5]) if len(polarity) > 4
                                else (0.0, 0.0, 0.0))
        self.local_model = None
        if local_model is not None:
            self.local_model = {k: np.asarray(local_model[k], np.float64) for k in LOCAL_KEYS}

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, images, labels, split, good_label: str = "0", margin: float = MARGIN, augment: str = "none",
            seed: int = 0, doubtful=None, filled=None):
        """Fit on the train split, set thresholds on the val split (all val items for the appearance, val
        goods for the local evidence). images uint8 (n, h, w); labels, split str (n,). ``doubtful``: bool (n,), the
        val goods the twin places among the defects (:func:`snw_core.metrics.doubtful_goods`), or None. ``filled``:
        bool (n, h, w), the pixels registration filled (:meth:`snw_core.register.Registration.unknown_pixels`), or None.

        augment : the run's training augmentation (:mod:`snw_core.augment`). With ``"line"`` the model, the
        heat map's references and the thresholds also see one drifted copy of every train and val image (one
        change of the envelope at half to full strength, :func:`~snw_core.augment.envelope_copies`), so the
        drift the twin was trained to ignore does not make a part UNKNOWN. With ``"camera"`` the copies change
        the light only (:data:`~snw_core.augment.LIGHT`): copies with noise, blur or JPEG widened the check until
        camera noise, flat frames and blurred lenses passed on a texture, and the focus guard of training
        (:func:`snw_core.train.focus_guard`) decides about blur instead.
        """
        images = np.asarray(images)
        labels = np.asarray(labels).astype(str)
        split = np.asarray(split).astype(str)
        set_aside = image_outliers(images, split, seed)
        split = np.where(set_aside, "set_aside", split)
        n_delivered = len(images)                # the images as delivered (drifted copies follow them below)
        good = labels == str(good_label)
        # as the camera delivered them: drifted copies (a light gradient) pull the skew towards 0 by design
        polarity = fit_polarity(images[split == "train"]) if (split == "train").any() else (0.0, 0.0)
        # ... and the detail's, which is fitted to hold under the drift envelope
        polarity = (*polarity, *(fit_detail_polarity(images[split == "train"], seed) if (split == "train").any()
                                 else (0.0, 0.0, 0.0)))
        exposure = fit_exposure(images[(split == "train") | (split == "val")])
        max_clipped = fit_highlights(images[(split == "train") | (split == "val")])
        if augment != "none":
            from .augment import LIGHT, envelope_copies
            drifted = envelope_copies(images, np.random.default_rng([seed, 7919]), augment,
                                      names=LIGHT if augment == "camera" else None)
            images = np.concatenate([images, drifted])
            labels, split, good = (np.concatenate([a, a]) for a in (labels, split, good))
            if doubtful is not None:
                doubtful = np.concatenate([doubtful, doubtful])
            if filled is not None:
                filled = np.concatenate([filled, filled])
        tr, va = split == "train", split == "val"
        if (tr & good).sum() < 2:
            raise ValueError("the appearance check needs at least 2 good train items")
        zc = appearance_view(images[tr], APPEARANCE_SIGMA)
        mean = zc.mean(0)
        zc -= mean                                       # centred once, for the components and the residual
        _, s, vt = np.linalg.svd(zc, full_matrices=False)
        lam = s ** 2 / len(zc)
        k = int(min(N_COMPONENTS, max(1, len(zc) - 1), zc.shape[1] - 1))
        # the train images' mean residual energy, as trimmed
        resid_var = float(max(trimmed_energy(zc - (zc @ vt[:k].T) @ vt[:k], APPEARANCE_TRIM).mean(), 1e-9))
        del zc
        stds = np.asarray(images[tr], np.float64).reshape(tr.sum(), -1).std(1)
        local_model = fit_local_model(images[tr & good])
        gate = cls(mean, vt[:k], np.maximum(lam[:k], 1e-12), resid_var, images[tr & good],
                   1.0, 1.0, min_std=FLAT_SHARE * float(np.min(stds)),
                   min_sharp=BLUR_SHARE * float(np.min(sharpness(images[tr]))), local_model=local_model,
                   polarity=polarity, exposure=exposure, max_clipped=max_clipped, trim=APPEARANCE_TRIM,
                   mask_filled=True, censor_clipped=True, app_sigma=APPEARANCE_SIGMA)
        gate.augment = augment
        ref = va if va.any() else tr
        gate.t_app = margin * float(np.quantile(gate._appearance_raw(images[ref]), QUANTILE))
        rng = np.random.default_rng([seed, 4099])
        texture = _fit_texture(images[tr & good], rng)
        if texture is not None:                  # threshold: the val items and a drifted copy of each
            gate = cls(gate.mean, gate.components, gate.eigvals, gate.resid_var, gate.good_images, gate.t_app, 1.0,
                       gate.min_std, gate.min_sharp, texture=texture, local_model=local_model, polarity=polarity,
                       exposure=exposure, max_clipped=max_clipped, trim=gate.trim, mask_filled=gate.mask_filled,
                       censor_clipped=gate.censor_clipped, app_sigma=gate.app_sigma)
            gate.augment = augment
            from .augment import envelope_copies
            val = np.concatenate([images[ref], envelope_copies(images[ref], rng)])
            gate.t_tex = margin * float(np.quantile(gate._texture_raw(val), QUANTILE))
            gate.texture["texture_scalars"][2] = gate.t_tex
        gate.images_set_aside = int(set_aside.sum())
        gate.set_aside_mask = set_aside
        ref_good = ref & good
        if ref_good.any():
            local, _, _ = gate._local(images[ref_good], exclude_self=not va.any(),
                                      filled=None if filled is None else filled[ref_good])
            # a val item filed as good far above the goods (a defect filed as good) does not set the threshold
            lz = robust_z(np.log(np.maximum(local, 1e-300)))
            out = lz > CLEAR_OUTLIER_Z
            if doubtful is not None:
                out |= np.asarray(doubtful, bool)[ref_good] & (lz > DOUBTFUL_OUTLIER_Z)
            kept = local[~out]
            gate.t_local = margin * float(np.quantile(kept, QUANTILE))
            gate.local_set_aside = int(out[np.flatnonzero(ref_good) < n_delivered].sum())   # items, not copies
        else:
            gate.t_local = float("inf")
        return gate

    # ------------------------------------------------------------------ the checks
    def _texture_raw(self, images):
        """Mean squared whitened distance of each image's signature to its nearest references, per feature."""
        t = self.texture
        p, stride, _, k = t["texture_scalars"]
        f = (texture_signature(images, t["texture_components"], int(p), int(stride), t["texture_quantiles"])
             @ t["texture_whiten"])
        d2 = np.maximum(np.sum(f ** 2, 1)[:, None] + self._tex_sq[None] - 2.0 * (f @ t["texture_refs"].T), 0.0)
        return np.partition(d2, int(k) - 1, axis=1)[:, :int(k)].mean(1) / f.shape[1]

    def _appearance_raw(self, images):
        z = appearance_view(images, self.app_sigma) - self.mean
        c = z @ self.components.T
        r = z - c @ self.components
        return 0.5 * ((c ** 2 / self.eigvals).mean(1) + trimmed_energy(r, self.trim) / self.resid_var)

    def _local(self, images, exclude_self: bool = False, filled=None):
        """(local evidence (n,), heat maps (n, h, w), flat argmax (n,)). ``filled``: bool (n, h, w), pixels left
        out (0 in the map) where the gate masks them, or None."""
        h, w = self.image_shape
        z = standardize(images)
        known = None
        if filled is not None and self.mask_filled:
            known = ~np.asarray(filled, bool).reshape(len(z), -1)
        if self.local_model is not None:
            clipped = (np.asarray(images).reshape(len(z), -1) >= CLIP_LEVEL) if self.censor_clipped else None
            heat = local_heat(z, self.local_model, self.image_shape, clipped, known)
            if known is None:
                local = heat.max(1) / (heat.mean(1) + LOCAL_FLOOR)
            else:
                heat *= known
                local = heat.max(1) / (heat.sum(1) / np.maximum(known.sum(1), 1) + LOCAL_FLOOR)
            return local, heat.reshape(-1, h, w), heat.argmax(1)
        d2 = np.sum(z ** 2, 1)[:, None] + self._good_sq[None] - 2.0 * (z @ self._good_z.T)
        if exclude_self:
            d2[d2 < 1e-9] = np.inf
        kk = min(LOCAL_K, self._good_z.shape[0] - int(exclude_self))
        nn = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        diff = np.abs(z[:, None, :] - self._good_z[nn]).min(1).reshape(-1, h, w)
        heat = box3(diff).reshape(len(z), -1)
        if known is not None:
            heat *= known
        peak = heat.max(1)
        local = peak / (quantiles_last(heat, (0.75,))[0] + 0.05)
        return local, heat.reshape(-1, h, w), heat.argmax(1)

    def check(self, images, filled=None) -> dict:
        """Run the checks on uint8 images (n, h, w); ``filled`` (bool (n, h, w) or None): the pixels registration
        filled, which the local evidence leaves out (:meth:`snw_core.register.Registration.unknown_pixels`).

        Returns arrays (n,): ``appearance`` (> 1 = not recognised), ``texture`` (the same for the texture
        check; 0 where it is off), ``flat`` (bool), ``blurred`` (bool: out of
        focus), ``noise`` (:func:`relative_noise`), ``noisy`` (bool: too noisy), ``inverted`` (bool: a negative
        image), ``level`` (the mean grey level), ``exposure`` (bool: far darker or brighter than the training
        images), ``clipped_share`` (the share of clipped pixels), ``clipped`` (bool: glare), ``unknown`` (bool),
        ``local`` (local evidence / its threshold: > 1 = a local defect), ``local_defect`` (bool),
        ``defect_y``, ``defect_x`` (int, image coordinates of the heat map's maximum) and ``heatmap``
        (float32 (n, h, w), 0 = like the good parts).
        """
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        appearance = self._appearance_raw(images) / self.t_app          # 0 where the check is off (t_app inf)
        texture = (self._texture_raw(images) / self.t_tex if self.texture is not None
                   else np.zeros(len(images)))
        flat_x = np.asarray(images, np.float64).reshape(len(images), -1)
        flat = flat_x.std(1) < self.min_std
        sharp = sharpness(images)
        blurred = ~flat & (sharp < self.min_sharp)
        noise = relative_noise(images)
        noisy = ~flat & (noise > self.max_noise) if self.max_noise > 0 else np.zeros(len(images), bool)
        sign, limit = self.polarity
        inverted = ~flat & (sign * grey_skew(images) < sign * limit) if sign else np.zeros(len(images), bool)
        inverted |= ~flat & detail_inverted(images, self.detail_polarity, sharp)
        level = flat_x.mean(1)
        lo, hi = self.exposure
        exposure = ~flat & ((level < lo) | ((level > hi) & (hi > 0)))          # (0, 0): not checked
        clipped_share = (flat_x >= CLIP_LEVEL).mean(1)
        clipped = ~flat & (clipped_share > self.max_clipped) if self.max_clipped > 0 else np.zeros(len(images), bool)
        local, heat, arg = self._local(images, filled=filled)
        local_n = local / self.t_local
        y, x = np.unravel_index(arg, self.image_shape)
        return {"appearance": appearance, "texture": texture, "flat": flat, "blurred": blurred, "inverted": inverted,
                "noise": noise, "noisy": noisy, "level": level, "exposure": exposure, "clipped_share": clipped_share,
                "clipped": clipped,
                "unknown": unknown_of({"flat": flat, "blurred": blurred, "noisy": noisy, "inverted": inverted,
                                       "exposure": exposure, "clipped": clipped, "appearance": appearance,
                                       "texture": texture}),
                "local": local_n, "local_defect": local_n > 1.0, "defect_y": y.astype(np.int64),
                "defect_x": x.astype(np.int64), "heatmap": heat.astype(np.float32)}

    def display_map(self, heat) -> np.ndarray:
        """A heat map (h, w) or (n, h, w) for showing, 0..1: 0 at or below the map's upper quartile (a
        difference spread over the whole image), 0.5 where the local evidence reaches its threshold, 1 at
        twice that excess."""
        heat = np.asarray(heat, np.float64)
        flat = heat.reshape(-1, heat.shape[-2] * heat.shape[-1])
        if self.local_model is not None:
            q = flat.mean(axis=1)[:, None] + LOCAL_FLOOR
        else:
            q = np.quantile(flat, 0.75, axis=1)[:, None] + 0.05
        excess = (flat / q - 1.0) / max(self.t_local - 1.0, 1e-6)
        return np.clip(excess / 2.0, 0.0, 1.0).reshape(heat.shape)

    # ------------------------------------------------------------------ storage
    def arrays(self) -> dict:
        """The state as plain arrays for ``np.savez`` (no pickles)."""
        texture = dict(self.texture or {})
        if texture:
            texture["texture_refs"] = texture["texture_refs"].astype(np.float32)      # exact: fitted at float32
        local = dict(self.local_model or {})
        if local:
            local["local_components"] = local["local_components"].astype(np.float32)     # exact: fitted at float32
        return {**texture, **local, "polarity": np.asarray((*self.polarity, *self.detail_polarity), np.float64),
                "mean": self.mean,
                "components": self.components,
                "eigvals": self.eigvals.astype(np.float64), "good_images": self.good_images,
                "scalars": np.array([self.resid_var, self.t_app, self.t_local, self.min_std, self.min_sharp,
                                     self.max_noise, *self.exposure, self.max_clipped, self.trim,
                                     float(self.mask_filled), float(self.censor_clipped), self.app_sigma],
                                    np.float64)}

    @classmethod
    def from_arrays(cls, a: dict):
        resid_var, t_app, t_local, min_std, *rest = (float(v) for v in a["scalars"])   # older runs: 4 to 12 values
        texture = a if all(k in a for k in TEXTURE_KEYS) else None                 # older runs: no texture check
        local_model = a if all(k in a for k in LOCAL_KEYS) else None        # older runs: the most similar goods
        return cls(a["mean"], a["components"], a["eigvals"], resid_var, a["good_images"], t_app, t_local, min_std,
                   rest[0] if rest else 0.0, texture=texture, local_model=local_model,
                   polarity=a["polarity"] if "polarity" in a else (0.0, 0.0),         # older runs: not checked
                   max_noise=rest[1] if len(rest) > 1 else 0.0,
                   exposure=(rest[2], rest[3]) if len(rest) > 3 else (0.0, 0.0),        # older runs: not checked
                   max_clipped=rest[4] if len(rest) > 4 else 0.0,
                   trim=rest[5] if len(rest) > 5 else 0.0,                         # older runs: untrimmed
                   mask_filled=len(rest) > 6 and rest[6] > 0,                      # older runs: filled pixels count
                   censor_clipped=len(rest) > 7 and rest[7] > 0,                   # older runs: clipped ones too
                   app_sigma=rest[8] if len(rest) > 8 else 0.0)                    # older runs: standardised only

    def thresholds(self) -> dict:
        """What the run records: the thresholds and the model's size (JSON-friendly)."""
        return {"appearance": self.t_app if np.isfinite(self.t_app) else None,
                "appearance_check": bool(np.isfinite(self.t_app)),
                "appearance_trim": self.trim, "appearance_sigma": self.app_sigma,
                "local": self.t_local,
                "augment": getattr(self, "augment", "none"),
                "min_std": self.min_std, "min_sharpness": self.min_sharp, "max_noise": self.max_noise,
                "exposure": {"min_level": self.exposure[0], "max_level": self.exposure[1]},
                "max_clipped": self.max_clipped, "local_set_aside": self.local_set_aside,
                "images_set_aside": self.images_set_aside,
                "components": int(len(self.eigvals)),
                "good_references": int(len(self.good_images)), "margin": MARGIN, "quantile": QUANTILE,
                "texture": self.t_tex if self.texture is not None else None,
                "polarity": {"sign": self.polarity[0], "limit": self.polarity[1],
                             "detail_sign": self.detail_polarity[0], "detail_limit": self.detail_polarity[1],
                             "detail_min_sharpness": self.detail_polarity[2]},
                "local_masks_filled": self.mask_filled, "local_censors_clipped": self.censor_clipped,
                "local_components": (int(len(self.local_model["local_components"])) if self.local_model is not None
                                     else 0),
                "texture_components": int(len(self.texture["texture_whiten"])) if self.texture is not None else 0,
                "texture_references": int(len(self.texture["texture_refs"])) if self.texture is not None else 0}

    def save(self, path) -> None:
        from .fsutil import atomic_write_npz
        atomic_write_npz(path, self.arrays())

    @classmethod
    def load(cls, path):
        from .fsutil import read_npz
        return cls.from_arrays(read_npz(path))
