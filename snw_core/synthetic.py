"""The embedded default data set: a synthetic connector generator.

Stands in for the Hugging Face data set ``YxBxRyXJx/SNWimages_train_1110`` (see
docs/design.md, "The embedded default data set"): same schema (``dirname``, ``label``,
``image``), same image size (26 rows x 36 columns, uint8 grayscale) and the same meaning of
labels (``"0"`` = good, ``"k"`` = defect at pin address k).

What an image shows
-------------------
A connector seen from above: a mid-gray housing body on a dark background, with a small key
notch on its top edge and ``pin_rows x pin_cols`` dark cavities (slots), each holding one
bright metallic pin (a bar with a highlight along its middle). Pin addresses run
``1 .. pin_rows*pin_cols``, row-major from the top left. Pins of the upper half point up, the
others point down; the outer end of a pin is its *tip*. With ``polarity="dark_pins"`` the body
is bright and the pins are dark.

Defects (only at the pin named by the label)
--------------------------------------------
========  ==========  ================================================================
kind      share       severity range
========  ==========  ================================================================
bent      30 %        tip displaced sideways by 1 .. 3 px (plus up to 0.5 px lengthwise)
short     20 %        pin 20 .. 70 % shorter (tip end moves towards the base)
missing   10 %        no pin at all, the empty cavity shows
deformed  15 %        pin crushed: 1.4 .. 1.9 x wider, 0 .. 25 % shorter, 5 .. 25 % duller
dirty     25 %        a smudge/particle (Gaussian blob, sigma 0.6 .. 1.2 px) on or next to
                      the pin, blending 35 .. 90 % towards a dark smudge level (on bright
                      spots) or a bright particle level (on dark spots)
========  ==========  ================================================================

The low ends (a 1-px bend, a pin 20 % short, a faint smudge) are hard to see by eye but
still change tens of gray levels against a sensor noise of a few, so a good model can find
them.

Nuisances (every item, good or defective)
-----------------------------------------
Subpixel shift of the whole part by up to 1 px in x and y (pins never move relative to each
other), per-pin reflectance jitter of +-4 %, contrast x0.88 .. 1.12 and brightness
+-8 gray levels, a linear illumination gradient of up to +-12 % across the part, Gaussian
blur (sigma 0.3 .. 0.6 px) and Gaussian sensor noise (sigma 2 .. 4.5 gray levels).

Rendering is analytic (exact box coverage for rectangles, distance-based anti-aliasing for
the pin bars) and vectorised over items with numpy; 3,600 default items take well under a
second. All randomness is drawn up front by :func:`sample_params` from
``numpy.random.default_rng(seed)``, so the same seed gives identical arrays and
:func:`render` can redraw the very same items without their defects (used by the tests).

Only numpy, pillow and pyarrow are used here (no scipy, no ``datasets``, no streamlit).
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from .fsutil import default_mode

__all__ = [
    "ConnectorSpec",
    "DEFECT_KINDS",
    "HF_FEATURES",
    "generate",
    "write_parquet",
    "write_images_parquet",
    "encode_png",
    "sample_sheet",
    "label_counts",
    "sample_params",
    "render",
]

# Defect kinds (codes stored in the sampled parameters; 0 = no defect).
#: a second geometry for robustness checks: larger images, 3 x 8 pins, dark pins on a bright body
ALT_SPEC_KW = dict(height=40, width=64, pin_rows=3, pin_cols=8, polarity="dark_pins")
DEFECT_KINDS = {0: "none", 1: "bent", 2: "short", 3: "missing", 4: "deformed", 5: "dirty"}
_KIND_CODES = np.array([1, 2, 3, 4, 5])
_KIND_PROBS = np.array([0.30, 0.20, 0.10, 0.15, 0.25])

# The HF `datasets` feature description stored in the parquet schema metadata.
HF_FEATURES = {
    "dirname": {"dtype": "string", "_type": "Value"},
    "label": {"dtype": "string", "_type": "Value"},
    "image": {"_type": "Image"},
}

GOOD_LABEL = "0"


@dataclass(frozen=True)
class ConnectorSpec:
    """Geometry and look of the synthetic connector.

    height, width : image size in pixels (rows, columns); default 26 x 36 like the seed set.
    pin_rows, pin_cols : the pin grid; pin addresses are 1 .. pin_rows*pin_cols, row-major
        from the top left.
    polarity : ``"bright_pins"`` (bright metallic pins in dark cavities on a mid-gray body)
        or ``"dark_pins"`` (dark pins in light cavities on a bright body).
    """

    height: int = 26
    width: int = 36
    pin_rows: int = 2
    pin_cols: int = 6
    polarity: str = "bright_pins"

    def __post_init__(self) -> None:
        if self.polarity not in ("bright_pins", "dark_pins"):
            raise ValueError(f"polarity must be 'bright_pins' or 'dark_pins', not {self.polarity!r}")
        if self.pin_rows < 1 or self.pin_cols < 1:
            raise ValueError("pin_rows and pin_cols must be at least 1")
        # A pin cell needs roughly 4 px across and 5 px along to draw a slot with a pin in it.
        body_w = self.width - 2 * _margin_x(self.width)
        body_h = self.height - 2 * _margin_y(self.height)
        if body_w / self.pin_cols < 4.0 or body_h / self.pin_rows < 5.0:
            raise ValueError(
                f"a {self.height}x{self.width} image is too small for {self.pin_rows}x{self.pin_cols} pins "
                "(each pin cell needs about 4 px across and 5 px along)"
            )

    @property
    def n_pins(self) -> int:
        """Number of pin addresses (pin_rows * pin_cols)."""
        return self.pin_rows * self.pin_cols


def _margin_x(width: int) -> float:
    return max(1.5, 0.06 * width)


def _margin_y(height: int) -> float:
    return max(2.0, 0.12 * height)


# --------------------------------------------------------------------------------------------
# Label counts
# --------------------------------------------------------------------------------------------
def label_counts(n: int, n_pins: int) -> np.ndarray:
    """Items per label for ``n`` items: int array (n_pins + 1,), index 0 = good, k = pin k.

    Rounding: good = ``n // 3`` (floor, at least 1); the remaining ``n - good`` defects are
    split evenly over the pins, and the remainder goes one each to the lowest pin addresses.
    If that would leave a pin without an item, goods are reduced so that every pin gets one.
    ``n`` must be at least ``n_pins + 1`` (one item per label).
    Examples: n=3600, 12 pins -> 1200 good, 200 each; n=39 -> 13 good, pins 1-2: 3, pins 3-12: 2.
    """
    n = int(n)
    if n < n_pins + 1:
        raise ValueError(f"n={n} is too small: need at least {n_pins + 1} items (one per label)")
    n_good = max(1, n // 3)
    if n - n_good < n_pins:
        n_good = n - n_pins
    n_def = n - n_good
    counts = np.full(n_pins + 1, n_def // n_pins, dtype=np.int64)
    counts[0] = n_good
    counts[1 : 1 + n_def % n_pins] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geometry:
    body: tuple[float, float, float, float]  # y0, y1, x0, x1
    notch: tuple[float, float, float, float]
    slots: np.ndarray  # (P, 4) y0, y1, x0, x1
    base: np.ndarray  # (P, 2) y, x of the pin base (inner end)
    tip: np.ndarray  # (P, 2) y, x of the pin tip (outer end)
    direction: np.ndarray  # (P,) -1 = tip points up, +1 = tip points down
    half_width: float
    pin_len: float
    pitch: tuple[float, float]  # py, px


def _geometry(spec: ConnectorSpec) -> _Geometry:
    h, w = spec.height, spec.width
    mx, my = _margin_x(w), _margin_y(h)
    by0, by1, bx0, bx1 = my, h - my, mx, w - mx
    px = (bx1 - bx0) / spec.pin_cols
    py = (by1 - by0) / spec.pin_rows
    slot_w = 0.78 * px
    slot_h = 0.80 * py
    pin_len = 0.58 * py
    half_width = max(0.7, min(0.9, 0.15 * px))
    slots, base, tip, direction = [], [], [], []
    for r in range(spec.pin_rows):
        d = -1.0 if r < (spec.pin_rows - 1) / 2 else 1.0
        if spec.pin_rows == 1:
            d = -1.0
        for c in range(spec.pin_cols):
            cy = by0 + (r + 0.5) * py
            cx = bx0 + (c + 0.5) * px
            slots.append((cy - slot_h / 2, cy + slot_h / 2, cx - slot_w / 2, cx + slot_w / 2))
            base.append((cy - d * pin_len / 2, cx))
            tip.append((cy + d * pin_len / 2, cx))
            direction.append(d)
    notch_w = min(0.16 * (bx1 - bx0), 6.0)
    notch_h = max(1.0, 0.45 * my)
    cxm = (bx0 + bx1) / 2
    notch = (by0, by0 + notch_h, cxm - notch_w / 2, cxm + notch_w / 2)
    return _Geometry(
        body=(by0, by1, bx0, bx1),
        notch=notch,
        slots=np.array(slots, dtype=np.float32),
        base=np.array(base, dtype=np.float32),
        tip=np.array(tip, dtype=np.float32),
        direction=np.array(direction, dtype=np.float32),
        half_width=float(half_width),
        pin_len=float(pin_len),
        pitch=(float(py), float(px)),
    )


def _levels(spec: ConnectorSpec) -> dict[str, float]:
    """Gray levels (0..255, before photometric nuisances) of the scene parts."""
    if spec.polarity == "bright_pins":
        return dict(bg=22.0, body=118.0, notch=30.0, slot=24.0, pin=196.0, highlight=34.0, dirt_dark=8.0, dirt_bright=180.0)
    return dict(bg=22.0, body=196.0, notch=70.0, slot=150.0, pin=40.0, highlight=-14.0, dirt_dark=40.0, dirt_bright=225.0)


# --------------------------------------------------------------------------------------------
# Parameter sampling (all randomness lives here)
# --------------------------------------------------------------------------------------------
def sample_params(n: int = 3600, seed: int = 0, spec: ConnectorSpec = ConnectorSpec()) -> dict[str, np.ndarray]:
    """Draw every random quantity of ``n`` items (rows already in their final shuffled order).

    Returns a dict of numpy arrays, one row per item:
    ``label`` int64 (n,) pin address or 0; ``kind`` int64 (n,) defect code (see
    ``DEFECT_KINDS``, 0 for goods); defect parameters ``tip_dx``, ``tip_dy``, ``len_factor``,
    ``width_factor``, ``gain_factor``, ``blob_y``, ``blob_x``, ``blob_sigma``, ``blob_amp``
    float32 (n,); nuisances ``shift_y``, ``shift_x``, ``contrast``, ``brightness``, ``grad_y``,
    ``grad_x``, ``blur_sigma`` float32 (n,), ``pin_gain`` float32 (n, P) and ``noise``
    float32 (n, H, W) in gray levels.
    """
    rng = np.random.default_rng(seed)
    geo = _geometry(spec)
    P = spec.n_pins
    counts = label_counts(n, P)
    label = np.repeat(np.arange(P + 1), counts)
    label = label[rng.permutation(n)]
    is_def = label > 0
    f32 = np.float32

    def u(lo, hi, size=n):
        return rng.uniform(lo, hi, size).astype(f32)

    kind = np.where(is_def, rng.choice(_KIND_CODES, size=n, p=_KIND_PROBS), 0)

    # Defect parameters (drawn for every row so that the stream does not depend on the kinds).
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(f32)
    tip_dx = sign * u(1.0, 3.0)
    tip_dy = u(-0.5, 0.5)
    short_frac = u(0.20, 0.70)
    crush_len = u(0.0, 0.25)
    width_factor = u(1.4, 1.9)
    dull = u(0.05, 0.25)
    blob_t = u(0.0, 1.0)  # position along the pin, 0 = base, 1 = tip
    blob_off = u(-1.6, 1.6)  # sideways offset from the pin axis
    blob_sigma = u(0.6, 1.2)
    blob_amp = u(0.35, 0.90)

    ones = np.ones(n, f32)
    zeros = np.zeros(n, f32)
    bent, short, missing, deformed, dirty = (kind == k for k in (1, 2, 3, 4, 5))
    params: dict[str, np.ndarray] = {"label": label.astype(np.int64), "kind": kind.astype(np.int64)}
    params["tip_dx"] = np.where(bent, tip_dx, zeros)
    params["tip_dy"] = np.where(bent, tip_dy, zeros)
    params["len_factor"] = np.select([short, missing, deformed], [1.0 - short_frac, zeros, 1.0 - crush_len], ones)
    params["width_factor"] = np.where(deformed, width_factor, ones)
    params["gain_factor"] = np.where(deformed, 1.0 - dull, ones)
    pin_idx = np.clip(label - 1, 0, P - 1)
    by, bx = geo.base[pin_idx, 0], geo.base[pin_idx, 1]
    ty, tx = geo.tip[pin_idx, 0], geo.tip[pin_idx, 1]
    params["blob_y"] = by + blob_t * (ty - by)
    params["blob_x"] = bx + blob_t * (tx - bx) + blob_off
    params["blob_sigma"] = blob_sigma
    params["blob_amp"] = np.where(dirty, blob_amp, zeros)

    # Nuisances.
    params["shift_y"] = u(-1.0, 1.0)
    params["shift_x"] = u(-1.0, 1.0)
    params["pin_gain"] = rng.uniform(0.96, 1.04, (n, P)).astype(f32)
    params["contrast"] = u(0.88, 1.12)
    params["brightness"] = u(-8.0, 8.0)
    params["grad_y"] = u(-0.12, 0.12)
    params["grad_x"] = u(-0.12, 0.12)
    params["blur_sigma"] = u(0.3, 0.6)
    noise_sigma = u(2.0, 4.5)
    params["noise"] = rng.standard_normal((n, spec.height, spec.width), dtype=f32) * noise_sigma[:, None, None]
    for k, v in params.items():
        if v.dtype == np.float64:
            params[k] = v.astype(f32)
    return params


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _box_cov(c: np.ndarray, lo, hi) -> np.ndarray:
    """Exact 1-D coverage of unit pixels centred at ``c`` by the interval [lo, hi]."""
    return np.clip(np.minimum(c + 0.5, hi) - np.maximum(c - 0.5, lo), 0.0, 1.0)


def _blur(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur with a per-item sigma. img float32 (n, H, W), sigma (n,)."""
    radius = 2
    k = np.arange(-radius, radius + 1, dtype=np.float32)
    wts = np.exp(-0.5 * (k[None, :] / sigma[:, None]) ** 2)
    wts /= wts.sum(axis=1, keepdims=True)  # (n, 5)
    out = img
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="edge")
        size = out.shape[axis]
        acc = np.zeros_like(out)
        for i in range(2 * radius + 1):
            sl = [slice(None)] * 3
            sl[axis] = slice(i, i + size)
            acc += wts[:, i, None, None] * p[tuple(sl)]
        out = acc
    return out


