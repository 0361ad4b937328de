"""Time one whole Keras verdict of a finished run (``Judge.judge`` of one image: registration, embedding, patch
evidence, gate, heat map, pin guess), with the model's traced graph and with ``predict_on_batch``, interleaved so
that both see the same machine load.

    python tools/judge_timing.py RUN_ID [--runs-dir DIR] [--calls 150] [--reps 8]
    python tools/judge_timing.py RUN_ID --patch-bank          # with and without the run's patch bank instead

Prints the median of each repetition's median and checks that both paths give the same verdicts and scores
(``--patch-bank``: the time a kept patch bank adds, whose location may differ).
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
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--calls", type=int, default=150, help="single-image calls per repetition")
    p.add_argument("--reps", type=int, default=8)
    p.add_argument("--patch-bank", action="store_true",
                   help="time the verdict with the run's patch bank and without it (the traced graph both times)")
    args = p.parse_args()
    from snw_core import drift
    from snw_core import embed as E
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    judge = Judge.from_run(run)
    images = drift.fresh_items(run, 60, 60)[0]
    if args.patch_bank:
        return _patch_bank(run, judge, images, args)
    few = E.FEW_ROWS
    out = {}
    for rows in (0, few):
        E.FEW_ROWS = rows
        out[rows] = judge.judge(images[:1])
    same = (np.array_equal(out[0]["verdict"], out[few]["verdict"])
            and float(np.max(np.abs(out[0]["score"] - out[few]["score"]))) < 1e-6)
    medians = {0: [], few: []}
    for _ in range(args.reps):
        for rows in (0, few):
            E.FEW_ROWS = rows
            medians[rows].append(_median_ms(judge, images, args.calls))
    E.FEW_ROWS = few
    print(f"run {run.id}: one whole verdict, median of {args.reps} medians of {args.calls} calls "
          f"(same verdicts and scores: {'yes' if same else 'NO'})")
    print(f"  predict_on_batch  {np.median(medians[0]):.2f} ms")
    print(f"  traced graph      {np.median(medians[few]):.2f} ms")
    return 0 if same else 1


def _median_ms(judge, images, calls: int) -> float:
    """Median time (ms) of ``calls`` single-image verdicts, cycling through the images."""
    t = []
    for i in range(calls):
        x = images[i % len(images):i % len(images) + 1]
        s = time.perf_counter()
        judge.judge(x)
        t.append(time.perf_counter() - s)
    return 1000 * float(np.median(t))


def _patch_bank(run, judge, images, args) -> int:
    from snw_core.judge import Judge
    if judge.patches is None:
        print(f"run {run.id} keeps no patch bank (metrics.json patch_location says why)")
        return 1
    plain = Judge.from_run(run)
    plain.patches = None
    medians = {"with": [], "without": []}
    for j in (judge, plain):
        j.judge(images[:1])
    for _ in range(args.reps):
        for name, j in (("without", plain), ("with", judge)):
            medians[name].append(_median_ms(j, images, args.calls))
    print(f"run {run.id}: one whole verdict, median of {args.reps} medians of {args.calls} calls")
    print(f"  without the patch bank  {np.median(medians['without']):.2f} ms")
    print(f"  with it                 {np.median(medians['with']):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
