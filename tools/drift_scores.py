"""Where a run's scores go under camera drift: per condition, the twin's scores of fresh goods and defects beside the
run's threshold, and how much a noise failure depends on the noise drawn.

    python tools/drift_scores.py RUN_ID [--runs-dir DIR] [--noise-draws 3]

A drift row of ``bench --drift`` says how many goods passed; this says why: if the goods' upper scores stay below
the defects' lower ones, a threshold can still separate them (the run's is in the wrong place); if they overlap, no
threshold can, and the twin itself has to change. Prints one table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def noise_sd(images) -> np.ndarray:
    """Immerkaer's estimate of the sd of each image's sensor noise (grey levels), from a 3 x 3 second-difference
    mask that cancels smooth structure: (n, h, w) -> (n,)."""
    x = np.asarray(images, np.float64)
    k = (x[:, :-2, :-2] - 2 * x[:, :-2, 1:-1] + x[:, :-2, 2:] - 2 * x[:, 1:-1, :-2] + 4 * x[:, 1:-1, 1:-1]
         - 2 * x[:, 1:-1, 2:] + x[:, 2:, :-2] - 2 * x[:, 2:, 1:-1] + x[:, 2:, 2:])
    return np.sqrt(np.pi / 2) * np.abs(k).mean(axis=(1, 2)) / 6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--noise-draws", type=int, default=3, help="noise sd 8 drawn this many times on the same goods")
    args = p.parse_args()
    from snw_core import drift
    from snw_core.bench import text_table
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    judge = Judge.from_run(run)
    images, labels = drift.fresh_items(run, 120, 120)[:2]
    good = labels == run.config()["data"]["good_label"]
    rows = [["condition", "goods: median", "goods: 98th pct", "defects: 5th pct", "goods GOOD", "defects caught",
             "noise sd (2nd-98th pct)"]]
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        x = drift.apply(images, cond, strength, seed=1000 + i)          # as bench --drift draws them
        r = judge.judge(x)
        s, passed = r["score"], np.asarray(r["verdict"]) == "GOOD"
        rows.append([cond, f"{np.median(s[good]):.3f}", f"{np.quantile(s[good], 0.98):.3f}",
                     f"{np.quantile(s[~good], 0.05):.3f}", f"{passed[good].sum()}/{good.sum()}",
                     f"{(~passed[~good]).sum()}/{(~good).sum()}",
                     "{:.1f}-{:.1f}".format(*np.quantile(noise_sd(x[good]), [0.02, 0.98]))])
    print(f"run {run.id}: threshold {judge.threshold:.3f}")
    print(text_table(rows))
    fails = np.array([np.asarray(judge.judge(drift.apply(images[good], "noise", 8.0, seed=100 + d))["verdict"])
                      != "GOOD" for d in range(args.noise_draws)])
    print(f"noise sd 8 drawn {args.noise_draws} times on the same {good.sum()} goods: failed per draw "
          f"{', '.join(str(int(f)) for f in fails.sum(1))}; in at least one draw {int(fails.any(0).sum())}, "
          f"in every draw {int(fails.all(0).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
