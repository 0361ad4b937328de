"""Tests of snw_core.gallery: filters, paging, thumbnails, pair sampling and judgement (hand-computed values)."""
import numpy as np
import pytest

from snw_core import gallery as G
from snw_core.pairs import PAIR_DIFFERENT, PAIR_SAME, make_pairs

LABELS = np.array(["0", "3", "0", "12", "3", "2", "0"])
SPLIT = np.array(["train", "val", "test", "train", "train", "test", "train"])


# --------------------------------------------------------------------------- filter and paging

def test_show_options_good_first_pins_natural():
    assert G.show_options(LABELS) == ["all", "good", "defect", "2", "3", "12"]
    assert G.show_options(["OK", "NG_10", "NG_2"], good_label="OK") == ["all", "good", "defect", "NG_2", "NG_10"]


def test_show_name():
    assert G.show_name("all") == "all items"
    assert G.show_name("good", "OK") == "good only (label OK)"
    assert G.show_name("7") == "defects at pin 7"


@pytest.mark.parametrize("show, split_filter, expected", [
    ("all", "all", [0, 1, 2, 3, 4, 5, 6]),
    ("good", "all", [0, 2, 6]),
    ("defect", "all", [1, 3, 4, 5]),
    ("3", "all", [1, 4]),
    ("12", "all", [3]),
    ("all", "train", [0, 3, 4, 6]),
    ("good", "test", [2]),
    ("defect", "val", [1]),
    ("3", "test", []),
])
def test_filter_items(show, split_filter, expected):
    out = G.filter_items(LABELS, "0", show, SPLIT, split_filter)
    assert out.tolist() == expected
    assert out.dtype == np.int64


def test_filter_items_custom_good_label():
    labels = np.array(["OK", "NG_1", "OK"])
    assert G.filter_items(labels, "OK", "good").tolist() == [0, 2]
    assert G.filter_items(labels, "OK", "defect").tolist() == [1]


def test_filter_items_rejects_bad_split_filter():
    with pytest.raises(ValueError, match="split_filter"):
        G.filter_items(LABELS, "0", "all", SPLIT, "holdout")
    with pytest.raises(ValueError, match="needs the split"):
        G.filter_items(LABELS, "0", "all", None, "train")
    with pytest.raises(ValueError, match="shape"):
        G.filter_items(LABELS, "0", "all", SPLIT[:3], "train")


@pytest.mark.parametrize("n, size, pages", [(0, 10, 1), (1, 10, 1), (10, 10, 1), (11, 10, 2), (3600, 48, 75)])
def test_page_count(n, size, pages):
    assert G.page_count(n, size) == pages


def test_page_count_rejects_zero_size():
    with pytest.raises(ValueError, match="page_size"):
        G.page_count(5, 0)


def test_page_items_slices_and_clamps():
    idx = np.arange(100, 110)
    rows, page, n_pages = G.page_items(idx, 1, 4)
    assert rows.tolist() == [100, 101, 102, 103] and (page, n_pages) == (1, 3)
    rows, page, _ = G.page_items(idx, 3, 4)
    assert rows.tolist() == [108, 109] and page == 3
    rows, page, _ = G.page_items(idx, 99, 4)          # past the end: the last page
    assert rows.tolist() == [108, 109] and page == 3
    rows, page, _ = G.page_items(idx, 0, 4)           # before the start: the first page
    assert page == 1
    rows, page, n_pages = G.page_items(np.array([], np.int64), 1, 4)
    assert rows.size == 0 and (page, n_pages) == (1, 1)


def test_split_counts_and_label_split_table():
    assert G.split_counts(SPLIT) == {"train": 4, "val": 1, "test": 2}
    rows = G.label_split_table(LABELS, SPLIT)
    assert [r["label"] for r in rows] == ["0", "2", "3", "12"]
    assert rows[0] == {"label": "0", "name": "good", "train": 2, "val": 0, "test": 1, "total": 3}
    assert rows[2] == {"label": "3", "name": "pin 3", "train": 1, "val": 1, "test": 0, "total": 2}
    assert sum(r["total"] for r in rows) == LABELS.size
    assert G.label_split_table(LABELS)[3] == {"label": "12", "name": "pin 12", "total": 1}     # no split


# --------------------------------------------------------------------------- thumbnails

def test_bordered_thumbnails_pixel_exact_with_frame():
    img = np.array([[[0, 10], [20, 30]]], np.uint8)          # (1, 2, 2)
    out = G.bordered_thumbnails(img, scale=3, colors=["#ff0000"], border=1)
    assert out.shape == (1, 8, 8, 3) and out.dtype == np.uint8
    assert out[0, 0, 0].tolist() == [255, 0, 0]               # frame
    assert out[0, 1:4, 1:4].tolist() == [[[0, 0, 0]] * 3] * 3  # pixel (0, 0) as a 3x3 block
    assert out[0, 4:7, 4:7, 0].tolist() == [[30] * 3] * 3      # pixel (1, 1)
    assert (out[0, 1:7, 1:7, 0] == out[0, 1:7, 1:7, 2]).all()   # gray stays gray


