"""Three more kinds of evidence, measured on finished runs without retraining: a study, not part of the judge.

    python tools/tried_evidence.py margin    RUN_ID [RUN_ID ...] [--runs-dir DIR]
    python tools/tried_evidence.py matched   RUN_ID [--runs-dir DIR]
    python tools/tried_evidence.py wholepart RUN_ID [RUN_ID ...] [--runs-dir DIR]

- ``margin``: the label margin, the mean distance to the 3 nearest good references less the mean distance to the
  3 nearest defective train items. Prints its AUROC beside the twin's on val and test, and what it changes as one
  more evidence that can only reject: an item is also a defect where its margin is above a second threshold, chosen
  on val (the one that gains most val accuracy with the run's verdicts as they are).
- ``matched``: the good references drifted like the image. Under blur, JPEG, noise and rotation at the drift
  benchmark's strengths, the benchmark's fresh items are scored against the references as trained, against those
  plus the train goods changed the same way (drawn three times), and against the changed ones alone. An oracle:
  it is told which change the image has.
- ``wholepart``: the goods model's residual over the whole image (the mean of the local evidence's heat map, which
  the local evidence divides by), as a check of its own: its limit is 1.2 times the 99.9th percentile over the val
  goods and one copy of each under the light and sensor changes (:data:`snw_core.augment.PHOTOMETRIC`). Prints
  how many drifted goods the run passes that the check would stop, and how many of the not-a-part inputs it passes
  (both benchmarks, seed 1, the kinds `bench` counts) and of connectors with other pin grids (generated
  connectors only).
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load(store, run_id):
    from snw_core import data as D
    from snw_core.embed import load_embeddings
    from snw_core.judge import Judge
    run = store.get(run_id)
    judge = Judge.from_run(run)          # a run without metrics yet says so here
    gl = run.config()["data"]["good_label"]
    e = load_embeddings(run.file("embeddings.npz"))
    return run, judge, e, np.asarray(e["labels"]).astype(str) != gl, np.asarray(e["split"]).astype(str), gl


def margin(store, run_ids) -> None:
    from sklearn.metrics import roc_auc_score

    from snw_core.judge import nearest
    from snw_core.review import gate_rejected
    for rid in run_ids:
        run, j, e, bad, split, _ = _load(store, rid)
        emb = np.asarray(e["embeddings"])
        tr_defect = emb[(split == "train") & bad]
        mg = nearest(j.ref_good, emb, 3)[0].mean(1) - nearest(tr_defect, emb, 3)[0].mean(1)
        rejected, _ = gate_rejected(e)
        base = np.asarray(e["scores"], np.float64) > j.threshold
        if rejected is not None:
            base |= rejected
        va, te = split == "val", split == "test"
        acc = lambda v, s: float(np.mean(v[s] == bad[s]))  # noqa: E731
        best, cut = acc(base, va), None
        for c in np.unique(mg[va]):
            a = acc(base | (mg > c), va)
            if a > best + 1e-12:
                best, cut = a, c
        new = base if cut is None else base | (mg > cut)
        esc = lambda v: float(np.mean(~v[te & bad]))  # noqa: E731
        ovk = lambda v: float(np.mean(v[te & ~bad]))  # noqa: E731
        print(f"{rid}: AUROC twin val {roc_auc_score(bad[va], e['scores'][va]):.3f} test "
              f"{roc_auc_score(bad[te], e['scores'][te]):.3f}; margin val {roc_auc_score(bad[va], mg[va]):.3f} test "
              f"{roc_auc_score(bad[te], mg[te]):.3f}")
        print(f"  as an evidence that rejects: val {acc(base, va):.2%} -> {best:.2%}; test {acc(base, te):.2%} -> "
              f"{acc(new, te):.2%} (escape {esc(base):.2%} -> {esc(new):.2%}, overkill {ovk(base):.2%} -> "
              f"{ovk(new):.2%})" + ("" if cut is not None else "; no gain on val, not used"))


def matched(store, run_id) -> None:
    from snw_core import data as D
    from snw_core import drift
    from snw_core.judge import nearest
    run, j, e, bad, split, gl = _load(store, run_id)
    ds = D.load(run.config()["data"]["source"], good_label=gl)
    tr_good = (split == "train") & ~bad
    if "ref_left_out" in e:
        tr_good &= ~np.asarray(e["ref_left_out"], bool)
    images, labels, note = drift.fresh_items(run)
    good = labels == gl
    t = j.threshold
    print(f"{run_id}: {note}; threshold {t:.3f}; goods within it / defects above it, of {good.sum()} / {(~good).sum()}")

    def counts(s):
        return f"{int(np.sum(s[good] <= t))} / {int(np.sum(s[~good] > t))}"
    for k, (name, strength) in enumerate(drift.CONDITIONS):
        if name not in ("rotation", "blur", "jpeg", "noise"):
            continue
        emb = j.embed(drift.apply(images, name, strength, seed=1000 + k))
        cells = [f"as trained {counts(nearest(j.ref_good, emb, j.k)[0].mean(1))}"]
        for draw in range(3):
            ref = j.embed(drift.apply(ds.images[tr_good], name, strength, seed=77 + draw))
            both = nearest(np.concatenate([j.ref_good, ref]), emb, j.k)[0].mean(1)
            alone = nearest(ref, emb, j.k)[0].mean(1)
            cells.append(f"draw {draw}: with {counts(both)}, alone {counts(alone)}")
        print(f"  {name:9s} " + "; ".join(cells))


def wholepart(store, run_ids) -> None:
    from snw_core import data as D
    from snw_core import drift, notapart
    from snw_core.augment import PHOTOMETRIC, envelope_copies
    from snw_core.bench import held_out_kinds
    from snw_core.gate import local_heat, standardize
    from snw_core.synthetic import ConnectorSpec, generate
    for rid in run_ids:
        run, j, e, bad, split, gl = _load(store, rid)
        if j.gate is None or j.gate.local_model is None:
            print(f"{rid}: no goods model")
            continue
        shape = j.image_shape

        def residual(x, registered=False):
            if not registered:
                x = j.prepare(x)[0]
            return local_heat(standardize(x), j.gate.local_model, shape).mean(1)
        ds = D.load(run.config()["data"]["source"], good_label=gl)
        val_goods = j.prepare(ds.images[(split == "val") & ~bad])[0]
        copies = envelope_copies(val_goods, np.random.default_rng([0, 7]), "line", names=PHOTOMETRIC)
        limit = 1.2 * float(np.quantile(residual(np.concatenate([val_goods, copies]), True), 0.999))
        print(f"{rid}: limit {limit:.2f} (clean val goods up to {residual(val_goods, True).max():.2f})")
        images, labels, _ = drift.fresh_items(run)
        good = labels == gl
        rows = []
        for k, (name, strength) in enumerate(drift.CONDITIONS):
            x = drift.apply(images, name, strength, seed=1000 + k)
            passed = np.asarray(j.judge(x)["verdict"]).astype(str)[good] == "GOOD"
            r = residual(x[good])
            rows.append(f"{name} {int(passed.sum())}->{int((passed & (r <= limit)).sum())} (max {r.max():.1f})")
        print("  drifted goods GOOD, without -> with the check: " + ", ".join(rows))
        te_goods = ds.images[(split == "test") & ~bad]
        goods = notapart.fresh_goods(run.config())
        for kinds, title in ((None, "not-a-part"), (held_out_kinds(run.metrics()), "held-out kinds")):
            x, kind = notapart.not_a_part(shape, te_goods if goods is None else goods, n_per_kind=20, seed=1,
                                          kinds=kinds)
            passed = np.asarray(j.judge(x)["verdict"]).astype(str) == "GOOD"
            stopped = passed & (residual(x) > limit)
            print(f"  {title}: GOOD {int(passed.sum())}, the check stops {int(stopped.sum())} "
                  f"{dict(collections.Counter(kind[stopped].tolist()))}")
        if run.config()["data"]["source"] == "default":
            for rows_, cols in ((2, 5), (2, 7), (1, 6), (3, 6), (3, 4)):
                spec = ConnectorSpec(height=shape[0], width=shape[1], pin_rows=rows_, pin_cols=cols)
                x, lab, _ = generate(200, seed=4242, spec=spec)
                x = x[lab == "0"][:40]
                passed = np.asarray(j.judge(x)["verdict"]).astype(str) == "GOOD"
                r = residual(x)
                print(f"  {rows_} x {cols} connectors: GOOD {int(passed.sum())} of {len(x)}, the check stops "
                      f"{int((passed & (r > limit)).sum())} (residual from {r.min():.1f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", choices=("margin", "matched", "wholepart"))
    ap.add_argument("run_ids", nargs="+")
    ap.add_argument("--runs-dir", default=None)
    a = ap.parse_args()
    from snw_core.runs import RunStore
    store = RunStore(a.runs_dir)
    try:
        if a.study == "margin":
            margin(store, a.run_ids)
        elif a.study == "matched":
            for rid in a.run_ids:
                matched(store, rid)
        else:
            wholepart(store, a.run_ids)
    except ValueError as err:                # an unknown or unfinished run
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
