"""Does a verdict say where the defect is? The pixel of the strongest evidence (``defect_y``, ``defect_x``) of
every defective test item the run catches, against the cell of its label.

A label is a cell address: on the connectors the pin's cell of the housing's pin grid (row-major from the top
left, the grid the generator draws the pins on), on the real-photo textures a cell of the grid the defects are
planted in. Where the data says where its cells are (the embedded data: the generator's geometry; a parquet file
of ``data synth`` or ``data real``: ``grid`` and ``bounds`` in its metadata), a caught defect counts as located when its
pixel lies in its label's cell, widened by :data:`TOLERANCE` px on every side (a pin bent by 3 px, a part off
its place by 1 px). Other data sets say nothing about their cells: no measurement.

    python -m snw_core bench --data SOURCE        # the bench prints it per preset ("localisation")
"""
from __future__ import annotations

import numpy as np

__all__ = ["TOLERANCE", "cells", "located", "evaluate"]

#: px by which a cell is widened on every side
TOLERANCE = 2


def cells(cfg: dict):
    """``(grid, bounds)`` of the run's data (``grid`` [rows, cols], ``bounds`` [y0, y1, x0, x1] of the gridded
    area, or None for the whole image), or None when the data does not say where its cells are."""
    import json

    from . import data as D
    from . import synthetic
    source = str(cfg["data"]["source"])
    if source == D.DEFAULT_SOURCE:
        c = synthetic.pin_cells()
        return c["grid"], c["bounds"]
    if not source.endswith(".parquet"):
        return None
    try:
        import pyarrow.parquet as pq
        meta = pq.read_schema(source).metadata or {}
        from .realdata import META_KEY
        for key in (META_KEY, synthetic.CELLS_KEY):          # a real-photo set, or a generated connector set
            if key.encode() in meta:
                c = json.loads(meta[key.encode()])
                if c.get("grid"):
                    return list(c["grid"]), c.get("bounds")
    except Exception:                        # noqa: BLE001 - no metadata to read: no cells
        return None
    return None


def located(labels, defect_y, defect_x, image_shape, grid, bounds=None, tolerance: int = TOLERANCE) -> np.ndarray:
    """True where the pixel (defect_y, defect_x) lies in the cell of ``labels`` widened by ``tolerance`` px
    (bool (n,)); labels must be cell addresses (not the good label)."""
    from .realdata import cell_box
    labels = np.asarray(labels).astype(str)
    y, x = np.asarray(defect_y), np.asarray(defect_x)
    out = np.zeros(len(labels), bool)
    for lab in np.unique(labels):
        y0, y1, x0, x1 = cell_box(lab, image_shape, grid, bounds)
        sel = labels == lab
        out[sel] = ((y[sel] >= y0 - tolerance) & (y[sel] < y1 + tolerance)
                    & (x[sel] >= x0 - tolerance) & (x[sel] < x1 + tolerance))
    return out


def evaluate(run, images=None, chunk: int = 256) -> dict | None:
    """The run's test split judged as the dashboard judges (:class:`~snw_core.judge.Judge`): of the defective
    items it catches (DEFECT or UNKNOWN), the share whose pixel lies in its cell. ``images``: the data set's images
    (loaded when None). Returns ``{"share", "located", "caught", "tolerance_px", "per_label"}`` or None when the
    data has no cells or the run no heat map (trained before the gate)."""
    from .embed import load_embeddings
    from .judge import Judge
    cfg = run.config()
    where = cells(cfg)
    if where is None:
        return None
    judge = Judge.from_run(run)
    if judge.gate is None:
        return None
    e = load_embeddings(run.file("embeddings.npz"))
    if images is None:
        from .data import load
        images = load(cfg["data"]["source"], good_label=cfg["data"]["good_label"]).images
    test = np.flatnonzero((e["split"] == "test") & (e["labels"] != judge.good_label))
    verdict, ys, xs = [], [], []
    for i in range(0, len(test), chunk):
        r = judge.judge(images[test[i:i + chunk]])
        verdict.append(np.asarray(r["verdict"]))
        ys.append(np.asarray(r["defect_y"]))
        xs.append(np.asarray(r["defect_x"]))
    verdict, ys, xs = (np.concatenate(a) if a else np.zeros(0) for a in (verdict, ys, xs))
    caught = verdict != "GOOD"
    labels = e["labels"][test][caught]
    n_cells = int(where[0][0]) * int(where[0][1])
    if not all(str(lab).isdigit() and 1 <= int(lab) <= n_cells for lab in np.unique(labels)):
        return None                      # labels that are not cell addresses of the grid: nothing to measure
    ok = located(labels, ys[caught], xs[caught], images.shape[1:], *where)
    per_label = {str(lab): round(float(ok[labels == lab].mean()), 4) for lab in np.unique(labels)}
    return {"share": float(ok.mean()) if len(ok) else float("nan"), "located": int(ok.sum()), "caught": int(len(ok)),
            "tolerance_px": TOLERANCE, "per_label": per_label}
