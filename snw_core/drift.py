"""Camera drift: seeded acquisition changes of images, and how a finished run judges items under each.

A camera at the line drifts: the part sits a little off, the fixture turns, the focus softens, the
compression or the light changes. :func:`apply` makes one such change on uint8 images, vectorised over
items; :func:`drift_table` judges fresh items of the run's kind under every condition of
:data:`CONDITIONS` and reports, per condition, the share of goods judged GOOD and of defects caught.

Conditions (``name``: the strength's unit; items get a random direction or sign from ``seed``):

==============  ==============================================================================
``none``        the items as generated (the reference row)
``shift``       the whole image moves by ``strength`` px along a random axis direction (up, down, left
                or right); bilinear for fractional px; edges replicated
``rotation``    rotated by +-``strength`` degrees (random sign) about the image centre, bilinear
``blur``        Gaussian blur, sigma ``strength`` px
``jpeg``        JPEG re-compression at quality ``strength``
``noise``       added Gaussian noise of sd ``strength`` grey levels
``gradient``    a linear illumination ramp from -``strength`` to +``strength`` grey levels across the
                image, in a random direction
``brightness``  every grey level times 1 +- ``strength`` % (random sign)
``contrast``    the deviations from the image's mean grey level times ``strength``
==============  ==============================================================================

Results are rounded and clipped to 0..255, uint8. Shapes: ``images`` uint8 (n, h, w) in, the same out.

>>> rows = run_drift(run)                       # doctest: +SKIP
>>> print(format_table(rows))                   # doctest: +SKIP

See also: :mod:`snw_core.realdata` (real-photo sets), ``python -m snw_core bench --drift``.
"""
from __future__ import annotations

import io

import numpy as np

__all__ = ["CONDITIONS", "CHANGES", "apply", "shift", "rotate", "blur", "jpeg", "noise", "gradient", "brightness",
           "contrast", "fresh_items", "drift_table", "run_drift", "format_table", "print_bench_drift", "DriftError",
           "TARGETS", "WORDS", "row_held", "run_check", "check_summary"]

#: the conditions of the benchmark and their strengths (at least those a line camera sees every day)
CONDITIONS = (("none", 0.0), ("shift", 2.0), ("rotation", 3.0), ("blur", 1.0), ("jpeg", 50.0), ("noise", 8.0),
              ("gradient", 30.0), ("brightness", 30.0), ("contrast", 0.6))
#: strength units, for tables
UNITS = {"none": "", "shift": "px", "rotation": "deg", "blur": "px sigma", "jpeg": "quality", "noise": "sd",
         "gradient": "+- grey levels", "brightness": "+- %", "contrast": "x"}


class DriftError(ValueError):
    """An unknown condition or a strength out of range."""


def _check(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DriftError(f"expected uint8 images of shape (n, h, w), got {images.dtype} {images.shape}")
    return images


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _signs(n: int, rng) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, -1.0, 1.0)


def _warp(images: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """Bilinear sampling of every image at source coordinates sy, sx (n, h, w), edges replicated."""
    n, h, w = images.shape
    img = images.astype(np.float32)
    sy = np.clip(sy, 0.0, h - 1.0)
    sx = np.clip(sx, 0.0, w - 1.0)
    y0 = np.floor(sy).astype(np.int64)
    x0 = np.floor(sx).astype(np.int64)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (sy - y0).astype(np.float32)
    fx = (sx - x0).astype(np.float32)
    i = np.arange(n)[:, None, None]
    top = img[i, y0, x0] * (1 - fx) + img[i, y0, x1] * fx
    bottom = img[i, y1, x0] * (1 - fx) + img[i, y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def shift(images, px: float, seed: int = 0) -> np.ndarray:
    """Move every image by ``px`` pixels along a random axis direction (up, down, left or right)."""
    images = _check(images)
    n, h, w = images.shape
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 4, n)
    dy = np.select([d == 0, d == 1], [px, -px], 0.0)[:, None, None]
    dx = np.select([d == 2, d == 3], [px, -px], 0.0)[:, None, None]
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return _to_uint8(_warp(images, yy[None] - dy, xx[None] - dx))


def rotate(images, degrees: float, seed: int = 0) -> np.ndarray:
    """Rotate every image by +-``degrees`` (random sign per item) about its centre."""
    images = _check(images)
    n, h, w = images.shape
    rng = np.random.default_rng(seed)
    a = np.deg2rad(degrees) * _signs(n, rng)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32) - cy, np.arange(w, dtype=np.float32) - cx, indexing="ij")
    c, s = np.cos(a)[:, None, None], np.sin(a)[:, None, None]
    # inverse map: the source pixel of each output pixel
    sy = c * yy[None] - s * xx[None] + cy
    sx = s * yy[None] + c * xx[None] + cx
    return _to_uint8(_warp(images, sy, sx))


