"""Tests of snw_core.metrics: hand-computed values on tiny hand-made arrays."""
import math

import numpy as np
import pytest

from snw_core import metrics as M
from snw_core.pairs import PAIR_DIFFERENT, PAIR_SAME

approx = pytest.approx

# The shared good/defect toy: 8 items, sorted by score
#   score : 1  2  3  4  6  7  8  9
#   class : g  g  d  g  g  d  d  d
# Thresholds (items with score > t are DEFECT) and their errors, worked out by hand:
#   t=0.5 (below min): overkill 4, escape 0 -> 4 errors
#   t=1.5: overkill 3                        -> 3
#   t=2.5: overkill 2                        -> 2   (largest t with no escape)
#   t=3.5: overkill 2, escape 1 (the 3)      -> 3
#   t=5.0: overkill 1, escape 1              -> 2
#   t=6.5: overkill 0, escape 1              -> 1   <- best accuracy 7/8 (unique)
#   t=7.5: escape 2; t=8.5: escape 3; t=9.5 (above max): escape 4
SCORES = np.array([6.0, 1.0, 8.0, 3.0, 2.0, 9.0, 4.0, 7.0])       # deliberately unsorted
DEFECT = np.array([False, False, True, True, False, True, False, True])


# --------------------------------------------------------------------------- pair metrics

def test_pair_convention_is_the_seed_one():
    assert (PAIR_SAME, PAIR_DIFFERENT) == (0, 1)


def test_pair_accuracy_hand_case():
    d = [0.1, 0.49, 0.5, 0.51, 0.3, 0.7]
    y = [0, 0, 0, 1, 1, 1]
    # predicted: same, same, diff (0.5 is not < 0.5), diff, same, diff -> right, right, wrong, right, wrong, right
    assert M.pair_accuracy(d, y) == approx(4 / 6)
    assert M.pair_confusion(d, y) == {"same_as_same": 2, "same_as_diff": 1, "diff_as_same": 1, "diff_as_diff": 2}


def test_pair_accuracy_boundary_is_different():
    assert M.PAIR_CUTOFF == 0.5
    assert M.pair_accuracy([0.5], [PAIR_DIFFERENT]) == 1.0
    assert M.pair_accuracy([0.5], [PAIR_SAME]) == 0.0
    assert M.pair_accuracy([np.nextafter(0.5, 0)], [PAIR_SAME]) == 1.0


def test_pair_accuracy_custom_cutoff_and_types():
    d = np.array([0.1, 0.9], dtype=np.float32)
    y = np.array([0, 1], dtype=np.int8)
    assert M.pair_accuracy(d, y, cutoff=1.0) == 0.5       # 0.9 < 1.0 -> "same", wrong
    counts = M.pair_confusion(d, y, cutoff=1.0)
    assert counts == {"same_as_same": 1, "same_as_diff": 0, "diff_as_same": 1, "diff_as_diff": 0}
    assert all(type(v) is int for v in counts.values())


@pytest.mark.parametrize("fn", [M.pair_accuracy, M.pair_confusion])
def test_pair_metrics_reject_bad_labels(fn):
    with pytest.raises(ValueError, match="pair_labels"):
        fn([0.1, 0.2], [0, 2])


@pytest.mark.parametrize("fn", [M.pair_accuracy, M.pair_confusion])
def test_pair_metrics_reject_length_mismatch(fn):
    with pytest.raises(ValueError, match="length mismatch"):
        fn([0.1, 0.2, 0.3], [0, 1])


def test_pair_accuracy_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        M.pair_accuracy([], [])


def test_pair_accuracy_rejects_nan_cutoff():
    with pytest.raises(ValueError, match="cutoff"):
        M.pair_accuracy([0.1], [0], cutoff=float("nan"))


def test_pair_accuracy_rejects_nan_distance():
    with pytest.raises(ValueError, match="NaN"):
        M.pair_accuracy([float("nan")], [0])


# --------------------------------------------------------------------------- knn scores

REF_1D = np.array([[0.0], [1.0], [3.0], [7.0]])


def test_knn_scores_queries():
    # query 2: distances 1 (to 1), 1 (to 3), 2, 5 -> k=2 mean 1; query 10: 3 (to 7), 7 -> 5
    assert M.knn_scores(REF_1D, [[2.0], [10.0]], k=2) == approx([1.0, 5.0])
    # k=1: distance to the nearest
    assert M.knn_scores(REF_1D, [[2.0], [10.0]], k=1) == approx([1.0, 3.0])


