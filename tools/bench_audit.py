"""Benchmark of the data audit on planted faults: recall and precision per kind, and good/defect accuracy of the
clean set, the faulty set, and the faulty set trained with the audit's corrections.

    python tools/bench_audit.py --label-noise 0.03 --duplicates 12 --outliers 6 --seeds 0,1 --json docs/bench_audit.json

For every seed (the seed of the planted faults and of training): the generator's default set (3,600 items) is
written clean and with planted faults (``snw_core.plant``, the truth beside it); the ``default`` preset trains on
both; the faulty run is audited (timed without its cache); every ``label`` suggestion goes into a corrections
file (as ``audit --corrections-out`` writes it) and a third run trains with it. Accuracy is reported as each run
reports it (its own test labels) and against the true labels of its test items (the planted truth).
A last step times the audit of a 36,000-item set (``--big 0`` skips it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from snw_core import data, synthetic  # noqa: E402
from snw_core.audit import KINDS, audit_arrays, audit_run  # noqa: E402
from snw_core.corrections import from_flags, run_rows, write_corrections  # noqa: E402
from snw_core.embed import load_embeddings  # noqa: E402
from snw_core.plant import plant, read_truth, write_planted  # noqa: E402
from snw_core.review import gate_rejected  # noqa: E402
from snw_core.train import prepare, train  # noqa: E402


def true_accuracy(run, true_labels, good_label="0", twin_only=False):
    """Good/defect accuracy of a run's test items against the true labels of those rows, judged as the run judges
    them (its metrics.json's verdict: the twin's score above its threshold, or the gate's UNKNOWN, local or patch
    evidence), or by the twin's score alone (``twin_only``)."""
    z = load_embeddings(run.file("embeddings.npz"))
    rows = run_rows(run.config(), data.load(run.config()["data"]["source"]))
    test = z["split"] == "test"
    judged_defect = z["scores"] > run.metrics()["threshold"]
    rejected, _ = gate_rejected(z)
    if not twin_only and rejected is not None:
        judged_defect = judged_defect | rejected
    return float((judged_defect[test] == (true_labels[rows][test] != good_label)).mean())


def not_a_part_good(run):
    """Not-a-part inputs judged GOOD by the run (the bench's 240 and its 180 held-out ones; GOOD must be 0)."""
    from snw_core import notapart
    from snw_core.judge import Judge
    judge = Judge.from_run(run)
    goods = notapart.fresh_goods(run.config(), n=60)
    main = notapart.evaluate(judge, goods, n_per_kind=20, seed=1)
    held = notapart.evaluate(judge, goods, n_per_kind=20, seed=1, kinds=notapart.HELD_OUT_KINDS)
    return {"all": main["all"]["GOOD"], "held_out": held["all"]["GOOD"],
            "kinds": {k: v["GOOD"] for k, v in {**main, **held}.items() if k != "all" and v["GOOD"]}}


def score_audit(flags, truth, split):
    """Recall and precision per kind against the planted truth (leaks expected: planted pairs across train)."""
    by_kind = {k: {f["row"] for f in flags if f["kind"] == k} for k in KINDS}
    wrong = {t["row"]: t["true_label"] for t in truth if t["kind"] == "label"}
    pairs = [(t["row"], t["of_row"]) for t in truth if t["kind"] == "duplicate"]
    expected = {"label": set(wrong), "duplicate": {r for p in pairs for r in p},
                "leak": {a for p in pairs for a, b in (p, p[::-1]) if split[a] != "train" and split[b] == "train"},
                "outlier": {t["row"] for t in truth if t["kind"] == "outlier"}}
    out = {}
    for k in KINDS:
        tp = len(by_kind[k] & expected[k])
        out[k] = {"planted": len(expected[k]), "flagged": len(by_kind[k]), "found": tp,
                  "recall": tp / len(expected[k]) if expected[k] else None,
                  "precision": tp / len(by_kind[k]) if by_kind[k] else None}
    sugg = {f["row"]: f["suggested_label"] for f in flags if f["kind"] == "label"}
    right = [sugg[r] == wrong[r] for r in set(sugg) & set(wrong)]
    out["label"]["suggestion_right"] = float(np.mean(right)) if right else None
    # train items were seen with their wrong label by the twin, val/test items were not: recall of each
    out["label"]["recall_by_split"] = {
        part: (len([r for r in wrong if split[r] == part and r in by_kind["label"]]), len([r for r in wrong if split[r] == part]))
        for part in ("train", "val", "test")}
    return out