def render(params: dict[str, np.ndarray], spec: ConnectorSpec = ConnectorSpec(), defects: bool = True) -> np.ndarray:
    """Render sampled items to uint8 images of shape (n, spec.height, spec.width).

    ``params`` comes from :func:`sample_params` with the same ``spec``. With ``defects=False``
    the very same items (same nuisances, same noise) are drawn as good parts.
    """
    geo = _geometry(spec)
    lv = _levels(spec)
    H, W, P = spec.height, spec.width, spec.n_pins
    label = params["label"]
    n = label.shape[0]
    f32 = np.float32
    sy = params["shift_y"][:, None]
    sx = params["shift_x"][:, None]
    ys = np.arange(H, dtype=f32)[None, :] + 0.5 - sy  # (n, H): pixel centres in part coordinates
    xs = np.arange(W, dtype=f32)[None, :] + 0.5 - sx  # (n, W)

    img = np.full((n, H, W), lv["bg"], dtype=f32)

    def paint_rect(rect, level, rows=None, cols=None):
        y0, y1, x0, x1 = rect
        r = slice(None) if rows is None else rows
        c = slice(None) if cols is None else cols
        cov = _box_cov(ys[:, r], y0, y1)[:, :, None] * _box_cov(xs[:, c], x0, x1)[:, None, :]
        view = img[:, r, c]
        view += cov * (level - view)

    def window(y0, y1, x0, x1, margin):
        r = slice(max(0, int(np.floor(y0 - margin))), min(H, int(np.ceil(y1 + margin))))
        c = slice(max(0, int(np.floor(x0 - margin))), min(W, int(np.ceil(x1 + margin))))
        return r, c

    paint_rect(geo.body, lv["body"])
    paint_rect(geo.notch, lv["notch"], *window(*geo.notch, 2))
    for j in range(P):
        paint_rect(geo.slots[j], lv["slot"], *window(*geo.slots[j], 2))

    # Pins: bars (capsules) from base to tip, anti-aliased by distance to the axis.
    hw0 = geo.half_width
    margin = 4.0 + 2 * hw0 + 1.0  # bend (<= 3 px), shift (<= 1 px), width
    for j in range(P):
        here = (label == j + 1) if defects else np.zeros(n, bool)
        lenf = np.where(here, params["len_factor"], 1.0).astype(f32)
        dx = np.where(here, params["tip_dx"], 0.0).astype(f32)
        dy = np.where(here, params["tip_dy"], 0.0).astype(f32)
        hw = hw0 * np.where(here, params["width_factor"], 1.0).astype(f32)
        gain = params["pin_gain"][:, j] * np.where(here, params["gain_factor"], 1.0).astype(f32)
        (by, bx), (ty, tx) = geo.base[j], geo.tip[j]
        ay = np.full(n, by, f32)
        ax = np.full(n, bx, f32)
        ey = by + lenf * (ty - by) + dy * lenf
        ex = bx + dx * np.minimum(lenf, 1.0)
        r, c = window(min(by, ty), max(by, ty), bx, bx, margin)
        py = ys[:, r][:, :, None]  # (n, h, 1)
        px = xs[:, c][:, None, :]  # (n, 1, w)
        vy, vx = (ey - ay)[:, None, None], (ex - ax)[:, None, None]
        qy, qx = py - ay[:, None, None], px - ax[:, None, None]
        vv = vy * vy + vx * vx
        t = np.clip((qy * vy + qx * vx) / np.maximum(vv, 1e-6), 0.0, 1.0)
        dist = np.sqrt((qy - t * vy) ** 2 + (qx - t * vx) ** 2)
        hwb = hw[:, None, None]
        cov = np.clip(hwb + 0.5 - dist, 0.0, 1.0)
        cov *= (lenf > 0.02)[:, None, None]  # missing pin: nothing drawn
        shade = lv["pin"] + lv["highlight"] * np.clip(1.0 - dist / hwb, 0.0, 1.0)
        level = shade * gain[:, None, None]
        view = img[:, r, c]
        view += cov * (level - view)

    # Contamination: blend towards a dirt gray level with a Gaussian footprint.
    if defects:
        dirty = np.nonzero(params["blob_amp"] > 0)[0]
        if dirty.size:
            gy = ys[dirty][:, :, None] - params["blob_y"][dirty, None, None]
            gx = xs[dirty][:, None, :] - params["blob_x"][dirty, None, None]
            s2 = 2.0 * params["blob_sigma"][dirty, None, None] ** 2
            g = np.exp(-(gy * gy + gx * gx) / s2)
            sub = img[dirty]
            # Dark smudge on a bright spot, bright particle on a dark one: never invisible.
            local = (g * sub).sum(axis=(1, 2)) / np.maximum(g.sum(axis=(1, 2)), 1e-6)
            mid = 0.5 * (lv["dirt_dark"] + lv["dirt_bright"])
            dirt = np.where(local > mid, lv["dirt_dark"], lv["dirt_bright"]).astype(f32)
            a = params["blob_amp"][dirty, None, None] * g
            img[dirty] = sub + a * (dirt[:, None, None] - sub)

    # Photometric nuisances: illumination gradient, contrast/brightness, blur, noise.
    yy = (np.arange(H, dtype=f32) + 0.5) / H - 0.5
    xx = (np.arange(W, dtype=f32) + 0.5) / W - 0.5
    illum = 1.0 + 2.0 * (params["grad_y"][:, None, None] * yy[None, :, None] + params["grad_x"][:, None, None] * xx[None, None, :])
    img *= illum
    img = (img - 128.0) * params["contrast"][:, None, None] + 128.0 + params["brightness"][:, None, None]
    img = _blur(img, params["blur_sigma"])
    img += params["noise"]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def generate(n: int = 3600, seed: int = 0, spec: ConnectorSpec = ConnectorSpec()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate the synthetic data set.

    Returns ``(images, labels, dirnames)``: images uint8 (n, spec.height, spec.width);
    labels str array (n,) with values ``"0" .. str(spec.n_pins)``; dirnames str array (n,),
    ``"OK"`` for goods and ``"NG_07"`` style (two digits at least) for defects. Rows are
    shuffled deterministically; the same ``seed`` always gives identical arrays. Label counts
    follow :func:`label_counts` (3,600 -> 1,200 good and 200 per pin for 12 pins).
    """
    params = sample_params(n, seed, spec)
    images = render(params, spec)
    lab = params["label"]
    labels = lab.astype(str)
    dirnames = np.array(["OK" if v == 0 else f"NG_{v:02d}" for v in lab.tolist()])
    return images, labels, dirnames


def encode_png(images: np.ndarray) -> list[bytes]:
    """PNG bytes (mode ``L``) of every image of a uint8 array (n, H, W); one ``bytes`` per image."""
    from PIL import Image

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images of shape (n, H, W), got {images.dtype} {images.shape}")
    out = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im, mode="L").save(buf, format="PNG", compress_level=6)
        out.append(buf.getvalue())
    return out


#: schema metadata key of a generated parquet file: where the pin cells lie (``{"grid": [rows, cols], "bounds":
#: [y0, y1, x0, x1]}``, label k = the k-th cell row-major from the top left; :mod:`snw_core.localisation`)
CELLS_KEY = "snw_cells"


def pin_cells(spec: ConnectorSpec = ConnectorSpec()) -> dict:
    """The pin grid of a connector: ``{"grid": [pin_rows, pin_cols], "bounds": the housing's [y0, y1, x0, x1]}``."""
    return {"grid": [int(spec.pin_rows), int(spec.pin_cols)], "bounds": [float(v) for v in _geometry(spec).body]}


#: schema metadata key of a generated parquet file: how it was generated (``{"n", "seed", "spec": the
#: ConnectorSpec's fields}``), so that fresh items of the same connector can be made (:mod:`snw_core.drift`)
GENERATOR_KEY = "snw_generator"


def write_parquet(path, n: int = 3600, seed: int = 0, spec: ConnectorSpec = ConnectorSpec()) -> pathlib.Path:
    """Generate the set and write it as parquet with the HF schema (see :func:`write_images_parquet`); the schema
    metadata says where the pin cells lie (:data:`CELLS_KEY`) and how the set was generated (:data:`GENERATOR_KEY`)."""
    import dataclasses
    images, labels, dirnames = generate(n, seed, spec)
    return write_images_parquet(path, images, labels, dirnames, metadata={
        CELLS_KEY: pin_cells(spec), GENERATOR_KEY: {"n": int(n), "seed": int(seed), "spec": dataclasses.asdict(spec)}})


def read_generator(path) -> tuple[ConnectorSpec, int] | None:
    """``(spec, seed)`` of a parquet file written by :func:`write_parquet`, or None (another file, or one written
    before the record, or a record this version cannot read)."""
    import pyarrow.parquet as pq
    try:
        raw = (pq.read_schema(path).metadata or {}).get(GENERATOR_KEY.encode())
        if not raw:
            return None
        rec = json.loads(raw)
        return ConnectorSpec(**rec["spec"]), int(rec["seed"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_images_parquet(path, images: np.ndarray, labels, dirnames, metadata: dict | None = None,
                         splits=None) -> pathlib.Path:
    """Write images, labels and dirnames as parquet with the HF schema; returns the path.

    Columns: ``dirname`` (string), ``label`` (string), ``image`` (struct ``{bytes: binary,
    path: string}``, i.e. the HF ``Image`` feature, PNG bytes, path null). The schema metadata
    key ``b"huggingface"`` holds the feature description so that ``datasets`` reads ``image``
    as an ``Image`` feature; ``metadata`` adds further keys (str -> JSON-able value, stored as
    JSON under that key; loaders ignore them). ``splits`` (train / val / test per item) adds a ``split``
    column: a split the data set fixes itself (:attr:`snw_core.data.Dataset.splits`). Written to a temporary file in
    the target folder and renamed into place with ``os.replace`` (atomic; no partial file on failure).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pngs = encode_png(images)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    image_col = pa.StructArray.from_arrays(
        [pa.array(pngs, type=pa.binary()), pa.nulls(len(pngs), type=pa.string())],
        fields=list(image_type),
    )
    features = HF_FEATURES if splits is None else dict(HF_FEATURES, split={"dtype": "string", "_type": "Value"})
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    for key, value in (metadata or {}).items():
        meta[str(key).encode()] = json.dumps(value).encode()
    table = pa.table(
        {
            "dirname": pa.array(np.asarray(dirnames).astype(str).tolist(), type=pa.string()),
            "label": pa.array(np.asarray(labels).astype(str).tolist(), type=pa.string()),
            "image": image_col,
            **({} if splits is None else {"split": pa.array(np.asarray(splits).astype(str).tolist(),
                                                            type=pa.string())}),
        }
    ).replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        default_mode(tmp, folder=False)          # mkstemp's file is private; give it the umask's mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s))]


def sample_sheet(
    images: np.ndarray,
    labels,
    per_label: int = 6,
    scale: int = 4,
    good_label: str = GOOD_LABEL,
    gap: int = 2,
    annotate: bool = True,
) -> np.ndarray:
    """A uint8 (rows, cols) grid image for eyeballing a data set.

    One row per label, the good label first and then the pin addresses in natural order
    (2 before 10); in each row the first ``per_label`` items of that label (blank tiles where
    a label has fewer). Every image is upscaled pixel-exactly by ``scale`` (each pixel becomes a
    ``scale x scale`` block); tiles are separated by ``gap`` pixels of white. With
    ``annotate`` a left margin names each row (``good``, ``pin 7``).
    images: uint8 (n, H, W); labels: str array-like (n,).
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(str)
    n, h, w = images.shape
    uniq = sorted(set(labels.tolist()), key=lambda s: (s != good_label, _natural_key(s)))
    th, tw = h * scale, w * scale
    label_w = 0
    if annotate:
        label_w = max(40, 7 * max(len(_row_name(u_, good_label)) for u_ in uniq) + 6)
    sheet_h = gap + len(uniq) * (th + gap)
    sheet_w = label_w + gap + per_label * (tw + gap)
    sheet = np.full((sheet_h, sheet_w), 255, dtype=np.uint8)
    for r, lab in enumerate(uniq):
        idx = np.nonzero(labels == lab)[0][:per_label]
        y0 = gap + r * (th + gap)
        for c, i in enumerate(idx):
            x0 = label_w + gap + c * (tw + gap)
            sheet[y0 : y0 + th, x0 : x0 + tw] = np.repeat(np.repeat(images[i], scale, axis=0), scale, axis=1)
    if annotate:
        from PIL import Image, ImageDraw

        im = Image.fromarray(sheet, mode="L")
        draw = ImageDraw.Draw(im)
        for r, lab in enumerate(uniq):
            y0 = gap + r * (th + gap)
            draw.text((4, y0 + th // 2 - 6), _row_name(lab, good_label), fill=0)
        sheet = np.asarray(im, dtype=np.uint8).copy()
    return sheet


def _row_name(label: str, good_label: str) -> str:
    return "good" if label == good_label else f"pin {label}"


#: a second geometry for robustness checks (see ALT_SPEC_KW)
ALT_SPEC = ConnectorSpec(**ALT_SPEC_KW)