def test_knn_scores_k_larger_than_reference_uses_all():
    # query 2: (2 + 1 + 1 + 5) / 4
    assert M.knn_scores(REF_1D, [[2.0]], k=10) == approx([9 / 4])


def test_knn_scores_exclude_self():
    # self match skipped: 0 -> 1, 1 -> 1, 3 -> 2, 7 -> 4
    assert M.knn_scores(REF_1D, REF_1D, k=1, exclude_self=True) == approx([1, 1, 2, 4])
    # k=2: 0 -> (1+3)/2, 1 -> (1+2)/2, 3 -> (2+3)/2, 7 -> (4+6)/2
    assert M.knn_scores(REF_1D, REF_1D, k=2, exclude_self=True) == approx([2, 1.5, 2.5, 5])
    # k beyond m-1 -> the 3 others: 0 -> 11/3, 1 -> 9/3, 3 -> 9/3, 7 -> 17/3
    assert M.knn_scores(REF_1D, REF_1D, k=10, exclude_self=True) == approx([11 / 3, 3, 3, 17 / 3])
    # without exclude_self each row finds itself at 0
    assert M.knn_scores(REF_1D, REF_1D, k=1) == approx([0, 0, 0, 0])


def test_knn_scores_exclude_self_with_duplicates():
    ref = np.array([[0.0], [0.0], [5.0]])
    # each 0 has its twin at 0; 5's nearest other is at 5
    assert M.knn_scores(ref, ref, k=1, exclude_self=True) == approx([0.0, 0.0, 5.0])


def test_knn_scores_float32_2d_euclidean():
    ref = np.array([[0, 0], [3, 4]], dtype=np.float32)
    out = M.knn_scores(ref, np.array([[0, 0]], dtype=np.float32), k=2)
    assert out.dtype == np.float64 and out.shape == (1,)
    assert out == approx([2.5])            # (0 + 5) / 2


@pytest.mark.parametrize("k", [0, -1, 1.5, True, None])
def test_knn_scores_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be an integer"):
        M.knn_scores(REF_1D, [[2.0]], k=k)


def test_knn_scores_rejects_dimension_mismatch():
    with pytest.raises(ValueError, match="dimension"):
        M.knn_scores(REF_1D, [[2.0, 1.0]])


def test_knn_scores_rejects_empty_reference():
    with pytest.raises(ValueError, match="reference is empty"):
        M.knn_scores(np.zeros((0, 1)), [[2.0]])


def test_knn_scores_rejects_1d_input():
    with pytest.raises(ValueError, match="2-D"):
        M.knn_scores([0.0, 1.0], [[2.0]])


def test_knn_scores_rejects_nan_embeddings():
    with pytest.raises(ValueError, match="NaN"):
        M.knn_scores(REF_1D, [[float("nan")]])


def test_knn_scores_exclude_self_needs_queries_equal_reference():
    with pytest.raises(ValueError, match="reference itself"):
        M.knn_scores(REF_1D, REF_1D + 1, exclude_self=True)


def test_knn_scores_exclude_self_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2"):
        M.knn_scores([[1.0]], [[1.0]], exclude_self=True)


# --------------------------------------------------------------------------- thresholds

def test_best_accuracy_threshold():
    t = M.choose_threshold(SCORES, DEFECT)
    assert t == approx(6.5)
    assert M.rates(SCORES, DEFECT, t)["good_defect_accuracy"] == approx(7 / 8)


def test_best_accuracy_tie_goes_to_fewest_escapes():
    # goods 1, 3; defects 2, 4: t=1.5 (1 overkill) and t=3.5 (1 escape) both 3/4 -> the lower one
    assert M.choose_threshold([1, 2, 3, 4], [False, True, False, True]) == approx(1.5)


def test_best_accuracy_does_not_depend_on_order():
    perm = np.array([3, 0, 7, 5, 1, 6, 2, 4])
    assert M.choose_threshold(SCORES[perm], DEFECT[perm]) == M.choose_threshold(SCORES, DEFECT)


def test_best_accuracy_with_repeated_scores():
    # score 2 is shared by a good and a defect: cutting at 1.5 -> 1 overkill (the good 2);
    # at 2.5 -> 1 escape (the defect 2); ties -> the lower, 1.5. Perfect split impossible.
    s = [1, 2, 2, 3]
    d = [False, False, True, True]
    assert M.choose_threshold(s, d) == approx(1.5)


