"""Mirror images as training data (snw_core.mirror): which cells mirror onto which, labels that move with their
defect, and only for a surface without a layout."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core.mirror import decide, flip_batch, mirror_maps
from snw_core.realdata import cell_box

CLASSES = sorted(str(k) for k in range(13))          # class ids as training numbers them: sorted labels


def _label(classes, cid):
    return classes[int(cid)]


def test_a_centred_grid_mirrors_both_ways_and_each_map_undoes_itself():
    maps = mirror_maps(CLASSES, "0", (3, 4), None, (36, 48))
    assert sorted(maps) == [1, 2]
    ud, lr = maps[1], maps[2]
    assert _label(CLASSES, ud[CLASSES.index("1")]) == "9" and _label(CLASSES, ud[CLASSES.index("6")]) == "6"
    assert _label(CLASSES, lr[CLASSES.index("1")]) == "4" and _label(CLASSES, lr[CLASSES.index("6")]) == "7"
    assert ud[CLASSES.index("0")] == CLASSES.index("0") and lr[CLASSES.index("0")] == CLASSES.index("0")
    for m in (ud, lr):
        np.testing.assert_array_equal(m[m], np.arange(len(CLASSES)))


def test_no_mirror_where_the_cells_would_not_land_on_cells():
    assert mirror_maps(CLASSES, "0", (3, 4), (2.0, 30.0, 0.0, 48.0), (36, 48)).keys() == {2}   # off centre: rows
    assert mirror_maps(["0", "scratch"], "0", (3, 4), None, (36, 48)) == {}                     # not cell addresses
    held_out = [c for c in CLASSES if c not in ("11", "12")]           # a mirror must not make a held-out label
    maps = mirror_maps(held_out, "0", (3, 4), None, (36, 48))
    assert maps == {}                                                   # 11, 12 are the mirrors of 3, 4 and 9, 10


def test_a_flipped_image_keeps_its_defect_in_the_cell_of_its_new_label():
    rng = np.random.default_rng(0)
    maps = mirror_maps(CLASSES, "0", (3, 4), None, (36, 48))
    labels = rng.choice([c for c in CLASSES if c != "0"], size=64)
    images = np.zeros((64, 36, 48), np.uint8)
    for i, lab in enumerate(labels):                    # one bright pixel inside each item's cell
        y0, y1, x0, x1 = cell_box(lab, (36, 48), (3, 4))
        images[i, rng.integers(y0, y1), rng.integers(x0, x1)] = 255
    ids = np.array([CLASSES.index(lab) for lab in labels])
    before = images.copy()
    x, y = flip_batch(images, ids, maps, np.random.default_rng(1))
    np.testing.assert_array_equal(images, before)                       # the inputs are not changed
    assert (y != ids).sum() > 32                                        # most items moved (3 in 4 on average)
    for img, cid in zip(x, y):
        py, px = np.unravel_index(img.argmax(), img.shape)
        y0, y1, x0, x1 = cell_box(CLASSES[cid], (36, 48), (3, 4))
        assert y0 <= py < y1 and x0 <= px < x1
    x2, y2 = flip_batch(images, ids, maps, np.random.default_rng(1))
    np.testing.assert_array_equal(x, x2)                               # seeded
    np.testing.assert_array_equal(y, y2)


def test_only_a_surface_without_a_layout_is_mirrored(tmp_path):
    from snw_core import realdata
    tex = realdata.write_parquet(tmp_path / "tex.parquet", "texture", "moderate", n=30, seed=1)
    cfg = {"data": {"source": str(tex)}}
    maps, report = decide(cfg, CLASSES, "0", (36, 48), "auto", None)
    assert report["used"] and report["axes"] == [1, 2] and sorted(maps) == [1, 2] and report["epoch_factor"] == 2
    assert "without a layout" in report["reason"]
    assert decide(cfg, CLASSES, "0", (36, 48), "auto", object())[1] == {
        "used": False, "axes": [], "reason": "the part has a layout (registration on)"}
    assert not decide(cfg, CLASSES, "0", (36, 48), "off", None)[1]["used"]          # the user's choice stands
    assert not decide({"data": {"source": str(tmp_path)}}, CLASSES, "0", (36, 48), "auto", None)[1]["used"]


@pytest.mark.slow
def test_batches_carry_mirrored_images_with_their_labels():
    from snw_core.sampling import balanced_sequence
    rng = np.random.default_rng(2)
    maps = mirror_maps(CLASSES, "0", (3, 4), None, (36, 48))
    labels = np.repeat(CLASSES, 6)
    images = np.zeros((len(labels), 36, 48), np.uint8)
    for i, lab in enumerate(labels):
        if lab != "0":
            y0, y1, x0, x1 = cell_box(lab, (36, 48), (3, 4))
            images[i, rng.integers(y0, y1), rng.integers(x0, x1)] = 255
    ids = np.array([CLASSES.index(lab) for lab in labels], np.int32)
    seq = balanced_sequence(images, ids, 52, seed=0, mirror=maps)
    from snw_core.mirror import EPOCH_FACTOR
    assert len(seq) == EPOCH_FACTOR * len(balanced_sequence(images, ids, 52, seed=0))   # more to see: longer epochs
    moved = 0
    for b in range(len(seq)):
        x, y = seq[b]
        for img, cid in zip(x, y):
            if CLASSES[cid] == "0":
                assert img.max() == 0
                continue
            py, px = np.unravel_index(img.argmax(), img.shape)
            y0, y1, x0, x1 = cell_box(CLASSES[cid], (36, 48), (3, 4))
            assert y0 <= py < y1 and x0 <= px < x1
        moved += int((x.reshape(len(x), -1).argmax(1) != images[seq.batches[b]].reshape(len(x), -1).argmax(1)).sum())
    assert moved > 0


def test_no_layout_is_registration_auto_that_found_none():
    from snw_core.register import no_layout
    assert no_layout("auto", None) is True
    assert no_layout("auto", object()) is False and no_layout("off", None) is False and no_layout("on", None) is False


@pytest.mark.parametrize("more_pass, off", [(0, True), (1, False)])
def test_a_surface_switches_its_appearance_check_off_only_where_nothing_more_passes(monkeypatch, more_pass, off):
    """surface_appearance judges the not-a-part design kinds (seed 0, the surface upside down left out) with the
    appearance check and without; off only where not one more input passes without it, else the threshold stays."""
    from snw_core import notapart
    from snw_core import train as T

    class FakeGate:
        image_shape = (36, 48)
        t_app = 1.7

    seen = {}

    def judged(x, gate, *args):
        seen.setdefault("n", len(x))
        caught = np.ones(len(x), bool)
        if np.isinf(gate.t_app):
            caught[:more_pass] = False
        return x, caught

    monkeypatch.setattr(T, "_judged_changed", judged)
    images = np.random.default_rng(0).integers(0, 255, (30, 36, 48), dtype=np.uint8)
    labels, split = np.full(30, "0"), np.array(["train"] * 20 + ["val"] * 10)
    gate = FakeGate()
    r = T.surface_appearance(gate, None, images, labels, split, "0", None, 3, 0.2)
    n = T.SURFACE_NOT_A_PART * (len(notapart.KINDS) - 1)
    assert seen["n"] == n and r["n"] == n and r["used"] is off and r["passed_with"] == 0
    assert r["passed_without"] == more_pass
    assert np.isinf(gate.t_app) if off else gate.t_app == 1.7
    assert r["reason"].startswith("off: a surface" if off else "kept: without it 1 more of")
