"""Small image operations shared by the data generators, the drift benchmark, the augmentation and the
registration (numpy only).

>>> gaussian_blur(np.zeros((2, 8, 8)), [0.0, 1.5]).shape      # doctest: +SKIP
(2, 8, 8)
"""
from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["gaussian_blur", "bilinear_sample", "cubic_sample", "blur_matrix", "box3"]


def gaussian_blur(images, sigma, dtype=None) -> np.ndarray:
    """Separable Gaussian blur of images (n, h, w), edges replicated; kernel radius ceil(3 sigma).

    sigma : one value, or one per image (images sharing a value are blurred together; 0 leaves an image as it
    is). dtype : the arithmetic (and result) type, default the images' own (float64 for integer images).
    """
    x = np.asarray(images)
    dtype = np.dtype(dtype) if dtype is not None else (x.dtype if x.dtype.kind == "f" else np.dtype(np.float64))
    x = x.astype(dtype, copy=False)
    sig = np.broadcast_to(np.asarray(sigma, np.float64), (len(x),))
    out = x.copy()
    for s in np.unique(sig):
        if s <= 0:
            continue
        sel = sig == s
        r = max(1, int(math.ceil(3 * s)))
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
        k = (k / k.sum()).astype(dtype)
        y = x[sel]
        for axis in (1, 2):
            pad = [(0, 0)] * 3
            pad[axis] = (r, r)
            p = np.pad(y, pad, mode="edge")
            acc = np.zeros_like(y)
            size = y.shape[axis]
            for i in range(2 * r + 1):
                sl = [slice(None)] * 3
                sl[axis] = slice(i, i + size)
                acc += k[i] * p[tuple(sl)]
            y = acc
        out[sel] = y
    return out


def _edge_filter(n: int, taps) -> np.ndarray:
    """(n, n) matrix M with M @ v = the centred 1-D filter ``taps`` (odd length) over v, edges replicated."""
    r = len(taps) // 2
    m = np.zeros((n, n))
    for i in range(n):
        for t, k in enumerate(taps):
            m[i, min(max(i + t - r, 0), n - 1)] += k
    return m


@functools.lru_cache(maxsize=8)
def plane_basis(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares plane of an h x w image (a light ramp): its basis (h*w, 3) and pseudo-inverse (3, h*w),
    cached and read-only (every verdict of the appearance check uses it)."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([np.ones(h * w), (yy.ravel() - (h - 1) / 2) / h, (xx.ravel() - (w - 1) / 2) / w], 1)
    pinv = np.linalg.pinv(a)
    a.flags.writeable = pinv.flags.writeable = False
    return a, pinv


@functools.lru_cache(maxsize=32)
def blur_matrix(n: int, sigma: float) -> np.ndarray:
    """:func:`gaussian_blur` along one axis of length ``n`` as a matrix: for small images (the pose search,
    one image at a time) ``By @ x @ Bx.T`` is one BLAS call per axis instead of a padded copy per tap."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    m = _edge_filter(n, k / k.sum())
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=32)
def _box_matrix(n: int) -> np.ndarray:
    m = _edge_filter(n, (1.0 / 3, 1.0 / 3, 1.0 / 3))
    m.flags.writeable = False
    return m


def box3(m) -> np.ndarray:
    """Mean over 3 x 3 px, edges replicated: (n, h, w) -> (n, h, w), in the images' float type (else float64)."""
    m = np.asarray(m)
    dt = m.dtype if m.dtype.kind == "f" else np.dtype(np.float64)
    m = m.astype(dt, copy=False)
    return _box_matrix(m.shape[1]).astype(dt, copy=False) @ m @ _box_matrix(m.shape[2]).T.astype(dt, copy=False)


def bilinear_sample(x, sy, sx) -> np.ndarray:
    """Bilinear samples of float images x (n, h, w) at source coordinates sy, sx (n, h, w); coordinates outside
    the image are clipped to its edge (edges replicated)."""
    n, h, w = x.shape
    sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = sy - y0, sx - x0
    i = np.arange(n)[:, None, None]
    return ((1 - fy) * (1 - fx) * x[i, y0, x0] + (1 - fy) * fx * x[i, y0, x1]
            + fy * (1 - fx) * x[i, y1, x0] + fy * fx * x[i, y1, x1])


#: the cubic convolution kernel's parameter (Keys, 1981): -0.5, the one value that reproduces linear and quadratic
#: grey-level ramps exactly (-0.75, OpenCV's choice, sharpens a little and misses a ramp by up to 0.1 of its slope)
CUBIC_A = -0.5


#: :func:`cubic_sample` works on at most this many pixels at a time
SAMPLE_PIXELS = 1 << 22


def _cubic_weights(t, a: float = CUBIC_A):
    """The four weights of the taps at -1, 0, 1, 2 px from the floor for fractions t in [0, 1); they sum to 1."""
    u = 1.0 - t
    return (a * ((t + 1) ** 3 - 5 * (t + 1) ** 2 + 8 * (t + 1) - 4),
            ((a + 2) * t - (a + 3)) * t * t + 1,
            ((a + 2) * u - (a + 3)) * u * u + 1,
            a * ((u + 1) ** 3 - 5 * (u + 1) ** 2 + 8 * (u + 1) - 4))


def cubic_sample(x, sy, sx) -> np.ndarray:
    """Cubic convolution samples (4 x 4 taps, :data:`CUBIC_A`) of float images x (n, h, w) at source coordinates
    sy, sx (n, h, w); coordinates outside the image are clipped to its edge (edges replicated). Sharper than
    :func:`bilinear_sample`, which smooths the image between pixels as a slight blur would; values can overshoot
    the input's range by a little at steep edges."""
    n, h, w = x.shape
    step = max(1, SAMPLE_PIXELS // (h * w))
    if n > step:            # pixel by pixel the same, in pieces: 16 taps of every pixel at once grew to gigabytes
        return np.concatenate([cubic_sample(x[s:s + step], sy[s:s + step], sx[s:s + step])
                               for s in range(0, n, step)])
    sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    wy, wx = _cubic_weights(sy - y0), _cubic_weights(sx - x0)
    # the taps as indices into the flat images: one index per tap, not three (a quarter less time on large images)
    flat = np.ascontiguousarray(x).reshape(-1)
    cols = [np.clip(x0 + k - 1, 0, w - 1) for k in range(4)]
    first = (np.arange(n) * (h * w))[:, None, None]
    out = 0.0
    for m in range(4):
        row = np.clip(y0 + m - 1, 0, h - 1) * w + first
        out = out + wy[m] * sum(wx[k] * flat[row + cols[k]] for k in range(4))
    return out
