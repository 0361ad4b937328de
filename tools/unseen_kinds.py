"""Defects of a kind the run was never shown: the generated connector with one defect kind left out of the data
set, the `default` preset trained on the rest, then fresh items of every kind judged.

    python tools/unseen_kinds.py                               # each kind left out in turn, and none left out
    python tools/unseen_kinds.py --kinds dirty --seed 1 --json out.json

A line meets defects nobody labelled: a new contamination, a crack, a burr. `bench --unseen-labels` holds out
pin addresses (the kinds still seen at other pins); this holds out a whole kind of defect, at every pin. Per run
it prints, for fresh goods and fresh defects of each kind (another generator seed): the share judged GOOD / caught,
the share of caught ones whose reported pixel lies in the pin's cell (2 px tolerance), and the share given the
right pin address. Data sets and runs go to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def held_out_set(folder: Path, kind: int, n: int, seed: int) -> Path:
    """The generated data set of ``n`` items (generator ``seed``) without the items of defect ``kind`` (0: all)."""
    from snw_core import synthetic as S
    p = S.sample_params(n, seed=seed)
    images = S.render(p)
    keep = p["kind"] != kind if kind else np.ones(n, bool)
    lab = p["label"][keep]
    dirnames = np.array(["OK" if v == 0 else f"NG_{v:02d}" for v in lab.tolist()])
    path = folder / f"without_{S.DEFECT_KINDS[kind]}_seed{seed}.parquet"
    return S.write_images_parquet(path, images[keep], lab.astype(str), dirnames,
                                  metadata={S.CELLS_KEY: S.pin_cells()})


def judge_fresh(run, images, labels, kinds) -> dict:
    """Per kind (and goods): counts judged GOOD / caught, located in the pin's cell, given the right pin."""
    from snw_core import synthetic as S
    from snw_core.judge import Judge
    from snw_core.localisation import located
    judge = Judge.from_run(run)
    out = judge.judge(images)
    verdict = np.asarray(out["verdict"])
    good = labels == 0
    c = S.pin_cells()
    where = located(np.where(good, 1, labels).astype(str), out["defect_y"], out["defect_x"], images.shape[1:],
                    c["grid"], c["bounds"])
    pin = np.asarray(out["pin"]).astype(str)
    rows = {"goods": {"n": int(good.sum()), "good": int((verdict[good] == "GOOD").sum())}}
    for code, name in S.DEFECT_KINDS.items():
        if code == 0:
            continue
        sel = kinds == code
        caught = sel & (verdict != "GOOD")
        rows[name] = {"n": int(sel.sum()), "caught": int(caught.sum()), "located": int((caught & where).sum()),
                      "right_pin": int((caught & (pin == labels.astype(str))).sum()),
                      "by_local_evidence": int((caught & (np.asarray(out["reason"]) != "score above the threshold")
                                                ).sum())}
    return rows


def main() -> int:
    from snw_core import synthetic as S
    names = {v: k for k, v in S.DEFECT_KINDS.items() if k}
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kinds", default=",".join(names), help=f"kinds to leave out, one run each ({', '.join(names)})")
    p.add_argument("--seed", type=int, default=0, help="generator and training seed")
    p.add_argument("--n", type=int, default=3600, help="items generated (before the held-out kind is removed)")
    p.add_argument("--fresh", type=int, default=4000, help="fresh items judged (another generator seed)")
    p.add_argument("--preset", default="default")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (quick checks)")
    p.add_argument("--no-baseline", action="store_true", help="skip the run with every kind")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in names]
    if bad:
        p.error(f"unknown kinds {bad}; choose from {sorted(names)}")
    from snw_core.runs import RunStore
    from snw_core.train import train

    fp = S.sample_params(args.fresh, seed=args.seed + 7919)
    fresh, fresh_labels, fresh_kinds = S.render(fp), fp["label"], fp["kind"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in ([] if args.no_baseline else [0]) + [names[k] for k in kinds]:
            path = held_out_set(tmp, kind, args.n, args.seed)
            extra = {"epochs": args.epochs} if args.epochs else {}
            run, _ = train(str(path), args.preset, runs_dir=str(tmp / "runs"), projection="none", quiet=True,
                           seed=args.seed, **extra)
            run = RunStore(tmp / "runs").get(run.id)
            m = run.metrics()
            rows = judge_fresh(run, fresh, fresh_labels, fresh_kinds)
            results.append({"left_out": S.DEFECT_KINDS[kind] if kind else None, "seed": args.seed,
                            "preset": args.preset, "test_good_defect_accuracy": m["good_defect_accuracy"],
                            "fresh": rows})
            print(_line(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _line(r: dict) -> str:
    f = r["fresh"]
    head = f"left out: {r['left_out'] or 'none':9s} test {100 * r['test_good_defect_accuracy']:.2f} %  " \
           f"fresh goods GOOD {100 * f['goods']['good'] / f['goods']['n']:.1f} %"
    parts = []
    for name, c in f.items():
        if name == "goods":
            continue
        mark = "*" if name == r["left_out"] else ""
        caught = max(c["caught"], 1)
        parts.append(f"{name}{mark} caught {100 * c['caught'] / c['n']:.1f} % (in cell "
                     f"{100 * c['located'] / caught:.0f} %, pin {100 * c['right_pin'] / caught:.0f} %)")
    return head + " | " + " | ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
