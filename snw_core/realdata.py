"""Benchmark sets made from real photographs: textured surfaces and a connector in real light.

The generated connectors of :mod:`snw_core.synthetic` know exactly the nuisances of their generator.
Images from a real line carry surface grain, machining marks, dust, uneven light, sensor noise and JPEG
artefacts. These sets put real photographic texture under the defects, so that a recipe can be measured
on it. The photographs ship inside installed packages (nothing is downloaded): the texture photographs
``brick.png``, ``gravel.png`` and ``grass.png`` of scikit-image (``skimage/data/``) and the sample
photographs ``china.jpg`` and ``flower.jpg`` of scikit-learn (``sklearn/datasets/images/``). They are
read as files with pillow; neither package is imported.

Two kinds, same schema as every other set (``dirname``, ``label``, ``image``; label ``"0"`` = good):

``texture``
    Crops of a textured surface, ``TEXTURE_SHAPE`` = 36 x 48 px unless another ``shape`` is given (the same
    surface and defects in a larger field of view: the defects keep their size in pixels), cut at random places of the photograph
    (downscaled by 2, random horizontal/vertical flips), with brightness/contrast jitter and sensor noise.
    The image is divided into a grid of ``TEXTURE_GRID`` = 3 x 4 cells; a defective item carries ONE
    defect inside one cell (1 px from its edges) and its label is that cell's address, ``1 .. 12``,
    row-major from the top left (:func:`cell_box`). Defect kinds (:data:`TEXTURE_DEFECTS`): ``scratch``
    (a thin straight line, dark or bright), ``stain`` (a soft-edged blot that covers the texture with a
    dark tint), ``chip`` (a small piece broken out: a dark hole with a lit rim) and ``dent`` (a bump
    shaded by light from one side), each from subtle to obvious. Difficulty: ``moderate`` =
    ``brick.png`` (a regular texture), the whole range; ``strong`` = ``gravel.png`` (a random texture of
    high contrast at the defects' own scale), the upper 40 % of each range (below it a person no longer
    finds the defect in the gravel). ``photo`` (``data real --photo``) cuts the surface from another
    photograph instead: one shipped with a package (``skimage:grass.png``) or your own image file.
``connector``
    The connector of :mod:`snw_core.synthetic` (its geometry, pins, defects and labels: pin addresses
    ``1 .. 12``), 26 x 36 px unless another ``shape`` is given (the connector drawn larger), with the housing's surface grain cut from a real photograph (``gravel.png``
    high-passed), the background a crop of a real scene (``china.jpg``), the light a low-passed crop of
    another photograph (``flower.jpg``), sensor noise and JPEG re-compression. ``moderate``: grain
    +-6 grey levels, light +-10 %, JPEG quality 70-95; ``strong``: grain +-12, light +-20 %, JPEG 50-80.

Every item records its defect: the parquet's schema metadata key ``snw_realdata`` holds the kind,
difficulty, grid and, per row, the defect kind and its pixel box (the pixels the defect changed by more
than :data:`BOX_LEVELS` grey levels; ``[-1, -1, -1, -1]`` for goods). :func:`read_info` returns it;
:func:`cell_box` gives the box of a label's cell from the shape and grid alone.

Deterministic for a seed: all randomness comes from ``numpy.random.default_rng(seed)``.

>>> images, labels, dirnames, info = generate("texture", "strong", n=300, seed=0)    # doctest: +SKIP
>>> write_parquet("gravel.parquet", "texture", "strong", n=3000, seed=0)            # doctest: +SKIP
>>> write_parquet("mine.parquet", "texture", "moderate", photo="surface.png")       # doctest: +SKIP
>>> cell_box("7", (36, 48), (3, 4))
(12, 24, 24, 36)

See also: :mod:`snw_core.synthetic` (the generated connector), :mod:`snw_core.drift` (camera drift).
"""
from __future__ import annotations

import importlib.util
import io
import pathlib

import numpy as np

from . import synthetic

__all__ = ["KINDS", "DIFFICULTIES", "TEXTURE_SHAPE", "CONNECTOR_SHAPE", "CONNECTOR_PHOTO_HW", "SHAPE_RANGE", "TEXTURE_GRID", "TEXTURE_DEFECTS", "BOX_LEVELS",
           "REGIONS", "SPLIT_BANDS", "RealDataError", "generate", "write_parquet", "read_info", "cell_box", "photo",
           "photo_from",
           "texture_photo", "sample_sheet", "META_KEY"]