def test_best_accuracy_all_scores_equal():
    # both candidates (below: all defect; above: all good) make one error -> the lower, min - 1
    assert M.choose_threshold([1.0, 1.0], [False, True]) == approx(0.0)


def test_zero_escape_threshold():
    # lowest defect score 3, next lower score 2 -> 2.5; no escapes, 2 overkills
    t = M.choose_threshold(SCORES, DEFECT, method="zero_escape")
    assert t == approx(2.5)
    assert M.confusion(SCORES, DEFECT, t) == {"tp": 4, "fn": 0, "fp": 2, "tn": 2}


def test_zero_escape_when_a_defect_has_the_lowest_score():
    # goods 2, 3; defects 1, 5: nothing below 1 -> below the minimum by half the first gap: 1 - 0.5
    t = M.choose_threshold([2, 1, 3, 5], [False, True, False, True], method="zero_escape")
    assert t == approx(0.5)
    assert M.rates([2, 1, 3, 5], [False, True, False, True], t)["escape_rate"] == 0.0


@pytest.mark.parametrize("max_escape, expected", [
    (0.0, 2.5),     # = zero_escape
    (0.2, 2.5),     # 0.2 * 4 defects = 0.8 -> 0 escapes allowed
    (0.25, 6.5),    # 1 escape allowed: the largest such threshold is just below the defect 7
    (0.5, 7.5),     # 2 escapes allowed: just below the defect 8
    (1.0, 9.5),     # everything may escape: above the maximum (9 + half the last gap)
])
def test_max_escape_threshold(max_escape, expected):
    t = M.choose_threshold(SCORES, DEFECT, method="max_escape", max_escape=max_escape)
    assert t == approx(expected)
    assert M.rates(SCORES, DEFECT, t)["escape_rate"] <= max_escape


def test_threshold_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown threshold method"):
        M.choose_threshold(SCORES, DEFECT, method="youden")


def test_threshold_rejects_no_defects():
    with pytest.raises(ValueError, match="no defective items"):
        M.choose_threshold([1.0, 2.0], [False, False])


def test_threshold_rejects_no_goods():
    with pytest.raises(ValueError, match="no good items"):
        M.choose_threshold([1.0, 2.0], [True, True])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.1"])
def test_threshold_rejects_bad_max_escape(bad):
    with pytest.raises(ValueError, match="max_escape"):
        M.choose_threshold(SCORES, DEFECT, method="max_escape", max_escape=bad)


def test_threshold_rejects_length_mismatch():
    with pytest.raises(ValueError, match="length mismatch"):
        M.choose_threshold(SCORES, DEFECT[:-1])


def test_threshold_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        M.choose_threshold([], [])


def test_threshold_rejects_non_boolean_truth():
    with pytest.raises(ValueError, match="boolean"):
        M.choose_threshold([1.0, 2.0], [0, 2])


def test_threshold_rejects_infinite_scores():
    with pytest.raises(ValueError, match="infinite"):
        M.choose_threshold([1.0, float("inf")], [False, True])


# --------------------------------------------------------------------------- confusion, rates, ROC

def test_confusion_and_rates_at_best_threshold():
    # t=6.5: defects 7 8 9 caught (tp 3), defect 3 escapes (fn 1), goods 1 2 4 6 pass (tn 4)
    c = M.confusion(SCORES, DEFECT, 6.5)
    assert c == {"tp": 3, "fn": 1, "fp": 0, "tn": 4}
    assert all(type(v) is int for v in c.values())
    assert M.rates(SCORES, DEFECT, 6.5) == approx(
        {"good_defect_accuracy": 7 / 8, "escape_rate": 1 / 4, "overkill_rate": 0.0})


def test_score_equal_to_threshold_is_good():
    # the good scored 6 with t=6 is passed (strict >); with t=5.9 it is an overkill
    assert M.confusion(SCORES, DEFECT, 6.0)["fp"] == 0
    assert M.confusion(SCORES, DEFECT, 5.9)["fp"] == 1
    assert M.rates(SCORES, DEFECT, 5.9)["overkill_rate"] == approx(1 / 4)


def test_rates_nan_without_a_class():
    r = M.rates([1.0, 2.0], [False, False], 1.5)
    assert math.isnan(r["escape_rate"])
    assert r["overkill_rate"] == 0.5 and r["good_defect_accuracy"] == 0.5
    assert all(type(v) is float for v in r.values())


