"""How much surface a texture set's test crops share with its training crops.

    python tools/crop_overlap.py                       # moderate and strong, 36 x 48 and 96 x 128 px
    python tools/crop_overlap.py --difficulty strong --height 36 --width 48 --seed 0

Every item of a real-photo texture set (`data real --kind texture`) is a crop of one photograph at half its size
(256 x 256 px for the shipped ones), at a random place. This draws the crops' places the way
`snw_core.realdata` does (the same seeded calls, in the same order), splits the items as `train --seed SEED`
does, and prints, over the test items, the largest share of a test crop's area that one training crop covers
(mirroring ignored: training mirrors surfaces too). A set cut with `--region upper` and judged on one cut with
`--region lower` shares none.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from snw_core import realdata as R  # noqa: E402
from snw_core import synthetic  # noqa: E402
from snw_core.splits import stratified_split  # noqa: E402


def largest_cover(difficulty: str, shape, n: int = 3000, data_seed: int = 0, split_seed: int = 0) -> np.ndarray:
    """Per test item, the largest share of its crop's area that one train crop covers."""
    h, w = shape
    rng = np.random.default_rng(data_seed)
    grid = R.TEXTURE_GRID
    counts = synthetic.label_counts(n, grid[0] * grid[1])
    label = np.repeat(np.arange(grid[0] * grid[1] + 1), counts)[rng.permutation(n)]
    rng.choice(np.arange(1, 5), size=n, p=R._TEXTURE_DEFECT_PROBS)           # the defect kinds, as drawn there
    img, _ = R.photo_from(R.texture_photo(difficulty), (h, w))
    src = R._downscale(img, 2)
    oy = rng.integers(0, src.shape[0] - h + 1, n)
    ox = rng.integers(0, src.shape[1] - w + 1, n)
    split = stratified_split(label.astype(str), seed=split_seed)
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    dy = np.clip(h - np.abs(oy[tr][None] - oy[te][:, None]), 0, None)
    dx = np.clip(w - np.abs(ox[tr][None] - ox[te][:, None]), 0, None)
    return (dy * dx).max(1) / (h * w)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--difficulty", default=None, help="moderate or strong (default: both)")
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="the data set's seed and the run's split seed")
    a = p.parse_args(argv)
    shapes = [(a.height, a.width)] if a.height and a.width else [R.TEXTURE_SHAPE, (96, 128)]
    for d in [a.difficulty] if a.difficulty else list(R.DIFFICULTIES):
        for shape in shapes:
            c = largest_cover(d, shape, data_seed=a.seed, split_seed=a.seed)
            print(f"{d} {shape[0]} x {shape[1]} px: {len(c)} test items; the largest share of a test crop one train "
                  f"crop covers: median {np.median(c):.2f}, least {c.min():.2f}; at least 0.9: {np.mean(c >= 0.9):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
