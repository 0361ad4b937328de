"""snw_core.palette and viz.label_colors: label colours stay tell-apart (CIEDE2000) for up to 24 pin addresses."""
import itertools

import numpy as np
import pytest

from snw_core import palette as P
from snw_core.viz import GOOD_COLOR, label_colors


def min_pairwise(colors):
    lab = np.stack([P.hex_lab(c) for c in colors])
    return min(float(P.delta_e2000(lab[i], lab[j])) for i, j in itertools.combinations(range(len(lab)), 2))


def test_delta_e2000_reference_pairs():
    # Sharma, Wu and Dalal (2005), the published CIEDE2000 test data, pairs 1, 7 and 17
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
             ((50, 0, 0), (50, -1, 2), 2.3669),
             ((50, 2.5, 0), (56, -27, -3), 31.9030)]
    for a, b, want in pairs:
        assert float(P.delta_e2000(a, b)) == pytest.approx(want, abs=1e-4)


def test_twelve_pins_of_the_connector_are_tell_apart_including_the_pairs_that_looked_alike():
    colors = label_colors([str(i) for i in range(13)])
    assert colors["0"] == GOOD_COLOR
    for a, b in (("5", "11"), ("2", "12")):
        assert float(P.delta_e2000(P.hex_lab(colors[a]), P.hex_lab(colors[b]))) > 15
    assert min_pairwise(list(colors.values())) > 15


def test_24_pins_stay_tell_apart_from_each_other_gray_white_and_black():
    pins = P.distinct_colors(24)
    assert len(set(pins)) == 24
    assert min_pairwise(pins + [GOOD_COLOR, "#ffffff", "#000000"]) >= 15


def test_every_pin_colour_carries_bold_white_text():
    # the Accuracy and Embeddings tables write the pin name in white on its colour
    for c in P.distinct_colors(24):
        assert P.contrast_ratio(c, "#ffffff") >= 3.0, c


def test_beyond_24_labels_colours_stay_unique_and_the_first_ones_do_not_move():
    many = P.distinct_colors(60)
    assert len(set(many)) == 60
    assert many[:24] == P.distinct_colors(24)
    assert min_pairwise(many) > 5          # less apart than the first 24, but never the same colour
    colors = label_colors(["0"] + [str(i) for i in range(1, 61)])
    assert len(set(colors.values())) == 61


def test_colour_depends_on_rank_only():
    assert label_colors(["0", "3", "10"])["10"] == label_colors(["10", "0", "3", "3"])["10"]
    assert P.distinct_colors(0) == []
