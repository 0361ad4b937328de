"""How much a better threshold could buy a run on another data set: a bound, not a method.

    python tools/threshold_bound.py RUN_ID OTHER.parquet [--runs-dir DIR]

Judges every item of OTHER as `inspect` does and prints the good/defect accuracy, escapes and overkill at the run's
own threshold and at the threshold that would be best for OTHER itself (chosen on its labels, so never a
measurement of the run), and the share of goods rejected whatever the score (the gate, the patch bank). Where the
best threshold for the data itself does little, the twin's ranking is the limit, not where its threshold was set
(docs/real-data.md, section 31: unseen gravel).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))


def bound(judge, images, labels, good_label: str = "0", steps: int = 401) -> dict:
    """Accuracy, escape and overkill at the run's threshold and at the best one for these items."""
    from snw_core.metrics import effective_scores, rates
    out = judge.judge(images)
    is_def = np.asarray(labels).astype(str) != str(good_label)
    score = np.asarray(out["score"], np.float64)
    forced = (np.asarray(out["verdict"]) != "GOOD") & (score <= judge.threshold)     # rejected whatever the score
    rejected_first = effective_scores(score, forced)                                # above every threshold tried

    def at(t):
        return {"threshold": float(t), **rates(rejected_first, is_def, t)}

    best = max((at(t) for t in np.quantile(score, np.linspace(0, 1, steps))), key=lambda r: r["good_defect_accuracy"])
    return {"run": at(judge.threshold), "best_for_these_items": best,
            "goods_rejected_whatever_the_score": float(np.mean(forced[~is_def]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id")
    p.add_argument("data")
    p.add_argument("--runs-dir", default=None)
    a = p.parse_args(argv)
    from snw_core.data import load
    from snw_core.judge import Judge
    from snw_core.runs import RunStore, runs_dir
    run = RunStore(runs_dir(a.runs_dir)).get(a.run_id)
    judge = Judge.from_run(run)
    ds = load(a.data, good_label=judge.good_label)
    r = bound(judge, ds.images, ds.labels, judge.good_label)
    for key in ("run", "best_for_these_items"):
        v = r[key]
        print(f"{key.replace('_', ' ')}: threshold {v['threshold']:.3f}: {100 * v['good_defect_accuracy']:.2f} % "
              f"(escapes {100 * v['escape_rate']:.2f} %, overkill {100 * v['overkill_rate']:.2f} %)")
    print(f"goods rejected whatever the score: {100 * r['goods_rejected_whatever_the_score']:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
