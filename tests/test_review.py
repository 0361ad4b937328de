"""snw_core.review: operating points, presets, per-pin tables, error lists, ROC points (hand-computed values)."""
import math

import numpy as np
import pytest

from snw_core import review as R
from snw_core.pairs import make_pairs

# 10 items. val: goods 0.1 0.2 0.6, defects 0.5 0.9 (pin 3) 0.3 (pin 10)
#          test: goods 0.15 0.7, defects 0.4 (pin 3) 0.8 (pin 10)
SCORES = np.array([0.1, 0.2, 0.6, 0.5, 0.9, 0.3, 0.15, 0.7, 0.4, 0.8])
LABELS = np.array(["0", "0", "0", "3", "3", "10", "0", "0", "3", "10"])
SPLIT = np.array(["val"] * 6 + ["test"] * 4)


def test_operating_point_counts_and_rates():
    op = R.operating_point(SCORES, LABELS, SPLIT, threshold=0.45)
    # test: goods 0.15 (pass) 0.7 (overkill); defects 0.4 (escape) 0.8 (caught)
    assert (op["n"], op["n_good"], op["n_defect"]) == (4, 2, 2)
    assert (op["escapes"], op["detected"], op["overkills"], op["passed"]) == (1, 1, 1, 1)
    assert op["accuracy"] == 0.5 and op["escape_rate"] == 0.5 and op["overkill_rate"] == 0.5
    assert op["detection_rate"] == 0.5
    op = R.operating_point(SCORES, LABELS, SPLIT, threshold=0.3, part="val")
    # val: goods 0.1 0.2 pass, 0.6 overkill; defects 0.5 0.9 caught, 0.3 == threshold -> good (escape)
    assert (op["escapes"], op["overkills"], op["n_defect"], op["n_good"]) == (1, 1, 3, 3)
    assert op["accuracy"] == pytest.approx(4 / 6)


def test_operating_point_without_defects_gives_nan_rates():
    op = R.operating_point([0.1, 0.2], ["0", "0"], ["test", "test"], 0.15)
    assert op["overkill_rate"] == 0.5 and math.isnan(op["escape_rate"]) and math.isnan(op["detection_rate"])


def test_sentences_and_pct():
    op = {"escapes": 3, "n_defect": 480, "escape_rate": 3 / 480, "overkills": 12, "n_good": 240,
          "overkill_rate": 12 / 240}
    assert R.escape_sentence(op) == "3 of 480 defective items passed as good (0.6 %)"
    assert R.overkill_sentence(op) == "12 of 240 good items rejected as defective (5.0 %)"
    assert R.pct(float("nan")) == "n/a" and R.pct(0.25) == "25.0 %"


def test_presets_on_val():
    # val sorted: 0.1g 0.2g 0.3d 0.5d 0.6g 0.9d
    # best accuracy: cut at 0.25 -> 1 overkill (0.6) , 0 escapes -> 5/6; cut 0.75 -> 2 escapes. lowest best = 0.25
    assert R.preset_threshold(R.PRESET_BEST, SCORES, LABELS, SPLIT) == pytest.approx(0.25)
    assert R.preset_threshold(R.PRESET_ZERO, SCORES, LABELS, SPLIT) == pytest.approx(0.25)
    # 1 of 3 escapes allowed (1/3): largest threshold with <= 1 escape is between 0.3 and 0.5 -> 0.4
    assert R.preset_threshold(R.PRESET_MAX_ESCAPE, SCORES, LABELS, SPLIT, max_escape=0.34) == pytest.approx(0.4)
    # 2 of 3 allowed: between 0.5 and 0.6 -> 0.55; but 0.6 is good so 0.75 also has 2 escapes -> largest 0.75
    assert R.preset_threshold(R.PRESET_MAX_ESCAPE, SCORES, LABELS, SPLIT, max_escape=0.7) == pytest.approx(0.75)
    assert R.preset_threshold(R.PRESET_STORED, SCORES, LABELS, SPLIT, stored=0.123) == 0.123


