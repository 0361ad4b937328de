#!/usr/bin/env python3
"""Judge connector images at the line with an exported SNW bundle: GOOD / DEFECT / UNKNOWN, score, pin, where.

Needs only numpy, a LiteRT runtime and (to read image files) Pillow; no TensorFlow, no snw_core:

    pip install numpy ai-edge-litert==2.3.0 pillow        # Raspberry Pi 4/5 (aarch64) or x86-64 Linux
    python3 inspect_bundle.py IMAGE [IMAGE ...]            # one JSON line per image on stdout
    python3 inspect_bundle.py FOLDER                       # every image file inside, in name order
    python3 inspect_bundle.py --bench 200 IMAGE            # latency per image on this computer
    python3 inspect_bundle.py --self-test                  # the bundle checks itself, no image needed

Runtime, first found: ``ai_edge_litert`` (LiteRT, the maintained runtime), ``tflite_runtime`` (its older
name), ``tensorflow.lite``. Inputs: PNG, JPEG, BMP (anything Pillow reads) of the bundle's image size, or
``.npy`` files with uint8 arrays (h, w) or (n, h, w) when Pillow is missing. Colour becomes grayscale.
``--resize`` scales images of another size with the same aspect ratio.

Exit status: 0 all judged; 2 bad input (nothing judged, one line per bad file on stderr); 1 other failure.
Each JSON line has: file, verdict (GOOD/DEFECT/UNKNOWN), reason, defect (= not GOOD), score, threshold (DEFECT
when score > threshold), pin (guessed pin address; meaningful for DEFECT), pin_confidence (0..1), nearest_good /
nearest_defect (row indices in the training data set named in bundle.json) with their distances and the nearest
defect's label, defect_y / defect_x (pixel of the strongest local evidence), appearance (> 1: not recognised as
the part: UNKNOWN) and local (> 1: a local difference from the good parts: DEFECT). UNKNOWN means the image is
not the part the model knows (camera fault, empty fixture, another part type), softer or noisier than the
run can judge, far darker or brighter than its training images (a lamp off) or clipped by glare: it is never
passed.
With five or more images the camera check warns on stderr when the batch is darker, brighter, softer, noisier or
lower in contrast than the training images were (bundle.json "acquisition"; the same check as the dashboard's).
More than 1,000 images (an archive) are judged and printed 1,000 at a time, in file order, and the camera check
names the block it warns about.

In a line program, load once and judge each item as it comes (about a millisecond per image; start it
with OPENBLAS_NUM_THREADS=1 when it imports numpy before this module)::

    from inspect_bundle import Bundle, CameraMonitor
    b = Bundle("path/to/bundle")
    rows = b.judge(images_uint8)            # (n, h, w) -> list of dicts as above
    monitor = CameraMonitor(b.meta.get("acquisition"), window=50)
    found = monitor.add(image)              # the camera check over the last 50 images judged one at a time;
                                            # monitor.changed: a finding came or went since the last image
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

# The matrices here are tiny (one image against a few thousand references): a multi-threaded BLAS only
# adds hand-over cost, up to 10x on a busy CPU. Takes effect when numpy is first imported here; a line
# program that imports numpy itself should set OPENBLAS_NUM_THREADS=1 in its environment.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

FORMAT = 2
MAX_SIDE = 1024
ASPECT_TOLERANCE = 0.01
HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ("file", "verdict", "reason", "defect", "score", "threshold", "pin", "pin_confidence", "nearest_good",
          "nearest_good_distance", "nearest_defect", "nearest_defect_label", "nearest_defect_distance",
          "defect_y", "defect_x", "appearance", "local", "patch")
UNKNOWN_REASON = "not recognised as this part: check camera, fixture, part type"
FLAT_REASON = "almost no contrast (flat frame): check lamp, lens cap, exposure"
BLUR_REASON = "out of focus (less sharp than the images this run can judge): check lens and focus"
NOISE_REASON = "too noisy (noisier than the images this run can judge): check gain, exposure and light"
EXPOSURE_REASON = "far darker or brighter than the images this run was trained on: check lamp, lens cap and exposure"
GLARE_REASON = "clipped highlights (glare, a reflection or too much light): check lamp, reflections and exposure"
NOISE_RULE_NOTE = " (noisy image: score scaled, no local difference from the good parts)"
INVERTED_REASON = "grey levels inverted (a negative image): check the camera's pixel format and settings"
LOCAL_REASON = "local difference from the good parts"
PATCH_REASON = "a neighbourhood unlike any on the good parts (patch evidence)"
FLIP_REASON = "the part sits flipped or turned round in the fixture"
LOCAL_K = 3
LOCAL_SIGMA = 0.8
LOCAL_FLOOR = 0.05
DETAIL_SIGMAS = (0.5, 2.0)            # the detail polarity's band: a Gaussian of the first minus the second
PLACE_SIGMA, PLACE_MIN = 1.5, 1e-6
_HIGH_BIT_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;32", "I;32L", "I;32B")


class BadInput(Exception):
    """Input that cannot be judged; the message is meant for the operator."""


def load_interpreter_class():
    """The LiteRT Interpreter class and the runtime's name: ai_edge_litert, tflite_runtime or tensorflow."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf
        return tf.lite.Interpreter, "tensorflow"
    except ImportError:
        pass
    raise RuntimeError("No LiteRT runtime found. Install one: pip install ai-edge-litert==2.3.0 "
                       "(or tflite-runtime, or tensorflow).")


def quantiles_last(a, qs):
    """Quantiles (linear interpolation) along the last axis: (..., m) -> (len(qs), ...), as snw_core.gate."""
    s = np.sort(a, axis=-1)
    m = s.shape[-1]
    out = []
    for q in qs:
        pos = float(q) * (m - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, m - 1)
        out.append(s[..., lo] + (pos - lo) * (s[..., hi] - s[..., lo]))
    return np.stack(out)


def _edge_filter(n: int, taps) -> np.ndarray:
    """(n, n) matrix M with M @ v = the 1-D filter ``taps`` (odd length, centred) over v, edges repeated."""
    r = len(taps) // 2
    m = np.zeros((n, n))
    for i in range(n):
        for t, k in enumerate(taps):
            m[i, min(max(i + t - r, 0), n - 1)] += k
    return m


