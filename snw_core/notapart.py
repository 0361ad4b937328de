"""Not-a-part inputs: images a line camera can deliver that are not the part the model was trained on.

A benchmark for the UNKNOWN verdict (:mod:`snw_core.gate`): every image made here must never be judged
GOOD. Each kind stands for something that happens at a line:

==================  ==============================================================================
kind                what it stands for
==================  ==============================================================================
``noise_uniform``   a camera fault: uniform random pixels
``noise_gaussian``  a camera fault: Gaussian noise around a random grey level
``noise_blobs``     smeared noise (low-frequency blobs): a dirty, out-of-focus lens with no part
``salt_pepper``     a dark frame with hot and dead pixels
``flat``            a nearly uniform frame (lamp off, lens cap, overexposed), a little sensor noise
``empty_fixture``   the fixture without a part: background level, a light gradient, noise
``other_part``      another connector type from the generator (other pin grid or polarity), same size
``inverted``        a good part with inverted grey levels (wrong illumination mode / film negative)
``upside_down``     a good part flipped top to bottom (its key notch on the wrong side)
``texture``         a crop of a real photograph (scikit-learn's sample photos), no part in it
``digits``          handwritten digits (scikit-learn's digits), enlarged: a foreign object
``blurred_lens``    a good part behind a badly blurred lens (Gaussian blur, sigma 2.5 .. 4 px)
==================  ==============================================================================

``inverted``, ``upside_down`` and ``blurred_lens`` are made from good images passed in (e.g. a run's test
goods or fresh items from the generator); the other kinds need only the image size.

**Held-out kinds** (:data:`HELD_OUT_KINDS`, never part of the default set): the gate was designed looking at the
kinds above; these were made afterwards to test it on faults nobody tuned it for. All but the last two are made
from good images:

===================  =============================================================================
kind                 what it stands for
===================  =============================================================================
``zoomed_in``        the camera too close, or another lens: the middle of the part, enlarged 1.4 x
``zoomed_out``       the camera too far: the part at 0.7 x in the middle of its own background
``off_centre``       the part a third of the image width out of place (out of the fixture)
``half_covered``     half of the image covered (a hand, a cover) at the background's grey level
``glare``            a saturated specular spot over about a quarter of the image
``overexposed``      three times the exposure, clipped at white
``turned_90``        the part turned by 90 degrees, squeezed to the image size
``motion_blur``      the part moving during exposure: a 9 px horizontal smear
``line_dropout``     a transfer fault: every third row black
``frame_tear``       a transfer fault: the lower half shifted by a third of the width
``jpeg_blocks``      JPEG at quality 5: 8 x 8 blocks
``heavy_noise``      sensor noise of sd 30 grey levels over the part (gain far up, light far down)
``double_exposure``  two parts in one frame: a good part and another one turned round, 5 px apart
``checkerboard``     a calibration target: squares of 2 to 5 px
``stripes``          vertical stripes of 2 to 4 px
===================  =============================================================================

:data:`LAYOUT_KINDS` of them only mean "not the part" for a part with a fixed layout: a crop of a surface
texture shifted, enlarged, turned, torn or blended with another crop is still that surface. Everything is
deterministic for a seed. Numpy, Pillow and scikit-learn's bundled sample data only (no download).

>>> imgs, kinds = not_a_part((26, 36), goods=None, n_per_kind=4, seed=0)   # doctest: +SKIP
>>> sorted(set(kinds))[:3]                                                  # doctest: +SKIP
['digits', 'empty_fixture', 'flat']
"""
from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "SURFACE_KINDS", "GOOD_BASED_KINDS", "HELD_OUT_KINDS", "LAYOUT_KINDS", "KIND_WORDS", "not_a_part",
           "gaussian_blur", "run_check", "check_summary"]

#: kinds that need good images to transform
GOOD_BASED_KINDS = ("inverted", "upside_down", "blurred_lens")
KINDS = ("noise_uniform", "noise_gaussian", "noise_blobs", "salt_pepper", "flat", "empty_fixture", "other_part",
         "texture", "digits") + GOOD_BASED_KINDS
