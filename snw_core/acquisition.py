"""The camera check: do the images of a batch look as the camera delivered the training images?

A run records how its train and val images were taken (``metrics.json`` key ``acquisition``): the 1st, 50th and
99th percentile of four measures of each image as the camera delivered it (before registration),

=============  ===================================================================================================
brightness     mean grey level
contrast       grey-level sd
sharpness      mean absolute Laplacian over the grey-level sd (+1), as the gate's focus check (:func:`gate.sharpness`)
noise          Immerkaer's estimate of the sensor noise's sd over the grey-level sd (+1): a low-contrast part with
               the same noise is noisier in what the twin sees
=============  ===================================================================================================

:func:`findings` compares a batch of at least :data:`MIN_IMAGES` images with it: where the batch's median lies
outside the training images' 1st-99th percentile, the camera (gain, exposure, light, focus) has moved away from the
images the run learned from. Each image is still judged on its own (the gate says UNKNOWN for what is not the
part); this is a warning about the camera, for a batch, because one image outside the range is common (2 % of the
training images are) and a batch's median is not. The drift benchmark (``bench --drift``) measures how a run's
verdicts hold under such changes (docs/real-data.md, section 10).

The line bundle's script (``inspect_bundle.py``) makes the same check with numpy alone, from ``bundle.json``.
"""
from __future__ import annotations

import numpy as np

from .gate import noise_sd, relative_noise, sharpness

__all__ = ["MEASURES", "MIN_IMAGES", "measure", "profile", "findings", "summary", "drift_evidence", "DRIFT_OF",
           "noise_sd"]

#: the measures, in the order they are reported
MEASURES = ("brightness", "contrast", "sharpness", "noise")
#: the smallest batch that is checked
MIN_IMAGES = 5
#: the training images' range: these percentiles
LOW, HIGH = 1.0, 99.0
#: which side of each measure's range is worth a warning, and what to check then
_ADVICE = {
    ("brightness", "low"): ("darker than", "check the light and the exposure"),
    ("brightness", "high"): ("brighter than", "check the light and the exposure"),
    ("contrast", "low"): ("lower in contrast than", "check the light and the exposure"),
    ("contrast", "high"): ("higher in contrast than", "check the light and the exposure"),
    ("sharpness", "low"): ("softer than", "check the focus and the lens"),
    ("noise", "high"): ("noisier than", "check the camera's gain, the exposure and the light"),
}


def measure(images) -> dict:
    """The four measures of every image, uint8 (n, h, w) -> {measure: float64 (n,)}."""
    x = np.asarray(images)
    if x.ndim == 2:
        x = x[None]
    f = x.astype(np.float64)
    sd = f.std(axis=(1, 2))
    return {"brightness": f.mean(axis=(1, 2)), "contrast": sd, "sharpness": sharpness(x),
            "noise": relative_noise(f)}


def profile(images) -> dict:
    """How the images were taken, as ``metrics.json`` keeps it: ``{"n": count, "percentiles": [1, 50, 99],
    "measures": {measure: [p1, p50, p99]}}`` (plain floats)."""
    m = measure(images)
    return {"n": int(len(m["brightness"])), "percentiles": [LOW, 50.0, HIGH],
            "measures": {k: [round(float(v), 6) for v in np.percentile(m[k], [LOW, 50.0, HIGH])] for k in MEASURES}}


def findings(prof: dict | None, images) -> list[dict]:
    """Where a batch of images lies outside the range of the training images: one dict per finding, ``measure``,
    ``side`` ("low" or "high"), ``median`` (the batch's), ``low`` and ``high`` (the training images' range) and
    ``message`` (one sentence). Empty for a batch of fewer than :data:`MIN_IMAGES` images, for a run without a
    profile (trained before the check existed) and for a batch within the range."""
    x = np.asarray(images)
    if x.ndim == 2:
        x = x[None]
    if not prof or len(x) < MIN_IMAGES:
        return []
    m = measure(x)
    out = []
    for name in MEASURES:
        if name not in prof.get("measures", {}):          # a profile of another version: check what it has
            continue
        lo, _, hi = prof["measures"][name]
        med = float(np.median(m[name]))
        side = "low" if med < lo else "high" if med > hi else None
        if side is None or (name, side) not in _ADVICE:
            continue
        words, advice = _ADVICE[(name, side)]
        out.append({"measure": name, "side": side, "median": med, "low": lo, "high": hi,
                    "message": f"the images are {words} the training images ({name} {_fmt(med)} on the median of "
                               f"{len(x)}; the training images' 1st-99th percentile {_fmt(lo)}-{_fmt(hi)}): "
                               f"{advice}"})
    return out


#: the drift check's condition that a finding speaks of (a softer image is what a blur makes, ...)
DRIFT_OF = {("sharpness", "low"): "blur", ("noise", "high"): "noise", ("contrast", "low"): "contrast",
            ("brightness", "low"): "brightness", ("brightness", "high"): "brightness"}


def drift_evidence(found: list[dict], drift_check: dict | None) -> str:
    """What the run's own drift check (metrics.json ``drift_check``) measured under the changes the findings point
    to: one sentence per condition, '' without a check or a matching row."""
    if not found or not drift_check:
        return ""
    from .drift import TARGETS, WORDS
    rows = {r["condition"]: r for r in drift_check.get("rows", [])}
    out, seen = [], set()
    for f in found:
        cond = DRIFT_OF.get((f["measure"], f["side"]))
        r = rows.get(cond)
        if r is None or cond in seen:
            continue
        seen.add(cond)
        caught = TARGETS["defects_caught_blur" if cond == "blur" else "defects_caught"]
        expect = [w for w, short in (("more good parts rejected", r["goods_passed"] < TARGETS["goods_passed"]),
                                     ("defects passed", r["defects_caught"] < caught)) if short]
        out.append(f"this run's drift check, on fresh parts {WORDS[cond].format(s=float(r['strength']))}, passed "
                   f"{r['goods_passed_n']} of {r['n_good']} good parts and caught {r['defects_caught_n']} of "
                   f"{r['n_defect']} defective ones" + (f" (expect {' and '.join(expect)})" if expect else " (held)"))
    return "; ".join(out)


def summary(found: list[dict], drift_check: dict | None = None) -> str:
    """One paragraph for the pages and the command line ('' when nothing was found); with the run's drift check,
    what it measured under the changes found."""
    if not found:
        return ""
    evidence = drift_evidence(found, drift_check)
    return ("Camera check: " + "; ".join(f["message"] for f in found) + ". The run's verdicts were measured on "
            "images like its training images" + (f"; {evidence}." if evidence else
                                                  "; `bench --drift` measures how they hold under such changes."))


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