def blur_matrix(n: int, sigma: float) -> np.ndarray:
    """The Gaussian blur of snw_core.imageops (radius ceil(3 sigma), normalised taps) along one axis."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return _edge_filter(n, k / k.sum())


def box_matrix(n: int) -> np.ndarray:
    """The sum over 3 neighbouring pixels along one axis, edges repeated."""
    return _edge_filter(n, (1.0, 1.0, 1.0))


def standardize(images):
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1.0)


class Gate:
    """The not-a-part check (UNKNOWN) and the local evidence / heat map, exactly as the dashboard computes
    them (snw_core.gate): a PCA appearance model of the standardised train images, the texture signature (per
    principal component of the train goods' small squares, the median and upper quartile over the image of the
    squared projection) against its nearest reference signatures (absent in older bundles: not checked), and the
    local evidence: per pixel what a model of the good train images leaves unexplained, over what it leaves of the
    goods themselves (older bundles: the difference from the most similar good train images)."""

    def __init__(self, path: str):
        with np.load(os.path.join(path, "gate.npz"), allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        self.mean = np.asarray(a["mean"], np.float64)
        self.components = np.asarray(a["components"], np.float64)
        self.eigvals = np.asarray(a["eigvals"], np.float64)
        self.good_images = np.asarray(a["good_images"], np.uint8)
        self.resid_var, self.t_app, self.t_local, self.min_std, *rest = (float(v) for v in a["scalars"])
        self.min_sharp = rest[0] if rest else 0.0
        self.max_noise = rest[1] if len(rest) > 1 else 0.0       # too noisy to judge above it; 0 = not checked
        # the lowest and highest mean grey level of an image it judges; (0, 0) = not checked (older bundles)
        self.exposure = (rest[2], rest[3]) if len(rest) > 3 else (0.0, 0.0)
        # the largest share of clipped pixels (>= 250) of an image it judges; 0 = not checked (older bundles)
        self.max_clipped = rest[4] if len(rest) > 4 else 0.0
        # the share of pixels the appearance residual leaves out, those it explains worst (older bundles: none)
        self.trim = rest[5] if len(rest) > 5 else 0.0
        # the local evidence leaves out the pixels registration filled (older bundles: they count)
        self.mask_filled = len(rest) > 6 and rest[6] > 0
        # ... and a clipped pixel counts only where it is brighter than the model expects (older bundles: both ways)
        self.censor_clipped = len(rest) > 7 and rest[7] > 0
        # the appearance model's view: images blurred by this (px), light ramp removed (older bundles: 0, as they are)
        self.app_sigma = rest[8] if len(rest) > 8 else 0.0
        h, w = tuple(np.asarray(a["good_images"]).shape[1:])
        if self.app_sigma > 0:
            self.app_blur_y, self.app_blur_x_t = blur_matrix(h, self.app_sigma), blur_matrix(w, self.app_sigma).T
            yy, xx = np.mgrid[0:h, 0:w]
            self.plane = np.stack([np.ones(h * w), (yy.ravel() - (h - 1) / 2) / h, (xx.ravel() - (w - 1) / 2) / w], 1)
            self.plane_pinv_t = np.linalg.pinv(self.plane).T
        # the polarity check (sign, limit): 0 = not checked (older bundles, near symmetric grey levels); the same on
        # the images' fine detail (values 3-5: sign, limit, the least sharpness it reads; older bundles: not checked)
        polarity = tuple(float(v) for v in a["polarity"]) if "polarity" in a else (0.0, 0.0)
        self.polarity = polarity[:2]
        self.detail_polarity = polarity[2:5] if len(polarity) > 4 else (0.0, 0.0, 0.0)
        if self.detail_polarity[0]:
            self.detail_blur = [(blur_matrix(h, s), np.ascontiguousarray(blur_matrix(w, s).T)) for s in DETAIL_SIGMAS]
        keys = ("texture_components", "texture_whiten", "texture_refs", "texture_quantiles", "texture_scalars")
        self.texture = {k: np.asarray(a[k], np.float64) for k in keys} if all(k in a for k in keys) else None
        if self.texture is not None:
            self.texture["refs_sq"] = np.sum(self.texture["texture_refs"] ** 2, 1)
            self.texture["refs_t"] = np.ascontiguousarray(self.texture["texture_refs"].T)
        self.image_shape = tuple(self.good_images.shape[1:])
        h, w = self.image_shape
        keys = ("local_mean", "local_components", "local_var")
        self.local = None                      # the goods model of the local evidence (older bundles: none)
        if all(k in a for k in keys):
            self.local = {k: np.asarray(a[k], np.float64) for k in keys}
            self.local["components_t"] = np.ascontiguousarray(self.local["local_components"].T)
            self.local["blur_y"] = blur_matrix(h, LOCAL_SIGMA)
            self.local["blur_x_t"] = np.ascontiguousarray(blur_matrix(w, LOCAL_SIGMA).T)
            self.local["var"] = self.local["local_var"].reshape(-1)
        self.good_z = standardize(self.good_images)
        self.good_sq = np.sum(self.good_z ** 2, axis=1)
        self.good_z32_t = np.ascontiguousarray(self.good_z.T, np.float32)
        self.good_sq32 = self.good_sq.astype(np.float32)
        h, w = self.image_shape
        self.box_y, self.box_x_t = box_matrix(h) / 3.0, box_matrix(w).T / 3.0

    def _appearance_view(self, images, z):
        """What the appearance model compares (snw_core.gate.appearance_view): the images blurred, minus their
        least-squares plane, over their spread + 1; ``z`` (the standardised images) where the model is older."""
        if self.app_sigma <= 0:
            return z
        x = np.asarray(images, np.float64)
        flat = (self.app_blur_y @ x @ self.app_blur_x_t).reshape(len(x), -1)
        r = flat - (flat @ self.plane_pinv_t) @ self.plane.T
        return r / (r.std(axis=1, keepdims=True) + 1.0)

    def check(self, images, filled=None) -> dict:
        """The checks of uint8 images (n, h, w); ``filled``: bool (n, h, w), the pixels registration filled, or
        None."""
        images = np.asarray(images)
        h, w = self.image_shape
        z = standardize(images)
        zc = self._appearance_view(images, z) - self.mean
        c = zc @ self.components.T
        r = zc - c @ self.components
        r2 = r ** 2
        m = int(np.ceil(self.trim * r2.shape[1])) if self.trim > 0 else 0
        energy = r2.sum(1) - (np.partition(r2, r2.shape[1] - m, axis=1)[:, r2.shape[1] - m:].sum(1) if m else 0.0)
        appearance = 0.5 * ((c ** 2 / self.eigvals).mean(1) + energy / self.resid_var) / self.t_app
        texture = np.zeros(len(images))
        if self.texture is not None:
            t = self.texture
            ps, stride, t_tex, k = t["texture_scalars"]
            ps, stride = int(ps), int(stride)
            x = np.asarray(images, np.float64).reshape(len(images), -1)
            lo, med, hi = quantiles_last(x, (0.25, 0.5, 0.75))               # robust: minus median, over IQR
            zr = ((x - med[:, None]) / ((hi - lo)[:, None] / 1.349 + 1.0)).reshape(-1, h, w)
            sq = np.lib.stride_tricks.sliding_window_view(zr, (ps, ps), axis=(1, 2))
            proj = sq[:, ::stride, ::stride].reshape(len(z), -1, ps * ps) @ t["texture_components"].T
            e = np.log(quantiles_last(np.swapaxes(proj ** 2, 1, 2), t["texture_quantiles"]) + 1e-3)   # (Q, n, K)
            f = e.transpose(1, 0, 2).reshape(len(z), -1) @ t["texture_whiten"]
            d2 = np.maximum(np.sum(f ** 2, 1)[:, None] + t["refs_sq"][None] - 2.0 * (f @ t["refs_t"]), 0.0)
            texture = np.partition(d2, int(k) - 1, axis=1)[:, :int(k)].mean(1) / f.shape[1] / t_tex
        x64 = np.asarray(images, np.float64)
        flat = x64.reshape(len(images), -1).std(1) < self.min_std
        lap = x64[:, :-2, 1:-1] + x64[:, 2:, 1:-1] + x64[:, 1:-1, :-2] + x64[:, 1:-1, 2:] - 4.0 * x64[:, 1:-1, 1:-1]
        sharpness = np.abs(lap).mean(axis=(1, 2)) / (x64.std(axis=(1, 2)) + 1.0)
        blurred = ~flat & (sharpness < self.min_sharp)
        # Immerkaer's noise sd over the grey-level spread: too noisy above max_noise; the noise rule's measure
        k = (x64[:, :-2, :-2] - 2 * x64[:, :-2, 1:-1] + x64[:, :-2, 2:] - 2 * x64[:, 1:-1, :-2]
             + 4 * x64[:, 1:-1, 1:-1] - 2 * x64[:, 1:-1, 2:]
             + x64[:, 2:, :-2] - 2 * x64[:, 2:, 1:-1] + x64[:, 2:, 2:])
        noise = np.sqrt(np.pi / 2) * np.abs(k).mean(axis=(1, 2)) / 6 / (x64.std(axis=(1, 2)) + 1.0)
        noisy = ~flat & (noise > self.max_noise) if self.max_noise > 0 else np.zeros(len(images), bool)
        sign, limit = self.polarity
        inverted = np.zeros(len(images), bool)
        if sign:                               # grey-level skew (q95 + q5 - 2 q50) / (q95 - q5), mirrored: inverted
            lo, med, hi = quantiles_last(x64.reshape(len(images), -1), (0.05, 0.5, 0.95))
            inverted = ~flat & (sign * (hi + lo - 2.0 * med) / np.maximum(hi - lo, 1e-9) < sign * limit)
        sign, limit, detail_sharp = self.detail_polarity
        if sign:                               # the same skew of the fine detail: blurred a little minus blurred more
            (ay, ax_t), (by, bx_t) = self.detail_blur
            d = (ay @ x64 @ ax_t - by @ x64 @ bx_t).reshape(len(images), -1)
            lo, med, hi = quantiles_last(d, (0.05, 0.5, 0.95))
            skew = (hi + lo - 2.0 * med) / np.maximum(hi - lo, 1e-9)
            inverted |= ~flat & (sharpness >= detail_sharp) & (sign * skew < sign * limit)
        level = x64.reshape(len(images), -1).mean(1)
        lo_level, hi_level = self.exposure
        exposure = ~flat & ((level < lo_level) | ((level > hi_level) & (hi_level > 0)))
        clipped_share = (np.asarray(images).reshape(len(images), -1) >= 250).mean(1)
        clipped = ~flat & (clipped_share > self.max_clipped) if self.max_clipped > 0 else np.zeros(len(images), bool)
        known = None
        if filled is not None and self.mask_filled:
            known = ~np.asarray(filled, bool).reshape(len(z), -1)
        if self.local is not None:
            clipped_px = (images.reshape(len(z), -1) >= 250) if self.censor_clipped else None
            heat, local = self._local_heat(z, known, clipped_px)
        else:
            heat, local = self._nearest_goods_heat(z, known)
        y, x = np.unravel_index(heat.argmax(1), (h, w))
        return {"appearance": appearance, "texture": texture, "flat": flat, "blurred": blurred, "inverted": inverted,
                "noise": noise, "noisy": noisy, "level": level, "exposure": exposure, "clipped_share": clipped_share,
                "clipped": clipped,
                "unknown": (flat | blurred | noisy | inverted | exposure | clipped | (appearance > 1.0)
                            | (texture > 1.0)),
                "local": local,
                "local_defect": local > 1.0, "defect_y": y, "defect_x": x, "heatmap": heat.reshape(-1, h, w)}

    def _local_heat(self, z, known=None, clipped=None):
        """Per pixel the squared residual outside the goods model's components, smoothed by a Gaussian first,
        over the goods' own; the local evidence is its peak over its mean (over the ``known`` pixels: those
        registration did not fill). A ``clipped`` pixel's residual counts only where it is brighter than expected."""
        m = self.local
        h, w = self.image_shape
        zc = z - m["local_mean"]
        r = zc - (zc @ m["components_t"]) @ m["local_components"]
        if clipped is not None:
            r[clipped & (r < 0)] = 0.0
        if known is not None:
            r *= known                           # a filled pixel's residual does not spill into its neighbours
        r = r.reshape(-1, h, w)
        r = (m["blur_y"] @ r @ m["blur_x_t"]).reshape(len(z), -1)
        heat = r ** 2 / m["var"]
        if known is None:
            return heat, heat.max(1) / (heat.mean(1) + LOCAL_FLOOR) / self.t_local
        heat *= known
        return heat, heat.max(1) / (heat.sum(1) / np.maximum(known.sum(1), 1) + LOCAL_FLOOR) / self.t_local

    def _nearest_goods_heat(self, z, known=None):
        """Older bundles (and fewer than 4 train goods): the difference from the most similar good train images,
        smoothed over 3 x 3 px; 0 where registration filled the pixel (``known`` False)."""
        h, w = self.image_shape
        kk = min(LOCAL_K, self.good_z.shape[0])
        # the kk most similar goods: a float32 pass picks kk + 8 candidates, float64 decides among them
        c = min(kk + 8, self.good_z.shape[0])
        z32 = z.astype(np.float32)
        d2 = np.sum(z32 ** 2, 1)[:, None] + self.good_sq32[None] - 2.0 * (z32 @ self.good_z32_t)
        cand = np.argpartition(d2, c - 1, axis=1)[:, :c] if c < len(self.good_z) else np.tile(
            np.arange(len(self.good_z)), (len(z), 1))
        exact = np.sum(z ** 2, 1)[:, None] + self.good_sq[cand] - 2.0 * np.einsum("nd,ncd->nc", z, self.good_z[cand])
        nn = np.take_along_axis(cand, np.argpartition(exact, kk - 1, axis=1)[:, :kk], axis=1)
        diff = np.abs(z[:, None, :] - self.good_z[nn]).min(1).reshape(-1, h, w)
        heat = (self.box_y @ diff @ self.box_x_t).reshape(len(z), -1)      # mean over 3 x 3 px, edges repeated
        if known is not None:
            heat *= known
        local = heat.max(1) / (quantiles_last(heat, (0.75,))[0] + 0.05) / self.t_local
        return heat, local