#: the kinds that are not the part on a surface without a fixed layout too (a surface upside down is that surface)
SURFACE_KINDS = tuple(k for k in KINDS if k != "upside_down")
HELD_OUT_KINDS = ("zoomed_in", "zoomed_out", "off_centre", "half_covered", "glare", "overexposed", "turned_90",
                  "motion_blur", "line_dropout", "frame_tear", "jpeg_blocks", "heavy_noise", "double_exposure",
                  "checkerboard", "stripes")
#: every kind in a few words, for pages and reports
KIND_WORDS = {"noise_uniform": "uniform random pixels (camera fault)", "noise_gaussian": "Gaussian noise (camera fault)",
              "noise_blobs": "smeared noise (dirty lens, no part)", "salt_pepper": "dark frame, hot and dead pixels",
              "flat": "flat frame (lamp off, lens cap)", "empty_fixture": "empty fixture",
              "other_part": "another connector type", "texture": "a photograph, no part",
              "digits": "handwritten digits (a foreign object)", "inverted": "the part, grey levels inverted",
              "upside_down": "the part upside down", "blurred_lens": "the part behind a badly blurred lens",
              "zoomed_in": "too close (1.4 x)", "zoomed_out": "too far (0.7 x)", "off_centre": "out of the fixture",
              "half_covered": "half covered", "glare": "glare spot", "overexposed": "overexposed (3 x)",
              "turned_90": "turned 90 degrees", "motion_blur": "motion blur (9 px)", "line_dropout": "line dropout",
              "frame_tear": "frame tear", "jpeg_blocks": "JPEG at quality 5", "heavy_noise": "noise of sd 30",
              "double_exposure": "two parts in one frame", "checkerboard": "calibration checkerboard",
              "stripes": "stripes"}
#: the held-out kinds that are "not the part" only where the part has a fixed layout
LAYOUT_KINDS = ("zoomed_in", "zoomed_out", "off_centre", "turned_90", "frame_tear", "double_exposure")
_MADE_WITHOUT_GOODS = ("checkerboard", "stripes")


def gaussian_blur(images: np.ndarray, sigma) -> np.ndarray:
    """Separable Gaussian blur of float images (n, h, w) with one sigma per image (px); edges replicated."""
    from .imageops import gaussian_blur as blur
    return blur(images, sigma, np.float64)


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR),
                      np.float64)


def _photos() -> list[np.ndarray]:
    """scikit-learn's two sample photographs (china, flower) as float grayscale arrays."""
    from sklearn.datasets import load_sample_images
    out = []
    for im in load_sample_images().images:
        out.append(im.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))
    return out


def _other_parts(h: int, w: int, n: int, seed: int) -> np.ndarray:
    """Good connectors of other types at size (h, w): other pin grids and the other polarity."""
    from .synthetic import ConnectorSpec, generate
    specs = []
    for rows, cols, pol in ((1, 4, "bright_pins"), (3, 4, "bright_pins"), (2, 3, "dark_pins"), (2, 6, "dark_pins"),
                            (1, 8, "dark_pins"), (2, 8, "bright_pins"), (3, 6, "dark_pins"), (2, 4, "bright_pins")):
        try:
            specs.append(ConnectorSpec(height=h, width=w, pin_rows=rows, pin_cols=cols, polarity=pol))
        except ValueError:          # too many pins for this image size
            continue
    if not specs:
        return np.zeros((0, h, w))
    per = int(np.ceil(n / len(specs)))
    parts = []
    for i, spec in enumerate(specs):
        imgs, labels, _ = generate(3 * (per + spec.n_pins), seed=seed + 101 + i, spec=spec)
        parts.append(imgs[labels == "0"][:per])
    return np.concatenate(parts)[:n].astype(np.float64)