def blur(images, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` px (separable, edges replicated)."""
    from .imageops import gaussian_blur
    images = _check(images)
    if sigma <= 0:
        return images.copy()
    return _to_uint8(gaussian_blur(images, sigma, np.float32))


def jpeg(images, quality: float, seed: int = 0) -> np.ndarray:
    """Encode every image as JPEG at ``quality`` (1..95) and decode it again (pillow, one image at a time)."""
    from PIL import Image

    images = _check(images)
    q = int(round(quality))
    if not 1 <= q <= 95:
        raise DriftError(f"JPEG quality must be between 1 and 95; got {quality}")
    out = np.empty_like(images)
    for i, im in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(im, mode="L").save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as j:
            out[i] = np.asarray(j.convert("L"))
    return out


def noise(images, sd: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sd`` grey levels."""
    images = _check(images)
    rng = np.random.default_rng(seed)
    return _to_uint8(images.astype(np.float32) + rng.standard_normal(images.shape, dtype=np.float32) * sd)


def gradient(images, amplitude: float, seed: int = 0) -> np.ndarray:
    """Add a linear ramp from -``amplitude`` to +``amplitude`` grey levels across the image, random direction."""
    images = _check(images)
    n, h, w = images.shape
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.meshgrid(np.linspace(-0.5, 0.5, h), np.linspace(-0.5, 0.5, w), indexing="ij")
    ramp = np.sin(a)[:, None, None] * yy[None] + np.cos(a)[:, None, None] * xx[None]
    ramp /= np.maximum(np.abs(ramp).max(axis=(1, 2), keepdims=True), 1e-9)   # -1 .. 1 across the image
    return _to_uint8(images.astype(np.float32) + amplitude * ramp)


def brightness(images, percent: float, seed: int = 0) -> np.ndarray:
    """Multiply every grey level by 1 +- ``percent`` / 100 (random sign per item)."""
    images = _check(images)
    rng = np.random.default_rng(seed)
    gain = 1.0 + _signs(len(images), rng) * percent / 100.0
    return _to_uint8(images.astype(np.float32) * gain[:, None, None])


def contrast(images, factor: float, seed: int = 0) -> np.ndarray:
    """Scale every image's deviations from its mean grey level by ``factor``."""
    images = _check(images).astype(np.float32)
    m = images.mean(axis=(1, 2), keepdims=True)
    return _to_uint8((images - m) * factor + m)


CHANGES = {"none": lambda images, s, seed=0: _check(images).copy(), "shift": shift, "rotation": rotate,
           "blur": blur, "jpeg": jpeg, "noise": noise, "gradient": gradient, "brightness": brightness,
           "contrast": contrast}


def apply(images, condition: str, strength: float, seed: int = 0) -> np.ndarray:
    """One acquisition change (a name of :data:`CHANGES`) at ``strength`` on uint8 images (n, h, w)."""
    if condition not in CHANGES:
        raise DriftError(f"Unknown drift condition {condition!r}; choose one of {', '.join(CHANGES)}.")
    return CHANGES[condition](images, strength, seed=seed)


# --------------------------------------------------------------------------------------------
# Judging under drift
# --------------------------------------------------------------------------------------------
def fresh_items(run, n_good: int = 120, n_defect: int = 120, seed: int = 1000, data=None):
    """Items of the run's kind that it has never seen, and where they come from.

    * data ``default``: the embedded generator with another seed (``seed``, or ``seed + 1`` if equal to
      the data's own);
    * a parquet file written by :mod:`snw_core.realdata`: the same kind and difficulty, another seed;
    * a parquet file written by ``data synth`` (:func:`snw_core.synthetic.write_parquet`): the same connector
      (size, pin grid, polarity), another seed;
    * any other source: the run's own test split (never trained on, but not fresh from a generator), from
      ``data`` = (images, labels) as the run was trained on them (row for row with its embeddings.npz; the
      trainer passes them, since corrections can leave rows out), else loaded from the source.

    Returns ``(images uint8 (m, h, w), labels str (m,), note)``: the first ``n_good`` goods and the first
    ``n_defect`` defects (fewer where the source has fewer). Raises :class:`DriftError` where the source no
    longer holds the rows the run was trained on.
    """
    from . import data as D

    cfg = run.config()
    source, good_label = cfg["data"]["source"], cfg["data"]["good_label"]
    images = labels = None
    n = 3 * max(n_good, (n_defect + 1) // 2) + 13
    if source == D.DEFAULT_SOURCE:
        from . import synthetic
        s = seed if seed != D.DEFAULT_SEED else seed + 1
        images, labels, _ = synthetic.generate(n, s)
        note = f"embedded generator, seed {s}"
    elif str(source).endswith(".parquet"):
        from . import realdata
        try:
            info = realdata.read_info(source)
        except Exception:       # noqa: BLE001 - unreadable metadata: fall back to the test split
            info = None
        if info:
            s = seed if seed != info.get("seed") else seed + 1
            own = None                          # a texture cut from a photograph of its own: the same one
            default = realdata.texture_photo(info["difficulty"]) if info["kind"] == "texture" else None
            if default is not None and info.get("photo") not in (None, default):
                own = info["photo"]
            try:
                # the same half of the photograph as the set's; a set with its own split: its test band
                region = "test" if info.get("split") else info.get("region", "all")
                images, labels, _, _ = realdata.generate(info["kind"], info["difficulty"], n, s, photo=own,
                                                         shape=info.get("shape"), region=region)
                where = {"all": "", "test": ", the test band"}.get(region, f", {region} half")
                note = f"realdata {info['kind']}/{info['difficulty']}" + (f" ({own})" if own else "") + where + \
                    f", seed {s}"
            except realdata.RealDataError:      # the photograph has moved since: fall back to the test split
                images = None
        else:
            from . import synthetic
            generated = synthetic.read_generator(source)
            if generated is not None:
                spec, data_seed = generated
                s = seed if seed != data_seed else seed + 1
                images, labels, _ = synthetic.generate(n, s, spec)
                note = (f"generated connector ({spec.height} x {spec.width} px, {spec.pin_rows} x {spec.pin_cols} "
                        f"pins), seed {s}")
    if images is None:
        from .embed import load_embeddings
        if data is None:
            ds = D.load(source, good_label=good_label)
            data = (ds.images, ds.labels)
        split = load_embeddings(run.file("embeddings.npz"))["split"]
        if len(data[0]) != len(split):
            raise DriftError(f"The data source '{source}' holds {len(data[0])} items, but run '{run.id}' was trained "
                             f"on {len(split)} (it has changed since, or corrections left rows out): its test split "
                             "cannot be found in it.")
        images, labels = data[0][split == "test"], np.asarray(data[1])[split == "test"]
        note = "the run's test split (no generator for this source)"
    good = np.flatnonzero(labels == good_label)[:n_good]
    bad = np.flatnonzero(labels != good_label)[:n_defect]
    pick = np.sort(np.concatenate([good, bad]))
    return images[pick], labels[pick], note


def _passed(out: dict) -> np.ndarray:
    """True where the verdict is GOOD; anything else (DEFECT, UNKNOWN, ...) is not passed."""
    if "verdict" in out:
        return np.asarray(out["verdict"]).astype(str) == "GOOD"
    return ~np.asarray(out["defect"], bool)


def drift_table(judge, images, labels, good_label: str = "0", conditions=CONDITIONS, seed: int = 0) -> list[dict]:
    """Judge ``images`` under every condition; one row per condition.

    judge : anything with ``judge(images) -> dict`` holding ``verdict`` (or ``defect``), e.g.
        :class:`snw_core.judge.Judge`; images uint8 (n, h, w); labels str (n,)
    Row keys: ``condition``, ``strength``, ``unit``, ``n_good``, ``n_defect``, ``goods_passed`` (share of goods
    judged GOOD), ``defects_caught`` (share of defects not judged GOOD), ``goods_passed_n``,
    ``defects_caught_n``, and of those not passed the UNKNOWN ones (the run said it cannot judge them: out of
    focus, too noisy, not recognised), ``goods_unknown_n`` and ``defects_unknown_n``.
    """
    images = _check(images)
    labels = np.asarray(labels).astype(str)
    good = labels == str(good_label)
    rows = []
    for j, (name, strength) in enumerate(conditions):
        changed = apply(images, name, strength, seed=seed + j)
        out = judge.judge(changed)
        passed = _passed(out)
        unknown = (np.asarray(out["verdict"]).astype(str) == "UNKNOWN" if "verdict" in out
                   else np.zeros(len(passed), bool))
        ng, nd = int(good.sum()), int((~good).sum())
        rows.append({"condition": name, "strength": float(strength), "unit": UNITS.get(name, ""),
                     "n_good": ng, "n_defect": nd,
                     "goods_passed_n": int(passed[good].sum()), "defects_caught_n": int((~passed[~good]).sum()),
                     "goods_unknown_n": int(unknown[good].sum()), "defects_unknown_n": int(unknown[~good].sum()),
                     "goods_passed": float(passed[good].mean()) if ng else float("nan"),
                     "defects_caught": float((~passed[~good]).mean()) if nd else float("nan")})
    return rows


def run_drift(run, n_good: int = 120, n_defect: int = 120, seed: int = 1000, conditions=CONDITIONS,
              data=None) -> dict:
    """The drift benchmark of one finished run: fresh items (:func:`fresh_items`; ``data`` as there) judged under
    every condition.

    Returns ``{"run_id", "items", "rows"}`` (rows of :func:`drift_table`).
    """
    from .judge import Judge

    images, labels, note = fresh_items(run, n_good, n_defect, seed, data=data)
    good_label = run.config()["data"]["good_label"]
    rows = drift_table(Judge.from_run(run), images, labels, good_label, conditions, seed=seed)
    return {"run_id": run.id, "items": note, "rows": rows}


#: each condition in words, with its strength (``WORDS[c].format(s=strength)``)
WORDS = {"none": "as taken", "shift": "shifted {s:g} px", "rotation": "turned {s:g} degrees",
         "blur": "blurred (sigma {s:g} px)", "jpeg": "JPEG at quality {s:g}", "noise": "with noise of sd {s:g}",
         "gradient": "with a light gradient +-{s:g} grey levels", "brightness": "brightness +-{s:g} %",
         "contrast": "contrast x {s:g}"}
#: what a line asks of each condition: the share of goods judged GOOD, and of defects caught (a softer one
#: under blur, which hides the faintest defects from a person too)
TARGETS = {"goods_passed": 0.98, "defects_caught": 0.95, "defects_caught_blur": 0.90}


def row_held(row: dict) -> bool:
    """Does a :func:`drift_table` row meet :data:`TARGETS`?"""
    caught = TARGETS["defects_caught_blur" if row["condition"] == "blur" else "defects_caught"]
    goods = row["goods_passed"] if row["n_good"] else 1.0
    defects = row["defects_caught"] if row["n_defect"] else 1.0
    return bool(goods >= TARGETS["goods_passed"] - 1e-12 and defects >= caught - 1e-12)


def run_check(run, seed: int | None = None, data=None) -> dict:
    """The drift check every training ends with: :func:`run_drift` of the finished run (fresh items of its kind, or
    its test split), each row marked ``held`` against :data:`TARGETS`. ``seed`` defaults to 1000 + the run's seed,
    as ``bench --drift --seeds S`` draws for a run of seed S. Returns ``run_drift``'s dict plus ``held`` (rows
    held), ``targets`` and ``seed`` (metrics.json key ``drift_check``)."""
    if seed is None:
        seed = 1000 + int(run.config().get("settings", {}).get("seed", 0))
    out = run_drift(run, seed=seed, data=data)
    for r in out["rows"]:
        r["held"] = row_held(r)
    out.update({"held": sum(r["held"] for r in out["rows"]), "targets": dict(TARGETS), "seed": int(seed)})
    return out


def check_summary(check: dict) -> str:
    """One sentence: how many conditions held, and the ones that did not with their counts."""
    rows = check["rows"]
    short = [f"{r['condition']} ({r['goods_passed_n']}/{r['n_good']} goods GOOD"
             + (f", {r['goods_unknown_n']} UNKNOWN" if r.get("goods_unknown_n") else "")
             + f", {r['defects_caught_n']}/{r['n_defect']} defects caught)"
             for r in rows if not r.get("held", row_held(r))]
    head = f"camera drift: {check.get('held', len(rows) - len(short))} of {len(rows)} conditions held"
    return head + ("; short: " + ", ".join(short) if short else "")


def format_table(rows: list[dict]) -> str:
    """Aligned text table of :func:`drift_table` rows (goods GOOD and defects caught, counts and %)."""
    table = [["condition", "strength", "goods GOOD", "defects caught"]]
    for r in rows:
        s = "-" if r["condition"] == "none" else f"{r['strength']:g} {r['unit']}".strip()
        table.append([r["condition"], s, f"{r['goods_passed_n']}/{r['n_good']} ({r['goods_passed']:.1%})",
                      f"{r['defects_caught_n']}/{r['n_defect']} ({r['defects_caught']:.1%})"])
    from .bench import text_table
    return text_table(table, left=2)


def print_bench_drift(rows: list[dict], runs: dict, seed: int = 0, out=None) -> None:
    """``bench --drift``: the drift benchmark of every preset's run, one table each; rows gain ``drift``."""
    import sys

    out = out or sys.stdout
    for r in rows:
        run = runs[r["preset"]]
        stored = (run.metrics() or {}).get("drift_check")
        if stored and stored.get("seed") == 1000 + seed and stored.get("run_id") == run.id:
            result = {k: stored[k] for k in ("run_id", "items", "rows")}    # the training's own check: the same
        else:
            result = run_drift(run, seed=1000 + seed)
        r["drift"] = result
        print(f"\ncamera drift, preset {r['preset']} (run {result['run_id']}; items: {result['items']}):", file=out)
        print(format_table(result["rows"]), file=out, flush=True)
