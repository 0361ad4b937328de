"""Camera drift (snw_core.drift): each change on hand-made images, seeding, and the table of a judge."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core import drift
from snw_core.drift import DriftError, apply


def _ramp(n=3, h=8, w=10):
    base = (np.arange(h)[:, None] * 10 + np.arange(w)[None, :] * 3 + 40).astype(np.uint8)
    return np.repeat(base[None], n, axis=0)


def test_shift_moves_by_whole_pixels_along_one_axis():
    img = _ramp(n=40)
    out = drift.shift(img, 2, seed=0)
    h, w = img.shape[1:]
    for o, i in zip(out, img):
        # one of the four directions, interior pixels exactly moved, edges replicated
        candidates = [np.concatenate([np.repeat(i[:1], 2, 0), i[:-2]]), np.concatenate([i[2:], np.repeat(i[-1:], 2, 0)]),
                      np.concatenate([np.repeat(i[:, :1], 2, 1), i[:, :-2]], axis=1),
                      np.concatenate([i[:, 2:], np.repeat(i[:, -1:], 2, 1)], axis=1)]
        assert any(np.array_equal(o, c) for c in candidates)
    assert len({drift.shift(img[:1], 2, seed=s).tobytes() for s in range(12)}) > 1      # the direction is seeded
    np.testing.assert_array_equal(drift.shift(img, 2, seed=5), drift.shift(img, 2, seed=5))


def test_rotation_turns_about_the_centre():
    sq = np.zeros((1, 9, 9), np.uint8)
    sq[0, 1, 4] = 200                                   # a dot above the centre
    np.testing.assert_array_equal(drift.rotate(sq, 0), sq)
    r = drift.rotate(sq, 90, seed=0)[0]
    assert r.argmax() in (np.ravel_multi_index((4, 1), (9, 9)), np.ravel_multi_index((4, 7), (9, 9)))
    assert r.max() == 200


def test_blur_jpeg_noise():
    flat = np.full((2, 12, 12), 90, np.uint8)
    np.testing.assert_array_equal(drift.blur(flat, 1.0), flat)            # a flat image stays flat
    dot = np.zeros((1, 15, 15), np.uint8)
    dot[0, 7, 7] = 255
    b = drift.blur(dot, 1.0)[0].astype(float)
    assert b[7, 7] == pytest.approx(255 / (2 * np.pi), abs=2) and b[7, 8] == pytest.approx(b[7, 6])
    assert np.abs(drift.jpeg(_ramp(), 50).astype(int) - _ramp()).mean() < 4
    with pytest.raises(DriftError, match="quality"):
        drift.jpeg(_ramp(), 0)
    mid = np.full((4, 64, 64), 128, np.uint8)
    assert drift.noise(mid, 8, seed=1).astype(float).std() == pytest.approx(8, rel=0.05)
    np.testing.assert_array_equal(drift.noise(mid, 8, seed=1), drift.noise(mid, 8, seed=1))


def test_gradient_brightness_contrast():
    flat = np.full((20, 10, 16), 100, np.uint8)
    g = drift.gradient(flat, 30, seed=0).astype(int)
    assert (g.min(axis=(1, 2)) == 70).all() and (g.max(axis=(1, 2)) == 130).all()
    b = drift.brightness(flat, 30, seed=0)
    assert set(np.unique(b).tolist()) == {70, 130}
    two = np.zeros((1, 2, 2), np.uint8)
    two[0] = [[50, 150], [50, 150]]
    np.testing.assert_array_equal(drift.contrast(two, 0.6)[0], [[70, 130], [70, 130]])


def test_apply_refuses_unknown_conditions_and_bad_images():
    with pytest.raises(DriftError, match="Unknown drift condition"):
        apply(_ramp(), "fog", 1)
    with pytest.raises(DriftError, match="uint8"):
        apply(_ramp().astype(np.float32), "blur", 1)
    assert {name for name, _ in drift.CONDITIONS} <= set(drift.CHANGES)


class _BrightJudge:
    """GOOD when the mean grey level is below 100, UNKNOWN above 160, else DEFECT."""

    def judge(self, images):
        m = images.reshape(len(images), -1).mean(axis=1)
        return {"verdict": np.where(m < 100, "GOOD", np.where(m > 160, "UNKNOWN", "DEFECT")),
                "defect": m >= 100}


def test_drift_table_counts_goods_passed_and_defects_caught():
    images = np.concatenate([np.full((4, 6, 6), 80, np.uint8), np.full((3, 6, 6), 120, np.uint8),
                             np.full((1, 6, 6), 200, np.uint8)])
    labels = np.array(["0"] * 4 + ["3"] * 4)
    rows = drift.drift_table(_BrightJudge(), images, labels, conditions=(("none", 0), ("brightness", 30)))
    none, bright = rows
    assert (none["goods_passed_n"], none["n_good"], none["defects_caught_n"], none["n_defect"]) == (4, 4, 4, 4)
    assert none["goods_passed"] == 1.0 and none["defects_caught"] == 1.0           # UNKNOWN counts as caught
    assert (none["goods_unknown_n"], none["defects_unknown_n"]) == (0, 1)           # and is counted apart
    # the second condition draws its signs from seed + 1: goods at 80 become 56 (GOOD) or 104 (DEFECT)
    changed = drift.brightness(images, 30, seed=1).reshape(8, -1).mean(axis=1)
    assert bright["goods_passed_n"] == int((changed[:4] < 100).sum())
    assert bright["defects_caught_n"] == int((changed[4:] >= 100).sum())
    text = drift.format_table(rows)
    assert "brightness" in text and "4/4 (100.0%)" in text


def _row(condition, goods, defects, n=120):
    return {"condition": condition, "strength": dict(drift.CONDITIONS)[condition], "n_good": n, "n_defect": n,
            "goods_passed_n": goods, "defects_caught_n": defects, "goods_passed": goods / n,
            "defects_caught": defects / n}


def test_a_row_is_held_at_98_percent_of_goods_and_95_of_defects_90_when_blurred():
    assert drift.row_held(_row("noise", 118, 114)) and not drift.row_held(_row("noise", 117, 120))
    assert not drift.row_held(_row("jpeg", 120, 113))
    assert drift.row_held(_row("blur", 118, 108)) and not drift.row_held(_row("blur", 118, 107))
    check = {"rows": [_row("none", 120, 119), _row("blur", 98, 115), _row("noise", 90, 117)], "items": "x"}
    for r in check["rows"]:
        r["held"] = drift.row_held(r)
    check["held"] = 1
    assert drift.check_summary(check) == ("camera drift: 1 of 3 conditions held; short: blur (98/120 goods GOOD, "
                                          "115/120 defects caught), noise (90/120 goods GOOD, 117/120 defects caught)")
    from snw_core import review as R
    rows = R.drift_rows(check)
    assert [r["change"] for r in rows] == ["as taken", "blurred (sigma 1 px)", "with noise of sd 8"]
    assert rows[1]["goods GOOD"] == "98 of 120 (81.7 %)" and [r["held"] for r in rows] == [True, False, False]
    check["rows"][1].update(goods_unknown_n=22, defects_unknown_n=0)          # the focus guard: "out of focus"
    assert R.drift_rows(check)[1]["goods GOOD"] == "98 of 120 (81.7 %; 22 UNKNOWN)"
    assert R.drift_rows(check)[1]["defects caught"] == "115 of 120 (95.8 %)"
    words = R.drift_sentence(check)
    assert words.startswith("1 of 3 conditions held: at least 98 % of the good parts judged GOOD")
    assert "not held: blurred (sigma 1 px), with noise of sd 8" in words and "`camera` preset" in words
    assert "`camera` preset" not in R.drift_sentence(check, "camera")       # no advice to train what it is


@pytest.mark.slow
def test_bench_drift_on_a_tiny_real_photo_set(tmp_path):
    """bench --drift end to end: one preset, one epoch; fresh items come from the set's generator, another seed."""
    import io

    from snw_core import realdata
    from snw_core.bench import run_bench

    src = realdata.write_parquet(tmp_path / "tex.parquet", "texture", "moderate", n=130, seed=2)
    out = io.StringIO()
    rows = run_bench(str(src), ["seed"], epochs=1, runs_dir=tmp_path / "runs", quiet=True, out=out, drift=True)
    result = rows[0]["drift"]
    assert result["items"] == "realdata texture/moderate, seed 1000"
    assert [r["condition"] for r in result["rows"]] == [c for c, _ in drift.CONDITIONS]
    for r in result["rows"]:
        assert (r["n_good"], r["n_defect"]) == (120, 120)
        assert r["goods_passed"] == r["goods_passed_n"] / 120 and r["defects_caught"] == r["defects_caught_n"] / 120
    assert "camera drift, preset seed" in out.getvalue() and "rotation" in out.getvalue()


