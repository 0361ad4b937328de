"""Planted faults for measuring the data audit: wrong labels, near-duplicates and outliers, with the truth.

The generator (:mod:`snw_core.synthetic`) draws a clean data set; :func:`plant` changes some of its rows the
way a fast-working line or a faulty camera would and returns which rows it changed, so that the audit
(:mod:`snw_core.audit`) can be scored against a known answer.

* wrong labels (``label_noise``, a fraction of all rows): a good item filed as a pin address, a defect filed as
  good or as another pin (half each); the dirname follows the wrong label, as when an item is put in the wrong
  folder;
* near-duplicates (``duplicates``, a count): an item's picture copied over another item of the same label, with
  +-1 grey level of noise (the same part photographed twice, or a file saved twice). Whether a pair becomes a
  *leak* (one copy in train, the other in val or test) depends on the split of the run that trains on it;
* outliers (``outliers``, a count): rows replaced by an empty fixture (flat grey with noise), a wrong part
  (a random texture) or a picture upside down with inverted brightness, label unchanged.

>>> import numpy as np
>>> from snw_core import synthetic
>>> images, labels, dirnames = synthetic.generate(130, seed=0)
>>> got = plant(images, labels, dirnames, label_noise=0.05, duplicates=2, outliers=1, seed=1)
>>> int((got.labels != labels).sum()), len(got.truth)
(6, 9)
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fsutil import atomic_write_text

__all__ = ["Planted", "plant", "write_planted", "read_truth", "truth_path", "TRUTH_COLUMNS"]

TRUTH_COLUMNS = ["row", "kind", "given_label", "true_label", "of_row", "note"]


@dataclass
class Planted:
    """images uint8 (n, h, w), labels/dirnames str (n,) after planting; ``truth`` one dict per changed row
    (``row``, ``kind`` label|duplicate|outlier, ``given_label``, ``true_label``, ``of_row``, ``note``)."""

    images: np.ndarray
    labels: np.ndarray
    dirnames: np.ndarray
    truth: list


def _dirname(label: str, good_label: str) -> str:
    return "OK" if label == good_label else (f"NG_{int(label):02d}" if label.isdigit() else f"NG_{label}")


def plant(images, labels, dirnames, label_noise: float = 0.0, duplicates: int = 0, outliers: int = 0,
          seed: int = 0, good_label: str = "0") -> Planted:
    """Plant faults into copies of the arrays (see the module doc); the rows touched by each kind are disjoint.

    images : uint8 (n, h, w); labels, dirnames : str (n,). ``label_noise`` in [0, 0.5]; ``duplicates`` pairs
    and ``outliers`` rows, together with the wrong labels at most half of the rows. Seeded and deterministic.
    """
    images = np.array(images, dtype=np.uint8, copy=True)
    labels = np.asarray(labels).astype(str).copy()
    dirnames = np.asarray(dirnames).astype(str).copy()
    n = labels.size
    if not 0.0 <= float(label_noise) <= 0.5:
        raise ValueError(f"label_noise must be between 0 and 0.5; got {label_noise}")
    if duplicates < 0 or outliers < 0:
        raise ValueError("duplicates and outliers must be 0 or more")
    n_noise = int(round(float(label_noise) * n))
    if n_noise + 2 * duplicates + outliers > n // 2:
        raise ValueError(f"too many planted faults for {n} items: {n_noise} wrong labels, {duplicates} duplicate pairs "
                         f"and {outliers} outliers touch more than half of the rows")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    uniq = sorted(set(labels.tolist()))
    pins = [u for u in uniq if u != good_label]
    truth = []
    # wrong labels
    for r in order[:n_noise].tolist():
        true = labels[r]
        if true == good_label or not pins:
            new = pins[rng.integers(len(pins))]
        elif rng.random() < 0.5 or len(pins) < 2:
            new = good_label
        else:
            others = [p for p in pins if p != true]
            new = others[rng.integers(len(others))]
        labels[r], dirnames[r] = new, _dirname(new, good_label)
        truth.append({"row": r, "kind": "label", "given_label": new, "true_label": true, "of_row": "", "note": ""})
    # near-duplicates: copy a source row over another row of the same label
    free = order[n_noise:].tolist()
    used = set()
    made = 0
    for src in free:
        if made >= duplicates:
            break
        if src in used:
            continue
        same = [r for r in free if r not in used and r != src and labels[r] == labels[src]]
        if not same:
            continue
        dst = same[rng.integers(len(same))]
        noise = rng.integers(-1, 2, size=images[src].shape)
        images[dst] = np.clip(images[src].astype(np.int16) + noise, 0, 255).astype(np.uint8)
        used.update((src, dst))
        truth.append({"row": dst, "kind": "duplicate", "given_label": labels[dst], "true_label": labels[dst],
                      "of_row": src, "note": "copy of another row, +-1 grey level"})
        made += 1
    if made < duplicates:
        raise ValueError(f"could only plant {made} of {duplicates} duplicate pairs (too few items per label)")
    # outliers
    rest = [r for r in free if r not in used][:outliers]
    h, w = images.shape[1:]
    for i, r in enumerate(rest):
        kind = ("empty fixture", "wrong part", "upside down, inverted")[i % 3]
        if i % 3 == 0:
            img = np.full((h, w), float(images[r].mean())) + rng.normal(0, 3, (h, w))
        elif i % 3 == 1:
            img = rng.uniform(0, 255, (h // 3 + 1, w // 3 + 1)).repeat(3, 0).repeat(3, 1)[:h, :w]
        else:
            img = 255.0 - images[r][::-1, ::-1]
        images[r] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        truth.append({"row": r, "kind": "outlier", "given_label": labels[r], "true_label": labels[r], "of_row": "",
                      "note": kind})
    truth.sort(key=lambda t: t["row"])
    return Planted(images, labels, dirnames, truth)


def truth_path(parquet_path) -> Path:
    """Where :func:`write_planted` records the planted rows: ``<file>.truth.csv`` beside the parquet file."""
    p = Path(parquet_path)
    return p.with_name(p.name + ".truth.csv")


def write_planted(path, planted: Planted) -> tuple[Path, Path]:
    """Write the planted set as seed-schema parquet and its truth as CSV beside it; returns both paths."""
    from .synthetic import write_images_parquet
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(planted.truth)
    out = write_images_parquet(path, planted.images, planted.labels, planted.dirnames)
    return out, atomic_write_text(truth_path(out), buf.getvalue())


def read_truth(path) -> list[dict]:
    """The rows of a truth CSV (``row`` and ``of_row`` as int, ``of_row`` None when empty)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["row"] = int(r["row"])
        r["of_row"] = int(r["of_row"]) if r.get("of_row") not in (None, "") else None
    return rows