def test_confusion_accepts_int_truth():
    assert M.confusion([1.0, 2.0], [0, 1], 1.5) == {"tp": 1, "fn": 0, "fp": 0, "tn": 1}


def test_confusion_rejects_nan_threshold():
    with pytest.raises(ValueError, match="threshold"):
        M.confusion(SCORES, DEFECT, float("nan"))


def test_rates_reject_length_mismatch():
    with pytest.raises(ValueError, match="length mismatch"):
        M.rates(SCORES[:3], DEFECT, 1.0)


def test_auroc_hand_value():
    # P(defect score > good score): defect 3 beats goods 1, 2 (2 of 4); 7, 8, 9 beat all 4 -> 14/16
    assert M.auroc(SCORES, DEFECT) == approx(14 / 16)
    assert M.auroc([0, 1, 10, 11], [False, False, True, True]) == 1.0


def test_roc_curve_matches_auroc():
    fpr, tpr, thr = M.roc(SCORES, DEFECT)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert len(fpr) == len(tpr) == len(thr)
    assert np.trapezoid(tpr, fpr) == approx(14 / 16)


@pytest.mark.parametrize("seed", range(6))
def test_roc_and_auroc_equal_sklearn_with_and_without_ties(seed):
    from sklearn.metrics import roc_auc_score, roc_curve
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    y = rng.random(n) < rng.uniform(0.1, 0.9)
    y[:2] = [True, False]                                           # both classes
    s = rng.normal(size=n) + y * rng.uniform(0, 2)
    if seed % 2:
        s = np.round(s, 1)                                          # many ties
    want_fpr, want_tpr, want_thr = roc_curve(y, s)
    fpr, tpr, thr = M.roc(s, y)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)
    np.testing.assert_allclose(thr, want_thr)
    assert M.auroc(s, y) == approx(roc_auc_score(y, s), abs=1e-12)


def test_auroc_nan_with_one_class():
    assert math.isnan(M.auroc([1.0, 2.0], [False, False]))


def test_roc_rejects_one_class():
    with pytest.raises(ValueError, match="both good and defective"):
        M.roc([1.0, 2.0], [True, True])


# --------------------------------------------------------------------------- labels

def test_natural_key_order():
    names = ["NG_10", "10", "NG_2", "2", "0", "1", "OK", "NG_07", "NG_7"]
    assert sorted(names, key=M.natural_key) == ["0", "1", "2", "10", "NG_2", "NG_07", "NG_7", "NG_10", "OK"]
    assert sorted(["NG_10", "NG_2"], key=M.natural_key) == ["NG_2", "NG_10"]
    assert M.natural_key("2") < M.natural_key("10")


def test_natural_key_pads_are_numbers():
    # "NG_07" and "NG_7" compare equal as numbers, the raw string breaks the tie; both before NG_10
    assert sorted(["NG_10", "NG_7", "NG_07", "NG_2"], key=M.natural_key) == ["NG_2", "NG_07", "NG_7", "NG_10"]


def test_per_label_rates_hand_case():
    labels = ["0", "0", "0", "10", "10", "2", "2", "1"]
    judged = [False, False, True, True, False, True, True, False]
    # good "0": 2 of 3 passed; "1": 0 of 1 detected; "2": 2 of 2; "10": 1 of 2
    out = M.per_label_rates(labels, judged)
    assert list(out) == ["0", "1", "2", "10"]
    assert out == approx({"0": 2 / 3, "1": 0.0, "2": 1.0, "10": 0.5})
    assert all(type(v) is float for v in out.values())


def test_per_label_rates_custom_good_label_first():
    out = M.per_label_rates(["NG_10", "OK", "NG_2", "OK"], [True, False, False, False], good_label="OK")
    assert list(out) == ["OK", "NG_2", "NG_10"]
    assert out == {"OK": 1.0, "NG_2": 0.0, "NG_10": 1.0}


def test_per_label_rates_rejects_length_mismatch():
    with pytest.raises(ValueError, match="length mismatch"):
        M.per_label_rates(["0", "1"], [True])


