"""Where the detail polarity check is on, and what it does: per set, the check as a run would fit it on 60 % of the
items, the share of inverted goods it calls negative, and how many of the other goods it calls negative under each
condition of the drift benchmark.

    python tools/detail_polarity.py SET [SET ...] [--goods 240] [--seed 0]

SET is any data source (``default``, a parquet file). The split is a seeded permutation: 60 % for the fit, the goods
of the rest judged. Prints one table; ``gate.fit_detail_polarity`` and ``gate.detail_skew`` are the code measured.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sets", nargs="+")
    p.add_argument("--goods", type=int, default=240, help="held-back goods judged per set")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    from snw_core import drift, notapart
    from snw_core.bench import text_table
    from snw_core.data import load
    from snw_core.gate import detail_inverted, fit_detail_polarity

    rows = []
    for source in args.sets:
        ds = load(source)
        order = np.random.default_rng(args.seed).permutation(ds.n)
        cut = int(0.6 * ds.n)
        rest = order[cut:]
        goods = ds.images[rest[ds.labels[rest] == ds.good_label][:args.goods]]
        t0 = time.time()
        check = fit_detail_polarity(ds.images[order[:cut]], args.seed)
        sign, limit, _ = check
        row = {"set": Path(source).stem, "check": "off", "limit": "-", "fit s": f"{time.time() - t0:.1f}",
               "negatives caught": "-", "drifted goods called negative": "-"}
        if sign:
            inverted = notapart.not_a_part(ds.image_shape, goods, n_per_kind=len(goods), seed=1, kinds=("inverted",))[0]
            flagged = [int(detail_inverted(drift.apply(goods, c, s, seed=i), check).sum())
                       for i, (c, s) in enumerate(drift.CONDITIONS)]
            row.update({"check": "dark detail" if sign < 0 else "bright detail", "limit": f"{limit:+.3f}",
                        "negatives caught": f"{int(detail_inverted(inverted, check).sum())} of {len(inverted)}",
                        "drifted goods called negative": f"{sum(flagged)} of {len(goods) * len(flagged)}"})
        rows.append(row)
    print(text_table([list(rows[0])] + [list(r.values()) for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