# ------------------------------------------------------------------ command line (data synth options)

def add_plant_args(p) -> None:
    """The fault options of ``data synth``."""
    p.add_argument("--label-noise", type=float, default=0.0,
                   help="fraction of rows given a wrong label (the changed rows go to FILE.truth.csv)")
    p.add_argument("--duplicates", type=int, default=0, help="near-duplicate pairs to plant (same label, +-1 grey level)")
    p.add_argument("--outliers", type=int, default=0, help="rows replaced by an empty fixture, a wrong part or an upside-down picture")
    p.add_argument("--fault-seed", type=int, default=1, help="seed of the planted faults")


def synth_with_faults(a, spec):
    """``data synth`` with fault options: generate, plant, write parquet + truth; None when no fault was asked."""
    if not (a.label_noise or a.duplicates or a.outliers):
        return None
    from . import synthetic
    from .data import DataError
    images, labels, dirnames = synthetic.generate(a.n, a.seed, spec)
    try:
        got = plant(images, labels, dirnames, label_noise=a.label_noise, duplicates=a.duplicates,
                    outliers=a.outliers, seed=a.fault_seed)
    except ValueError as e:
        raise DataError(f"Cannot plant those faults: {e}.") from None
    out, truth = write_planted(a.out, got)
    import sys
    print(f"planted {len(got.truth)} faulty rows; the truth is in {truth}", file=sys.stderr)
    return out