def test_preset_errors():
    with pytest.raises(ValueError, match="stored"):
        R.preset_threshold(R.PRESET_STORED, SCORES, LABELS, SPLIT, stored=None)
    with pytest.raises(ValueError, match="unknown"):
        R.preset_threshold("nonsense", SCORES, LABELS, SPLIT)
    with pytest.raises(ValueError):
        R.preset_threshold(R.PRESET_BEST, SCORES, np.array(["0"] * 10), SPLIT)   # no defects on val
    with pytest.raises(ValueError, match="1-D"):
        R.operating_point(SCORES, LABELS[:3], SPLIT, 0.5)


def test_slider_range_covers_scores_on_a_round_grid():
    assert R.slider_range([0.013, 0.4771], n_steps=100) == (0.005, 0.485, 0.005)
    lo, hi, step = R.slider_range(SCORES)
    assert lo < 0.1 and hi > 0.9 and step == 0.001
    assert R.slider_range([2.0, 2.0])[2] > 0          # one value: still a usable range


def test_per_pin_table():
    df = R.per_pin_table(SCORES, LABELS, SPLIT, threshold=0.45)
    assert df["label"].tolist() == ["0", "3", "10"]        # good first, pins in natural order
    assert df["what"].tolist() == ["good", "pin 3", "pin 10"]
    assert df["items"].tolist() == [2, 1, 1]
    assert df["caught"].tolist() == [1, 0, 1]               # good row: passed; pins: detected
    assert df["missed"].tolist() == [1, 1, 0]
    assert df["rate"].tolist() == [0.5, 0.0, 1.0]


def test_error_items_order():
    esc = R.error_items(SCORES, LABELS, SPLIT, 0.45, "escape")
    ovk = R.error_items(SCORES, LABELS, SPLIT, 0.45, "overkill")
    assert esc.tolist() == [8] and ovk.tolist() == [7]
    val_esc = R.error_items(SCORES, LABELS, SPLIT, 0.95, "escape", part="val")
    assert val_esc.tolist() == [5, 3, 4]                    # lowest score (most confident miss) first
    val_ovk = R.error_items(SCORES, LABELS, SPLIT, 0.0, "overkill", part="val")
    assert val_ovk.tolist() == [2, 1, 0]                    # highest score first
    with pytest.raises(ValueError):
        R.error_items(SCORES, LABELS, SPLIT, 0.5, "both")


def test_roc_points_match_operating_points():
    x, y = R.roc_points(SCORES, LABELS, SPLIT)
    # test scores falling: 0.8d 0.7g 0.4d 0.15g
    assert x.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert y.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    op = R.operating_point(SCORES, LABELS, SPLIT, 0.5)
    assert (op["overkill_rate"], op["detection_rate"]) == (0.5, 0.5)
    with pytest.raises(ValueError):
        R.roc_points(SCORES, np.array(["0"] * 10), SPLIT)


def test_pair_review_uses_the_trainers_test_pairs():
    rng = np.random.default_rng(0)
    labels = np.array(["0", "1", "2"] * 8)
    split = np.array((["train"] * 3 + ["test"] * 3 + ["val"] * 2) * 3)
    emb = rng.normal(size=(labels.size, 4))
    out = R.pair_review(emb, labels, split, seed=5)
    te = np.flatnonzero(split == "test")
    ia, ib, y = make_pairs(labels[te], 10, seed=8)        # seed + 3, as the trainer's test pairs
    d = np.linalg.norm(emb[te][ia] - emb[te][ib], axis=1)
    assert out["n_pairs"] == y.size
    assert out["pair_accuracy"] == pytest.approx(np.mean((d < 0.5) == (y == 0)))
    assert out["same_as_same"] + out["same_as_diff"] == int((y == 0).sum())


