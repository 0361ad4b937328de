"""Registration (snw_core.register): the pose, the correction, the fill, the reliability check, the bundle's copy."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from snw_core import drift, imageops, realdata, synthetic
from snw_core.register import REGISTER_FILE, Registration, fit_registration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def parts():
    images, labels, _ = synthetic.generate(600, 5)
    rng = np.random.default_rng(0)
    split = np.where(rng.random(len(images)) < 0.6, "train", np.where(rng.random(len(images)) < 0.5, "val", "test"))
    return images, np.asarray(labels).astype(str), split


@pytest.fixture(scope="module")
def reg(parts):
    images, labels, split = parts
    r, report = Registration.fit(images, labels, split, "0", seed=0)
    assert r is not None, report
    return r


def test_fit_uses_it_on_parts_and_not_on_a_random_texture(parts):
    images, labels, split = parts
    r, report = Registration.fit(images, labels, split, "0")
    assert report["used"] and r is not None
    assert report["shift_error_px"] <= 1.0 and report["angle_error_deg"] <= 1.5
    # random crops of a textured surface: no fixed layout, a known shift is not recovered
    t_images, t_labels, _, _ = realdata.generate("texture", "strong", 300, 0)
    t_split = np.where(np.arange(300) % 5 < 3, "train", np.where(np.arange(300) % 5 == 3, "val", "test"))
    r2, report2 = Registration.fit(t_images, np.asarray(t_labels).astype(str), t_split, "0")
    assert r2 is None and not report2["used"] and report2["shift_error_px"] > 2.0
    assert "no fixed layout" in report2["reason"]
    off, rep_off = fit_registration(images, labels, split, "0", setting="off")
    assert off is None and "off" in rep_off["reason"]


def test_a_shifted_part_is_found_and_put_back(parts, reg):
    images, labels, split = parts
    x = images[split == "test"][:60]
    base = reg.estimate(x)
    for axis, sign in ((1, 1), (1, -1), (2, 1), (2, -1)):
        moved = np.roll(x, 2 * sign, axis=axis)
        d = reg.estimate(moved) - base
        along = d[:, axis - 1] * sign
        assert np.median(along) > 1.3, (axis, sign, np.median(along))
        assert np.median(np.abs(d[:, 2 - axis])) < 0.3          # not the other axis
    shifted = drift.shift(x, 2, seed=3)
    back, pose, applied = reg.apply(shifted)
    assert (np.abs(applied[:, :2]) >= 1).any(1).mean() > 0.9    # nearly every one corrected
    ref, _, _ = reg.apply(x)                    # both put in the taught pose: they agree again
    inner = (slice(None), slice(3, -3), slice(3, -3))
    err_before = np.abs(shifted.astype(float) - ref)[inner].mean()
    err_after = np.abs(back.astype(float) - ref)[inner].mean()
    assert err_after < 0.5 * err_before
    # the strip with no source is filled from a good reference, not smeared: its outer row (column) does
    # not repeat its neighbour (an edge replication would)
    checked = 0
    for im, (dy, dx, _) in zip(back, applied):
        for d, a, b in ((dy, im[-1], im[-2]), (-dy, im[0], im[1]), (dx, im[:, -1], im[:, -2]),
                        (-dx, im[:, 0], im[:, 1])):
            if d > 0:
                assert not np.array_equal(a, b)
                checked += 1
    assert checked >= 50


def test_a_turned_part_is_turned_back_and_clean_parts_are_left_alone(parts, reg):
    images, labels, split = parts
    x = images[split == "test"][:60]
    turned = drift.rotate(x, 3, seed=1)
    _, pose, applied = reg.apply(turned)
    assert np.median(np.abs(pose[:, 2])) > 2.0
    assert (applied[:, 2] != 0).mean() > 0.9
    out, pose0, applied0 = reg.apply(x)
    untouched = ~(applied0 != 0).any(1)
    assert untouched.mean() > 0.3
    assert np.array_equal(out[untouched], x[untouched])                # inside the dead band: bit for bit
    assert (np.abs(applied0[:, 2]) == 0).all()                          # clean parts are not turned


def test_maps_and_points_go_back_to_the_input_pixels(reg):
    h, w = reg.image_shape
    applied = np.array([[2.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.3, -0.7, 3.0], [0.0, 0.0, 0.0]])
    maps = np.zeros((4, h, w), np.float32)
    ys, xs = np.array([10, 12, 13, 5]), np.array([15, 20, 17, 9])
    maps[np.arange(4), ys, xs] = 1.0
    back = reg.to_input(maps, applied)
    py, px = reg.point_to_input(ys, xs, applied)
    assert back.dtype == np.float32
    for i in range(4):
        by, bx = np.unravel_index(np.argmax(back[i]), (h, w))
        assert abs(by - py[i]) <= 1 and abs(bx - px[i]) <= 1
    assert (py[0], px[0]) == (12, 15) and (py[1], px[1]) == (12, 19) and (py[3], px[3]) == (5, 9)
    assert np.array_equal(back[3], maps[3])


def test_save_load_round_trip(reg, tmp_path):
    reg.save(tmp_path / REGISTER_FILE)
    again = Registration.load(tmp_path / REGISTER_FILE)
    x = drift.shift(reg.references[:20], 2, seed=0)
    a, b = reg.apply(x), again.apply(x)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_the_bundle_script_registers_exactly_like_the_dashboard(parts, reg, tmp_path):
    spec = importlib.util.spec_from_file_location("inspect_bundle_t", ROOT / "snw_core" / "bundle_template" / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    np.savez_compressed(tmp_path / REGISTER_FILE, **reg.arrays())
    theirs = mod.Registration(str(tmp_path))
    images, labels, split = parts
    x = np.concatenate([drift.shift(images[:30], 2, seed=0), drift.rotate(images[30:60], 3, seed=0), images[60:90]])
    ours, _, applied = reg.apply(x)
    got, got_applied = theirs.apply(x)
    assert np.array_equal(got, ours) and np.allclose(got_applied, applied)
    h, w = reg.image_shape
    rng = np.random.default_rng(0)
    heat = rng.random((len(x), h, w)).astype(np.float32)
    checks = {"heatmap": heat, "defect_y": rng.integers(0, h, len(x)), "defect_x": rng.integers(0, w, len(x))}
    mapped = theirs.to_input(checks, got_applied)
    assert np.allclose(mapped["heatmap"], reg.to_input(heat, applied), atol=1e-6)
    py, px = reg.point_to_input(checks["defect_y"], checks["defect_x"], applied)
    assert np.array_equal(mapped["defect_y"], py) and np.array_equal(mapped["defect_x"], px)


def test_the_operator_reads_which_way_the_part_sat():
    from snw_core.inspect_view import registration_note
    assert "2 px low" in registration_note([2.0, 0.0, 0.0]) and "right" not in registration_note([2.0, 0.0, 0.0])
    note = registration_note([-1.0, 3.0, 2.5])
    assert "1 px high" in note and "3 px right" in note and "turned by 2.5°" in note
    assert registration_note([1.0, -1.0, 0.0]) == ""           # the parts' normal spread: nothing to say


def test_a_part_flipped_in_the_fixture_is_told_from_one_as_taught(parts):
    images, labels, split = parts
    reg, report = Registration.fit(images, labels, split, "0", seed=0)
    o = report["orientation"]
    assert o["used"] and min(o["caught_on_val"]) >= 0.8 and reg.flip is not None
    test = images[split == "test"]
    assert reg.flipped(reg.apply(test)[0]).mean() <= 0.01           # parts as they sit: not flipped
    for turned in (test[:, ::-1, :], test[:, ::-1, ::-1]):
        assert reg.flipped(reg.apply(turned)[0]).mean() >= 0.8
    # the cut lies midway across the val gap where there is one, at the highest part as it sits where there is not
    lo, hi = o["highest_as_it_sits"], o["lowest_flipped"]
    assert reg.flip[2] == pytest.approx((lo + hi) / 2 if hi > lo else lo, abs=1e-4) and o["cut"] >= lo
    # a part that looks the same either way (vertical stripes flipped top to bottom) is not checked
    stripes = np.tile(np.r_[np.zeros(3), np.full(3, 200.0)], 6)[:36]
    rng = np.random.default_rng(0)
    sym = np.clip(np.tile(stripes, (200, 26, 1)) + rng.normal(0, 3, (200, 26, 36)), 0, 255).astype(np.uint8)
    sym_split = np.where(np.arange(200) % 2 == 0, "train", "val")
    sym_reg = Registration.build(sym[sym_split == "train"])
    out = sym_reg.fit_orientation(sym[sym_split == "train"], sym[sym_split == "val"])
    assert not out["used"] and sym_reg.flip is None and not sym_reg.flipped(sym).any()


def test_a_blurred_or_shifted_good_part_is_not_called_flipped():
    """Dark pins in a 3 x 5 grid: a cut at the highest val part as it sits called 9 % of the goods blurred by 1 px
    flipped, and a few shifted ones; midway across the gap, none, and every flipped part is still caught."""
    spec = synthetic.ConnectorSpec(height=36, width=40, pin_rows=3, pin_cols=5, polarity="dark_pins")
    images, labels, _ = synthetic.generate(600, seed=5, spec=spec)
    labels = np.asarray(labels).astype(str)
    rng = np.random.default_rng(0)
    split = np.where(rng.random(600) < 0.6, "train", np.where(rng.random(600) < 0.5, "val", "test"))
    reg, report = Registration.fit(images, labels, split, "0", seed=0)
    o = report["orientation"]
    assert o["used"] and o["lowest_flipped"] > o["highest_as_it_sits"]
    test = images[split == "test"]
    goods = test[labels[split == "test"] == "0"]
    assert not reg.flipped(reg.apply(drift.blur(goods, 1.0, seed=4))[0]).any()
    for seed in range(4):
        assert not reg.flipped(reg.apply(drift.shift(goods, 2, seed=seed))[0]).any()
    for turned in (test[:, ::-1, :], test[:, ::-1, ::-1]):
        assert reg.flipped(reg.apply(turned)[0]).all()


def test_the_bundle_script_finds_flipped_parts_like_the_dashboard(parts, tmp_path):
    images, labels, split = parts
    reg, _ = Registration.fit(images, labels, split, "0", seed=0)
    spec = importlib.util.spec_from_file_location("inspect_bundle_f", ROOT / "snw_core" / "bundle_template" / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    np.savez_compressed(tmp_path / REGISTER_FILE, **reg.arrays())
    theirs = mod.Registration(str(tmp_path))
    x = np.concatenate([images[:30], images[30:60, ::-1, :]])
    ours = reg.flipped(reg.apply(x)[0])
    got = theirs.flipped(theirs.apply(x)[0])
    assert np.array_equal(ours, got) and ours[30:].mean() >= 0.8 and not ours[:30].any()
    again = Registration.from_arrays(reg.arrays())
    assert np.array_equal(again.flipped(again.apply(x)[0]), ours)


def test_the_pixels_without_a_source_are_named_and_the_bundle_names_the_same(parts, reg, tmp_path, monkeypatch):
    """``unknown_pixels``: the strip a shift brings in and the corners of a turn, which the local evidence leaves
    out; None when no image was corrected."""
    h, w = reg.image_shape
    applied = np.array([[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    m = reg.unknown_pixels(applied)
    assert m.shape == (4, h, w) and m.dtype == bool
    assert m[0, :, -2:].all() and not m[0, :, :-2].any()         # moved 2 px right and put back: right columns
    assert m[1, 0].all() and not m[1, 1:].any()                  # moved 1 px up and put back: the top row
    assert not m[2].any()
    assert m[3, 0, 0] and m[3, -1, -1] and not m[3, h // 2 - 3:h // 2 + 3, w // 2 - 3:w // 2 + 3].any()
    assert reg.unknown_pixels(np.zeros((3, 3))) is None
    # on real corrections: a strip or corners, a few per cent of the pixels; the bundle names the same ones
    images, labels, split = parts
    x = np.concatenate([drift.shift(images[:20], 2, seed=0), drift.rotate(images[20:40], 3, seed=0)])
    _, _, applied = reg.apply(x)
    mine = reg.unknown_pixels(applied)
    assert 0.02 < mine.mean() < 0.15
    spec = importlib.util.spec_from_file_location("inspect_bundle_u", ROOT / "snw_core" / "bundle_template" / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    np.savez_compressed(tmp_path / REGISTER_FILE, **reg.arrays())
    theirs = mod.Registration(str(tmp_path))
    assert np.array_equal(theirs.unknown_pixels(applied), mine)
    monkeypatch.setattr(imageops, "SAMPLE_PIXELS", 3 * h * w)             # large images: a few at a time, the same
    assert np.array_equal(reg.unknown_pixels(applied), mine)
    assert theirs.unknown_pixels(np.zeros((2, 3))) is None


def test_the_filled_strip_follows_the_light_across_the_part(parts, reg):
    """A part shifted under a light gradient: the strip a shift brings in is filled with the reference's pattern in
    the image's own light (gain, offset and ramp fitted on the known pixels), so it continues the ramp instead of
    leaving a step at the border, which the local evidence would report as a difference."""
    from snw_core.register import fill_light
    images, labels, split = parts
    x = images[labels == "0"]
    x = x[(reg.apply(x)[2] == 0).all(1)][:40]           # parts left where they sit: the truth is the image itself
    assert len(x) >= 20
    xx = np.mgrid[0:26, 0:36][1]
    truth = np.clip(x.astype(np.float64) + 30.0 * (xx - 17.5) / 17.5, 0, 255)      # a ramp of +-30 grey levels
    moved = np.rint(np.roll(truth, 2, axis=2)).astype(np.uint8)                    # 2 px right (wrapped columns)
    back, _, applied = reg.apply(moved)
    done = np.flatnonzero((applied == [0, 2, 0]).all(1))
    assert len(done) >= 0.8 * len(x)
    known = np.ones((26, 36), bool)
    known[:, 34:] = False                                # no source: filled
    k = known.ravel()
    err, flat = [], []
    for i in done:
        v = np.roll(moved[i].astype(np.float64), -2, axis=1).ravel()
        am, asd = v[k].mean(), v[k].std() + 1.0
        z = np.where(k, (v - am) / asd, 0.0)
        j = int(np.argmin(reg._ref_sq - np.sum(reg._ref_z[:, ~k] ** 2, 1) - 2.0 * (reg._ref_z @ z)))
        filled = back[i].ravel()[~k].astype(np.float64)
        assert np.allclose(fill_light(reg._ref_z[j], v, k, reg._basis[0]), filled, atol=0.51)
        err.append(np.abs(filled - truth[i].ravel()[~k]).mean())
        # the same reference in the image's mean and spread alone, without the ramp
        flat.append(np.abs(reg._ref_z[j, ~k] * asd + am - truth[i].ravel()[~k]).mean())
    assert np.mean(err) < 8.0 and np.mean(err) < 0.5 * np.mean(flat), (np.mean(err), np.mean(flat))


def test_the_pose_search_of_large_images_runs_a_few_images_at_a_time(parts, reg, monkeypatch):
    """Every window of 256 images at once grew to gigabytes for 128 x 128 px images; in pieces the poses are the
    same."""
    from snw_core import register as R
    images = drift.rotate(parts[0][:40], 3.0, seed=2)
    whole = reg.estimate(images)
    h, w = reg.image_shape
    monkeypatch.setattr(R, "ESTIMATE_BYTES", 8 * (2 * R.MARGIN + 1) ** 2 * (h - 2 * R.MARGIN) * (w - 2 * R.MARGIN) * 3)
    np.testing.assert_array_equal(reg.estimate(images), whole)
    assert np.abs(whole[:, 2]).mean() > 2                                     # the turns are found at all


def test_the_pose_search_without_window_copies_finds_the_same_poses(parts, reg, monkeypatch):
    """Large images take the pose search that copies no windows; on the same images it finds the poses of the
    window copies, turned and shifted parts alike, in pieces too."""
    from snw_core import register as R
    images = np.concatenate([drift.rotate(parts[0][:20], 3.0, seed=2), drift.shift(parts[0][20:40], 2, seed=3),
                             parts[0][40:50]])
    copies = reg.estimate(images)
    monkeypatch.setattr(R, "LARGE_PIXELS", 0)
    fast = R.Registration(reg.templates, reg.angles, reg.references)
    np.testing.assert_allclose(fast.estimate(images), copies, atol=1e-9)
    h, w = reg.image_shape
    monkeypatch.setattr(R, "ESTIMATE_BYTES", 8 * 4 * h * w * 3)               # three images a piece
    np.testing.assert_allclose(fast.estimate(images), copies, atol=1e-9)
    assert np.abs(copies[:20, 2]).mean() > 2 and np.abs(copies[20:40, :2]).max() > 1.5
