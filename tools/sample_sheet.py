"""Write a sample sheet PNG of the embedded default data set (one row per label).

Usage: python tools/sample_sheet.py --out docs/sample_sheet.png [--seed 0] [--n 3600]
       [--per-label 6] [--scale 4] [--height 26 --width 36 --pin-rows 2 --pin-cols 6]
       [--polarity bright_pins|dark_pins]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from snw_core.synthetic import ConnectorSpec, generate, sample_sheet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/sample_sheet.png", help="output PNG path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=3600)
    ap.add_argument("--per-label", type=int, default=6)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--height", type=int, default=26)
    ap.add_argument("--width", type=int, default=36)
    ap.add_argument("--pin-rows", type=int, default=2)
    ap.add_argument("--pin-cols", type=int, default=6)
    ap.add_argument("--polarity", default="bright_pins", choices=["bright_pins", "dark_pins"])
    a = ap.parse_args(argv)
    spec = ConnectorSpec(a.height, a.width, a.pin_rows, a.pin_cols, a.polarity)
    t0 = time.perf_counter()
    images, labels, _ = generate(a.n, a.seed, spec)
    dt = time.perf_counter() - t0
    sheet = sample_sheet(images, labels, per_label=a.per_label, scale=a.scale)
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet, mode="L").save(out)
    print(f"generated {len(images)} items ({spec.height}x{spec.width}, {spec.n_pins} pins) in {dt:.2f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