def embedding_isolation(run, outlier_rows):
    """Why outliers are judged in pixels: in the run's embedding, the mean distance of an item to its 5 nearest
    items over the median of the same for those neighbours (about 1 inside a cluster, large when isolated), for
    the planted outliers and for the most isolated other items."""
    from sklearn.neighbors import NearestNeighbors
    e = load_embeddings(run.file("embeddings.npz"))["embeddings"]
    d, idx = NearestNeighbors(n_neighbors=6).fit(e).kneighbors(e)
    m = d[:, 1:].mean(axis=1)
    ratio = m / np.median(m[idx[:, 1:]], axis=1)
    others = np.delete(ratio, outlier_rows)
    return {"planted_outliers": [round(float(x), 2) for x in ratio[outlier_rows]],
            "others_top5": [round(float(x), 2) for x in np.sort(others)[-5:]],
            "others_median": round(float(np.median(others)), 2)}


def one_seed(seed, a, work: Path, runs: Path) -> dict:
    images, labels, dirnames = synthetic.generate(a.n, seed=0)
    got = plant(images, labels, dirnames, label_noise=a.label_noise, duplicates=a.duplicates, outliers=a.outliers,
                seed=seed)
    clean = synthetic.write_images_parquet(work / "clean.parquet", images, labels, dirnames)
    faulty, truth_csv = write_planted(work / f"faulty_seed{seed}.parquet", got)
    truth = read_truth(truth_csv)
    true = got.labels.copy()
    for t in truth:
        true[t["row"]] = t["true_label"]
    kw = dict(preset=a.preset, seed=seed)
    row = {"seed": seed, "n": a.n, "label_noise": a.label_noise, "duplicates": a.duplicates, "outliers": a.outliers,
           "preset": a.preset}

    def fit(source, name, corrections=None):
        prep = prepare(str(source), **kw)
        if corrections:
            from snw_core.corrections import prepare_corrected
            prep = prepare_corrected(prep, corrections)
        run, state = train(prepared=prep, name=name, runs_dir=runs, projection="none", quiet=True)
        assert state == "done", state
        return run

    r_clean = fit(clean, f"clean-s{seed}")
    r_faulty = fit(faulty, f"faulty-s{seed}")
    t0 = time.perf_counter()
    res = audit_run(r_faulty, use_cache=False)
    row["audit_seconds"] = round(time.perf_counter() - t0, 3)
    split = load_embeddings(r_faulty.file("embeddings.npz"))["split"]
    row["audit"] = score_audit(res["flags"], truth, split)
    row["label_evidence"] = res["summary"]["label_evidence"]
    px = res["summary"].get("pixels") or {}
    row["pixel_rules"] = {k: px[k] for k in ("vetoed", "found_defect", "found_good") if k in px}
    wrong = {t["row"] for t in truth if t["kind"] == "label"}
    row["false_to_good"] = sum(1 for f in res["flags"]
                               if f["kind"] == "label" and f["row"] not in wrong and f["suggested_label"] == "0")
    row["embedding_isolation"] = embedding_isolation(r_faulty, [t["row"] for t in truth if t["kind"] == "outlier"])
    ds_faulty = data.load(str(faulty))
    corr = write_corrections(work / f"corrections_seed{seed}.csv", from_flags(res["flags"], ds_faulty.labels),
                             ds_faulty.source, ds_faulty.content_hash)
    r_fixed = fit(faulty, f"corrected-s{seed}", corrections=corr)
    for name, run, truth_labels in (("clean", r_clean, labels), ("faulty", r_faulty, true), ("corrected", r_fixed, true)):
        m = run.metrics()
        row[name] = {"run_id": run.id, "good_defect_accuracy": m["good_defect_accuracy"],
                     "escape_rate": m["escape_rate"], "overkill_rate": m["overkill_rate"],
                     "true_label_accuracy": true_accuracy(run, truth_labels),
                     "true_label_accuracy_twin": true_accuracy(run, truth_labels, twin_only=True),
                     "gate": {k: m["gate"].get(k) for k in ("images_set_aside", "local_set_aside", "min_std", "appearance",
                                                             "local", "max_clipped")},
                     "not_a_part_good": not_a_part_good(run)}
    return row


