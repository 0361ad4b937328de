"""Training augmentation: the acquisition drift a line camera has, drawn afresh for every image.

A twin trained only on its generator's nuisances learns exactly those: a 2 px shift, JPEG at quality 50 or
a light gradient then moves a good part out of the goods' neighbourhood, and a 1 px blur lets defects pass
(see ``bench --drift``). With ``augment = "line"`` every training image, good or defective, goes through
0 to 3 of the changes below (each number as likely; a line rarely drifts in many ways at once, and stacking
all of them would hide the faintest defects), each at a random strength up to the envelope's, strong ones
favoured; its label stays (none of them moves one pin relative to another, removes a pin or adds a smudge). The run's gate (:mod:`snw_core.gate`)
is fitted on the same envelope, so drifted parts are still recognised as the part.

``augment = "camera"`` draws only the light and sensor changes (blur, noise, gradient, brightness, contrast,
JPEG): where the run registers its images (:mod:`snw_core.register`), the pose is undone before judging, and
training on shifts and turns as well only costs the twin sensitivity (see ``docs/real-data.md``).

==============  ==========================================================
change          the envelope: strength 1 (a change is 0 .. 1 of it)
==============  ==========================================================
shift           2 px in a random direction (bilinear)
rotation        3 degrees, either way, about the centre (bilinear)
blur            Gaussian sigma 1 px (0.25 at strength 0, steps of 0.25)
noise           Gaussian noise of sd 9 grey levels
gradient        a linear ramp of +-35 grey levels across, random direction
brightness      x 1.35 or x 0.65
contrast        x 0.55 about the image mean
jpeg            quality 40 (90 at strength 0)
==============  ==========================================================

Numpy (and Pillow for JPEG) only, vectorised over the batch except JPEG. Deterministic for a seed.

>>> x = line_drift(images, np.random.default_rng(0))     # doctest: +SKIP   uint8 (n, h, w), same shape
"""
from __future__ import annotations

import numpy as np

__all__ = ["AUGMENTATIONS", "ENVELOPE", "line_drift", "envelope_copies", "augment"]

#: the envelope of "line": the largest strength of every change (the benchmark's drift lies inside it)
ENVELOPE = {"shift": 2.0, "rotation": 3.0, "blur": 1.0, "noise": 9.0, "gradient": 35.0, "brightness": 0.35,
            "contrast": 0.55, "jpeg": 40}
#: the ``augment`` setting's choices
AUGMENTATIONS = ("none", "line", "camera")
#: every change of the envelope, in the order they are made
CHANGES = ("shift", "rotation", "blur", "noise", "gradient", "brightness", "contrast", "jpeg")
#: the changes of ``"camera"``: the light and the sensor, not the pose (registration undoes the pose)
PHOTOMETRIC = ("blur", "noise", "gradient", "brightness", "contrast", "jpeg")
#: the changes the not-a-part gate of a ``"camera"`` run is fitted on as well: the light only. Noisy, blurred or
#: compressed copies there widen it until camera noise, flat frames and blurred lenses pass (measured on a texture)
LIGHT = ("gradient", "brightness", "contrast")


def _affine(x: np.ndarray, ty, tx, angle_deg) -> np.ndarray:
    """Bilinear warp of float images (n, h, w): rotate about the centre by ``angle_deg`` and shift by
    (ty, tx) px, edges replicated. Each argument has one value per image."""
    h, w = x.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    a = np.deg2rad(np.asarray(angle_deg, np.float64))[:, None, None]
    dy, dx = yy[None] - cy - np.asarray(ty)[:, None, None], xx[None] - cx - np.asarray(tx)[:, None, None]
    sy = cy + np.cos(a) * dy - np.sin(a) * dx                 # where each output pixel samples the input
    sx = cx + np.sin(a) * dy + np.cos(a) * dx
    from .imageops import bilinear_sample
    return bilinear_sample(x, sy, sx)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"), np.float64)