def test_guess_labels_weighted_vote():
    ref = [[0.0], [3.0], [3.5]]
    lab = ["3", "5", "5"]
    # query 0.5, k=3: distances 0.5 ("3"), 2.5, 3.0 ("5") -> weights 2 vs 0.4 + 1/3:
    # the plain majority would say "5", the weighted vote says "3" with share 2 / (2 + 0.4 + 1/3)
    guess, conf = M.guess_labels(ref, lab, [[0.5]], k=3)
    assert guess.tolist() == ["3"]
    assert conf == approx([2 / (2 + 0.4 + 1 / 3)], rel=1e-6)
    # query 4: nearest 3.5 and 3.0, k=2 -> unanimous "5"
    guess, conf = M.guess_labels(ref, lab, [[4.0]], k=2)
    assert guess.tolist() == ["5"] and conf == approx([1.0])


def test_guess_labels_tie_goes_to_nearest():
    # "Z" at distance 1 (weight 1) vs two "B" at distance 2 (weight 1/2 + 1/2): a tie -> "Z", the nearest
    guess, conf = M.guess_labels([[1.0], [2.0], [-2.0]], ["Z", "B", "B"], [[0.0]], k=3)
    assert guess.tolist() == ["Z"]
    assert conf == approx([0.5], rel=1e-6)


def test_guess_labels_exclude_self_and_k_beyond_reference():
    ref = np.array([[0.0], [0.1], [5.0], [5.1]])
    lab = np.array(["a", "a", "b", "b"])
    guess, _ = M.guess_labels(ref, lab, ref, k=1, exclude_self=True)
    assert guess.tolist() == ["a", "a", "b", "b"]
    guess, conf = M.guess_labels(ref, lab, [[0.05]], k=99)   # all 4 vote; the near "a"s dominate
    assert guess.tolist() == ["a"] and 0.5 < conf[0] < 1.0


def test_guess_labels_rejects_label_length_mismatch():
    with pytest.raises(ValueError, match="length mismatch"):
        M.guess_labels([[0.0], [1.0]], ["a"], [[0.0]])


def test_guess_labels_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        M.guess_labels([[0.0], [1.0]], ["a", "b"], [[0.0]], k=0)


def test_pin_accuracy_hand_case():
    # defects: "3" right, "7" right, "7" wrong, "12" right -> 3/4; the good item does not count
    assert M.pin_accuracy(["0", "3", "7", "7", "12"], ["3", "3", "7", "2", "12"]) == 0.75
    assert math.isnan(M.pin_accuracy(["0", "0"], ["0", "3"]))
    assert M.pin_accuracy(["OK", "NG_1"], ["NG_1", "NG_1"], good_label="OK") == 1.0


def test_pin_accuracy_rejects_length_mismatch():
    with pytest.raises(ValueError, match="length mismatch"):
        M.pin_accuracy(["3"], ["3", "3"])


# --------------------------------------------------------------------------- evaluate_embeddings

def _toy_table():
    """Goods jitter around the origin, defect "3" near (10, 0), defect "12" near (0, 10)."""
    rng = np.random.default_rng(0)
    rows, labels, split = [], [], []
    for name, n_good, n_def in (("train", 12, 3), ("val", 5, 2), ("test", 5, 2)):
        rows.append(rng.normal(0, 0.1, (n_good, 2)))
        labels += ["0"] * n_good
        for lab, centre in (("3", (10.0, 0.0)), ("12", (0.0, 10.0))):
            rows.append(np.asarray(centre) + rng.normal(0, 0.1, (n_def, 2)))
            labels += [lab] * n_def
        split += [name] * (n_good + 2 * n_def)
    return np.concatenate(rows).astype(np.float32), np.array(labels), np.array(split)


EXPECTED_KEYS = {"good_defect_accuracy", "escape_rate", "overkill_rate", "auroc", "threshold", "per_label",
                 "pin_accuracy", "n_train", "n_val", "n_test"}


def test_evaluate_embeddings_obvious_case():
    emb, labels, split = _toy_table()
    metrics, scores = M.evaluate_embeddings(emb, labels, split)
    assert set(metrics) == EXPECTED_KEYS
    assert metrics["good_defect_accuracy"] == 1.0
    assert metrics["escape_rate"] == 0.0
    assert metrics["overkill_rate"] == 0.0
    assert metrics["auroc"] == 1.0
    assert metrics["pin_accuracy"] == 1.0
    assert metrics["per_label"] == {"0": 1.0, "3": 1.0, "12": 1.0}
    assert list(metrics["per_label"]) == ["0", "3", "12"]
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (18, 9, 9)
    assert 0.5 < metrics["threshold"] < 9.0
    assert scores.shape == (36,) and scores.dtype == np.float64
    assert np.all(scores[labels == "0"] < 1.0) and np.all(scores[labels != "0"] > 9.0)
    assert type(metrics["threshold"]) is float and type(metrics["n_test"]) is int