def test_bordered_thumbnails_without_frame_and_errors():
    imgs = np.zeros((2, 3, 4), np.uint8)
    assert G.bordered_thumbnails(imgs, 2).shape == (2, 6, 8, 3)
    with pytest.raises(ValueError, match="colours"):
        G.bordered_thumbnails(imgs, 2, colors=["#000000"])
    with pytest.raises(ValueError, match="shape"):
        G.bordered_thumbnails(np.zeros((3, 4), np.uint8), 2)


def test_pair_image_layout():
    a = np.full((2, 3), 10, np.uint8)
    b = np.full((2, 3), 200, np.uint8)
    out = G.pair_image(a, b, scale=2, colors=("#000000", "#000000"), border=1, gap=4)
    assert out.shape == (2 * 2 + 2, 2 * (3 * 2 + 2) + 4, 3)
    assert out[1, 1].tolist() == [10, 10, 10]
    assert out[3, 8:12].tolist() == [[255, 255, 255]] * 4     # the white gap
    assert out[1, 13].tolist() == [200, 200, 200]
    framed = G.pair_image(a, b, scale=2, colors=("#000000", "#000000"), border=1, gap=4, outline="#00ff00",
                          outline_width=2)
    assert framed.shape == (6 + 4, 20 + 4, 3) and framed[0, 0].tolist() == [0, 255, 0]


# --------------------------------------------------------------------------- pairs

def test_seed_scheme_pairs_match_make_pairs_on_the_split():
    labels = np.array(["0", "1", "0", "2", "1", "0", "2", "1"])
    items = np.array([1, 2, 4, 5, 6, 7])
    a, b, y = G.seed_scheme_pairs(labels, items, 3, seed=5)
    la, lb, ly = make_pairs(labels[items], 3, seed=5)
    np.testing.assert_array_equal(a, items[la])
    np.testing.assert_array_equal(b, items[lb])
    np.testing.assert_array_equal(y, ly)
    assert set(a.tolist()) <= set(items.tolist()) and set(b.tolist()) <= set(items.tolist())
    assert ((labels[a] == labels[b]) == (y == PAIR_SAME)).all()
    assert y.size == 2 * 3 * items.size


