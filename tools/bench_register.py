"""Registration on and off, side by side: the same preset, data and seed trained twice (``register`` off and auto),
then the test split, the camera-drift table, the not-a-part inputs and the time of one whole verdict.

    python tools/bench_register.py                                   # default data, default preset
    python tools/bench_register.py --data data_cache/real/connector_strong.parquet
    python tools/bench_register.py --augment line --epochs 30 --plateau-epochs 30
    python tools/bench_register.py --augment camera --epochs 30 --plateau-epochs 30 --register auto --seed 1

Prints one table; ``--json FILE`` also writes the numbers. Runs go to a temporary run store.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one(data: str, register: str, args, runs: Path) -> dict:
    from snw_core import drift, notapart
    from snw_core.judge import Judge
    from snw_core.runs import RunStore
    from snw_core.train import train

    overrides = {"seed": args.seed, "register": register, "augment": args.augment, "ema": args.ema}
    if args.epochs:
        overrides.update(epochs=args.epochs, plateau_epochs=args.plateau_epochs)
    run, _ = train(data, args.preset, runs_dir=str(runs), projection="none", quiet=True, **overrides)
    run = RunStore(runs).get(run.id)
    m = run.metrics()
    judge = Judge.from_run(run)
    d = drift.run_drift(run)
    nap = notapart.evaluate(judge, notapart.fresh_goods(run.config()), 20, seed=1)["all"]
    img = drift.fresh_items(run, 8, 8)[0]
    judge.judge(img[:1])
    t0 = time.perf_counter()
    for i in range(100):
        judge.judge(img[i % len(img):i % len(img) + 1])
    ms = (time.perf_counter() - t0) * 10
    return {"register": register, "run_id": run.id, "registration": m.get("registration"),
            "focus_guard": m.get("focus_guard"),
            "good_defect_accuracy": m["good_defect_accuracy"], "escape_rate": m["escape_rate"],
            "overkill_rate": m["overkill_rate"], "auroc": m["auroc"], "threshold": m["threshold"],
            "train_seconds": m["train_seconds"], "drift": d["rows"], "not_a_part_good": nap["GOOD"],
            "not_a_part_n": nap["n"], "verdict_ms": round(ms, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="default")
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", default=None, choices=("none", "line", "camera"), help="default: the preset's")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--ema", type=float, default=None, help="momentum of the weight average (default: the preset's)")
    p.add_argument("--plateau-epochs", type=int, default=0)
    p.add_argument("--register", default="off,auto", help="the settings to compare (off, auto or both)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from snw_core.bench import text_table

    with tempfile.TemporaryDirectory() as tmp:
        res = [one(args.data, r, args, Path(tmp)) for r in args.register.split(",")]
    print(f"data {args.data}, preset {args.preset}, seed {args.seed}, augment {args.augment or 'as the preset'}"
          + (f", ema {args.ema}" if args.ema is not None else "")
          + (f", {args.epochs} epochs" if args.epochs else ""))
    reg = res[-1]["registration"] or {}
    print(f"registration (auto): {'used' if reg.get('used') else 'not used'}: {reg.get('reason')} "
          f"(check: shift error {reg.get('shift_error_px')} px, angle error {reg.get('angle_error_deg')} deg)")
    rows = [["test split: good/defect, escape, overkill"]
            + [f"{r['good_defect_accuracy']:.2%}, {r['escape_rate']:.2%}, {r['overkill_rate']:.2%}" for r in res],
            ["AUROC, threshold"] + [f"{r['auroc']:.4f}, {r['threshold']:.3f}" for r in res]]
    for i, row in enumerate(res[0]["drift"]):
        rows.append([f"drift {row['condition']}: goods GOOD / defects caught"]
                    + [f"{r['drift'][i]['goods_passed_n']}/{row['n_good']} / {r['drift'][i]['defects_caught_n']}/"
                       f"{row['n_defect']}" for r in res])
    rows.append(["not-a-part inputs judged GOOD"] + [f"{r['not_a_part_good']} of {r['not_a_part_n']}" for r in res])
    rows.append(["focus guard"] + [("on" if (r["focus_guard"] or {}).get("used") else "off") for r in res])
    rows.append(["one whole verdict (ms, Keras)"] + [f"{r['verdict_ms']:.2f}" for r in res])
    print(text_table([[""] + [f"register {r['register']}" for r in res]] + rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": res}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
