"""Heat-map pictures: where an image differs from the good parts (see :mod:`snw_core.gate`).

>>> rgb = overlay(image, heat, (y, x), scale=6)     # doctest: +SKIP   uint8 (h*6, w*6, 3)

Numpy only; the dashboard's pages and the ``inspect --heatmap DIR`` command draw the same picture.
"""
from __future__ import annotations

import numpy as np

__all__ = ["overlay", "write_png"]


def overlay(image, heat, yx=None, scale: int = 6) -> np.ndarray:
    """The grey image with the heat map in red on top, pixel-exact at ``scale``, and a cross at ``yx``.

    image : uint8 (h, w); heat : float (h, w) in 0..1 (:meth:`snw_core.gate.Gate.display_map`): 0 = like the
    good parts, 0.5 = local evidence at its threshold, 1 = fully red.
    """
    img = np.asarray(image, np.float64)
    a = np.clip(np.asarray(heat, np.float64), 0, 1)[..., None] * 0.75          # (h, w, 1), before scaling
    grey = np.repeat(img[..., None], 3, axis=2)
    red = np.array([230.0, 20.0, 20.0])
    rgb = grey * (1 - a) + red * a
    rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    if yx is not None and a[int(yx[0]), int(yx[1]), 0] >= 0.25 * 0.75:     # a cross only where evidence shows
        y, x = (int(v) * scale + scale // 2 for v in yx)
        yellow = np.array([255.0, 230.0, 0.0])
        r = max(2, scale)
        rgb[max(0, y - r):y + r + 1, x] = yellow
        rgb[y, max(0, x - r):x + r + 1] = yellow
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def write_png(path, image, heat, yx=None, scale: int = 6) -> None:
    """:func:`overlay` (``heat`` already scaled to 0..1) as a PNG file, written atomically."""
    import io

    from PIL import Image

    from .fsutil import atomic_write_bytes
    buf = io.BytesIO()
    Image.fromarray(overlay(image, heat, yx, scale)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
