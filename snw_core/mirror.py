"""Mirror images as training data for a surface without a fixed layout.

A surface texture (grain, gravel, a cast or brushed face) seen in a mirror is still the same kind of surface, and a
scratch or a stain mirrored is still a scratch or a stain, only in the mirrored cell. So where a run's data has no
layout to align to (registration ``auto`` found none) and says where its cells are (:func:`snw_core.localisation.cells`),
every training batch of the twin also flips each image, top to bottom and left to right, each with probability 1/2,
and gives it the label of the cell its defect now lies in. The twin then sees four times as many different
surfaces; on the strong real-photo texture it overfits less (docs/real-data.md). Parts with a layout (a connector,
whose key is on one side) are never mirrored: registration finds their layout, and a mirrored part is not a good one.

>>> maps = mirror_maps(["0", "1", "2", "3", "4"], "0", (2, 2), None, (12, 12))
>>> maps[1].tolist(), maps[2].tolist()        # class ids (sorted labels) flipped top-bottom / left-right
([0, 3, 4, 1, 2], [0, 2, 1, 4, 3])
"""
from __future__ import annotations

import numpy as np

__all__ = ["mirror_maps", "flip_batch", "decide", "EPOCH_FACTOR"]

#: an epoch of a mirrored run has this many times the batches: it has four times the different images to learn
#: from, and with the plain epoch the strong texture's twin stopped before it had (docs/real-data.md, section 12)
EPOCH_FACTOR = 2


def mirror_maps(classes, good_label: str, grid, bounds, image_shape) -> dict:
    """``{axis: map}`` for the image axes (1 = rows, top to bottom; 2 = columns, left to right) along which every
    label's cell mirrors onto another label's cell exactly; ``map[class id] = class id`` of the mirrored item.
    ``classes`` : the labels in class-id order; the good label maps to itself. Empty where no axis works (labels
    that are not cell addresses, a grid not centred in the image)."""
    from .realdata import cell_box
    h, w = int(image_shape[0]), int(image_shape[1])
    classes = [str(c) for c in classes]
    boxes = {}
    for c in classes:
        if c == str(good_label):
            continue
        try:
            boxes[c] = cell_box(c, (h, w), grid, bounds)
        except ValueError:
            return {}
        if boxes[c] is None:
            return {}
    by_box = {b: c for c, b in boxes.items()}
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for axis in (1, 2):
        m = np.arange(len(classes))
        ok = True
        for c, (y0, y1, x0, x1) in boxes.items():
            mirrored = (h - y1, h - y0, x0, x1) if axis == 1 else (y0, y1, w - x1, w - x0)
            if mirrored not in by_box:
                ok = False
                break
            m[index[c]] = index[by_box[mirrored]]
        if ok:
            out[axis] = m
    return out


def flip_batch(images: np.ndarray, targets: np.ndarray, maps: dict, rng: np.random.Generator):
    """Each image of (n, h, w) flipped along each axis of ``maps`` with probability 1/2, its class id mapped with
    it. Returns new arrays; the inputs are not changed."""
    x, y = np.array(images, copy=True), np.array(targets, copy=True)
    for axis in (1, 2):
        flip = rng.uniform(size=len(x)) < 0.5
        if axis in maps and flip.any():
            x[flip] = np.flip(x[flip], axis=axis)
            y[flip] = maps[axis][y[flip]]
    return x, y


def decide(cfg: dict, classes, good_label: str, image_shape, register_setting: str, registration) -> tuple[dict, dict]:
    """Whether a run trains on mirror images: ``(maps, report)``. Only where registration was ``auto`` and found no
    layout, and the data's cells mirror onto each other; ``report`` (metrics.json ``mirror``) says which and why."""
    from .register import no_layout
    if not no_layout(register_setting, registration):
        why = "the part has a layout (registration on)" if registration is not None else "registration is not auto"
        return {}, {"used": False, "axes": [], "reason": why}
    from .localisation import cells
    c = cells(cfg)
    if c is None:
        return {}, {"used": False, "axes": [], "reason": "the data does not say where its cells are"}
    maps = mirror_maps(classes, good_label, c[0], c[1], image_shape)
    if not maps:
        return {}, {"used": False, "axes": [], "reason": "its cells do not mirror onto each other"}
    names = {1: "top to bottom", 2: "left to right"}
    return maps, {"used": True, "axes": sorted(maps),
                  "epoch_factor": EPOCH_FACTOR,
                  "reason": "a surface without a layout: training images also mirrored "
                            + " and ".join(names[a] for a in sorted(maps)) + ", labels moved with their cell; "
                            + f"an epoch has {EPOCH_FACTOR} times the batches"}