def test_evaluate_embeddings_scores_by_hand():
    # 1-D: train goods 0, 1, 3 (reference), train defect 10 ("5"); val good 0.5, val defect 9 ("5");
    # test good 2, test defect 11 ("5").  k=1, exclude_self for the train goods:
    #   train goods: 0 -> 1, 1 -> 1, 3 -> 2; train defect 10 -> 7; val 0.5 -> 0.5, 9 -> 6; test 2 -> 1, 11 -> 8
    emb = np.array([[0.0], [1.0], [3.0], [10.0], [0.5], [9.0], [2.0], [11.0]])
    labels = ["0", "0", "0", "5", "0", "5", "0", "5"]
    split = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    metrics, scores = M.evaluate_embeddings(emb, labels, split, k=1, pin_k=1)
    assert scores == approx([1, 1, 2, 7, 0.5, 6, 1, 8])
    assert metrics["threshold"] == approx(3.25)          # midpoint of the val scores 0.5 and 6
    assert metrics["pin_accuracy"] == 1.0
    m0, _ = M.evaluate_embeddings(emb, labels, split, k=1, threshold_method="zero_escape")
    assert m0["threshold"] == approx(3.25)               # the same cut: just below the val defect
    # max_escape=1.0 puts the cut above every val score (6 + half the gap 5.5): the test defect escapes
    m2, _ = M.evaluate_embeddings(emb, labels, split, k=1, threshold_method="max_escape", max_escape=1.0)
    assert m2["threshold"] == approx(6 + 5.5 / 2) and m2["escape_rate"] == 1.0


def test_evaluate_embeddings_pin_nan_without_train_defects():
    emb = np.array([[0.0], [1.0], [0.5], [9.0], [2.0], [11.0]])
    labels = ["0", "0", "0", "5", "0", "5"]
    split = ["train", "train", "val", "val", "test", "test"]
    metrics, _ = M.evaluate_embeddings(emb, labels, split, k=1)
    assert math.isnan(metrics["pin_accuracy"])
    assert metrics["good_defect_accuracy"] == 1.0


def test_evaluate_embeddings_rejects_val_without_defects():
    emb, labels, split = _toy_table()
    keep = ~((split == "val") & (labels != "0"))
    with pytest.raises(ValueError, match="val split: .*no defective items"):
        M.evaluate_embeddings(emb[keep], labels[keep], split[keep])


def test_evaluate_embeddings_rejects_val_without_goods():
    emb, labels, split = _toy_table()
    keep = ~((split == "val") & (labels == "0"))
    with pytest.raises(ValueError, match="val split: .*no good items"):
        M.evaluate_embeddings(emb[keep], labels[keep], split[keep])


def test_evaluate_embeddings_rejects_unknown_split_value():
    emb, labels, split = _toy_table()
    split = split.copy()
    split[0] = "validation"
    with pytest.raises(ValueError, match="unknown values"):
        M.evaluate_embeddings(emb, labels, split)


def test_evaluate_embeddings_rejects_length_mismatch():
    emb, labels, split = _toy_table()
    with pytest.raises(ValueError, match="length mismatch"):
        M.evaluate_embeddings(emb, labels[:-1], split)


def test_evaluate_embeddings_rejects_empty_test():
    emb, labels, split = _toy_table()
    keep = split != "test"
    with pytest.raises(ValueError, match="test split is empty"):
        M.evaluate_embeddings(emb[keep], labels[keep], split[keep])


def test_evaluate_embeddings_rejects_too_few_reference_goods():
    emb, labels, split = _toy_table()
    keep = ~((split == "train") & (labels == "0"))
    keep[np.flatnonzero((split == "train") & (labels == "0"))[0]] = True     # one train good left
    with pytest.raises(ValueError, match="at least 2 good"):
        M.evaluate_embeddings(emb[keep], labels[keep], split[keep])


@pytest.mark.parametrize("param", ["k", "pin_k"])
def test_evaluate_embeddings_rejects_bad_k(param):
    emb, labels, split = _toy_table()
    with pytest.raises(ValueError, match=f"{param} must be an integer"):
        M.evaluate_embeddings(emb, labels, split, **{param: 0})