def test_pair_review_hand_values():
    # two test items of labels a, b at distance 0.3 (< 0.5 -> "same"), identical items otherwise
    emb = np.array([[0.0], [0.3]])
    out = R.pair_review(emb, ["a", "b"], ["test", "test"], seed=0, n_per_image=1)
    # each item: one positive with itself (d 0, judged same), one negative with the other (d 0.3, judged same)
    assert out == {"pair_accuracy": 0.5, "n_pairs": 4, "same_as_same": 2, "same_as_diff": 0,
                   "diff_as_same": 2, "diff_as_diff": 0}


def test_rate_color():
    assert R.rate_color(1.0) == "#b7e4c7" and R.rate_color(0.2) == "#f4b6b6"
    assert R.rate_color(0.85) == "#ffe099"
    assert R.rate_color(None) == "#eeeeee"


def test_figures_build():
    fig = R.roc_figure(SCORES, LABELS, SPLIT, 0.45, stored=0.25)
    assert fig.layout.xaxis.title.text == "overkill rate (false reject)"
    assert fig.layout.yaxis.title.text == "detection rate (1 - escape rate)"
    current = fig.data[-1]
    assert (current.x[0], current.y[0]) == (0.5, 0.5)
    cm = R.confusion_figure([[3, 1], [0, 4]], ["good", "defect"], ["good", "defect"])
    assert "75.0 %" in cm.data[0].text[0][0] and cm.data[0].z[0][1] == -0.25


def test_embedding_scatter_traces_and_selection_mapping():
    xy = np.arange(20, dtype=float).reshape(10, 2)
    fig, trace_rows = R.embedding_scatter(xy, LABELS, SPLIT, SCORES, part="all")
    # pins first (natural order 3, 10), the good items drawn last (on top) but listed first in the legend
    assert [t.name for t in fig.data] == ["pin 3", "pin 10", "good"]
    assert [r.tolist() for r in trace_rows] == [[3, 4, 8], [5, 9], [0, 1, 2, 6, 7]]
    good = fig.data[-1]
    assert good.marker.color == "#8c8c8c" and good.marker.size < fig.data[0].marker.size
    assert good.marker.opacity < fig.data[0].marker.opacity and good.legendrank < fig.data[0].legendrank
    assert good.customdata[3].tolist() == [6.0, 0.15]                # row and score for the hover
    assert fig.layout.xaxis.title.text == "UMAP 1 (arbitrary units)"
    fig, trace_rows = R.embedding_scatter(xy, LABELS, SPLIT, SCORES, part="test", method="PCA")
    assert [r.tolist() for r in trace_rows] == [[8], [9], [6, 7]]
    assert fig.layout.yaxis.title.text == "PCA 2 (embedding units)"
    points = [{"curve_number": 2, "point_index": 1}, {"curve_number": 0, "point_index": 0},
              {"curve_number": 0, "point_number": 0}, {"curve_number": 5, "point_index": 0, "customdata": [9, 0.8]}]
    assert R.selected_rows(points, trace_rows).tolist() == [7, 8, 9]
    assert R.selected_rows([], trace_rows).size == 0


def test_label_counts():
    df = R.label_counts(LABELS, [0, 3, 4, 5, 9, 9])
    assert df.values.tolist() == [["0", "good", 1], ["3", "pin 3", 2], ["10", "pin 10", 3]]


def test_order_by_label():
    rows = R.order_by_label([9, 0, 5, 3, 7], LABELS)
    assert rows.tolist() == [0, 7, 3, 5, 9]              # good (0, 7), pin 3 (3), pin 10 (5, 9)
    # a limit is shared between the labels: first of each label, then second of each, ...
    assert R.order_by_label([0, 1, 2, 6, 7, 3, 4, 8, 5, 9], LABELS, limit=4).tolist() == [0, 1, 3, 5]
    assert R.order_by_label([0, 1, 2, 6, 7, 3, 4, 8, 5, 9], LABELS, limit=0).size == 0