def line_drift(images: np.ndarray, rng: np.random.Generator, envelope: dict | None = None,
               changes=(0, 3), low: float = 0.0, power: float = 0.5, names=CHANGES) -> np.ndarray:
    """Random acquisition drift (the table above) on uint8 images (n, h, w) -> uint8 (n, h, w).

    changes : (fewest, most) changes per image, each number as likely; every change has a strength of
    ``f`` times the envelope's, ``f = low + (1 - low) * u ** power`` with ``u`` uniform in [0, 1] (``power`` < 1
    favours strong changes) and a random sign or direction. names : the changes drawn from (of :data:`CHANGES`).
    """
    from .imageops import gaussian_blur

    env = dict(ENVELOPE, **(envelope or {}))
    x = np.asarray(images, np.float64).copy()
    n, h, w = x.shape
    if n == 0:
        return np.asarray(images, np.uint8)

    unknown = set(names) - set(CHANGES)
    if unknown or not names:
        raise ValueError(f"unknown changes {sorted(unknown)}; choose from {', '.join(CHANGES)}")
    k = rng.integers(changes[0], min(changes[1], len(names)) + 1, n)   # how many changes each image gets
    order = np.argsort(rng.uniform(size=(n, len(names))), axis=1)
    chosen = np.zeros((n, len(names)), bool)
    chosen[np.arange(n)[:, None], order] = np.arange(len(names))[None, :] < k[:, None]
    on = {c: np.zeros(n, bool) for c in CHANGES}
    on.update(zip(names, chosen.T))

    def strength(name):
        f = low + (1.0 - low) * rng.uniform(size=n) ** power
        return np.where(on[name], f, 0.0)

    def sign():
        return np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)

    f, phi = strength("shift"), rng.uniform(0, 2 * np.pi, n)
    ty, tx = f * env["shift"] * np.sin(phi), f * env["shift"] * np.cos(phi)
    ang = strength("rotation") * env["rotation"] * sign()
    geo = (ty != 0) | (tx != 0) | (ang != 0)
    if geo.any():
        x[geo] = _affine(x[geo], ty[geo], tx[geo], ang[geo])
    f = strength("blur")
    sig = np.where(f > 0, np.round((0.25 + f * (env["blur"] - 0.25)) * 4) / 4, 0.0)   # a few distinct kernels
    if (sig > 0).any():
        x = gaussian_blur(x, sig)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = mean + (x - mean) * (1.0 - strength("contrast") * (1.0 - env["contrast"]))[:, None, None]
    x = x * (1.0 + strength("brightness") * env["brightness"] * sign())[:, None, None]
    amp = (strength("gradient") * env["gradient"] * sign())[:, None, None]
    theta = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (np.cos(theta) * (xx / max(w - 1, 1) - 0.5) + np.sin(theta) * (yy / max(h - 1, 1) - 0.5)) * 2
    x = x + amp * ramp
    sd = (strength("noise") * env["noise"])[:, None, None]
    x = x + rng.normal(0, 1, x.shape) * sd
    f = strength("jpeg")
    for i in np.flatnonzero(f > 0):
        x[i] = _jpeg(x[i], round(90 - f[i] * (90 - env["jpeg"])))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def envelope_copies(images: np.ndarray, rng: np.random.Generator, name: str = "line", names=None) -> np.ndarray:
    """One change per image at a strength of half to all of the envelope's: the drift a run's good
    references and its threshold are made to hold under (see :func:`snw_core.train.drift_copies`); ``name``
    the run's augmentation (``"camera"``: only its changes), ``names`` the changes to draw from instead."""
    return line_drift(images, rng, changes=(1, 1), low=0.5, power=1.0, names=names or _names(name))


def _names(name: str) -> tuple:
    if name == "line":
        return CHANGES
    if name == "camera":
        return PHOTOMETRIC
    raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")


def augment(name: str, images: np.ndarray, rng: np.random.Generator, noise_share: float = 0.0) -> np.ndarray:
    """The ``augment`` setting applied to a batch: ``"none"`` returns the images, ``"line"`` :func:`line_drift`,
    ``"camera"`` :func:`line_drift` with the photometric changes only. ``noise_share`` (the ``augment_noise``
    setting): that share of the images, drawn at random, gets sensor noise of a uniform sd up to the envelope's on
    top, whatever else was drawn for it (0: nothing more is drawn, so runs without it repeat exactly)."""
    if name == "none":
        return images
    out = line_drift(images, rng, names=_names(name))
    if noise_share > 0:
        extra = rng.uniform(size=len(out)) < noise_share
        sd = rng.uniform(0.0, ENVELOPE["noise"], len(out))[:, None, None]
        noisy = np.clip(np.rint(out + rng.normal(0.0, 1.0, out.shape) * sd), 0, 255)
        out = np.where(extra[:, None, None], noisy, out).astype(np.uint8)
    return out