def pixel_stats(seed, a):
    """The pixel-space numbers behind the duplicate and outlier cuts, on the faulty set of ``seed`` and the clean set:
    nearest-neighbour RMS (median, smallest between distinct items, largest of planted copies) and the robust
    z-scores of the planted outliers and of the most isolated other item."""
    from snw_core.audit import _pixel_neighbours, pixel_outlier_z
    images, labels, dirnames = synthetic.generate(a.n, seed=0)
    got = plant(images, labels, dirnames, label_noise=a.label_noise, duplicates=a.duplicates, outliers=a.outliers,
                seed=seed)
    out = {}
    for name, imgs, truth in (("faulty", got.images, got.truth), ("clean", images, [])):
        _, rms, _ = _pixel_neighbours(imgs, 8, 64, 0)
        z = pixel_outlier_z(imgs)
        outl = [t["row"] for t in truth if t["kind"] == "outlier"]
        dup = sorted({r for t in truth if t["kind"] == "duplicate" for r in (t["row"], t["of_row"])})
        plain = np.setdiff1d(np.arange(imgs.shape[0]), dup + outl)
        out[name] = {"median_nn_rms": round(float(np.median(rms[:, 0])), 2),
                     "min_nn_rms_distinct": round(float(rms[plain, 0].min()), 2),
                     "max_nn_rms_planted_copies": round(float(rms[dup, 0].max()), 2) if dup else None,
                     "outlier_z": sorted(round(float(x), 1) for x in z[outl]),
                     "max_z_others": round(float(z[plain].max()), 2)}
    out["faulty"]["label_pixels"] = label_pixel_stats(got, labels, seed)
    return out


def label_pixel_stats(got, true_labels, seed, good="0"):
    """The pixel evidence for labels on a faulty set (split as the ``default`` preset draws it with ``seed``): how
    often true goods and true defects pass each rule's cut (the item's z-scores are fitted on the given labels)."""
    from snw_core.audit import AuditSettings, _local_evidence, _pixel_label_model
    from snw_core.splits import stratified_split
    s = AuditSettings()
    labels = got.labels
    split = stratified_split(labels, (0.6, 0.2, 0.2), seed=seed)
    names = sorted(set(labels.tolist()))
    lab_id, tid = np.searchsorted(names, labels), np.searchsorted(names, true_labels)
    gid = names.index(good)
    ref = np.flatnonzero((lab_id == gid) & (split == "train"))
    _, py, px, rel = _local_evidence(got.images, ref, np.full(labels.size, -1), s.n_components, s.seed)
    z, pz, info = _pixel_label_model(rel, py, px, lab_id, gid, len(names), s.defect_z, got.images.shape[1:])
    g, d = tid == gid, tid != gid
    own = pz[np.flatnonzero(d), tid[d]]
    best = np.nanmax(np.where(np.isnan(pz), -np.inf, pz), axis=1)

    def pct(x):
        return round(100 * float(np.mean(x)), 2)
    return {"places": len(info["places"]),
            "goods_place_z_at_least_veto_z": pct(pz[g][:, [c for c in range(len(names)) if c != gid]] >= s.veto_z),
            "defects_own_place_z_at_least_veto_z": pct(own >= s.veto_z),
            "goods_clear_defect": int(((z[g] >= s.defect_z) & (best[g] >= s.defect_z)).sum()), "goods": int(g.sum()),
            "goods_clear_anywhere": int((z[g] >= s.defect_z).sum()),
            "defects_clear_defect": pct((z[d] >= s.defect_z) & (own >= s.defect_z)),
            "goods_clean": pct(z[g] < s.clean_z), "defects_clean": pct((z[d] < s.clean_z) & (own < s.clean_z))}


def big_timing(n, seed=0):
    """The audit of ``n`` items (generator images, 64-d stand-in embeddings: one noisy cluster per label), timed."""
    from snw_core.splits import stratified_split
    images, labels, _ = synthetic.generate(n, seed=seed)
    rng = np.random.default_rng(seed)
    names = sorted(set(labels.tolist()))
    centres = rng.normal(0, 1, (len(names), 64))
    emb = (centres[np.searchsorted(names, labels)] + rng.normal(0, 0.3, (n, 64))).astype(np.float32)
    split = stratified_split(labels, (0.6, 0.2, 0.2), seed=seed)
    t0 = time.perf_counter()
    res = audit_arrays(emb, labels, split, images)
    return {"n": n, "seconds": round(time.perf_counter() - t0, 3), "counts": res["summary"]["counts"]}