class Registration:
    """The part put back where the taught parts sit before it is judged, exactly as the dashboard does it
    (snw_core.register): the pose (shift, turn) from the best correlation with the template, undone beyond a
    dead band; pixels without a source are filled from the most similar good reference."""
    MARGIN, SIGMA, SHIFT_DEADBAND, ANGLE_DEADBAND = 3, 0.5, 0.5, 1.0

    def __init__(self, path: str):
        with np.load(os.path.join(path, "register.npz"), allow_pickle=False) as z:
            self.templates = np.asarray(z["templates"], np.float64)
            self.angles = np.asarray(z["angles"], np.float64)
            refs = np.asarray(z["references"], np.uint8)
            self.flip = ((np.asarray(z["flip_weights"], np.float64), *(float(v) for v in z["flip_bias_cut"]))
                         if "flip_weights" in z.files else None)
        self.image_shape = h, w = tuple(refs.shape[1:])
        self.ref_z = standardize(refs)
        self.ref_sq = np.sum(self.ref_z ** 2, axis=1)
        yy, xx = np.mgrid[0:h, 0:w]
        self.plane = np.stack([np.ones(h * w), (yy.ravel() - (h - 1) / 2) / h, (xx.ravel() - (w - 1) / 2) / w], 1)
        self.plane_pinv = np.linalg.pinv(self.plane)
        self.blur_y, self.blur_x_t = blur_matrix(h, self.SIGMA), blur_matrix(w, self.SIGMA).T
        self.grid = np.mgrid[0:h, 0:w].astype(np.float64)

    @staticmethod
    def _sample(x, sy, sx):
        n, h, w = x.shape
        sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
        y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        fy, fx = sy - y0, sx - x0
        i = np.arange(n)[:, None, None]
        return ((1 - fy) * (1 - fx) * x[i, y0, x0] + (1 - fy) * fx * x[i, y0, x1]
                + fy * (1 - fx) * x[i, y1, x0] + fy * fx * x[i, y1, x1])

    @staticmethod
    def _cubic(x, sy, sx, a=-0.5):
        """Cubic convolution (Keys, 4 x 4 taps), edges replicated: the registration's resampling."""
        n, h, w = x.shape
        sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
        y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)

        def weights(t):
            u = 1.0 - t
            return (a * ((t + 1) ** 3 - 5 * (t + 1) ** 2 + 8 * (t + 1) - 4), ((a + 2) * t - (a + 3)) * t * t + 1,
                    ((a + 2) * u - (a + 3)) * u * u + 1, a * ((u + 1) ** 3 - 5 * (u + 1) ** 2 + 8 * (u + 1) - 4))

        wy, wx = weights(sy - y0), weights(sx - x0)
        i = np.arange(n)[:, None, None]
        cols = [np.clip(x0 + k - 1, 0, w - 1) for k in range(4)]
        out = 0.0
        for m in range(4):
            yy = np.clip(y0 + m - 1, 0, h - 1)
            out = out + wy[m] * sum(wx[k] * x[i, yy, cols[k]] for k in range(4))
        return out

    def _geometry(self, p):
        h, w = self.image_shape
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        yy, xx = self.grid
        return h, w, cy, cx, yy, xx, np.deg2rad(-p[:, 2])[:, None, None]

    def estimate(self, images):
        x = np.asarray(images, np.float64)
        n, h, w = x.shape
        flat = x.reshape(n, -1)
        r = flat - (flat @ self.plane_pinv.T) @ self.plane.T
        x = self.blur_y @ (r / (r.std(axis=1, keepdims=True) + 1.0)).reshape(n, h, w) @ self.blur_x_t
        m, na = self.MARGIN, len(self.angles)
        # every shift by -m..m px (dy major): the windows of a sliding view, copied once
        win = np.lib.stride_tricks.sliding_window_view(x, (h - 2 * m, w - 2 * m), axis=(1, 2)).reshape(
            n, (2 * m + 1) ** 2, -1)
        win = win - win.mean(2, keepdims=True)
        win /= np.linalg.norm(win, axis=2, keepdims=True) + 1e-12
        sc = (win @ self.templates.T).reshape(n, 2 * m + 1, 2 * m + 1, na)
        iy, ix, ia = np.unravel_index(sc.reshape(n, -1).argmax(1), sc.shape[1:])
        b, c, e = np.arange(n), sc[np.arange(n), iy, ix, ia], 2 * m

        def para(lo, hi):
            den = lo - 2 * c + hi
            safe = np.where(np.abs(den) > 1e-12, den, 1.0)
            return np.where(np.abs(den) > 1e-12, 0.5 * (lo - hi) / safe, 0.0).clip(-0.5, 0.5)

        fy = np.where((iy > 0) & (iy < e), para(sc[b, np.maximum(iy - 1, 0), ix, ia], sc[b, np.minimum(iy + 1, e), ix, ia]), 0.0)
        fx = np.where((ix > 0) & (ix < e), para(sc[b, iy, np.maximum(ix - 1, 0), ia], sc[b, iy, np.minimum(ix + 1, e), ia]), 0.0)
        fa = np.where((ia > 0) & (ia < na - 1), para(sc[b, iy, ix, np.maximum(ia - 1, 0)],
                                                     sc[b, iy, ix, np.minimum(ia + 1, na - 1)]), 0.0)
        step = self.angles[1] - self.angles[0] if na > 1 else 0.0
        return np.stack([iy - m + fy, ix - m + fx, self.angles[ia] + fa * step], 1)

    def apply(self, images):
        """-> (registered uint8 (n, h, w), applied correction (n, 3))."""
        pose = self.estimate(images)
        applied = np.zeros_like(pose)
        turn = np.abs(pose[:, 2]) > self.ANGLE_DEADBAND
        shift = (np.abs(pose[:, :2]) > self.SHIFT_DEADBAND).any(1) & ~turn
        applied[shift, :2] = np.rint(pose[shift, :2])
        applied[turn] = pose[turn]
        out = np.array(images, copy=True)
        sel = np.flatnonzero(turn | (applied[:, :2] != 0).any(1))
        if len(sel):
            h, w = self.image_shape
            sy, sx, known = self._source(applied[sel])
            known = known.reshape(len(sel), -1)
            v = self._cubic(np.asarray(images)[sel].astype(np.float64), sy, sx).reshape(len(sel), -1)
            for i in np.flatnonzero(~known.all(1)):
                ki = known[i]
                unk = np.flatnonzero(~ki)
                am, asd = v[i, ki].mean(), v[i, ki].std() + 1.0
                z = np.where(ki, (v[i] - am) / asd, 0.0)
                d = self.ref_sq - np.sum(self.ref_z[:, unk] ** 2, axis=1) - 2.0 * (self.ref_z @ z)
                # the reference's gain and offset and a linear ramp, fitted on the known pixels (the image's light)
                basis = np.concatenate([self.ref_z[int(np.argmin(d))][:, None], self.plane], 1)
                coef = np.linalg.lstsq(basis[ki], v[i, ki], rcond=None)[0]
                v[i, unk] = basis[unk] @ coef
            out[sel] = np.clip(np.rint(v), 0, 255).astype(np.uint8).reshape(len(sel), h, w)
        return out, applied

    def unknown_pixels(self, applied):
        """bool (n, h, w): the registered pixels without a source in the input (filled from a good reference);
        None where no image was corrected."""
        sel = np.flatnonzero((applied != 0).any(1))
        if not len(sel):
            return None
        out = np.zeros((len(applied), *self.image_shape), bool)
        out[sel] = ~self._source(applied[sel])[2]
        return out

    def _source(self, p):
        """Where each pixel of the corrected images comes from in the input, for corrections p (n, 3): (sy, sx,
        known), each (n, h, w); known = the source lies inside the input image."""
        h, w, cy, cx, yy, xx, a = self._geometry(p)
        dy, dx = yy[None] - cy + p[:, 0, None, None], xx[None] - cx + p[:, 1, None, None]
        sy, sx = cy + np.cos(a) * dy - np.sin(a) * dx, cx + np.sin(a) * dy + np.cos(a) * dx
        return sy, sx, (sy > -0.01) & (sy < h - 0.99) & (sx > -0.01) & (sx < w - 0.99)

    def flipped(self, registered):
        """True where the part sits flipped top to bottom or turned round in the fixture."""
        if self.flip is None:
            return np.zeros(len(registered), bool)
        w, b, cut = self.flip
        return standardize(registered) @ w + b > cut

    def to_input(self, checks, applied):
        """The heat map and location of registered images mapped back onto the input images' pixels."""
        sel = np.flatnonzero((applied != 0).any(1))
        if not len(sel):
            return checks
        out = dict(checks)
        p = applied[sel]
        h, w, cy, cx, yy, xx, a = self._geometry(p)
        heat = np.asarray(checks["heatmap"], np.float64).copy()
        uy, ux = yy[None] - cy, xx[None] - cx
        ry = cy + np.cos(a) * uy + np.sin(a) * ux - p[:, 0, None, None]
        rx = cx - np.sin(a) * uy + np.cos(a) * ux - p[:, 1, None, None]
        inside = (ry > -0.5) & (ry < h - 0.5) & (rx > -0.5) & (rx < w - 0.5)
        heat[sel] = np.where(inside, self._sample(heat[sel], ry, rx), 0.0)
        out["heatmap"] = heat.astype(np.asarray(checks["heatmap"]).dtype)
        a1 = a[:, 0, 0]
        dy = np.asarray(checks["defect_y"], np.float64)[sel] - cy + p[:, 0]
        dx = np.asarray(checks["defect_x"], np.float64)[sel] - cx + p[:, 1]
        y, x = np.array(checks["defect_y"], np.int64, copy=True), np.array(checks["defect_x"], np.int64, copy=True)
        y[sel] = np.clip(np.rint(cy + np.cos(a1) * dy - np.sin(a1) * dx), 0, h - 1)
        x[sel] = np.clip(np.rint(cx + np.sin(a1) * dy + np.cos(a1) * dx), 0, w - 1)
        out["defect_y"], out["defect_x"] = y, x
        return out


