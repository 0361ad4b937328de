"""Pure helpers for drawing: one colour per pin address (the same on every page) and pixel-exact thumbnails.

No streamlit here; plotly is imported lazily by the figure helpers.

>>> label_colors(["0", "1", "10"])["0"]
'#8c8c8c'
"""
from __future__ import annotations

import numpy as np

from . import palette
from .data import sort_labels

__all__ = ["GOOD_COLOR", "label_colors", "upscale", "thumbnail_grid", "label_name"]

GOOD_COLOR = palette.GOOD_COLOR


def label_colors(labels, good_label: str = "0") -> dict[str, str]:
    """Colour of every label: gray for good, a fixed palette colour per pin address in natural order.

    The colour of a pin depends only on its rank among the pin addresses, so every page, and every run on
    the same data set, shows pin 7 in the same colour. The colours stay tell-apart (CIEDE2000 >= 15) for up to
    24 pin addresses and stay unique beyond (:mod:`snw_core.palette`).
    """
    ordered = sort_labels(labels, good_label)
    pins = [lab for lab in ordered if lab != good_label]
    out = {good_label: GOOD_COLOR}
    for lab, color in zip(pins, palette.distinct_colors(len(pins))):
        out[lab] = color
    return out


def label_name(label: str, good_label: str = "0") -> str:
    """'good' for the good label, 'pin N' for the rest."""
    return "good" if label == good_label else f"pin {label}"


def upscale(img: np.ndarray, scale: int) -> np.ndarray:
    """Pixel-exact enlargement (each pixel becomes a scale x scale block). uint8 (h, w) -> (h*s, w*s)."""
    scale = max(1, int(scale))
    return np.repeat(np.repeat(np.asarray(img), scale, axis=0), scale, axis=1)


def auto_scale(image_shape, target: int = 144) -> int:
    """An integer scale that makes the longer side about ``target`` px (at least 1)."""
    return max(1, int(round(target / max(image_shape))))


def thumbnail_grid(images: np.ndarray, cols: int = 8, scale: int = 4, gap: int = 2, border=None) -> np.ndarray:
    """Tile images (n, h, w) uint8 into one RGB grid image; optional per-image border colours ('#rrggbb')."""
    n, h, w = images.shape
    rows = max(1, int(np.ceil(n / cols)))
    bw = 2 if border is not None else 0
    ch, cw = h * scale + 2 * bw, w * scale + 2 * bw
    grid = np.full((rows * (ch + gap) - gap, cols * (cw + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (ch + gap), c * (cw + gap)
        if border is not None:
            grid[y:y + ch, x:x + cw] = _hex_rgb(border[i])
        grid[y + bw:y + bw + h * scale, x + bw:x + bw + w * scale] = upscale(images[i], scale)[..., None]
    return grid


def _hex_rgb(c: str):
    c = c.lstrip("#")
    return [int(c[i:i + 2], 16) for i in (0, 2, 4)]
