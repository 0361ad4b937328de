"""Seeded stratified splits and the seed-scheme pairs (pair label 0 = same, 1 = different)."""
import numpy as np
import pytest

from snw_core.pairs import PAIR_DIFFERENT, PAIR_SAME, make_pairs
from snw_core.splits import stratified_split


def test_pair_label_convention_is_the_seed_studys():
    assert (PAIR_SAME, PAIR_DIFFERENT) == (0, 1)


def test_split_is_stratified_and_seeded():
    labels = np.array(["0"] * 1200 + [str(p) for p in range(1, 13) for _ in range(200)])
    s = stratified_split(labels, (0.6, 0.2, 0.2), seed=0)
    for lab, n in (("0", 1200), ("7", 200)):
        got = {k: int(((labels == lab) & (s == k)).sum()) for k in ("train", "val", "test")}
        assert got == {"train": int(n * 0.6), "val": int(n * 0.2), "test": int(n * 0.2)}
    np.testing.assert_array_equal(s, stratified_split(labels, (0.6, 0.2, 0.2), seed=0))
    assert not np.array_equal(s, stratified_split(labels, (0.6, 0.2, 0.2), seed=1))


def test_a_rare_label_reaches_every_split():
    labels = np.array(["0"] * 20 + ["9"] * 3)
    s = stratified_split(labels, (0.8, 0.1, 0.1), seed=0)
    assert sorted(s[labels == "9"].tolist()) == ["test", "train", "val"]


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.0), (0.6, 0.2, 0.3), (1.2, -0.1, -0.1), (0.5, 0.5)])
def test_bad_fractions_are_refused(fractions):
    with pytest.raises(ValueError, match="fractions"):
        stratified_split(["0", "1"] * 10, fractions)


def test_pairs_follow_the_seed_scheme():
    labels = np.array(["0"] * 6 + ["1"] * 3 + ["2"] * 3)
    a, b, y = make_pairs(labels, n_per_image=10, seed=0)
    assert len(y) == 12 * 20                                  # 10 positives + 10 negatives per image
    assert int((y == PAIR_SAME).sum()) == int((y == PAIR_DIFFERENT).sum()) == 120
    np.testing.assert_array_equal(labels[a] == labels[b], y == PAIR_SAME)   # labels are right
    assert np.bincount(a, minlength=12).tolist() == [20] * 12             # every image anchors 20 pairs
    assert not np.all(y[:120] == y[0])                                    # shuffled


def test_pairs_are_seeded_and_negatives_cover_other_labels():
    labels = np.array(["0"] * 50 + ["1"] * 50 + ["2"] * 50)
    a1, b1, y1 = make_pairs(labels, 5, seed=3)
    a2, b2, y2 = make_pairs(labels, 5, seed=3)
    np.testing.assert_array_equal(b1, b2)
    neg_partner_labels = labels[b1[(y1 == PAIR_DIFFERENT) & (labels[a1] == "0")]]
    assert set(neg_partner_labels) == {"1", "2"}


def test_single_label_has_no_negatives():
    with pytest.raises(ValueError, match="two different labels"):
        make_pairs(["0", "0", "0"], 2)
    with pytest.raises(ValueError, match="n_per_image"):
        make_pairs(["0", "1"], 0)