def test_evaluate_embeddings_rejects_unknown_threshold_method():
    emb, labels, split = _toy_table()
    with pytest.raises(ValueError, match="unknown threshold method"):
        M.evaluate_embeddings(emb, labels, split, threshold_method="best")


def test_evaluate_embeddings_rejects_non_2d_embeddings():
    with pytest.raises(ValueError, match="2-D"):
        M.evaluate_embeddings(np.zeros(4), ["0"] * 4, ["train"] * 4)


@pytest.mark.parametrize("k", [1, 3, 5, 40])
def test_neighbours_numpy_path_matches_sklearn(monkeypatch, k):
    from snw_core import metrics as M
    rng = np.random.default_rng(k)
    ref = rng.normal(size=(30, 8)).astype(np.float32)
    ref[7] = ref[3]                                   # an exact duplicate: ties
    q = np.vstack([rng.normal(size=(4, 8)), ref[3:4]]).astype(np.float32)
    d_np, i_np = M._neighbours(ref, q, k, exclude_self=False)
    monkeypatch.setattr(M, "_BRUTE_MAX", 0)          # force scikit-learn
    d_sk, i_sk = M._neighbours(ref, q, k, exclude_self=False)
    assert d_np.shape == d_sk.shape == (5, min(k, 30))
    np.testing.assert_allclose(d_np, d_sk, rtol=1e-6, atol=1e-6)
    # same neighbours up to the order of exact ties
    np.testing.assert_allclose(np.linalg.norm(q[:, None] - ref[i_np], axis=2), d_sk, rtol=1e-5, atol=1e-6)
    assert M.knn_scores(ref, q, k=k).shape == (5,)


def test_unusable_reasons_flag_a_run_no_better_than_a_coin_at_one_job():
    from snw_core.metrics import unusable_note, unusable_reasons
    assert unusable_reasons({"overkill_rate": 1.0, "escape_rate": 0.0}) == ["rejects 100% of the good test items"]
    assert unusable_reasons({"overkill_rate": 0.0, "escape_rate": 0.5}) == ["passes 50% of the defective test items"]
    assert unusable_reasons({"overkill_rate": 0.235, "escape_rate": 0.073}) == []     # poor, but it judges
    assert unusable_reasons({"overkill_rate": float("nan")}) == [] and unusable_reasons({}) == []
    assert unusable_note({"overkill_rate": 0.01, "escape_rate": 0.0}) is None
    assert "rejects 60% of the good test items and passes 70%" in unusable_note({"overkill_rate": 0.6,
                                                                                "escape_rate": 0.7})


def test_training_data_the_gate_left_out_is_named():
    from snw_core.metrics import faulty_data_note
    note = faulty_data_note({"gate": {"images_set_aside": 1, "local_set_aside": 4}}, "run-7")
    assert note.startswith("The training data holds 1 image far from every other image")
    assert "4 val items filed as good" in note and "`python -m snw_core audit run-7`" in note
    assert "images far" not in faulty_data_note({"gate": {"local_set_aside": 2}})
    for fine in ({}, {"gate": {}}, {"gate": {"images_set_aside": 0, "local_set_aside": 0}},
                 {"gate": {"images_set_aside": None}}):          # older runs have no counts
        assert faulty_data_note(fine) is None


def test_a_twin_that_ranks_worse_than_chance_is_named():
    from snw_core.metrics import weak_twin_note
    note = weak_twin_note({"auroc": 0.168, "good_defect_accuracy": 0.785})
    assert "worse than chance (AUROC 0.17)" in note and "local and patch evidence" in note
    for fine in ({"auroc": 0.5}, {"auroc": 0.99}, {"auroc": float("nan")}, {"auroc": None}, {}):
        assert weak_twin_note(fine) is None


