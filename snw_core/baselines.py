"""Baselines that justify a Siamese network: a plain classifier's own score, and open-set evaluation.

* :func:`probability_metrics`: the ``classifier`` preset's score 1 - p(good) (the softmax's good-label
  probability), thresholded on val and reported on test, beside the k-NN score every preset gets.
* :func:`hold_out`: train without the train/val items of some defect labels (their test items stay), so
  that ``bench --unseen-labels 11,12`` asks: does the model catch defects it has never been shown?
* :func:`open_set` reads the answer from a finished run: the share of the unseen labels' test defects
  caught and of the test goods passed, at the run's threshold.

>>> prep = hold_out(prepare("default", "default"), ["11", "12"])     # doctest: +SKIP
>>> run, _ = train(prepared=prep)                                   # doctest: +SKIP
>>> open_set(run, ["11", "12"])["defects_caught"]                    # doctest: +SKIP
0.97

See also: ``python -m snw_core bench --presets default,classifier --unseen-labels 11,12``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["probability_metrics", "parse_labels", "hold_out", "open_set", "format_open_set", "print_bench_open_set"]


def probability_metrics(probabilities, labels, split, classes, good_label: str = "0") -> dict:
    """Good/defect metrics of the score 1 - p(good) of a softmax classifier.

    probabilities : float (n, C), rows sum to 1, column j = the j-th label of ``sorted(classes)``
    labels, split : str (n,); classes : the data set's labels. Threshold: best accuracy on val.
    Returns ``{"auroc", "good_defect_accuracy", "escape_rate", "overkill_rate", "threshold"}`` on test.

    >>> p = np.array([[.9, .1], [.8, .2], [.2, .8], [.95, .05], [.1, .9], [.7, .3], [.4, .6]])
    >>> m = probability_metrics(p, ["0", "0", "3", "0", "3", "0", "3"], ["train"] * 3 + ["val"] * 2 + ["test"] * 2,
    ...                         ["0", "3"])
    >>> m["good_defect_accuracy"], m["auroc"]
    (1.0, 1.0)
    """
    from .metrics import auroc, choose_threshold, rates

    p = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels).astype(str)
    split = np.asarray(split).astype(str)
    good_col = sorted(str(c) for c in classes).index(str(good_label))
    score = 1.0 - p[:, good_col]
    is_def = labels != str(good_label)
    val, test = split == "val", split == "test"
    threshold = choose_threshold(score[val], is_def[val])
    r = rates(score[test], is_def[test], threshold)
    return {"auroc": auroc(score[test], is_def[test]), "good_defect_accuracy": r["good_defect_accuracy"],
            "escape_rate": r["escape_rate"], "overkill_rate": r["overkill_rate"], "threshold": float(threshold)}


def parse_labels(text: str | None) -> list[str]:
    """``"11,12"`` -> ``["11", "12"]`` (empty or None -> [])."""
    return [t.strip() for t in str(text or "").split(",") if t.strip()]


def hold_out(prep, unseen):
    """A copy of a :class:`~snw_core.train.Prepared` without the train and val items of the labels ``unseen``.

    The split of every other item is unchanged (the same fractions and seed give the same split as without
    hold-out); the unseen labels' test items stay in the test split. The settings gain ``unseen_labels``.
    Raises :class:`~snw_core.presets.SettingsError` for the good label, a label the data does not have, or
    holding out every defect label.
    """
    from .data import subset
    from .presets import SettingsError
    from .train import Prepared

    ds = prep.ds
    unseen = [str(u) for u in unseen]
    known = set(ds.label_names)
    bad = [u for u in unseen if u not in known]
    if bad:
        raise SettingsError(f"--unseen-labels names {', '.join(bad)}, which the data set does not have; its labels "
                            f"are {', '.join(ds.label_names)}.")
    if ds.good_label in unseen:
        raise SettingsError(f"--unseen-labels cannot hold out the good label {ds.good_label!r}: the references "
                            "are good items.")
    if not set(known) - set(unseen) - {ds.good_label}:
        raise SettingsError("--unseen-labels would hold out every defect label; keep at least one for training.")
    keep = ~(np.isin(ds.labels, unseen) & (prep.split != "test"))
    sub = subset(ds, np.flatnonzero(keep))
    settings = dict(prep.settings, unseen_labels=unseen)
    out = Prepared.__new__(Prepared)
    out.ds, out.settings = sub, settings
    out.split = prep.split[keep]
    out.classes = sub.label_names
    out.class_ids = np.searchsorted(np.array(sorted(out.classes)), sub.labels)
    out.idx = {s: np.flatnonzero(out.split == s) for s in ("train", "val", "test")}
    return out


def open_set(run, unseen) -> dict:
    """Share of the unseen labels' test defects caught and of the test goods passed, at the run's threshold.

    Returns ``{"labels", "n_defect", "defects_caught", "n_good", "goods_passed", "per_label"}`` (per_label:
    label -> share caught), from the run's metrics.json ``per_label`` (test detection rate per label, goods
    passed for the good label) weighted by the test counts of its embeddings.npz.
    """
    from .embed import load_embeddings

    e = load_embeddings(run.file("embeddings.npz"))
    per_label = run.metrics()["per_label"]
    good_label = run.config()["data"]["good_label"]
    test_labels = e["labels"][e["split"] == "test"].astype(str)
    unseen = [str(u) for u in unseen]
    counts = {u: int((test_labels == u).sum()) for u in unseen}
    n_def = sum(counts.values())
    caught = sum(per_label[u] * counts[u] for u in unseen if counts[u])
    n_good = int((test_labels == good_label).sum())
    out = {"labels": unseen, "n_defect": n_def, "defects_caught": caught / n_def if n_def else float("nan"),
           "n_good": n_good, "goods_passed": float(per_label[good_label]) if n_good else float("nan"),
           "per_label": {u: float(per_label[u]) for u in unseen if counts[u]}}
    p_good = run.metrics().get("p_good")
    if p_good and n_def and n_good:     # the classifier's own score, 1 - p(good), at its own val threshold
        good_col = sorted(str(c) for c in run.config()["data"]["labels"]).index(good_label)
        test = e["split"] == "test"
        judged_defect = (1.0 - e["embeddings"][test][:, good_col]) > p_good["threshold"]
        out["p_good_defects_caught"] = float(judged_defect[np.isin(test_labels, unseen)].mean())
        out["p_good_goods_passed"] = float((~judged_defect[test_labels == good_label]).mean())
    return out


def format_open_set(rows: list[dict]) -> str:
    """A small table: preset, unseen labels, their test defects caught, test goods passed."""
    table = [["preset", "unseen labels", "their defects caught", "goods passed"]]
    for r in rows:
        o = r["open_set"]
        table.append([r["preset"], ",".join(o["labels"]),
                      f"{round(o['defects_caught'] * o['n_defect'])}/{o['n_defect']} ({o['defects_caught']:.1%})",
                      f"{round(o['goods_passed'] * o['n_good'])}/{o['n_good']} ({o['goods_passed']:.1%})"])
        if "p_good_defects_caught" in o:
            c, g = o["p_good_defects_caught"], o["p_good_goods_passed"]
            table.append([f"  {r['preset']}, 1 - p(good)", "", f"{round(c * o['n_defect'])}/{o['n_defect']} ({c:.1%})",
                          f"{round(g * o['n_good'])}/{o['n_good']} ({g:.1%})"])
    from .bench import text_table
    return text_table(table, left=2)


def print_bench_open_set(rows: list[dict], runs: dict, unseen, out=None) -> None:
    """``bench --unseen-labels``: every row gains ``open_set``; one table for all presets."""
    import sys

    out = out or sys.stdout
    for r in rows:
        r["open_set"] = open_set(runs[r["preset"]], unseen)
    print(f"\nopen set: trained without the train/val items of labels {', '.join(map(str, unseen))}; "
          "shares of the test split at each run's threshold", file=out)
    print(format_open_set(rows), file=out, flush=True)
