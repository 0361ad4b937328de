"""What a threshold of its own for noisy images would do: a study, not part of the judge.

    python tools/noise_threshold.py RUN_ID [--runs-dir DIR]

A noisy image is told from a clean one by its relative noise: Immerkaer's estimate of the sensor noise's sd over
the image's own grey-level sd (a low-contrast part with the same noise is noisier in what the twin sees). The
study takes the run's val items with Gaussian noise of the camera augmentation's strength added (sd 9 grey
levels, seeded), puts a noise limit halfway between the clean train and val items' 99th percentile and the noisy
val items' 1st, chooses a second threshold on the noisy val items (the best sum of goods passed and defects
caught, never below the run's own), and judges the drift benchmark's fresh items with it wherever an image lies
above the limit. Prints, per drift condition, goods GOOD / defects caught with the run as it is and with the
second threshold, and how many clean test items would lie above the limit (those would be judged with it too).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snw_core.acquisition import noise_sd  # noqa: E402

#: the noise added to the val items: the camera augmentation's strongest (snw_core.augment.ENVELOPE["noise"])
NOISE = 9.0


def relative_noise(images) -> np.ndarray:
    """Immerkaer's noise sd over the image's grey-level sd (+1): (n, h, w) -> (n,)."""
    x = np.asarray(images)
    return noise_sd(x) / (x.reshape(len(x), -1).std(1) + 1.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None)
    args = p.parse_args()
    from snw_core import drift
    from snw_core.bench import text_table
    from snw_core.data import load
    from snw_core.embed import load_embeddings
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    judge = Judge.from_run(run)
    t0 = judge.threshold
    cfg = run.config()
    good_label = cfg["data"]["good_label"]
    ds = load(cfg["data"]["source"], good_label=good_label)
    split = load_embeddings(run.file("embeddings.npz"))["split"]
    val = split == "val"
    is_def = ds.labels[val] != good_label
    noisy = np.clip(np.rint(ds.images[val] + np.random.default_rng(7).normal(0, NOISE, ds.images[val].shape)),
                    0, 255).astype(np.uint8)
    clean_hi = float(np.quantile(relative_noise(ds.images[(split == "train") | val]), 0.99))
    noisy_lo = float(np.quantile(relative_noise(noisy), 0.01))
    limit = 0.5 * (clean_hi + noisy_lo)
    s = judge.judge(noisy)["score"]
    cands = np.unique(np.concatenate([s, [t0]]))
    t_noisy = max(t0, max(cands, key=lambda t: np.mean(s[~is_def] <= t) + np.mean(s[is_def] > t)))
    print(f"run {run.id}: threshold {t0:.3f}; relative noise: clean train+val 99th pct {clean_hi:.3f}, noisy val "
          f"1st pct {noisy_lo:.3f}, limit {limit:.3f}; threshold for noisy images {t_noisy:.3f} (noisy val: goods "
          f"passed {np.mean(s[~is_def] <= t_noisy):.1%} instead of {np.mean(s[~is_def] <= t0):.1%}, defects caught "
          f"{np.mean(s[is_def] > t_noisy):.1%} instead of {np.mean(s[is_def] > t0):.1%})")
    images, labels = drift.fresh_items(run, 120, 120)[:2]
    good = labels == good_label
    rows = [["condition", "as the run judges", "with the noisy-image threshold", "images above the limit"]]
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        x = drift.apply(images, cond, strength, seed=1000 + i)          # as bench --drift draws them
        r = judge.judge(x)
        sc, v = r["score"], np.asarray(r["verdict"])
        above = relative_noise(x) > limit
        rejected = (v != "GOOD") & ~((sc > t0) & (sc <= t_noisy) & above & (v == "DEFECT")
                                     & (np.asarray(r["reason"]) == "score above the threshold"))
        rows.append([cond, f"{(v[good] == 'GOOD').sum()}/{(v[~good] != 'GOOD').sum()}",
                     f"{(~rejected[good]).sum()}/{rejected[~good].sum()}", f"{above.sum()} of {len(x)}"])
    print(text_table(rows))
    te = split == "test"
    print(f"clean test items above the limit: {int((relative_noise(ds.images[te]) > limit).sum())} of {int(te.sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
