"""A run's camera-drift table with its focus guard and without it, side by side.

    python tools/focus_guard.py RUN_ID [--runs-dir DIR]

Training raises the gate's focus limit where the run lets blurred val defects pass (``metrics.json`` key
``focus_guard``; :func:`snw_core.train.focus_guard`). This judges the same fresh items under every drift condition
with the limit as trained and with the gate's own limit (a quarter of the least sharp train image), so what the
guard costs and saves can be read per condition, and the not-a-part inputs of the bench judged GOOD with each.
Prints one table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None)
    args = p.parse_args()
    from snw_core import drift, notapart
    from snw_core.bench import text_table
    from snw_core.data import load
    from snw_core.embed import load_embeddings
    from snw_core.gate import BLUR_SHARE, sharpness
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    cfg = run.config()
    guard = run.metrics().get("focus_guard") or {}
    judge = Judge.from_run(run)
    if judge.gate is None:
        print("this run has no gate", file=sys.stderr)
        return 2
    ds = load(cfg["data"]["source"], good_label=cfg["data"]["good_label"])
    split = load_embeddings(run.file("embeddings.npz"))["split"]
    train_images = judge.prepare(ds.images[split == "train"])[0]
    own = BLUR_SHARE * float(np.min(sharpness(train_images)))
    trained = judge.gate.min_sharp
    images, labels, note = drift.fresh_items(run)
    good_label = cfg["data"]["good_label"]
    goods = notapart.fresh_goods(cfg)                  # the bench's goods for the good-based not-a-part kinds
    if goods is None:
        goods = ds.images[(split == "test") & (ds.labels == good_label)]
    tables, passed = [], []
    for limit in (trained, own):
        judge.gate.min_sharp = limit
        tables.append(drift.drift_table(judge, images, labels, good_label, seed=1000))
        r = notapart.evaluate(judge, goods, 20, seed=1)
        passed.append(f"{r['all']['GOOD']} of {r['all']['n']}"
                      + "".join(f", {k} {v['GOOD']}" for k, v in r.items() if k != "all" and v["GOOD"]))
    judge.gate.min_sharp = trained
    print(f"run {run.id} ({note}); focus guard: {guard.get('reason', 'not recorded (older run)')}")
    print(f"focus limit as trained {trained:.3f}, the gate's own {own:.3f}")
    rows = [["condition", "goods GOOD / defects caught: as trained", "gate's own limit"]]
    for a, b in zip(*tables):
        rows.append([a["condition"]] + [f"{r['goods_passed_n']}/{r['n_good']} / {r['defects_caught_n']}/{r['n_defect']}"
                                        for r in (a, b)])
    rows.append(["not-a-part GOOD"] + passed)
    print(text_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