def format_table(out) -> str:
    """The benchmark as markdown (docs/audit.md)."""
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f} %"
    lines = ["| seed | kind | planted | flagged | found | recall | precision |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in out["rows"]:
        for k in KINDS:
            a = r["audit"][k]
            lines.append(f"| {r['seed']} | {k} | {a['planted']} | {a['flagged']} | {a['found']} | {pct(a['recall'])} | "
                         f"{pct(a['precision'])} |")
    lines += ["", "| seed | wrong labels found in train / val / test | suggestion right | audit (3,600 items) | "
                  "clean | faulty | corrected | corrected - clean |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in out["rows"]:
        by = r["audit"]["label"]["recall_by_split"]
        acc = {k: r[k]["true_label_accuracy"] for k in ("clean", "faulty", "corrected")}
        own = {k: r[k]["good_defect_accuracy"] for k in ("clean", "faulty", "corrected")}
        twin = {k: r[k].get("true_label_accuracy_twin") for k in ("clean", "faulty", "corrected")}
        lines.append(f"| {r['seed']} | " + " / ".join(f"{a}/{b}" for a, b in (by[p] for p in ("train", "val", "test")))
                     + f" | {pct(r['audit']['label']['suggestion_right'])} | {r['audit_seconds']:.2f} s | "
                     + " | ".join(f"{100 * acc[k]:.2f} % ({100 * own[k]:.2f} %; twin {pct(twin[k])})"
                                  for k in ("clean", "faulty", "corrected"))
                     + f" | {100 * (acc['corrected'] - acc['clean']):+.2f} points |")
    if all("gate" in r["clean"] for r in out["rows"]):
        lines += ["", "| seed | run | images left out of the gate's limits | val goods left out of the local threshold | "
                      "flat-frame limit (grey-level spread) | highlights limit | appearance threshold | "
                      "not-a-part GOOD (of 240) | held-out GOOD (of 180) |", "| --- " * 9 + "|"]
        for r in out["rows"]:
            for k in ("clean", "faulty", "corrected"):
                g, n = r[k]["gate"], r[k]["not_a_part_good"]
                lines.append(f"| {r['seed']} | {k} | {g['images_set_aside']} | {g['local_set_aside']} | {g['min_std']:.2f} | "
                             f"{g['max_clipped']:.3f} | {g['appearance']:.2f} | {n['all']} | {n['held_out']} |")
    if out.get("big"):
        lines += ["", f"Audit of {out['big']['n']:,} items: {out['big']['seconds']:.2f} s."]
    lines += ["", f"Accuracy: good/defect accuracy of the run's verdicts on its test split against the true labels (in "
                  f"brackets: against the run's own test labels, as its metrics.json reports it; then the twin's score "
                  f"alone against the true labels). {out['cores']} cores."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label-noise", type=float, default=0.03)
    ap.add_argument("--duplicates", type=int, default=12)
    ap.add_argument("--outliers", type=int, default=6)
    ap.add_argument("--n", type=int, default=3600)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--big", type=int, default=36000, help="items of the timing-only audit (0: skip)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--pixels-only", action="store_true", help="only the pixel-space statistics (no training)")
    ap.add_argument("--table", default=None, help="print the markdown table of an earlier --json file and stop")
    a = ap.parse_args()
    if a.table:
        print(format_table(json.loads(Path(a.table).read_text())))
        return
    if a.pixels_only:
        print(json.dumps({s: pixel_stats(int(s), a) for s in a.seeds.split(",") if s.strip()}, indent=1))
        return
    work = Path(tempfile.mkdtemp(prefix="snw-bench-audit-"))
    rows = []
    for seed in [int(s) for s in a.seeds.split(",") if s.strip()]:
        row = one_seed(seed, a, work, work / "runs")
        rows.append(row)
        au = row["audit"]
        print(f"seed {seed}: audit {row['audit_seconds']:.2f} s; "
              + "; ".join(f"{k} recall {au[k]['recall'] if au[k]['recall'] is None else round(au[k]['recall'], 3)} "
                          f"precision {au[k]['precision'] if au[k]['precision'] is None else round(au[k]['precision'], 3)}"
                          for k in KINDS), flush=True)
        print("  accuracy (own labels / true labels): " + "; ".join(
            f"{k} {row[k]['good_defect_accuracy']:.4f} / {row[k]['true_label_accuracy']:.4f}"
            for k in ("clean", "faulty", "corrected")), flush=True)
    out = {"rows": rows, "cores": len(os.sched_getaffinity(0)), "command": " ".join(sys.argv)}
    if a.big:
        out["big"] = big_timing(a.big)
        print(f"audit of {a.big:,} items: {out['big']['seconds']:.2f} s", flush=True)
    if a.json:
        from snw_core.fsutil import atomic_write_json
        atomic_write_json(a.json, out)
    print(format_table(out))
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
