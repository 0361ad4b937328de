"""How far can a drift row go on a data set? Runs trained on images that all carry one drift condition.

    python tools/drift_specialists.py --data SET [--conditions noise,blur,jpeg] [--preset default] [--seed 0]
                                      [--compare RUN_ID ...] [--runs-dir DIR] [--json FILE]

For each condition of ``bench --drift`` named, every image of SET goes through that condition (seeded), a run is
trained on the result (a "specialist": it knows the drift exactly, and nothing else), and the fresh items the drift
benchmark draws for SET are judged under the same condition, as ``bench --drift`` judges them (the same items, the
same seeds). A row a specialist cannot meet is a row the recipe's twin cannot meet on that set by training for the
drift alone; the gap between a general run (``--compare``, e.g. a ``camera`` run of SET) and the specialist is what
a better recipe could still win. Prints one table; the runs stay in the run store (``spec-...``) and are reused
when the command is run again.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Source:
    """What :func:`snw_core.drift.fresh_items` reads of a run: its data source, so that a specialist trained on a
    changed copy of SET is judged on SET's fresh items."""

    def __init__(self, source: str, good_label: str):
        self._cfg = {"data": {"source": source, "good_label": good_label}}

    def config(self) -> dict:
        return self._cfg


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="'default' or a parquet file written by `data real` / `data synth`")
    p.add_argument("--good-label", default="0")
    p.add_argument("--conditions", default="noise,blur,jpeg")
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", nargs="*", default=[], help="finished runs of SET judged on the same rows")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from snw_core import drift
    from snw_core.bench import text_table
    from snw_core.data import load
    from snw_core.judge import Judge
    from snw_core.runs import RunStore
    from snw_core.synthetic import write_images_parquet

    store = RunStore(args.runs_dir)
    strengths = dict(drift.CONDITIONS)
    names = [c for c, _ in drift.CONDITIONS]
    conditions = args.conditions.split(",")
    unknown = [c for c in conditions if c not in strengths]
    if unknown:
        p.error(f"unknown condition(s) {unknown}; choose from {names}")
    ds = load(args.data, good_label=args.good_label)
    images, labels, note = drift.fresh_items(_Source(args.data, args.good_label), 120, 120)
    tag = Path(args.data).stem

    def row(judge, cond):
        # as `bench --drift` (seed 0) draws each condition: seed 1000 + its place in drift.CONDITIONS
        return drift.drift_table(judge, images, labels, args.good_label, [(cond, strengths[cond])],
                                 seed=1000 + names.index(cond))[0]

    results, table = [], [["run", "trained on", "condition", "goods GOOD", "defects caught", "test good/defect",
                           "escape", "overkill"]]
    for cond in conditions:
        rid = f"spec-{tag}-{cond}-{args.preset}-{args.seed}"
        if not (store.root / rid / "metrics.json").exists():
            folder = store.root / ".specialist-data"
            folder.mkdir(parents=True, exist_ok=True)
            data = folder / f"{tag}-{cond}.parquet"
            changed = drift.apply(ds.images, cond, strengths[cond], seed=4242)
            write_images_parquet(data, changed, ds.labels, ds.dirnames)
            env = dict(os.environ, SNW_RUNS_DIR=str(store.root))
            subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(data), "--preset", args.preset,
                            "--seed", str(args.seed), "--good-label", args.good_label, "--run-id", rid],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        results.append((rid, f"SET under {cond}", cond))
        for other in args.compare:
            results.append((other, "SET", cond))
    out = []
    for rid, trained_on, cond in results:
        run = store.get(rid)
        r = row(Judge.from_run(run), cond)
        m = run.metrics()
        out.append({"run_id": rid, "trained_on": trained_on, **r, "test": {k: m[k] for k in
                    ("good_defect_accuracy", "escape_rate", "overkill_rate", "auroc")}})
        table.append([rid, trained_on, cond, f"{r['goods_passed_n']}/{r['n_good']}",
                      f"{r['defects_caught_n']}/{r['n_defect']}", f"{100 * m['good_defect_accuracy']:.2f} %",
                      f"{100 * m['escape_rate']:.2f} %", f"{100 * m['overkill_rate']:.2f} %"])
    print(f"data {args.data}; fresh items: {note}; a row is met at >= 118 goods GOOD and >= 114 defects caught "
          "(blur: 108)")
    print(text_table(table, left=3))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": " ".join(sys.argv), "rows": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