def test_draw_batch_is_class_balanced_seeded_and_matches_training():
    from snw_core.sampling import balanced_batch_indices

    labels = np.array(["0"] * 40 + ["1"] * 12 + ["2"] * 9 + ["3"] * 3)
    items = np.arange(4, 64)                       # drop 4 goods: rows are data-set rows, not split rows
    b1 = G.draw_batch(labels, items, 8, seed=1)    # 4 labels -> K = 2 of each
    assert b1.size == 8 and set(b1.tolist()) <= set(items.tolist())
    counts = {c: int((labels[b1] == c).sum()) for c in "0123"}
    assert counts == {"0": 2, "1": 2, "2": 2, "3": 2}
    np.testing.assert_array_equal(b1, G.draw_batch(labels, items, 8, seed=1))
    assert not np.array_equal(b1, G.draw_batch(labels, items, 8, seed=2))
    # the same generator as training: class ids in sorted-label order, rng = default_rng(seed)
    ids = np.searchsorted(np.unique(labels), labels[items])
    first = balanced_batch_indices(ids, 8, 1, np.random.default_rng(1))[0]
    np.testing.assert_array_equal(b1, items[first])
    # 13 of each label when the batch asks for 52 and there are 4 labels; label "3" (3 items) repeats
    big = G.draw_batch(labels, items, 52, seed=0)
    assert big.size == 52 and {c: int((labels[big] == c).sum()) for c in "0123"} == dict.fromkeys("0123", 13)
    with pytest.raises(ValueError, match=">= 2"):
        G.draw_batch(labels, items, 1, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        G.draw_batch(labels, items[:1], 8, seed=0)


def test_in_batch_pairs_are_all_pairs_of_the_batch():
    labels = np.array(["0", "0", "1", "9", "1"])
    batch = np.array([0, 1, 2, 4])     # labels 0, 0, 1, 1
    a, b, y = G.in_batch_pairs(labels, batch, shuffle=False)
    assert list(zip(a.tolist(), b.tolist())) == [(0, 1), (0, 2), (0, 4), (1, 2), (1, 4), (2, 4)]
    assert y.tolist() == [0, 1, 1, 1, 1, 0]
    a2, b2, y2 = G.in_batch_pairs(labels, batch, seed=3)       # shuffled: same set of pairs
    assert sorted(zip(a2.tolist(), b2.tolist(), y2.tolist())) == sorted(zip(a.tolist(), b.tolist(), y.tolist()))


def test_pair_distances_and_judgement():
    emb = np.array([[0.0, 0.0], [0.3, 0.4], [3.0, 4.0]])
    d = G.pair_distances(emb, [0, 0, 1, 2], [1, 2, 2, 2])
    np.testing.assert_allclose(d, [0.5, 5.0, np.hypot(2.7, 3.6), 0.0])
    # same when d < 0.5: 0.5 is "different"
    correct = G.judge_pairs([0.49, 0.5, 0.5, 0.1, 2.0], [PAIR_SAME, PAIR_SAME, PAIR_DIFFERENT, PAIR_DIFFERENT,
                                                          PAIR_DIFFERENT])
    assert correct.tolist() == [True, False, True, False, True]


def test_pair_summary_hand_case():
    y = np.array([0, 0, 1, 1, 1])
    assert G.pair_summary(y) == {"n": 5, "n_positive": 2, "n_negative": 3}
    s = G.pair_summary(y, [True, False, True, True, False])
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["positive_accuracy"] == pytest.approx(1 / 2)
    assert s["negative_accuracy"] == pytest.approx(2 / 3)
    assert G.pair_summary(np.array([1, 1]), [True, True])["positive_accuracy"] is None
    with pytest.raises(ValueError, match="shape"):
        G.pair_summary(y, [True])


def test_filter_pairs():
    y = np.array([0, 1, 1, 0])
    correct = np.array([True, True, False, False])
    assert G.filter_pairs(y).tolist() == [0, 1, 2, 3]
    assert G.filter_pairs(y, show="positive").tolist() == [0, 3]
    assert G.filter_pairs(y, show="negative").tolist() == [1, 2]
    assert G.filter_pairs(y, correct, "wrong").tolist() == [2, 3]
    assert G.filter_pairs(y, correct, "right").tolist() == [0, 1]
    with pytest.raises(ValueError, match="needs distances"):
        G.filter_pairs(y, None, "wrong")
    with pytest.raises(ValueError, match="show must be"):
        G.filter_pairs(y, correct, "maybe")


# --------------------------------------------------------------------------- figures

def test_label_bar_figure_order_colours_axes():
    from snw_core.viz import label_colors
    counts = {"10": 2, "0": 5, "2": 3}
    fig = G.label_bar_figure(counts)
    bar = fig.data[0]
    assert list(bar.x) == ["good (0)", "2", "10"]
    assert list(bar.y) == [5, 3, 2]
    colors = label_colors(counts.keys())
    assert list(bar.marker.color) == [colors["0"], colors["2"], colors["10"]]
    assert fig.layout.xaxis.title.text == "pin address"
    assert fig.layout.yaxis.title.text == "items"


def test_label_bars_html_rows_colours_lengths_and_splits():
    import re

    from snw_core.viz import label_colors
    rows = G.label_split_table(LABELS, SPLIT)
    colors = label_colors(LABELS)
    out = G.label_bars_html(rows, colors)
    body = re.findall(r"<tr><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>"
                      r".*?[^-]width:([0-9.]+)%;min-width.*?background:(#\w+)"
                      r".*?<span>([^<]*)</span></div></td>((?:<td[^>]*>[^<]*</td>)*)</tr>", out)
    assert [b[:2] for b in body] == [("0", "good"), ("2", "pin 2"), ("3", "pin 3"), ("12", "pin 12")]
    assert [float(b[2]) for b in body] == [80.0, 26.7, 53.3, 26.7]          # 3, 1, 2, 1 items; longest 80%
    assert [b[3] for b in body] == [colors[lab] for lab in ("0", "2", "3", "12")]
    assert [b[4] for b in body] == ["3", "1", "2", "1"]
    splits_good = re.findall(r">(\d+)</td>", body[0][5])
    assert splits_good == ["2", "0", "1"]                                   # good: 2 train, 0 val, 1 test
    # without a split: the bars and totals only
    bare = G.label_bars_html(G.label_split_table(["0"]), colors)
    assert "train" not in bare and "width:80.0%" in bare
    assert G.label_bars_html([], colors) == ""


def test_distance_histogram_two_kinds_and_cutoff():
    d = np.array([0.1, 0.2, 0.9, 1.2, 0.7])
    y = np.array([0, 0, 1, 1, 1])
    fig = G.distance_histogram(d, y)
    assert len(fig.data) == 2
    assert sorted(fig.data[0].x) == [0.1, 0.2] and sorted(fig.data[1].x) == [0.7, 0.9, 1.2]
    assert fig.layout.barmode == "overlay"
    assert any(s.x0 == 0.5 and s.x1 == 0.5 for s in fig.layout.shapes)
    assert "distance" in fig.layout.xaxis.title.text
