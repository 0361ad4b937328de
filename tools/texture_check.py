"""The gate's texture check on and off, the same run otherwise: not-a-part inputs judged GOOD per kind, the test
split's items it calls UNKNOWN, goods judged GOOD per camera-drift condition, and its time per image.

    python tools/texture_check.py --data data_cache/real/texture_strong.parquet --drift
    python tools/texture_check.py --runs-dir runs --run RUN_ID

Trains one run (``--preset``, ``--seed``; into a temporary run store) unless ``--run`` names a finished one, then
judges everything twice with the run's own gate, once with its texture check switched off. Prints JSON.
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


def compare(run, with_drift: bool = False, calls: int = 300) -> dict:
    from snw_core import data as D
    from snw_core import drift, notapart
    from snw_core.embed import load_embeddings
    from snw_core.judge import Judge

    judge = Judge.from_run(run)
    gate = judge.gate
    texture = gate.texture
    if texture is None:
        raise SystemExit(f"run {run.id} has no texture check (trained before it existed)")

    def switch(on: bool):
        gate.texture = texture if on else None

    cfg = run.config()
    ds = D.load(cfg["data"]["source"], good_label=cfg["data"]["good_label"])
    e = load_embeddings(run.file("embeddings.npz"))
    test = e["split"] == "test"
    goods = notapart.fresh_goods(cfg)
    if goods is None:                                        # as the bench does: the run's test goods
        goods = ds.images[test & (e["labels"] == judge.good_label)]
    out = {"run": run.id, "data": cfg["data"]["source"], "texture_threshold": gate.t_tex}
    for on in (False, True):
        switch(on)
        res = notapart.evaluate(judge, goods, n_per_kind=20, seed=1)
        out["not_a_part_good_" + ("on" if on else "off")] = {k: v["GOOD"] for k, v in res.items()}
    switch(True)
    x = judge.prepare(ds.images[test])[0]                   # registered where the run registers
    t = gate.check(x)["texture"]
    good = ds.labels[test] == judge.good_label
    out["test_texture_unknown"] = {"goods": int((t[good] > 1).sum()), "of_goods": int(good.sum()),
                                   "defects": int((t[~good] > 1).sum()), "of_defects": int((~good).sum()),
                                   "max_good": round(float(t[good].max()), 3),
                                   "max_defect": round(float(t[~good].max()), 3)}
    if with_drift:
        images, labels, note = drift.fresh_items(run)
        is_good = labels == judge.good_label
        rows = []
        for j, (name, strength) in enumerate(drift.CONDITIONS):
            changed = drift.apply(images, name, strength, seed=1000 + j)     # as drift.run_drift
            row = {"condition": name, "strength": strength}
            for on in (False, True):
                switch(on)
                verdict = np.asarray(judge.judge(changed)["verdict"]).astype(str)
                row["goods_GOOD_" + ("on" if on else "off")] = int((verdict[is_good] == "GOOD").sum())
            row["goods_texture_unknown"] = int((gate.check(judge.prepare(changed)[0])["texture"][is_good] > 1).sum())
            rows.append(row)
        out["drift"] = {"items": note, "n_goods": int(is_good.sum()), "rows": rows}
    one = x[:50]
    t_on, t_off, t_tex = [], [], []
    for i in range(calls):
        im = one[i % len(one):i % len(one) + 1]
        switch(False)
        t0 = time.perf_counter()
        gate.check(im)
        t_off.append(time.perf_counter() - t0)
        switch(True)
        t0 = time.perf_counter()
        gate.check(im)
        t_on.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        gate._texture_raw(im)
        t_tex.append(time.perf_counter() - t0)
    out["ms_gate_check_off"], out["ms_gate_check_on"], out["ms_texture_alone"] = (
        round(1000 * float(np.median(v[20:])), 3) for v in (t_off, t_on, t_tex))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="default")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir")
    ap.add_argument("--run", help="a finished run in --runs-dir (else one is trained)")
    ap.add_argument("--drift", action="store_true", help="also the camera-drift conditions")
    args = ap.parse_args(argv)
    from snw_core.runs import RunStore
    if args.run:
        run = RunStore(args.runs_dir).get(args.run)
        print(json.dumps(compare(run, args.drift)))
        return 0
    from snw_core.train import train
    with tempfile.TemporaryDirectory() as tmp:
        run, _ = train(args.data, args.preset, runs_dir=tmp, projection="none", quiet=True, seed=args.seed)
        print(json.dumps(compare(RunStore(tmp).get(run.id), args.drift)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
