"""Write a sheet PNG of the not-a-part benchmark inputs (one row per kind, good parts of the generator first).

Usage: python tools/not_a_part_sheet.py --out docs/not_a_part_sheet.png [--seed 1] [--per-kind 8] [--scale 4]
       python tools/not_a_part_sheet.py --held-out --out docs/not_a_part_held_out_sheet.png   (the held-out kinds)
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from snw_core import notapart  # noqa: E402
from snw_core.synthetic import generate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/not_a_part_sheet.png")
    ap.add_argument("--seed", type=int, default=1, help="the benchmark's seed (bench reports seed 1)")
    ap.add_argument("--per-kind", type=int, default=8)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--held-out", action="store_true", help="the held-out kinds (notapart.HELD_OUT_KINDS) instead")
    a = ap.parse_args(argv)
    images, labels, _ = generate(3 * a.per_kind + 13, seed=12345)
    goods = images[labels == "0"]
    x, kinds = notapart.not_a_part(goods.shape[1:], goods, n_per_kind=a.per_kind, seed=a.seed,
                                   kinds=notapart.HELD_OUT_KINDS if a.held_out else None)
    rows = [goods[:a.per_kind]] + [x[kinds == k][:a.per_kind] for k in dict.fromkeys(kinds.tolist())]
    pad = [np.concatenate([np.pad(im, 1, constant_values=128) for im in r], axis=1) for r in rows]
    sheet = np.concatenate(pad, axis=0)
    sheet = np.repeat(np.repeat(sheet, a.scale, axis=0), a.scale, axis=1)
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet, mode="L").save(out)
    print("rows: good parts, " + ", ".join(dict.fromkeys(kinds.tolist())) + f"; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