class Patches:
    """The patch memory bank (snw_core.patches): patch score = the largest, over the feature map's positions,
    distance to the nearest bank vector; DEFECT above the threshold."""

    def __init__(self, path: str):
        with np.load(os.path.join(path, "patches.npz"), allow_pickle=False) as z:
            self.bank = np.asarray(z["bank"], np.float32)
            self.threshold = float(z["threshold"][0])
            self.grid = tuple(int(v) for v in z["grid"])
            self.scale = float(z["scale"][0]) if "scale" in z.files else float("nan")
            self.places_weak = bool(z["places_weak"][0]) if "places_weak" in z.files else False
        self.bsq = np.sum(self.bank * self.bank, axis=1)
        self.bt2 = np.ascontiguousarray(-2.0 * self.bank.T)

    def score(self, features):
        f = np.asarray(features, np.float32)
        q = f.reshape(-1, f.shape[-1])
        m = q @ self.bt2                     # |q - b|^2 = |q|^2 + min over b of (|b|^2 - 2 q.b), one temporary
        m += self.bsq
        d2 = m.min(1) + np.sum(q * q, 1)
        maps = np.sqrt(np.maximum(d2, 0.0)).astype(np.float64).reshape(len(f), *self.grid)
        return maps.reshape(len(f), -1).max(1), maps

    def add_evidence(self, checks, patch, maps):
        """The dashboard's add_patch_evidence: patch / threshold, patch_defect, and the heat map and location
        from the patch map where its peak (relative to the threshold, or to the bank's scale where the threshold
        is not used) beats the pixel local evidence; where the bank places weak evidence (places_weak), also
        wherever the pixel evidence stays within the good parts' (local <= 1)."""
        out = dict(checks)
        t = self.threshold
        ok = np.isfinite(t) and t > 0
        rel = patch / t if ok else np.zeros_like(patch)
        out["patch"], out["patch_defect"] = rel, patch > t
        if not ok:
            t = self.scale
            ok = np.isfinite(t) and t > 0
        if ok:
            h, w = out["heatmap"].shape[1:]
            use = patch / t > out["local"]
            if self.places_weak:
                use = use | (np.asarray(out["local"]) <= 1.0)
            if use.any():
                m = maps[use] / t
                ry, rx = -(-h // m.shape[1]), -(-w // m.shape[2])
                up = np.repeat(np.repeat(m, ry, axis=1), rx, axis=2)[:, :h, :w]
                heat = out["heatmap"].copy()
                heat[use] = up
                out["heatmap"] = heat
                i, j = np.unravel_index(m.reshape(len(m), -1).argmax(1), m.shape[1:])    # the block's centre
                y, x = np.minimum(i * ry + ry // 2, h - 1), np.minimum(j * rx + rx // 2, w - 1)
                dy, dx = np.array(out["defect_y"]).copy(), np.array(out["defect_x"]).copy()
                dy[use], dx[use] = y, x
                out["defect_y"], out["defect_x"] = dy, dx
        return out


class References:
    """The judgement from embeddings alone (numpy only): references, threshold, k and pin_k.

    good : (m, d) embeddings of the good train items, good_idx : their row indices in the training data
    defect, defect_labels, defect_idx : the same for the defective train items (pin addresses)
    """

    def __init__(self, good, good_idx, defect, defect_labels, defect_idx, threshold, k=3, pin_k=5, defect_yx=None,
                 noise_rule=None):
        # the run's rule for images noisier than its own (bundle.json "noise_rule"; older bundles: none)
        self.noise_rule = noise_rule if noise_rule and noise_rule.get("used") else None
        self.good = np.asarray(good, np.float64)
        self.good_idx = np.asarray(good_idx)
        self.defect = np.asarray(defect, np.float64).reshape(len(defect), self.good.shape[1])
        self.defect_labels = np.asarray(defect_labels).astype(str)
        self.defect_idx = np.asarray(defect_idx)
        self.threshold, self.k, self.pin_k = float(threshold), int(k), int(pin_k)
        self.classes, self.defect_class = np.unique(self.defect_labels, return_inverse=True)
        # where the gate placed each defective train item's strongest evidence (older bundles: not known)
        self.defect_yx = None if defect_yx is None else np.asarray(defect_yx, np.float64).reshape(-1, 2)
        self._good_t32 = np.ascontiguousarray(self.good.T, np.float32)
        self._good_sq32 = np.sum(self.good ** 2, axis=1).astype(np.float32)
        self._defect_t32 = np.ascontiguousarray(self.defect.T, np.float32)
        self._defect_sq32 = np.sum(self.defect ** 2, axis=1).astype(np.float32)

    @classmethod
    def load(cls, path: str, meta: dict):
        with np.load(os.path.join(path, "references.npz"), allow_pickle=False) as z:
            return cls(z["good"], z["good_idx"], z["defect"], z["defect_labels"], z["defect_idx"],
                       meta["threshold"], meta["k"], meta["pin_k"],
                       z["defect_yx"] if "defect_yx" in z.files else None, meta.get("noise_rule"))

    @staticmethod
    def _nearest(q, ref, ref_t32, ref_sq32, n):
        """The ``n`` nearest rows of ``ref`` to each query, nearest first (ties: lower row first).

        A float32 pass over all references picks ``n + 8`` candidates; their distances are then computed
        exactly in float64, so the result equals a full float64 search (a true neighbour would have to be
        8 places off in float32 rounding to be missed). Returns (rows (q, n), distances (q, n)).
        """
        m = ref.shape[0]
        c = min(n + 8, m)
        q32 = q.astype(np.float32)
        d2 = np.sum(q32 * q32, axis=1)[:, None] + ref_sq32[None, :] - 2.0 * (q32 @ ref_t32)
        cand = np.argpartition(d2, c - 1, axis=1)[:, :c] if c < m else np.tile(np.arange(m), (len(q), 1))
        exact = np.sqrt(np.sum((q[:, None, :] - ref[cand]) ** 2, axis=2))
        order = np.lexsort((cand, exact), axis=1)[:, :n]
        return np.take_along_axis(cand, order, axis=1), np.take_along_axis(exact, order, axis=1)

    def judge_embeddings(self, emb, names=None, checks=None) -> list:
        """The same judgement as the dashboard: score = mean distance to the k nearest good references;
        DEFECT when score > threshold; pin = distance-weighted vote of the pin_k nearest defect references.
        With ``checks`` (:meth:`Gate.check` of the images): UNKNOWN when the image is not recognised as the
        part, DEFECT also on strong local evidence; the location of the strongest evidence."""
        q = np.asarray(emb, np.float64).reshape(len(emb), -1)
        n = len(q)
        names = list(names) if names is not None else [None] * n
        gi, gd = self._nearest(q, self.good, self._good_t32, self._good_sq32, min(self.k, len(self.good)))
        score = gd.mean(axis=1)
        scaled = np.zeros(n, bool)
        if checks is not None and self.noise_rule is not None and "noise" in checks:
            # a noisy image without local evidence: its score scaled by threshold / twin (the dashboard's rule)
            r = self.noise_rule
            noise = np.asarray(checks["noise"])
            scaled = ((noise > r["min_noise"]) & (noise <= r.get("max_noise", np.inf))
                      & (np.asarray(checks["local"]) <= r["local"]))
            score = np.where(scaled, score * (self.threshold / r["twin"]), score)
        rows = []
        for i in range(n):
            twin = bool(score[i] > self.threshold)
            verdict = "DEFECT" if twin else "GOOD"
            reason = "score above the threshold" if twin else "score within the threshold"
            if scaled[i]:
                reason += NOISE_RULE_NOTE
            if checks is not None:
                if "patch_defect" in checks and checks["patch_defect"][i] and not twin:
                    verdict, reason = "DEFECT", PATCH_REASON
                if checks["local_defect"][i] and not twin:
                    verdict, reason = "DEFECT", LOCAL_REASON
                if "flipped" in checks and checks["flipped"][i]:
                    verdict, reason = "DEFECT", FLIP_REASON
                if checks["unknown"][i]:
                    verdict, reason = "UNKNOWN", (FLAT_REASON if checks["flat"][i] else
                                                  INVERTED_REASON if checks.get("inverted", [False] * (i + 1))[i]
                                                  else BLUR_REASON if checks.get("blurred", [False] * (i + 1))[i]
                                                  else NOISE_REASON if checks.get("noisy", [False] * (i + 1))[i]
                                                  else GLARE_REASON if checks.get("clipped", [False] * (i + 1))[i]
                                                  else EXPOSURE_REASON if checks.get("exposure", [False] * (i + 1))[i]
                                                  else UNKNOWN_REASON)
            has = checks is not None
            rows.append({"file": names[i], "verdict": verdict, "reason": reason, "defect": verdict != "GOOD",
                         "score": float(score[i]), "threshold": self.threshold, "pin": None,
                         "pin_confidence": 0.0, "nearest_good": int(self.good_idx[gi[i, 0]]),
                         "nearest_good_distance": float(gd[i, 0]), "nearest_defect": None,
                         "nearest_defect_label": None, "nearest_defect_distance": None,
                         "defect_y": int(checks["defect_y"][i]) if has else None,
                         "defect_x": int(checks["defect_x"][i]) if has else None,
                         "appearance": float(checks["appearance"][i]) if has else None,
                         "local": float(checks["local"][i]) if has else None,
                         "patch": float(checks["patch"][i]) if has and "patch" in checks else None})
        if len(self.defect):
            di, dd = self._nearest(q, self.defect, self._defect_t32, self._defect_sq32,
                                   min(self.pin_k, len(self.defect)))
            pins, conf = self._vote(di, dd)
            for i, row in enumerate(rows):
                j = di[i, 0]
                row.update(pin=pins[i], pin_confidence=conf[i], nearest_defect=int(self.defect_idx[j]),
                           nearest_defect_label=str(self.defect_labels[j]), nearest_defect_distance=float(dd[i, 0]))
            if checks is not None and self.defect_yx is not None:
                # a defect only the local or patch evidence saw: where the evidence is says which pin
                for i, row in enumerate(rows):
                    if row["verdict"] == "DEFECT" and not score[i] > self.threshold and row["reason"] != FLIP_REASON:
                        pin, share = self._place_vote(row["defect_y"], row["defect_x"])
                        if share > 0:
                            row.update(pin=pin, pin_confidence=share)
        return rows

    def _place_vote(self, y, x):
        """Every defective train item votes for its label with weight exp(-d^2 / (2 * 1.5^2)), d its evidence's
        distance (px) from (y, x); returns the winner and its share, share 0 where no train defect lay in reach."""
        d2 = ((np.array([float(y), float(x)])[None] - self.defect_yx) ** 2).sum(1)
        w = np.exp(-d2 / (2.0 * PLACE_SIGMA ** 2))
        votes = np.array([w[self.defect_class == c].sum() for c in range(len(self.classes))])
        total = votes.sum()
        win = int(votes.argmax())
        return str(self.classes[win]), (float(votes[win] / max(total, PLACE_MIN)) if total >= PLACE_MIN else 0.0)

    def _vote(self, idx, dist):
        """Distance-weighted vote (weight 1 / (d + 1e-9)) of the nearest defect references ``idx`` (nearest
        first); a tie goes to the tied label with the nearest neighbour. Returns labels and the winner's share."""
        n, kk = idx.shape
        n_cls = len(self.classes)
        cls = self.defect_class[idx]
        rows = np.repeat(np.arange(n), kk)
        votes = np.zeros((n, n_cls))
        np.add.at(votes, (rows, cls.ravel()), (1.0 / (dist + 1e-9)).ravel())
        first = np.full((n, n_cls), kk)
        np.minimum.at(first, (rows, cls.ravel()), np.tile(np.arange(kk), n))
        best = votes.max(axis=1, keepdims=True)
        tied = (best - votes) <= 1e-9 * np.abs(best)            # numpy.isclose(votes, best, rtol=1e-9, atol=0)
        win = np.argmin(np.where(tied, first, kk + 1), axis=1)
        conf = votes[np.arange(n), win] / votes.sum(axis=1)
        return [str(c) for c in self.classes[win]], [float(c) for c in conf]


class Bundle:
    """An exported bundle: the embedder (.tflite) and the :class:`References`.

    >>> b = Bundle(".")                                  # doctest: +SKIP
    >>> b.judge(np.zeros((1, 26, 36), np.uint8))[0]["verdict"]   # doctest: +SKIP
    'DEFECT'
    """

    def __init__(self, path: str = HERE, num_threads: int = 1):
        self.path = path
        with open(os.path.join(path, "bundle.json"), encoding="utf-8") as f:
            self.meta = json.load(f)
        if self.meta.get("format") != FORMAT:
            raise RuntimeError(f"bundle format {self.meta.get('format')!r}; this script reads format {FORMAT}")
        self.image_shape = tuple(int(x) for x in self.meta["image_shape"])
        self.refs = References.load(path, self.meta)
        self.threshold = self.refs.threshold
        self.gate = Gate(path) if os.path.exists(os.path.join(path, "gate.npz")) else None
        self.patches = Patches(path) if os.path.exists(os.path.join(path, "patches.npz")) else None
        self.registration = (Registration(path) if os.path.exists(os.path.join(path, "register.npz"))
                             and self.gate is not None else None)
        self.dim = int(self.meta.get("embedding_dim") or 0)
        interpreter_cls, self.runtime = load_interpreter_class()
        self.interpreter = interpreter_cls(model_path=os.path.join(path, self.meta["model"]),
                                           num_threads=num_threads)
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self._batch = None

    def embed(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, h, w) -> float32 embeddings (n, d). The model normalises the raw 0..255 pixels itself."""
        out = self._run(images)
        return out[:, :self.dim] if self.patches is not None else out

    def _run(self, images: np.ndarray) -> np.ndarray:
        """The model's whole output: embeddings, then (with a patch bank) the flattened patch features."""
        x = np.asarray(images)
        if x.ndim == 2:
            x = x[None]
        if tuple(x.shape[1:]) != self.image_shape:
            raise BadInput(f"images are {x.shape[1]} x {x.shape[2]} px, the bundle expects "
                           f"{self.image_shape[0]} x {self.image_shape[1]} px")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self._batch != len(x):
            self.interpreter.resize_tensor_input(self._in, [len(x), *self.image_shape])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._in, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out).copy()

    def judge_embeddings(self, emb, names=None, checks=None) -> list:
        return self.refs.judge_embeddings(emb, names, checks)

    def judge(self, images, names=None) -> list:
        """uint8 (n, h, w) -> one dict per image (the fields in FIELDS)."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if tuple(images.shape[1:]) != self.image_shape:
            raise BadInput(f"images are {images.shape[1]} x {images.shape[2]} px, the bundle expects "
                           f"{self.image_shape[0]} x {self.image_shape[1]} px")
        applied = None
        if self.registration is not None:
            images, applied = self.registration.apply(images)
        out = self._run(images)
        emb = out[:, :self.dim] if self.patches is not None else out
        filled = self.registration.unknown_pixels(applied) if applied is not None else None
        checks = self.gate.check(images, filled) if self.gate is not None else None
        if checks is not None and self.registration is not None and self.registration.flip is not None:
            checks["flipped"] = self.registration.flipped(images)
        if checks is not None and self.patches is not None:
            grid = self.patches.grid
            feats = out[:, self.dim:].reshape(len(out), grid[0], grid[1], -1)
            patch, maps = self.patches.score(feats)
            checks = self.patches.add_evidence(checks, patch, maps)
        if checks is not None and applied is not None:
            checks = self.registration.to_input(checks, applied)
        return self.refs.judge_embeddings(emb, names, checks)

    def self_test(self, tolerance: float = 1e-4) -> dict:
        """Embed the check images stored at export and compare with the embeddings TensorFlow gave them."""
        with np.load(os.path.join(self.path, "check.npz"), allow_pickle=False) as z:
            images, expected = z["images"], z["embeddings"]
        got = self._run(images)
        d = self.dim if self.patches is not None else got.shape[1]

        def rel(a, b):
            return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))

        err = rel(got[:, :d], expected[:, :d])
        ok = err <= tolerance
        out = {"ok": ok, "max_relative_difference": err, "tolerance": tolerance, "n": int(len(images)),
               "runtime": self.runtime}
        if self.patches is not None:       # patch features: a larger range, float rounding shows more
            err_f = rel(got[:, d:], expected[:, d:])
            out.update(ok=ok and err_f <= 10 * tolerance, patch_features_relative_difference=err_f)
        return out


# ---------------------------------------------------------------- reading images

def _resize_ok(h, w, H, W):
    return min(h, w) > 0 and abs((w / h) / (W / H) - 1.0) <= ASPECT_TOLERANCE


#: image files a folder argument stands for (the same as the dashboard's data loader reads)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".npy")
#: images judged and printed at a time: an archive is judged in bounded memory, and the camera check speaks of
#: each block in file order
BLOCK = 1000


def _natural(s):
    import re
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", s) if t)


def expand_paths(paths):
    """A folder argument stands for every image file under it (sub-folders too, hidden ones left out), in
    natural order of the path below it; other arguments stay as given. Raises BadInput for a folder without
    images."""
    out = []
    for arg in paths:
        if not os.path.isdir(arg):
            out.append(arg)
            continue
        found = []
        for folder, dirs, files in os.walk(arg):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(folder, f) for f in files
                      if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        if not found:
            raise BadInput(f"The folder '{arg}' holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
        found.sort(key=lambda f: tuple(_natural(part) for part in os.path.relpath(f, arg).split(os.sep)))
        out += found
    return out


def read_images(paths, image_shape, resize=False):
    """Read files into uint8 (n, h, w), grayscale. Raises BadInput listing every file that cannot be judged."""
    H, W = image_shape
    images, names, problems = [], [], []
    for path in paths:
        if not os.path.isfile(path):
            problems.append(f"'{path}' does not exist or is not a file.")
            continue
        if path.lower().endswith(".npy"):
            try:
                a = np.load(path, allow_pickle=False)
            except Exception:
                problems.append(f"'{path}' is not a readable .npy file.")
                continue
            a = a[None] if a.ndim == 2 else a
            if a.ndim != 3 or a.dtype != np.uint8 or tuple(a.shape[1:]) != (H, W):
                problems.append(f"'{path}' holds {a.dtype} {a.shape}; expected uint8 ({H}, {W}) or (n, {H}, {W}).")
                continue
            for j, img in enumerate(a):
                images.append(img)
                names.append(path if len(a) == 1 else f"{path}[{j}]")
            continue
        try:
            from PIL import Image
        except ImportError:
            problems.append(f"'{path}': reading image files needs Pillow (pip install pillow); "
                            "or pass uint8 .npy arrays.")
            continue
        try:
            with open(path, "rb") as f:
                blob = f.read(64 * 1024 * 1024 + 1)
            im = Image.open(io.BytesIO(blob))          # reads the header only
            mode, (w, h) = im.mode, im.size
        except Exception:
            problems.append(f"'{path}' is not an image that can be read (PNG, JPEG or BMP expected).")
            continue
        if w > MAX_SIDE or h > MAX_SIDE or w * h == 0:
            problems.append(f"'{path}' is {h} x {w} px; images larger than {MAX_SIDE} px per side are refused "
                            "before decoding.")
            continue
        if mode in _HIGH_BIT_MODES:
            problems.append(f"'{path}' is a 16/32-bit or floating-point image (mode {mode}); convert it to "
                            "8-bit grayscale first.")
            continue
        if (h, w) != (H, W) and not (resize and _resize_ok(h, w, H, W)):
            hint = (" Same aspect ratio: pass --resize to scale it." if _resize_ok(h, w, H, W)
                    else " Another aspect ratio: crop it to the part first.")
            problems.append(f"'{path}' is {h} x {w} px (height x width); the bundle expects {H} x {W} px.{hint}")
            continue
        try:
            g = im if im.mode == "L" else im.convert("L")
            if (h, w) != (H, W):
                g = g.resize((W, H), Image.BOX if (h >= H and w >= W) else Image.BILINEAR)
            images.append(np.asarray(g, dtype=np.uint8))
            names.append(path)
        except Exception:
            problems.append(f"'{path}' could not be decoded (truncated or corrupt file).")
    if problems:
        raise BadInput("\n".join(problems))
    return (np.stack(images) if images else np.zeros((0, H, W), np.uint8)), names


# ---------------------------------------------------------------- camera check (snw_core.acquisition)

#: which side of each measure's training range is worth a warning, and what to check then
CAMERA_ADVICE = {
    ("brightness", "low"): ("darker than", "check the light and the exposure"),
    ("brightness", "high"): ("brighter than", "check the light and the exposure"),
    ("contrast", "low"): ("lower in contrast than", "check the light and the exposure"),
    ("contrast", "high"): ("higher in contrast than", "check the light and the exposure"),
    ("sharpness", "low"): ("softer than", "check the focus and the lens"),
    ("noise", "high"): ("noisier than", "check the camera's gain, the exposure and the light"),
}
CAMERA_MIN_IMAGES = 5


def camera_measures(images) -> dict:
    """Brightness, contrast, sharpness and relative noise of each image, as the run measured its training images."""
    x = np.asarray(images, np.float64)
    if x.ndim == 2:
        x = x[None]
    sd = x.std(axis=(1, 2))
    lap = x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:] - 4.0 * x[:, 1:-1, 1:-1]
    k = (x[:, :-2, :-2] - 2 * x[:, :-2, 1:-1] + x[:, :-2, 2:] - 2 * x[:, 1:-1, :-2] + 4 * x[:, 1:-1, 1:-1]
         - 2 * x[:, 1:-1, 2:] + x[:, 2:, :-2] - 2 * x[:, 2:, 1:-1] + x[:, 2:, 2:])
    noise = np.sqrt(np.pi / 2) * np.abs(k).mean(axis=(1, 2)) / 6
    return {"brightness": x.mean(axis=(1, 2)), "contrast": sd, "sharpness": np.abs(lap).mean(axis=(1, 2)) / (sd + 1.0),
            "noise": noise / (sd + 1.0)}


def camera_findings(profile, images) -> list:
    """Where the median of a batch (at least CAMERA_MIN_IMAGES images) lies outside the training images' 1st-99th
    percentile (bundle.json "acquisition"): the camera has moved away from the images the run learned from."""
    images = np.asarray(images)
    if not profile or len(images) < CAMERA_MIN_IMAGES:
        return []
    return _findings(profile, camera_measures(images))


def _findings(profile, m) -> list:
    """camera_findings from the measures of the images ({measure: array})."""
    out = []
    n = len(m["brightness"])
    for name in ("brightness", "contrast", "sharpness", "noise"):
        if name not in profile.get("measures", {}):
            continue
        lo, _, hi = profile["measures"][name]
        med = float(np.median(m[name]))
        side = "low" if med < lo else "high" if med > hi else None
        if side is None or (name, side) not in CAMERA_ADVICE:
            continue
        words, advice = CAMERA_ADVICE[(name, side)]
        out.append({"measure": name, "side": side, "median": med, "low": lo, "high": hi,
                    "message": f"the images are {words} the training images ({name} {_fmt(med)} on the median of "
                               f"{n}; the training images' 1st-99th percentile {_fmt(lo)}-{_fmt(hi)}): "
                               f"{advice}"})
    return out


class CameraMonitor:
    """The camera check for a line program that judges one image at a time: the measures of the last ``window``
    images, checked as one batch after each :meth:`add`. A camera that drifts during a shift (focus, gain, a
    lamp ageing) is found once the median of the window has left the training images' range, within about half a
    window of the change.

    >>> monitor = CameraMonitor(bundle.meta.get("acquisition"), window=50)      # doctest: +SKIP
    >>> for image in camera:                                                     # doctest: +SKIP
    ...     row = bundle.judge(image)[0]
    ...     found = monitor.add(image)
    ...     if monitor.changed:              # a finding came or went: tell someone once, not every image
    ...         log("; ".join(f["message"] for f in found) or "camera back within its training range")
    """

    def __init__(self, profile, window: int = 50):
        if int(window) < CAMERA_MIN_IMAGES:
            raise ValueError(f"window must be at least {CAMERA_MIN_IMAGES} images")
        self.profile, self.window = profile, int(window)
        self._measures = {k: np.zeros(0) for k in ("brightness", "contrast", "sharpness", "noise")}
        self.findings, self.changed = [], False

    def add(self, images) -> list:
        """Measure ``images`` (uint8 (h, w) or (n, h, w)), keep the last ``window`` and return the window's
        findings (camera_findings' dicts; [] while fewer than CAMERA_MIN_IMAGES are kept or for a bundle without
        a profile). ``changed`` says whether the set of findings (measure and side) differs from the last call's."""
        m = camera_measures(images)
        self._measures = {k: np.concatenate([v, m[k]])[-self.window:] for k, v in self._measures.items()}
        kept = len(self._measures["brightness"])
        found = _findings(self.profile, self._measures) if self.profile and kept >= CAMERA_MIN_IMAGES else []
        self.changed = ({(f["measure"], f["side"]) for f in found}
                        != {(f["measure"], f["side"]) for f in self.findings})
        self.findings = found
        return found


#: the drift check's condition a camera finding speaks of, its words, and the targets of a held row (as in the
#: dashboard: snw_core.acquisition.DRIFT_OF, snw_core.drift.WORDS and TARGETS)
DRIFT_OF = {("sharpness", "low"): "blur", ("noise", "high"): "noise", ("contrast", "low"): "contrast",
            ("brightness", "low"): "brightness", ("brightness", "high"): "brightness"}
DRIFT_WORDS = {"blur": "blurred (sigma {s:g} px)", "noise": "with noise of sd {s:g}", "contrast": "contrast x {s:g}",
               "brightness": "brightness +-{s:g} %"}
DRIFT_TARGETS = {"goods_passed": 0.98, "defects_caught": 0.95, "defects_caught_blur": 0.90}


def drift_evidence(found, drift_check) -> str:
    """What the run's drift check (bundle.json "drift_check") measured under the changes the camera findings point
    to ('' without a check)."""
    if not found or not drift_check:
        return ""
    rows = {r["condition"]: r for r in drift_check.get("rows", [])}
    out, seen = [], set()
    for f in found:
        cond = DRIFT_OF.get((f["measure"], f["side"]))
        r = rows.get(cond)
        if r is None or cond in seen:
            continue
        seen.add(cond)
        caught = DRIFT_TARGETS["defects_caught_blur" if cond == "blur" else "defects_caught"]
        expect = [w for w, short in (("more good parts rejected", r["goods_passed"] < DRIFT_TARGETS["goods_passed"]),
                                     ("defects passed", r["defects_caught"] < caught)) if short]
        out.append(f"this run's drift check, on fresh parts {DRIFT_WORDS[cond].format(s=float(r['strength']))}, "
                   f"passed {r['goods_passed_n']} of {r['n_good']} good parts and caught {r['defects_caught_n']} of "
                   f"{r['n_defect']} defective ones" + (f" (expect {' and '.join(expect)})" if expect else " (held)"))
    return "; ".join(out)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"


# ---------------------------------------------------------------- command line

def bench(bundle: Bundle, images, n: int = 200, batch: int = 32) -> dict:
    """Latency: one image at a time (the line case: embed + judge), and per image in a batch."""
    img = images[:1]
    bundle.judge(img)                                          # warm up (allocation, XNNPACK packing)
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        bundle.judge(img)
        t.append(time.perf_counter() - t0)
    reps = np.resize(images, (batch, *bundle.image_shape))
    bundle.judge(reps)
    tb = []
    for _ in range(max(5, n // 20)):
        t0 = time.perf_counter()
        bundle.judge(reps)
        tb.append((time.perf_counter() - t0) / batch)
    ms = np.array(t) * 1e3
    return {"runtime": bundle.runtime, "single_ms_median": float(np.median(ms)),
            "single_ms_p95": float(np.percentile(ms, 95)), "batch": batch,
            "batch_ms_per_image_median": float(np.median(tb) * 1e3), "n": n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Judge images with an exported SNW bundle (one JSON line each).")
    ap.add_argument("images", nargs="*", help="PNG/JPEG/BMP files, uint8 .npy arrays, or folders of them")
    ap.add_argument("--bundle", default=HERE, help="bundle folder (default: this script's folder)")
    ap.add_argument("--resize", action="store_true", help="scale images of another size with the same aspect ratio")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of the interpreter (default 1)")
    ap.add_argument("--bench", type=int, default=0, metavar="N", help="time N single-image judgements instead")
    ap.add_argument("--self-test", action="store_true", help="compare the runtime with the export's embeddings")
    a = ap.parse_args(argv)
    try:
        with open(os.path.join(a.bundle, "bundle.json"), encoding="utf-8") as f:
            shape = tuple(json.load(f)["image_shape"])
    except (OSError, ValueError, KeyError):
        print(f"error: '{a.bundle}' is not an SNW bundle (bundle.json missing or unreadable).", file=sys.stderr)
        return 2
    if not a.images and not a.self_test:
        print("error: give one or more images (or --self-test).", file=sys.stderr)
        return 2
    try:
        images, names = read_images(expand_paths(a.images), shape, resize=a.resize)
    except BadInput as e:
        for line in str(e).splitlines():
            print("error: " + line, file=sys.stderr)
        return 2
    b = Bundle(a.bundle, num_threads=a.threads)
    if a.self_test:
        r = b.self_test()
        print(json.dumps(r))
        if not r["ok"]:
            return 1
        if not a.images:
            return 0
    if a.bench:
        print(json.dumps(bench(b, images, n=a.bench)))
        return 0
    n = len(images)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        for row in b.judge(images[start:stop], names[start:stop]):
            print(json.dumps(row))
        sys.stdout.flush()
        found = camera_findings(b.meta.get("acquisition"), images[start:stop])
        if found:
            where = f"images {start + 1}-{stop} of {n} ({names[start]} to {names[stop - 1]}): " if n > BLOCK else ""
            evidence = drift_evidence(found, b.meta.get("drift_check"))
            print("WARNING: " + where + "Camera check: " + "; ".join(f["message"] for f in found) + ". The run's "
                  "verdicts were measured on images like its training images" + (f"; {evidence}." if evidence else
                                                                                 "."), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
