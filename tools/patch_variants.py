"""Variants of the patch score on a finished run, without retraining: a study, not part of the judge.

    python tools/patch_variants.py RUN_ID [--runs-dir DIR]

The run's patch bank (snw_core.patches) scores every position of the twin's last convolution (``conv3_1``, 1/4
resolution) against a coreset of the train goods' positions and takes the largest distance. This prints, for the
run's val and test splits, the patch score's AUROC and the accuracy of the patch score alone at a threshold chosen
on val, for the bank as trained and for changes PatchCore and its relatives make:

- features: an earlier layer (``conv2_1``, 1/2 resolution), both layers together, a 3 x 3 neighbourhood mean
  (PatchCore's local aggregation);
- the bank: every train-good position instead of the coreset; the train goods' mirror images added (a surface
  without a layout looks the same mirrored);
- the image score: the map smoothed before its maximum, the mean of its two largest positions;
- the twin's and the patch score together: the sum and the larger of the two, each in units of the val goods' spread.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _mean3(f: np.ndarray) -> np.ndarray:
    """Mean over each position's 3 x 3 neighbourhood of feature maps (n, h, w, c), edges repeated."""
    n, h, w, _ = f.shape
    p = np.pad(f, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_id")
    ap.add_argument("--runs-dir", default=None)
    a = ap.parse_args()
    from snw_core.bench import text_table
    from snw_core.data import load
    from snw_core.embed import feature_maps, load_embeddings
    from snw_core.imageops import box3, gaussian_blur
    from snw_core.judge import Judge
    from snw_core.metrics import auroc, choose_threshold, rates
    from snw_core.model import load_embedder
    from snw_core.patches import PatchBank
    from snw_core.runs import RunStore

    run = RunStore(a.runs_dir).get(a.run_id)
    cfg = run.config()
    seed = int(cfg["settings"]["seed"])
    ds = load(cfg["data"]["source"], good_label=cfg["data"]["good_label"])
    split = load_embeddings(run.file("embeddings.npz"))["split"]
    is_def = ds.labels != cfg["data"]["good_label"]
    tr_good = (split == "train") & ~is_def
    val, test = split == "val", split == "test"
    embedder = load_embedder(run.embedder_path)
    f3 = feature_maps(embedder, ds.images, "conv3_1")
    f2 = feature_maps(embedder, ds.images, "conv2_1")
    up = np.repeat(np.repeat(f3, 2, 1), 2, 2)[:, :f2.shape[1], :f2.shape[2]]
    goods = ds.images[tr_good]
    mirrors = feature_maps(embedder, np.ascontiguousarray(np.concatenate([goods[:, ::-1], goods[:, :, ::-1]])),
                           "conv3_1")

    rows = [["variant", "val AUROC", "test AUROC", "patch alone: test good/defect", "escape", "overkill"]]

    def row(name, s):
        t = choose_threshold(s[val], is_def[val])
        r = rates(s[test], is_def[test], t)
        rows.append([name, f"{auroc(s[val], is_def[val]):.4f}", f"{auroc(s[test], is_def[test]):.4f}",
                     f"{100 * r['good_defect_accuracy']:.2f}%", f"{100 * r['escape_rate']:.2f}%",
                     f"{100 * r['overkill_rate']:.2f}%"])

    bank = PatchBank.fit(f3[tr_good], seed=seed)
    s, maps = bank.score(f3)
    row("as trained: conv3_1, coreset, largest distance", s)
    row("conv2_1", PatchBank.fit(f2[tr_good], seed=seed).score(f2)[0])
    both = _mean3(np.concatenate([f2, up], -1))
    row("conv2_1 + conv3_1, 3 x 3 mean", PatchBank.fit(both[tr_good], seed=seed).score(both)[0])
    m3 = _mean3(f3)
    row("conv3_1, 3 x 3 mean", PatchBank.fit(m3[tr_good], seed=seed).score(m3)[0])
    full = f3[tr_good].reshape(-1, f3.shape[-1])
    row(f"every train-good position ({len(full)}), no coreset", PatchBank(full, np.inf, f3.shape[1:3]).score(f3)[0])
    row("bank with the goods' mirror images",
        PatchBank.fit(np.concatenate([f3[tr_good], mirrors]), seed=seed).score(f3)[0])
    row("map: 3 x 3 mean before the largest", box3(maps).reshape(len(maps), -1).max(1))
    row("map: Gaussian 1 px before the largest", gaussian_blur(maps, 1.0).reshape(len(maps), -1).max(1))
    row("map: mean of the two largest", np.sort(maps.reshape(len(maps), -1), 1)[:, -2:].mean(1))

    rest = split != "train"                  # the twin's score of a train item is its distance to itself
    twin = np.zeros(len(split))
    twin[rest] = np.asarray(Judge.from_run(run, embedder=embedder).judge(ds.images[rest])["score"])
    g = val & ~is_def
    zt, zp = (twin - twin[g].mean()) / twin[g].std(), (s - s[g].mean()) / s[g].std()
    row("twin's score alone", twin)
    row("twin + patch (in val goods' sd)", zt + zp)
    row("larger of twin and patch (same units)", np.maximum(zt, zp))
    print(f"run {run.id} ({cfg['data']['source']}, seed {seed}): patch score variants, threshold chosen on val")
    print(text_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