KINDS = ("texture", "connector")
DIFFICULTIES = ("moderate", "strong")
#: the part of the photograph a texture set is cut from: all of it, or its upper or lower half only (a set of one
#: half judged by a run trained on the other is a surface the run has never seen; crops of one photograph overlap)
REGIONS = ("all", "upper", "lower")
#: a ``disjoint`` texture set cuts each split from its own band of the photograph's rows (fractions of its height,
#: top to bottom): train above, then val, then test; no crop of one split shares a pixel with a crop of another.
#: The bands are also regions of :func:`generate` (the drift check cuts its fresh items from ``test``)
SPLIT_BANDS = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}
#: rows of a band beyond one crop's height, at half size: room for crops at different heights
BAND_SLACK = 4
TEXTURE_SHAPE = (36, 48)
#: the connector kind's image size unless another is given (that of the generated connector)
CONNECTOR_SHAPE = (26, 36)
#: the smallest and largest side (px) a set may be made at; the texture kind needs at least its default size (a
#: cell must hold the largest defect), and a photograph twice the crop size at half its size (see photo_from)
SHAPE_RANGE = (16, 512)
TEXTURE_GRID = (3, 4)
TEXTURE_DEFECTS = ("scratch", "stain", "chip", "dent")
_TEXTURE_DEFECT_PROBS = np.array([0.30, 0.25, 0.20, 0.25])
#: a pixel belongs to the defect's box when the defect changed it by more than this many grey levels
BOX_LEVELS = 12.0
#: the connector kind's largest image (height, width): its background scene photograph, ``china.jpg``, at full size
CONNECTOR_PHOTO_HW = (427, 640)
#: schema metadata key of the parquet file that holds the per-item defect records
META_KEY = "snw_realdata"
#: the photograph of each difficulty of the texture kind (file, package)
_TEXTURE_PHOTO = {"moderate": ("brick.png", "skimage"), "strong": ("gravel.png", "skimage")}
_PHOTO_DIRS = {"skimage": "data", "sklearn": "datasets/images"}
#: the smallest photograph (h, w) a texture set is cut from: four crop sizes each way at half its size
MIN_PHOTO_HW = (4 * 2 * 36, 4 * 2 * 48)
#: the subtle end of the defects' strength range per texture difficulty: on the strong texture the subtlest
#: defects of the full range hide in the gravel even from a person who knows where to look (seen on the
#: sample sheet of the weakest items), so its defects span the upper 40 % of each kind's range
_STRENGTH_FLOOR = {"moderate": 0.0, "strong": 0.6}


class RealDataError(ValueError):
    """Bad arguments or a missing photograph; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Photographs
# --------------------------------------------------------------------------------------------
def photo(name: str, package: str) -> np.ndarray:
    """A photograph shipped inside an installed package, as float32 grayscale (h, w) in 0..255.

    name : file name, e.g. ``"gravel.png"``; package : ``"skimage"`` or ``"sklearn"``. The package is
    located, not imported. Raises :class:`RealDataError` when the package or the file is missing.
    """
    from PIL import Image

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(package, package)
        raise RealDataError(f"The photograph '{name}' ships with the package {pip}, which is not installed; "
                            f"install the project's requirements (pip install -r requirements.txt).")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / _PHOTO_DIRS[package] / name
    if not path.is_file():
        have = sorted(f.name for f in path.parent.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg")) \
            if path.parent.is_dir() else []
        raise RealDataError(f"The photograph '{name}' is not in the installed {package} ({path.parent}); it has: "
                            f"{', '.join(have) or 'none'}. A set of this project that needs it: install the version "
                            "pinned in requirements.txt.")
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)


def texture_photo(difficulty: str) -> str:
    """The photograph a texture set of ``difficulty`` is cut from unless another is given, as a spec of
    :func:`photo_from` (``"skimage:brick.png"``)."""
    fname, pkg = _TEXTURE_PHOTO[difficulty]
    return f"{pkg}:{fname}"


def photo_from(spec: str, shape: tuple[int, int] = TEXTURE_SHAPE) -> tuple[np.ndarray, str]:
    """The photograph a texture set is cut from: ``"skimage:NAME"`` or ``"sklearn:NAME"`` (one shipped inside that
    package, see :func:`photo`) or the path of any image file Pillow reads (your own surface, photographed as
    evenly lit as the line would see it). Returns ``(float32 grayscale (h, w) in 0..255, the spec as recorded)``;
    a file's path is recorded absolute, so the drift benchmark can cut fresh items from it later. Raises
    :class:`RealDataError` with what to do when it is missing, unreadable or smaller than
    :data:`MIN_PHOTO_HW` or than four crops of ``shape`` (two at half its size) each way."""
    spec = str(spec).strip()
    pkg, _, name = spec.partition(":")
    if pkg in _PHOTO_DIRS and name:
        img, recorded = photo(name, pkg), f"{pkg}:{name}"
    else:
        from PIL import Image, UnidentifiedImageError

        path = pathlib.Path(spec).expanduser()
        if not path.is_file():
            raise RealDataError(f"The photograph '{spec}' is not a file. Give the path of an image file, or one that "
                                f"ships with a package: skimage:NAME or sklearn:NAME (e.g. skimage:grass.png).")
        try:
            with Image.open(path) as im:
                img = np.asarray(im.convert("L"), dtype=np.float32)
        except (UnidentifiedImageError, OSError) as e:
            raise RealDataError(f"The photograph '{spec}' could not be read as an image ({e}).") from None
        recorded = str(path.resolve())
    need = (max(MIN_PHOTO_HW[0], 4 * int(shape[0])), max(MIN_PHOTO_HW[1], 4 * int(shape[1])))
    if img.shape[0] < need[0] or img.shape[1] < need[1]:
        raise RealDataError(f"The photograph '{spec}' is {img.shape[1]} x {img.shape[0]} px; a texture set of "
                            f"{shape[1]} x {shape[0]} px needs at least {need[1]} x {need[0]} px (crops of "
                            f"{shape[1]} x {shape[0]} px at half its size, from enough different places).")
    return img, recorded


def _downscale(img: np.ndarray, f: int) -> np.ndarray:
    """Area average over f x f blocks (the edge remainder is dropped)."""
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _crops(src: np.ndarray, n: int, shape: tuple[int, int], rng, flips: bool = True) -> np.ndarray:
    """``n`` random crops (n, h, w) of ``src`` at random places, each randomly flipped (vectorised)."""
    h, w = shape
    oy = rng.integers(0, src.shape[0] - h + 1, n)
    ox = rng.integers(0, src.shape[1] - w + 1, n)
    fy = rng.random(n) < (0.5 if flips else 0.0)
    fx = rng.random(n) < (0.5 if flips else 0.0)
    ry = np.where(fy[:, None], np.arange(h)[::-1][None], np.arange(h)[None])    # (n, h)
    rx = np.where(fx[:, None], np.arange(w)[::-1][None], np.arange(w)[None])    # (n, w)
    return src[(oy[:, None] + ry)[:, :, None], (ox[:, None] + rx)[:, None, :]].astype(np.float32)


def _gauss_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of float images (n, h, w) with one sigma, edges replicated."""
    from .imageops import gaussian_blur
    return gaussian_blur(img, sigma)


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------
def cell_box(label, image_shape, grid, bounds=None) -> tuple[int, int, int, int] | None:
    """Pixel box ``(y0, y1, x0, x1)`` (half-open, image coordinates) of the cell with address ``label``.

    label : ``"1" .. str(rows*cols)`` (row-major from the top left); the good label ``"0"`` -> None
    image_shape : (h, w); grid : (rows, cols)
    bounds : (y0, y1, x0, x1) of the gridded area in pixels (floats allowed); default the whole image.
        For the connector kind the grid covers the housing (see :func:`read_info`, ``bounds``).
    The box is rounded outwards to whole pixels.

    >>> cell_box("1", (36, 48), (3, 4)), cell_box("12", (36, 48), (3, 4)), cell_box("0", (36, 48), (3, 4))
    ((0, 12, 0, 12), (24, 36, 36, 48), None)
    """
    rows, cols = int(grid[0]), int(grid[1])
    k = int(str(label))
    if k == 0:
        return None
    if not 1 <= k <= rows * cols:
        raise ValueError(f"label {label!r} is not a cell address of a {rows} x {cols} grid (1..{rows * cols})")
    y0, y1, x0, x1 = bounds if bounds is not None else (0.0, float(image_shape[0]), 0.0, float(image_shape[1]))
    r, c = divmod(k - 1, cols)
    ch, cw = (y1 - y0) / rows, (x1 - x0) / cols
    return (int(np.floor(y0 + r * ch + 1e-6)), int(np.ceil(y0 + (r + 1) * ch - 1e-6)),
            int(np.floor(x0 + c * cw + 1e-6)), int(np.ceil(x0 + (c + 1) * cw - 1e-6)))