def test_a_twin_its_epoch_budget_cut_short_is_named():
    """The strong texture's run of seed 1 with the default preset's 10 epochs: best validation loss in its last epoch
    (11, take-off after 1), best weights kept, test AUROC 0.946. A run that early stopping ended, that ranks well, that
    the user stopped, or that has no early stopping (the seed study) gets no note; below 0.5 the weak-twin note
    speaks."""
    from snw_core.metrics import short_budget_note
    short = {"auroc": 0.9456, "best_epoch": 11, "epochs_run": 11, "best_weights_restored": True, "state": "done"}
    note = short_budget_note(short)
    assert "epoch 11" in note and "AUROC 0.946" in note and "--epochs" in note
    for fine in ({**short, "best_epoch": 6}, {**short, "auroc": 0.99}, {**short, "state": "stopped"},
                 {**short, "best_weights_restored": False}, {**short, "auroc": 0.3}, {**short, "auroc": None},
                 {**short, "epochs_run": None}, {}):
        assert short_budget_note(fine) is None, fine


def test_defects_filed_as_good_are_not_good_references():
    """A defect filed as good lies with its own kind in the embedding; as a good reference it would pass every
    defect like it. The vote of its nearest train items leaves it out; evaluate_embeddings and the Judge use the
    rest."""
    from snw_core.judge import Judge
    from snw_core.metrics import doubtful_goods, evaluate_embeddings
    rng = np.random.default_rng(0)
    goods = rng.normal(0, 0.3, (60, 4))
    pins = [rng.normal(0, 0.3, (20, 4)) + c for c in (np.array([4.0, 0, 0, 0]), np.array([0, 4.0, 0, 0]))]
    emb = np.concatenate([goods, *pins])
    labels = np.array(["0"] * 60 + ["1"] * 20 + ["2"] * 20)
    split = np.array((["train"] * 30 + ["val"] * 15 + ["test"] * 15) + (["train"] * 10 + ["val"] * 5 + ["test"] * 5) * 2)
    filed = labels.copy()
    filed[[60, 61, 80]] = "0"                              # three train defects filed as good
    left = doubtful_goods(emb, filed, split)
    assert np.flatnonzero(left).tolist() == [60, 61, 80]
    assert not doubtful_goods(emb, labels, split).any()     # correct labels: nothing left out
    m_all, s_all = evaluate_embeddings(emb, filed, split, k=3)
    m_voted, s_voted = evaluate_embeddings(emb, filed, split, k=3, left_out=left)
    test_def = (split == "test") & (labels != "0")
    assert s_voted[test_def].min() > 2.0 > s_all[test_def].min()   # the filed-as-good defects no longer vouch
    assert m_voted["escape_rate"] == 0.0 and m_voted["auroc"] >= m_all["auroc"]
    e = {"embeddings": emb.astype(np.float32), "labels": filed, "split": split, "scores": s_voted, "ref_left_out": left}
    cfg = {"data": {"good_label": "0", "image_shape": [2, 2]}, "settings": {"k": 3}}
    j = Judge.from_parts(cfg, {"threshold": m_voted["threshold"]}, e)
    assert len(j.ref_good) == 30 and not set(j.ref_good_idx.tolist()) & {60, 61, 80}
    del e["ref_left_out"]                                   # a run trained before the vote: every train good
    assert len(Judge.from_parts(cfg, {"threshold": 1.0}, e).ref_good) == 33


def test_the_vote_keeps_every_good_when_the_twin_cannot_tell_goods_at_all():
    from snw_core.metrics import doubtful_goods
    rng = np.random.default_rng(1)
    emb = rng.normal(0, 0.1, (45, 3))                      # one cluster: 5 goods among 40 defects
    labels = np.array(["0"] * 5 + ["1"] * 40)
    split = np.array(["train"] * 45)
    assert doubtful_goods(emb, labels, split, k=3, share=0.8).sum() == 0       # all 5 would go: none does
    emb[:5] += 10.0                                        # goods apart: nothing to doubt either
    assert doubtful_goods(emb, labels, split, k=3).sum() == 0


def test_the_command_line_warnings_are_every_note_a_run_calls_for():
    from snw_core.metrics import faulty_data_note, run_warnings, short_budget_note, unusable_note, weak_twin_note
    m = {"overkill_rate": 1.0, "escape_rate": 0.0, "auroc": 0.3, "gate": {"images_set_aside": 2}}
    assert run_warnings(m, "r9") == [unusable_note(m), weak_twin_note(m), faulty_data_note(m, "r9")]
    short = {"auroc": 0.94, "best_epoch": 12, "epochs_run": 12, "best_weights_restored": True}
    assert run_warnings(short) == [short_budget_note(short)]
    assert run_warnings({"overkill_rate": 0.0, "escape_rate": 0.0, "auroc": 0.99}) == []
    assert run_warnings(None) == []                        # a run without metrics yet