def test_fresh_items_of_a_generated_set_come_from_its_own_generator_and_other_sets_fall_back_to_the_test_split(
        tmp_path):
    """A ``data synth`` file records its connector (size, pins, polarity) and seed: the drift check draws fresh
    items of that connector with another seed, as it does for the embedded set. A parquet file without the record
    (here one written from images) gives the run's own test split."""
    from snw_core import synthetic
    from snw_core.embed import save_embeddings
    from snw_core.notapart import fresh_goods

    spec = synthetic.ConnectorSpec(height=30, width=40, pin_rows=2, pin_cols=5, polarity="dark_pins")
    src = synthetic.write_parquet(tmp_path / "g.parquet", n=60, seed=1000, spec=spec)
    assert synthetic.read_generator(src) == (spec, 1000)

    class Run:                       # what fresh_items reads of a run
        def __init__(self, source):
            self.source = source

        def config(self):
            return {"data": {"source": str(self.source), "good_label": "0"}}

        def file(self, name):
            return tmp_path / name

    images, labels, note = drift.fresh_items(Run(src), 5, 5, seed=1000)
    assert note == "generated connector (30 x 40 px, 2 x 5 pins), seed 1001"         # not the file's own seed
    expected, exp_labels, _ = synthetic.generate(3 * 5 + 13, 1001, spec)
    assert images.shape == (10, 30, 40) and (labels == "0").sum() == 5
    assert np.array_equal(images, expected[np.sort(np.r_[np.flatnonzero(exp_labels == "0")[:5],
                                                         np.flatnonzero(exp_labels != "0")[:5]])])
    assert fresh_goods(Run(src).config(), n=4).shape == (4, 30, 40)

    imgs, labs, dirs = synthetic.generate(40, 3, spec)
    plain = synthetic.write_images_parquet(tmp_path / "plain.parquet", imgs, labs, dirs)
    assert synthetic.read_generator(plain) is None and fresh_goods(Run(plain).config()) is None
    split = np.array(["train", "val", "test", "test"] * 10)
    save_embeddings(tmp_path / "embeddings.npz", np.zeros((40, 2), np.float32), labs, split, np.zeros(40))
    images, labels, note = drift.fresh_items(Run(plain), 120, 120, seed=1000)
    assert note == "the run's test split (no generator for this source)"
    assert np.array_equal(images, imgs[split == "test"]) and np.array_equal(labels, labs[split == "test"])