def _cell_masks(label: np.ndarray, image_shape, grid) -> np.ndarray:
    """float32 (n, h, w): 1 inside each item's cell (label 1..R*C), 0 elsewhere (all 0 for goods)."""
    h, w = image_shape
    rows, cols = grid
    r, c = np.divmod(np.maximum(label, 1) - 1, cols)
    yy, xx = np.arange(h)[None, :], np.arange(w)[None, :]
    in_y = (yy >= np.floor(r * h / rows)[:, None]) & (yy < np.ceil((r + 1) * h / rows)[:, None])
    in_x = (xx >= np.floor(c * w / cols)[:, None]) & (xx < np.ceil((c + 1) * w / cols)[:, None])
    return (in_y[:, :, None] & in_x[:, None, :] & (label > 0)[:, None, None]).astype(np.float32)


def _boxes(diff: np.ndarray) -> np.ndarray:
    """Bounding box (y0, y1, x0, x1), half-open, of the pixels with |diff| > BOX_LEVELS; -1s where none."""
    m = np.abs(diff) > BOX_LEVELS
    rows, cols = m.any(axis=2), m.any(axis=1)
    has = rows.any(axis=1)
    h, w = diff.shape[1:]
    y0 = np.where(has, rows.argmax(axis=1), -1)
    y1 = np.where(has, h - rows[:, ::-1].argmax(axis=1), -1)
    x0 = np.where(has, cols.argmax(axis=1), -1)
    x1 = np.where(has, w - cols[:, ::-1].argmax(axis=1), -1)
    return np.stack([y0, y1, x0, x1], axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# The texture kind
# --------------------------------------------------------------------------------------------
def _texture_defects(clean: np.ndarray, label: np.ndarray, kind: np.ndarray, rng, grid, floor: float = 0.0) -> np.ndarray:
    """Paint each defective item's defect into its cell; returns the new float images (n, h, w).

    Each defect's strength is drawn from ``floor .. 1`` of its kind's range (subtle .. obvious).
    """
    n, h, w = clean.shape
    rows, cols = grid
    ch, cw = h / rows, w / cols
    out = clean.copy()
    yy = np.arange(h, dtype=np.float32)[None, :, None] + 0.5
    xx = np.arange(w, dtype=np.float32)[None, None, :] + 0.5
    # drawn for every row, so that the stream does not depend on the kinds
    cell_r, cell_c = np.divmod(np.maximum(label, 1) - 1, cols)
    size = rng.uniform(0.0, 1.0, n).astype(np.float32)        # 0..1 within each kind's size range
    strength = rng.uniform(floor, 1.0, n).astype(np.float32)  # floor..1 within each kind's strength range
    angle = rng.uniform(0.0, np.pi, n).astype(np.float32)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    u_y = rng.uniform(0.0, 1.0, n).astype(np.float32)
    u_x = rng.uniform(0.0, 1.0, n).astype(np.float32)
    local = clean.reshape(n, -1).mean(axis=1)

    def centre(extent_y, extent_x):
        """A centre inside the cell that keeps a footprint of half-extents (ey, ex) 1 px from its edges."""
        lo_y = cell_r * ch + 1.0 + extent_y
        hi_y = (cell_r + 1) * ch - 1.0 - extent_y
        lo_x = cell_c * cw + 1.0 + extent_x
        hi_x = (cell_c + 1) * cw - 1.0 - extent_x
        return (lo_y + u_y * np.maximum(hi_y - lo_y, 0)).astype(np.float32), \
               (lo_x + u_x * np.maximum(hi_x - lo_x, 0)).astype(np.float32)

    # scratch: a straight line of length 7..10 px, half width 0.8..1.1 px, blended 45..95 % towards near
    # black where the surface under it is bright and near white where it is dark
    sel = kind == 1
    if sel.any():
        half = 3.5 + 1.5 * size
        ey, ex = np.abs(np.sin(angle)) * half + 1.0, np.abs(np.cos(angle)) * half + 1.0
        cy, cx = centre(ey, ex)
        i = np.flatnonzero(sel)
        dy, dx = np.sin(angle[i])[:, None, None], np.cos(angle[i])[:, None, None]
        qy, qx = yy - cy[i, None, None], xx - cx[i, None, None]
        t = np.clip(qy * dy + qx * dx, -half[i, None, None], half[i, None, None])
        dist = np.sqrt((qy - t * dy) ** 2 + (qx - t * dx) ** 2)
        hw = (0.8 + 0.3 * strength[i])[:, None, None]
        cov = np.clip(hw + 0.5 - dist, 0.0, 1.0)
        under = (cov * out[i]).sum(axis=(1, 2)) / np.maximum(cov.sum(axis=(1, 2)), 1e-6)
        target = np.where(under > 0.5 * (under.mean() + local[i]), 10.0, 245.0).astype(np.float32)[:, None, None]
        alpha = (0.45 + 0.50 * strength[i])[:, None, None] * cov
        out[i] = out[i] + alpha * (target - out[i])
    # stain: a soft-edged elliptical blot, radius 2.5..3.5 px, that covers the texture: blended 45..95 %
    # towards a dark tint (grey level 15) where the surface under it is bright, or a light deposit (grey
    # level 235) where it is dark (a dark blot on dark gravel would hide among the gaps)
    sel = kind == 2
    if sel.any():
        rad = 2.5 + 1.0 * size
        cy, cx = centre(rad + 0.5, rad + 0.5)
        i = np.flatnonzero(sel)
        ecc = (0.7 + 0.3 * u_x[i])[:, None, None]
        ca, sa = np.cos(angle[i])[:, None, None], np.sin(angle[i])[:, None, None]
        qy, qx = yy - cy[i, None, None], xx - cx[i, None, None]
        a1, a2 = qx * ca + qy * sa, (-qx * sa + qy * ca) / ecc
        r = np.sqrt(a1 ** 2 + a2 ** 2) / rad[i, None, None]
        cov = np.clip((1.0 - r) / 0.3, 0.0, 1.0)
        under = (cov * out[i]).sum(axis=(1, 2)) / np.maximum(cov.sum(axis=(1, 2)), 1e-6)
        target = np.where(under > local[i], 15.0, 235.0).astype(np.float32)[:, None, None]
        alpha = (0.45 + 0.50 * strength[i])[:, None, None] * cov
        out[i] = out[i] + alpha * (target - out[i])
    # chip: a piece broken out, radius 1.5..2.5 px: a dark flat hole (blended 55..100 % towards grey level
    # 5..20) with a lit rim on the side facing the light (up-left), 30..90 grey levels brighter than the surface
    sel = kind == 3
    if sel.any():
        rad = 1.5 + 1.0 * size
        cy, cx = centre(rad + 1.0, rad + 1.0)
        i = np.flatnonzero(sel)
        qy, qx = yy - cy[i, None, None], xx - cx[i, None, None]
        r = np.sqrt(qy ** 2 + qx ** 2)
        R = rad[i, None, None]
        hole = np.clip(R + 0.5 - r, 0.0, 1.0)
        rim = np.clip(1.0 - np.abs(r - R - 0.5), 0.0, 1.0) * np.clip(-(qy + qx) / np.maximum(r, 1e-3), 0.0, 1.0)
        hole_level = (5.0 + 15.0 * u_y[i])[:, None, None]
        rim_gain = (30.0 + 60.0 * strength[i])[:, None, None]
        out[i] = out[i] + (0.55 + 0.45 * strength[i])[:, None, None] * hole * (hole_level - out[i])
        out[i] = out[i] + rim * rim_gain
    # dent: a pressed-in spot (Gaussian, sigma 1.6..2.2 px) that flattens the texture (50..95 % towards
    # the surface's mean level at its centre) and is shaded by light from a random side: the derivative of
    # the Gaussian, peak +-(50..140) grey levels
    sel = kind == 4
    if sel.any():
        sig = 1.6 + 0.6 * size
        cy, cx = centre(2.5 * sig, 2.5 * sig)
        i = np.flatnonzero(sel)
        qy, qx = yy - cy[i, None, None], xx - cx[i, None, None]
        s = sig[i, None, None]
        g = np.exp(-(qy ** 2 + qx ** 2) / (2 * s * s))
        ld = (qx * np.cos(angle[i] * 2)[:, None, None] + qy * np.sin(angle[i] * 2)[:, None, None]) / s
        amp = (50.0 + 90.0 * strength[i])[:, None, None] / 0.6065       # peak of x*exp(-x^2/2) is 0.6065
        flat = (0.50 + 0.45 * strength[i])[:, None, None]
        out[i] = out[i] + flat * g * (local[i, None, None] - out[i]) + amp * ld * g
    return out


def _photo_region(img: np.ndarray, region: str, shape, recorded: str) -> np.ndarray:
    """The rows of the photograph ``region`` names (see :data:`REGIONS`); a half must hold two crops of ``shape``
    each way at half its size. A split's band (:data:`SPLIT_BANDS`) must hold one crop's height and a few rows more,
    and two crops' width, at half size."""
    if region == "all":
        return img
    if region in SPLIT_BANDS:
        lo, hi = (int(round(f * img.shape[0])) for f in SPLIT_BANDS[region])
        part = img[lo:hi]
        need_h, need_w = 2 * (int(shape[0]) + BAND_SLACK), 4 * int(shape[1])
        if part.shape[0] < need_h or part.shape[1] < need_w:
            raise RealDataError(f"The {region} band of the photograph '{recorded}' (rows {lo} to {hi}) is "
                                f"{part.shape[1]} x {part.shape[0]} px; crops of {shape[1]} x {shape[0]} px need at "
                                f"least {need_w} x {need_h} px there (at half size, one crop's height and "
                                f"{BAND_SLACK} rows more, two crops' width). Use a smaller image size, or a set "
                                "without --disjoint.")
        return part
    half = img.shape[0] // 2
    part = img[:half] if region == "upper" else img[half:]
    if part.shape[0] < 4 * int(shape[0]) or part.shape[1] < 4 * int(shape[1]):
        raise RealDataError(f"The {region} half of the photograph '{recorded}' is {part.shape[1]} x {part.shape[0]} "
                            f"px; crops of {shape[1]} x {shape[0]} px need at least {4 * int(shape[1])} x "
                            f"{4 * int(shape[0])} px (two crops each way at half its size). Use a smaller image size "
                            "or the whole photograph.")
    return part


def _texture(difficulty: str, n: int, seed: int, photo_spec: str | None = None, shape=TEXTURE_SHAPE,
             region: str = "all", disjoint: bool = False):
    rng = np.random.default_rng(seed)
    h, w = shape
    grid = TEXTURE_GRID
    n_cells = grid[0] * grid[1]
    counts = synthetic.label_counts(n, n_cells)
    label = np.repeat(np.arange(n_cells + 1), counts)[rng.permutation(n)]
    kind = np.where(label > 0, rng.choice(np.arange(1, 5), size=n, p=_TEXTURE_DEFECT_PROBS), 0)
    img, recorded = photo_from(photo_spec or texture_photo(difficulty), shape)
    split = None
    if disjoint:            # each split's crops from its own band (the split stratified by label, seeded)
        from .splits import DEFAULT_FRACTIONS, stratified_split     # the bands' shares: a run's default split
        split = stratified_split(label.astype(str), DEFAULT_FRACTIONS, seed=seed)
        clean = np.empty((n, h, w), np.float32)
        for name in SPLIT_BANDS:
            rows = np.flatnonzero(split == name)
            clean[rows] = _crops(_downscale(_photo_region(img, name, shape, recorded), 2), rows.size, (h, w), rng)
    else:
        src = _downscale(_photo_region(img, region, shape, recorded), 2)
        clean = _crops(src, n, (h, w), rng)
    contrast = rng.uniform(0.92, 1.08, n).astype(np.float32)[:, None, None]
    bright = rng.uniform(-6.0, 6.0, n).astype(np.float32)[:, None, None]
    clean = (clean - 128.0) * contrast + 128.0 + bright
    noise = rng.standard_normal((n, h, w), dtype=np.float32) * rng.uniform(2.0, 3.5, n).astype(np.float32)[:, None, None]
    painted = _texture_defects(clean, label, kind, rng, grid, floor=_STRENGTH_FLOOR[difficulty])
    # a defect never reaches beyond its cell (the tails of a dent or a rim are cut at the cell's edge)
    painted = clean + (painted - clean) * _cell_masks(label, (h, w), grid)
    img_def = np.clip(np.rint(painted + noise), 0, 255)
    img_clean = np.clip(np.rint(clean + noise), 0, 255)
    boxes, peak = _boxes(img_def - img_clean), np.abs(img_def - img_clean).max(axis=(1, 2))
    boxes[label == 0] = -1
    kinds = np.array(("none",) + TEXTURE_DEFECTS)[kind]
    info = {"kind": "texture", "difficulty": difficulty, "photo": recorded, "grid": list(grid),
            "bounds": [0.0, float(h), 0.0, float(w)], "shape": [h, w]}
    if region != "all":
        info["region"] = region
    if split is not None:
        info["split"] = split.tolist()
        info["split_bands"] = {k: list(v) for k, v in SPLIT_BANDS.items()}
    return img_def.astype(np.uint8), label, kinds, boxes, peak, info


# --------------------------------------------------------------------------------------------
# The connector kind
# --------------------------------------------------------------------------------------------
_CONNECTOR_LOOK = {
    # grain amplitude (grey levels, +-), light (+- fraction), JPEG quality range, noise sd range
    "moderate": dict(grain=6.0, light=0.10, jpeg=(70, 95), noise=(2.0, 4.0)),
    "strong": dict(grain=12.0, light=0.20, jpeg=(50, 80), noise=(3.0, 6.0)),
}


def _jpeg(images: np.ndarray, quality) -> np.ndarray:
    """Encode every uint8 image (n, h, w) as JPEG at its quality (n,) and decode it again."""
    from PIL import Image

    out = np.empty_like(images)
    for i, (im, q) in enumerate(zip(images, np.broadcast_to(np.asarray(quality), (len(images),)))):
        buf = io.BytesIO()
        Image.fromarray(im, mode="L").save(buf, format="JPEG", quality=int(q))
        buf.seek(0)
        with Image.open(buf) as j:
            out[i] = np.asarray(j.convert("L"))
    return out


def _fit_downscale(img: np.ndarray, f: int, shape) -> np.ndarray:
    """``img`` downscaled by ``f``, or by the largest smaller power of two whose result still holds a crop of
    ``shape`` (a connector drawn larger sees its grain, scene and light from nearer)."""
    while f > 1 and (img.shape[0] // f < shape[0] or img.shape[1] // f < shape[1]):
        f //= 2
    return _downscale(img, f) if f > 1 else img


def _connector(difficulty: str, n: int, seed: int, shape=CONNECTOR_SHAPE):
    spec = synthetic.ConnectorSpec(height=int(shape[0]), width=int(shape[1]))
    look = _CONNECTOR_LOOK[difficulty]
    params = synthetic.sample_params(n, seed, spec)
    params["noise"] = np.zeros_like(params["noise"])           # this set's own noise comes after the light
    rng = np.random.default_rng([seed, 1])
    h, w = spec.height, spec.width
    img_def = synthetic.render(params, spec, defects=True).astype(np.float32)
    img_clean = synthetic.render(params, spec, defects=False).astype(np.float32)
    # where the housing's surface shows: the body minus the notch and the pin cavities (shifted with the part)
    geo = synthetic._geometry(spec)
    ys = np.arange(h, dtype=np.float32)[None, :] + 0.5 - params["shift_y"][:, None]
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5 - params["shift_x"][:, None]

    def cover(rect):
        y0, y1, x0, x1 = rect
        return synthetic._box_cov(ys, y0, y1)[:, :, None] * synthetic._box_cov(xs, x0, x1)[:, None, :]

    body = cover(geo.body)
    surface = body - cover(geo.notch) - sum(cover(s) for s in geo.slots)
    surface = np.clip(surface, 0.0, 1.0)
    background = 1.0 - body
    # surface grain: a high-passed crop of a real gravel photograph (downscaled 4x), scaled to +-grain
    grain_src = _fit_downscale(photo("gravel.png", "skimage"), 4, (h, w))
    grain = _crops(grain_src, n, (h, w), rng)
    grain = grain - _gauss_blur(grain, 2.0)
    grain = grain / max(float(np.percentile(np.abs(grain), 99)), 1e-3) * look["grain"]
    # background: a crop of a real scene, its range mapped to dark grey levels (5..70)
    scene = _fit_downscale(photo("china.jpg", "sklearn"), 4, (h, w))
    bg = _crops(scene, n, (h, w), rng)
    bg = 5.0 + 65.0 * bg / 255.0
    # light: a low-passed crop of another photograph (downscaled 8x), +-light around 1
    light_src = _fit_downscale(photo("flower.jpg", "sklearn"), 2, (h, w))
    light = _gauss_blur(_crops(light_src, n, (h, w), rng), 6.0)
    light = light - light.mean(axis=(1, 2), keepdims=True)
    light = 1.0 + look["light"] * light / np.maximum(np.abs(light).max(axis=(1, 2), keepdims=True), 1e-3)
    noise_sd = rng.uniform(*look["noise"], n).astype(np.float32)[:, None, None]
    noise = rng.standard_normal((n, h, w), dtype=np.float32) * noise_sd
    quality = rng.integers(look["jpeg"][0], look["jpeg"][1] + 1, n)

    def finish(img):
        img = img + surface * grain
        # the scene replaces the flat background level (22), keeping the render's light and jitter as a ratio
        img = img * (1.0 - background) + background * bg * np.clip(img / 22.0, 0.5, 1.5)
        return np.clip(np.rint(img * light + noise), 0, 255)

    pre_def = finish(img_def)
    out_def = _jpeg(pre_def.astype(np.uint8), quality)
    label = params["label"]
    # the defect's own pixels, before JPEG spreads a little of every change over its 8 x 8 block
    diff = pre_def - finish(img_clean)
    boxes, peak = _boxes(diff), np.abs(diff).max(axis=(1, 2))
    boxes[label == 0] = -1
    kinds = np.array([synthetic.DEFECT_KINDS[int(k)] for k in params["kind"]])
    by0, by1, bx0, bx1 = geo.body
    info = {"kind": "connector", "difficulty": difficulty, "photo": "skimage:gravel.png (grain), "
            "sklearn:china.jpg (background), sklearn:flower.jpg (light)", "grid": [spec.pin_rows, spec.pin_cols],
            "bounds": [float(by0), float(by1), float(bx0), float(bx1)], "shape": [h, w]}
    return out_def, label, kinds, boxes, peak, info


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def _check(kind: str, difficulty: str, n: int, seed: int, shape) -> tuple[int, int]:
    """Raise :class:`RealDataError` on a bad argument; returns the image shape (h, w) to make."""
    if kind not in KINDS:
        raise RealDataError(f"Unknown kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if difficulty not in DIFFICULTIES:
        raise RealDataError(f"Unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}.")
    n_labels = 13
    if not isinstance(n, (int, np.integer)) or n < n_labels or n > 200_000:
        raise RealDataError(f"n must be an integer from {n_labels} (one item per label: good and 12 cell or pin "
                            f"addresses) to 200000; got {n!r}.")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise RealDataError(f"seed must be an integer from 0 to {2**32 - 1}; got {seed!r}.")
    default = TEXTURE_SHAPE if kind == "texture" else CONNECTOR_SHAPE
    if shape is None:
        return default
    try:
        h, w = (int(v) for v in shape)
        ok = (h, w) == tuple(shape)
    except (TypeError, ValueError):
        ok = False
    lo, hi = SHAPE_RANGE
    if not ok or not (lo <= h <= hi and lo <= w <= hi):
        raise RealDataError(f"The image size must be two whole numbers of pixels (height, width) from {lo} to {hi}; "
                            f"got {shape!r}.")
    if kind == "texture" and (h < TEXTURE_SHAPE[0] or w < TEXTURE_SHAPE[1]):
        raise RealDataError(f"A texture set is at least {TEXTURE_SHAPE[0]} x {TEXTURE_SHAPE[1]} px (height x width): "
                            f"each of its {TEXTURE_GRID[0]} x {TEXTURE_GRID[1]} cells must hold the largest defect "
                            f"(a scratch 10 px long); got {h} x {w}.")
    if kind == "connector":
        try:
            synthetic.ConnectorSpec(height=h, width=w)
        except ValueError as e:
            raise RealDataError(f"The connector cannot be drawn at {h} x {w} px: {e}.") from None
        if h > CONNECTOR_PHOTO_HW[0] or w > CONNECTOR_PHOTO_HW[1]:
            raise RealDataError(f"A connector set is at most {CONNECTOR_PHOTO_HW[0]} x {CONNECTOR_PHOTO_HW[1]} px "
                                f"(height x width: the size of the scene photograph its background is cut from); "
                                f"got {h} x {w}.")
    return h, w


def generate(kind: str = "texture", difficulty: str = "moderate", n: int = 3000, seed: int = 0,
             photo: str | None = None, shape: tuple[int, int] | None = None, region: str = "all",
             disjoint: bool = False):
    """Generate a real-photo set.

    kind : ``"texture"`` or ``"connector"``; difficulty : ``"moderate"`` or ``"strong"``
    n : items (at least 13: one per label); seed : the only source of randomness
    photo : texture only: the photograph to cut the surface from instead of the difficulty's own (a spec of
        :func:`photo_from`: ``"skimage:grass.png"`` or an image file); the difficulty then sets only the
        defects' strength range (``strong``: the upper 40 %)
    shape : (height, width) of the images, default :data:`TEXTURE_SHAPE` or :data:`CONNECTOR_SHAPE`. A larger
        texture is a larger field of view of the same surface: the grain and the defects keep their size in
        pixels, the grid its 3 x 4 cells. A larger connector is the same part drawn larger (its pins too).
    region : texture only: ``"all"`` of the photograph, or its ``"upper"`` or ``"lower"`` half (recorded as
        ``region`` in info). Crops of one photograph overlap, so a test split shares surface with training; a
        set of the other half measures a surface the run has never seen. The bands of :data:`SPLIT_BANDS` are
        regions too (the drift check of a disjoint set cuts its fresh items from ``"test"``).
    disjoint : texture only, with region ``"all"``: each item is given a split (train / val / test, stratified by
        label, seeded) and cut from that split's band of the photograph (:data:`SPLIT_BANDS`), so that val and test
        are surface the run has never seen; info ``split`` holds the split per item and ``split_bands`` the bands,
        and :func:`write_parquet` writes them as the ``split`` column, which a run follows.

    Returns ``(images, labels, dirnames, info)``: images uint8 (n, h, w); labels str (n,), ``"0"`` good, ``"1" .. "12"`` the cell (texture) or pin (connector)
    address; dirnames str (n,), ``OK`` or ``NG_07`` style; info a JSON-able dict: ``kind``, ``difficulty``,
    ``photo``, ``grid`` [rows, cols], ``bounds`` [y0, y1, x0, x1] of the gridded area, ``shape`` [h, w],
    ``seed``, ``n``,
    ``defect`` (defect kind per item, ``"none"`` for goods) and ``box`` (per item [y0, y1, x0, x1],
    half-open, of the pixels the defect changed by more than BOX_LEVELS grey levels; -1s for goods) and
    ``peak`` (per item the largest change of one pixel by the defect, grey levels; 0 for goods).
    Label counts follow :func:`snw_core.synthetic.label_counts` (3,000 -> 1,000 good, 166-167 per address).
    """
    shape = _check(kind, difficulty, n, seed, shape)
    if photo is not None and kind != "texture":
        raise RealDataError("A photograph of your own (--photo) is for the texture kind; the connector's grain, "
                            "background and light come from fixed photographs.")
    if region not in REGIONS and region not in SPLIT_BANDS:
        raise RealDataError(f"Unknown region {region!r}; choose one of {', '.join(REGIONS)}.")
    if disjoint and kind != "texture":
        raise RealDataError("Splits from separate bands of the photograph (--disjoint) are for the texture kind; the "
                            "connector's grain, background and light are cut from their photographs whole.")
    if disjoint and region != "all":
        raise RealDataError("--disjoint cuts each split from its own band of the whole photograph; it cannot be "
                            f"combined with --region {region}.")
    if region != "all" and kind != "texture":
        raise RealDataError("A region of the photograph (--region) is for the texture kind; the connector's grain, "
                            "background and light are cut from their photographs whole.")
    if kind == "texture":
        images, label, kinds, boxes, peak, info = _texture(difficulty, int(n), int(seed), photo, shape, region,
                                                           disjoint=bool(disjoint))
    else:
        images, label, kinds, boxes, peak, info = _connector(difficulty, int(n), int(seed), shape)
    labels = label.astype(str)
    dirnames = np.array(["OK" if v == 0 else f"NG_{v:02d}" for v in label.tolist()])
    info.update({"seed": int(seed), "n": int(n), "defect": kinds.tolist(), "box": boxes.tolist(),
                 "peak": np.rint(peak).astype(int).tolist(), "box_levels": BOX_LEVELS})
    return images, labels, dirnames, info


def write_parquet(path, kind: str = "texture", difficulty: str = "moderate", n: int = 3000, seed: int = 0,
                  sheet=None, photo: str | None = None, shape: tuple[int, int] | None = None,
                  region: str = "all", disjoint: bool = False) -> pathlib.Path:
    """Generate a set and write it as parquet (same schema and writer as the embedded set); returns the path.

    The per-item records (see :func:`generate`, ``info``) go into the schema metadata under
    :data:`META_KEY`. With ``sheet`` (a PNG path) a sample sheet of the set is written too (atomically). A
    ``disjoint`` set also has a ``split`` column (its own split, which a run follows).
    Arguments are checked before anything is written.
    """
    images, labels, dirnames, info = generate(kind, difficulty, n, seed, photo=photo, shape=shape, region=region,
                                              disjoint=disjoint)
    out = synthetic.write_images_parquet(path, images, labels, dirnames, metadata={META_KEY: info},
                                         splits=info.get("split"))
    if sheet is not None:
        from PIL import Image

        from .fsutil import atomic_writer

        with atomic_writer(sheet, suffix=".png") as tmp:
            Image.fromarray(sample_sheet(images, labels, info)).save(tmp, format="PNG")
    return out


def read_info(path) -> dict | None:
    """The per-item defect records of a parquet file written by :func:`write_parquet`, or None.

    Rows are in file order, which is the order :func:`snw_core.data.load` returns.
    """
    import json

    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(META_KEY.encode())
    return json.loads(raw) if raw else None


def sample_sheet(images: np.ndarray, labels, info: dict | None = None, per_label: int = 6,
                 scale: int | None = None) -> np.ndarray:
    """A uint8 sample sheet (one row per label, good first; ``per_label`` items each, ``scale`` x upscaled:
    by default 3 for images up to 48 px, fewer for larger ones, so that a row stays about 1,000 px wide).

    Rows are named ``good`` and ``cell k`` (texture) or ``pin k`` (connector). Beside the images as
    generated, a second block repeats the same items with the label's cell outlined in white (drawn over
    the image), so that a reader can find each defect and check that it is visible.
    """
    from PIL import Image, ImageDraw

    labels = np.asarray(labels).astype(str)
    word = "cell" if (info or {}).get("kind", "texture") == "texture" else "pin"
    n, h, w = images.shape
    if scale is None:
        scale = 3 if max(h, w) <= 48 else max(1, 144 // max(h, w))
    plain = synthetic.sample_sheet(images, labels, per_label=per_label, scale=scale, annotate=False)
    uniq = sorted(set(labels.tolist()), key=lambda s: (s != "0", synthetic._natural_key(s)))
    gap, th, tw = 2, h * scale, w * scale
    outlined = plain.copy()
    grid = (info or {}).get("grid", list(TEXTURE_GRID))
    bounds = (info or {}).get("bounds")
    for r, lab in enumerate(uniq):
        box = cell_box(lab, (h, w), grid, bounds)
        if box is None:
            continue
        y0, y1, x0, x1 = (np.clip(np.array(box), 0, [h, h, w, w]) * scale).tolist()
        for c in range(min(per_label, int((labels == lab).sum()))):
            oy, ox = gap + r * (th + gap), gap + c * (tw + gap)
            tile = outlined[oy:oy + th, ox:ox + tw]
            for yy in (y0, y1 - 1):
                tile[yy, x0:x1] = 255
            tile[y0:y1, x0] = 255
            tile[y0:y1, x1 - 1] = 255
    name_w = 52
    sheet = np.full((plain.shape[0] + 16, name_w + 2 * plain.shape[1] + 8), 255, np.uint8)
    sheet[16:, name_w:name_w + plain.shape[1]] = plain
    sheet[16:, name_w + plain.shape[1] + 8:] = outlined
    im = Image.fromarray(sheet, mode="L")
    draw = ImageDraw.Draw(im)
    draw.text((name_w + 2, 2), "as generated", fill=0)
    draw.text((name_w + plain.shape[1] + 10, 2), f"the same, the label's {word} outlined", fill=0)
    for r, lab in enumerate(uniq):
        draw.text((4, 16 + gap + r * (th + gap) + th // 2 - 6), "good" if lab == "0" else f"{word} {lab}", fill=0)
    return np.asarray(im, dtype=np.uint8).copy()