def not_a_part(image_shape, goods: np.ndarray | None = None, n_per_kind: int = 20, seed: int = 0,
               kinds=None) -> tuple[np.ndarray, np.ndarray]:
    """Make not-a-part images at ``image_shape`` (h, w).

    goods : uint8 (m, h, w) good images for the kinds in :data:`GOOD_BASED_KINDS` (skipped when None)
    Returns ``(images uint8 (n, h, w), kinds str (n,))``.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    n = int(n_per_kind)
    kinds = tuple(kinds or KINDS)
    unknown = set(kinds) - set(KINDS) - set(HELD_OUT_KINDS)
    if unknown:
        raise ValueError(f"unknown not-a-part kinds: {', '.join(sorted(unknown))}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    made: dict[str, np.ndarray] = {}
    for kind in kinds:
        if kind == "noise_uniform":
            x = rng.uniform(0, 255, (n, h, w))
        elif kind == "noise_gaussian":
            x = rng.uniform(40, 200, (n, 1, 1)) + rng.normal(0, 1, (n, h, w)) * rng.uniform(10, 60, (n, 1, 1))
        elif kind == "noise_blobs":
            x = gaussian_blur(rng.normal(0, 1, (n, h, w)), rng.uniform(1.5, 3.0, n))
            x = x / (x.std(axis=(1, 2), keepdims=True) + 1e-9)
            x = rng.uniform(60, 160, (n, 1, 1)) + x * rng.uniform(20, 50, (n, 1, 1))
        elif kind == "salt_pepper":
            x = rng.uniform(5, 40, (n, 1, 1)) + rng.normal(0, 2, (n, h, w))
            u = rng.uniform(size=(n, h, w))
            p = rng.uniform(0.02, 0.15, (n, 1, 1))
            x = np.where(u < p / 2, 255.0, np.where(u < p, 0.0, x))
        elif kind == "flat":
            x = rng.uniform(0, 255, (n, 1, 1)) + rng.normal(0, 1, (n, h, w)) * rng.uniform(0.5, 3.0, (n, 1, 1))
        elif kind == "empty_fixture":
            gy, gx = rng.uniform(-1, 1, (2, n, 1, 1)) * rng.uniform(5, 25, (n, 1, 1))
            x = (rng.uniform(10, 40, (n, 1, 1)) + gy * (yy / h - 0.5) + gx * (xx / w - 0.5)
                 + rng.normal(0, 1, (n, h, w)) * rng.uniform(1, 5, (n, 1, 1)))
        elif kind == "other_part":
            x = _other_parts(h, w, n, seed)
        elif kind == "texture":
            photos = _photos()
            out = []
            for _ in range(n):
                p = photos[rng.integers(len(photos))]
                scale = rng.uniform(1.0, 4.0)
                ch, cw = int(min(p.shape[0], h * scale)), int(min(p.shape[1], w * scale))
                y0, x0 = rng.integers(0, p.shape[0] - ch + 1), rng.integers(0, p.shape[1] - cw + 1)
                out.append(_resize(p[y0:y0 + ch, x0:x0 + cw], h, w))
            x = np.stack(out)
        elif kind in HELD_OUT_KINDS:
            if goods is None or len(goods) == 0:
                if kind not in _MADE_WITHOUT_GOODS:
                    continue
                g = np.zeros((n, h, w))
            else:
                g = np.asarray(goods, np.float64)[rng.choice(len(goods), n, replace=len(goods) < n)]
            x = _held_out(kind, g, rng)
        elif kind == "digits":
            from sklearn.datasets import load_digits
            d = load_digits().images                                     # (1797, 8, 8), 0..16
            pick = d[rng.choice(len(d), n, replace=False)]
            x = np.stack([_resize(im * 255 / 16, h, w) for im in pick])
            x = np.where(rng.uniform(size=(n, 1, 1)) < 0.5, x, 255 - x)  # dark ink on white, or light on dark
        else:
            if goods is None or len(goods) == 0:
                continue
            g = np.asarray(goods, np.float64)[rng.choice(len(goods), n, replace=len(goods) < n)]
            if kind == "inverted":
                x = 255 - g
            elif kind == "upside_down":
                x = g[:, ::-1, :]
            else:                                                          # blurred_lens
                x = gaussian_blur(g, rng.uniform(2.5, 4.0, n))
        made[kind] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if not made:
        return np.zeros((0, h, w), np.uint8), np.zeros(0, dtype="<U16")
    images = np.concatenate(list(made.values()))
    labels = np.concatenate([np.full(len(v), k) for k, v in made.items()])
    return images, labels


def _held_out(kind: str, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One held-out kind (:data:`HELD_OUT_KINDS`) from good images g, float (n, h, w)."""
    n, h, w = g.shape
    bg = np.median(np.concatenate([g[:, :, :2], g[:, :, -2:]], axis=2).reshape(n, -1), axis=1)  # the side columns
    if kind == "zoomed_in":
        ch, cw = int(round(h / 1.4)), int(round(w / 1.4))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return np.stack([_resize(im[y0:y0 + ch, x0:x0 + cw], h, w) for im in g])
    if kind == "zoomed_out":
        sh, sw = int(round(h * 0.7)), int(round(w * 0.7))
        out = np.repeat(bg[:, None, None], h, 1).repeat(w, 2) + rng.normal(0, 2, (n, h, w))
        y0, x0 = (h - sh) // 2, (w - sw) // 2
        out[:, y0:y0 + sh, x0:x0 + sw] = np.stack([_resize(im, sh, sw) for im in g])
        return out
    if kind == "off_centre":
        d = w // 3
        right = rng.uniform(size=n) < 0.5
        return np.stack([np.pad(im, ((0, 0), (d, 0)), mode="edge")[:, :w] if r else
                         np.pad(im, ((0, 0), (0, d)), mode="edge")[:, d:] for im, r in zip(g, right)])
    if kind == "half_covered":
        out = g.copy()
        left = rng.uniform(size=n) < 0.5
        cover = bg[:, None, None] + rng.normal(0, 2, (n, h, w))
        out[left, :, :w // 2] = cover[left, :, :w // 2]
        out[~left, :, w // 2:] = cover[~left, :, w // 2:]
        return out
    if kind == "glare":
        yy, xx = np.mgrid[0:h, 0:w]
        cy, cx = rng.uniform(0.3, 0.7, n) * h, rng.uniform(0.3, 0.7, n) * w
        ry, rx = 0.28 * h, 0.28 * w                     # an ellipse of about a quarter of the image
        d2 = ((yy[None] - cy[:, None, None]) / ry) ** 2 + ((xx[None] - cx[:, None, None]) / rx) ** 2
        return np.maximum(g, 255.0 * np.clip(1.5 - d2, 0.0, 1.0))
    if kind == "overexposed":
        return g * 3.0
    if kind == "turned_90":
        return np.stack([_resize(np.rot90(im, 1 if rng.uniform() < 0.5 else -1), h, w) for im in g])
    if kind == "motion_blur":
        p = np.pad(g, ((0, 0), (0, 0), (4, 4)), mode="edge")
        return np.mean([p[:, :, i:i + w] for i in range(9)], axis=0)
    if kind == "line_dropout":
        out = g.copy()
        out[:, int(rng.integers(3))::3, :] = 0.0
        return out
    if kind == "frame_tear":
        out = g.copy()
        out[:, h // 2:, :] = np.roll(g[:, h // 2:, :], w // 3, axis=2)
        return out
    if kind == "jpeg_blocks":
        import io

        from PIL import Image
        out = []
        for im in g:
            b = io.BytesIO()
            Image.fromarray(np.clip(np.rint(im), 0, 255).astype(np.uint8)).save(b, format="JPEG", quality=5)
            out.append(np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("L"), np.float64))
        return np.stack(out)
    if kind == "heavy_noise":
        return g + rng.normal(0, 30, g.shape)
    if kind == "double_exposure":
        other = g[rng.permutation(n)][:, ::-1, ::-1]
        return 0.5 * g + 0.5 * np.roll(other, 5, axis=2)
    if kind == "checkerboard":
        yy, xx = np.mgrid[0:h, 0:w]
        size = rng.integers(2, 6, n)[:, None, None]
        lo, hi = rng.uniform(20, 80, (n, 1, 1)), rng.uniform(160, 230, (n, 1, 1))
        return np.where(((yy[None] // size) + (xx[None] // size)) % 2 == 0, lo, hi) + rng.normal(0, 2, (n, h, w))
    # stripes
    xx = np.arange(w)[None, None, :]
    size = rng.integers(2, 5, n)[:, None, None]
    lo, hi = rng.uniform(20, 80, (n, 1, 1)), rng.uniform(160, 230, (n, 1, 1))
    return np.where((xx // size) % 2 == 0, lo, hi) + rng.normal(0, 2, (n, h, w))


def fresh_goods(run_config: dict, n: int = 60, seed: int = 12345):
    """Good images for the good-based kinds: fresh items from the generator when the run's data is the
    embedded default set or a file of ``data synth`` (never seen in training), else None (the caller passes the
    run's test goods)."""
    from .synthetic import ConnectorSpec, generate, read_generator
    source = str(run_config.get("data", {}).get("source"))
    generated = (ConnectorSpec(), 0) if source == "default" else (
        read_generator(source) if source.endswith(".parquet") else None)
    if generated is None:
        return None
    imgs, labels, _ = generate(3 * n + 13, seed=seed if seed != generated[1] else seed + 1, spec=generated[0])
    return imgs[labels == "0"][:n]


def evaluate(judge, goods=None, n_per_kind: int = 20, seed: int = 1, kinds=None) -> dict:
    """Judge not-a-part images with a :class:`~snw_core.judge.Judge` (it embeds them itself).

    Returns ``{kind: {"n", "GOOD", "DEFECT", "UNKNOWN"}}`` plus ``"all"``; a kind's counts are items.
    ``GOOD`` must be 0: anything else is an escape of something that is not the part.
    """
    images, kinds = not_a_part(judge.image_shape, goods, n_per_kind=n_per_kind, seed=seed, kinds=kinds)
    verdict = np.asarray(judge.judge(images)["verdict"]).astype(str)
    out = {}
    for kind in list(dict.fromkeys(kinds.tolist())) + ["all"]:
        sel = np.ones(len(kinds), bool) if kind == "all" else kinds == kind
        out[kind] = {"n": int(sel.sum()), **{v: int(np.sum(verdict[sel] == v)) for v in ("GOOD", "DEFECT", "UNKNOWN")}}
    return out


def run_check(run, images=None, n_per_kind: int = 20, seed: int = 1) -> dict:
    """The not-a-part check every training ends with: the run judges ``n_per_kind`` inputs of every kind of
    :data:`KINDS` and of :data:`HELD_OUT_KINDS` (seed 1, as ``bench`` draws them; the gate was designed on seed 0).
    Good-based kinds start from fresh generator goods, else from the run's test goods in ``images`` (the run's
    data as trained, row for row with its embeddings.npz; loaded from the source when None). Where the run found
    no fixed layout (a surface texture), the kinds that are that surface (upside down; shifted, enlarged, turned,
    torn or blended crops) are left out. Returns ``{"kinds": evaluate(...), "held_out": evaluate(...), "left_out":
    [...], "good", "n", "held_out_good", "held_out_n"}`` (metrics.json key ``not_a_part_check``)."""
    from .bench import held_out_kinds
    from .embed import load_embeddings
    from .judge import Judge
    judge = Judge.from_run(run)
    goods = fresh_goods(run.config())
    if goods is None:
        e = load_embeddings(run.file("embeddings.npz"))
        if images is None:
            from .data import load
            cfg = run.config()["data"]
            images = load(cfg["source"], good_label=cfg["good_label"]).images
        if len(images) != len(e["split"]):
            raise ValueError(f"the data holds {len(images)} items, run '{run.id}' was trained on {len(e['split'])}")
        goods = images[(e["split"] == "test") & (e["labels"] == judge.good_label)]
    held = held_out_kinds(run.metrics())
    kinds = KINDS if len(held) == len(HELD_OUT_KINDS) else SURFACE_KINDS
    left_out = [k for k in KINDS + HELD_OUT_KINDS if k not in kinds + held]
    res = evaluate(judge, goods, n_per_kind=n_per_kind, seed=seed, kinds=kinds)
    res_held = evaluate(judge, goods, n_per_kind=n_per_kind, seed=seed, kinds=held)
    return {"kinds": res, "held_out": res_held, "left_out": left_out, "good": res["all"]["GOOD"],
            "n": res["all"]["n"], "held_out_good": res_held["all"]["GOOD"], "held_out_n": res_held["all"]["n"]}


def check_summary(check: dict) -> str:
    """One sentence of :func:`run_check`'s result (the training log, the Train page, ``evaluate --checks``)."""
    return (f"not the part: {check['good']} of {check['n']} such inputs judged GOOD, {check['held_out_good']} of "
            f"{check['held_out_n']} of the kinds the check was not designed on")
