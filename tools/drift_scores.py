"""Where a run's scores go under camera drift: per condition, the twin's scores of fresh goods and defects beside the
run's threshold, how much a noise failure depends on the noise drawn, and whether the camera check
(:mod:`snw_core.acquisition`) warns about a batch of 20 such images.

    python tools/drift_scores.py RUN_ID [--runs-dir DIR] [--noise-draws 3] [--thresholds 0.2,0.25,0.3]

A drift row of ``bench --drift`` says how many goods passed; this says why: if the goods' upper scores stay below
the defects' lower ones, a threshold can still separate them (the run's is in the wrong place); if they overlap, no
threshold can, and the twin itself has to change. Prints one table. ``--thresholds`` adds one more: the test split
and every drift row with the twin's verdict taken at other thresholds (the gate's and the patch bank's verdicts as
they are), to see what moving the run's threshold would trade.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snw_core.acquisition import findings, noise_sd, profile  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--noise-draws", type=int, default=3, help="noise sd 8 drawn this many times on the same goods")
    p.add_argument("--thresholds", default="", help="comma-separated thresholds to judge the twin's scores at")
    args = p.parse_args()
    from snw_core import drift
    from snw_core.bench import text_table
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    judge = Judge.from_run(run)
    images, labels = drift.fresh_items(run, 120, 120)[:2]
    good = labels == run.config()["data"]["good_label"]
    prof = run.metrics().get("acquisition")
    if prof is None:                      # a run trained before the camera check: its train and val images
        from snw_core.data import load
        from snw_core.embed import load_embeddings
        cfg = run.config()
        split = load_embeddings(run.file("embeddings.npz"))["split"]
        prof = profile(load(cfg["data"]["source"], good_label=cfg["data"]["good_label"]).images[split != "test"])
    order = np.random.default_rng(5).permutation(len(images))            # batches of 20 mixed goods and defects
    rows = [["condition", "goods: median", "goods: 98th pct", "defects: 5th pct", "goods GOOD", "defects caught",
             "noise sd (2nd-98th pct)", "camera check: batches of 20 warned"]]
    judged = []
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        x = drift.apply(images, cond, strength, seed=1000 + i)          # as bench --drift draws them
        r = judge.judge(x)
        judged.append((cond, r))
        s, passed = r["score"], np.asarray(r["verdict"]) == "GOOD"
        rows.append([cond, f"{np.median(s[good]):.3f}", f"{np.quantile(s[good], 0.98):.3f}",
                     f"{np.quantile(s[~good], 0.05):.3f}", f"{passed[good].sum()}/{good.sum()}",
                     f"{(~passed[~good]).sum()}/{(~good).sum()}",
                     "{:.1f}-{:.1f}".format(*np.quantile(noise_sd(x[good]), [0.02, 0.98])),
                     _warned(prof, x[order])])
    print(f"run {run.id}: threshold {judge.threshold:.3f}")
    print(text_table(rows))
    fails = np.array([np.asarray(judge.judge(drift.apply(images[good], "noise", 8.0, seed=100 + d))["verdict"])
                      != "GOOD" for d in range(args.noise_draws)])
    print(f"noise sd 8 drawn {args.noise_draws} times on the same {good.sum()} goods: failed per draw "
          f"{', '.join(str(int(f)) for f in fails.sum(1))}; in at least one draw {int(fails.any(0).sum())}, "
          f"in every draw {int(fails.all(0).sum())}")
    r = dict(judged)["noise"]
    failed = good & (np.asarray(r["verdict"]) == "DEFECT")
    same = np.asarray(r["pin"])[failed] == np.asarray(r["nearest_defect_label"])[failed]
    print(f"noisy goods judged DEFECT (first draw): {int(failed.sum())}; judged at the pin of their nearest defective "
          f"reference: {int(same.sum())}")
    if args.thresholds:
        print(_threshold_table(run, judge, judged, good, [float(t) for t in args.thresholds.split(",")]))
    return 0


def _twin_passed(out: dict, t: float) -> np.ndarray:
    """GOOD at threshold ``t``: where the verdict came from the twin's score, the score decides again; the
    gate's and the patch bank's verdicts (UNKNOWN, local or patch evidence, flipped) stay."""
    reason = np.asarray(out["reason"]).astype(str)
    twin = np.isin(reason, ["score above the threshold", "score within the threshold"])
    return np.where(twin, np.asarray(out["score"]) <= t, np.asarray(out["verdict"]).astype(str) == "GOOD")


def _threshold_table(run, judge, judged, good, thresholds) -> str:
    from snw_core.bench import text_table
    from snw_core.data import load
    from snw_core.drift import CONDITIONS
    from snw_core.embed import load_embeddings
    cfg = run.config()
    ds = load(cfg["data"]["source"], good_label=cfg["data"]["good_label"])
    test = load_embeddings(run.file("embeddings.npz"))["split"] == "test"
    out_test = judge.judge(ds.images[test])
    test_good = ds.labels[test] == cfg["data"]["good_label"]
    rows = [["threshold", "test: good/defect", "escape", "overkill", "drift rows met"] + [c for c, _ in CONDITIONS]]
    for t in [judge.threshold] + thresholds:
        p = _twin_passed(out_test, t)
        acc = (p[test_good].sum() + (~p[~test_good]).sum()) / len(p)
        cells, met = [], 0
        for cond, out in judged:
            q = _twin_passed(out, t)
            g, d = int(q[good].sum()), int((~q[~good]).sum())
            met += g >= 0.98 * good.sum() and d >= (0.90 if cond == "blur" else 0.95) * (~good).sum()
            cells.append(f"{g}/{d}")
        rows.append([f"{t:.3f}" + (" (run)" if t == judge.threshold else ""), f"{100 * acc:.2f}%",
                     f"{100 * p[~test_good].mean():.2f}%", f"{100 * (~p[test_good]).mean():.2f}%", str(met)] + cells)
    return "goods GOOD / defects caught with the twin's verdict at other thresholds\n" + text_table(rows)


def _warned(prof, images, size: int = 20) -> str:
    """How many batches of ``size`` the camera check warns about, and on which measures."""
    batches = [images[i:i + size] for i in range(0, len(images) - size + 1, size)]
    found = [findings(prof, b) for b in batches]
    names = sorted({f["measure"] + (" low" if f["side"] == "low" else " high") for fs in found for f in fs})
    return f"{sum(bool(f) for f in found)} of {len(batches)}" + (f" ({', '.join(names)})" if names else "")


if __name__ == "__main__":
    sys.exit(main())
