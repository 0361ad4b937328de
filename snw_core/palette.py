"""Label colours that stay tell-apart: a greedy farthest-point palette in CIELAB with CIEDE2000 distances.

Every pin address gets a colour by its rank (see :func:`snw_core.viz.label_colors`). The colours are
chosen one after the other, each the candidate farthest (CIEDE2000) from the good items' gray, from
white and black (page and image background) and from every colour chosen before it. So the first
colours are the most different, and any number of labels gets distinct colours: 24 stay at least
15 CIEDE2000 units apart (clearly different side by side; 2.3 is a just-noticeable difference); past
that the distances shrink gradually instead of repeating colours.

Candidates are an sRGB grid restricted to colours that carry bold white text (WCAG contrast with
white >= 3), are not grayish (chroma >= 25) and not near-black (L* >= 30, so a frame stands out
from the dark background of a connector image).

>>> distinct_colors(3)
['#3c00ff', '#a50000', '#005a00']
>>> bool(delta_e2000(hex_lab("#3c00ff"), hex_lab("#a50000")) > 15)
True
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["GOOD_COLOR", "distinct_colors", "delta_e2000", "hex_lab", "contrast_ratio"]

GOOD_COLOR = "#8c8c8c"
_AVOID = (GOOD_COLOR, "#ffffff", "#000000")
_GRID_STEP = 15
_MIN_CONTRAST_WITH_WHITE = 3.0
_MIN_CHROMA = 25.0
_MIN_LIGHTNESS = 30.0


def _linear(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _rgb(hex_color: str) -> np.ndarray:
    h = hex_color.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


def rgb_lab(rgb) -> np.ndarray:
    """sRGB 0..255, shape (..., 3) -> CIELAB (D65), shape (..., 3)."""
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = _linear(rgb) @ m.T / np.array([0.95047, 1.0, 1.08883])
    d = 6 / 29
    f = np.where(xyz > d ** 3, np.cbrt(xyz), xyz / (3 * d * d) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def hex_lab(hex_color: str) -> np.ndarray:
    """'#rrggbb' -> CIELAB, shape (3,)."""
    return rgb_lab(_rgb(hex_color))


def relative_luminance(hex_color: str) -> float:
    return float(_linear(_rgb(hex_color)) @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two '#rrggbb' colours (1 .. 21).

    >>> round(contrast_ratio("#ffffff", "#000000"), 1)
    21.0
    """
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def delta_e2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 colour difference of CIELAB arrays, shape (..., 3) each (broadcast)."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    cb = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cb ** 7 / (cb ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(zero, 0.0, dh)
    dl, dc = l2 - l1, c2p - c1p
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    lbp, cbp = (l1 + l2) / 2, (c1p + c2p) / 2
    hs = h1p + h2p
    hbp = np.where(np.abs(h1p - h2p) > 180, np.where(hs < 360, (hs + 360) / 2, (hs - 360) / 2), hs / 2)
    hbp = np.where(zero, hs, hbp)
    t = (1 - 0.17 * np.cos(np.radians(hbp - 30)) + 0.24 * np.cos(np.radians(2 * hbp))
         + 0.32 * np.cos(np.radians(3 * hbp + 6)) - 0.20 * np.cos(np.radians(4 * hbp - 63)))
    dtheta = 30 * np.exp(-(((hbp - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cbp ** 7 / (cbp ** 7 + 25.0 ** 7))
    sl = 1 + 0.015 * (lbp - 50) ** 2 / np.sqrt(20 + (lbp - 50) ** 2)
    sc, sh = 1 + 0.045 * cbp, 1 + 0.015 * cbp * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh))


@lru_cache(maxsize=1)
def _candidates() -> tuple[np.ndarray, np.ndarray]:
    levels = np.arange(0, 256, _GRID_STEP, dtype=np.float64)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = rgb_lab(rgb)
    lum = _linear(rgb) @ np.array([0.2126, 0.7152, 0.0722])
    keep = ((1.05 / (lum + 0.05) >= _MIN_CONTRAST_WITH_WHITE) & (np.hypot(lab[:, 1], lab[:, 2]) >= _MIN_CHROMA)
            & (lab[:, 0] >= _MIN_LIGHTNESS))
    return rgb[keep], lab[keep]


@lru_cache(maxsize=8)
def _palette(n: int) -> tuple[str, ...]:
    rgb, lab = _candidates()
    nearest = np.min(np.stack([delta_e2000(lab, hex_lab(c)) for c in _AVOID]), axis=0)
    out = []
    for _ in range(min(n, len(rgb))):
        j = int(np.argmax(nearest))
        out.append("#" + "".join(f"{int(v):02x}" for v in rgb[j]))
        nearest = np.minimum(nearest, delta_e2000(lab, lab[j]))
    return tuple(out)


def distinct_colors(n: int) -> list[str]:
    """``n`` '#rrggbb' colours, the most different first; the first ``k`` are the same for every ``n >= k``.

    Unique for any ``n`` up to the candidate grid's size (thousands); beyond that the list repeats.
    """
    if n <= 0:
        return []
    size = 24 if n <= 24 else 1 << (n - 1).bit_length()     # cache a few sizes, not one per n
    pal = _palette(size)
    return [pal[i % len(pal)] for i in range(n)]
